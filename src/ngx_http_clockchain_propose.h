
/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_PROPOSE_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_PROPOSE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>
#include <jansson.h>


/* the writers' workflow on the moments location */
#define NGX_HTTP_CLOCKCHAIN_PROPOSE_NEW         1   /* POST .../propose */
#define NGX_HTTP_CLOCKCHAIN_PROPOSE_CHALLENGE   2   /* POST {path}/... */
#define NGX_HTTP_CLOCKCHAIN_PROPOSE_VERIFY      3
#define NGX_HTTP_CLOCKCHAIN_PROPOSE_RECONCILE   4
#define NGX_HTTP_CLOCKCHAIN_PROPOSE_CHALLENGES  5   /* GET {path}/... */
#define NGX_HTTP_CLOCKCHAIN_PROPOSE_HISTORY     6


/* the ninth segment of a moment's route: one of the above, or 0 */
ngx_uint_t ngx_http_clockchain_propose_action(u_char *s, size_t len);

/* path: the moment's, canonical, or data NULL (none, or not a path) */
ngx_int_t ngx_http_clockchain_propose_handler(ngx_http_request_t *r,
    ngx_str_t *path, ngx_uint_t action);

/* moments.c: a node's hash (HGETALL) typed as the API shows its fields */
json_t *ngx_http_clockchain_node_json(redisReply *node, ngx_uint_t skip);

/* moments.c: a node (HGETALL) and its edges as the API shows a moment */
json_t *ngx_http_clockchain_moment_json(redisReply *node, redisReply *edges,
    ngx_uint_t format);


#endif /* _NGX_HTTP_CLOCKCHAIN_PROPOSE_H_INCLUDED_ */

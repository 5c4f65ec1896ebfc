
/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_REDIS_CONF_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_REDIS_CONF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * The longest clockchain_redis prefix=: with "{cc}:v1:" and the longest
 * name after it ("processing", "job:" and an id), a key fits the 256-byte
 * buffers the runner and the events subscriber build keys in.
 */
#define NGX_HTTP_CLOCKCHAIN_PREFIX_MAX    128


typedef struct {
    u_char                       *host;           /* NUL-terminated IP */
    ngx_int_t                     port;
} ngx_http_clockchain_addr_t;


/* clockchain_redis: an IP literal with port, a unix socket, or Sentinels */

typedef struct {
    ngx_str_t                     addr;           /* for logs */
    u_char                       *host;           /* NUL-terminated */
    ngx_int_t                     port;
    u_char                       *unix_path;      /* NUL-terminated */
    ngx_int_t                     db;
    ngx_str_t                     password;
    ngx_str_t                     sentinel_password;
    ngx_str_t                     prefix;
    ngx_msec_t                    timeout;
    ngx_array_t                  *sentinels;      /* of addr_t, or NULL */
    ngx_str_t                     sentinel_master;
    ngx_uint_t                    wait;           /* replicas for a POST */
    ngx_flag_t                    waitaof;        /* on their disks */
} ngx_http_clockchain_redis_conf_t;


void ngx_http_clockchain_redis_conf_create(
    ngx_http_clockchain_redis_conf_t *rcf);
void ngx_http_clockchain_redis_conf_init(ngx_http_clockchain_redis_conf_t *rcf);
char *ngx_http_clockchain_redis_conf_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_CLOCKCHAIN_REDIS_CONF_H_INCLUDED_ */


/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_REDIS_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_clockchain_module.h"


/* the Lua scripts under src/lua/, in this order */
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_CREATE     0
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_CLAIM      1
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_HEARTBEAT  2
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_COMPLETE   3
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_FAIL       4
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_REQUEUE    5
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_MOMENT     6
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_PUBLISH    7
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_NEIGHBORS  8
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_STATS      9
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_LIST       10
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_WALK       11
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_SEARCH     12
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_BROWSE     13
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_SEED       14
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_EXPORT     15
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_RESTORE    16
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_AGENTS     17
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_PROPOSE    18
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_INGEST     19
#define NGX_HTTP_CLOCKCHAIN_SCRIPT_REVEAL     20
#define NGX_HTTP_CLOCKCHAIN_SCRIPTS           21


typedef struct ngx_http_clockchain_redis_op_s  ngx_http_clockchain_redis_op_t;

/* reply is NULL when Redis could not answer (down, timed out, exiting) */
typedef void (*ngx_http_clockchain_redis_handler_pt)(void *data,
    redisReply *reply);


ngx_int_t ngx_http_clockchain_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_clockchain_redis_conf_t *rcf);
void ngx_http_clockchain_redis_exit_process(ngx_cycle_t *cycle);
ngx_uint_t ngx_http_clockchain_redis_available(void);

ngx_http_clockchain_redis_op_t *ngx_http_clockchain_redis_command(
    ngx_http_clockchain_redis_handler_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen);
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_redis_eval(
    ngx_uint_t script, ngx_http_clockchain_redis_handler_pt handler,
    void *data, int nkeys, int argc, const char **argv,
    const size_t *argvlen);
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_redis_durable_eval(
    ngx_uint_t script, ngx_http_clockchain_redis_handler_pt handler,
    void *data, int nkeys, int argc, const char **argv,
    const size_t *argvlen);
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_redis_durable_command(
    ngx_http_clockchain_redis_handler_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen);
void ngx_http_clockchain_redis_cancel(ngx_http_clockchain_redis_op_t *op);
ngx_uint_t ngx_http_clockchain_redis_script_error(redisReply *reply,
    const char *code);
ngx_int_t ngx_http_clockchain_redis_master(u_char **host, ngx_int_t *port);


#endif /* _NGX_HTTP_CLOCKCHAIN_REDIS_H_INCLUDED_ */

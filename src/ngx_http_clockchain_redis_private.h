
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * The state of a worker's Redis connections, shared by the files that
 * keep it: the command connection (redis.c), Sentinel discovery
 * (redis_sentinel.c) and the create connections of wait=
 * (redis_durable.c).  Nothing else includes this header.
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_REDIS_PRIVATE_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_REDIS_PRIVATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_clockchain_redis.h"


#define NGX_HTTP_CLOCKCHAIN_REDIS_DISCONNECTED  0
#define NGX_HTTP_CLOCKCHAIN_REDIS_CONNECTING    1
#define NGX_HTTP_CLOCKCHAIN_REDIS_CONNECTED     2

#define NGX_HTTP_CLOCKCHAIN_BACKOFF_MIN         50
#define NGX_HTTP_CLOCKCHAIN_BACKOFF_MAX         2000

/* per worker: connections for creates and their WAIT */
#define NGX_HTTP_CLOCKCHAIN_DURABLE_CONNS       8


typedef struct {
    redisAsyncContext                     *ac;
    ngx_http_clockchain_redis_op_t        *op;         /* in flight */
    ngx_event_t                            timeout;
    u_char                                 host[NGX_SOCKADDR_STRLEN];
    ngx_int_t                              port;       /* where it went */
} ngx_http_clockchain_redis_durable_t;


struct ngx_http_clockchain_redis_op_s {
    ngx_http_clockchain_redis_handler_pt   handler;
    void                                  *data;
    ngx_int_t                              script;     /* -1: no script */
    ngx_uint_t                             resent;     /* NOSCRIPT retry */
    ngx_msec_t                             sent;       /* us, monotonic */
    int                                    argc;       /* EVAL's arguments */
    const char                           **argv;
    size_t                                *argvlen;

    /* redis_eval(): numkeys and the script's arguments, already in RESP,
     * with room before them for "EVALSHA <sha1>" (argv is NULL) */
    u_char                                *tail;
    size_t                                 tail_len;

    /* clockchain_redis wait=: its connection, or its place in the queue */
    ngx_http_clockchain_redis_durable_t   *conn;
    ngx_queue_t                            queue;
    ngx_msec_t                             queued;
};


typedef struct {
    redisAsyncContext                     *ac;
    ngx_uint_t                             state;
    ngx_uint_t                             pending;
    ngx_event_t                            reconnect;
    ngx_event_t                            timeout;
    ngx_msec_t                             backoff;
    ngx_http_clockchain_redis_conf_t      *rcf;
    ngx_log_t                             *log;
    char                                   sha[NGX_HTTP_CLOCKCHAIN_SCRIPTS][41];
    ngx_uint_t                             sha_known[NGX_HTTP_CLOCKCHAIN_SCRIPTS];
    ngx_uint_t                             failures;   /* connects in a row */
    ngx_uint_t                             exiting;

    /* with Sentinel: the master it named last */
    redisAsyncContext                     *sentinel;
    ngx_uint_t                             next_sentinel;
    ngx_uint_t                             discovered;
    u_char                                 master[NGX_SOCKADDR_STRLEN];
    ngx_int_t                              master_port;
    ngx_uint_t                             leaving;    /* READONLY seen */

    /* clockchain_redis wait= */
    ngx_http_clockchain_redis_durable_t    durable[
                                            NGX_HTTP_CLOCKCHAIN_DURABLE_CONNS];
    ngx_http_clockchain_redis_durable_t   *current;    /* reply handled */
    ngx_queue_t                            queue;      /* ops for a conn */
    ngx_uint_t                             queued;
    ngx_event_t                            dispatch;
    ngx_event_t                            expire;     /* the queue's head */
} ngx_http_clockchain_redis_t;


extern ngx_http_clockchain_redis_t  ngx_http_clockchain_redis;

/* the Lua scripts, by NGX_HTTP_CLOCKCHAIN_SCRIPT_* */
extern const char  *ngx_http_clockchain_scripts[];


void ngx_http_clockchain_redis_connect(void);
void ngx_http_clockchain_redis_lost(void);
void ngx_http_clockchain_redis_log(ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...);
ngx_msec_t ngx_http_clockchain_redis_now_us(void);
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_redis_op_alloc(
    ngx_uint_t script, ngx_http_clockchain_redis_handler_pt handler,
    void *data, int nkeys, int argc, const char **argv,
    const size_t *argvlen);

/* the create connections of wait= (redis_durable.c) */
void ngx_http_clockchain_redis_durable_init(ngx_cycle_t *cycle);
void ngx_http_clockchain_redis_durable_exit(void);


#endif /* _NGX_HTTP_CLOCKCHAIN_REDIS_PRIVATE_H_INCLUDED_ */

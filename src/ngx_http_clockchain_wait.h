
/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_WAIT_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_WAIT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_clockchain_request.h"


/*
 * Where a GET /api/jobs/{id}?wait=N request is (ctx->wait_state).  "A read"
 * is the HMGET in ctx->op.
 */

/* not waiting, or no longer */
#define NGX_HTTP_CLOCKCHAIN_WAIT_NONE     0
/* until its job changes or its timer fires; a read out is news to it */
#define NGX_HTTP_CLOCKCHAIN_WAIT_ASLEEP   1
/* asleep, and the read out was sent before the subscription came back:
 * the job is read again when it arrives; if it fails, the request answers
 * only when it has had no answer yet (ctx->wait_known), else sleeps on */
#define NGX_HTTP_CLOCKCHAIN_WAIT_STALE    2
/* asleep, and the read out is its own, sent when the subscription came
 * back: if it fails, the request sleeps on and its timer answers */
#define NGX_HTTP_CLOCKCHAIN_WAIT_REREAD   3
/* woken (a change, its timer, nginx leaving) while a read was out, which
 * may predate the change: it answers from a read sent after it */
#define NGX_HTTP_CLOCKCHAIN_WAIT_WOKEN    4

#define ngx_http_clockchain_wait_asleep(ctx)                                  \
    ((ctx)->wait_state >= NGX_HTTP_CLOCKCHAIN_WAIT_ASLEEP                     \
     && (ctx)->wait_state <= NGX_HTTP_CLOCKCHAIN_WAIT_REREAD)


ngx_int_t ngx_http_clockchain_wait_init_process(ngx_cycle_t *cycle);
void ngx_http_clockchain_wait_exit_process(ngx_cycle_t *cycle);

ngx_int_t ngx_http_clockchain_wait_start(ngx_http_clockchain_ctx_t *ctx,
    ngx_msec_t timeout);
void ngx_http_clockchain_wait_stop(ngx_http_clockchain_ctx_t *ctx);

/* in the jobs handler: look the job up and answer (or keep waiting) */
void ngx_http_clockchain_jobs_answer(ngx_http_clockchain_ctx_t *ctx);
/* ... send a read of the job; NGX_OK when it is out */
ngx_int_t ngx_http_clockchain_jobs_read(ngx_http_clockchain_ctx_t *ctx);


#endif /* _NGX_HTTP_CLOCKCHAIN_WAIT_H_INCLUDED_ */

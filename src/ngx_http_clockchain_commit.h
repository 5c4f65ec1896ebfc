
/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_COMMIT_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_COMMIT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_request.h"


/* the most requests, jobs and bytes of arguments of one create.lua call
 * (a request bigger than that goes alone) */
#define NGX_HTTP_CLOCKCHAIN_COMMIT_REQUESTS  128
#define NGX_HTTP_CLOCKCHAIN_COMMIT_JOBS      1000
#define NGX_HTTP_CLOCKCHAIN_COMMIT_BYTES     (512 * 1024)


ngx_int_t ngx_http_clockchain_commit_init_process(ngx_cycle_t *cycle,
    ngx_http_clockchain_main_conf_t *mcf);
void ngx_http_clockchain_commit_exit_process(void);

/*
 * A request whose jobs are drawn (ctx->jobs) goes to Redis with the next
 * call: NGX_OK, and one of the handlers below answers it; NGX_DECLINED
 * when Redis is not connected (nothing was sent).
 */
ngx_int_t ngx_http_clockchain_commit_add(ngx_http_clockchain_ctx_t *ctx);

/* the request is going away: out of the queue, or out of its call */
void ngx_http_clockchain_commit_cancel(ngx_http_clockchain_ctx_t *ctx);


/*
 * Provided by the handler (handler.c), called once for each request still
 * there:
 *
 * result  its own result in the call's reply (NULL when Redis did not
 *         answer, or the error that answered the whole call); NGX_AGAIN
 *         when it waits for the call's WAIT (clockchain_redis wait=), else
 *         it is answered (or queued again, for new ids)
 * waited  the call's WAIT answered reply (NULL: not answered), or could
 *         not be sent (sent 0)
 * unsent  the call could not be sent
 */
ngx_int_t ngx_http_clockchain_create_result(ngx_http_clockchain_ctx_t *ctx,
    redisReply *reply);
void ngx_http_clockchain_create_waited(ngx_http_clockchain_ctx_t *ctx,
    redisReply *reply, ngx_uint_t sent);
void ngx_http_clockchain_create_unsent(ngx_http_clockchain_ctx_t *ctx);


#endif /* _NGX_HTTP_CLOCKCHAIN_COMMIT_H_INCLUDED_ */

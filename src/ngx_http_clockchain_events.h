
/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_EVENTS_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_EVENTS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_request.h"


ngx_int_t ngx_http_clockchain_events_init_process(ngx_cycle_t *cycle,
    ngx_http_clockchain_main_conf_t *mcf);
void ngx_http_clockchain_events_exit_process(ngx_cycle_t *cycle);
ngx_uint_t ngx_http_clockchain_events_subscribed(void);
void ngx_http_clockchain_events_follow(void);
size_t ngx_http_clockchain_events_channel(
    ngx_http_clockchain_redis_conf_t *rcf, u_char *buf, size_t len);

ngx_int_t ngx_http_clockchain_events_wait(ngx_http_clockchain_ctx_t *ctx,
    ngx_msec_t timeout);
void ngx_http_clockchain_events_unwait(ngx_http_clockchain_ctx_t *ctx);

/* in the jobs handler: a waiting request is to answer now */
void ngx_http_clockchain_jobs_wake(ngx_http_clockchain_ctx_t *ctx);
/* ... or to read its job again, and wait on */
void ngx_http_clockchain_jobs_recheck(ngx_http_clockchain_ctx_t *ctx);


#endif /* _NGX_HTTP_CLOCKCHAIN_EVENTS_H_INCLUDED_ */

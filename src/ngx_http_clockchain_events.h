
/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_EVENTS_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_EVENTS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_clockchain_module.h"


/* a job changed (its id); the subscription is (back) up */
typedef void (*ngx_http_clockchain_events_change_pt)(const u_char *id);
typedef void (*ngx_http_clockchain_events_resubscribed_pt)(void);
/* an agent token was revoked: the SHA-256 hex of the token, as published */
typedef void (*ngx_http_clockchain_events_revoked_pt)(const u_char *hash,
    size_t len);


ngx_int_t ngx_http_clockchain_events_init_process(ngx_cycle_t *cycle,
    ngx_http_clockchain_main_conf_t *mcf);
void ngx_http_clockchain_events_exit_process(ngx_cycle_t *cycle);
ngx_uint_t ngx_http_clockchain_events_subscribed(void);
void ngx_http_clockchain_events_follow(void);
void ngx_http_clockchain_events_on_change(
    ngx_http_clockchain_events_change_pt changed,
    ngx_http_clockchain_events_resubscribed_pt resubscribed);
void ngx_http_clockchain_events_on_revoke(
    ngx_http_clockchain_events_revoked_pt revoked);


#endif /* _NGX_HTTP_CLOCKCHAIN_EVENTS_H_INCLUDED_ */

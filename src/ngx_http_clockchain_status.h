
/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_STATUS_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_STATUS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_clockchain_module.h"


/* the last failures fail.lua keeps in Redis (its LTRIM), newest first */
#define NGX_HTTP_CLOCKCHAIN_FAILURES  50


/* the runner's tick, while it holds the role: what the status page shows */
void ngx_http_clockchain_status_tick(ngx_http_clockchain_main_conf_t *mcf,
    ngx_uint_t generation, ngx_msec_t pause_until, ngx_uint_t failures);


#endif /* _NGX_HTTP_CLOCKCHAIN_STATUS_H_INCLUDED_ */

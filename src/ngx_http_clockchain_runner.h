
/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_RUNNER_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_RUNNER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_clockchain_module.h"


ngx_int_t ngx_http_clockchain_runner_init_process(ngx_cycle_t *cycle,
    ngx_http_clockchain_main_conf_t *mcf);
void ngx_http_clockchain_runner_exit_process(ngx_cycle_t *cycle);


#endif /* _NGX_HTTP_CLOCKCHAIN_RUNNER_H_INCLUDED_ */


/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_REDIS_ADAPTER_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_REDIS_ADAPTER_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>


ngx_int_t ngx_http_clockchain_redis_attach(redisAsyncContext *ac,
    ngx_log_t *log);

/* data is ac->ev.data: the nginx connection of an attached context */
void ngx_http_clockchain_redis_add_write(void *data);


#endif /* _NGX_HTTP_CLOCKCHAIN_REDIS_ADAPTER_H_INCLUDED_ */


/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_REDIS_SENTINEL_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_REDIS_SENTINEL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_clockchain_redis.h"


/* for the command connection: where the master is, then whether it is */
void ngx_http_clockchain_redis_sentinel_discover(void);
void ngx_http_clockchain_redis_sentinel_role_reply(void *data,
    redisReply *reply);


#endif /* _NGX_HTTP_CLOCKCHAIN_REDIS_SENTINEL_H_INCLUDED_ */

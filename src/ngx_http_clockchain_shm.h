
/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_SHM_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_SHM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_clockchain_job.h"


ngx_shm_zone_t *ngx_http_clockchain_shm_add(ngx_conf_t *cf, ngx_str_t *name,
    size_t size);
ngx_int_t ngx_http_clockchain_shm_get(ngx_shm_zone_t *shm_zone,
    const u_char *id, ngx_pool_t *pool, ngx_http_clockchain_job_t *job,
    ngx_msec_t *age);
void ngx_http_clockchain_shm_put(ngx_shm_zone_t *shm_zone,
    const ngx_http_clockchain_job_t *job);
void ngx_http_clockchain_shm_delete(ngx_shm_zone_t *shm_zone,
    const u_char *id);
ngx_int_t ngx_http_clockchain_shm_runner_lease(ngx_shm_zone_t *shm_zone,
    ngx_pid_t pid, ngx_msec_t ttl, ngx_uint_t *generation);
void ngx_http_clockchain_shm_runner_release(ngx_shm_zone_t *shm_zone,
    ngx_pid_t pid);


#endif /* _NGX_HTTP_CLOCKCHAIN_SHM_H_INCLUDED_ */

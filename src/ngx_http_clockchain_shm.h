
/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_SHM_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_SHM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_clockchain_job.h"
#include "ngx_http_clockchain_stats.h"


typedef struct {
    ngx_msec_t                   age;        /* since it was cached */
    uint64_t                     version;
    ngx_uint_t                   fresh;      /* cached in this epoch */
} ngx_http_clockchain_shm_meta_t;


/* a public moment's answer, as the zone keeps it */
#define NGX_HTTP_CLOCKCHAIN_ETAG_LEN  16     /* hex digits */

typedef struct {
    ngx_uint_t                   status;     /* 200 or 404 */
    u_char                       etag[NGX_HTTP_CLOCKCHAIN_ETAG_LEN];
    ngx_str_t                    body;       /* a 200's, unless known */
    /* a browse answer (a key not starting with "/"): its graph version */
    uint64_t                     version;
} ngx_http_clockchain_shm_moment_t;


ngx_shm_zone_t *ngx_http_clockchain_shm_add(ngx_conf_t *cf, ngx_str_t *name,
    size_t size);
ngx_int_t ngx_http_clockchain_shm_get(ngx_shm_zone_t *shm_zone,
    const u_char *id, ngx_pool_t *pool, ngx_uint_t *status,
    ngx_str_t *answer, ngx_http_clockchain_shm_meta_t *meta);
void ngx_http_clockchain_shm_put(ngx_shm_zone_t *shm_zone,
    const ngx_http_clockchain_job_t *job, uint64_t version, time_t expire,
    uint32_t epoch);
void ngx_http_clockchain_shm_mark(ngx_shm_zone_t *shm_zone, const u_char *id,
    uint64_t version);
void ngx_http_clockchain_shm_mark_final(ngx_shm_zone_t *shm_zone,
    const u_char *id, ngx_uint_t status, uint64_t version);
uint32_t ngx_http_clockchain_shm_epoch(ngx_shm_zone_t *shm_zone);
void ngx_http_clockchain_shm_new_epoch(ngx_shm_zone_t *shm_zone);
ngx_http_clockchain_stats_t *ngx_http_clockchain_shm_stats(
    ngx_shm_zone_t *shm_zone);
void ngx_http_clockchain_shm_usage(ngx_shm_zone_t *shm_zone, ngx_uint_t *jobs,
    ngx_uint_t *pages, ngx_uint_t *free, ngx_pid_t *runner);
ngx_int_t ngx_http_clockchain_shm_runner_lease(ngx_shm_zone_t *shm_zone,
    ngx_pid_t pid, ngx_msec_t ttl, ngx_uint_t *generation);
void ngx_http_clockchain_shm_runner_release(ngx_shm_zone_t *shm_zone,
    ngx_pid_t pid);

ngx_int_t ngx_http_clockchain_shm_moment_get(ngx_shm_zone_t *shm_zone,
    ngx_str_t *path, ngx_pool_t *pool, const u_char *known,
    ngx_uint_t nknown, ngx_http_clockchain_shm_moment_t *m);
uint64_t ngx_http_clockchain_shm_moment_seq(ngx_shm_zone_t *shm_zone);
void ngx_http_clockchain_shm_moment_put(ngx_shm_zone_t *shm_zone,
    ngx_str_t *path, ngx_http_clockchain_shm_moment_t *m, uint64_t seq);
void ngx_http_clockchain_shm_moment_mark(ngx_shm_zone_t *shm_zone,
    ngx_str_t *path);
void ngx_http_clockchain_shm_moment_usage(ngx_shm_zone_t *shm_zone,
    ngx_uint_t *moments, size_t *bytes);


#endif /* _NGX_HTTP_CLOCKCHAIN_SHM_H_INCLUDED_ */

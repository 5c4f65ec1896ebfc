
/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_MODULE_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_clockchain_job.h"
#include "ngx_http_clockchain_redis_conf.h"


#define NGX_HTTP_CLOCKCHAIN_RETRY_AFTER   "2"

/* in a handler directive's offset: the request body the handler reads */
#define NGX_HTTP_CLOCKCHAIN_READS_BODY     1   /* clockchain_max_body_size */
#define NGX_HTTP_CLOCKCHAIN_READS_PUBLISH  2   /* a publish body */

#define NGX_HTTP_CLOCKCHAIN_PUBLISH_MAX    4096


/* what /metrics shows: counters and histograms in the shared zone */

#define NGX_HTTP_CLOCKCHAIN_RETRY_TIMEOUT      0
#define NGX_HTTP_CLOCKCHAIN_RETRY_CONNECTION   1
#define NGX_HTTP_CLOCKCHAIN_RETRY_STATUS       2
#define NGX_HTTP_CLOCKCHAIN_RETRY_PAUSED       3
#define NGX_HTTP_CLOCKCHAIN_RETRY_REASONS      4

#define NGX_HTTP_CLOCKCHAIN_FLASH_BUCKETS      10
#define NGX_HTTP_CLOCKCHAIN_REDIS_BUCKETS      12

typedef struct {
    ngx_atomic_t                  created;
    ngx_atomic_t                  completed;
    ngx_atomic_t                  failed;
    ngx_atomic_t                  stalled;        /* expired leases */
    ngx_atomic_t                  retried[NGX_HTTP_CLOCKCHAIN_RETRY_REASONS];
    ngx_atomic_t                  pending;        /* from Redis */
    ngx_atomic_t                  processing;     /* from Redis */
    ngx_atomic_t                  queue_updated;  /* s, 0: never */
    ngx_atomic_t                  in_flight;
    ngx_atomic_t                  flash[NGX_HTTP_CLOCKCHAIN_FLASH_BUCKETS + 1];
    ngx_atomic_t                  flash_ms;
    ngx_atomic_t                  redis[NGX_HTTP_CLOCKCHAIN_REDIS_BUCKETS + 1];
    ngx_atomic_t                  redis_us;
} ngx_http_clockchain_stats_t;


typedef struct {
    ngx_shm_zone_t               *shm_zone;

    ngx_http_clockchain_redis_conf_t  redis;     /* clockchain_redis */

    /* the runner: on when flash_url is set */
    ngx_str_t                     flash_url;
    ngx_str_t                     flash_key;
    ngx_msec_t                    flash_timeout;
    ngx_uint_t                    flash_max_calls;
    size_t                        flash_max_response;
    size_t                        flash_buffers;
    ngx_uint_t                    edges_max;
    ngx_msec_t                    job_lease;
    ngx_uint_t                    job_max_stalls;
    ngx_uint_t                    flash_attempts;
    ngx_array_t                  *flash_retry_status;  /* of ngx_uint_t */
    ngx_msec_t                    flash_backoff;
    ngx_msec_t                    flash_backoff_max;
    ngx_uint_t                    breaker_failures;
    ngx_msec_t                    breaker_pause;
    ngx_msec_t                    drain_timeout;
    time_t                        keep_completed;    /* s */
    time_t                        keep_failed;       /* s */

    ngx_uint_t                    max_pending;

    ngx_uint_t                    enabled;        /* a handler is in use */
} ngx_http_clockchain_main_conf_t;


typedef struct {
    ngx_array_t                  *service_keys;   /* of ngx_str_t */
    ngx_array_t                  *admin_keys;     /* of ngx_str_t */
    size_t                        max_body_size;
    ngx_uint_t                    bulk_max;
    ngx_msec_t                    wait_max;

    /* core's conf of a location whose handler reads a body, else NULL */
    ngx_http_core_loc_conf_t     *body_core;
    ngx_uint_t                    body_reader;    /* READS_BODY, ... */
} ngx_http_clockchain_loc_conf_t;


extern ngx_module_t  ngx_http_clockchain_module;

/* this worker's view of the zone's counters; NULL before init_process */
extern ngx_http_clockchain_stats_t  *ngx_http_clockchain_stats;


ngx_int_t ngx_http_clockchain_generate_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_bulk_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_jobs_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_moments_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_metrics_handler(ngx_http_request_t *r);

void ngx_http_clockchain_count_flash(ngx_msec_t ms);
void ngx_http_clockchain_count_redis(ngx_msec_t us);
ngx_int_t ngx_http_clockchain_add_variables(ngx_conf_t *cf);

/* a file named in a directive, read whole into the conf pool */
ngx_int_t ngx_http_clockchain_read_conf_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *content);


#endif /* _NGX_HTTP_CLOCKCHAIN_MODULE_H_INCLUDED_ */


/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_STATS_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_STATS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* what /metrics shows: counters and histograms in the shared zone */

#define NGX_HTTP_CLOCKCHAIN_RETRY_TIMEOUT      0
#define NGX_HTTP_CLOCKCHAIN_RETRY_CONNECTION   1
#define NGX_HTTP_CLOCKCHAIN_RETRY_STATUS       2
#define NGX_HTTP_CLOCKCHAIN_RETRY_PAUSED       3
#define NGX_HTTP_CLOCKCHAIN_RETRY_REASONS      4

#define NGX_HTTP_CLOCKCHAIN_FLASH_BUCKETS      10
#define NGX_HTTP_CLOCKCHAIN_REDIS_BUCKETS      12

/* the status page's history (status.c): 90 samples, one each 10 s */
#define NGX_HTTP_CLOCKCHAIN_SAMPLES            90
#define NGX_HTTP_CLOCKCHAIN_SAMPLE_EVERY       10

typedef struct {
    ngx_atomic_t                  at;             /* s, 0: not taken */
    ngx_atomic_t                  pending;
    ngx_atomic_t                  processing;
    ngx_atomic_t                  created;
    ngx_atomic_t                  completed;
    ngx_atomic_t                  failed;
} ngx_http_clockchain_sample_t;

typedef struct {
    ngx_atomic_t                  created;
    ngx_atomic_t                  completed;
    ngx_atomic_t                  failed;
    ngx_atomic_t                  stalled;        /* expired leases */
    ngx_atomic_t                  retried[NGX_HTTP_CLOCKCHAIN_RETRY_REASONS];
    ngx_atomic_t                  pending;        /* from Redis */
    ngx_atomic_t                  processing;     /* from Redis */
    ngx_atomic_t                  queue_updated;  /* s, 0: never */

    /* the status page's: written by the runner's tick, under the lock */
    ngx_http_clockchain_sample_t  samples[NGX_HTTP_CLOCKCHAIN_SAMPLES];
    ngx_atomic_t                  sample_next;    /* samples taken */
    ngx_atomic_t                  runner_seen;    /* ms, its last tick */
    ngx_atomic_t                  runner_generation;
    ngx_atomic_t                  breaker_until;  /* ms since the epoch */
    ngx_atomic_t                  breaker_failures;    /* in a row */
    ngx_atomic_t                  zone_evictions;
    ngx_atomic_t                  waiters;        /* ?wait=N, all workers */

    ngx_atomic_t                  in_flight;
    ngx_atomic_t                  flash[NGX_HTTP_CLOCKCHAIN_FLASH_BUCKETS + 1];
    ngx_atomic_t                  flash_ms;
    ngx_atomic_t                  redis[NGX_HTTP_CLOCKCHAIN_REDIS_BUCKETS + 1];
    ngx_atomic_t                  redis_us;
    ngx_atomic_t                  moment_hits;    /* public, from the zone */
    ngx_atomic_t                  moment_misses;  /* public, from Redis */
    ngx_atomic_t                  moment_events;  /* ":moments" messages */
    ngx_atomic_t                  graph_cache_hits;    /* graph reads, */
    ngx_atomic_t                  graph_cache_misses;  /* zone or Redis */
    ngx_atomic_t                  agent_revocations;   /* heard, revoked */
} ngx_http_clockchain_stats_t;


/*
 * This worker's view of the zone's counters: a process-local dummy until
 * init_process points it at the zone's, so nobody checks it for NULL (as
 * nginx's ngx_stat_* counters do).
 */
extern ngx_http_clockchain_stats_t  *ngx_http_clockchain_stats;

/* upper bounds of the histograms' buckets: Flash in ms, Redis in us */
extern const ngx_msec_t  ngx_http_clockchain_stats_flash_bounds[];
extern const ngx_msec_t  ngx_http_clockchain_stats_redis_bounds[];

/* the names of the NGX_HTTP_CLOCKCHAIN_RETRY_* reasons */
extern const char  *ngx_http_clockchain_stats_reasons[];


#define ngx_http_clockchain_stat_add(counter, n)                              \
    (void) ngx_atomic_fetch_add(&ngx_http_clockchain_stats->counter, n)

#define ngx_http_clockchain_stat_set(gauge, value)                            \
    ngx_http_clockchain_stats->gauge = (value)

#define ngx_http_clockchain_stats_retried(reason)                             \
    ngx_http_clockchain_stat_add(retried[reason], 1)


void ngx_http_clockchain_stats_flash(ngx_msec_t ms);
void ngx_http_clockchain_stats_redis(ngx_msec_t us);


#endif /* _NGX_HTTP_CLOCKCHAIN_STATS_H_INCLUDED_ */


/*
 * Copyright (C) The Clockchain authors
 */


/*
 * The module's counters and histograms, kept in the shared zone so that
 * every worker counts into the same ones; /metrics (metrics.c) reads them.
 * Nothing here knows HTTP: the store, the runner and Flash count through
 * this file alone.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_clockchain_stats.h"


static ngx_http_clockchain_stats_t   ngx_http_clockchain_stats0;
ngx_http_clockchain_stats_t         *ngx_http_clockchain_stats =
                                                  &ngx_http_clockchain_stats0;


const ngx_msec_t  ngx_http_clockchain_stats_flash_bounds[] = {
    1000, 5000, 10000, 30000, 60000, 90000, 120000, 180000, 300000, 480000
};

const ngx_msec_t  ngx_http_clockchain_stats_redis_bounds[] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
    1000000
};

const char  *ngx_http_clockchain_stats_reasons[] = {
    "timeout", "connection", "status", "paused"
};


void
ngx_http_clockchain_stats_flash(ngx_msec_t ms)
{
    ngx_uint_t                    i;
    ngx_http_clockchain_stats_t  *st = ngx_http_clockchain_stats;

    for (i = 0; i < NGX_HTTP_CLOCKCHAIN_FLASH_BUCKETS; i++) {
        if (ms <= ngx_http_clockchain_stats_flash_bounds[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&st->flash[i], 1);
    (void) ngx_atomic_fetch_add(&st->flash_ms, ms);
}


void
ngx_http_clockchain_stats_redis(ngx_msec_t us)
{
    ngx_uint_t                    i;
    ngx_http_clockchain_stats_t  *st = ngx_http_clockchain_stats;

    for (i = 0; i < NGX_HTTP_CLOCKCHAIN_REDIS_BUCKETS; i++) {
        if (us <= ngx_http_clockchain_stats_redis_bounds[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&st->redis[i], 1);
    (void) ngx_atomic_fetch_add(&st->redis_us, us);
}


/*
 * Copyright (C) The Clockchain authors
 */


/*
 * GET {location}: the module's counters, straight from the shared zone
 * (no Redis on this path), as JSON or in Prometheus' text format; and the
 * variables that put a request's job in the access log.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_stats.h"
#include "ngx_http_clockchain_shm.h"
#include "ngx_http_clockchain_request.h"


#define NGX_HTTP_CLOCKCHAIN_METRICS_MAX  8192


typedef struct {
    u_char                       *pos;
    u_char                       *last;
    ngx_uint_t                    prometheus;
    ngx_uint_t                    first;
} ngx_http_clockchain_out_t;


static ngx_uint_t ngx_http_clockchain_wants_prometheus(ngx_http_request_t *r);
static void ngx_http_clockchain_metric(ngx_http_clockchain_out_t *o,
    const char *name, const char *type, const char *help, const char *json,
    ngx_atomic_uint_t value);
static void ngx_http_clockchain_histogram(ngx_http_clockchain_out_t *o,
    const char *name, const char *help, const char *json,
    ngx_atomic_t *buckets, const ngx_msec_t *bounds, ngx_uint_t n,
    ngx_atomic_uint_t sum, ngx_uint_t scale);
static ngx_int_t ngx_http_clockchain_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_clockchain_vars[] = {

    { ngx_string("clockchain_job_id"), NULL,
      ngx_http_clockchain_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("clockchain_job_status"), NULL,
      ngx_http_clockchain_variable, 1, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("clockchain_user"), NULL,
      ngx_http_clockchain_variable, 2, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_clockchain_metrics_handler(ngx_http_request_t *r)
{
    u_char                           *buf, *p;
    ngx_int_t                         rc;
    ngx_pid_t                         runner;
    size_t                            mbytes;
    ngx_uint_t                        i, jobs, pages, free, moments;
    ngx_http_clockchain_out_t         o;
    ngx_http_clockchain_stats_t      *st;
    ngx_http_clockchain_main_conf_t  *mcf;
    u_char                            name[64];

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_clockchain_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);
    st = ngx_http_clockchain_shm_stats(mcf->shm_zone);

    buf = ngx_pnalloc(r->pool, NGX_HTTP_CLOCKCHAIN_METRICS_MAX);
    if (buf == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    o.pos = buf;
    o.last = buf + NGX_HTTP_CLOCKCHAIN_METRICS_MAX;
    o.prometheus = ngx_http_clockchain_wants_prometheus(r);
    o.first = 1;

    if (!o.prometheus) {
        *o.pos++ = '{';
    }

    ngx_http_clockchain_metric(&o, "clockchain_jobs_created_total", "counter",
        "Jobs created through this nginx.", "jobs_created", st->created);
    ngx_http_clockchain_metric(&o, "clockchain_jobs_completed_total",
        "counter", "Jobs completed by this nginx's runner.",
        "jobs_completed", st->completed);
    ngx_http_clockchain_metric(&o, "clockchain_jobs_failed_total", "counter",
        "Jobs failed by this nginx's runner.", "jobs_failed", st->failed);
    ngx_http_clockchain_metric(&o, "clockchain_jobs_stalled_total", "counter",
        "Expired job leases (a runner died or hung) that this nginx's runner "
        "put back in the queue or failed past the stall limit.",
        "jobs_stalled", st->stalled);

    for (i = 0; i < NGX_HTTP_CLOCKCHAIN_RETRY_REASONS; i++) {
        if (o.prometheus) {
            if (i == 0) {
                o.pos = ngx_slprintf(o.pos, o.last,
                    "# HELP clockchain_jobs_retried_total Flash attempts "
                    "that were retried, by reason.\n"
                    "# TYPE clockchain_jobs_retried_total counter\n");
            }

            o.pos = ngx_slprintf(o.pos, o.last,
                                 "clockchain_jobs_retried_total"
                                 "{reason=\"%s\"} %uA\n",
                                 ngx_http_clockchain_stats_reasons[i],
                                 st->retried[i]);

        } else {
            ngx_sprintf(name, "jobs_retried_%s%Z",
                        ngx_http_clockchain_stats_reasons[i]);
            ngx_http_clockchain_metric(&o, NULL, NULL, NULL, (char *) name,
                                       st->retried[i]);
        }
    }

    ngx_http_clockchain_metric(&o, "clockchain_jobs_pending", "gauge",
        "Jobs waiting in the Redis queue (refreshed each second by a "
        "runner).", "jobs_pending", st->pending);
    ngx_http_clockchain_metric(&o, "clockchain_jobs_processing", "gauge",
        "Jobs claimed by a runner of the fleet (refreshed each second by a "
        "runner).", "jobs_processing", st->processing);
    ngx_http_clockchain_metric(&o, "clockchain_flash_calls_in_flight",
        "gauge", "Flash calls this nginx has in flight.",
        "flash_calls_in_flight", st->in_flight);

    ngx_http_clockchain_histogram(&o, "clockchain_flash_call_duration_seconds",
        "How long Flash calls took.", "flash_call_duration_seconds",
        st->flash, ngx_http_clockchain_stats_flash_bounds,
        NGX_HTTP_CLOCKCHAIN_FLASH_BUCKETS, st->flash_ms, 1000);

    ngx_http_clockchain_histogram(&o,
        "clockchain_redis_command_duration_seconds",
        "Round trips of Redis commands, sent to answered.",
        "redis_command_duration_seconds",
        st->redis, ngx_http_clockchain_stats_redis_bounds,
        NGX_HTTP_CLOCKCHAIN_REDIS_BUCKETS, st->redis_us, 1000000);

    ngx_http_clockchain_shm_usage(mcf->shm_zone, &jobs, &pages, &free,
                                  &runner);

    ngx_http_clockchain_metric(&o, "clockchain_zone_jobs", "gauge",
        "Jobs held in the shared zone.", "zone_jobs", jobs);
    ngx_http_clockchain_metric(&o, "clockchain_zone_pages", "gauge",
        "Pages of the shared zone.", "zone_pages", pages);
    ngx_http_clockchain_metric(&o, "clockchain_zone_pages_free", "gauge",
        "Free pages of the shared zone.", "zone_pages_free", free);
    ngx_http_clockchain_metric(&o, "clockchain_zone_evictions_total",
        "counter", "Entries the full zone gave up for room (jobs and public "
        "moments' answers, least recently used first).", "zone_evictions",
        st->zone_evictions);
    ngx_http_clockchain_metric(&o, "clockchain_longpoll_waiters", "gauge",
        "GET ?wait=N requests waiting, all workers.", "longpoll_waiters",
        st->waiters);
    ngx_http_clockchain_shm_moment_usage(mcf->shm_zone, &moments, &mbytes);

    ngx_http_clockchain_metric(&o, "clockchain_zone_moments", "gauge",
        "Public moments' answers held in the shared zone.", "zone_moments",
        moments);
    ngx_http_clockchain_metric(&o, "clockchain_zone_moments_bytes", "gauge",
        "Bytes those answers take (at most half the zone).",
        "zone_moments_bytes", mbytes);
    ngx_http_clockchain_metric(&o, "clockchain_moments_cache_hits_total",
        "counter", "Public moment reads answered from the shared zone.",
        "moments_cache_hits", st->moment_hits);
    ngx_http_clockchain_metric(&o, "clockchain_moments_cache_misses_total",
        "counter", "Public moment reads that asked Redis.",
        "moments_cache_misses", st->moment_misses);
    ngx_http_clockchain_metric(&o, "clockchain_moments_events_total",
        "counter", "Changes to public moments heard on the events channel, "
        "by each worker.", "moments_events", st->moment_events);
    ngx_http_clockchain_metric(&o, "clockchain_graph_cache_hits_total",
        "counter", "Browse, search, list and neighbour reads answered from "
        "the shared zone (at the graph's version).", "graph_cache_hits",
        st->graph_cache_hits);
    ngx_http_clockchain_metric(&o, "clockchain_graph_cache_misses_total",
        "counter", "Browse, search, list and neighbour reads that read the "
        "graph in Redis.", "graph_cache_misses", st->graph_cache_misses);
    ngx_http_clockchain_metric(&o, "clockchain_agent_revocations_total",
        "counter", "Agent tokens revoked here or heard revoked on the "
        "events channel, by each worker (each drops its cached tokens).",
        "agent_revocations", st->agent_revocations);
    ngx_http_clockchain_metric(&o, "clockchain_runner_pid", "gauge",
        "Process id of the worker that holds the runner role (0: none).",
        "runner_pid", (ngx_atomic_uint_t) runner);

    if (!o.prometheus) {
        if (o.pos < o.last) {
            *o.pos++ = '}';
        }
    }

    if (o.pos == o.last) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = o.pos;

    if (o.prometheus) {
        return ngx_http_clockchain_send_type(r, NGX_HTTP_OK, buf, p - buf,
                               "text/plain; version=0.0.4; charset=utf-8");
    }

    return ngx_http_clockchain_send(r, NGX_HTTP_OK, buf, p - buf);
}


static ngx_uint_t
ngx_http_clockchain_wants_prometheus(ngx_http_request_t *r)
{
    ngx_str_t  value;

    if (ngx_http_arg(r, (u_char *) "format", 6, &value) == NGX_OK) {
        return value.len == 10
               && ngx_strncmp(value.data, "prometheus", 10) == 0;
    }

    if (ngx_http_clockchain_header(r, "Accept", &value) >= 1) {
        return ngx_strlcasestrn(value.data, value.data + value.len,
                                (u_char *) "text/plain", 10 - 1)
               != NULL;
    }

    return 0;
}


static void
ngx_http_clockchain_metric(ngx_http_clockchain_out_t *o, const char *name,
    const char *type, const char *help, const char *json,
    ngx_atomic_uint_t value)
{
    if (o->prometheus) {
        o->pos = ngx_slprintf(o->pos, o->last,
                              "# HELP %s %s\n# TYPE %s %s\n%s %uA\n",
                              name, help, name, type, name, value);
        return;
    }

    o->pos = ngx_slprintf(o->pos, o->last, "%s\"%s\":%uA",
                          o->first ? "" : ",", json, value);
    o->first = 0;
}


static void
ngx_http_clockchain_histogram(ngx_http_clockchain_out_t *o, const char *name,
    const char *help, const char *json, ngx_atomic_t *buckets,
    const ngx_msec_t *bounds, ngx_uint_t n, ngx_atomic_uint_t sum,
    ngx_uint_t scale)
{
    ngx_uint_t         i;
    ngx_atomic_uint_t  count;

    if (o->prometheus) {
        o->pos = ngx_slprintf(o->pos, o->last, "# HELP %s %s\n"
                              "# TYPE %s histogram\n", name, help, name);
    } else {
        o->pos = ngx_slprintf(o->pos, o->last, "%s\"%s\":{\"buckets\":{",
                              o->first ? "" : ",", json);
        o->first = 0;
    }

    /* cumulative, as both formats count them */

    count = 0;

    for (i = 0; i <= n; i++) {
        count += buckets[i];

        if (o->prometheus) {
            if (i < n) {
                o->pos = ngx_slprintf(o->pos, o->last,
                                      "%s_bucket{le=\"%.6f\"} %uA\n", name,
                                      (double) bounds[i] / scale, count);
            } else {
                o->pos = ngx_slprintf(o->pos, o->last,
                                      "%s_bucket{le=\"+Inf\"} %uA\n", name,
                                      count);
            }

            continue;
        }

        if (i < n) {
            o->pos = ngx_slprintf(o->pos, o->last, "%s\"%.6f\":%uA",
                                  i ? "," : "", (double) bounds[i] / scale,
                                  count);
        } else {
            o->pos = ngx_slprintf(o->pos, o->last, ",\"+Inf\":%uA}", count);
        }
    }

    if (o->prometheus) {
        o->pos = ngx_slprintf(o->pos, o->last, "%s_sum %.6f\n%s_count %uA\n",
                              name, (double) sum / scale, name, count);
    } else {
        o->pos = ngx_slprintf(o->pos, o->last, ",\"sum\":%.6f,\"count\":%uA}",
                              (double) sum / scale, count);
    }
}


ngx_int_t
ngx_http_clockchain_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_clockchain_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_clockchain_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                  *s;
    ngx_http_clockchain_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (data == 0) ? &ctx->log_id
        : (data == 1) ? &ctx->log_status
        : &ctx->created_by;

    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}

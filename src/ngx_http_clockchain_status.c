
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * GET {location}: a live status page for an operator's browser, and what
 * it shows as JSON beside it (?format=json).  The page, its CSS, script
 * and icon are src/status/, compiled in by config; the script polls the
 * JSON.  The JSON is the zone's counters (as /metrics), the queue's last
 * 15 minutes (a ring the runner's tick fills: no timer of this file's own,
 * nothing done while nobody asks) and the last failures, which fail.lua
 * keeps in Redis; with Redis away, or silent for
 * NGX_HTTP_CLOCKCHAIN_STATUS_REDIS_WAIT, it is still a 200 that says so.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_stats.h"
#include "ngx_http_clockchain_shm.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_request.h"
#include "ngx_http_clockchain_store.h"
#include "ngx_http_clockchain_status.h"
#include "ngx_http_clockchain_version.h"
#include "ngx_http_clockchain_status_page.h"
#include "ngx_http_clockchain_scene.h"


/* the page's own script and style only, from this location; no framing */
#define NGX_HTTP_CLOCKCHAIN_STATUS_CSP                                        \
    "default-src 'none'; script-src 'self'; style-src 'self'; "               \
    "connect-src 'self'; img-src 'self'; base-uri 'none'; "                   \
    "form-action 'none'; frame-ancestors 'none'"

/* the runner ticks every 100 ms: silent for this long, it is not there */
#define NGX_HTTP_CLOCKCHAIN_STATUS_STALE  3000

/*
 * How long the JSON waits for the failures: well within the page's 5 s
 * fetch, which a hung Redis (clockchain_redis timeout=, 5 s by default)
 * would otherwise outlast, and the page blame itself for Redis.
 */
#define NGX_HTTP_CLOCKCHAIN_STATUS_REDIS_WAIT       2000
#define NGX_HTTP_CLOCKCHAIN_STATUS_REDIS_WAIT_TEXT  "2 s"


static ngx_int_t ngx_http_clockchain_status_file(ngx_http_request_t *r,
    const char *data, size_t len, const char *type);
static ngx_int_t ngx_http_clockchain_status_headers(ngx_http_request_t *r);
static ngx_int_t ngx_http_clockchain_status_read(ngx_http_request_t *r);
static void ngx_http_clockchain_status_done(void *data, redisReply *reply);
static void ngx_http_clockchain_status_late(ngx_event_t *ev);
static ngx_int_t ngx_http_clockchain_status_send(ngx_http_request_t *r,
    redisReply *reply, const char *why);
static json_t *ngx_http_clockchain_status_json(ngx_http_request_t *r,
    redisReply *reply, const char *why);
static json_t *ngx_http_clockchain_status_history(
    ngx_http_clockchain_main_conf_t *mcf);
static json_t *ngx_http_clockchain_status_flash(
    ngx_http_clockchain_stats_t *st);
static json_t *ngx_http_clockchain_status_redis(
    ngx_http_clockchain_main_conf_t *mcf, redisReply *reply, const char *why);
static json_t *ngx_http_clockchain_status_failures(redisReply *reply);
static ngx_msec_t ngx_http_clockchain_status_now(void);


ngx_int_t
ngx_http_clockchain_status_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;
    ngx_str_t  format;

    if (ngx_http_clockchain_status_headers(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_clockchain_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_arg(r, (u_char *) "format", 6, &format) != NGX_OK) {
        return ngx_http_clockchain_status_file(r,
                                   ngx_http_clockchain_status_html,
                                   sizeof(ngx_http_clockchain_status_html) - 1,
                                   "text/html; charset=utf-8");
    }

    if (format.len == 4 && ngx_strncmp(format.data, "json", 4) == 0) {
        return ngx_http_clockchain_status_read(r);
    }

    if (format.len == 2 && ngx_strncmp(format.data, "js", 2) == 0) {
        return ngx_http_clockchain_status_file(r,
                                   ngx_http_clockchain_status_js,
                                   sizeof(ngx_http_clockchain_status_js) - 1,
                                   "text/javascript; charset=utf-8");
    }

    if (format.len == 3 && ngx_strncmp(format.data, "css", 3) == 0) {
        return ngx_http_clockchain_status_file(r,
                                   ngx_http_clockchain_status_css,
                                   sizeof(ngx_http_clockchain_status_css) - 1,
                                   "text/css; charset=utf-8");
    }

    if (format.len == 4 && ngx_strncmp(format.data, "icon", 4) == 0) {
        return ngx_http_clockchain_status_file(r,
                                   ngx_http_clockchain_status_svg,
                                   sizeof(ngx_http_clockchain_status_svg) - 1,
                                   "image/svg+xml");
    }

    return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                                     "format must be json, js, css or icon");
}


/* on every answer of the location, errors included */

static ngx_int_t
ngx_http_clockchain_status_headers(ngx_http_request_t *r)
{
    if (ngx_http_clockchain_add_header(r, "Content-Security-Policy",
                                       NGX_HTTP_CLOCKCHAIN_STATUS_CSP)
        != NGX_OK
        || ngx_http_clockchain_add_header(r, "X-Content-Type-Options",
                                          "nosniff")
           != NGX_OK
        || ngx_http_clockchain_add_header(r, "Referrer-Policy",
                                          "no-referrer")
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the same for the life of the build: a browser asks with If-None-Match */

static ngx_int_t
ngx_http_clockchain_status_file(ngx_http_request_t *r, const char *data,
    size_t len, const char *type)
{
    if (ngx_http_clockchain_etag(r,
                                 (u_char *) NGX_HTTP_CLOCKCHAIN_STATUS_ETAG,
                                 sizeof(NGX_HTTP_CLOCKCHAIN_STATUS_ETAG) - 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_clockchain_send_body(r, NGX_HTTP_OK, (u_char *) data, len,
                                         type, "no-cache");
}


/*
 * The last failures from Redis (one LRANGE), then the answer.  Not queued
 * on a connection still being made, which can take the whole timeout; and
 * not waited for longer than NGX_HTTP_CLOCKCHAIN_STATUS_REDIS_WAIT, on the
 * request's own timer (ctx's, which its cleanup deletes).
 */

static ngx_int_t
ngx_http_clockchain_status_read(ngx_http_request_t *r)
{
    u_char                            key[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char                            last[NGX_INT_T_LEN];
    const char                       *argv[4];
    size_t                            argvlen[4];
    ngx_http_clockchain_ctx_t        *ctx;
    ngx_http_clockchain_main_conf_t  *mcf;

    ctx = ngx_http_clockchain_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    argv[0] = "LRANGE";
    argvlen[0] = 6;
    argv[1] = (char *) key;
    argvlen[1] = ngx_http_clockchain_store_key(key, mcf, "failures", NULL, 0);
    argv[2] = "0";
    argvlen[2] = 1;
    argv[3] = (char *) last;
    argvlen[3] = ngx_sprintf(last, "%d", NGX_HTTP_CLOCKCHAIN_FAILURES - 1)
                 - last;

    if (ngx_http_clockchain_redis_available()) {
        ctx->op = ngx_http_clockchain_redis_command(
                                           ngx_http_clockchain_status_done,
                                           ctx, 4, argv, argvlen);
    }

    if (ctx->op == NULL) {
        /* Redis is not connected: the rest is still worth showing */
        return ngx_http_clockchain_status_send(r, NULL,
                                               "Redis cannot be reached");
    }

    ctx->wait_timer.handler = ngx_http_clockchain_status_late;
    ctx->wait_timer.data = ctx;
    ctx->wait_timer.log = r->connection->log;

    ngx_add_timer(&ctx->wait_timer, NGX_HTTP_CLOCKCHAIN_STATUS_REDIS_WAIT);

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_clockchain_status_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    ctx->op = NULL;

    if (ctx->wait_timer.timer_set) {
        ngx_del_timer(&ctx->wait_timer);
    }

    ngx_http_clockchain_finalize(ctx->request,
                        ngx_http_clockchain_status_send(ctx->request, reply,
                                                   "Redis cannot be reached"));
}


/* Redis is connected but silent: the answer without it */

static void
ngx_http_clockchain_status_late(ngx_event_t *ev)
{
    ngx_http_clockchain_ctx_t *ctx = ev->data;

    /* its reply may still come, to nobody */
    ngx_http_clockchain_redis_cancel(ctx->op);
    ctx->op = NULL;

    ngx_http_clockchain_finalize(ctx->request,
                        ngx_http_clockchain_status_send(ctx->request, NULL,
                                  "Redis did not answer within "
                                  NGX_HTTP_CLOCKCHAIN_STATUS_REDIS_WAIT_TEXT));
}


static ngx_int_t
ngx_http_clockchain_status_send(ngx_http_request_t *r, redisReply *reply,
    const char *why)
{
    json_t  *json;

    json = ngx_http_clockchain_status_json(r, reply, why);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_clockchain_send_json(r, json);
}


static json_t *
ngx_http_clockchain_status_json(ngx_http_request_t *r, redisReply *reply,
    const char *why)
{
    ngx_pid_t                         runner;
    size_t                            mbytes;
    ngx_msec_t                        now, seen, until;
    ngx_msec_int_t                    ago;
    ngx_uint_t                        jobs, pages, free, moments;
    ngx_http_clockchain_stats_t      *st;
    ngx_http_clockchain_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);
    st = ngx_http_clockchain_shm_stats(mcf->shm_zone);

    ngx_http_clockchain_shm_usage(mcf->shm_zone, &jobs, &pages, &free,
                                  &runner);
    ngx_http_clockchain_shm_moment_usage(mcf->shm_zone, &moments, &mbytes);

    now = ngx_http_clockchain_status_now();
    seen = st->runner_seen;
    until = st->breaker_until;

    /*
     * Signed: the runner's cached time may be a few ms ahead of this
     * worker's, and an unsigned "now - seen" then wraps to "not ticking"
     */
    ago = seen ? ngx_max((ngx_msec_int_t) (now - seen), 0) : -1;

    /* o: a NULL from a part makes json_pack fail and free the others */

    return json_pack("{s:I,s:s,s:I,"
                     "s:{s:I,s:I,s:I,s:I,s:I,s:I,s:I},"
                     "s:o,"
                     "s:{s:b,s:I,s:I,s:b,s:I,s:I,s:s,s:I,s:I,s:I},"
                     "s:o,s:o,"
                     "s:{s:I,s:I,s:I,s:f,s:I,s:I,s:I},"
                     "s:I,s:o}",
        "time", (json_int_t) (now / 1000),
        "version", NGX_HTTP_CLOCKCHAIN_VERSION,
        "pid", (json_int_t) ngx_pid,

        "jobs",
        "pending", (json_int_t) st->pending,
        "processing", (json_int_t) st->processing,
        "created", (json_int_t) st->created,
        "completed", (json_int_t) st->completed,
        "failed", (json_int_t) st->failed,
        "stalled", (json_int_t) st->stalled,
        "queue_updated", (json_int_t) st->queue_updated,

        "history", ngx_http_clockchain_status_history(mcf),

        "runner",
        "configured", mcf->flash_url.len != 0,
        "pid", (json_int_t) runner,
        "generation", (json_int_t) st->runner_generation,
        "ticking", runner != 0 && ago >= 0
                   && ago < NGX_HTTP_CLOCKCHAIN_STATUS_STALE,
        "last_tick_ms_ago", (json_int_t) ago,
        "in_flight", (json_int_t) st->in_flight,
        "breaker", until > now ? "open" : "closed",
        "breaker_open_ms", (json_int_t) (until > now ? until - now : 0),
        "breaker_failures", (json_int_t) st->breaker_failures,
        "breaker_threshold", (json_int_t) mcf->breaker_failures,

        "flash_latency", ngx_http_clockchain_status_flash(st),
        "redis", ngx_http_clockchain_status_redis(mcf, reply, why),

        "zone",
        "jobs", (json_int_t) jobs,
        "pages", (json_int_t) pages,
        "pages_free", (json_int_t) free,
        "fill", pages ? 1.0 - (double) free / pages : 0.0,
        "evictions", (json_int_t) st->zone_evictions,
        "moments", (json_int_t) moments,
        "moments_bytes", (json_int_t) mbytes,

        "waiters", (json_int_t) (ngx_atomic_int_t) st->waiters,
        "failures", ngx_http_clockchain_status_failures(reply));
}


/* the ring's samples, oldest first, copied out under the zone's lock */

static json_t *
ngx_http_clockchain_status_history(ngx_http_clockchain_main_conf_t *mcf)
{
    json_t                        *samples, *s;
    ngx_uint_t                     i, n, next;
    ngx_slab_pool_t               *shpool;
    ngx_http_clockchain_stats_t   *st;
    ngx_http_clockchain_sample_t   ring[NGX_HTTP_CLOCKCHAIN_SAMPLES], *sm;

    st = ngx_http_clockchain_shm_stats(mcf->shm_zone);
    shpool = (ngx_slab_pool_t *) mcf->shm_zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);
    ngx_memcpy(ring, st->samples, sizeof(ring));
    next = st->sample_next;
    ngx_shmtx_unlock(&shpool->mutex);

    samples = json_array();
    if (samples == NULL) {
        return NULL;
    }

    n = ngx_min(next, NGX_HTTP_CLOCKCHAIN_SAMPLES);

    for (i = next - n; i < next; i++) {
        sm = &ring[i % NGX_HTTP_CLOCKCHAIN_SAMPLES];

        s = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}",
                      "at", (json_int_t) sm->at,
                      "pending", (json_int_t) sm->pending,
                      "processing", (json_int_t) sm->processing,
                      "created", (json_int_t) sm->created,
                      "completed", (json_int_t) sm->completed,
                      "failed", (json_int_t) sm->failed);

        if (s == NULL || json_array_append_new(samples, s) != 0) {
            json_decref(samples);
            return NULL;
        }
    }

    return json_pack("{s:i,s:i,s:o}",
                     "every", NGX_HTTP_CLOCKCHAIN_SAMPLE_EVERY,
                     "max", NGX_HTTP_CLOCKCHAIN_SAMPLES,
                     "samples", samples);
}


/* each bucket's own count (not cumulative, as a bar chart wants it) */

static json_t *
ngx_http_clockchain_status_flash(ngx_http_clockchain_stats_t *st)
{
    json_t             *buckets, *b;
    ngx_uint_t          i;
    ngx_atomic_uint_t   count;

    buckets = json_array();
    if (buckets == NULL) {
        return NULL;
    }

    count = 0;

    for (i = 0; i <= NGX_HTTP_CLOCKCHAIN_FLASH_BUCKETS; i++) {
        count += st->flash[i];

        if (i < NGX_HTTP_CLOCKCHAIN_FLASH_BUCKETS) {
            b = json_pack("{s:f,s:I}", "le",
                      (double) ngx_http_clockchain_stats_flash_bounds[i]
                      / 1000,
                      "count", (json_int_t) st->flash[i]);
        } else {
            b = json_pack("{s:n,s:I}", "le",
                          "count", (json_int_t) st->flash[i]);
        }

        if (b == NULL || json_array_append_new(buckets, b) != 0) {
            json_decref(buckets);
            return NULL;
        }
    }

    return json_pack("{s:o,s:f,s:I}", "buckets", buckets,
                     "sum", (double) st->flash_ms / 1000,
                     "count", (json_int_t) count);
}


/*
 * This worker's command connection, where it goes, and whether the read
 * of the failures was answered: the page's word for "Redis is reachable";
 * why it was not, without a reply.
 */

/*
 * A string from outside (nginx.conf takes any bytes, a Sentinel or Redis
 * says what it likes) as JSON: json_string() refuses invalid UTF-8, and one
 * NULL would fail the whole answer.  Invalid bytes become U+FFFD; cut at
 * NGX_HTTP_CLOCKCHAIN_STATUS_TEXT bytes.
 */

#define NGX_HTTP_CLOCKCHAIN_STATUS_TEXT  512

static json_t *
ngx_http_clockchain_status_text(const char *s, size_t len)
{
    size_t  n;
    char    buf[3 * NGX_HTTP_CLOCKCHAIN_STATUS_TEXT];

    n = ngx_http_clockchain_utf8_clean(buf, sizeof(buf), s, len,
                                       NGX_HTTP_CLOCKCHAIN_STATUS_TEXT);

    return json_stringn(buf, n);
}


static json_t *
ngx_http_clockchain_status_redis(ngx_http_clockchain_main_conf_t *mcf,
    redisReply *reply, const char *why)
{
    u_char                            *host, *p;
    json_t                            *sentinel;
    ngx_int_t                          port;
    ngx_http_clockchain_redis_conf_t  *rcf;
    u_char                             addr[NGX_SOCKADDR_STRLEN + 16];

    rcf = &mcf->redis;

    if (ngx_http_clockchain_redis_master(&host, &port) != NGX_OK) {
        host = NULL;
    }

    /* ended here: cut short, ngx_snprintf() would drop a %Z */

    if (rcf->unix_path) {
        p = ngx_snprintf(addr, sizeof(addr) - 1, "unix:%s", rcf->unix_path);

    } else if (host) {
        p = ngx_snprintf(addr, sizeof(addr) - 1, "%s:%i", host, port);

    } else {
        p = addr;
    }

    *p = '\0';

    if (rcf->sentinels) {
        sentinel = json_pack("{s:o,s:I,s:o}",
                             "master_name",
                             ngx_http_clockchain_status_text(
                                 (char *) rcf->sentinel_master.data,
                                 rcf->sentinel_master.len),
                             "sentinels", (json_int_t) rcf->sentinels->nelts,
                             "master", host
                                 ? ngx_http_clockchain_status_text(
                                       (char *) addr, p - addr)
                                 : json_null());
    } else {
        sentinel = json_null();
    }

    return json_pack("{s:b,s:b,s:o,s:o,s:o}",
                     "reachable", reply && reply->type == REDIS_REPLY_ARRAY,
                     "connected", ngx_http_clockchain_redis_available() != 0,
                     "address", addr[0]
                                ? ngx_http_clockchain_status_text(
                                      (char *) addr, p - addr)
                                : json_null(),
                     "sentinel", sentinel,
                     "error", (reply == NULL)
                              ? json_string(why)
                              : (reply->type == REDIS_REPLY_ERROR)
                              ? ngx_http_clockchain_status_text(reply->str,
                                                                reply->len)
                              : json_null());
}


/*
 * fail.lua's list: JSON objects {id, error, at}, newest first.  null when
 * Redis did not answer; an entry that is not such an object is left out.
 */

static json_t *
ngx_http_clockchain_status_failures(redisReply *reply)
{
    size_t        i;
    json_t       *list, *f, *id, *error, *at;
    redisReply   *e;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        return json_null();
    }

    list = json_array();
    if (list == NULL) {
        return NULL;
    }

    for (i = 0; i < reply->elements; i++) {
        e = reply->element[i];

        if (e->type != REDIS_REPLY_STRING) {
            continue;
        }

        f = json_loadb(e->str, e->len, JSON_REJECT_DUPLICATES, NULL);
        if (f == NULL) {
            continue;
        }

        id = json_object_get(f, "id");
        error = json_object_get(f, "error");
        at = json_object_get(f, "at");

        if (json_is_string(id) && json_is_string(error)
            && json_is_string(at))
        {
            if (json_array_append_new(list,
                                      json_pack("{s:O,s:O,s:O}", "id", id,
                                                "error", error, "at", at))
                != 0)
            {
                json_decref(f);
                json_decref(list);
                return NULL;
            }
        }

        json_decref(f);
    }

    return list;
}


/*
 * From the runner's tick, while it holds the role: its state for the
 * page (word-sized stores, read without the lock), and every
 * NGX_HTTP_CLOCKCHAIN_SAMPLE_EVERY seconds a sample of the queue into the
 * ring, under the zone's lock.  The gauges are those the tick reads from
 * Redis each second.
 */

void
ngx_http_clockchain_status_tick(ngx_http_clockchain_main_conf_t *mcf,
    ngx_uint_t generation, ngx_msec_t pause_until, ngx_uint_t failures)
{
    time_t                         now, at;
    ngx_msec_t                     ms;
    ngx_uint_t                     next;
    ngx_msec_int_t                 left;
    ngx_slab_pool_t               *shpool;
    ngx_http_clockchain_stats_t   *st;
    ngx_http_clockchain_sample_t  *sm;

    st = ngx_http_clockchain_shm_stats(mcf->shm_zone);
    ms = ngx_http_clockchain_status_now();
    left = (ngx_msec_int_t) (pause_until - ngx_current_msec);

    st->runner_seen = ms;
    st->runner_generation = generation;
    st->breaker_until = (left > 0) ? ms + left : 0;
    st->breaker_failures = failures;

    now = ngx_time();
    next = st->sample_next;
    at = next ? (time_t) st->samples[(next - 1) % NGX_HTTP_CLOCKCHAIN_SAMPLES]
                                                                          .at
              : 0;

    /* a clock set back takes a sample at once rather than none for long */
    if (at && now >= at && now - at < NGX_HTTP_CLOCKCHAIN_SAMPLE_EVERY) {
        return;
    }

    shpool = (ngx_slab_pool_t *) mcf->shm_zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);

    /* another holder may have taken it since (a change of holder) */
    if (st->sample_next == next) {
        sm = &st->samples[next % NGX_HTTP_CLOCKCHAIN_SAMPLES];

        sm->at = (ngx_atomic_uint_t) now;
        sm->pending = st->pending;
        sm->processing = st->processing;
        sm->created = st->created;
        sm->completed = st->completed;
        sm->failed = st->failed;

        st->sample_next = next + 1;
    }

    ngx_shmtx_unlock(&shpool->mutex);
}


/* wall clock, ms: the zone outlives a worker's ngx_current_msec */

static ngx_msec_t
ngx_http_clockchain_status_now(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (ngx_msec_t) tp->sec * 1000 + tp->msec;
}

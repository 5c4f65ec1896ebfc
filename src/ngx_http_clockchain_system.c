/*
 * Copyright (C) The Clockchain authors
 */


/*
 * The routes a load balancer and a dashboard ask without a key:
 * GET /health (the graph's size, 503 while Redis cannot be reached),
 * GET / (the service and its version) and GET /api/stats (the graph's
 * counters, stats.lua).  Each reads the counters complete.lua keeps and
 * both ends of the time index: none scans the graph.  And GET
 * /openapi.json, the API's description, compiled in from src/openapi.json.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_request.h"
#include "ngx_http_clockchain_store.h"
#include "ngx_http_clockchain_version.h"
#include "ngx_http_clockchain_openapi.h"


#define NGX_HTTP_CLOCKCHAIN_SERVICE  "timepoint-clockchain"

/* sort_key = year * 10^8 + month * 10^6 + day * 10^4 + HHMM */
#define NGX_HTTP_CLOCKCHAIN_SORT_YEAR  100000000.0


static ngx_int_t ngx_http_clockchain_system_start(ngx_http_request_t *r,
    ngx_http_clockchain_redis_handler_pt handler);
static void ngx_http_clockchain_health_done(void *data, redisReply *reply);
static void ngx_http_clockchain_stats_done(void *data, redisReply *reply);
static ngx_int_t ngx_http_clockchain_unhealthy(ngx_http_request_t *r);
static json_t *ngx_http_clockchain_stats_json(redisReply *reply);
static json_int_t ngx_http_clockchain_stats_count(redisReply *hash,
    const char *field);
static json_t *ngx_http_clockchain_stats_year(redisReply *score);


ngx_int_t
ngx_http_clockchain_health_handler(ngx_http_request_t *r)
{
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_clockchain_not_allowed(r, "GET, HEAD");
    }

    return ngx_http_clockchain_system_start(r,
                                            ngx_http_clockchain_health_done);
}


ngx_int_t
ngx_http_clockchain_service_info_handler(ngx_http_request_t *r)
{
    ngx_int_t   rc;
    json_t     *json;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_clockchain_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    json = json_pack("{s:s,s:s}", "service", NGX_HTTP_CLOCKCHAIN_SERVICE,
                     "version", NGX_HTTP_CLOCKCHAIN_VERSION);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_clockchain_send_json(r, json);
}


/*
 * The document is the same for the life of the build: its ETag is its
 * checksum, made by config, so a client (or a cache) that has it asks
 * again with If-None-Match and gets nginx's 304 without the 40k.
 */

ngx_int_t
ngx_http_clockchain_openapi_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_clockchain_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_clockchain_etag(r,
                                 (u_char *) NGX_HTTP_CLOCKCHAIN_OPENAPI_ETAG,
                                 sizeof(NGX_HTTP_CLOCKCHAIN_OPENAPI_ETAG) - 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a cache may keep it, but asks each time whether it is still this */

    return ngx_http_clockchain_send_body(r, NGX_HTTP_OK,
                                     (u_char *) ngx_http_clockchain_openapi,
                                     sizeof(ngx_http_clockchain_openapi) - 1,
                                     "application/json", "no-cache");
}


ngx_int_t
ngx_http_clockchain_stats_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;
    ngx_str_t  key;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_clockchain_not_allowed(r, "GET, HEAD");
    }

    /* no key needed; a key given must be good, as on every route */

    if (ngx_http_clockchain_header(r, "X-Service-Key", &key) > 0) {
        rc = ngx_http_clockchain_auth(r, 0);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return ngx_http_clockchain_system_start(r,
                                            ngx_http_clockchain_stats_done);
}


static ngx_int_t
ngx_http_clockchain_system_start(ngx_http_request_t *r,
    ngx_http_clockchain_redis_handler_pt handler)
{
    ngx_int_t                         rc;
    ngx_http_clockchain_ctx_t        *ctx;
    ngx_http_clockchain_main_conf_t  *mcf;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_http_clockchain_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    ctx->op = ngx_http_clockchain_store_stats(mcf, handler, ctx);
    if (ctx->op == NULL) {
        if (handler == ngx_http_clockchain_health_done) {
            return ngx_http_clockchain_unhealthy(r);
        }

        return ngx_http_clockchain_unavailable(r, "Graph store unavailable: "
                                               "Redis cannot be reached, "
                                               "retry later");
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_clockchain_health_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    json_t              *json;
    ngx_http_request_t  *r;

    r = ctx->request;
    ctx->op = NULL;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_ARRAY)
    {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "clockchain: reading stats failed: %s",
                          reply->str);
        }

        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unhealthy(r));
        return;
    }

    json = json_pack("{s:s,s:s,s:I,s:I}", "status", "healthy",
                     "service", NGX_HTTP_CLOCKCHAIN_SERVICE,
                     "nodes", ngx_http_clockchain_stats_count(
                                  reply->element[0], "nodes"),
                     "edges", ngx_http_clockchain_stats_count(
                                  reply->element[0], "edges"));
    if (json == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_json(r, json));
}


/* what a load balancer takes out of rotation: 503, the same JSON shape */

static ngx_int_t
ngx_http_clockchain_unhealthy(ngx_http_request_t *r)
{
    static u_char  body[] = "{\"status\":\"unhealthy\",\"service\":\""
                            NGX_HTTP_CLOCKCHAIN_SERVICE "\",\"detail\":"
                            "\"Redis cannot be reached\"}";

    return ngx_http_clockchain_send(r, NGX_HTTP_SERVICE_UNAVAILABLE, body,
                                    sizeof(body) - 1);
}


static void
ngx_http_clockchain_stats_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    json_t              *json;
    ngx_http_request_t  *r;

    r = ctx->request;
    ctx->op = NULL;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_ARRAY)
    {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "clockchain: reading stats failed: %s",
                          reply->str);
        }

        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: Redis cannot "
                                     "be reached, retry later"));
        return;
    }

    json = ngx_http_clockchain_stats_json(reply);
    if (json == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_json(r, json));
}


/*
 * The original's enhanced stats, from what the counters hold: confidence
 * is not a field of a node here, so avg_confidence is null as it is there
 * for a graph without one.
 */

static json_t *
ngx_http_clockchain_stats_json(redisReply *reply)
{
    size_t        i;
    json_t       *json, *layers, *types, *last;
    redisReply   *hash, *f, *v;

    hash = reply->element[0];

    layers = json_object();
    types = json_object();
    last = json_null();

    for (i = 0; i + 1 < hash->elements; i += 2) {
        f = hash->element[i];
        v = hash->element[i + 1];

        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            continue;
        }

        if (f->len > 6 && ngx_strncmp(f->str, "layer:", 6) == 0) {
            json_object_set_new(layers, f->str + 6,
                                json_integer(strtoll(v->str, NULL, 10)));

        } else if (f->len > 6 && ngx_strncmp(f->str, "edges:", 6) == 0) {
            json_object_set_new(types, f->str + 6,
                                json_integer(strtoll(v->str, NULL, 10)));

        } else if (ngx_strcmp(f->str, "last_updated") == 0) {
            json_decref(last);
            last = json_stringn(v->str, v->len);
        }
    }

    /* o: a NULL from above makes json_pack fail and free the others */
    json = json_pack("{s:I,s:I,s:o,s:o,s:{s:o,s:o},s:n,s:o}",
                     "total_nodes",
                     ngx_http_clockchain_stats_count(hash, "nodes"),
                     "total_edges",
                     ngx_http_clockchain_stats_count(hash, "edges"),
                     "layer_counts", layers,
                     "edge_type_counts", types,
                     "date_range",
                     "min_year",
                     ngx_http_clockchain_stats_year(reply->element[1]),
                     "max_year",
                     ngx_http_clockchain_stats_year(reply->element[2]),
                     "avg_confidence",
                     "last_updated", last);

    return json;
}


static json_int_t
ngx_http_clockchain_stats_count(redisReply *hash, const char *field)
{
    size_t       i;
    redisReply  *f, *v;

    for (i = 0; i + 1 < hash->elements; i += 2) {
        f = hash->element[i];
        v = hash->element[i + 1];

        if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING
            && ngx_strcmp(f->str, field) == 0)
        {
            return strtoll(v->str, NULL, 10);
        }
    }

    return 0;
}


/* a sort key's year; floor, so that 44 BC stays -44 */

static json_t *
ngx_http_clockchain_stats_year(redisReply *score)
{
    double      key;
    json_int_t  year;

    if (score->type != REDIS_REPLY_STRING) {
        return json_null();
    }

    key = strtod(score->str, NULL);
    year = (json_int_t) (key / NGX_HTTP_CLOCKCHAIN_SORT_YEAR);

    if (year * NGX_HTTP_CLOCKCHAIN_SORT_YEAR > key) {
        year--;
    }

    return json_integer(year);
}

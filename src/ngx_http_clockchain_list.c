
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * Lists of graph nodes (list.lua, read from idx:time):
 * GET /api/moments: a page {items, total, limit, offset}, no key needed
 * (public nodes only without one); GET /api/today: {month, day, events},
 * this UTC day and month in every year; GET /api/random: one node.  Who
 * sees what is the rule of moments.c.  Each call examines a bounded number
 * of index entries (NGX_HTTP_CLOCKCHAIN_LIST_BUDGET).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_request.h"
#include "ngx_http_clockchain_store.h"
#include "ngx_http_clockchain_query.h"


/* index entries one call may examine: a few ms of Redis at most */
#define NGX_HTTP_CLOCKCHAIN_LIST_BUDGET    2000
#define NGX_HTTP_CLOCKCHAIN_LIST_DEFAULT   20
#define NGX_HTTP_CLOCKCHAIN_LIST_MAX       100
#define NGX_HTTP_CLOCKCHAIN_OFFSET_MAX     100000
/* sort_key = year * 10^8 + ...: exact in a double well past this */
#define NGX_HTTP_CLOCKCHAIN_YEAR_MAX       1000000
#define NGX_HTTP_CLOCKCHAIN_TEXT_MAX       200
#define NGX_HTTP_CLOCKCHAIN_TODAY_YEARS    5000
#define NGX_HTTP_CLOCKCHAIN_TODAY_MAX      200

/* list.lua's FIELDS, in order */
#define NGX_HTTP_CLOCKCHAIN_LIST_FIELDS    16


typedef struct {
    ngx_int_t                         limit;
    ngx_int_t                         offset;
    ngx_str_t                         lo;      /* scores, or "-inf" */
    ngx_str_t                         hi;      /* "+inf" */
    ngx_str_t                         order;   /* "asc", "desc" */
    ngx_str_t                         entity;  /* "" for none */
    ngx_str_t                         q;
} ngx_http_clockchain_list_params_t;


static ngx_int_t ngx_http_clockchain_list_params(ngx_http_request_t *r,
    ngx_http_clockchain_list_params_t *lp, const char **detail);
static ngx_int_t ngx_http_clockchain_list_text(ngx_http_request_t *r,
    const char *name, ngx_str_t *value, const char **detail);
static ngx_int_t ngx_http_clockchain_list_send(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, const char *what, const char *mode,
    ngx_str_t *args, ngx_uint_t nargs,
    ngx_http_clockchain_redis_handler_pt handler);
static ngx_int_t ngx_http_clockchain_list_op(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, const char *what, const char *mode,
    ngx_str_t *args, ngx_uint_t nargs,
    ngx_http_clockchain_redis_handler_pt handler);
static ngx_int_t ngx_http_clockchain_list_read(ngx_http_request_t *r,
    void *data);
static const char *ngx_http_clockchain_list_mode(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx);
static void ngx_http_clockchain_list_done(void *data, redisReply *reply);
static void ngx_http_clockchain_today_done(void *data, redisReply *reply);
static void ngx_http_clockchain_random_done(void *data, redisReply *reply);
static ngx_int_t ngx_http_clockchain_list_failed(ngx_http_request_t *r,
    redisReply *reply);
static json_t *ngx_http_clockchain_list_node(redisReply *node);


ngx_int_t
ngx_http_clockchain_list_handler(ngx_http_request_t *r)
{
    ngx_int_t                           rc;
    ngx_uint_t                          anonymous;
    const char                         *detail;
    ngx_http_clockchain_ctx_t          *ctx;
    ngx_http_clockchain_list_params_t   lp;

    /* as a moment: no key, public nodes; a key given must be right */

    rc = ngx_http_clockchain_read_start(r, &anonymous, &ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_clockchain_list_params(r, &lp, &detail);

    if (rc == NGX_DECLINED) {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST, "%s",
                                         detail);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    /* through the zone: a page is 20 to 100 node hashes */

    return ngx_http_clockchain_read_cached(r, ctx,
                                           anonymous ? "public"
                                           : ctx->created_by.len ? "user"
                                           : "service",
                                           ngx_http_clockchain_list_read);
}


/* the list sent to Redis (a miss in the zone): its filters again */

static ngx_int_t
ngx_http_clockchain_list_read(ngx_http_request_t *r, void *data)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    ngx_str_t                           args[7];
    const char                         *detail;
    ngx_http_clockchain_list_params_t   lp;
    u_char                              limit[NGX_INT_T_LEN];
    u_char                              offset[NGX_INT_T_LEN];

    if (ngx_http_clockchain_list_params(r, &lp, &detail) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    args[0].data = limit;
    args[0].len = ngx_sprintf(limit, "%i", lp.limit) - limit;
    args[1].data = offset;
    args[1].len = ngx_sprintf(offset, "%i", lp.offset) - offset;
    args[2] = lp.lo;
    args[3] = lp.hi;
    args[4] = lp.order;
    args[5] = lp.entity;
    args[6] = lp.q;

    return ngx_http_clockchain_list_op(r, ctx, "list",
                                       ngx_http_clockchain_list_mode(r, ctx),
                                       args, 7,
                                       ngx_http_clockchain_list_done);
}


/* no key: the public; a key: the service, or the user of X-User-Id */

static const char *
ngx_http_clockchain_list_mode(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx)
{
    ngx_str_t  key;

    if (ngx_http_clockchain_header(r, "X-Service-Key", &key) == 0) {
        return "public";
    }

    return ctx->created_by.len ? "user" : "service";
}


ngx_int_t
ngx_http_clockchain_today_handler(ngx_http_request_t *r)
{
    ngx_tm_t                    tm;
    ngx_int_t                   rc;
    ngx_str_t                   args[4];
    ngx_http_clockchain_ctx_t  *ctx;
    u_char                      month[NGX_INT_T_LEN], day[NGX_INT_T_LEN];
    u_char                      years[NGX_INT_T_LEN], max[NGX_INT_T_LEN];

    rc = ngx_http_clockchain_read_start(r, NULL, &ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    /* the original's "today" is UTC's */
    ngx_gmtime(ngx_time(), &tm);

    args[0].data = month;
    args[0].len = ngx_sprintf(month, "%d", tm.ngx_tm_mon) - month;
    args[1].data = day;
    args[1].len = ngx_sprintf(day, "%d", tm.ngx_tm_mday) - day;
    args[2].data = years;
    args[2].len = ngx_sprintf(years, "%d", NGX_HTTP_CLOCKCHAIN_TODAY_YEARS)
                  - years;
    args[3].data = max;
    args[3].len = ngx_sprintf(max, "%d", NGX_HTTP_CLOCKCHAIN_TODAY_MAX) - max;

    return ngx_http_clockchain_list_send(r, ctx, "today",
                                         ctx->created_by.len ? "user"
                                                             : "service",
                                         args, 4,
                                         ngx_http_clockchain_today_done);
}


ngx_int_t
ngx_http_clockchain_random_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_clockchain_ctx_t  *ctx;

    rc = ngx_http_clockchain_read_start(r, NULL, &ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_clockchain_list_send(r, ctx, "random",
                                         ctx->created_by.len ? "user"
                                                             : "service",
                                         NULL, 0,
                                         ngx_http_clockchain_random_done);
}


/*
 * The query's filters, each checked: NGX_OK, NGX_ERROR, or NGX_DECLINED
 * with *detail the 400's text, naming the one out of range.
 */

static ngx_int_t
ngx_http_clockchain_list_params(ngx_http_request_t *r,
    ngx_http_clockchain_list_params_t *lp, const char **detail)
{
    u_char     *p;
    int64_t     n, from, to;
    ngx_int_t   rc;
    ngx_str_t   sort;

    static const char *const  sorts[] = { "year", "-year", NULL };

    n = NGX_HTTP_CLOCKCHAIN_LIST_DEFAULT;
    rc = ngx_http_clockchain_arg_int(r, "limit", 1,
                                     NGX_HTTP_CLOCKCHAIN_LIST_MAX, &n,
                                     detail);
    if (rc != NGX_OK) {
        return rc;
    }

    lp->limit = n;

    n = 0;
    rc = ngx_http_clockchain_arg_int(r, "offset", 0,
                                     NGX_HTTP_CLOCKCHAIN_OFFSET_MAX, &n,
                                     detail);
    if (rc != NGX_OK) {
        return rc;
    }

    lp->offset = n;

    from = INT64_MAX;
    rc = ngx_http_clockchain_arg_int(r, "year_from",
                                     -NGX_HTTP_CLOCKCHAIN_YEAR_MAX,
                                     NGX_HTTP_CLOCKCHAIN_YEAR_MAX, &from,
                                     detail);
    if (rc != NGX_OK) {
        return rc;
    }

    to = INT64_MAX;
    rc = ngx_http_clockchain_arg_int(r, "year_to",
                                     -NGX_HTTP_CLOCKCHAIN_YEAR_MAX,
                                     NGX_HTTP_CLOCKCHAIN_YEAR_MAX, &to,
                                     detail);
    if (rc != NGX_OK) {
        return rc;
    }

    if (from != INT64_MAX && to != INT64_MAX && from > to) {
        *detail = "year_to: must be year_from or later";
        return NGX_DECLINED;
    }

    /* a year's sort keys: [year * 10^8, (year + 1) * 10^8) */

    if (from == INT64_MAX) {
        ngx_str_set(&lp->lo, "-inf");

    } else {
        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        lp->lo.data = p;
        lp->lo.len = ngx_sprintf(p, "%L", from * 100000000) - p;
    }

    if (to == INT64_MAX) {
        ngx_str_set(&lp->hi, "+inf");

    } else {
        p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        lp->hi.data = p;
        lp->hi.len = ngx_sprintf(p, "%L", (to + 1) * 100000000 - 1) - p;
    }

    rc = ngx_http_clockchain_list_text(r, "entity", &lp->entity, detail);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_clockchain_list_text(r, "q", &lp->q, detail);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_str_set(&lp->order, "asc");

    rc = ngx_http_clockchain_arg(r, "sort", &sort);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        switch (ngx_http_clockchain_query_one_of(sort.data, sort.len, sorts)) {

        case 0:
            break;

        case 1:
            ngx_str_set(&lp->order, "desc");
            break;

        default:
            *detail = "sort: must be \"year\" (oldest first) or \"-year\" "
                      "(newest first)";
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* a text filter, unescaped; "" when absent or empty */

static ngx_int_t
ngx_http_clockchain_list_text(ngx_http_request_t *r, const char *name,
    ngx_str_t *value, const char **detail)
{
    u_char     *p;
    ngx_int_t   rc;

    rc = ngx_http_clockchain_arg(r, name, value);

    if (rc == NGX_DECLINED) {
        ngx_str_set(value, "");
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    /* matched in Lua against names: UTF-8 only, no control character */

    if (ngx_http_clockchain_query_text(value->data, value->len,
                                       NGX_HTTP_CLOCKCHAIN_TEXT_MAX)
        == 0)
    {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, 80);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *ngx_snprintf(p, 79, "%s: must be UTF-8 text of at most %d bytes",
                  name, NGX_HTTP_CLOCKCHAIN_TEXT_MAX) = '\0';
    *detail = (const char *) p;

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_clockchain_list_send(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, const char *what, const char *mode,
    ngx_str_t *args, ngx_uint_t nargs,
    ngx_http_clockchain_redis_handler_pt handler)
{
    ngx_int_t  rc;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_clockchain_list_op(r, ctx, what, mode, args, nargs,
                                     handler);
    if (rc != NGX_DONE) {
        return rc;
    }

    r->main->count++;

    return NGX_DONE;
}


/* list.lua sent: NGX_DONE, or the status of the answer sent */

static ngx_int_t
ngx_http_clockchain_list_op(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, const char *what, const char *mode,
    ngx_str_t *args, ngx_uint_t nargs,
    ngx_http_clockchain_redis_handler_pt handler)
{
    ngx_http_clockchain_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    ctx->op = ngx_http_clockchain_store_list(mcf, what, mode,
                                             &ctx->created_by,
                                             NGX_HTTP_CLOCKCHAIN_LIST_BUDGET,
                                             args, nargs, handler, ctx);
    if (ctx->op == NULL) {
        return ngx_http_clockchain_unavailable(r, "Graph store unavailable: "
                                               "Redis cannot be reached, "
                                               "retry later");
    }

    return NGX_DONE;
}


static void
ngx_http_clockchain_list_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    size_t                              i;
    json_t                             *json, *items, *node;
    const char                         *detail;
    ngx_http_request_t                 *r;
    ngx_http_clockchain_list_params_t   lp;

    r = ctx->request;
    ctx->op = NULL;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements == 0
        || reply->element[0]->type != REDIS_REPLY_INTEGER)
    {
        ngx_http_clockchain_finalize(r,
                                   ngx_http_clockchain_list_failed(r, reply));
        return;
    }

    /* checked once already: limit and offset as the request gave them */
    if (ngx_http_clockchain_list_params(r, &lp, &detail) != NGX_OK) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    items = json_array();
    json = json_pack("{s:o,s:I,s:I,s:I}", "items", items,
                     "total", (json_int_t) reply->element[0]->integer,
                     "limit", (json_int_t) lp.limit,
                     "offset", (json_int_t) lp.offset);
    if (json == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 1; i < reply->elements; i++) {
        node = ngx_http_clockchain_list_node(reply->element[i]);
        if (node) {
            json_array_append_new(items, node);
        }
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_json(r, json));
}


static void
ngx_http_clockchain_today_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    size_t               i;
    json_t              *json, *events, *node;
    ngx_tm_t             tm;
    ngx_http_request_t  *r;

    r = ctx->request;
    ctx->op = NULL;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        ngx_http_clockchain_finalize(r,
                                   ngx_http_clockchain_list_failed(r, reply));
        return;
    }

    ngx_gmtime(ngx_time(), &tm);

    events = json_array();
    json = json_pack("{s:i,s:i,s:o}", "month", tm.ngx_tm_mon,
                     "day", tm.ngx_tm_mday, "events", events);
    if (json == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 0; i < reply->elements; i++) {
        node = ngx_http_clockchain_list_node(reply->element[i]);
        if (node) {
            json_array_append_new(events, node);
        }
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_json(r, json));
}


static void
ngx_http_clockchain_random_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    json_t              *json;
    ngx_http_request_t  *r;

    r = ctx->request;
    ctx->op = NULL;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        ngx_http_clockchain_finalize(r,
                                   ngx_http_clockchain_list_failed(r, reply));
        return;
    }

    if (reply->elements == 0) {
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_error(r,
                                     NGX_HTTP_NOT_FOUND,
                                     "No public moments available"));
        return;
    }

    json = ngx_http_clockchain_list_node(reply->element[0]);
    if (json == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_json(r, json));
}


static ngx_int_t
ngx_http_clockchain_list_failed(ngx_http_request_t *r, redisReply *reply)
{
    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "clockchain: reading a list failed: %s", reply->str);
    }

    return ngx_http_clockchain_unavailable(r, "Graph store unavailable: "
                                           "Redis cannot be reached, "
                                           "retry later");
}


/*
 * One node from list.lua's FIELDS: path name one_liner year month_num
 * month day country region city layer visibility source_type image_url
 * confidence status; "" is an absent field.
 */

static json_t *
ngx_http_clockchain_list_node(redisReply *node)
{
    size_t        i;
    json_t       *obj, *v;
    redisReply  **f;

    static const char  *names[] = {
        "path", "name", "one_liner", "year", "month", "month_name", "day",
        "country", "region", "city", "layer", "visibility", "source_type",
        "image_url", "confidence", "status"
    };

    /* i: integer, r: real, s: string, n: string or null */
    static const char   types[] = "sssiisisssisnnrs";

    if (node->type != REDIS_REPLY_ARRAY
        || node->elements != NGX_HTTP_CLOCKCHAIN_LIST_FIELDS)
    {
        return NULL;
    }

    f = node->element;

    for (i = 0; i < NGX_HTTP_CLOCKCHAIN_LIST_FIELDS; i++) {
        if (f[i]->type != REDIS_REPLY_STRING) {
            return NULL;
        }
    }

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    for (i = 0; i < NGX_HTTP_CLOCKCHAIN_LIST_FIELDS; i++) {

        if (f[i]->len == 0) {
            /* the original's defaults */
            v = (i == 12) ? json_string("historical")
                : (i == 15) ? json_string("proposed")
                : (types[i] == 's') ? json_string("")
                : json_null();

        } else if (types[i] == 'i') {
            v = json_integer(strtoll(f[i]->str, NULL, 10));

        } else if (types[i] == 'r') {
            v = json_real(strtod(f[i]->str, NULL));

        } else {
            /* not UTF-8: not written by us, not passed on */
            v = json_stringn(f[i]->str, f[i]->len);
        }

        json_object_set_new(obj, names[i], v ? v : json_null());
    }

    return obj;
}


/*
 * Copyright (C) The Clockchain authors
 */


/*
 * GET {location}?q=&limit=: search (search.lua), and GET {location}{prefix}:
 * browse (browse.lua), both from indexes complete.lua keeps, as the
 * requester may see them (the rule of moments.c).  The query's words are
 * normalised here as the node's were in the runner
 * (ngx_http_clockchain_words()), so Redis compares bytes; a prefix is
 * checked against the canonical path before it becomes part of a key.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_request.h"
#include "ngx_http_clockchain_store.h"
#include "ngx_http_clockchain_shm.h"
#include "ngx_http_clockchain_scene.h"
#include "ngx_http_clockchain_query.h"


#define NGX_HTTP_CLOCKCHAIN_SEARCH_DEFAULT  20
#define NGX_HTTP_CLOCKCHAIN_SEARCH_MAX      50
/* bytes of q, once unescaped */
#define NGX_HTTP_CLOCKCHAIN_SEARCH_Q_MAX    200
/* several words: the rarest word's nodes examined, about 1 ms of Redis */
#define NGX_HTTP_CLOCKCHAIN_SEARCH_BUDGET   1000
/* segments of one browse answer */
#define NGX_HTTP_CLOCKCHAIN_BROWSE_MAX      1000


/* a segment of a browse answer and its count */
typedef struct {
    ngx_str_t                         segment;
    int64_t                           count;
} ngx_http_clockchain_browse_item_t;


typedef struct {
    ngx_pool_t                       *pool;
    ngx_str_t                         words[NGX_HTTP_CLOCKCHAIN_SEARCH_WORDS];
    ngx_uint_t                        n;
    ngx_uint_t                        more;    /* a word past the last */
} ngx_http_clockchain_query_t;


static ngx_int_t ngx_http_clockchain_search_args(ngx_http_request_t *r,
    ngx_http_clockchain_query_t *query, int64_t *limit, const char **detail);
static ngx_int_t ngx_http_clockchain_search_q(ngx_http_request_t *r,
    ngx_str_t *q, const char **detail);
static ngx_int_t ngx_http_clockchain_search_read(ngx_http_request_t *r,
    void *data);
static int ngx_http_clockchain_query_word(const char *word, size_t len,
    void *data);
static void ngx_http_clockchain_search_done(void *data, redisReply *reply);
static ngx_int_t ngx_http_clockchain_browse_prefix(ngx_pool_t *pool,
    u_char *p, size_t len, ngx_str_t *parent);
static ngx_int_t ngx_http_clockchain_browse_read(ngx_http_request_t *r,
    void *data);
static void ngx_http_clockchain_browse_done(void *data, redisReply *reply);
static ngx_int_t ngx_http_clockchain_browse_items(ngx_http_request_t *r,
    redisReply *reply, ngx_array_t *items);
static int ngx_libc_cdecl ngx_http_clockchain_browse_cmp(const void *one,
    const void *two);


ngx_int_t
ngx_http_clockchain_search_handler(ngx_http_request_t *r)
{
    int64_t                            limit;
    ngx_int_t                          rc;
    const char                        *detail;
    ngx_http_clockchain_ctx_t         *ctx;
    ngx_http_clockchain_query_t        query;

    rc = ngx_http_clockchain_read_start(r, NULL, &ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_clockchain_search_args(r, &query, &limit, &detail);

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

    if (query.n == 0) {
        /* only words of one letter, or none: nothing is indexed for them */
        return ngx_http_clockchain_send_json(r, json_array());
    }

    return ngx_http_clockchain_read_cached(r, ctx,
                                           ctx->created_by.len ? "user"
                                                               : "service",
                                           ngx_http_clockchain_search_read);
}


/* q and limit checked, q's distinct words: NGX_DECLINED with the 400's */

static ngx_int_t
ngx_http_clockchain_search_args(ngx_http_request_t *r,
    ngx_http_clockchain_query_t *query, int64_t *limit, const char **detail)
{
    ngx_int_t  rc;
    ngx_str_t  q;

    ngx_str_null(&q);

    rc = ngx_http_clockchain_search_q(r, &q, detail);
    if (rc != NGX_OK) {
        return rc;
    }

    *limit = NGX_HTTP_CLOCKCHAIN_SEARCH_DEFAULT;

    rc = ngx_http_clockchain_arg_int(r, "limit", 1,
                                     NGX_HTTP_CLOCKCHAIN_SEARCH_MAX, limit,
                                     detail);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_memzero(query, sizeof(ngx_http_clockchain_query_t));
    query->pool = r->pool;

    if (ngx_http_clockchain_words((char *) q.data, q.len,
                                  ngx_http_clockchain_query_word, query)
        < 0)
    {
        return NGX_ERROR;
    }

    if (query->more) {
        *detail = "q: must be at most "
                  ngx_value(NGX_HTTP_CLOCKCHAIN_SEARCH_WORDS) " words";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* the search sent to Redis (a miss in the zone): q's words again */

static ngx_int_t
ngx_http_clockchain_search_read(ngx_http_request_t *r, void *data)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    int64_t                            limit;
    const char                        *detail;
    ngx_http_clockchain_query_t        query;
    ngx_http_clockchain_main_conf_t   *mcf;

    if (ngx_http_clockchain_search_args(r, &query, &limit, &detail)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    ctx->op = ngx_http_clockchain_store_search(mcf,
                                       ctx->created_by.len ? "user"
                                                           : "service",
                                       &ctx->created_by, (ngx_uint_t) limit,
                                       NGX_HTTP_CLOCKCHAIN_SEARCH_BUDGET,
                                       query.words, query.n,
                                       ngx_http_clockchain_search_done, ctx);
    if (ctx->op == NULL) {
        return ngx_http_clockchain_unavailable(r, "Graph store unavailable: "
                                               "Redis cannot be reached, "
                                               "retry later");
    }

    return NGX_DONE;
}


/* q: required, UTF-8 of at most NGX_HTTP_CLOCKCHAIN_SEARCH_Q_MAX bytes */

static ngx_int_t
ngx_http_clockchain_search_q(ngx_http_request_t *r, ngx_str_t *q,
    const char **detail)
{
    ngx_int_t  rc;

    rc = ngx_http_clockchain_arg(r, "q", q);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED || q->len == 0) {
        *detail = "q: required, the text to search for";
        return NGX_DECLINED;
    }

    /* as the list's q: UTF-8 only, no control character */

    if (ngx_http_clockchain_query_text(q->data, q->len,
                                       NGX_HTTP_CLOCKCHAIN_SEARCH_Q_MAX)
        != 0)
    {
        *detail = "q: must be UTF-8 text of at most "
                  ngx_value(NGX_HTTP_CLOCKCHAIN_SEARCH_Q_MAX) " bytes, "
                  "no control character";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* a word of the query, once: "caesar caesar" asks for one word */

static int
ngx_http_clockchain_query_word(const char *word, size_t len, void *data)
{
    ngx_http_clockchain_query_t *query = data;

    ngx_uint_t   i;
    ngx_str_t   *w;

    for (i = 0; i < query->n; i++) {
        if (query->words[i].len == len
            && ngx_memcmp(query->words[i].data, word, len) == 0)
        {
            return 0;
        }
    }

    if (query->n == NGX_HTTP_CLOCKCHAIN_SEARCH_WORDS) {
        query->more = 1;
        return 1;
    }

    w = &query->words[query->n];

    w->data = ngx_pnalloc(query->pool, len);
    if (w->data == NULL) {
        return -1;
    }

    ngx_memcpy(w->data, word, len);
    w->len = len;
    query->n++;

    return 0;
}


/* each { path, name, one_liner, class, image_url }: the original's shape */

static void
ngx_http_clockchain_search_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    size_t               i, k;
    json_t              *list, *n;
    redisReply         **e;
    ngx_http_request_t  *r;

    /* the original's scores: a match in the name, the one-liner, else */
    static const double  score[] = { 1.0, 0.7, 0.4 };

    r = ctx->request;
    ctx->op = NULL;

    if (ngx_http_clockchain_graph_reply(r, reply, "search", "Not found")
        != NGX_OK)
    {
        return;
    }

    list = json_array();
    if (list == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_ARRAY
            || reply->element[i]->elements != 5)
        {
            continue;
        }

        e = reply->element[i]->element;

        for (k = 0; k < 5; k++) {
            if (e[k]->type != (k == 3 ? REDIS_REPLY_INTEGER
                                      : REDIS_REPLY_STRING))
            {
                break;
            }
        }

        if (k < 5 || e[3]->integer < 0 || e[3]->integer > 2) {
            continue;
        }

        /* s% fails on a string that is not UTF-8: not written by us */
        n = json_pack("{s:s%,s:s%,s:s%,s:f,s:o}",
                      "path", e[0]->str, e[0]->len,
                      "name", e[1]->str, e[1]->len,
                      "one_liner", e[2]->str, e[2]->len,
                      "score", score[e[3]->integer],
                      "image_url", e[4]->len
                                   ? json_stringn(e[4]->str, e[4]->len)
                                   : json_null());
        if (n) {
            json_array_append_new(list, n);
        }
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_json(r, list));
}


ngx_int_t
ngx_http_clockchain_browse_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_str_t                         tail;
    ngx_http_clockchain_ctx_t        *ctx;

    rc = ngx_http_clockchain_read_start(r, NULL, &ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    /* the prefix is the URI after the location's: "", "/", "/1969", ... */

    ngx_http_clockchain_uri_tail(r, &tail);

    rc = ngx_http_clockchain_browse_prefix(r->pool, tail.data, tail.len,
                                           &ctx->path);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                   "prefix: must be the start of a moment path, "
                   "/{year}/{month}/{DD}/{HHMM}/{country}/{region}/{city}/"
                   "{slug}");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    /* through the zone: the root's counts are thousands of fields */

    return ngx_http_clockchain_read_cached(r, ctx,
                                           ctx->created_by.len ? "user"
                                                               : "service",
                                           ngx_http_clockchain_browse_read);
}


static ngx_int_t
ngx_http_clockchain_browse_read(ngx_http_request_t *r, void *data)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    ngx_http_clockchain_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    ctx->op = ngx_http_clockchain_store_browse(mcf,
                                       ctx->created_by.len ? "user"
                                                           : "service",
                                       &ctx->created_by, &ctx->path,
                                       ngx_http_clockchain_browse_done, ctx);
    if (ctx->op == NULL) {
        return ngx_http_clockchain_unavailable(r, "Graph store unavailable: "
                                               "Redis cannot be reached, "
                                               "retry later");
    }

    return NGX_DONE;
}


/*
 * "" and "/" are the root, "/"; else one to eight segments, each as a
 * canonical path has it there (a trailing slash allowed): the prefix with
 * the shortest canonical segments after it must be a canonical path.
 */

static ngx_int_t
ngx_http_clockchain_browse_prefix(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_str_t *parent)
{
    u_char      *b;
    size_t       i, n, segs;
    u_char       buf[NGX_HTTP_CLOCKCHAIN_PATH_LEN + 32];
    u_char       canonical[NGX_HTTP_CLOCKCHAIN_PATH_LEN + 33];

    static const char *const  rest[] = {
        "/0", "/may", "/01", "/0000", "/x", "/x", "/x", "/x"
    };

    if (len == 0 || (len == 1 && p[0] == '/')) {
        ngx_str_set(parent, "/");
        return NGX_OK;
    }

    if (p[0] != '/') {
        return NGX_DECLINED;
    }

    if (p[len - 1] == '/') {
        len--;
    }

    if (len > NGX_HTTP_CLOCKCHAIN_PATH_LEN) {
        return NGX_DECLINED;
    }

    for (i = 0, segs = 0; i < len; i++) {
        if (p[i] == '/') {
            segs++;
        }
    }

    if (segs > 8) {
        return NGX_DECLINED;
    }

    b = ngx_cpymem(buf, p, len);

    for (i = segs; i < 8; i++) {
        b = ngx_cpymem(b, rest[i], ngx_strlen(rest[i]));
    }

    /* the original's unpadded day ("/1776/july/4", as the MCP client
     * browses) names the canonical "04" */

    n = ngx_http_clockchain_canonical_path((char *) buf, b - buf,
                                           (char *) canonical);
    if (n == 0) {
        return NGX_DECLINED;
    }

    len += n - (b - buf);

    parent->data = ngx_pnalloc(pool, len);
    if (parent->data == NULL) {
        return NGX_ERROR;
    }

    parent->len = len;
    ngx_memcpy(parent->data, canonical, len);

    return NGX_OK;
}


/*
 * {prefix, items: [{segment, count, label}]}, label the segment itself;
 * sorted by segment (bytes), at most NGX_HTTP_CLOCKCHAIN_BROWSE_MAX.
 */

static void
ngx_http_clockchain_browse_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    json_t                            *json, *items, *n;
    ngx_uint_t                         i, k;
    ngx_array_t                        list;
    ngx_http_request_t                *r;
    ngx_http_clockchain_browse_item_t *it;

    r = ctx->request;
    ctx->op = NULL;

    if (ngx_http_clockchain_graph_reply(r, reply, "browse", "Not found")
        != NGX_OK)
    {
        return;
    }

    if (ngx_array_init(&list, r->pool, 64,
                       sizeof(ngx_http_clockchain_browse_item_t))
        != NGX_OK
        || ngx_http_clockchain_browse_items(r, reply, &list) != NGX_OK)
    {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    it = list.elts;

    ngx_qsort(it, list.nelts, sizeof(ngx_http_clockchain_browse_item_t),
              ngx_http_clockchain_browse_cmp);

    /* a user's own counts added to the shared ones of the same segment */

    for (i = 0, k = 0; i < list.nelts; i++) {
        if (k && it[k - 1].segment.len == it[i].segment.len
            && ngx_memcmp(it[k - 1].segment.data, it[i].segment.data,
                          it[i].segment.len) == 0)
        {
            it[k - 1].count += it[i].count;
            continue;
        }

        it[k++] = it[i];
    }

    items = json_array();
    json = json_pack("{s:s%,s:o}", "prefix", ctx->path.data, ctx->path.len,
                     "items", items);
    if (json == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 0; i < k && json_array_size(items)
                         < NGX_HTTP_CLOCKCHAIN_BROWSE_MAX; i++)
    {
        if (it[i].count <= 0) {
            continue;
        }

        n = json_pack("{s:s%,s:I,s:s%}",
                      "segment", it[i].segment.data, it[i].segment.len,
                      "count", (json_int_t) it[i].count,
                      "label", it[i].segment.data, it[i].segment.len);
        if (n) {
            json_array_append_new(items, n);
        }
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_json(r, json));
}


/*
 * The segments and counts of a reply: HGETALL's flat list (the service),
 * or browse.lua's list of them (a user's shared and own counts).
 */

static ngx_int_t
ngx_http_clockchain_browse_items(ngx_http_request_t *r, redisReply *reply,
    ngx_array_t *items)
{
    size_t                              i, h, nh;
    ngx_int_t                           n;
    redisReply                         *hash, **e;
    ngx_http_clockchain_browse_item_t  *it;

    nh = 1;

    if (reply->elements && reply->element[0]->type == REDIS_REPLY_ARRAY) {
        nh = reply->elements;
    }

    for (h = 0; h < nh; h++) {
        hash = (reply->elements
                && reply->element[0]->type == REDIS_REPLY_ARRAY)
               ? reply->element[h] : reply;

        if (hash->type != REDIS_REPLY_ARRAY) {
            continue;
        }

        e = hash->element;

        for (i = 0; i + 1 < hash->elements; i += 2) {
            if (e[i]->type != REDIS_REPLY_STRING
                || e[i + 1]->type != REDIS_REPLY_STRING)
            {
                continue;
            }

            n = ngx_atoi((u_char *) e[i + 1]->str, e[i + 1]->len);
            if (n == NGX_ERROR) {
                continue;
            }

            it = ngx_array_push(items);
            if (it == NULL) {
                return NGX_ERROR;
            }

            it->segment.data = (u_char *) e[i]->str;
            it->segment.len = e[i]->len;
            it->count = n;
        }
    }

    return NGX_OK;
}


/* by segment, as bytes: Lua's and Perl's order of the segments */

static int ngx_libc_cdecl
ngx_http_clockchain_browse_cmp(const void *one, const void *two)
{
    int                                       rc;
    const ngx_http_clockchain_browse_item_t  *a = one, *b = two;

    rc = ngx_memcmp(a->segment.data, b->segment.data,
                    ngx_min(a->segment.len, b->segment.len));

    if (rc != 0) {
        return rc;
    }

    return (a->segment.len > b->segment.len)
           - (a->segment.len < b->segment.len);
}

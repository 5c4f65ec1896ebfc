
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * What every clockchain handler does with a request: keys, headers, the
 * body, the request's context, and JSON answers.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_shm.h"
#include "ngx_http_clockchain_stats.h"
#include "ngx_http_clockchain_store.h"
#include "ngx_http_clockchain_request.h"
#include "ngx_http_clockchain_query.h"
#include "ngx_http_clockchain_create.h"
#include "ngx_http_clockchain_wait.h"
#include "ngx_http_clockchain_commit.h"


static ngx_int_t ngx_http_clockchain_key_match(ngx_array_t *keys,
    ngx_str_t *given);
static void ngx_http_clockchain_ctx_cleanup(void *data);
static void ngx_http_clockchain_read_version(void *data, redisReply *reply);
static ngx_int_t ngx_http_clockchain_preflight(ngx_http_request_t *r,
    ngx_str_t *method);
static ngx_int_t ngx_http_clockchain_cors_allowed(ngx_array_t *origins,
    ngx_str_t *origin);
static ngx_int_t ngx_http_clockchain_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_request_body_filter_pt  ngx_http_clockchain_next_body_filter;


/* what a preflight may ask for: the methods and headers the API reads */
#define NGX_HTTP_CLOCKCHAIN_CORS_METHODS  "GET, HEAD, POST, PATCH"
#define NGX_HTTP_CLOCKCHAIN_CORS_HEADERS                                      \
    "Content-Type, X-Service-Key, X-Admin-Key, X-User-Id, Idempotency-Key"
#define NGX_HTTP_CLOCKCHAIN_CORS_MAX_AGE  "600"

static ngx_str_t  ngx_http_clockchain_cors_methods[] = {
    ngx_string("GET"),
    ngx_string("HEAD"),
    ngx_string("POST"),
    ngx_string("PATCH"),
    ngx_null_string
};


ngx_int_t
ngx_http_clockchain_read_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    size_t        len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    ngx_str_set(body, "");

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            /* a body past client_body_buffer_size was spooled to disk */
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);

            if (n != b->file_last - b->file_pos) {
                return NGX_ERROR;
            }

            p += n;
            continue;
        }

        if (b->last != b->pos) {
            /* the last buffer of a chunked body is empty, pos NULL */
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    *p = '\0';

    return NGX_OK;
}


void
ngx_http_clockchain_body_filter_init(void)
{
    ngx_http_clockchain_next_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_clockchain_body_filter;
}


/*
 * A chunked body is copied into a buffer of its own, up to one byte past
 * the location's limit (the handler answers that byte with its JSON 413),
 * and nginx gets it whole at the end.  nginx's buffer holds the chunks'
 * framing too: a legal body in small chunks filled it, as did any body
 * past the limit, and nginx spooled it to client_body_temp_path, a 500
 * for workers that cannot reach it (t/33-body-sizes-writers.t).
 */

static ngx_int_t
ngx_http_clockchain_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    size_t                           n;
    ngx_buf_t                       *b;
    ngx_chain_t                     *cl, *out, *last;
    ngx_http_clockchain_ctx_t       *ctx;
    ngx_http_clockchain_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_clockchain_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);

    if (!r->headers_in.chunked || llcf->body_max == 0 || ctx == NULL) {
        return ngx_http_clockchain_next_body_filter(r, in);
    }

    b = ctx->chunked;

    if (b == NULL) {
        b = ngx_create_temp_buf(r->pool, llcf->body_max + 1);
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->chunked = b;
    }

    last = NULL;

    for (cl = in; cl; cl = cl->next) {
        n = ngx_min((size_t) (cl->buf->last - cl->buf->pos),
                    (size_t) (b->end - b->last));

        if (n) {
            b->last = ngx_cpymem(b->last, cl->buf->pos, n);
        }

        /* taken, or dropped past the limit: nginx's buffer is free again */
        cl->buf->pos = cl->buf->last;

        if (cl->buf->last_buf) {
            last = cl;
        }
    }

    if (last == NULL) {
        return ngx_http_clockchain_next_body_filter(r, NULL);
    }

    out = ngx_alloc_chain_link(r->pool);
    cl = ngx_alloc_chain_link(r->pool);

    if (out == NULL || cl == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    out->buf = b;
    out->next = cl;
    cl->buf = last->buf;
    cl->next = NULL;

    return ngx_http_clockchain_next_body_filter(r, out);
}


/*
 * Every clockchain location's content handler: a browser's CORS preflight
 * is answered here, before the handler's method check and keys, since a
 * browser sends it without the request's headers; anything else goes to
 * the location's handler.
 */

ngx_int_t
ngx_http_clockchain_entry(ngx_http_request_t *r)
{
    ngx_str_t                        origin, method;
    ngx_http_clockchain_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_clockchain_module);

    if (r->method == NGX_HTTP_OPTIONS
        && llcf->cors_origins != NULL
        && ngx_http_clockchain_header(r, "Origin", &origin) != 0
        && ngx_http_clockchain_header(r, "Access-Control-Request-Method",
                                      &method) != 0)
    {
        return ngx_http_clockchain_preflight(r, &method);
    }

    return llcf->handler(r);
}


/*
 * 204 with what may be asked; the origin's own headers are the filter's
 * (ngx_http_clockchain_cors_headers).  As Starlette's CORSMiddleware does,
 * an origin or a method not allowed is a 400 that says which.
 */

static ngx_int_t
ngx_http_clockchain_preflight(ngx_http_request_t *r, ngx_str_t *method)
{
    ngx_int_t                        rc, n;
    ngx_str_t                        origin, *m;
    ngx_http_clockchain_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_clockchain_module);

    n = ngx_http_clockchain_header(r, "Origin", &origin);

    if (n != 1
        || !ngx_http_clockchain_cors_allowed(llcf->cors_origins, &origin))
    {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                                         "Disallowed CORS origin");
    }

    /* the method as a browser sends it: case matters */

    m = ngx_http_clockchain_cors_methods;

    while (m->len
           && (m->len != method->len
               || ngx_strncmp(m->data, method->data, m->len) != 0))
    {
        m++;
    }

    if (m->len == 0
        || ngx_http_clockchain_header(r, "Access-Control-Request-Method",
                                      method) != 1)
    {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                                         "Disallowed CORS method");
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_clockchain_add_header(r, "Access-Control-Allow-Methods",
                                       NGX_HTTP_CLOCKCHAIN_CORS_METHODS)
        != NGX_OK
        || ngx_http_clockchain_add_header(r, "Access-Control-Allow-Headers",
                                          NGX_HTTP_CLOCKCHAIN_CORS_HEADERS)
           != NGX_OK
        || ngx_http_clockchain_add_header(r, "Access-Control-Max-Age",
                                          NGX_HTTP_CLOCKCHAIN_CORS_MAX_AGE)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_NO_CONTENT;
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    return ngx_http_send_header(r);
}


/*
 * The header filter's part, for every answer of a clockchain location
 * with clockchain_cors_origins, errors included: an allowed Origin is
 * told so (each listed origin by name, any origin with "*"); any other,
 * or none, gets no CORS header.
 */

ngx_int_t
ngx_http_clockchain_cors_headers(ngx_http_request_t *r)
{
    ngx_str_t                        origin, *o;
    ngx_table_elt_t                 *h;
    ngx_http_clockchain_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_clockchain_module);

    if (llcf->handler == NULL || llcf->cors_origins == NULL || r != r->main) {
        return NGX_OK;
    }

    /* two Origins: which one would the browser have checked? */

    if (ngx_http_clockchain_header(r, "Origin", &origin) != 1
        || !ngx_http_clockchain_cors_allowed(llcf->cors_origins, &origin))
    {
        return NGX_OK;
    }

    o = llcf->cors_origins->elts;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    ngx_str_set(&h->key, "Access-Control-Allow-Origin");
    h->value = (o[0].len == 1 && o[0].data[0] == '*') ? o[0] : origin;

    return ngx_http_clockchain_vary(r, "Origin");
}


static ngx_int_t
ngx_http_clockchain_cors_allowed(ngx_array_t *origins, ngx_str_t *origin)
{
    ngx_str_t   *o;
    ngx_uint_t   i;

    o = origins->elts;

    if (o[0].len == 1 && o[0].data[0] == '*') {
        return 1;
    }

    for (i = 0; i < origins->nelts; i++) {
        if (o[i].len == origin->len
            && ngx_strncmp(o[i].data, origin->data, origin->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* NGX_DECLINED: the keys are good; anything else was answered */

ngx_int_t
ngx_http_clockchain_auth(ngx_http_request_t *r, ngx_uint_t admin)
{
    ngx_int_t                        n;
    ngx_str_t                        given;
    ngx_http_clockchain_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_clockchain_module);

    if (llcf->service_keys == NULL || llcf->service_keys->nelts == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "clockchain: no service key is configured for "
                      "this location");

        return ngx_http_clockchain_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "Job manager not available");
    }

    n = ngx_http_clockchain_header(r, "X-Service-Key", &given);

    if (n > 1) {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                   "X-Service-Key: the header is given more than once");
    }

    if (n == 0 || !ngx_http_clockchain_key_match(llcf->service_keys, &given))
    {
        return ngx_http_clockchain_error(r, NGX_HTTP_UNAUTHORIZED,
                                         "Missing or invalid service key");
    }

    if (!admin) {
        return NGX_DECLINED;
    }

    n = ngx_http_clockchain_header(r, "X-Admin-Key", &given);

    if (n > 1) {
        /* as for every header: which of two would a proxy have checked? */
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                   "X-Admin-Key: the header is given more than once");
    }

    if (n == 0 || llcf->admin_keys == NULL
        || !ngx_http_clockchain_key_match(llcf->admin_keys, &given))
    {
        return ngx_http_clockchain_error(r, NGX_HTTP_FORBIDDEN,
                                         "Admin key required");
    }

    return NGX_DECLINED;
}


/*
 * Constant time in the given key's content: every configured key is
 * compared in full, and no comparison stops at the first difference.
 */

static ngx_int_t
ngx_http_clockchain_key_match(ngx_array_t *keys, ngx_str_t *given)
{
    u_char      diff, *g;
    ngx_str_t  *key;
    ngx_uint_t  i, j, match;

    key = keys->elts;
    match = 0;

    for (i = 0; i < keys->nelts; i++) {
        /*
         * a given key of another length is no match: the key is compared
         * with itself instead, the same work, with no test in the loop
         */
        diff = (key[i].len != given->len);
        g = diff ? key[i].data : given->data;

        for (j = 0; j < key[i].len; j++) {
            diff |= key[i].data[j] ^ g[j];
        }

        match |= (diff == 0);
    }

    return match;
}


/*
 * returns how many times the header was given; value is the first.  A
 * name as written (clients send "X-Service-Key" so) is found with one
 * memcmp; any other case with the case-insensitive compare.
 */

ngx_int_t
ngx_http_clockchain_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    size_t            len;
    ngx_int_t         n;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    n = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && (ngx_memcmp(h[i].key.data, name, len) == 0
                || ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0))
        {
            if (n++ == 0) {
                *value = h[i].value;
            }
        }
    }

    return n;
}


ngx_int_t
ngx_http_clockchain_json_content_type(ngx_http_request_t *r)
{
    u_char     *p, *last;
    ngx_str_t   value;

    if (r->headers_in.content_type == NULL) {
        return NGX_DECLINED;
    }

    /*
     * nginx keeps the first of two; a proxy in front may have read the
     * other: a body of two types is not JSON
     */
    if (ngx_http_clockchain_header(r, "Content-Type", &value) != 1) {
        return NGX_DECLINED;
    }

    p = r->headers_in.content_type->value.data;
    last = p + r->headers_in.content_type->value.len;

    /* "application/json", optionally followed by parameters */

    if ((size_t) (last - p) < sizeof("application/json") - 1
        || ngx_strncasecmp(p, (u_char *) "application/json",
                           sizeof("application/json") - 1) != 0)
    {
        return NGX_DECLINED;
    }

    p += sizeof("application/json") - 1;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    return (p == last || *p == ';') ? NGX_OK : NGX_DECLINED;
}


ngx_http_clockchain_ctx_t *
ngx_http_clockchain_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t         *cln;
    ngx_http_clockchain_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_clockchain_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_clockchain_ctx_cleanup;
    cln->data = ctx;

    ctx->request = r;

    ngx_http_set_ctx(r, ctx, ngx_http_clockchain_module);

    return ctx;
}


static void
ngx_http_clockchain_ctx_cleanup(void *data)
{
    ngx_http_clockchain_ctx_t  *ctx = data;

    /* the request is going away before Redis answered */

    if (ctx->op) {
        ngx_http_clockchain_redis_cancel(ctx->op);
        ctx->op = NULL;
    }

    ngx_http_clockchain_commit_cancel(ctx);
    ngx_http_clockchain_wait_stop(ctx);
}


void
ngx_http_clockchain_finalize(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_connection_t  *c;

    c = r->connection;

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


ngx_int_t
ngx_http_clockchain_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *fmt, ...)
{
    u_char   *p, *data;
    size_t    len, n;
    va_list   args;
    u_char    detail[NGX_HTTP_CLOCKCHAIN_ERR_LEN + 64];

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    va_start(args, fmt);
    p = ngx_vslprintf(detail, detail + sizeof(detail), fmt, args);
    va_end(args);

    n = p - detail;

    len = sizeof("{\"detail\":}") - 1
          + ngx_http_clockchain_json_string_len((char *) detail, n);

    data = ngx_pnalloc(r->pool, len);
    if (data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(data, "{\"detail\":", sizeof("{\"detail\":") - 1);
    p = (u_char *) ngx_http_clockchain_json_string((char *) p,
                                                   (char *) detail, n);
    *p++ = '}';

    return ngx_http_clockchain_send(r, status, data, p - data);
}


ngx_int_t
ngx_http_clockchain_send(ngx_http_request_t *r, ngx_uint_t status,
    u_char *data, size_t len)
{
    return ngx_http_clockchain_send_type(r, status, data, len,
                                         "application/json");
}


ngx_int_t
ngx_http_clockchain_send_type(ngx_http_request_t *r, ngx_uint_t status,
    u_char *data, size_t len, const char *type)
{
    return ngx_http_clockchain_send_body(r, status, data, len, type,
                                         "no-store");
}


/*
 * The answer: status, Content-Type, Cache-Control and a body from memory
 * that lives as long as the request; headers the caller added (ETag,
 * Vary) go with them.
 */

ngx_int_t
ngx_http_clockchain_send_body(ngx_http_request_t *r, ngx_uint_t status,
    u_char *data, size_t len, const char *type, const char *cache_control)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    if (ngx_http_clockchain_add_header(r, "Cache-Control", cache_control)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = data;
    b->last = data + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* ETag: value, quotes included; nginx's not_modified filter reads it */

ngx_int_t
ngx_http_clockchain_etag(ngx_http_request_t *r, u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    ngx_str_set(&h->key, "ETag");
    h->value.data = value;
    h->value.len = len;

    r->headers_out.etag = h;

    return NGX_OK;
}


ngx_int_t
ngx_http_clockchain_add_header(ngx_http_request_t *r, const char *name,
    const char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = (u_char *) value;
    h->value.len = ngx_strlen(value);

    return NGX_OK;
}


void *
ngx_http_clockchain_palloc(void *ctx, size_t size)
{
    return ngx_palloc(ctx, size);
}


/*
 * X-User-Id, when given: 1 to 255 printable characters without spaces.
 * NULL with user set (empty when absent), or what is wrong with it for a
 * 400.  The caller answers: an answer sent from here returned NGX_OK,
 * which read as "valid" and made a second answer.
 */

const char *
ngx_http_clockchain_user(ngx_http_request_t *r, ngx_str_t *user)
{
    ngx_int_t  n;

    n = ngx_http_clockchain_header(r, "X-User-Id", user);

    if (n == 0) {
        ngx_str_null(user);
        return NULL;
    }

    if (n > 1) {
        return "X-User-Id: the header is given more than once";
    }

    return ngx_http_clockchain_check_user((char *) user->data, user->len);
}


/* 405 with the methods the location answers */

ngx_int_t
ngx_http_clockchain_not_allowed(ngx_http_request_t *r, const char *allow)
{
    if (ngx_http_clockchain_add_header(r, "Allow", allow) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_clockchain_error(r, NGX_HTTP_NOT_ALLOWED,
                                     "Method Not Allowed");
}


/* 503 with Retry-After: the request cannot be honoured safely now */

ngx_int_t
ngx_http_clockchain_unavailable(ngx_http_request_t *r, const char *detail)
{
    if (ngx_http_clockchain_add_header(r, "Retry-After",
                                       NGX_HTTP_CLOCKCHAIN_RETRY_AFTER)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_clockchain_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "%s",
                                     detail);
}


/* a JSON answer, 200; the JSON is freed */

/* a 200 with the JSON; a graph read through the zone is kept there too */

ngx_int_t
ngx_http_clockchain_send_json(ngx_http_request_t *r, json_t *json)
{
    u_char                            *p;
    char                              *text;
    size_t                             len;
    ngx_http_clockchain_ctx_t         *ctx;
    ngx_http_clockchain_shm_moment_t   m;
    ngx_http_clockchain_main_conf_t   *mcf;

    text = json_dumps(json, NGX_HTTP_CLOCKCHAIN_JSON_ANSWER);
    json_decref(json);

    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_strlen(text);

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        free(text);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(p, text, len);
    free(text);

    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);

    if (ctx && ctx->cache_key.len) {
        ngx_memzero(&m, sizeof(ngx_http_clockchain_shm_moment_t));
        m.status = NGX_HTTP_OK;
        m.version = ctx->cache_version;
        m.body.data = p;
        m.body.len = len;

        mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);
        ngx_http_clockchain_shm_moment_put(mcf->shm_zone, &ctx->cache_key,
                                           &m, 0);
    }

    return ngx_http_clockchain_send(r, NGX_HTTP_OK, p, len);
}


/*
 * A graph read through the zone (browse, search, the list, neighbours):
 * the graph's version first (GET idx:version, a few µs of Redis; every
 * script that changes what these reads answer gives it a new value in the
 * same step); the zone's answer to the same request (mode, user, URI and
 * arguments) when it was read at that version; else read() sends the
 * read, and ngx_http_clockchain_send_json() keeps its answer under the
 * version.  The version is read before the answer, so an answer is never
 * kept under a version older than itself: a change is seen as soon as
 * Redis has it, on every nginx.  read() returns NGX_DONE when its command
 * is sent, else the status of what it answered.  Returns NGX_DONE, or a
 * status.
 */

ngx_int_t
ngx_http_clockchain_read_cached(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, const char *mode,
    ngx_int_t (*read)(ngx_http_request_t *r, void *ctx))
{
    u_char                           *p;
    size_t                            len;
    ngx_http_clockchain_main_conf_t  *mcf;

    /* "<mode>\n<user>\n<uri>?<args>": never a path, the moments' keys */

    len = ngx_strlen(mode) + 1 + ctx->created_by.len + 1 + r->uri.len + 1
          + r->args.len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->cache_read = read;
    ctx->cache_key.data = p;
    ctx->cache_key.len = len;

    /* no memcpy() from NULL: nginx leaves an absent user or query NULL */

    p = ngx_cpymem(p, mode, ngx_strlen(mode));
    *p++ = '\n';

    if (ctx->created_by.len) {
        p = ngx_cpymem(p, ctx->created_by.data, ctx->created_by.len);
    }

    *p++ = '\n';
    p = ngx_cpymem(p, r->uri.data, r->uri.len);
    *p++ = '?';

    if (r->args.len) {
        ngx_memcpy(p, r->args.data, r->args.len);
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    ctx->op = ngx_http_clockchain_store_graph_version(mcf,
                                       ngx_http_clockchain_read_version, ctx);
    if (ctx->op == NULL) {
        return ngx_http_clockchain_unavailable(r, "Graph store unavailable: "
                                               "Redis cannot be reached, "
                                               "retry later");
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_clockchain_read_version(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    ngx_int_t                          rc;
    ngx_http_request_t                *r;
    ngx_http_clockchain_shm_moment_t   m;
    ngx_http_clockchain_main_conf_t   *mcf;

    r = ctx->request;
    ctx->op = NULL;

    if (reply == NULL || (reply->type != REDIS_REPLY_STRING
                          && reply->type != REDIS_REPLY_NIL))
    {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "clockchain: reading the graph's version failed: "
                          "%s", reply->str);
        }

        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: Redis cannot "
                                     "be reached, retry later"));
        return;
    }

    /* 64 bits of the version: 0 before any, never a value's */
    ctx->cache_version = 0;

    if (reply->type == REDIS_REPLY_STRING) {
        ctx->cache_version = ((uint64_t) ngx_crc32_long((u_char *) reply->str,
                                                        reply->len) << 32
                              | ngx_murmur_hash2((u_char *) reply->str,
                                                 reply->len))
                             | 1;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    rc = ngx_http_clockchain_shm_moment_get(mcf->shm_zone, &ctx->cache_key,
                                            r->pool, NULL, 0, &m);
    if (rc == NGX_ERROR) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_OK && m.version == ctx->cache_version
        && m.status == NGX_HTTP_OK)
    {
        ngx_http_clockchain_stat_add(graph_cache_hits, 1);
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_send(r,
                                     NGX_HTTP_OK, m.body.data, m.body.len));
        return;
    }

    ngx_http_clockchain_stat_add(graph_cache_misses, 1);

    /* NGX_DONE: sent, its reply finalizes; else what was answered */
    rc = ctx->cache_read(r, ctx);

    if (rc != NGX_DONE) {
        ngx_http_clockchain_finalize(r, rc);
    }
}


/*
 * The start of a graph read's reply handler: NGX_OK when the reply is an
 * answer to build on; else the request is answered here, 503 when Redis
 * could not answer (a script error is logged) and 404 "missing" for a node
 * that is absent or hidden from the caller (the same answer), and
 * NGX_DONE.
 */

ngx_int_t
ngx_http_clockchain_graph_reply(ngx_http_request_t *r, redisReply *reply,
    const char *what, const char *missing)
{
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        if (reply) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "clockchain: reading %s failed: %s", what,
                          reply->str);
        }

        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: Redis cannot "
                                     "be reached, retry later"));
        return NGX_DONE;
    }

    if (reply->type != REDIS_REPLY_ARRAY) {
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_error(r,
                                     NGX_HTTP_NOT_FOUND, "%s", missing));
        return NGX_DONE;
    }

    return NGX_OK;
}


/* a query argument, unescaped into the pool; NGX_DECLINED when absent */

ngx_int_t
ngx_http_clockchain_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_str_t  raw;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        return NGX_DECLINED;
    }

    value->data = ngx_pnalloc(r->pool, raw.len + 1);
    if (value->data == NULL) {
        return NGX_ERROR;
    }

    value->len = ngx_http_clockchain_query_unescape(value->data, raw.data,
                                                    raw.len);
    value->data[value->len] = '\0';

    return NGX_OK;
}


/*
 * An integer argument within [min, max], *n untouched when absent:
 * NGX_OK, NGX_ERROR, or NGX_DECLINED with *detail the 400's text.
 */

ngx_int_t
ngx_http_clockchain_arg_int(ngx_http_request_t *r, const char *name,
    int64_t min, int64_t max, int64_t *n, const char **detail)
{
    u_char     *p;
    ngx_int_t   rc;
    ngx_str_t   value;

    rc = ngx_http_clockchain_arg(r, name, &value);
    if (rc != NGX_OK) {
        return rc == NGX_DECLINED ? NGX_OK : NGX_ERROR;
    }

    if (ngx_http_clockchain_query_int(value.data, value.len, min, max, n)
        == 0)
    {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, 128);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *ngx_snprintf(p, 127, "%s: must be an integer from %L to %L",
                  name, min, max) = '\0';
    *detail = (const char *) p;

    return NGX_DECLINED;
}


/*
 * A graph read's start: GET or HEAD, a valid key (or, with anonymous,
 * none at all: the public's read), X-User-Id.  NGX_DECLINED to go on with
 * *ctxp; else the rc of the answer sent.
 */

ngx_int_t
ngx_http_clockchain_read_start(ngx_http_request_t *r,
    ngx_uint_t *anonymous, ngx_http_clockchain_ctx_t **ctxp)
{
    ngx_int_t                   rc;
    ngx_str_t                   key;
    const char                 *detail;
    ngx_http_clockchain_ctx_t  *ctx;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_clockchain_not_allowed(r, "GET, HEAD");
    }

    /*
     * Without a key a public read shows public nodes only; a key that is
     * given must be right, so a wrong one is 401 rather than a quieter
     * answer with less in it.
     */

    if (anonymous) {
        *anonymous = (ngx_http_clockchain_header(r, "X-Service-Key", &key)
                      == 0);
    }

    if (anonymous == NULL || !*anonymous) {
        rc = ngx_http_clockchain_auth(r, 0);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    ctx = ngx_http_clockchain_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (anonymous && *anonymous) {
        /* X-User-Id without a key vouching for it names nobody */
        ngx_str_null(&ctx->created_by);

    } else {
        detail = ngx_http_clockchain_user(r, &ctx->created_by);
        if (detail) {
            return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST, "%s",
                                             detail);
        }
    }

    *ctxp = ctx;

    return NGX_DECLINED;
}


/* the URI after the location's prefix, the prefix's trailing slash kept */

void
ngx_http_clockchain_uri_tail(ngx_http_request_t *r, ngx_str_t *tail)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    tail->data = r->uri.data;
    tail->len = r->uri.len;

    if (tail->len >= clcf->name.len
        && ngx_strncmp(tail->data, clcf->name.data, clcf->name.len) == 0)
    {
        tail->data += clcf->name.len;
        tail->len -= clcf->name.len;

        if (clcf->name.len && clcf->name.data[clcf->name.len - 1] == '/') {
            tail->data--;
            tail->len++;
        }
    }
}


/*
 * A moment's path as a client gives it, made canonical (the original's
 * unpadded day padded): NGX_OK, NGX_DECLINED when it is a moment's path in
 * neither form, NGX_ERROR.
 */

ngx_int_t
ngx_http_clockchain_moment_canonical(ngx_http_request_t *r, u_char *p,
    size_t len, ngx_str_t *path)
{
    u_char  *c;

    if (ngx_http_clockchain_valid_path((char *) p, len)) {
        path->data = p;
        path->len = len;
        return NGX_OK;
    }

    if (len >= NGX_HTTP_CLOCKCHAIN_PATH_LEN) {
        return NGX_DECLINED;
    }

    c = ngx_pnalloc(r->pool, len + 1);
    if (c == NULL) {
        return NGX_ERROR;
    }

    len = ngx_http_clockchain_canonical_path((char *) p, len, (char *) c);
    if (len == 0) {
        return NGX_DECLINED;
    }

    path->data = c;
    path->len = len;

    return NGX_OK;
}


/*
 * Vary: one header for every field an answer varies by, so that a cache
 * that reads only the first Vary misses none (the moment's X-Service-Key,
 * CORS's Origin).
 */

ngx_int_t
ngx_http_clockchain_vary(ngx_http_request_t *r, const char *field)
{
    u_char           *p, *q;
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0 || h[i].key.len != sizeof("Vary") - 1
            || ngx_strncasecmp(h[i].key.data, (u_char *) "Vary",
                               sizeof("Vary") - 1) != 0)
        {
            continue;
        }

        len = ngx_strlen(field);

        p = ngx_pnalloc(r->pool, h[i].value.len + 2 + len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        q = ngx_cpymem(p, h[i].value.data, h[i].value.len);
        *q++ = ',';
        *q++ = ' ';
        q = ngx_cpymem(q, field, len);

        h[i].value.data = p;
        h[i].value.len = q - p;

        return NGX_OK;
    }

    return ngx_http_clockchain_add_header(r, "Vary", field);
}

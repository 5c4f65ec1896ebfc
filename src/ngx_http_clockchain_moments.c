
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * GET {location}{path}: the graph node at a canonical path, with its edges,
 * as the requester may see it (moment.lua): without a service key, public
 * nodes; with a key and no X-User-Id (the calling service), every node;
 * with both, public nodes, "system" ones and the user's own.  The node is
 * shown as the original service shows it (every column, month a number),
 * or with ?format=tdf as a TDF record (ngx_http_clockchain_tdf.c).
 * POST {location}{path}/publish and PATCH {location}{path}/visibility: set
 * its visibility (publish.lua), the creator or the calling service only.
 * The path is made canonical (an unpadded day padded) and checked before
 * it becomes part of any key.
 *
 * The public's answer to a read without arguments (200 or 404) is cached
 * in the shared zone until an event says the moment changed (see
 * ngx_http_clockchain_shm_moment_get()); a 200 carries an ETag, the MD5 of
 * its body, and Cache-Control from clockchain_moments_max_age, and an
 * If-None-Match that names it is answered 304, from the zone alone.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_md5.h>

#include <jansson.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_create.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_request.h"
#include "ngx_http_clockchain_agents.h"
#include "ngx_http_clockchain_propose.h"
#include "ngx_http_clockchain_store.h"
#include "ngx_http_clockchain_tdf.h"
#include "ngx_http_clockchain_shm.h"
#include "ngx_http_clockchain_events.h"
#include "ngx_http_clockchain_stats.h"


#define NGX_HTTP_CLOCKCHAIN_EDGES_SHOWN  1000

/* the ETags of If-None-Match looked at, at most */
#define NGX_HTTP_CLOCKCHAIN_INM_MAX      8

/* what the segments after a moment's path ask for */
#define NGX_HTTP_CLOCKCHAIN_MOMENT_READ      0
#define NGX_HTTP_CLOCKCHAIN_MOMENT_PUBLISH   1
#define NGX_HTTP_CLOCKCHAIN_MOMENT_VISIBILITY  2
#define NGX_HTTP_CLOCKCHAIN_MOMENT_UNKNOWN   3
/* 16 and up: the writers' workflow, ngx_http_clockchain_propose.c */
#define NGX_HTTP_CLOCKCHAIN_MOMENT_WORKFLOW  16

/* ?format= of a read */
#define NGX_HTTP_CLOCKCHAIN_FORMAT_DEFAULT   0
#define NGX_HTTP_CLOCKCHAIN_FORMAT_TDF       1
#define NGX_HTTP_CLOCKCHAIN_FORMAT_BAD       2


static ngx_int_t ngx_http_clockchain_moment_path(ngx_http_request_t *r,
    ngx_str_t *path, ngx_uint_t *action);
static ngx_int_t ngx_http_clockchain_moment_read(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, const char *mode);
static void ngx_http_clockchain_moment_read_done(void *data,
    redisReply *reply);
static ngx_uint_t ngx_http_clockchain_moment_format(ngx_http_request_t *r);
static ngx_int_t ngx_http_clockchain_moment_cached(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx);
static ngx_int_t ngx_http_clockchain_moment_fill(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, json_t *json);
static ngx_uint_t ngx_http_clockchain_moment_inm(ngx_http_request_t *r,
    u_char *known, ngx_uint_t *star);
static ngx_int_t ngx_http_clockchain_moment_send(ngx_http_request_t *r,
    ngx_http_clockchain_shm_moment_t *m, ngx_uint_t modified);
static void ngx_http_clockchain_publish_body(ngx_http_request_t *r);
static void ngx_http_clockchain_visibility_body(ngx_http_request_t *r);
static void ngx_http_clockchain_publish_store(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx);
static void ngx_http_clockchain_publish_writer(ngx_http_request_t *r);

static void ngx_http_clockchain_publish_done(void *data, redisReply *reply);


ngx_int_t
ngx_http_clockchain_moments_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_str_t                   path, key;
    ngx_uint_t                  action, anonymous;
    const char                 *detail;
    ngx_http_clockchain_ctx_t  *ctx;

    (void) ngx_http_clockchain_moment_path(r, &path, &action);

    if (action >= NGX_HTTP_CLOCKCHAIN_MOMENT_WORKFLOW) {
        return ngx_http_clockchain_propose_handler(r, &path,
                                 action - NGX_HTTP_CLOCKCHAIN_MOMENT_WORKFLOW);
    }

    if (action == NGX_HTTP_CLOCKCHAIN_MOMENT_PUBLISH
        && r->method != NGX_HTTP_POST)
    {
        return ngx_http_clockchain_not_allowed(r, "POST");
    }

    if (action == NGX_HTTP_CLOCKCHAIN_MOMENT_VISIBILITY
        && r->method != NGX_HTTP_PATCH)
    {
        return ngx_http_clockchain_not_allowed(r, "PATCH");
    }

    if (action == NGX_HTTP_CLOCKCHAIN_MOMENT_READ
        && !(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)))
    {
        return ngx_http_clockchain_not_allowed(r, "GET, HEAD");
    }

    /*
     * A read needs no key, and then shows public nodes only; a key that
     * is given must be right, so a wrong one is 401 rather than a quieter
     * answer with less in it.
     */

    anonymous = (action == NGX_HTTP_CLOCKCHAIN_MOMENT_READ
                 && ngx_http_clockchain_header(r, "X-Service-Key", &key)
                    == 0);

    if (!anonymous) {
        rc = ngx_http_clockchain_auth(r, 0);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    if (action == NGX_HTTP_CLOCKCHAIN_MOMENT_UNKNOWN) {
        if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
            /* a read of nine segments: a path that names no node */
            return ngx_http_clockchain_error(r, NGX_HTTP_NOT_FOUND,
                                             "Moment not found");
        }

        return ngx_http_clockchain_error(r, NGX_HTTP_NOT_FOUND,
                   "Unknown action on a moment: after the eight segments of "
                   "its path, the actions are \"publish\", \"visibility\", "
                   "\"challenge\", \"verify\", \"reconcile\", "
                   "\"challenges\" and \"history\"");
    }

    if (action == NGX_HTTP_CLOCKCHAIN_MOMENT_READ
        && ngx_http_clockchain_moment_format(r)
           == NGX_HTTP_CLOCKCHAIN_FORMAT_BAD)
    {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                   "Invalid format: \"default\" (the node) or \"tdf\" (a "
                   "TDF record)");
    }

    /* a path that names no node, whatever its form, is one answer */

    if (path.data == NULL) {
        return ngx_http_clockchain_error(r, NGX_HTTP_NOT_FOUND,
                                         "Moment not found");
    }

    ctx = ngx_http_clockchain_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->path = path;

    if (anonymous) {
        /* X-User-Id without a key vouching for it names nobody */
        ngx_str_null(&ctx->created_by);

    } else {
        detail = ngx_http_clockchain_user(r, &ctx->created_by);
        if (detail) {
            return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST, "%s",
                                             detail);
        }
    }

    if (action == NGX_HTTP_CLOCKCHAIN_MOMENT_READ) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_clockchain_moment_read(r, ctx,
                                               anonymous ? "public"
                                               : ctx->created_by.len ? "user"
                                               : "service");
    }

    if ((r->headers_in.content_length_n > 0 || r->headers_in.chunked)
        && ngx_http_clockchain_json_content_type(r) != NGX_OK)
    {
        return ngx_http_clockchain_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                   "Content-Type must be application/json: send the body "
                   "as JSON with \"Content-Type: application/json\"");
    }

    if (r->headers_in.content_length_n > NGX_HTTP_CLOCKCHAIN_PUBLISH_MAX) {
        return ngx_http_clockchain_error(r,
                   NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                   "Request body too large: the limit is "
                   ngx_value(NGX_HTTP_CLOCKCHAIN_PUBLISH_MAX) " bytes");
    }

    rc = ngx_http_read_client_request_body(r,
             action == NGX_HTTP_CLOCKCHAIN_MOMENT_PUBLISH
             ? ngx_http_clockchain_publish_body
             : ngx_http_clockchain_visibility_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/*
 * The canonical path is the URI after the location's prefix, with its
 * leading slash, and without the action ("/publish", "/visibility"); the
 * original's form with an unpadded day (/2016/march/9/...) is made the
 * canonical one (/2016/march/09/...).  path->data is NULL when it is not
 * a moment's path in either form.
 */

static ngx_int_t
ngx_http_clockchain_moment_path(ngx_http_request_t *r, ngx_str_t *path,
    ngx_uint_t *action)
{
    u_char      *p, *s;
    size_t       len, slen, i, slash;
    ngx_str_t    tail;
    ngx_uint_t   n;

    ngx_http_clockchain_uri_tail(r, &tail);

    p = tail.data;
    len = tail.len;

    /*
     * One route rule for every moment route: exactly eight segments name a
     * moment, and a ninth is an action on it.  A slug is never taken for
     * an action, so a moment whose slug is "publish" can be read.
     */

    *action = NGX_HTTP_CLOCKCHAIN_MOMENT_READ;

    /* POST {location}/propose: a new moment, no path yet */

    if (len == sizeof("/propose") - 1
        && ngx_strncmp(p, "/propose", len) == 0)
    {
        *action = NGX_HTTP_CLOCKCHAIN_MOMENT_WORKFLOW
                  + NGX_HTTP_CLOCKCHAIN_PROPOSE_NEW;
        ngx_str_null(path);
        return NGX_DECLINED;
    }

    for (i = 0, n = 0, slash = len; i < len; i++) {
        if (p[i] == '/' && ++n == 9) {
            slash = i;
        }
    }

    if (n == 9) {
        i = slash;
        s = p + i + 1;
        slen = len - i - 1;

        if (slen == sizeof("publish") - 1
            && ngx_strncmp(s, "publish", slen) == 0)
        {
            *action = NGX_HTTP_CLOCKCHAIN_MOMENT_PUBLISH;

        } else if (slen == sizeof("visibility") - 1
                   && ngx_strncmp(s, "visibility", slen) == 0)
        {
            *action = NGX_HTTP_CLOCKCHAIN_MOMENT_VISIBILITY;

        } else {
            *action = ngx_http_clockchain_propose_action(s, slen);
            *action = (*action == 0) ? NGX_HTTP_CLOCKCHAIN_MOMENT_UNKNOWN
                      : NGX_HTTP_CLOCKCHAIN_MOMENT_WORKFLOW + *action;
        }

        len = i;
    }

    if (ngx_http_clockchain_moment_canonical(r, p, len, path) != NGX_OK) {
        ngx_str_null(path);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_clockchain_moment_format(ngx_http_request_t *r)
{
    ngx_str_t  v;

    if (ngx_http_arg(r, (u_char *) "format", 6, &v) != NGX_OK) {
        return NGX_HTTP_CLOCKCHAIN_FORMAT_DEFAULT;
    }

    if (v.len == 3 && ngx_strncmp(v.data, "tdf", 3) == 0) {
        return NGX_HTTP_CLOCKCHAIN_FORMAT_TDF;
    }

    if (v.len == 7 && ngx_strncmp(v.data, "default", 7) == 0) {
        return NGX_HTTP_CLOCKCHAIN_FORMAT_DEFAULT;
    }

    return NGX_HTTP_CLOCKCHAIN_FORMAT_BAD;
}


static ngx_int_t
ngx_http_clockchain_moment_read(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, const char *mode)
{
    ngx_int_t                         rc;
    ngx_http_clockchain_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    /* the public's plain read only: ?format= and the like are other bodies */
    if (ngx_strcmp(mode, "public") == 0 && r->args.len == 0) {
        rc = ngx_http_clockchain_moment_cached(r, ctx);
        if (rc != NGX_DECLINED) {
            return rc;
        }

        ctx->moment_public = 1;
        ctx->moment_seq = ngx_http_clockchain_shm_moment_seq(mcf->shm_zone);
    }

    ctx->op = ngx_http_clockchain_store_moment(mcf, &ctx->path,
                                        &ctx->created_by, mode,
                                        NGX_HTTP_CLOCKCHAIN_EDGES_SHOWN,
                                        ngx_http_clockchain_moment_read_done,
                                        ctx);
    if (ctx->op == NULL) {
        return ngx_http_clockchain_unavailable(r, "Graph store unavailable: "
                                               "Redis cannot be reached, "
                                               "retry later");
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_clockchain_moment_read_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    json_t              *json;
    ngx_http_request_t  *r;

    r = ctx->request;
    ctx->op = NULL;

    if (ctx->moment_public && reply && reply->type != REDIS_REPLY_ERROR
        && reply->type != REDIS_REPLY_ARRAY)
    {
        /* absent or private: the public's 404 is cached as well */
        (void) ngx_http_clockchain_moment_fill(r, ctx, NULL);
    }

    if (ngx_http_clockchain_graph_reply(r, reply, "a moment",
                                        "Moment not found")
        != NGX_OK)
    {
        return;
    }

    json = (reply->elements == 2)
           ? ngx_http_clockchain_moment_json(reply->element[0],
                                             reply->element[1],
                                     ngx_http_clockchain_moment_format(r))
           : NULL;

    if (json == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->moment_public) {
        ngx_http_clockchain_finalize(r,
                              ngx_http_clockchain_moment_fill(r, ctx, json));
        return;
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_json(r, json));
}


/*
 * The public's answer from the zone, when this worker hears the events
 * (else a change could go unheard): NGX_DECLINED when it is not there.
 */

static ngx_int_t
ngx_http_clockchain_moment_cached(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx)
{
    u_char                            known[NGX_HTTP_CLOCKCHAIN_INM_MAX
                                            * NGX_HTTP_CLOCKCHAIN_ETAG_LEN];
    ngx_int_t                         rc;
    ngx_uint_t                        nknown, star;
    ngx_http_clockchain_shm_moment_t  m;
    ngx_http_clockchain_main_conf_t  *mcf;

    if (!ngx_http_clockchain_events_subscribed()) {
        return NGX_DECLINED;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    nknown = ngx_http_clockchain_moment_inm(r, known, &star);

    rc = ngx_http_clockchain_shm_moment_get(mcf->shm_zone, &ctx->path,
                                            r->pool, known, nknown, &m);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_clockchain_stat_add(moment_misses, 1);
        return NGX_DECLINED;
    }

    ngx_http_clockchain_stat_add(moment_hits, 1);

    if (m.status != NGX_HTTP_OK) {
        return ngx_http_clockchain_error(r, NGX_HTTP_NOT_FOUND,
                                         "Moment not found");
    }

    return ngx_http_clockchain_moment_send(r, &m,
                                           m.body.len != 0 && !star);
}


/*
 * The public's answer read from Redis (json NULL: a 404), cached with the
 * sequence its read was sent at, then sent (a 200; a 404 is sent by the
 * caller).
 */

static ngx_int_t
ngx_http_clockchain_moment_fill(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, json_t *json)
{
    u_char                            known[NGX_HTTP_CLOCKCHAIN_INM_MAX
                                            * NGX_HTTP_CLOCKCHAIN_ETAG_LEN];
    u_char                            digest[16];
    char                             *text;
    ngx_md5_t                         md5;
    ngx_uint_t                        i, nknown, star;
    ngx_http_clockchain_shm_moment_t  m;
    ngx_http_clockchain_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    ngx_memzero(&m, sizeof(ngx_http_clockchain_shm_moment_t));

    if (json == NULL) {
        m.status = NGX_HTTP_NOT_FOUND;
        ngx_http_clockchain_shm_moment_put(mcf->shm_zone, &ctx->path, &m,
                                           ctx->moment_seq);
        return NGX_OK;
    }

    text = json_dumps(json, NGX_HTTP_CLOCKCHAIN_JSON_ANSWER);
    json_decref(json);

    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    m.status = NGX_HTTP_OK;
    m.body.len = ngx_strlen(text);
    m.body.data = ngx_pnalloc(r->pool, m.body.len);

    if (m.body.data == NULL) {
        free(text);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(m.body.data, text, m.body.len);
    free(text);

    /* the body's digest: the same answer has the same ETag on every nginx */
    ngx_md5_init(&md5);
    ngx_md5_update(&md5, m.body.data, m.body.len);
    ngx_md5_final(digest, &md5);
    ngx_hex_dump(m.etag, digest, NGX_HTTP_CLOCKCHAIN_ETAG_LEN / 2);

    ngx_http_clockchain_shm_moment_put(mcf->shm_zone, &ctx->path, &m,
                                       ctx->moment_seq);

    nknown = ngx_http_clockchain_moment_inm(r, known, &star);

    for (i = 0; i < nknown; i++) {
        if (ngx_memcmp(known + i * NGX_HTTP_CLOCKCHAIN_ETAG_LEN, m.etag,
                       NGX_HTTP_CLOCKCHAIN_ETAG_LEN)
            == 0)
        {
            break;
        }
    }

    return ngx_http_clockchain_moment_send(r, &m, i == nknown && !star);
}


/*
 * The ETags of ours that If-None-Match names ("<16 hex digits>", weak or
 * not: a GET compares them weakly), into known; *star for "*".
 */

static ngx_uint_t
ngx_http_clockchain_moment_inm(ngx_http_request_t *r, u_char *known,
    ngx_uint_t *star)
{
    u_char      *p, *last, *q;
    ngx_uint_t   n, i;

    *star = 0;

    if (r->headers_in.if_none_match == NULL) {
        return 0;
    }

    p = r->headers_in.if_none_match->value.data;
    last = p + r->headers_in.if_none_match->value.len;
    n = 0;

    while (p < last && n < NGX_HTTP_CLOCKCHAIN_INM_MAX) {
        if (*p == '*') {
            *star = 1;
            p++;
            continue;
        }

        if (*p != '"') {
            p++;
            continue;
        }

        q = ngx_strlchr(p + 1, last, '"');
        if (q == NULL) {
            break;
        }

        if (q - p - 1 == NGX_HTTP_CLOCKCHAIN_ETAG_LEN) {
            for (i = 0; i < NGX_HTTP_CLOCKCHAIN_ETAG_LEN; i++) {
                if (!((p[1 + i] >= '0' && p[1 + i] <= '9')
                      || (p[1 + i] >= 'a' && p[1 + i] <= 'f')))
                {
                    break;
                }
            }

            if (i == NGX_HTTP_CLOCKCHAIN_ETAG_LEN) {
                ngx_memcpy(known + n * NGX_HTTP_CLOCKCHAIN_ETAG_LEN, p + 1,
                           NGX_HTTP_CLOCKCHAIN_ETAG_LEN);
                n++;
            }
        }

        p = q + 1;
    }

    return n;
}


/*
 * A public moment: 200 with its body, or 304 (not modified) without;
 * ETag, Cache-Control and Vary either way.
 */

static ngx_int_t
ngx_http_clockchain_moment_send(ngx_http_request_t *r,
    ngx_http_clockchain_shm_moment_t *m, ngx_uint_t modified)
{
    u_char                          *etag, *cc, *p;
    ngx_http_clockchain_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_clockchain_module);

    etag = ngx_pnalloc(r->pool, NGX_HTTP_CLOCKCHAIN_ETAG_LEN + 3);
    cc = ngx_pnalloc(r->pool, sizeof("public, max-age=, must-revalidate")
                              + NGX_TIME_T_LEN);

    if (etag == NULL || cc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = etag;
    *p++ = '"';
    p = ngx_cpymem(p, m->etag, NGX_HTTP_CLOCKCHAIN_ETAG_LEN);
    *p++ = '"';

    ngx_sprintf(cc, "public, max-age=%T, must-revalidate%Z",
                llcf->moments_max_age);

    /* a cache outside must not give the public's answer to a keyed read */

    if (ngx_http_clockchain_etag(r, etag, p - etag) != NGX_OK
        || ngx_http_clockchain_vary(r, "X-Service-Key") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (modified) {
        return ngx_http_clockchain_send_body(r, NGX_HTTP_OK, m->body.data,
                                             m->body.len, "application/json",
                                             (char *) cc);
    }

    if (ngx_http_clockchain_add_header(r, "Cache-Control", (char *) cc)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_NOT_MODIFIED;
    r->headers_out.content_length_n = -1;
    r->header_only = 1;

    return ngx_http_send_header(r);
}


/*
 * A node's hash (HGETALL) with the types a read gives its fields: the
 * integers, confidence a number, the lists from their JSON, the rest
 * strings; sort_key is the path's and left out.  A field that is not UTF-8
 * was not written by us: null, or (skip) left out.
 */

json_t *
ngx_http_clockchain_node_json(redisReply *node, ngx_uint_t skip)
{
    size_t        i;
    json_t       *obj, *v;
    redisReply  **f;
    const char  **n;

    static const char  *integers[] = {
        "year", "month_num", "day", "layer", NULL
    };

    static const char  *lists[] = {
        "tags", "figures", "challenged_by", "entity_ids", NULL
    };

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }

    f = node->element;

    for (i = 0; i + 1 < node->elements; i += 2) {

        if (f[i]->type != REDIS_REPLY_STRING
            || f[i + 1]->type != REDIS_REPLY_STRING
            || ngx_strcmp(f[i]->str, "sort_key") == 0)
        {
            continue;
        }

        v = NULL;

        for (n = integers; *n; n++) {
            if (ngx_strcmp(f[i]->str, *n) == 0) {
                v = json_integer(strtoll(f[i + 1]->str, NULL, 10));
                break;
            }
        }

        if (v == NULL && ngx_strcmp(f[i]->str, "confidence") == 0) {
            v = json_real(strtod(f[i + 1]->str, NULL));
        }

        for (n = lists; v == NULL && *n; n++) {
            if (ngx_strcmp(f[i]->str, *n) == 0) {
                v = json_loadb(f[i + 1]->str, f[i + 1]->len, 0, NULL);

                if (v && !json_is_array(v)) {
                    json_decref(v);
                    v = NULL;
                }

                break;
            }
        }

        if (v == NULL) {
            v = json_stringn(f[i + 1]->str, f[i + 1]->len);
        }

        if (v == NULL) {
            if (skip) {
                continue;
            }

            v = json_null();
        }

        if (json_object_set_new(obj, f[i]->str, v) != 0) {
            json_decref(obj);
            return NULL;
        }
    }

    return obj;
}


/*
 * The node as the original service returns it: every column of its table
 * (absent ones with their defaults, ngx_http_clockchain_tdf.c), month as
 * the number and month_name, and its edges.  An edge is {source, target,
 * edge_type, weight, theme, direction, name}: the original gives every
 * edge the moment as source, in and out alike; here source and target are
 * the edge's own, so an incoming edge has the other moment as source, and
 * direction ("outgoing", "incoming") says which it is.  name is the other
 * moment's.
 */

json_t *
ngx_http_clockchain_moment_json(redisReply *node, redisReply *edges,
    ngx_uint_t format)
{
    size_t        i;
    json_t       *obj, *list, *edge, *self, *other, *rec;
    redisReply  **e;

    if (node->type != REDIS_REPLY_ARRAY || edges->type != REDIS_REPLY_ARRAY) {
        return NULL;
    }

    obj = ngx_http_clockchain_node_json(node, 0);
    if (obj == NULL) {
        return NULL;
    }

    if (ngx_http_clockchain_node_columns(obj) != 0) {
        json_decref(obj);
        return NULL;
    }

    if (format == NGX_HTTP_CLOCKCHAIN_FORMAT_TDF) {
        /* as the original exports it: the stored month name, no edges */
        rec = ngx_http_clockchain_tdf_record(obj);
        json_decref(obj);
        return rec;
    }

    if (ngx_http_clockchain_node_month(obj) != 0) {
        json_decref(obj);
        return NULL;
    }

    self = json_object_get(obj, "path");
    if (!json_is_string(self)) {
        json_decref(obj);
        return NULL;
    }

    list = json_array();
    json_object_set_new(obj, "edges", list);

    for (i = 0; i < edges->elements; i++) {
        if (edges->element[i]->type != REDIS_REPLY_ARRAY
            || edges->element[i]->elements != 6)
        {
            continue;
        }

        e = edges->element[i]->element;

        other = json_stringn(e[4]->str, e[4]->len);
        if (other == NULL) {
            continue;
        }

        /* "incoming" is the edge the other moment holds towards this one */

        edge = (e[3]->len == sizeof("incoming") - 1
                && ngx_strncmp(e[3]->str, "incoming", e[3]->len) == 0)
               ? json_pack("{s:o,s:O}", "source", other, "target", self)
               : json_pack("{s:O,s:o}", "source", self, "target", other);

        if (edge == NULL) {
            continue;
        }

        if (json_object_set_new(edge, "edge_type",
                                json_stringn(e[0]->str, e[0]->len))
            || json_object_set_new(edge, "weight",
                                   json_real(strtod(e[1]->str, NULL)))
            || json_object_set_new(edge, "theme",
                                   json_stringn(e[2]->str, e[2]->len))
            || json_object_set_new(edge, "direction",
                                   json_stringn(e[3]->str, e[3]->len))
            || json_object_set_new(edge, "name",
                                   json_stringn(e[5]->str, e[5]->len)))
        {
            json_decref(edge);
            continue;
        }

        json_array_append_new(list, edge);
    }

    return obj;
}


static void
ngx_http_clockchain_publish_body(ngx_http_request_t *r)
{
    char                        err[NGX_HTTP_CLOCKCHAIN_ERR_LEN];
    ngx_str_t                   body;
    const char                 *visibility;
    ngx_http_clockchain_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);

    if (ngx_http_clockchain_read_body(r, &body) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (body.len > NGX_HTTP_CLOCKCHAIN_PUBLISH_MAX) {
        ngx_http_finalize_request(r, ngx_http_clockchain_error(r,
                                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "Request body too large: the limit is "
                                  ngx_value(NGX_HTTP_CLOCKCHAIN_PUBLISH_MAX)
                                  " bytes"));
        return;
    }

    if (!ngx_http_clockchain_parse_publish((char *) body.data, body.len,
                                           &visibility, err, sizeof(err)))
    {
        ngx_http_finalize_request(r, ngx_http_clockchain_error(r,
                                  NGX_HTTP_BAD_REQUEST, "%s", err));
        return;
    }

    ctx->visibility = visibility;

    ngx_http_clockchain_publish_writer(r);
}


/*
 * PATCH .../visibility: {visibility, user_id}.  The body's user_id is the
 * user the calling service acts for, as X-User-Id is: without the header
 * it takes its place (so a client that names its user only in the body
 * gets that user's rights, not the service's); with it, the two must
 * agree.
 */

static void
ngx_http_clockchain_visibility_body(ngx_http_request_t *r)
{
    u_char                     *p;
    char                        err[NGX_HTTP_CLOCKCHAIN_ERR_LEN];
    char                        user[NGX_HTTP_CLOCKCHAIN_USER_MAX];
    size_t                      ulen;
    ngx_str_t                   body;
    const char                 *visibility;
    ngx_http_clockchain_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);

    if (ngx_http_clockchain_read_body(r, &body) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (body.len > NGX_HTTP_CLOCKCHAIN_PUBLISH_MAX) {
        ngx_http_finalize_request(r, ngx_http_clockchain_error(r,
                                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "Request body too large: the limit is "
                                  ngx_value(NGX_HTTP_CLOCKCHAIN_PUBLISH_MAX)
                                  " bytes"));
        return;
    }

    if (!ngx_http_clockchain_parse_visibility((char *) body.data, body.len,
                                              &visibility, user,
                                              sizeof(user), &ulen,
                                              err, sizeof(err)))
    {
        ngx_http_finalize_request(r, ngx_http_clockchain_error(r,
                                  NGX_HTTP_BAD_REQUEST, "%s", err));
        return;
    }

    if (ulen && ctx->created_by.len
        && (ulen != ctx->created_by.len
            || ngx_strncmp(user, ctx->created_by.data, ulen) != 0))
    {
        ngx_http_finalize_request(r, ngx_http_clockchain_error(r,
                                  NGX_HTTP_BAD_REQUEST,
                                  "user_id: differs from X-User-Id; give "
                                  "one, or the same in both"));
        return;
    }

    if (ulen && ctx->created_by.len == 0) {
        p = ngx_pnalloc(r->pool, ulen);
        if (p == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memcpy(p, user, ulen);
        ctx->created_by.data = p;
        ctx->created_by.len = ulen;
    }

    ctx->visibility = visibility;

    ngx_http_clockchain_publish_writer(r);
}


/*
 * A visibility is a write: the original's publish asks require_write_auth
 * for its writer (the service key was checked before the body).
 */

static void
ngx_http_clockchain_publish_writer(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_clockchain_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);

    if (ctx->agent.len == 0) {
        rc = ngx_http_clockchain_writer_auth(r,
                                             NGX_HTTP_CLOCKCHAIN_AGENT_WRITE,
                                          ngx_http_clockchain_publish_writer);
        if (rc == NGX_DONE) {
            return;
        }

        if (rc != NGX_DECLINED) {
            ngx_http_finalize_request(r, rc);
            return;
        }
    }

    ngx_http_clockchain_publish_store(r, ctx);
}


static void
ngx_http_clockchain_publish_store(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx)
{
    ngx_str_t                         token;
    ngx_http_clockchain_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    ngx_http_clockchain_writer_token(r, &token);

    ctx->op = ngx_http_clockchain_store_publish(mcf, &ctx->path,
                                             &ctx->created_by,
                                             ctx->visibility, &token,
                                             ngx_http_clockchain_publish_done,
                                             ctx);
    if (ctx->op == NULL) {
        ngx_http_finalize_request(r, ngx_http_clockchain_unavailable(r,
                                  "Graph store unavailable: Redis cannot be "
                                  "reached, retry later"));
    }

    /* else the reply finalizes the request */
}


static void
ngx_http_clockchain_publish_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    json_t                           *json;
    ngx_int_t                         rc;
    ngx_http_request_t               *r;
    ngx_http_clockchain_main_conf_t  *mcf;

    r = ctx->request;
    ctx->op = NULL;

    rc = ngx_http_clockchain_writer_revoked(r, reply);
    if (rc != NGX_DECLINED) {
        ngx_http_clockchain_finalize(r, rc);
        return;
    }

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        if (reply) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "clockchain: publishing a moment failed: %s",
                          reply->str);
        }

        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: the moment "
                                     "was not changed, retry later"));
        return;
    }

    if (reply->type == REDIS_REPLY_INTEGER) {
        /* seen, not owned: saying so leaks nothing the caller lacks */
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_error(r,
                                     NGX_HTTP_FORBIDDEN,
                                     "Only the moment's creator may change "
                                     "its visibility"));
        return;
    }

    if (reply->type != REDIS_REPLY_STRING) {
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_error(r,
                                     NGX_HTTP_NOT_FOUND, "Moment not found"));
        return;
    }

    /*
     * Read your own write: this nginx forgets its public answers now, not
     * when the event comes back to it, so that a read right after this
     * answer sees the change.  Every one of them, not only this moment's:
     * its neighbours' edges to it show or go too, and a publish is rare.
     */

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);
    ngx_http_clockchain_shm_moment_mark(mcf->shm_zone, NULL);

    json = json_pack("{s:s%,s:s}", "path", ctx->path.data, ctx->path.len,
                     "visibility", ctx->visibility);
    if (json == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_json(r, json));
}

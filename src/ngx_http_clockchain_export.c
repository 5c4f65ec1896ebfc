
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * The whole graph out and back in, for an operator (service key and
 * admin key):
 *
 * GET {location}?after=<path>&limit=N: a page of the export, a TDF record
 * a line (ngx_http_clockchain_export_line()), the nodes in idx:time order
 * (export.lua); X-Clockchain-Next names the page's last path while more
 * follow.  One page is one script call, bounded in nodes and edge fields,
 * so an export of any size never blocks Redis for long nor fills memory.
 *
 * POST {location} with a chunk of an export as the body: its nodes and
 * edges written as given, no auto-edges (restore.lua, the code seeds use),
 * after the whole chunk was checked (ngx_http_clockchain_restore_parse()):
 * a bad line is a 400 that names it, and nothing is written.
 *
 * ./build.sh export and import loop over these (docs/migrating.md).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_propose.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_request.h"
#include "ngx_http_clockchain_store.h"
#include "ngx_http_clockchain_tdf.h"
#include "ngx_http_clockchain_seed.h"
#include "ngx_http_clockchain_shm.h"


#define NGX_HTTP_CLOCKCHAIN_EXPORT_LIMIT   100    /* nodes a page, default */
#define NGX_HTTP_CLOCKCHAIN_EXPORT_MAX     1000   /* nodes a page, at most */
#define NGX_HTTP_CLOCKCHAIN_EXPORT_FIELDS  20000  /* edge fields a page */


static void ngx_http_clockchain_export_done(void *data, redisReply *reply);
static json_t *ngx_http_clockchain_export_edges(redisReply *edges);
static void ngx_http_clockchain_restore_body(ngx_http_request_t *r);
static void ngx_http_clockchain_restore_done(void *data, redisReply *reply);


ngx_int_t
ngx_http_clockchain_export_handler(ngx_http_request_t *r)
{
    int64_t                           limit;
    ngx_int_t                         rc;
    ngx_str_t                         after;
    const char                       *detail;
    ngx_http_clockchain_ctx_t        *ctx;
    ngx_http_clockchain_main_conf_t  *mcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_clockchain_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_clockchain_auth(r, 1);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    limit = NGX_HTTP_CLOCKCHAIN_EXPORT_LIMIT;
    detail = NULL;

    rc = ngx_http_clockchain_arg_int(r, "limit", 1,
                                     NGX_HTTP_CLOCKCHAIN_EXPORT_MAX, &limit,
                                     &detail);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST, "%s",
                                         detail);
    }

    rc = ngx_http_clockchain_arg(r, "after", &after);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        ngx_str_null(&after);
    }

    if (after.len > NGX_HTTP_CLOCKCHAIN_PATH_LEN) {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                   "after: must be the path X-Clockchain-Next named");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_http_clockchain_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->path = after;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    ctx->op = ngx_http_clockchain_store_export(mcf, &after, (ngx_uint_t) limit,
                                    NGX_HTTP_CLOCKCHAIN_EXPORT_FIELDS,
                                    ngx_http_clockchain_export_done, ctx);
    if (ctx->op == NULL) {
        return ngx_http_clockchain_unavailable(r, "Graph store unavailable: "
                                               "Redis cannot be reached, "
                                               "retry later");
    }

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_clockchain_export_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    char                *line;
    size_t               i, len, total;
    u_char              *body, *p;
    json_t              *node, *edges;
    redisReply          *page, *n;
    ngx_array_t          lines;
    ngx_str_t           *l;
    ngx_http_request_t  *r;

    r = ctx->request;
    ctx->op = NULL;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        if (reply) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "clockchain: an export page failed: %s",
                          reply->str);
        }

        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: retry "
                                     "later"));
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (reply->element[0]->type != REDIS_REPLY_STRING
        || reply->elements != 2
        || reply->element[1]->type != REDIS_REPLY_ARRAY)
    {
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_error(r,
                                     NGX_HTTP_BAD_REQUEST,
                                     "after: names no moment of the graph; "
                                     "give the path X-Clockchain-Next "
                                     "named"));
        return;
    }

    page = reply->element[1];

    if (ngx_array_init(&lines, r->pool, page->elements + 1, sizeof(ngx_str_t))
        != NGX_OK)
    {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    total = 0;
    len = 0;

    for (i = 0; i < page->elements; i++) {
        n = page->element[i];

        if (n->type != REDIS_REPLY_ARRAY || n->elements != 3
            || n->element[0]->type != REDIS_REPLY_STRING
            || n->element[1]->type != REDIS_REPLY_ARRAY
            || n->element[2]->type != REDIS_REPLY_ARRAY)
        {
            continue;
        }

        if (n->element[1]->elements == 0) {
            /* in idx:time without a hash: nothing to export */
            continue;
        }

        node = ngx_http_clockchain_node_json(n->element[1], 1);
        edges = ngx_http_clockchain_export_edges(n->element[2]);

        line = (node && edges)
               ? ngx_http_clockchain_export_line(node, n->element[0]->str,
                                                 edges, &len)
               : NULL;

        json_decref(node);
        json_decref(edges);

        if (line == NULL) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "clockchain: the moment \"%s\" could not be "
                          "exported", n->element[0]->str);
            ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        l = ngx_array_push(&lines);
        if (l == NULL) {
            free(line);
            ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        l->data = ngx_pnalloc(r->pool, len + 1);
        if (l->data == NULL) {
            free(line);
            ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memcpy(l->data, line, len);
        l->data[len] = '\n';
        l->len = len + 1;
        total += len + 1;
        free(line);
    }

    body = ngx_pnalloc(r->pool, total ? total : 1);
    if (body == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = body;
    l = lines.elts;

    for (i = 0; i < lines.nelts; i++) {
        p = ngx_cpymem(p, l[i].data, l[i].len);
    }

    if (reply->element[0]->len
        && ngx_http_clockchain_add_header(r, "X-Clockchain-Next",
                                          reply->element[0]->str)
           != NGX_OK)
    {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (total == 0) {
        /* an empty graph: nginx refuses a buffer of no bytes */
        r->header_only = 1;
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_type(r,
                                 NGX_HTTP_OK, body, total,
                                 "application/x-ndjson"));
}




/* the edge hash's values, each the edge's JSON */

static json_t *
ngx_http_clockchain_export_edges(redisReply *edges)
{
    size_t   i;
    json_t  *list, *e;

    list = json_array();
    if (list == NULL) {
        return NULL;
    }

    for (i = 0; i + 1 < edges->elements; i += 2) {
        if (edges->element[i + 1]->type != REDIS_REPLY_STRING) {
            continue;
        }

        e = json_loadb(edges->element[i + 1]->str,
                       edges->element[i + 1]->len, 0, NULL);

        if (e == NULL) {
            continue;
        }

        if (json_array_append_new(list, e) != 0) {
            json_decref(list);
            return NULL;
        }
    }

    return list;
}


ngx_int_t
ngx_http_clockchain_restore_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_clockchain_ctx_t       *ctx;
    ngx_http_clockchain_loc_conf_t  *llcf;

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_clockchain_not_allowed(r, "POST");
    }

    rc = ngx_http_clockchain_auth(r, 1);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_clockchain_module);

    if (r->headers_in.content_length_n > (off_t) llcf->max_body_size) {
        return ngx_http_clockchain_error(r,
                   NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                   "Request body too large: the limit is %uz bytes "
                   "(clockchain_max_body_size); send the export in smaller "
                   "chunks", llcf->max_body_size);
    }

    ctx = ngx_http_clockchain_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_clockchain_restore_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_clockchain_restore_body(ngx_http_request_t *r)
{
    char                              err[NGX_HTTP_CLOCKCHAIN_ERR_LEN];
    char                             *chunk;
    size_t                            nodes, edges, line;
    ngx_str_t                         body;
    ngx_pool_cleanup_t               *cln;
    ngx_http_clockchain_ctx_t        *ctx;
    ngx_http_clockchain_loc_conf_t   *llcf;
    ngx_http_clockchain_main_conf_t  *mcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);
    llcf = ngx_http_get_module_loc_conf(r, ngx_http_clockchain_module);
    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    if (ngx_http_clockchain_read_body(r, &body) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (body.len > llcf->max_body_size) {
        ngx_http_finalize_request(r, ngx_http_clockchain_error(r,
                                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "Request body too large: the limit is %uz "
                                  "bytes (clockchain_max_body_size); send "
                                  "the export in smaller chunks",
                                  llcf->max_body_size));
        return;
    }

    chunk = ngx_http_clockchain_restore_parse((char *) body.data, body.len,
                                              &nodes, &edges, &line, err,
                                              sizeof(err));
    if (chunk == NULL) {
        if (line) {
            ngx_http_finalize_request(r, ngx_http_clockchain_error(r,
                                      NGX_HTTP_BAD_REQUEST,
                                      "line %uz: %s", line, err));
        } else {
            ngx_http_finalize_request(r, ngx_http_clockchain_error(r,
                                      NGX_HTTP_BAD_REQUEST, "%s", err));
        }

        return;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        free(chunk);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = free;
    cln->data = chunk;

    /* the chunk's counts, for the answer (no jobs in this request) */
    ctx->njobs = nodes;
    ctx->tries = edges;

    ctx->op = ngx_http_clockchain_store_restore(mcf, chunk, ngx_strlen(chunk),
                                           ngx_http_clockchain_restore_done,
                                           ctx);
    if (ctx->op == NULL) {
        ngx_http_finalize_request(r, ngx_http_clockchain_unavailable(r,
                                  "Graph store unavailable: Redis cannot be "
                                  "reached, nothing was restored, retry "
                                  "later"));
    }
}


static void
ngx_http_clockchain_restore_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    json_t                           *json;
    ngx_http_request_t               *r;
    ngx_http_clockchain_main_conf_t  *mcf;

    r = ctx->request;
    ctx->op = NULL;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_INTEGER)
    {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "clockchain: a restore failed: %s", reply->str);
        }

        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: the chunk "
                                     "was not restored, retry later"));
        return;
    }

    /* read your own write, as a publish does */

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);
    ngx_http_clockchain_shm_moment_mark(mcf->shm_zone, NULL);

    json = json_pack("{s:I,s:I,s:I,s:I}",
                     "nodes", (json_int_t) ctx->njobs,
                     "edges", (json_int_t) ctx->tries,
                     "nodes_written", (json_int_t) reply->element[0]->integer,
                     "edges_written", (json_int_t) reply->element[1]->integer);
    if (json == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_json(r, json));
}

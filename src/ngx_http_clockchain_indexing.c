
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * The writers' routes, the graph written without Flash:
 *
 * POST {location} with clockchain_index: {path, metadata, visibility,
 * created_by, flash_timepoint_id}, one node (the original's POST /index).
 * POST {location} with clockchain_ingest_subgraph: {nodes, edges}.
 * POST {location} with clockchain_ingest_tdf: a list of TDF records.
 *
 * The body is checked and built into ingest.lua's argument without nginx
 * (ngx_http_clockchain_ingest.c): a 4xx has sent nothing to Redis, and
 * ingest.lua writes all of a request or none of it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_agents.h"
#include "ngx_http_clockchain_ingest.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_request.h"
#include "ngx_http_clockchain_shm.h"
#include "ngx_http_clockchain_store.h"


static ngx_int_t ngx_http_clockchain_ingest_start(ngx_http_request_t *r);
static unsigned ngx_http_clockchain_ingest_kind(ngx_http_request_t *r);
static void ngx_http_clockchain_ingest_body(ngx_http_request_t *r);
static void ngx_http_clockchain_ingest_send(ngx_http_request_t *r);
static void ngx_http_clockchain_ingest_done(void *data, redisReply *reply);


ngx_int_t
ngx_http_clockchain_index_handler(ngx_http_request_t *r)
{
    return ngx_http_clockchain_ingest_start(r);
}


ngx_int_t
ngx_http_clockchain_ingest_subgraph_handler(ngx_http_request_t *r)
{
    return ngx_http_clockchain_ingest_start(r);
}


ngx_int_t
ngx_http_clockchain_ingest_tdf_handler(ngx_http_request_t *r)
{
    return ngx_http_clockchain_ingest_start(r);
}


static ngx_int_t
ngx_http_clockchain_ingest_start(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_http_clockchain_ctx_t       *ctx;
    ngx_http_clockchain_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_clockchain_module);

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_clockchain_not_allowed(r, "POST");
    }

    /* the original's verify_service_key; the writer's token once the
     * body is read (ngx_http_clockchain_writer_auth()) */
    rc = ngx_http_clockchain_auth(r, 0);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (ngx_http_clockchain_json_content_type(r) != NGX_OK) {
        return ngx_http_clockchain_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                   "Content-Type must be application/json: send the body "
                   "as JSON with \"Content-Type: application/json\"");
    }

    if (r->headers_in.content_length_n > (off_t) llcf->max_body_size) {
        return ngx_http_clockchain_error(r,
                   NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                   "Request body too large: the limit is %uz bytes",
                   llcf->max_body_size);
    }

    ctx = ngx_http_clockchain_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_clockchain_ingest_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static unsigned
ngx_http_clockchain_ingest_kind(ngx_http_request_t *r)
{
    ngx_http_clockchain_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_clockchain_module);

    if (llcf->handler == ngx_http_clockchain_index_handler) {
        return NGX_HTTP_CLOCKCHAIN_INGEST_INDEX;
    }

    if (llcf->handler == ngx_http_clockchain_ingest_subgraph_handler) {
        return NGX_HTTP_CLOCKCHAIN_INGEST_SUBGRAPH;
    }

    return NGX_HTTP_CLOCKCHAIN_INGEST_TDF;
}


static void
ngx_http_clockchain_ingest_body(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_str_t                        body;
    ngx_http_clockchain_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_clockchain_module);

    if (ngx_http_clockchain_read_body(r, &body) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* a chunked body has no Content-Length to check up front */

    if (body.len > llcf->max_body_size) {
        ngx_http_finalize_request(r, ngx_http_clockchain_error(r,
                                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "Request body too large: the limit is "
                                  "%uz bytes", llcf->max_body_size));
        return;
    }

    /* the original's require_write_auth: the writer is its proposed_by */

    rc = ngx_http_clockchain_writer_auth(r, NGX_HTTP_CLOCKCHAIN_AGENT_WRITE,
                                         ngx_http_clockchain_ingest_send);
    if (rc == NGX_DONE) {
        return;
    }

    if (rc != NGX_DECLINED) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    ngx_http_clockchain_ingest_send(r);
}


/* the writer is known: the body checked whole, then one ingest.lua */

static void
ngx_http_clockchain_ingest_send(ngx_http_request_t *r)
{
    char                              *graph;
    char                               err[NGX_HTTP_CLOCKCHAIN_ERR_LEN];
    char                               agent[NGX_HTTP_CLOCKCHAIN_AGENT_MAX
                                             + 1];
    u_char                            *p;
    ngx_str_t                          body, g, token;
    ngx_http_clockchain_ctx_t         *ctx;
    ngx_http_clockchain_ingest_t       in;
    ngx_http_clockchain_main_conf_t   *mcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);
    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    if (ngx_http_clockchain_read_body(r, &body) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_cpystrn((u_char *) agent, ctx->agent.data,
                ngx_min(ctx->agent.len + 1, sizeof(agent)));

    graph = ngx_http_clockchain_ingest_parse(
                ngx_http_clockchain_ingest_kind(r), (char *) body.data,
                body.len, agent, &in, err, sizeof(err));

    if (graph == NULL) {
        ngx_http_finalize_request(r, ngx_http_clockchain_error(r,
                                  ngx_strcmp(err, "out of memory") == 0
                                  ? NGX_HTTP_INTERNAL_SERVER_ERROR
                                  : NGX_HTTP_BAD_REQUEST, "%s", err));
        return;
    }

    /* the request's pool holds it while Redis has not answered */

    g.len = ngx_strlen(graph);
    p = ngx_pnalloc(r->pool, g.len + 1);

    if (p == NULL) {
        free(graph);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(p, graph, g.len + 1);
    free(graph);
    g.data = p;

    ctx->body = g;
    ctx->njobs = in.nodes;
    ctx->tries = in.edges;

    if (in.path[0]) {
        ctx->path.len = ngx_strlen(in.path);
        ctx->path.data = ngx_pnalloc(r->pool, ctx->path.len);
        if (ctx->path.data == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memcpy(ctx->path.data, in.path, ctx->path.len);
    }

    ngx_http_clockchain_writer_token(r, &token);

    ctx->op = ngx_http_clockchain_store_ingest(mcf, &ctx->body, &token,
                                               ngx_http_clockchain_ingest_done,
                                               ctx);
    if (ctx->op == NULL) {
        ngx_http_finalize_request(r, ngx_http_clockchain_unavailable(r,
                                  "Graph store unavailable: Redis cannot be "
                                  "reached, retry later"));
    }

    /* else the reply finalizes the request */
}


static void
ngx_http_clockchain_ingest_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    int                               n;
    char                              side[8];
    json_t                           *json;
    ngx_int_t                         rc;
    unsigned long                     i;
    ngx_http_request_t               *r;
    ngx_http_clockchain_main_conf_t  *mcf;

    r = ctx->request;
    ctx->op = NULL;

    rc = ngx_http_clockchain_writer_revoked(r, reply);
    if (rc != NGX_DECLINED) {
        ngx_http_clockchain_finalize(r, rc);
        return;
    }

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR
        && ngx_strncmp(reply->str, "NO_NODE ", 8) == 0
        && sscanf(reply->str + 8, "%lu %7s %n", &i, side, &n) == 2)
    {
        /* the original's foreign key: nothing was written */
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_error(r,
                                     NGX_HTTP_BAD_REQUEST,
                                     "edges[%ul].%s: \"%s\" names no moment, "
                                     "neither stored nor in this request",
                                     i, side, reply->str + 8 + n));
        return;
    }

    if (reply == NULL) {
        /* sent, and not answered in time: Redis may still have run it */
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: Redis did not "
                                     "answer, the request may have been "
                                     "written; sending it again is safe"));
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY) {
        if (reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "clockchain: an ingest failed: %s", reply->str);
        }

        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: retry "
                                     "later"));
        return;
    }

    /* read your own write: this nginx's public answers are out of date */

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);
    ngx_http_clockchain_shm_moment_mark(mcf->shm_zone, NULL);

    switch (ngx_http_clockchain_ingest_kind(r)) {

    case NGX_HTTP_CLOCKCHAIN_INGEST_INDEX:
        json = json_pack("{s:s%,s:s}", "path", ctx->path.data, ctx->path.len,
                         "status", "indexed");
        break;

    case NGX_HTTP_CLOCKCHAIN_INGEST_SUBGRAPH:
        /* the original counts what it was given, new or not */
        json = json_pack("{s:I,s:I}", "ingested_nodes",
                         (json_int_t) ctx->njobs, "ingested_edges",
                         (json_int_t) ctx->tries);
        break;

    default:
        json = json_pack("{s:I}", "ingested_nodes", (json_int_t) ctx->njobs);
    }

    if (json == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_json(r, json));
}

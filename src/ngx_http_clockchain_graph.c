/*
 * Copyright (C) The Clockchain authors
 */


/*
 * GET {location}{path}: the neighbours of the graph node at a canonical
 * path, every edge out of it and into it, as the requester may see them
 * (neighbors.lua).  The path is checked to be canonical before it becomes
 * part of any key.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_request.h"
#include "ngx_http_clockchain_store.h"


/* as many as a moment shows edges: one answer stays bounded */
#define NGX_HTTP_CLOCKCHAIN_NEIGHBORS_SHOWN  1000


static void ngx_http_clockchain_neighbors_done(void *data, redisReply *reply);
static json_t *ngx_http_clockchain_neighbors_json(redisReply *reply);


ngx_int_t
ngx_http_clockchain_neighbors_handler(ngx_http_request_t *r)
{
    u_char                           *p;
    size_t                            len;
    ngx_int_t                         rc;
    const char                       *detail;
    ngx_http_clockchain_ctx_t        *ctx;
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_clockchain_main_conf_t  *mcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_clockchain_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_clockchain_auth(r, 0);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    /* the path is the URI after the location's prefix */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    p = r->uri.data;
    len = r->uri.len;

    if (len >= clcf->name.len
        && ngx_strncmp(p, clcf->name.data, clcf->name.len) == 0)
    {
        p += clcf->name.len;
        len -= clcf->name.len;

        /* the location's trailing slash is the path's leading one */
        if (clcf->name.len && clcf->name.data[clcf->name.len - 1] == '/') {
            p--;
            len++;
        }
    }

    if (!ngx_http_clockchain_valid_path((char *) p, len)) {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                   "Not a canonical moment path: expected "
                   "/{year}/{month}/{DD}/{HHMM}/{country}/{region}/{city}/"
                   "{slug}");
    }

    ctx = ngx_http_clockchain_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    detail = ngx_http_clockchain_user(r, &ctx->created_by);
    if (detail) {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST, "%s",
                                         detail);
    }

    ctx->path.data = p;
    ctx->path.len = len;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    ctx->op = ngx_http_clockchain_store_neighbors(mcf, &ctx->path,
                                       &ctx->created_by,
                                       NGX_HTTP_CLOCKCHAIN_NEIGHBORS_SHOWN,
                                       ngx_http_clockchain_neighbors_done,
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
ngx_http_clockchain_neighbors_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    json_t              *json;
    ngx_http_request_t  *r;

    r = ctx->request;
    ctx->op = NULL;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        if (reply) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "clockchain: reading neighbors failed: %s",
                          reply->str);
        }

        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: Redis cannot "
                                     "be reached, retry later"));
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY) {
        /* absent, or not visible to this requester: the same answer */
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_error(r,
                                     NGX_HTTP_NOT_FOUND, "Node not found"));
        return;
    }

    json = ngx_http_clockchain_neighbors_json(reply);
    if (json == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_json(r, json));
}


/* each { path, name, type, weight, theme, description, created_by } */

static json_t *
ngx_http_clockchain_neighbors_json(redisReply *reply)
{
    size_t        i, k;
    json_t       *list, *n;
    redisReply  **e;

    list = json_array();
    if (list == NULL) {
        return NULL;
    }

    for (i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_ARRAY
            || reply->element[i]->elements != 7)
        {
            continue;
        }

        e = reply->element[i]->element;

        for (k = 0; k < 7; k++) {
            if (e[k]->type != REDIS_REPLY_STRING) {
                break;
            }
        }

        if (k < 7) {
            continue;
        }

        /* s% fails on a string that is not UTF-8: not written by us */
        n = json_pack("{s:s%,s:s%,s:s%,s:f,s:s%,s:s%,s:s%}",
                      "path", e[0]->str, e[0]->len,
                      "name", e[1]->str, e[1]->len,
                      "edge_type", e[2]->str, e[2]->len,
                      "weight", strtod(e[3]->str, NULL),
                      "theme", e[4]->str, e[4]->len,
                      "description", e[5]->str, e[5]->len,
                      "created_by", e[6]->str, e[6]->len);
        if (n) {
            json_array_append_new(list, n);
        }
    }

    return list;
}

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
#include "ngx_http_clockchain_query.h"


/* as many as a moment shows edges: one answer stays bounded */
#define NGX_HTTP_CLOCKCHAIN_NEIGHBORS_SHOWN  1000


static ngx_int_t ngx_http_clockchain_neighbors_read(ngx_http_request_t *r,
    void *data);
static void ngx_http_clockchain_neighbors_done(void *data, redisReply *reply);
static json_t *ngx_http_clockchain_neighbors_json(redisReply *reply);
static void ngx_http_clockchain_walk_done(void *data, redisReply *reply);


ngx_int_t
ngx_http_clockchain_neighbors_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_str_t                         tail;
    ngx_http_clockchain_ctx_t        *ctx;

    rc = ngx_http_clockchain_read_start(r, NULL, &ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    /* a path that names no node, whatever its form, is one answer */

    ngx_http_clockchain_uri_tail(r, &tail);

    rc = ngx_http_clockchain_moment_canonical(r, tail.data, tail.len,
                                              &ctx->path);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_clockchain_error(r, NGX_HTTP_NOT_FOUND,
                                         "Node not found");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    /* through the zone: up to 1000 neighbours, each with its node hash */

    return ngx_http_clockchain_read_cached(r, ctx,
                                           ctx->created_by.len ? "user"
                                                               : "service",
                                           ngx_http_clockchain_neighbors_read);
}


/* neighbors.lua sent (a miss in the zone) */

static ngx_int_t
ngx_http_clockchain_neighbors_read(ngx_http_request_t *r, void *data)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    ngx_http_clockchain_main_conf_t  *mcf;

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

    if (ngx_http_clockchain_graph_reply(r, reply, "neighbors",
                                        "Node not found")
        != NGX_OK)
    {
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


/*
 * The walks: GET {location}{path}?... for subgraph and traverse, GET
 * {location}?from=&to=... for path, all through walk.lua.  Each answer is
 * bounded: at most "most" nodes, each expanded for at most PER_NODE edge
 * fields, and at most BUDGET fields read in all.
 */


#define NGX_HTTP_CLOCKCHAIN_WALK_PER_NODE  200
#define NGX_HTTP_CLOCKCHAIN_WALK_BUDGET    2000
#define NGX_HTTP_CLOCKCHAIN_WALK_PATH_MOST 1000


typedef struct {
    ngx_http_clockchain_ctx_t         *ctx;
    ngx_http_clockchain_store_walk_t   walk;
    ngx_uint_t                         depths;   /* summaries with depth */
} ngx_http_clockchain_walk_t;


/* what each walk takes: a depth, a size, and which of the filters */

typedef struct {
    const char                        *mode;
    const char                        *hops;       /* its argument's name */
    ngx_uint_t                         hops_default;
    ngx_uint_t                         hops_max;
    const char                        *most;       /* NULL: path's own */
    ngx_uint_t                         most_default;
    ngx_uint_t                         most_max;
    unsigned                           direction:1;
    unsigned                           weight:1;
    unsigned                           depths:1;    /* in each summary */
} ngx_http_clockchain_walk_spec_t;


static ngx_http_clockchain_walk_spec_t  ngx_http_clockchain_subgraph_spec = {
    "subgraph", "depth", 1, 3, "cap", 200, 500, 0, 0, 0
};

static ngx_http_clockchain_walk_spec_t  ngx_http_clockchain_traverse_spec = {
    "traverse", "depth", 2, 4, "limit", 50, 500, 1, 1, 1
};

static ngx_http_clockchain_walk_spec_t  ngx_http_clockchain_path_spec = {
    "path", "max_hops", 6, 10, NULL, 0, 0, 0, 0, 0
};


/* past and future: the MCP client's traverse_moments sends them */
static const char *const  ngx_http_clockchain_directions[] = {
    "out", "in", "both", "past", "future", NULL
};


/*
 * The walk's query arguments, each checked by the nginx-free parsers of
 * ngx_http_clockchain_query.c: NGX_OK, NGX_ERROR, or NGX_DECLINED with
 * *detail the 400's text, naming the argument.
 */

static ngx_int_t
ngx_http_clockchain_walk_args(ngx_http_request_t *r,
    ngx_http_clockchain_walk_t *w, ngx_http_clockchain_walk_spec_t *spec,
    const char **detail)
{
    int        i;
    int64_t    n;
    ssize_t    len;
    ngx_int_t  rc;
    ngx_str_t  value;

    w->walk.mode = spec->mode;

    n = spec->hops_default;
    rc = ngx_http_clockchain_arg_int(r, spec->hops, 1, spec->hops_max, &n,
                                     detail);
    if (rc != NGX_OK) {
        return rc;
    }

    w->walk.hops = n;

    if (spec->most) {
        n = spec->most_default;
        rc = ngx_http_clockchain_arg_int(r, spec->most, 1, spec->most_max,
                                         &n, detail);
        if (rc != NGX_OK) {
            return rc;
        }

        w->walk.most = n;

    } else {
        w->walk.most = NGX_HTTP_CLOCKCHAIN_WALK_PATH_MOST;
    }

    if (spec->direction) {
        rc = ngx_http_clockchain_arg(r, "direction", &value);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK) {
            i = ngx_http_clockchain_query_one_of(value.data, value.len,
                                                ngx_http_clockchain_directions);
            if (i < 0) {
                *detail = "direction: must be out, in, both, past or future";
                return NGX_DECLINED;
            }

            w->walk.direction = ngx_http_clockchain_directions[i];
        }
    }

    /* edge_types=a,b: sent as ",a,b," */

    rc = ngx_http_clockchain_arg(r, "edge_types", &value);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        w->walk.types.data = ngx_pnalloc(r->pool, value.len + 2);
        if (w->walk.types.data == NULL) {
            return NGX_ERROR;
        }

        len = ngx_http_clockchain_query_edge_types(value.data, value.len,
                                                   w->walk.types.data);
        if (len < 0) {
            *detail = "edge_types: must be a comma list of edge types";
            return NGX_DECLINED;
        }

        w->walk.types.len = len;
    }

    if (spec->weight) {
        rc = ngx_http_clockchain_arg(r, "min_weight", &value);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK) {
            if (ngx_http_clockchain_query_weight(value.data, value.len) != 0)
            {
                *detail = "min_weight: must be a number from 0 to 1";
                return NGX_DECLINED;
            }

            w->walk.min_weight = value;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_clockchain_walk_start(ngx_http_request_t *r,
    ngx_http_clockchain_walk_t *w)
{
    ngx_int_t                         rc;
    ngx_http_clockchain_ctx_t        *ctx;
    ngx_http_clockchain_main_conf_t  *mcf;

    ctx = w->ctx;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    w->walk.user = ctx->created_by;
    w->walk.per_node = NGX_HTTP_CLOCKCHAIN_WALK_PER_NODE;
    w->walk.budget = NGX_HTTP_CLOCKCHAIN_WALK_BUDGET;

    ctx->op = ngx_http_clockchain_store_walk(mcf, &w->walk,
                                             ngx_http_clockchain_walk_done, w);
    if (ctx->op == NULL) {
        return ngx_http_clockchain_unavailable(r, "Graph store unavailable: "
                                               "Redis cannot be reached, "
                                               "retry later");
    }

    r->main->count++;

    return NGX_DONE;
}


/* the common start: method, key, X-User-Id, the walk's context */

static ngx_int_t
ngx_http_clockchain_walk_init(ngx_http_request_t *r,
    ngx_http_clockchain_walk_t **wp)
{
    ngx_int_t                    rc;
    ngx_http_clockchain_ctx_t   *ctx;
    ngx_http_clockchain_walk_t  *w;

    rc = ngx_http_clockchain_read_start(r, NULL, &ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    w = ngx_pcalloc(r->pool, sizeof(ngx_http_clockchain_walk_t));
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w->ctx = ctx;
    w->walk.direction = "both";
    ngx_str_set(&w->walk.min_weight, "0");

    *wp = w;

    return NGX_DECLINED;
}


/*
 * The path after the location's prefix, made canonical as for neighbors:
 * NGX_DECLINED to go on, else the 404 sent for a path that names no node
 */

static ngx_int_t
ngx_http_clockchain_walk_path(ngx_http_request_t *r, ngx_str_t *path)
{
    ngx_int_t  rc;
    ngx_str_t  tail;

    ngx_http_clockchain_uri_tail(r, &tail);

    rc = ngx_http_clockchain_moment_canonical(r, tail.data, tail.len, path);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_clockchain_error(r, NGX_HTTP_NOT_FOUND,
                                         "Node not found");
    }

    return NGX_DECLINED;
}


/* after the walk's path: its arguments, then the store */

static ngx_int_t
ngx_http_clockchain_walk_run(ngx_http_request_t *r,
    ngx_http_clockchain_walk_t *w, ngx_http_clockchain_walk_spec_t *spec)
{
    ngx_int_t    rc;
    const char  *detail;

    rc = ngx_http_clockchain_walk_args(r, w, spec, &detail);

    if (rc == NGX_DECLINED) {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST, "%s",
                                         detail);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    w->depths = spec->depths;

    return ngx_http_clockchain_walk_start(r, w);
}


/* subgraph and traverse: a walk from the moment the URI names */

static ngx_int_t
ngx_http_clockchain_walk_rooted(ngx_http_request_t *r,
    ngx_http_clockchain_walk_spec_t *spec)
{
    ngx_int_t                    rc;
    ngx_http_clockchain_walk_t  *w;

    rc = ngx_http_clockchain_walk_init(r, &w);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_clockchain_walk_path(r, &w->walk.from);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_clockchain_walk_run(r, w, spec);
}


ngx_int_t
ngx_http_clockchain_subgraph_handler(ngx_http_request_t *r)
{
    return ngx_http_clockchain_walk_rooted(r,
                                           &ngx_http_clockchain_subgraph_spec);
}


ngx_int_t
ngx_http_clockchain_traverse_handler(ngx_http_request_t *r)
{
    return ngx_http_clockchain_walk_rooted(r,
                                           &ngx_http_clockchain_traverse_spec);
}


ngx_int_t
ngx_http_clockchain_path_handler(ngx_http_request_t *r)
{
    u_char                      *p;
    ngx_int_t                    rc;
    ngx_str_t                   *end[2];
    ngx_uint_t                   i;
    const char                  *names[2];
    ngx_http_clockchain_walk_t  *w;

    rc = ngx_http_clockchain_walk_init(r, &w);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    end[0] = &w->walk.from;
    end[1] = &w->walk.to;
    names[0] = "from";
    names[1] = "to";

    for (i = 0; i < 2; i++) {
        rc = ngx_http_clockchain_arg(r, names[i], end[i]);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /*
         * The MCP client sends a path stripped of its slashes at both ends
         * (path.strip("/")), as the original's route takes it: the leading
         * one is put back, so that both name the same node
         */

        if (rc == NGX_OK && end[i]->len && end[i]->data[0] != '/') {
            p = ngx_pnalloc(r->pool, end[i]->len + 1);
            if (p == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            *p = '/';
            ngx_memcpy(p + 1, end[i]->data, end[i]->len);
            end[i]->data = p;
            end[i]->len++;
        }

        /* and the original's unpadded day is padded */

        if (rc == NGX_OK) {
            rc = ngx_http_clockchain_moment_canonical(r, end[i]->data,
                                                      end[i]->len, end[i]);
            if (rc == NGX_ERROR) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        if (rc != NGX_OK) {
            return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                       "%s: must be a moment's path", names[i]);
        }
    }

    return ngx_http_clockchain_walk_run(r, w, &ngx_http_clockchain_path_spec);
}


/* a summary's year, month or day: a number, or null when absent */

static json_t *
ngx_http_clockchain_walk_int(redisReply *v)
{
    ngx_int_t  n;

    if (v->len == 0) {
        return json_null();
    }

    if (v->str[0] == '-') {
        n = ngx_atoi((u_char *) v->str + 1, v->len - 1);
        return n == NGX_ERROR ? json_null() : json_integer(-n);
    }

    n = ngx_atoi((u_char *) v->str, v->len);

    return n == NGX_ERROR ? json_null() : json_integer(n);
}


static json_t *
ngx_http_clockchain_walk_json(ngx_http_clockchain_walk_t *w,
    redisReply *reply)
{
    size_t        i, k;
    json_t       *out, *nodes, *edges, *n;
    redisReply  **e, *list;

    out = json_object();
    nodes = json_array();
    edges = json_array();

    if (out == NULL || nodes == NULL || edges == NULL) {
        json_decref(out);
        json_decref(nodes);
        json_decref(edges);
        return NULL;
    }

    list = reply->element[0];

    for (i = 0; i < list->elements; i++) {
        if (list->element[i]->type != REDIS_REPLY_ARRAY
            || list->element[i]->elements != 10)
        {
            continue;
        }

        e = list->element[i]->element;

        for (k = 0; k < 10 && e[k]->type == REDIS_REPLY_STRING; k++) {
            /* void */
        }

        if (k < 10) {
            continue;
        }

        n = json_pack("{s:s%,s:s%,s:s%,s:o,s:o,s:o,s:s%,s:s%,s:s%}",
                      "path", e[0]->str, e[0]->len,
                      "name", e[1]->str, e[1]->len,
                      "one_liner", e[2]->str, e[2]->len,
                      "year", ngx_http_clockchain_walk_int(e[3]),
                      "month", ngx_http_clockchain_walk_int(e[4]),
                      "day", ngx_http_clockchain_walk_int(e[5]),
                      "country", e[6]->str, e[6]->len,
                      "region", e[7]->str, e[7]->len,
                      "city", e[8]->str, e[8]->len);
        if (n == NULL) {
            continue;
        }

        if (w->depths) {
            json_object_set_new(n, "depth",
                                json_integer(ngx_atoi((u_char *) e[9]->str,
                                                      e[9]->len)));
        }

        json_array_append_new(nodes, n);
    }

    list = reply->element[1];

    for (i = 0; i < list->elements; i++) {
        if (list->element[i]->type != REDIS_REPLY_ARRAY
            || list->element[i]->elements != 5)
        {
            continue;
        }

        e = list->element[i]->element;

        for (k = 0; k < 5 && e[k]->type == REDIS_REPLY_STRING; k++) {
            /* void */
        }

        if (k < 5) {
            continue;
        }

        n = json_pack("{s:s%,s:s%,s:s%,s:f,s:s%}",
                      "source", e[0]->str, e[0]->len,
                      "target", e[1]->str, e[1]->len,
                      "edge_type", e[2]->str, e[2]->len,
                      "weight", strtod(e[3]->str, NULL),
                      "theme", e[4]->str, e[4]->len);
        if (n) {
            json_array_append_new(edges, n);
        }
    }

    if (ngx_strcmp(w->walk.mode, "path") == 0) {
        json_object_set_new(out, "from",
                            json_stringn((char *) w->walk.from.data,
                                         w->walk.from.len));
        json_object_set_new(out, "to",
                            json_stringn((char *) w->walk.to.data,
                                         w->walk.to.len));
        json_object_set_new(out, "hops",
                            json_integer(json_array_size(edges)));

    } else {
        json_object_set_new(out, "root",
                            json_stringn((char *) w->walk.from.data,
                                         w->walk.from.len));
    }

    json_object_set_new(out, "nodes", nodes);
    json_object_set_new(out, "edges", edges);

    return out;
}


static void
ngx_http_clockchain_walk_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_walk_t *w = data;

    json_t              *json;
    ngx_http_request_t  *r;

    r = w->ctx->request;
    w->ctx->op = NULL;

    if (ngx_http_clockchain_graph_reply(r, reply, w->walk.mode,
                                        "Node not found")
        != NGX_OK)
    {
        return;
    }

    if (reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_ARRAY
        || reply->element[1]->type != REDIS_REPLY_ARRAY)
    {
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_error(r,
                                     NGX_HTTP_NOT_FOUND, "No path found"));
        return;
    }

    json = ngx_http_clockchain_walk_json(w, reply);
    if (json == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_json(r, json));
}


/*
 * Copyright (C) The Clockchain authors
 */


/*
 * libFuzzer target: a writer's body (ngx_http_clockchain_ingest.c), the
 * input's first byte choosing the route (POST /api/index,
 * /api/ingest/subgraph, /api/ingest/tdf) and the rest the body.
 * Whatever it holds: an error is a NUL-terminated message that names
 * what is wrong; a success is JSON with as many nodes and edges as it
 * says, within the request's limits, each node at a canonical path
 * (ngx_http_clockchain_valid_path()) whose year, month, day and HHMM give
 * its sort_key and are its fields, with at most
 * NGX_HTTP_CLOCKCHAIN_WORDS_MAX search words and the writer as
 * proposed_by, and each edge between canonical paths with one of the
 * twelve types and a weight from 0 to 1; the index's path is its node's.
 */


#include <jansson.h>

#include "fuzz.h"
#include "ngx_http_clockchain_ingest.h"
#include "ngx_http_clockchain_query.h"
#include "ngx_http_clockchain_scene.h"


static void
fz_node(json_t *node)
{
    char        seg[8][NGX_HTTP_CLOCKCHAIN_PATH_LEN + 1];
    size_t      i, n, len;
    json_t     *path;
    long long   key;
    const char *p, *s;

    static const char *const  months[] = {
        "january", "february", "march", "april", "may", "june", "july",
        "august", "september", "october", "november", "december"
    };

    path = json_object_get(node, "path");
    fz_assert(json_is_string(path));

    p = json_string_value(path);
    len = json_string_length(path);
    fz_assert(ngx_http_clockchain_valid_path(p, len));

    p++;
    for (i = 0; i < 8; i++) {
        s = strchr(p, '/');
        n = s ? (size_t) (s - p) : strlen(p);
        memcpy(seg[i], p, n);
        seg[i][n] = '\0';
        p += n + 1;
    }

    for (i = 0; i < 12; i++) {
        if (strcmp(months[i], seg[1]) == 0) {
            break;
        }
    }

    fz_assert(i < 12);

    key = atoll(seg[0]) * 100000000LL + (long long) (i + 1) * 1000000
          + atoll(seg[2]) * 10000 + atoll(seg[3]);

    fz_assert(json_integer_value(json_object_get(node, "sort_key")) == key);
    fz_assert(json_integer_value(json_object_get(node, "year"))
              == atoll(seg[0]));
    fz_assert(json_integer_value(json_object_get(node, "month_num"))
              == (json_int_t) i + 1);
    fz_assert(json_integer_value(json_object_get(node, "day"))
              == atoll(seg[2]));
    fz_assert(strcmp(json_string_value(json_object_get(node, "slug")),
                     seg[7]) == 0);
    fz_assert(json_is_array(json_object_get(node, "search")));
    fz_assert(json_array_size(json_object_get(node, "search"))
              <= NGX_HTTP_CLOCKCHAIN_WORDS_MAX);
    fz_assert(strcmp(json_string_value(json_object_get(node, "proposed_by")),
                     "fuzz-agent") == 0);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                          *out, err[512];
    size_t                         i, t, k;
    unsigned                       kind;
    json_t                        *all, *list, *e, *v;
    ngx_http_clockchain_ingest_t   in;

    if (size == 0) {
        return 0;
    }

    kind = data[0] % 3;

    memset(err, 'x', sizeof(err));

    out = ngx_http_clockchain_ingest_parse(kind, (const char *) data + 1,
                                           size - 1, "fuzz-agent", &in, err,
                                           sizeof(err));

    if (out == NULL) {
        fz_assert(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
        return 0;
    }

    all = json_loads(out, 0, NULL);
    fz_assert(all != NULL);
    free(out);

    list = json_object_get(all, "nodes");
    fz_assert(json_array_size(list) == in.nodes
              && in.nodes <= NGX_HTTP_CLOCKCHAIN_INGEST_NODES);
    fz_assert(kind == NGX_HTTP_CLOCKCHAIN_INGEST_SUBGRAPH || in.nodes > 0);

    json_array_foreach(list, i, v) {
        fz_node(v);
    }

    if (kind == NGX_HTTP_CLOCKCHAIN_INGEST_INDEX) {
        fz_assert(in.nodes == 1);
        fz_assert(strcmp(in.path, json_string_value(json_object_get(
                             json_array_get(list, 0), "path"))) == 0);
    }

    list = json_object_get(all, "edges");
    fz_assert(json_array_size(list) == in.edges
              && in.edges <= NGX_HTTP_CLOCKCHAIN_INGEST_EDGES);
    fz_assert(kind == NGX_HTTP_CLOCKCHAIN_INGEST_SUBGRAPH || in.edges == 0);
    fz_assert(in.nodes + in.edges > 0);

    json_array_foreach(list, i, e) {
        for (k = 0; k < 2; k++) {
            v = json_object_get(e, k ? "target" : "source");
            fz_assert(json_is_string(v)
                      && ngx_http_clockchain_valid_path(
                             json_string_value(v), json_string_length(v)));
        }

        fz_assert(json_number_value(json_object_get(e, "weight")) >= 0
                  && json_number_value(json_object_get(e, "weight")) <= 1);

        for (t = 0; ngx_http_clockchain_edge_types[t]; t++) {
            if (strcmp(ngx_http_clockchain_edge_types[t], json_string_value(
                           json_object_get(e, "type"))) == 0)
            {
                break;
            }
        }

        fz_assert(ngx_http_clockchain_edge_types[t] != NULL);
    }

    json_decref(all);

    return 0;
}

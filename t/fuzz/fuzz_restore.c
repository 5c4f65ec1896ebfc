
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * libFuzzer target: a chunk of a whole-graph export read back for
 * POST /api/restore (ngx_http_clockchain_restore_parse()), the input as
 * the body's bytes.  Whatever it holds: an error says where (a line the
 * chunk has, or 0) and what, in a NUL-terminated message; a success is
 * JSON with as many nodes and edges as it says, every id once, each edge
 * from a node of the chunk with one of the twelve types.  And the round
 * trip: each node written as an export line
 * (ngx_http_clockchain_export_line()) and read back is the same node.
 */


#include <jansson.h>

#include "fuzz.h"
#include "ngx_http_clockchain_query.h"
#include "ngx_http_clockchain_seed.h"
#include "ngx_http_clockchain_tdf.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* the node as its hash holds it: no search words, no sort_key */

static json_t *
fz_stored(json_t *node)
{
    json_t  *n;

    n = json_deep_copy(node);
    fz_assert(n != NULL);
    json_object_del(n, "search");
    json_object_del(n, "sort_key");

    return n;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char        *out, *line, *again, err[512];
    size_t       nodes, edges, n2, e2, at, lines, i, t, len;
    json_t      *all, *list, *e, *ids, *node, *back, *a, *b, *mine;
    const char  *path;

    memset(err, 'x', sizeof(err));

    out = ngx_http_clockchain_restore_parse((const char *) data, size,
                                            &nodes, &edges, &at, err,
                                            sizeof(err));

    for (lines = 1, i = 0; i < size; i++) {
        lines += (data[i] == '\n');
    }

    if (out == NULL) {
        fz_assert(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
        fz_assert(at <= lines);
        return 0;
    }

    all = json_loads(out, 0, NULL);
    fz_assert(all != NULL);
    free(out);

    list = json_object_get(all, "nodes");
    fz_assert(json_array_size(list) == nodes && nodes > 0
              && nodes <= NGX_HTTP_CLOCKCHAIN_RESTORE_NODES);
    fz_assert(json_array_size(json_object_get(all, "edges")) == edges);

    ids = json_object();
    fz_assert(ids != NULL);

    json_array_foreach(list, i, node) {
        path = json_string_value(json_object_get(node, "path"));
        fz_assert(path != NULL);
        fz_assert(ngx_http_clockchain_valid_path(path, strlen(path)));
        fz_assert(json_object_get(ids, path) == NULL);
        json_object_set_new(ids, path, json_array());
    }

    json_array_foreach(json_object_get(all, "edges"), i, e) {
        mine = json_object_get(ids, json_string_value(
                                   json_object_get(e, "source")));
        fz_assert(mine != NULL);
        fz_assert(json_is_string(json_object_get(e, "target")));

        for (t = 0; ngx_http_clockchain_edge_types[t]; t++) {
            if (strcmp(ngx_http_clockchain_edge_types[t], json_string_value(
                           json_object_get(e, "type"))) == 0)
            {
                break;
            }
        }

        fz_assert(ngx_http_clockchain_edge_types[t] != NULL);
        json_array_append(mine, e);
    }

    /* the round trip: out as an export line and back, the same node */

    json_array_foreach(list, i, node) {
        path = json_string_value(json_object_get(node, "path"));
        a = fz_stored(node);

        line = ngx_http_clockchain_export_line(a, path,
                                               json_object_get(ids, path),
                                               &len);
        fz_assert(line != NULL);
        fz_assert(strlen(line) == len);

        again = ngx_http_clockchain_restore_parse(line, len, &n2, &e2, &at,
                                                  err, sizeof(err));
        if (again == NULL) {
            fprintf(stderr, "%s\n%s\n", line, err);
        }
        fz_assert(again != NULL);
        fz_assert(n2 == 1);

        back = json_loads(again, 0, NULL);
        fz_assert(back != NULL);
        b = fz_stored(json_array_get(json_object_get(back, "nodes"), 0));

        if (!json_equal(a, b)) {
            char *x = json_dumps(a, JSON_SORT_KEYS);
            char *y = json_dumps(b, JSON_SORT_KEYS);
            fprintf(stderr, "%s\n%s\n", x, y);
            free(x);
            free(y);
        }
        fz_assert(json_equal(a, b));
        fz_assert(e2 == json_array_size(json_object_get(ids, path)));

        json_decref(a);
        json_decref(b);
        json_decref(back);
        free(again);
        free(line);
    }

    json_decref(ids);
    json_decref(all);

    return 0;
}

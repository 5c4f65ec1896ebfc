
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * libFuzzer target: a seeds file (ngx_http_clockchain_seed.c), the input
 * as the file's bytes.  Whatever it holds: an error says where (a line
 * the file has, or 0 for the whole file) and what, in a NUL-terminated
 * message; a success is JSON with as many nodes and edges as it says,
 * each node at a canonical path (ngx_http_clockchain_valid_path()) whose
 * year, month, day and HHMM give its sort_key and are its fields, with
 * search words of at most NGX_HTTP_CLOCKCHAIN_WORDS_MAX, and each edge
 * from one of its nodes to one of its nodes with one of the twelve types
 * and a weight from 0 to 1.  The first line alone is parsed too, and
 * must agree with the file about whether it is a record; and as a
 * proposal (ngx_http_clockchain_seed_propose(), the writers' workflow):
 * a node as above, "proposed" by the agent, each edge from it.
 */


#include <jansson.h>

#include "fuzz.h"
#include "ngx_http_clockchain_query.h"
#include "ngx_http_clockchain_scene.h"
#include "ngx_http_clockchain_seed.h"


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
    fz_assert(strcmp(json_string_value(json_object_get(node, "time")),
                     seg[3]) == 0);
    fz_assert(strcmp(json_string_value(json_object_get(node, "slug")),
                     seg[7]) == 0);
    fz_assert(json_is_array(json_object_get(node, "search")));
    fz_assert(json_array_size(json_object_get(node, "search"))
              <= NGX_HTTP_CLOCKCHAIN_WORDS_MAX);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          rc, prc;
    char        *out, err[512];
    size_t       nodes, edges, line, lines, i, t;
    json_t      *all, *list, *e, *ids, *node, *el;
    const char  *nl;

    memset(err, 'x', sizeof(err));

    out = ngx_http_clockchain_seed_parse((const char *) data, size, &nodes,
                                         &edges, &line, err, sizeof(err));

    for (lines = 1, i = 0; i < size; i++) {
        lines += (data[i] == '\n');
    }

    /* the first line on its own */
    nl = memchr(data, '\n', size);
    rc = ngx_http_clockchain_seed_line((const char *) data,
                                       nl ? (size_t) (nl - (char *) data)
                                          : size,
                                       &node, &el, err, sizeof(err));
    fz_assert(rc >= -1 && rc <= 1);

    if (rc == 1) {
        fz_node(node);
        json_decref(node);
        json_decref(el);

    } else {
        fz_assert(node == NULL && el == NULL);
    }

    /* the first line as a proposal's body */
    all = json_loadb((const char *) data, nl ? (size_t) (nl - (char *) data)
                                             : size, 0, NULL);
    if (all) {
        /* prc, not rc: rc is the first line's verdict, checked below */
        prc = ngx_http_clockchain_seed_propose(all, "fz-agent", "body", &node,
                                               &el, err, sizeof(err));
        json_decref(all);
        fz_assert(prc == 1 || prc == -1);

        if (prc == 1) {
            fz_node(node);
            fz_assert(strcmp(json_string_value(
                          json_object_get(node, "status")), "proposed") == 0);
            json_array_foreach(el, i, e) {
                fz_assert(strcmp(json_string_value(
                              json_object_get(e, "source")),
                                 json_string_value(
                              json_object_get(node, "path"))) == 0);
                fz_assert(json_is_string(json_object_get(e, "created_by")));
            }
            json_decref(node);
            json_decref(el);

        } else {
            fz_assert(memchr(err, '\0', sizeof(err)) != NULL
                      && err[0] != '\0');
        }
    }

    if (out == NULL) {
        fz_assert(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
        fz_assert(line <= lines);
        /* a first line that is not a record is the file's first error */
        if (rc < 0) {
            fz_assert(line == 1);
        }
        return 0;
    }

    fz_assert(rc >= 0);

    all = json_loads(out, 0, NULL);
    fz_assert(all != NULL);
    free(out);

    list = json_object_get(all, "nodes");
    fz_assert(json_array_size(list) == nodes && nodes > 0
              && nodes <= NGX_HTTP_CLOCKCHAIN_SEED_NODES);

    ids = json_object();
    fz_assert(ids != NULL);

    json_array_foreach(list, i, node) {
        fz_node(node);
        /* every id once */
        fz_assert(json_object_get(ids, json_string_value(
                      json_object_get(node, "path"))) == NULL);
        json_object_set(ids, json_string_value(json_object_get(node, "path")),
                        json_true());
    }

    list = json_object_get(all, "edges");
    fz_assert(json_array_size(list) == edges);

    json_array_foreach(list, i, e) {
        fz_assert(json_object_get(ids, json_string_value(
                      json_object_get(e, "source"))) != NULL);
        fz_assert(json_object_get(ids, json_string_value(
                      json_object_get(e, "target"))) != NULL);
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

    json_decref(ids);
    json_decref(all);

    return 0;
}

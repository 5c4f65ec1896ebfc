
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * The writers' bodies, as the original service takes them (its
 * app/api/ingest.py and POST /index in app/api/generate.py, the schemas
 * in app/models/schemas.py), checked and turned into the nodes and edges
 * ingest.lua writes.  A node is built as a seeds file's record is
 * (ngx_http_clockchain_seed_record()): each body is made into the TDF
 * record it stands for, so the columns, their defaults and limits, the
 * canonical path (the original's unpadded day, /2016/march/9/..., is
 * /2016/march/09/...), the place taken from the path, sort_key and the
 * search words are the seeds' and the runner's.  What differs from the
 * original, on purpose: a path that cannot be made canonical, an edge
 * type outside the twelve and an empty request are refused, not stored
 * or skipped; a field that says another place or time than the node's
 * path is refused (the indexes are built from the fields, browse from the
 * path); proposed_by is always the writer's name.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ngx_http_clockchain_ingest.h"
#include "ngx_http_clockchain_query.h"
#include "ngx_http_clockchain_scene.h"
#include "ngx_http_clockchain_seed.h"


#define NGX_HTTP_CLOCKCHAIN_INGEST_MSG  512


/* the columns of the original's add_node that a seeds record has not */

static const struct {
    const char  *name;
    const char  *dflt;          /* NULL: null when absent */
    size_t       max;           /* bytes */
    unsigned     subgraph:1;    /* in SubgraphNodeInput */
} ngx_http_clockchain_ingest_columns[] = {
    { "source_type",      "historical", 100,  1 },
    { "generation_id",    "",           200,  1 },
    { "flash_slug",       "",           200,  0 },
    { "flash_share_url",  "",           2000, 0 },
    { "era",              "",           200,  0 },
    { "image_url",        NULL,         2000, 0 },
    { NULL, NULL, 0, 0 }
};


static json_t *ngx_http_clockchain_ingest_node(unsigned kind, json_t *in,
    json_t *body, const char *agent, const char *where, char *err,
    size_t errlen);
static json_t *ngx_http_clockchain_ingest_record(unsigned kind, json_t *in,
    json_t *body);
static void ngx_http_clockchain_ingest_where(unsigned kind, json_t *in,
    const char *where, const char *msg, char *err, size_t errlen);
static int ngx_http_clockchain_ingest_extras(unsigned kind, json_t *src,
    json_t *node, const char *where, char *err, size_t errlen);
static json_t *ngx_http_clockchain_ingest_edge(json_t *e, size_t i,
    char *err, size_t errlen);
static int ngx_http_clockchain_ingest_path(json_t *v, char *out);
static int ngx_http_clockchain_ingest_list(json_t *body, const char *name,
    size_t max, json_t **list, char *err, size_t errlen);


char *
ngx_http_clockchain_ingest_parse(unsigned kind, const char *body, size_t len,
    const char *agent, ngx_http_clockchain_ingest_t *out, char *err,
    size_t errlen)
{
    char          where[32], *text;
    size_t        i;
    json_t       *in, *all, *nodes, *edges, *list, *v, *node, *edge;
    json_error_t  jerr;

    memset(out, 0, sizeof(ngx_http_clockchain_ingest_t));

    in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (in == NULL) {
        snprintf(err, errlen, "body: not JSON: %s at column %d", jerr.text,
                 jerr.column);
        return NULL;
    }

    all = json_pack("{s:[],s:[]}", "nodes", "edges");
    if (all == NULL) {
        snprintf(err, errlen, "out of memory");
        json_decref(in);
        return NULL;
    }

    nodes = json_object_get(all, "nodes");
    edges = json_object_get(all, "edges");

    switch (kind) {

    case NGX_HTTP_CLOCKCHAIN_INGEST_INDEX:
        if (!json_is_object(in)) {
            snprintf(err, errlen, "body: must be a JSON object {\"path\", "
                     "\"metadata\", ...}");
            goto failed;
        }

        v = json_object_get(in, "path");

        if (v == NULL || json_is_null(v)
            || (json_is_string(v) && json_string_length(v) == 0))
        {
            snprintf(err, errlen, "path: is required");
            goto failed;
        }

        v = json_object_get(in, "metadata");

        if (json_is_null(v)) {
            v = NULL;
        }

        if (v != NULL && !json_is_object(v)) {
            snprintf(err, errlen, "metadata: must be an object");
            goto failed;
        }

        node = ngx_http_clockchain_ingest_node(kind, v, in, agent, "", err,
                                               errlen);
        if (node == NULL || json_array_append_new(nodes, node) != 0) {
            goto failed;
        }

        snprintf(out->path, sizeof(out->path), "%s",
                 json_string_value(json_object_get(node, "path")));
        break;

    case NGX_HTTP_CLOCKCHAIN_INGEST_SUBGRAPH:
        if (!json_is_object(in)) {
            snprintf(err, errlen, "body: must be a JSON object {\"nodes\": "
                     "[...], \"edges\": [...]}");
            goto failed;
        }

        if (ngx_http_clockchain_ingest_list(in, "nodes",
                                            NGX_HTTP_CLOCKCHAIN_INGEST_NODES,
                                            &list, err, errlen) != 0)
        {
            goto failed;
        }

        json_array_foreach(list, i, v) {
            snprintf(where, sizeof(where), "nodes[%zu]", i);

            if (!json_is_object(v)) {
                snprintf(err, errlen, "%s: must be an object", where);
                goto failed;
            }

            node = ngx_http_clockchain_ingest_node(kind, v, NULL, agent,
                                                   where, err, errlen);
            if (node == NULL || json_array_append_new(nodes, node) != 0) {
                goto failed;
            }
        }

        if (ngx_http_clockchain_ingest_list(in, "edges",
                                            NGX_HTTP_CLOCKCHAIN_INGEST_EDGES,
                                            &list, err, errlen) != 0)
        {
            goto failed;
        }

        json_array_foreach(list, i, v) {
            edge = ngx_http_clockchain_ingest_edge(v, i, err, errlen);
            if (edge == NULL || json_array_append_new(edges, edge) != 0) {
                goto failed;
            }
        }

        if (json_array_size(nodes) + json_array_size(edges) == 0) {
            snprintf(err, errlen, "nodes, edges: both empty, nothing to "
                     "ingest");
            goto failed;
        }

        break;

    default: /* NGX_HTTP_CLOCKCHAIN_INGEST_TDF */
        if (!json_is_array(in)) {
            snprintf(err, errlen, "body: must be a JSON list of TDF records");
            goto failed;
        }

        if (json_array_size(in) == 0) {
            snprintf(err, errlen, "body: the list is empty, nothing to "
                     "ingest");
            goto failed;
        }

        if (json_array_size(in) > NGX_HTTP_CLOCKCHAIN_INGEST_NODES) {
            snprintf(err, errlen, "body: more than %d records",
                     NGX_HTTP_CLOCKCHAIN_INGEST_NODES);
            goto failed;
        }

        json_array_foreach(in, i, v) {
            snprintf(where, sizeof(where), "[%zu]", i);

            if (!json_is_object(v)) {
                snprintf(err, errlen, "%s: must be a TDF record (an object)",
                         where);
                goto failed;
            }

            node = ngx_http_clockchain_ingest_node(kind, v, NULL, agent,
                                                   where, err, errlen);
            if (node == NULL || json_array_append_new(nodes, node) != 0) {
                goto failed;
            }
        }
    }

    json_decref(in);

    out->nodes = json_array_size(nodes);
    out->edges = json_array_size(edges);

    text = json_dumps(all, JSON_COMPACT);
    json_decref(all);

    if (text == NULL) {
        snprintf(err, errlen, "out of memory");
    }

    return text;

failed:

    json_decref(in);
    json_decref(all);

    return NULL;
}


/*
 * One node: in is the subgraph's node, the TDF record, or the index's
 * metadata (body the index's whole body); a new reference, or NULL with
 * err.
 */

static json_t *
ngx_http_clockchain_ingest_node(unsigned kind, json_t *in, json_t *body,
    const char *agent, const char *where, char *err, size_t errlen)
{
    char         msg[NGX_HTTP_CLOCKCHAIN_INGEST_MSG];
    json_t      *rec, *node, *edges, *src, *v;
    json_int_t   layer;

    rec = ngx_http_clockchain_ingest_record(kind, in, body);
    if (rec == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    if (ngx_http_clockchain_seed_record(rec, &node, &edges, msg, sizeof(msg))
        != 1)
    {
        ngx_http_clockchain_ingest_where(kind, in, where, msg, err, errlen);
        json_decref(rec);
        return NULL;
    }

    /* TDF: payload.edges are dropped, as the original's /ingest/tdf does */
    json_decref(edges);

    src = (kind == NGX_HTTP_CLOCKCHAIN_INGEST_TDF)
          ? json_object_get(rec, "payload") : in;

    if (ngx_http_clockchain_ingest_extras(kind, src, node, where, err,
                                          errlen) != 0)
    {
        json_decref(rec);
        json_decref(node);
        return NULL;
    }

    json_decref(rec);

    /* what a seeds record has only when given is null when not: cleared */

    if (json_object_get(node, "tdf_hash") == NULL
        || json_object_get(node, "confidence") == NULL
        || json_object_get(node, "source_run_id") == NULL
        || json_object_get(node, "flash_timepoint_id") == NULL)
    {
        if ((json_object_get(node, "tdf_hash") == NULL
             && json_object_set_new(node, "tdf_hash", json_null()) != 0)
            || (json_object_get(node, "confidence") == NULL
                && json_object_set_new(node, "confidence", json_null()) != 0)
            || (json_object_get(node, "source_run_id") == NULL
                && json_object_set_new(node, "source_run_id", json_null())
                   != 0)
            || (json_object_get(node, "flash_timepoint_id") == NULL
                && json_object_set_new(node, "flash_timepoint_id",
                                       json_null()) != 0))
        {
            goto nomem;
        }
    }

    if (kind == NGX_HTTP_CLOCKCHAIN_INGEST_INDEX) {
        v = json_object_get(body, "flash_timepoint_id");

        if (v != NULL && !json_is_null(v)
            && !(json_is_string(v) && json_string_length(v) <= 200))
        {
            snprintf(err, errlen, "flash_timepoint_id: must be a string of "
                     "at most 200 bytes");
            json_decref(node);
            return NULL;
        }

        if (json_is_string(v) && json_string_length(v) > 0) {
            /* the original: a moment Flash rendered is at least layer 2 */
            layer = json_integer_value(json_object_get(node, "layer"));

            if (json_object_set(node, "flash_timepoint_id", v) != 0
                || json_object_set_new(node, "layer",
                                       json_integer(layer > 2 ? layer : 2))
                   != 0)
            {
                goto nomem;
            }
        }
    }

    /* the writer who wrote it; a new node is "proposed" (kept on update) */

    if (json_object_set_new(node, "proposed_by", json_string(agent)) != 0
        || json_object_set_new(node, "status", json_string("proposed")) != 0)
    {
        goto nomem;
    }

    return node;

nomem:

    snprintf(err, errlen, "out of memory");
    json_decref(node);

    return NULL;
}


/*
 * The TDF record a body stands for: a new reference, NULL when out of
 * memory.  The record's own fields (timestamp, provenance, tdf_hash) are
 * what the original maps to the columns created_at, confidence,
 * source_run_id, flash_timepoint_id and tdf_hash.
 */

static json_t *
ngx_http_clockchain_ingest_record(unsigned kind, json_t *in, json_t *body)
{
    size_t   i;
    json_t  *rec, *payload, *prov, *v;

    static const char *const  places[] = {
        "month_num", "day", "month", "time", "country", "region", "city",
        "slug", NULL
    };

    if (kind == NGX_HTTP_CLOCKCHAIN_INGEST_TDF) {
        rec = json_copy(in);
        payload = json_object_get(in, "payload");

        if (rec != NULL && json_is_object(payload)) {
            payload = json_copy(payload);
            if (payload == NULL) {
                json_decref(rec);
                return NULL;
            }

            json_object_del(payload, "edges");

            if (json_object_set_new(rec, "payload", payload) != 0) {
                json_decref(rec);
                return NULL;
            }
        }

        return rec;
    }

    rec = json_object();
    prov = json_object();
    payload = json_object();

    if (rec == NULL || prov == NULL || payload == NULL) {
        goto failed;
    }

    if (kind == NGX_HTTP_CLOCKCHAIN_INGEST_INDEX) {
        /* the original: {type, visibility, created_by, **metadata} */
        v = json_object_get(body, "path");

        if (v != NULL && json_object_set(rec, "id", v) != 0) {
            goto failed;
        }

        v = json_object_get(body, "visibility");
        if (json_object_set_new(payload, "visibility",
                                v && !json_is_null(v)
                                ? json_incref(v) : json_string("private"))
            != 0)
        {
            goto failed;
        }

        v = json_object_get(body, "created_by");
        if (v != NULL && !json_is_null(v)
            && json_object_set(payload, "created_by", v) != 0)
        {
            goto failed;
        }

        v = json_object_get(body, "flash_timepoint_id");
        if (v != NULL && json_object_set(prov, "flash_id", v) != 0) {
            goto failed;
        }

        if (in != NULL && json_object_update(payload, in) != 0) {
            goto failed;
        }

        v = json_object_get(in, "created_at");
        if (v != NULL && json_object_set(rec, "timestamp", v) != 0) {
            goto failed;
        }

        v = json_object_get(in, "flash_timepoint_id");
        if (v != NULL && json_object_get(prov, "flash_id") == NULL
            && json_object_set(prov, "flash_id", v) != 0)
        {
            goto failed;
        }

    } else {
        /* SubgraphNodeInput: no created_by (the original's "system") */
        if (json_object_update(payload, in) != 0) {
            goto failed;
        }

        json_object_del(payload, "created_by");

        v = json_object_get(in, "id");

        /* no id: the record has none, and says so */
        if (v != NULL && json_object_set(rec, "id", v) != 0) {
            goto failed;
        }

        v = json_object_get(payload, "visibility");

        if ((v == NULL || json_is_null(v))
            && json_object_set_new(payload, "visibility",
                                   json_string("public")) != 0)
        {
            goto failed;
        }
    }

    /* not a column: a seeds record's edges, which these bodies have not */
    json_object_del(payload, "edges");

    /* a place field at its schema's default says nothing */

    for (i = 0; places[i]; i++) {
        v = json_object_get(payload, places[i]);

        if ((i < 2 && json_is_integer(v) && json_integer_value(v) == 0)
            || (i >= 2 && json_is_string(v) && json_string_length(v) == 0))
        {
            json_object_del(payload, places[i]);
        }
    }

    v = json_object_get(payload, "confidence");
    if (v != NULL && json_object_set(prov, "confidence", v) != 0) {
        goto failed;
    }

    v = json_object_get(payload, "source_run_id");
    if (v != NULL && json_object_set(prov, "run_id", v) != 0) {
        goto failed;
    }

    v = json_object_get(payload, "tdf_hash");
    if (v != NULL && json_object_set(rec, "tdf_hash", v) != 0) {
        goto failed;
    }

    if (json_object_set_new(rec, "payload", payload) != 0) {
        payload = NULL;
        goto failed;
    }

    payload = NULL;

    if (json_object_set_new(rec, "provenance", prov) != 0) {
        prov = NULL;
        goto failed;
    }

    return rec;

failed:

    json_decref(rec);
    json_decref(prov);
    json_decref(payload);

    return NULL;
}


/*
 * A seeds record's message ("\"payload.name\" must be a string") named as
 * the body names the field ("nodes[3].name: must be a string").
 */

static void
ngx_http_clockchain_ingest_where(unsigned kind, json_t *in, const char *where,
    const char *msg, char *err, size_t errlen)
{
    char         name[64];
    size_t       i, n;
    const char  *end, *field, *sep;

    static const struct {
        const char  *seed;
        const char  *subgraph;
        const char  *index;
    } map[] = {
        { "id",                    "id",             "path" },
        { "provenance.confidence", "confidence",     "metadata.confidence" },
        { "provenance.run_id",     "source_run_id",  "metadata.source_run_id" },
        { "provenance.flash_id",   "flash_timepoint_id",
          "flash_timepoint_id" },
        { "timestamp",             "created_at",     "metadata.created_at" },
        { "tdf_hash",              "tdf_hash",       "metadata.tdf_hash" },
        { NULL, NULL, NULL }
    };

    sep = where[0] ? "." : "";

    end = (msg[0] == '"') ? strchr(msg + 1, '"') : NULL;

    if (kind == NGX_HTTP_CLOCKCHAIN_INGEST_TDF || end == NULL
        || (size_t) (end - msg) >= sizeof(name))
    {
        if (end != NULL && (size_t) (end - msg) < sizeof(name)) {
            /* a record's own names: "[3].payload.name: must be ..." */
            snprintf(err, errlen, "%s.%.*s:%s", where, (int) (end - msg - 1),
                     msg + 1, end + 1);

        } else {
            snprintf(err, errlen, "%s%s%s", where, where[0] ? ": " : "",
                     msg);
        }

        return;
    }

    n = end - msg - 1;
    memcpy(name, msg + 1, n);
    name[n] = '\0';

    field = NULL;

    for (i = 0; map[i].seed; i++) {
        if (strcmp(map[i].seed, name) == 0) {
            field = (kind == NGX_HTTP_CLOCKCHAIN_INGEST_INDEX)
                    ? map[i].index : map[i].subgraph;
            break;
        }
    }

    if (field == NULL && strncmp(name, "payload.", 8) == 0) {
        field = name + 8;

        if (kind == NGX_HTTP_CLOCKCHAIN_INGEST_INDEX
            && (json_object_get(in, field) != NULL
                || (strcmp(field, "visibility") != 0
                    && strcmp(field, "created_by") != 0)))
        {
            snprintf(err, errlen, "metadata.%s:%s", field, end + 1);
            return;
        }
    }

    if (field == NULL) {
        field = name;
    }

    snprintf(err, errlen, "%s%s%s:%s", where, sep, field, end + 1);
}


/* the columns a seeds record has not: source_type, generation_id, ... */

static int
ngx_http_clockchain_ingest_extras(unsigned kind, json_t *src, json_t *node,
    const char *where, char *err, size_t errlen)
{
    size_t       i;
    json_t      *v;
    const char  *name;

    for (i = 0; ngx_http_clockchain_ingest_columns[i].name; i++) {
        name = ngx_http_clockchain_ingest_columns[i].name;

        v = (kind != NGX_HTTP_CLOCKCHAIN_INGEST_SUBGRAPH
             || ngx_http_clockchain_ingest_columns[i].subgraph)
            ? json_object_get(src, name) : NULL;

        if (v == NULL || json_is_null(v)) {
            v = ngx_http_clockchain_ingest_columns[i].dflt
                ? json_string(ngx_http_clockchain_ingest_columns[i].dflt)
                : json_null();

        } else if (!json_is_string(v)
                   || json_string_length(v)
                      > ngx_http_clockchain_ingest_columns[i].max)
        {
            snprintf(err, errlen, "%s%s%s%s: must be a string of at most "
                     "%zu bytes", where, where[0] ? "." : "",
                     kind == NGX_HTTP_CLOCKCHAIN_INGEST_INDEX ? "metadata."
                     : kind == NGX_HTTP_CLOCKCHAIN_INGEST_TDF ? "payload."
                     : "", name, ngx_http_clockchain_ingest_columns[i].max);
            return -1;

        } else {
            json_incref(v);
        }

        if (json_object_set_new(node, name, v) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }

    return 0;
}


/* SubgraphEdgeInput, both ends canonical; the original's defaults */

static json_t *
ngx_http_clockchain_ingest_edge(json_t *e, size_t i, char *err,
    size_t errlen)
{
    char         ends[2][NGX_HTTP_CLOCKCHAIN_PATH_LEN + 2];
    size_t       k, t;
    json_t      *v, *out, *s;
    const char  *name;

    static const struct {
        const char  *name;
        const char  *dflt;
        size_t       max;
    } texts[] = {
        { "theme",       "",     NGX_HTTP_CLOCKCHAIN_TEXT_MAX },
        { "description", "",     NGX_HTTP_CLOCKCHAIN_TEXT_MAX },
        { "created_by",  "auto", 128 },
        { NULL, NULL, 0 }
    };

    if (!json_is_object(e)) {
        snprintf(err, errlen, "edges[%zu]: must be an object", i);
        return NULL;
    }

    for (k = 0; k < 2; k++) {
        name = k ? "target" : "source";
        v = json_object_get(e, name);

        if (!json_is_string(v)) {
            snprintf(err, errlen, "edges[%zu].%s: %s", i, name,
                     v ? "must be a string" : "is required");
            return NULL;
        }

        if (ngx_http_clockchain_ingest_path(v, ends[k]) != 0) {
            snprintf(err, errlen, "edges[%zu].%s: \"%.100s\" is not a "
                     "moment's path (/year/month/day/HHMM/country/region/"
                     "city/slug)", i, name, json_string_value(v));
            return NULL;
        }
    }

    v = json_object_get(e, "type");

    if (v == NULL || json_is_null(v)) {
        /* the original's default */
        v = json_string("thematic");

    } else if (!json_is_string(v)) {
        snprintf(err, errlen, "edges[%zu].type: must be a string", i);
        return NULL;

    } else {
        for (t = 0; ngx_http_clockchain_edge_types[t]; t++) {
            if (strcmp(ngx_http_clockchain_edge_types[t],
                       json_string_value(v)) == 0)
            {
                break;
            }
        }

        if (ngx_http_clockchain_edge_types[t] == NULL) {
            snprintf(err, errlen, "edges[%zu].type: \"%.50s\" is not one "
                     "of the twelve edge types (causes, caused_by, "
                     "influences, contemporaneous, same_era, same_location, "
                     "same_conflict, same_figure, thematic, precedes, "
                     "follows, challenges)", i, json_string_value(v));
            return NULL;
        }

        json_incref(v);
    }

    out = json_pack("{s:s,s:s,s:o,s:s}", "source", ends[0], "target",
                    ends[1], "type", v, "schema_version", "0.2");
    if (out == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    v = json_object_get(e, "weight");

    if (v == NULL || json_is_null(v)) {
        v = json_real(1.0);

    } else if (!json_is_number(v) || json_number_value(v) < 0
               || json_number_value(v) > 1)
    {
        snprintf(err, errlen, "edges[%zu].weight: must be a number from 0 "
                 "to 1", i);
        json_decref(out);
        return NULL;

    } else {
        v = json_real(json_number_value(v));
    }

    if (json_object_set_new(out, "weight", v) != 0) {
        goto nomem;
    }

    for (k = 0; texts[k].name; k++) {
        v = json_object_get(e, texts[k].name);

        if (v == NULL || json_is_null(v)) {
            s = json_string(texts[k].dflt);

        } else if (!json_is_string(v)
                   || json_string_length(v) > texts[k].max)
        {
            snprintf(err, errlen, "edges[%zu].%s: must be a string of at "
                     "most %zu bytes", i, texts[k].name, texts[k].max);
            json_decref(out);
            return NULL;

        } else {
            s = json_incref(v);
        }

        if (json_object_set_new(out, texts[k].name, s) != 0) {
            goto nomem;
        }
    }

    return out;

nomem:

    snprintf(err, errlen, "out of memory");
    json_decref(out);

    return NULL;
}


/* a path made canonical into out (NUL-terminated): 0, or -1 */

static int
ngx_http_clockchain_ingest_path(json_t *v, char *out)
{
    size_t  len;

    len = json_string_length(v);

    if (len == 0 || len >= NGX_HTTP_CLOCKCHAIN_PATH_LEN
        || memchr(json_string_value(v), '\0', len) != NULL)
    {
        return -1;
    }

    len = ngx_http_clockchain_canonical_path(json_string_value(v), len, out);
    if (len == 0 || len >= NGX_HTTP_CLOCKCHAIN_PATH_LEN) {
        return -1;
    }

    out[len] = '\0';

    return 0;
}


/* body[name]: a list of at most max (*list NULL when absent or null) */

static int
ngx_http_clockchain_ingest_list(json_t *body, const char *name, size_t max,
    json_t **list, char *err, size_t errlen)
{
    json_t  *v;

    v = json_object_get(body, name);
    *list = NULL;

    if (v == NULL || json_is_null(v)) {
        return 0;
    }

    if (!json_is_array(v) || json_array_size(v) > max) {
        snprintf(err, errlen, "%s: must be a list of at most %zu", name,
                 max);
        return -1;
    }

    *list = v;

    return 0;
}

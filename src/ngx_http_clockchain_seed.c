
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * The original service's seeds file (data/seeds.jsonl): a TDF record a
 * line, {"id", "version", "source", "timestamp", "provenance", "payload",
 * "tdf_hash"}, the node's columns in the payload and its edges in
 * payload.edges.  What a record becomes is what the original's
 * _seed_from_jsonl() (app/core/db.py) inserts: the payload's columns with
 * the same defaults, provenance.flash_id as flash_timepoint_id,
 * provenance.confidence and run_id as confidence and source_run_id, the
 * timestamp as created_at and the record's tdf_hash; the inverse of the
 * export in ngx_http_clockchain_tdf.c.  Other payload keys are not
 * columns there, and are dropped as there.
 *
 * The path is made canonical (the original's unpadded day, /2016/march/9/
 * ..., is /2016/march/09/...), in the id and at both ends of each edge.
 * The node's place in time and space is its path's: a payload field that
 * says otherwise is an error, so that the indexes (built from the fields)
 * and browse (built from the path) agree.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ngx_http_clockchain_job.h"
#include "ngx_http_clockchain_query.h"
#include "ngx_http_clockchain_scene.h"
#include "ngx_http_clockchain_seed.h"


#define NGX_HTTP_CLOCKCHAIN_SEED_STR   0
#define NGX_HTTP_CLOCKCHAIN_SEED_INT   1
#define NGX_HTTP_CLOCKCHAIN_SEED_LIST  2


typedef struct {
    json_int_t        year;
    int               month;        /* 1 to 12 */
    int               day;
    int               hhmm;
    char              seg[8][NGX_HTTP_CLOCKCHAIN_PATH_LEN + 1];
} ngx_http_clockchain_seed_path_t;


static int ngx_http_clockchain_seed_canonical(json_t *v, char *out,
    ngx_http_clockchain_seed_path_t *sp);
static int ngx_http_clockchain_seed_columns(json_t *payload, json_t *node,
    ngx_http_clockchain_seed_path_t *sp, char *err, size_t errlen);
static int ngx_http_clockchain_seed_place(json_t *payload, json_t *node,
    ngx_http_clockchain_seed_path_t *sp, char *err, size_t errlen);
static int ngx_http_clockchain_seed_provenance(json_t *rec, json_t *node,
    int restore, char *err, size_t errlen);
static int ngx_http_clockchain_seed_parse_line(const char *line, size_t len,
    int restore, json_t **node, json_t **edges, char *err, size_t errlen);
static char *ngx_http_clockchain_seed_records(const char *data, size_t len,
    int restore, size_t *nodes, size_t *edges, size_t *line, char *err,
    size_t errlen);
static int ngx_http_clockchain_seed_build(json_t *rec, int restore,
    json_t **node, json_t **edges, char *err, size_t errlen);
static int ngx_http_clockchain_restore_extra(json_t *payload, json_t *node,
    char *err, size_t errlen);
static int ngx_http_clockchain_restore_kept(json_t *payload, json_t *node,
    char *err, size_t errlen);
static int ngx_http_clockchain_seed_time(json_t *v, char *out);
static json_t *ngx_http_clockchain_seed_edges(json_t *payload,
    const char *source, int restore, char *err, size_t errlen);
static int ngx_http_clockchain_restore_edge(json_t *e, json_t *edge,
    size_t i, char *err, size_t errlen);


static const char *const  ngx_http_clockchain_seed_months[] = {
    "january", "february", "march", "april", "may", "june", "july",
    "august", "september", "october", "november", "december", NULL
};


/*
 * The payload's columns as _seed_from_jsonl() reads them, with its
 * defaults; the place and time (year ... slug) are the path's, below.
 */

static const struct {
    const char  *name;
    int          type;
    const char  *dflt;
    size_t       max;           /* bytes of a string, items of a list */
} ngx_http_clockchain_seed_columns_list[] = {
    { "type",                 NGX_HTTP_CLOCKCHAIN_SEED_STR,  "event",
      NGX_HTTP_CLOCKCHAIN_SEGMENT_MAX },
    { "name",                 NGX_HTTP_CLOCKCHAIN_SEED_STR,  "",
      NGX_HTTP_CLOCKCHAIN_TEXT_MAX },
    { "layer",                NGX_HTTP_CLOCKCHAIN_SEED_INT,  NULL, 0 },
    { "visibility",           NGX_HTTP_CLOCKCHAIN_SEED_STR,  "private", 7 },
    { "created_by",           NGX_HTTP_CLOCKCHAIN_SEED_STR,  "system", 128 },
    { "tags",                 NGX_HTTP_CLOCKCHAIN_SEED_LIST, NULL,
      NGX_HTTP_CLOCKCHAIN_TAGS_MAX },
    { "one_liner",            NGX_HTTP_CLOCKCHAIN_SEED_STR,  "",
      NGX_HTTP_CLOCKCHAIN_TEXT_MAX },
    { "figures",              NGX_HTTP_CLOCKCHAIN_SEED_LIST, NULL,
      NGX_HTTP_CLOCKCHAIN_FIGURES_MAX },
    { "schema_version",       NGX_HTTP_CLOCKCHAIN_SEED_STR,  "0.2", 100 },
    { "text_model",           NGX_HTTP_CLOCKCHAIN_SEED_STR,  "", 200 },
    { "image_model",          NGX_HTTP_CLOCKCHAIN_SEED_STR,  "", 200 },
    { "model_provider",       NGX_HTTP_CLOCKCHAIN_SEED_STR,  "", 200 },
    { "model_permissiveness", NGX_HTTP_CLOCKCHAIN_SEED_STR,  "unknown", 100 },
    { NULL, 0, NULL, 0 }
};


int
ngx_http_clockchain_seed_line(const char *line, size_t len, json_t **node,
    json_t **edges, char *err, size_t errlen)
{
    return ngx_http_clockchain_seed_parse_line(line, len, 0, node, edges,
                                               err, errlen);
}


/*
 * A record of a seeds file, or (restore) a line of a whole-graph export:
 * the same record, read back whole (the payload's other keys, the model
 * fields of provenance, payload.clockchain_restore, each edge's own
 * fields) so that a restored node is the node exported.
 */

static int
ngx_http_clockchain_seed_parse_line(const char *line, size_t len,
    int restore, json_t **node, json_t **edges, char *err, size_t errlen)
{
    int            rc;
    size_t         i;
    json_t        *rec;
    json_error_t   jerr;

    *node = NULL;
    *edges = NULL;

    for (i = 0; i < len; i++) {
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r') {
            break;
        }
    }

    if (i == len) {
        return 0;
    }

    rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (rec == NULL) {
        snprintf(err, errlen, "not JSON: %s at column %d", jerr.text,
                 jerr.column);
        return -1;
    }

    rc = ngx_http_clockchain_seed_build(rec, restore, node, edges, err,
                                        errlen);
    json_decref(rec);

    return rc;
}


/* a record already parsed (an ingest body's entry), the caller's to free */

int
ngx_http_clockchain_seed_record(json_t *rec, json_t **node, json_t **edges,
    char *err, size_t errlen)
{
    return ngx_http_clockchain_seed_build(rec, 0, node, edges, err, errlen);
}


static int
ngx_http_clockchain_seed_build(json_t *rec, int restore, json_t **node,
    json_t **edges, char *err, size_t errlen)
{
    char                              path[NGX_HTTP_CLOCKCHAIN_PATH_LEN + 2];
    json_t                           *payload, *n, *e, *id;
    ngx_http_clockchain_seed_path_t   sp;

    *node = NULL;
    *edges = NULL;

    if (!json_is_object(rec)) {
        snprintf(err, errlen, "not a JSON object");
        return -1;
    }

    id = json_object_get(rec, "id");

    if (id == NULL) {
        snprintf(err, errlen, "\"id\" is missing");
        return -1;
    }

    if (!json_is_string(id)) {
        snprintf(err, errlen, "\"id\" must be a string");
        return -1;
    }

    if (ngx_http_clockchain_seed_canonical(id, path, &sp) != 0) {
        snprintf(err, errlen, "\"id\" \"%.100s\" is not a moment's path "
                 "(/year/month/day/HHMM/country/region/city/slug)",
                 json_string_value(id));
        return -1;
    }

    payload = json_object_get(rec, "payload");

    if (payload != NULL && !json_is_object(payload)) {
        snprintf(err, errlen, "\"payload\" must be an object");
        return -1;
    }

    n = json_object();
    if (n == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    if (ngx_http_clockchain_seed_columns(payload, n, &sp, err, errlen) != 0
        || ngx_http_clockchain_seed_provenance(rec, n, restore, err, errlen)
           != 0
        || (restore
            && (ngx_http_clockchain_restore_extra(payload, n, err, errlen)
                != 0
                || ngx_http_clockchain_restore_kept(payload, n, err, errlen)
                   != 0)))
    {
        json_decref(n);
        return -1;
    }

    e = ngx_http_clockchain_seed_edges(payload, path, restore, err, errlen);

    if (e == NULL) {
        json_decref(n);
        return -1;
    }

    if (json_object_set_new(n, "path", json_string(path)) != 0
        || json_object_set_new(n, "search",
                               ngx_http_clockchain_scene_search(n)) != 0)
    {
        snprintf(err, errlen, "out of memory");
        json_decref(n);
        json_decref(e);
        return -1;
    }

    *node = n;
    *edges = e;

    return 1;
}


/*
 * The path of an id or an edge's target, canonical in out (a NUL-
 * terminated string), and its parts in sp: 0, or -1 for a path that
 * cannot be made canonical.
 */

static int
ngx_http_clockchain_seed_canonical(json_t *v, char *out,
    ngx_http_clockchain_seed_path_t *sp)
{
    char        *p, *slash;
    size_t       len, n, i;
    const char  *s;

    s = json_string_value(v);
    len = json_string_length(v);

    if (len == 0 || len >= NGX_HTTP_CLOCKCHAIN_PATH_LEN) {
        return -1;
    }

    len = ngx_http_clockchain_canonical_path(s, len, out);
    if (len == 0 || len >= NGX_HTTP_CLOCKCHAIN_PATH_LEN) {
        return -1;
    }

    out[len] = '\0';

    if (sp == NULL) {
        return 0;
    }

    /* a canonical path: eight segments after the first slash */

    p = out + 1;

    for (i = 0; i < 8; i++) {
        slash = strchr(p, '/');
        n = slash ? (size_t) (slash - p) : strlen(p);
        memcpy(sp->seg[i], p, n);
        sp->seg[i][n] = '\0';
        p += n + 1;
    }

    sp->year = strtoll(sp->seg[0], NULL, 10);

    if (sp->year > NGX_HTTP_CLOCKCHAIN_YEAR_MAX
        || sp->year < -NGX_HTTP_CLOCKCHAIN_YEAR_MAX)
    {
        return -1;
    }

    for (i = 0; ngx_http_clockchain_seed_months[i]; i++) {
        if (strcmp(ngx_http_clockchain_seed_months[i], sp->seg[1]) == 0) {
            break;
        }
    }

    sp->month = (int) i + 1;
    sp->day = atoi(sp->seg[2]);
    sp->hhmm = atoi(sp->seg[3]);

    return 0;
}


static int
ngx_http_clockchain_seed_columns(json_t *payload, json_t *node,
    ngx_http_clockchain_seed_path_t *sp, char *err, size_t errlen)
{
    size_t       i, k;
    json_t      *v, *item;
    const char  *name, *s;

    for (i = 0; ngx_http_clockchain_seed_columns_list[i].name; i++) {
        name = ngx_http_clockchain_seed_columns_list[i].name;
        v = payload ? json_object_get(payload, name) : NULL;

        if (json_is_null(v)) {
            v = NULL;
        }

        switch (ngx_http_clockchain_seed_columns_list[i].type) {

        case NGX_HTTP_CLOCKCHAIN_SEED_STR:
            if (v == NULL) {
                v = json_string(ngx_http_clockchain_seed_columns_list[i].dflt);
                break;
            }

            if (!json_is_string(v)) {
                snprintf(err, errlen, "\"payload.%s\" must be a string",
                         name);
                return -1;
            }

            if (json_string_length(v)
                > ngx_http_clockchain_seed_columns_list[i].max)
            {
                snprintf(err, errlen, "\"payload.%s\" is longer than %zu "
                         "bytes", name,
                         ngx_http_clockchain_seed_columns_list[i].max);
                return -1;
            }

            s = json_string_value(v);

            if (strcmp(name, "visibility") == 0
                && strcmp(s, "public") != 0 && strcmp(s, "private") != 0)
            {
                snprintf(err, errlen, "\"payload.visibility\" must be "
                         "\"public\" or \"private\"");
                return -1;
            }

            if (strcmp(name, "created_by") == 0) {
                for (k = 0; s[k]; k++) {
                    if (s[k] < 0x21 || s[k] > 0x7e || s[k] == '|') {
                        break;
                    }
                }

                if (k == 0 || s[k]) {
                    snprintf(err, errlen, "\"payload.created_by\" must be "
                             "printable ASCII without spaces or \"|\"");
                    return -1;
                }
            }

            json_incref(v);
            break;

        case NGX_HTTP_CLOCKCHAIN_SEED_INT:
            if (v == NULL) {
                v = json_integer(0);
                break;
            }

            if (!json_is_integer(v) || json_integer_value(v) < 0
                || json_integer_value(v) > 1000)
            {
                snprintf(err, errlen, "\"payload.%s\" must be an integer "
                         "from 0 to 1000", name);
                return -1;
            }

            json_incref(v);
            break;

        default: /* a list of strings */
            if (v == NULL) {
                v = json_array();
                break;
            }

            if (!json_is_array(v)
                || json_array_size(v)
                   > ngx_http_clockchain_seed_columns_list[i].max)
            {
                snprintf(err, errlen, "\"payload.%s\" must be a list of at "
                         "most %zu strings", name,
                         ngx_http_clockchain_seed_columns_list[i].max);
                return -1;
            }

            json_array_foreach(v, k, item) {
                if (!json_is_string(item) || json_string_length(item) == 0
                    || json_string_length(item)
                       > (strcmp(name, "tags") == 0
                          ? NGX_HTTP_CLOCKCHAIN_TAG_LEN
                          : NGX_HTTP_CLOCKCHAIN_FIGURE_LEN))
                {
                    snprintf(err, errlen, "\"payload.%s\" item %zu must be "
                             "a non-empty string of at most %d bytes", name,
                             k, strcmp(name, "tags") == 0
                                ? NGX_HTTP_CLOCKCHAIN_TAG_LEN
                                : NGX_HTTP_CLOCKCHAIN_FIGURE_LEN);
                    return -1;
                }
            }

            json_incref(v);
        }

        if (json_object_set_new(node, name, v) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }

    return ngx_http_clockchain_seed_place(payload, node, sp, err, errlen);
}


/*
 * year, month, month_num, day, time, country, region, city, slug: the
 * path's; given in the payload they must agree with it (a day 9 is the
 * path's "09"), and sort_key as the runner's node has it.
 */

static int
ngx_http_clockchain_seed_place(json_t *payload, json_t *node,
    ngx_http_clockchain_seed_path_t *sp, char *err, size_t errlen)
{
    size_t       i;
    json_t      *v;
    json_int_t   want[4];

    static const char *const  ints[] = { "year", "month_num", "day", NULL };
    static const struct {
        const char  *name;
        size_t       seg;
    } strs[] = {
        { "month", 1 }, { "time", 3 }, { "country", 4 }, { "region", 5 },
        { "city", 6 }, { "slug", 7 }, { NULL, 0 }
    };

    want[0] = sp->year;
    want[1] = sp->month;
    want[2] = sp->day;

    for (i = 0; ints[i]; i++) {
        v = payload ? json_object_get(payload, ints[i]) : NULL;

        if (v != NULL && !json_is_null(v)
            && (!json_is_integer(v) || json_integer_value(v) != want[i]))
        {
            snprintf(err, errlen, "\"payload.%s\" must be the integer %lld, "
                     "as in the id", ints[i], (long long) want[i]);
            return -1;
        }

        if (json_object_set_new(node, ints[i], json_integer(want[i])) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }

    for (i = 0; strs[i].name; i++) {
        v = payload ? json_object_get(payload, strs[i].name) : NULL;

        if (v != NULL && !json_is_null(v)
            && (!json_is_string(v)
                || strcmp(json_string_value(v), sp->seg[strs[i].seg]) != 0))
        {
            snprintf(err, errlen, "\"payload.%s\" must be the string "
                     "\"%.100s\", as in the id", strs[i].name,
                     sp->seg[strs[i].seg]);
            return -1;
        }

        if (json_object_set_new(node, strs[i].name,
                                json_string(sp->seg[strs[i].seg])) != 0)
        {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }

    if (json_object_set_new(node, "sort_key",
                            json_integer(sp->year * 100000000
                                         + (json_int_t) sp->month * 1000000
                                         + (json_int_t) sp->day * 10000
                                         + sp->hhmm)) != 0)
    {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    return 0;
}


/* the record's own fields: provenance, timestamp, tdf_hash */

static int
ngx_http_clockchain_seed_provenance(json_t *rec, json_t *node, int restore,
    char *err, size_t errlen)
{
    char         ts[NGX_HTTP_CLOCKCHAIN_TIME_LEN + 1];
    size_t       i;
    json_t      *prov, *v;
    const char  *s;

    static const struct {
        const char  *from;
        const char  *to;
    } map[] = {
        { "flash_id", "flash_timepoint_id" },
        { "run_id", "source_run_id" },
        { "confidence", "confidence" },
        { NULL, NULL }
    };

    static const char *const  models[] = {
        "text_model", "image_model", "model_provider",
        "model_permissiveness", "schema_version", "generation_id",
        "grounding_model", "grounding_status", "grounded_at", NULL
    };

    prov = json_object_get(rec, "provenance");

    if (prov != NULL && !json_is_null(prov) && !json_is_object(prov)) {
        snprintf(err, errlen, "\"provenance\" must be an object");
        return -1;
    }

    for (i = 0; map[i].from; i++) {
        v = json_is_object(prov) ? json_object_get(prov, map[i].from) : NULL;

        if (v == NULL || json_is_null(v)) {
            continue;
        }

        if (i < 2 ? !json_is_string(v) || json_string_length(v) > 200
                  : !json_is_number(v))
        {
            snprintf(err, errlen, "\"provenance.%s\" must be %s or null",
                     map[i].from, i < 2 ? "a string" : "a number");
            return -1;
        }

        if (json_object_set(node, map[i].to, v) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }

    /*
     * ?format=tdf and the export move the model columns to provenance
     * (the original's export_node_as_tdf()); tdf_to_node_attrs() reads
     * them back from there, so does a restore.
     */

    for (i = 0; restore && models[i]; i++) {
        v = json_is_object(prov) ? json_object_get(prov, models[i]) : NULL;

        if (v == NULL || json_is_null(v)) {
            continue;
        }

        if (!json_is_string(v) || json_string_length(v) > 200) {
            snprintf(err, errlen, "\"provenance.%s\" must be a string of "
                     "at most 200 bytes or null", models[i]);
            return -1;
        }

        if (json_object_set(node, models[i], v) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }

    v = json_object_get(rec, "timestamp");

    if (v == NULL || json_is_null(v)) {
        /* the original's column default: now() */
        ngx_http_clockchain_iso_now(ts);

    } else if (!json_is_string(v) || ngx_http_clockchain_seed_time(v, ts)) {
        snprintf(err, errlen, "\"timestamp\" must be a UTC time, "
                 "2026-02-17T00:00:00Z");
        return -1;
    }

    ts[NGX_HTTP_CLOCKCHAIN_TIME_LEN] = '\0';

    if (json_object_set_new(node, "created_at", json_string(ts)) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    v = json_object_get(rec, "tdf_hash");

    if (v == NULL || json_is_null(v) || restore) {
        /*
         * the reader computes it from the node, as the original would; a
         * restore's is the record's, not the node's (clockchain_restore
         * carries the node's)
         */
        return 0;
    }

    s = json_is_string(v) ? json_string_value(v) : "";

    for (i = 0; s[i]; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            break;
        }
    }

    if (i != 64 || s[i]) {
        snprintf(err, errlen, "\"tdf_hash\" must be 64 lowercase hex digits");
        return -1;
    }

    if (json_object_set(node, "tdf_hash", v) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    return 0;
}


/*
 * "YYYY-MM-DDTHH:MM:SS[.f...](Z|+00:00)" as the module writes times,
 * "YYYY-MM-DDTHH:MM:SS.ffffffZ": 0, or -1 for another form.
 */

static int
ngx_http_clockchain_seed_time(json_t *v, char *out)
{
    size_t       len, i, f;
    const char  *s;

    s = json_string_value(v);
    len = json_string_length(v);

    if (len < 20) {
        return -1;
    }

    memcpy(out, s, 19);
    memcpy(out + 19, ".000000Z", 8);

    i = 19;

    if (s[i] == '.') {
        for (i++, f = 20; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            if (f < 26) {
                out[f++] = s[i];
            }
        }

        if (i == 20) {
            return -1;
        }
    }

    if (!((len - i == 1 && s[i] == 'Z')
          || (len - i == 6 && memcmp(s + i, "+00:00", 6) == 0)))
    {
        return -1;
    }

    return ngx_http_clockchain_iso_parse(out) < 0 ? -1 : 0;
}


/* payload.edges, from the record's canonical path */

static json_t *
ngx_http_clockchain_seed_edges(json_t *payload, const char *source,
    int restore, char *err, size_t errlen)
{
    char     target[NGX_HTTP_CLOCKCHAIN_PATH_LEN + 2];
    size_t   i, t;
    json_t  *list, *out, *e, *v, *edge;

    static const char *const  texts[] = {
        "theme", "description", "schema_version", NULL
    };

    out = json_array();
    if (out == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    list = payload ? json_object_get(payload, "edges") : NULL;

    if (list == NULL || json_is_null(list)) {
        return out;
    }

    if (!json_is_array(list)
        || json_array_size(list) > (restore
                                    ? NGX_HTTP_CLOCKCHAIN_RESTORE_EDGES
                                    : NGX_HTTP_CLOCKCHAIN_SEED_EDGES))
    {
        snprintf(err, errlen, "\"payload.edges\" must be a list of at most "
                 "%d edges", restore ? NGX_HTTP_CLOCKCHAIN_RESTORE_EDGES
                                     : NGX_HTTP_CLOCKCHAIN_SEED_EDGES);
        json_decref(out);
        return NULL;
    }

    json_array_foreach(list, i, e) {

        if (!json_is_object(e)) {
            snprintf(err, errlen, "edge %zu must be an object", i);
            goto failed;
        }

        v = json_object_get(e, "target");

        if (!json_is_string(v)
            || ngx_http_clockchain_seed_canonical(v, target, NULL) != 0)
        {
            snprintf(err, errlen, "edge %zu: \"target\" %s%.100s%s is not a "
                     "moment's path", i, json_is_string(v) ? "\"" : "",
                     json_is_string(v) ? json_string_value(v) : "(missing)",
                     json_is_string(v) ? "\"" : "");
            goto failed;
        }

        v = json_object_get(e, "type");

        if (v == NULL) {
            /* the original's default */
            v = json_string("thematic");

        } else {
            json_incref(v);
        }

        for (t = 0; json_is_string(v) && ngx_http_clockchain_edge_types[t];
             t++)
        {
            if (strcmp(ngx_http_clockchain_edge_types[t],
                       json_string_value(v)) == 0)
            {
                break;
            }
        }

        if (!json_is_string(v) || ngx_http_clockchain_edge_types[t] == NULL) {
            snprintf(err, errlen, "edge %zu: \"type\" must be one of the "
                     "twelve edge types (causes, caused_by, influences, "
                     "contemporaneous, same_era, same_location, "
                     "same_conflict, same_figure, thematic, precedes, "
                     "follows, challenges)", i);
            json_decref(v);
            goto failed;
        }

        if (restore) {
            /* the edge as exported: its own fields, no defaults added */
            edge = json_pack("{s:s,s:s,s:o}", "source", source,
                             "target", target, "type", v);
            if (edge == NULL || json_array_append_new(out, edge) != 0) {
                snprintf(err, errlen, "out of memory");
                goto failed;
            }

            if (ngx_http_clockchain_restore_edge(e, edge, i, err, errlen)
                != 0)
            {
                goto failed;
            }

            continue;
        }

        /* the original's edges table: created_by defaults to "auto" */
        edge = json_pack("{s:s,s:s,s:o,s:s}", "source", source,
                         "target", target, "type", v, "created_by", "auto");
        if (edge == NULL || json_array_append_new(out, edge) != 0) {
            snprintf(err, errlen, "out of memory");
            goto failed;
        }

        v = json_object_get(e, "weight");

        if (v == NULL || json_is_null(v)) {
            v = json_real(1.0);

        } else if (!json_is_number(v) || json_number_value(v) < 0
                   || json_number_value(v) > 1)
        {
            snprintf(err, errlen, "edge %zu: \"weight\" must be a number "
                     "from 0 to 1", i);
            goto failed;

        } else {
            v = json_real(json_number_value(v));
        }

        if (json_object_set_new(edge, "weight", v) != 0) {
            snprintf(err, errlen, "out of memory");
            goto failed;
        }

        for (t = 0; texts[t]; t++) {
            v = json_object_get(e, texts[t]);

            if (v == NULL || json_is_null(v)) {
                v = json_string(t == 2 ? "0.2" : "");

            } else if (!json_is_string(v)
                       || json_string_length(v) > NGX_HTTP_CLOCKCHAIN_TEXT_MAX)
            {
                snprintf(err, errlen, "edge %zu: \"%s\" must be a string of "
                         "at most %d bytes", i, texts[t],
                         NGX_HTTP_CLOCKCHAIN_TEXT_MAX);
                goto failed;

            } else {
                json_incref(v);
            }

            if (json_object_set_new(edge, texts[t], v) != 0) {
                snprintf(err, errlen, "out of memory");
                goto failed;
            }
        }
    }

    return out;

failed:

    json_decref(out);
    return NULL;
}


/*
 * The records of a seeds file, or (restore) of a chunk of an export, as
 * one JSON text {"nodes": [...], "edges": [...]} for seed.lua or
 * restore.lua; NULL with err (and the line at fault) otherwise.  A seeds
 * file is whole, so each edge must end at one of its records (the
 * original's foreign key); an export is restored a chunk at a time, so an
 * edge's target may be in another chunk and is not checked.
 */

static char *
ngx_http_clockchain_seed_records(const char *data, size_t len,
    int restore, size_t *nodes, size_t *edges, size_t *line,
    char *err, size_t errlen)
{
    int           rc;
    char         *text;
    size_t        i, k, n, max;
    json_t       *all, *node, *edge, *e, *ids, *lines, *v;
    const char   *p, *end, *last;

    *nodes = 0;
    *edges = 0;
    *line = 0;

    max = restore ? NGX_HTTP_CLOCKCHAIN_RESTORE_NODES
                  : NGX_HTTP_CLOCKCHAIN_SEED_NODES;

    all = json_pack("{s:[],s:[]}", "nodes", "edges");
    ids = json_object();
    lines = json_array();     /* the line of each edge */

    if (all == NULL || ids == NULL || lines == NULL) {
        snprintf(err, errlen, "out of memory");
        goto failed;
    }

    p = data;
    last = data + len;

    for (n = 1; p < last; n++) {
        end = memchr(p, '\n', last - p);
        if (end == NULL) {
            end = last;
        }

        *line = n;

        rc = ngx_http_clockchain_seed_parse_line(p, end - p, restore, &node,
                                                 &e, err, errlen);
        p = end + 1;

        if (rc == 0) {
            continue;
        }

        if (rc < 0) {
            goto failed;
        }

        v = json_object_get(node, "path");

        if (json_object_get(ids, json_string_value(v))) {
            snprintf(err, errlen, "\"id\" \"%.100s\" is also on line %lld",
                     json_string_value(v),
                     (long long) json_integer_value(
                         json_object_get(ids, json_string_value(v))));
            json_decref(node);
            json_decref(e);
            goto failed;
        }

        if (json_array_size(json_object_get(all, "nodes")) >= max) {
            snprintf(err, errlen, "more than %d records%s", (int) max,
                     restore ? " in one chunk" : "");
            json_decref(node);
            json_decref(e);
            goto failed;
        }

        if (json_object_set_new(ids, json_string_value(v), json_integer(n))
            || json_array_append_new(json_object_get(all, "nodes"), node))
        {
            snprintf(err, errlen, "out of memory");
            json_decref(e);
            goto failed;
        }

        json_array_foreach(e, i, edge) {
            if (json_array_append(json_object_get(all, "edges"), edge)
                || json_array_append_new(lines, json_integer(n)))
            {
                snprintf(err, errlen, "out of memory");
                json_decref(e);
                goto failed;
            }
        }

        json_decref(e);
    }

    json_array_foreach(json_object_get(all, "edges"), k, edge) {
        v = json_object_get(edge, "target");

        if (!restore && json_object_get(ids, json_string_value(v)) == NULL) {
            *line = (size_t) json_integer_value(json_array_get(lines, k));
            snprintf(err, errlen, "edge to \"%.100s\": no record has that id",
                     json_string_value(v));
            goto failed;
        }
    }

    *nodes = json_array_size(json_object_get(all, "nodes"));
    *edges = json_array_size(json_object_get(all, "edges"));

    if (*nodes == 0) {
        *line = 0;
        snprintf(err, errlen, "no records");
        goto failed;
    }

    text = json_dumps(all, JSON_COMPACT);

    json_decref(all);
    json_decref(ids);
    json_decref(lines);

    if (text == NULL) {
        *line = 0;
        snprintf(err, errlen, "out of memory");
    }

    return text;

failed:

    json_decref(all);
    json_decref(ids);
    json_decref(lines);

    return NULL;
}


char *
ngx_http_clockchain_seed_parse(const char *data, size_t len, size_t *nodes,
    size_t *edges, size_t *line, char *err, size_t errlen)
{
    return ngx_http_clockchain_seed_records(data, len, 0, nodes, edges, line,
                                            err, errlen);
}


/*
 * A restore keeps the payload's other keys (era, image_url, status,
 * proposed_by, challenged_by, published_at, ...): the export writes every
 * field a node has, and the original's columns are more than a seed's.
 * A value is stored as the node's hash holds it: a string, a number, or a
 * list of strings (as JSON).
 */

static int
ngx_http_clockchain_restore_extra(json_t *payload, json_t *node, char *err,
    size_t errlen)
{
    size_t       i, k;
    json_t      *v, *item;
    const char  *key;

    static const char *const  skip[] = {
        "edges", "clockchain_restore", "year", "month", "month_num", "day",
        "time", "country", "region", "city", "slug", "path", "id",
        "sort_key", "search", NULL
    };

    if (payload == NULL) {
        return 0;
    }

    json_object_foreach(payload, key, v) {

        for (i = 0; skip[i]; i++) {
            if (strcmp(skip[i], key) == 0) {
                break;
            }
        }

        for (k = 0; skip[i] == NULL
                    && ngx_http_clockchain_seed_columns_list[k].name; k++)
        {
            if (strcmp(ngx_http_clockchain_seed_columns_list[k].name, key)
                == 0)
            {
                break;
            }
        }

        if (skip[i] || ngx_http_clockchain_seed_columns_list[k].name
            || json_is_null(v))
        {
            continue;
        }

        for (i = 0; key[i]; i++) {
            if (!((key[i] >= 'a' && key[i] <= 'z') || key[i] == '_'
                  || (key[i] >= '0' && key[i] <= '9')))
            {
                break;
            }
        }

        if (i == 0 || i > 64 || key[i]) {
            snprintf(err, errlen, "\"payload\": the key \"%.64s\" is not a "
                     "field name (a to z, 0 to 9, _; at most 64)", key);
            return -1;
        }

        if (json_is_array(v)) {
            if (json_array_size(v) > NGX_HTTP_CLOCKCHAIN_RESTORE_EDGES) {
                snprintf(err, errlen, "\"payload.%s\" has more than %d items",
                         key, NGX_HTTP_CLOCKCHAIN_RESTORE_EDGES);
                return -1;
            }

            json_array_foreach(v, k, item) {
                if (!json_is_string(item)
                    || json_string_length(item)
                       > NGX_HTTP_CLOCKCHAIN_TEXT_MAX)
                {
                    snprintf(err, errlen, "\"payload.%s\" item %zu must be a "
                             "string of at most %d bytes", key, k,
                             NGX_HTTP_CLOCKCHAIN_TEXT_MAX);
                    return -1;
                }
            }

        } else if (json_is_string(v)) {
            if (json_string_length(v) > NGX_HTTP_CLOCKCHAIN_RESTORE_TEXT) {
                snprintf(err, errlen, "\"payload.%s\" is longer than %d "
                         "bytes", key, NGX_HTTP_CLOCKCHAIN_RESTORE_TEXT);
                return -1;
            }

        } else if (!json_is_number(v)) {
            snprintf(err, errlen, "\"payload.%s\" must be a string, a number "
                     "or a list of strings", key);
            return -1;
        }

        if (json_object_set(node, key, v) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }

    return 0;
}


/*
 * payload.clockchain_restore: what the node held that its TDF record
 * cannot say (ngx_http_clockchain_export_line()): the node's own
 * tdf_hash, graph_state_hash, updated_at, created_at when the timestamp
 * does not give it back, and "absent", the columns the record shows with
 * their defaults that the node did not hold.
 */

static int
ngx_http_clockchain_restore_kept(json_t *payload, json_t *node, char *err,
    size_t errlen)
{
    size_t       i, k;
    json_t      *kept, *v;
    const char  *name;

    static const char *const  fields[] = {
        "tdf_hash", "graph_state_hash", "updated_at", "created_at", NULL
    };

    /* the path's: the indexes and browse are built from them */
    static const char *const  fixed[] = {
        "year", "month", "month_num", "day", "time", "country", "region",
        "city", "slug", "path", "sort_key", NULL
    };

    kept = payload ? json_object_get(payload, "clockchain_restore") : NULL;

    if (kept == NULL || json_is_null(kept)) {
        return 0;
    }

    if (!json_is_object(kept)) {
        snprintf(err, errlen, "\"payload.clockchain_restore\" must be an "
                 "object");
        return -1;
    }

    for (i = 0; fields[i]; i++) {
        v = json_object_get(kept, fields[i]);

        if (v == NULL) {
            continue;
        }

        if (!json_is_string(v) || json_string_length(v) > 200) {
            snprintf(err, errlen, "\"payload.clockchain_restore.%s\" must be "
                     "a string of at most 200 bytes", fields[i]);
            return -1;
        }

        if (json_object_set(node, fields[i], v) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }

    v = json_object_get(kept, "absent");

    if (v == NULL) {
        return 0;
    }

    if (!json_is_array(v) || json_array_size(v) > 100) {
        snprintf(err, errlen, "\"payload.clockchain_restore.absent\" must be "
                 "a list of at most 100 field names");
        return -1;
    }

    for (i = 0; i < json_array_size(v); i++) {
        name = json_string_value(json_array_get(v, i));

        if (name == NULL) {
            snprintf(err, errlen, "\"payload.clockchain_restore.absent\" item "
                     "%zu must be a string", i);
            return -1;
        }

        for (k = 0; fixed[k]; k++) {
            if (strcmp(fixed[k], name) == 0) {
                break;
            }
        }

        if (fixed[k] == NULL) {
            json_object_del(node, name);
        }
    }

    return 0;
}


/* an exported edge's own fields: weight, theme, description, ... */

static int
ngx_http_clockchain_restore_edge(json_t *e, json_t *edge, size_t i,
    char *err, size_t errlen)
{
    json_t      *v;
    const char  *key;

    json_object_foreach(e, key, v) {

        if (strcmp(key, "target") == 0 || strcmp(key, "type") == 0
            || strcmp(key, "source") == 0)
        {
            continue;
        }

        if (strcmp(key, "weight") == 0) {
            if (!json_is_number(v) || json_number_value(v) < 0
                || json_number_value(v) > 1)
            {
                snprintf(err, errlen, "edge %zu: \"weight\" must be a number "
                         "from 0 to 1", i);
                return -1;
            }

            v = json_real(json_number_value(v));

        } else if (json_is_string(v)
                   && json_string_length(v) <= NGX_HTTP_CLOCKCHAIN_TEXT_MAX
                   && strlen(key) <= 64)
        {
            json_incref(v);

        } else {
            snprintf(err, errlen, "edge %zu: \"%.64s\" must be a string of "
                     "at most %d bytes", i, key,
                     NGX_HTTP_CLOCKCHAIN_TEXT_MAX);
            return -1;
        }

        if (json_object_set_new(edge, key, v) != 0) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }

    return 0;
}


char *
ngx_http_clockchain_restore_parse(const char *data, size_t len,
    size_t *nodes, size_t *edges, size_t *line, char *err, size_t errlen)
{
    return ngx_http_clockchain_seed_records(data, len, 1, nodes, edges, line,
                                            err, errlen);
}


/*
 * A proposal: the original's ProposeRequest (the node's columns at the
 * top level, "id" its path, "edges" each with a "source"), turned into a
 * TDF record and read as a seed line is, so that a proposed node is
 * checked and built as a seeded one.  The place and time are the path's
 * (the body's display forms, "Japan" for "japan", are not compared);
 * "confidence" and "source_run_id" are the record's provenance; an edge's
 * source, when given, must be the proposed path (the original adds edges
 * between any two moments here; an edge between two others is an ingest).
 * The node is "proposed" by the agent, its edges created by the agent
 * unless they say otherwise.
 */

int
ngx_http_clockchain_seed_propose(json_t *req, const char *agent,
    const char *what, json_t **node, json_t **edges, char *err,
    size_t errlen)
{
    char        *text, id[NGX_HTTP_CLOCKCHAIN_PATH_LEN + 2];
    char         src[NGX_HTTP_CLOCKCHAIN_PATH_LEN + 2];
    size_t       i, k;
    int          rc;
    json_t      *rec, *payload, *prov, *list, *e, *v, *copy, *n, *ed;
    const char  *key;

    static const char *const  dropped[] = {
        "id", "confidence", "source_run_id", "edges", "sources",
        "source_type", "generation_id", "year", "month", "month_num", "day",
        "time", "country", "region", "city", "slug", "created_by",
        "proposed_by", "challenged_by", "status", NULL
    };

    static const struct {
        const char  *name;
        const char  *dflt;
        size_t       max;
    } extra[] = {
        { "source_type", "historical", 100 },
        { "generation_id", "", 200 },
        { NULL, NULL, 0 }
    };

    *node = NULL;
    *edges = NULL;

    if (!json_is_object(req)) {
        snprintf(err, errlen, "%s must be a JSON object", what);
        return -1;
    }

    v = json_object_get(req, "id");

    if (!json_is_string(v)) {
        snprintf(err, errlen, "%s.id: the moment's path, a string", what);
        return -1;
    }

    if (ngx_http_clockchain_seed_canonical(v, id, NULL) != 0) {
        snprintf(err, errlen, "%s.id \"%.100s\" is not a moment's path "
                 "(/year/month/day/HHMM/country/region/city/slug)", what,
                 json_string_value(v));
        return -1;
    }

    payload = json_object();
    prov = json_object();
    rec = json_pack("{s:s,s:o,s:o}", "id", id, "payload", payload,
                    "provenance", prov);
    if (rec == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    json_object_foreach(req, key, v) {
        for (k = 0; dropped[k]; k++) {
            if (strcmp(key, dropped[k]) == 0) {
                break;
            }
        }

        if (dropped[k] == NULL && json_object_set(payload, key, v) != 0) {
            goto nomem;
        }
    }

    /* ProposeRequest's default, where a seed's is "private" */
    if (json_object_get(payload, "visibility") == NULL
        && json_object_set_new(payload, "visibility", json_string("public")))
    {
        goto nomem;
    }

    if (json_object_get(req, "confidence")
        && json_object_set(prov, "confidence",
                           json_object_get(req, "confidence")))
    {
        goto nomem;
    }

    if (json_object_get(req, "source_run_id")
        && json_object_set(prov, "run_id",
                           json_object_get(req, "source_run_id")))
    {
        goto nomem;
    }

    list = json_object_get(req, "edges");

    if (list != NULL && !json_is_null(list)) {
        if (!json_is_array(list)) {
            snprintf(err, errlen, "%s.edges must be a list", what);
            json_decref(rec);
            return -1;
        }

        copy = json_array();
        if (copy == NULL || json_object_set_new(payload, "edges", copy)) {
            goto nomem;
        }

        json_array_foreach(list, i, e) {
            v = json_is_object(e) ? json_object_get(e, "source") : NULL;

            if (v != NULL && !json_is_null(v)
                && (!json_is_string(v)
                    || ngx_http_clockchain_seed_canonical(v, src, NULL) != 0
                    || strcmp(src, id) != 0))
            {
                snprintf(err, errlen, "%s.edges[%zu].source must be the "
                         "proposed moment, \"%.100s\"", what, i, id);
                json_decref(rec);
                return -1;
            }

            if (json_array_append(copy, e) != 0) {
                goto nomem;
            }
        }
    }

    text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);

    if (text == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    rc = ngx_http_clockchain_seed_line(text, strlen(text), &n, &ed, err,
                                       errlen);
    free(text);

    if (rc != 1) {
        if (rc == 0) {
            snprintf(err, errlen, "%s is empty", what);

        } else if (strncmp(err, "\"payload.", 9) == 0) {
            /* the body's fields are at its top level, not in a payload */
            text = strdup(err + 9);
            if (text) {
                snprintf(err, errlen, "\"%s.%s", what, text);
                free(text);
            }
        }

        return -1;
    }

    for (k = 0; extra[k].name; k++) {
        v = json_object_get(req, extra[k].name);

        if (v == NULL || json_is_null(v)) {
            v = json_string(extra[k].dflt);

        } else if (!json_is_string(v)
                   || json_string_length(v) > extra[k].max)
        {
            snprintf(err, errlen, "%s.%s must be a string of at most %zu "
                     "bytes", what, extra[k].name, extra[k].max);
            goto failed;

        } else {
            json_incref(v);
        }

        if (json_object_set_new(n, extra[k].name, v) != 0) {
            goto failed_nomem;
        }
    }

    if (json_object_set_new(n, "status", json_string("proposed"))
        || json_object_set_new(n, "proposed_by", json_string(agent))
        || json_object_set_new(n, "challenged_by", json_array()))
    {
        goto failed_nomem;
    }

    /* an edge is its writer's, as the original's created_by or agent */

    list = json_object_get(req, "edges");

    json_array_foreach(ed, i, e) {
        v = json_array_get(list, i);
        v = json_is_object(v) ? json_object_get(v, "created_by") : NULL;

        if (v != NULL && !json_is_null(v)
            && (!json_is_string(v) || json_string_length(v) == 0
                || json_string_length(v) > 128))
        {
            snprintf(err, errlen, "%s.edges[%zu].created_by must be a "
                     "string of 1 to 128 bytes", what, i);
            goto failed;
        }

        if (json_object_set_new(e, "created_by",
                                v && !json_is_null(v) ? json_copy(v)
                                : json_string(agent)))
        {
            goto failed_nomem;
        }
    }

    *node = n;
    *edges = ed;

    return 1;

nomem:

    snprintf(err, errlen, "out of memory");
    json_decref(rec);
    return -1;

failed_nomem:

    snprintf(err, errlen, "out of memory");

failed:

    json_decref(n);
    json_decref(ed);
    return -1;
}

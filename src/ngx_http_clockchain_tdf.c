
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * The node of GET /api/moments/{path} as the original service returns it,
 * and its TDF record (?format=tdf).  The original keeps a node in a table
 * whose every column it returns; a node here is a Redis hash of what the
 * runner wrote, so the columns it lacks are added with the defaults the
 * original gives a node made by a generate job.
 *
 * Two hashes are the original's exactly, so they are computed as Python
 * computes them: the node's tdf_hash (app/core/tdf.py: SHA-256 of
 * json.dumps of ten fields, lowercased and stripped, sorted, compact) and
 * the record's tdf_hash (timepoint_tdf TDFRecord.compute_hash: SHA-256 of
 * json.dumps(payload, sort_keys=True), default separators).  json.dumps
 * escapes every character outside ASCII ("\u00e9"), so the text hashed is
 * ASCII whatever the node holds.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <utf8proc.h>

#include "ngx_http_clockchain_tdf.h"


typedef struct {
    char      *data;
    size_t     len;
    size_t     size;
    int        failed;
} ngx_http_clockchain_buf_t;


typedef struct {
    uint32_t   state[8];
    uint64_t   bytes;
    uint8_t    block[64];
} ngx_http_clockchain_sha256_t;


static void ngx_http_clockchain_buf_add(ngx_http_clockchain_buf_t *b,
    const char *s, size_t n);
static void ngx_http_clockchain_dump(ngx_http_clockchain_buf_t *b, json_t *v,
    int compact);
static void ngx_http_clockchain_dump_string(ngx_http_clockchain_buf_t *b,
    const char *s, size_t n);
static void ngx_http_clockchain_dump_real(ngx_http_clockchain_buf_t *b,
    double d);
static int ngx_http_clockchain_key_cmp(const void *a, const void *b);
static json_t *ngx_http_clockchain_py_lower_strip(json_t *v);
static int ngx_http_clockchain_py_space(utf8proc_int32_t c);
static void ngx_http_clockchain_sha256_block(
    ngx_http_clockchain_sha256_t *h, const uint8_t *p);


#define NGX_HTTP_CLOCKCHAIN_STR   0
#define NGX_HTTP_CLOCKCHAIN_INT   1
#define NGX_HTTP_CLOCKCHAIN_NULL  2
#define NGX_HTTP_CLOCKCHAIN_LIST  3


/*
 * The original's columns (app/core/db.py, SCHEMA_DDL) with the value a
 * node made by a generate job has when the job gave none: the column's
 * default, or what add_node() passes (schema_version, status).  Its
 * graph_state_hash is a hash of the whole graph's counts when the node
 * was written, which nothing here knows: "" as for a node written before
 * that column existed.
 */

static const struct {
    const char  *name;
    int          type;
    const char  *dflt;
} ngx_http_clockchain_columns[] = {
    { "type",                 NGX_HTTP_CLOCKCHAIN_STR,  "event" },
    { "name",                 NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "year",                 NGX_HTTP_CLOCKCHAIN_NULL, NULL },
    { "month",                NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "month_num",            NGX_HTTP_CLOCKCHAIN_INT,  NULL },
    { "day",                  NGX_HTTP_CLOCKCHAIN_INT,  NULL },
    { "time",                 NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "country",              NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "region",               NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "city",                 NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "slug",                 NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "layer",                NGX_HTTP_CLOCKCHAIN_INT,  NULL },
    { "visibility",           NGX_HTTP_CLOCKCHAIN_STR,  "private" },
    { "created_by",           NGX_HTTP_CLOCKCHAIN_STR,  "system" },
    { "tags",                 NGX_HTTP_CLOCKCHAIN_LIST, NULL },
    { "one_liner",            NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "figures",              NGX_HTTP_CLOCKCHAIN_LIST, NULL },
    { "flash_timepoint_id",   NGX_HTTP_CLOCKCHAIN_NULL, NULL },
    { "flash_slug",           NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "flash_share_url",      NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "era",                  NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "image_url",            NGX_HTTP_CLOCKCHAIN_NULL, NULL },
    { "created_at",           NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "published_at",         NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "source_type",          NGX_HTTP_CLOCKCHAIN_STR,  "historical" },
    { "confidence",           NGX_HTTP_CLOCKCHAIN_NULL, NULL },
    { "source_run_id",        NGX_HTTP_CLOCKCHAIN_NULL, NULL },
    { "schema_version",       NGX_HTTP_CLOCKCHAIN_STR,  "0.2" },
    { "text_model",           NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "image_model",          NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "model_provider",       NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "model_permissiveness", NGX_HTTP_CLOCKCHAIN_STR,  "unknown" },
    { "generation_id",        NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "graph_state_hash",     NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "proposed_by",          NGX_HTTP_CLOCKCHAIN_STR,  "" },
    { "challenged_by",        NGX_HTTP_CLOCKCHAIN_LIST, NULL },
    { "status",               NGX_HTTP_CLOCKCHAIN_STR,  "proposed" },
    { NULL, 0, NULL }
};


static const char *const  ngx_http_clockchain_month_names[] = {
    "january", "february", "march", "april", "may", "june", "july",
    "august", "september", "october", "november", "december"
};


char *
ngx_http_clockchain_py_dumps(json_t *v, int compact, size_t *len)
{
    ngx_http_clockchain_buf_t  b;

    memset(&b, 0, sizeof(b));

    ngx_http_clockchain_dump(&b, v, compact);
    ngx_http_clockchain_buf_add(&b, "", 1);

    if (b.failed) {
        free(b.data);
        return NULL;
    }

    *len = b.len - 1;

    return b.data;
}


static void
ngx_http_clockchain_buf_add(ngx_http_clockchain_buf_t *b, const char *s,
    size_t n)
{
    char    *p;
    size_t   size;

    if (b->failed) {
        return;
    }

    if (b->len + n > b->size) {
        size = b->size ? b->size : 256;

        while (size < b->len + n) {
            size *= 2;
        }

        p = realloc(b->data, size);
        if (p == NULL) {
            b->failed = 1;
            return;
        }

        b->data = p;
        b->size = size;
    }

    memcpy(b->data + b->len, s, n);
    b->len += n;
}


static void
ngx_http_clockchain_dump(ngx_http_clockchain_buf_t *b, json_t *v,
    int compact)
{
    char         num[32];
    size_t       i, n;
    json_t      *value;
    const char  *key, **keys;

    switch (json_typeof(v)) {

    case JSON_OBJECT:
        n = json_object_size(v);

        keys = malloc((n ? n : 1) * sizeof(const char *));
        if (keys == NULL) {
            b->failed = 1;
            return;
        }

        i = 0;
        json_object_foreach(v, key, value) {
            keys[i++] = key;
        }

        /* Python sorts by code point: UTF-8 sorts the same bytewise */
        qsort(keys, n, sizeof(const char *), ngx_http_clockchain_key_cmp);

        ngx_http_clockchain_buf_add(b, "{", 1);

        for (i = 0; i < n; i++) {
            if (i) {
                ngx_http_clockchain_buf_add(b, compact ? "," : ", ",
                                            compact ? 1 : 2);
            }

            ngx_http_clockchain_dump_string(b, keys[i], strlen(keys[i]));
            ngx_http_clockchain_buf_add(b, compact ? ":" : ": ",
                                        compact ? 1 : 2);
            ngx_http_clockchain_dump(b, json_object_get(v, keys[i]),
                                     compact);
        }

        free(keys);
        ngx_http_clockchain_buf_add(b, "}", 1);
        return;

    case JSON_ARRAY:
        ngx_http_clockchain_buf_add(b, "[", 1);

        for (i = 0; i < json_array_size(v); i++) {
            if (i) {
                ngx_http_clockchain_buf_add(b, compact ? "," : ", ",
                                            compact ? 1 : 2);
            }

            ngx_http_clockchain_dump(b, json_array_get(v, i), compact);
        }

        ngx_http_clockchain_buf_add(b, "]", 1);
        return;

    case JSON_STRING:
        ngx_http_clockchain_dump_string(b, json_string_value(v),
                                        json_string_length(v));
        return;

    case JSON_INTEGER:
        n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(v));
        ngx_http_clockchain_buf_add(b, num, n);
        return;

    case JSON_REAL:
        ngx_http_clockchain_dump_real(b, json_real_value(v));
        return;

    case JSON_TRUE:
        ngx_http_clockchain_buf_add(b, "true", 4);
        return;

    case JSON_FALSE:
        ngx_http_clockchain_buf_add(b, "false", 5);
        return;

    default:
        ngx_http_clockchain_buf_add(b, "null", 4);
        return;
    }
}


static int
ngx_http_clockchain_key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *) a, *(const char *const *) b);
}


/* json.dumps' ensure_ascii: every character outside ' '..'~' escaped */

static void
ngx_http_clockchain_dump_string(ngx_http_clockchain_buf_t *b, const char *s,
    size_t n)
{
    char               esc[16];
    size_t             i;
    utf8proc_ssize_t   k;
    utf8proc_int32_t   c;

    ngx_http_clockchain_buf_add(b, "\"", 1);

    for (i = 0; i < n; /* void */ ) {
        k = utf8proc_iterate((const utf8proc_uint8_t *) s + i, n - i, &c);
        if (k <= 0) {
            /* jansson holds valid UTF-8 only; never, but stay bounded */
            c = 0xfffd;
            k = 1;
        }

        i += k;

        switch (c) {
        case '"':  ngx_http_clockchain_buf_add(b, "\\\"", 2); continue;
        case '\\': ngx_http_clockchain_buf_add(b, "\\\\", 2); continue;
        case '\n': ngx_http_clockchain_buf_add(b, "\\n", 2); continue;
        case '\r': ngx_http_clockchain_buf_add(b, "\\r", 2); continue;
        case '\t': ngx_http_clockchain_buf_add(b, "\\t", 2); continue;
        case '\b': ngx_http_clockchain_buf_add(b, "\\b", 2); continue;
        case '\f': ngx_http_clockchain_buf_add(b, "\\f", 2); continue;
        }

        if (c >= ' ' && c <= '~') {
            esc[0] = (char) c;
            ngx_http_clockchain_buf_add(b, esc, 1);

        } else if (c < 0x10000) {
            snprintf(esc, sizeof(esc), "\\u%04x", (unsigned) c);
            ngx_http_clockchain_buf_add(b, esc, 6);

        } else {
            c -= 0x10000;
            snprintf(esc, sizeof(esc), "\\u%04x\\u%04x",
                     0xd800 | ((unsigned) c >> 10),
                     0xdc00 | ((unsigned) c & 0x3ff));
            ngx_http_clockchain_buf_add(b, esc, 12);
        }
    }

    ngx_http_clockchain_buf_add(b, "\"", 1);
}


/*
 * Python's repr() of a float: the shortest digits that read back as the
 * same double, fixed notation for a decimal point from 1e-4 up to 1e16
 * (with ".0" when the number is whole), else "1.5e-05", "1e+16".
 */

static void
ngx_http_clockchain_dump_real(ngx_http_clockchain_buf_t *b, double d)
{
    int     p, exp, point, i, nd;
    char    sci[40], digits[24], out[64], *q;

    if (d != d || d - d != 0) {
        /* jansson holds no NaN or infinity; Python would write these */
        ngx_http_clockchain_buf_add(b, d != d ? "NaN"
                                    : d > 0 ? "Infinity" : "-Infinity",
                                    d != d ? 3 : d > 0 ? 8 : 9);
        return;
    }

    for (p = 1; p <= 17; p++) {
        snprintf(sci, sizeof(sci), "%.*e", p - 1, d);
        if (strtod(sci, NULL) == d) {
            break;
        }
    }

    q = sci;
    i = 0;
    nd = 0;

    if (*q == '-') {
        out[i++] = '-';
        q++;
    }

    for ( /* void */ ; *q != 'e'; q++) {
        if (*q != '.') {
            digits[nd++] = *q;
        }
    }

    while (nd > 1 && digits[nd - 1] == '0') {
        nd--;
    }

    exp = atoi(q + 1);
    point = exp + 1;    /* digits before the decimal point */

    if (d == 0) {
        point = 1;
    }

    if (point > -4 && point <= 16) {
        if (point <= 0) {
            out[i++] = '0';
            out[i++] = '.';

            for (p = point; p < 0; p++) {
                out[i++] = '0';
            }

            memcpy(out + i, digits, nd);
            i += nd;

        } else {
            for (p = 0; p < point; p++) {
                out[i++] = p < nd ? digits[p] : '0';
            }

            out[i++] = '.';

            if (nd > point) {
                memcpy(out + i, digits + point, nd - point);
                i += nd - point;

            } else {
                out[i++] = '0';
            }
        }

    } else {
        out[i++] = digits[0];

        if (nd > 1) {
            out[i++] = '.';
            memcpy(out + i, digits + 1, nd - 1);
            i += nd - 1;
        }

        i += snprintf(out + i, sizeof(out) - i, "e%c%02d",
                      exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }

    ngx_http_clockchain_buf_add(b, out, i);
}


int
ngx_http_clockchain_node_hash(json_t *node, char *hex)
{
    int      rc;
    char    *text;
    size_t   i, len;
    json_t  *obj, *v;

    static const char *const  fields[] = {
        "year", "month", "day", "time", "country", "region", "city",
        "slug", "name", "one_liner", NULL
    };

    obj = json_object();
    if (obj == NULL) {
        return -1;
    }

    rc = 0;

    for (i = 0; fields[i]; i++) {
        v = ngx_http_clockchain_py_lower_strip(json_object_get(node,
                                                                fields[i]));
        if (v == NULL || json_object_set_new(obj, fields[i], v) != 0) {
            rc = -1;
            break;
        }
    }

    if (rc != 0) {
        json_decref(obj);
        return -1;
    }

    text = ngx_http_clockchain_py_dumps(obj, 1, &len);
    json_decref(obj);

    if (text == NULL) {
        return -1;
    }

    ngx_http_clockchain_sha256_hex(text, len, hex);
    free(text);

    return 0;
}


/*
 * str(v or "").lower().strip(): a falsy value is "", a number its
 * digits; lower() as Unicode's simple lowercase mapping plus the one
 * unconditional full mapping (U+0130), strip() Python's whitespace.
 */

static json_t *
ngx_http_clockchain_py_lower_strip(json_t *v)
{
    char               num[64];
    const char        *s;
    size_t             n, i, start, end;
    json_t            *out;
    uint8_t           *buf;
    utf8proc_ssize_t   k;
    utf8proc_int32_t   c;
    size_t             len;
    uint8_t            enc[4];

    ngx_http_clockchain_buf_t  b, r;

    s = "";
    n = 0;
    memset(&r, 0, sizeof(r));

    if (json_is_string(v)) {
        s = json_string_value(v);
        n = json_string_length(v);

    } else if (json_is_integer(v) && json_integer_value(v) != 0) {
        n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                     json_integer_value(v));
        s = num;

    } else if (json_is_real(v) && json_real_value(v) != 0) {
        ngx_http_clockchain_dump_real(&r, json_real_value(v));
        if (r.failed) {
            free(r.data);
            return NULL;
        }

        s = r.data;
        n = r.len;

    } else if (json_is_true(v)) {
        s = "true";      /* "True".lower() */
        n = 4;
    }

    memset(&b, 0, sizeof(b));

    start = 0;
    end = 0;

    for (i = 0; i < n; /* void */ ) {
        k = utf8proc_iterate((const utf8proc_uint8_t *) s + i, n - i, &c);
        if (k <= 0) {
            c = 0xfffd;
            k = 1;
        }

        i += k;

        if (c == 0x130) {
            ngx_http_clockchain_buf_add(&b, "i\xcc\x87", 3);

        } else {
            c = utf8proc_tolower(c);
            len = utf8proc_encode_char(c, enc);
            ngx_http_clockchain_buf_add(&b, (char *) enc, len);

            if (ngx_http_clockchain_py_space(c)) {
                if (start == b.len - len) {
                    start = b.len;
                }

                continue;
            }
        }

        end = b.len;
    }

    free(r.data);

    if (b.failed) {
        free(b.data);
        return NULL;
    }

    buf = (uint8_t *) b.data;

    out = json_stringn(end > start ? (char *) buf + start : "",
                       end > start ? end - start : 0);
    free(b.data);

    return out;
}


static int
ngx_http_clockchain_py_space(utf8proc_int32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20)
           || c == 0x85 || c == 0xa0 || c == 0x1680
           || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029
           || c == 0x202f || c == 0x205f || c == 0x3000;
}


int
ngx_http_clockchain_node_columns(json_t *node)
{
    char     hex[NGX_HTTP_CLOCKCHAIN_SHA256_HEX + 1];
    size_t   i;
    json_t  *v;

    for (i = 0; ngx_http_clockchain_columns[i].name; i++) {
        if (json_object_get(node, ngx_http_clockchain_columns[i].name)) {
            continue;
        }

        switch (ngx_http_clockchain_columns[i].type) {
        case NGX_HTTP_CLOCKCHAIN_STR:
            v = json_string(ngx_http_clockchain_columns[i].dflt);
            break;
        case NGX_HTTP_CLOCKCHAIN_INT:
            v = json_integer(0);
            break;
        case NGX_HTTP_CLOCKCHAIN_LIST:
            v = json_array();
            break;
        default:
            v = json_null();
        }

        if (json_object_set_new(node, ngx_http_clockchain_columns[i].name, v)
            != 0)
        {
            return -1;
        }
    }

    if (json_object_get(node, "tdf_hash") == NULL) {
        if (ngx_http_clockchain_node_hash(node, hex) != 0
            || json_object_set_new(node, "tdf_hash", json_string(hex)) != 0)
        {
            return -1;
        }
    }

    return 0;
}


/*
 * The original shows month as its number (_normalize_node: month_num, or
 * the name's number); the name stays readable as month_name.
 */

int
ngx_http_clockchain_node_month(json_t *node)
{
    size_t       i;
    json_int_t   num;
    json_t      *month;
    const char  *name;

    num = json_integer_value(json_object_get(node, "month_num"));
    month = json_object_get(node, "month");
    name = "";

    if (json_is_integer(month) && num == 0) {
        num = json_integer_value(month);
    }

    for (i = 0; i < 12; i++) {
        if (json_is_string(month)
            && strcasecmp(json_string_value(month),
                          ngx_http_clockchain_month_names[i]) == 0)
        {
            if (num == 0) {
                num = i + 1;
            }
        }
    }

    if (num >= 1 && num <= 12) {
        name = ngx_http_clockchain_month_names[num - 1];

    } else {
        num = 0;
    }

    if (json_object_set_new(node, "month", json_integer(num)) != 0
        || json_object_set_new(node, "month_name", json_string(name)) != 0)
    {
        return -1;
    }

    return 0;
}


/*
 * timepoint_tdf from_clockchain() and the original's export_node_as_tdf():
 * the payload is the node without its provenance and internal fields,
 * source_run_id moves to provenance.run_id, tdf_hash leaves the payload,
 * and the record's hash is of the payload alone.
 */

json_t *
ngx_http_clockchain_tdf_record(json_t *node)
{
    char        hex[NGX_HTTP_CLOCKCHAIN_SHA256_HEX + 1], ts[32], *text;
    size_t      i, len;
    json_t     *payload, *prov, *rec, *v, *ids;
    time_t      now;
    struct tm   tm;
    const char *s;

    static const char *const  internal[] = {
        "path", "id", "created_at", "updated_at", "flash_timepoint_id",
        "confidence", "text_model", "image_model", "model_provider",
        "model_permissiveness", "schema_version", "generation_id",
        "graph_state_hash", "grounding_model", "grounding_status",
        "grounded_at", "tdf_hash", NULL
    };

    static const char *const  copied[] = {
        "text_model", "image_model", "model_provider",
        "model_permissiveness", "schema_version", "generation_id",
        "grounding_model", "grounding_status", NULL
    };

    payload = json_deep_copy(node);
    if (payload == NULL) {
        return NULL;
    }

    for (i = 0; internal[i]; i++) {
        json_object_del(payload, internal[i]);
    }

    prov = json_pack("{s:s,s:n,s:O?,s:O?}",
                     "generator", "timepoint-clockchain",
                     "run_id",
                     "confidence", json_object_get(node, "confidence"),
                     "flash_id", json_object_get(node, "flash_timepoint_id"));
    if (prov == NULL) {
        json_decref(payload);
        return NULL;
    }

    for (i = 0; copied[i]; i++) {
        v = json_object_get(node, copied[i]);

        if (v == NULL && strcmp(copied[i], "schema_version") == 0) {
            /* TDFProvenance's own default */
            json_object_set_new(prov, copied[i], json_string("0.1"));
            continue;
        }

        json_object_set(prov, copied[i], v ? v : json_null());
    }

    /* the grounding time is a timestamp: an empty one is none */
    v = json_object_get(node, "grounded_at");
    json_object_set(prov, "grounded_at",
                    json_is_string(v) && json_string_length(v)
                    ? v : json_null());

    v = json_object_get(payload, "source_run_id");
    if (v) {
        if ((json_is_string(v) && json_string_length(v))
            || json_is_integer(v) || json_is_real(v) || json_is_true(v))
        {
            json_object_set(prov, "run_id", v);
        }

        json_object_del(payload, "source_run_id");
    }

    text = ngx_http_clockchain_py_dumps(payload, 0, &len);
    if (text == NULL) {
        json_decref(payload);
        json_decref(prov);
        return NULL;
    }

    ngx_http_clockchain_sha256_hex(text, len, hex);
    free(text);

    /*
     * The timestamp is created_at as pydantic writes a UTC datetime: no
     * fraction when it is zero; a node without one is stamped now, as
     * from_clockchain() does.
     */

    v = json_object_get(node, "created_at");
    s = json_is_string(v) ? json_string_value(v) : "";
    len = strlen(s);

    if (len == 27 && s[19] == '.' && s[26] == 'Z'
        && memcmp(s + 20, "000000", 6) == 0)
    {
        memcpy(ts, s, 19);
        memcpy(ts + 19, "Z", 2);
        s = ts;

    } else if (len == 0 || len >= 64) {
        now = time(NULL);
        gmtime_r(&now, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        s = ts;
    }

    ids = json_object_get(payload, "entity_ids");
    ids = (json_is_array(ids) && json_array_size(ids)) ? json_incref(ids)
                                                        : json_array();

    rec = json_pack("{s:O,s:s,s:s,s:s,s:o,s:O,s:o,s:s}",
                    "id", json_object_get(node, "path")
                          ? json_object_get(node, "path") : json_null(),
                    "version", "1.0.0",
                    "source", "clockchain",
                    "timestamp", s,
                    "provenance", prov,
                    "payload", payload,
                    "entity_ids", ids,
                    "tdf_hash", hex);

    json_decref(payload);

    return rec;
}


/* SHA-256 (FIPS 180-4) */

static const uint32_t  ngx_http_clockchain_sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};


#define ngx_http_clockchain_ror(x, n)  (((x) >> (n)) | ((x) << (32 - (n))))


static void
ngx_http_clockchain_sha256_block(ngx_http_clockchain_sha256_t *h,
    const uint8_t *p)
{
    int        i;
    uint32_t   w[64], a, b, c, d, e, f, g, k, t1, t2;

    for (i = 0; i < 16; i++) {
        w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16
               | (uint32_t) p[4 * i + 2] << 8 | p[4 * i + 3];
    }

    for (i = 16; i < 64; i++) {
        t1 = ngx_http_clockchain_ror(w[i - 2], 17)
             ^ ngx_http_clockchain_ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        t2 = ngx_http_clockchain_ror(w[i - 15], 7)
             ^ ngx_http_clockchain_ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        w[i] = t1 + w[i - 7] + t2 + w[i - 16];
    }

    a = h->state[0]; b = h->state[1]; c = h->state[2]; d = h->state[3];
    e = h->state[4]; f = h->state[5]; g = h->state[6]; k = h->state[7];

    for (i = 0; i < 64; i++) {
        t1 = k + (ngx_http_clockchain_ror(e, 6) ^ ngx_http_clockchain_ror(e, 11)
                  ^ ngx_http_clockchain_ror(e, 25))
             + ((e & f) ^ (~e & g)) + ngx_http_clockchain_sha256_k[i] + w[i];
        t2 = (ngx_http_clockchain_ror(a, 2) ^ ngx_http_clockchain_ror(a, 13)
              ^ ngx_http_clockchain_ror(a, 22))
             + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }

    h->state[0] += a; h->state[1] += b; h->state[2] += c; h->state[3] += d;
    h->state[4] += e; h->state[5] += f; h->state[6] += g; h->state[7] += k;
}


void
ngx_http_clockchain_sha256_hex(const void *data, size_t len, char *hex)
{
    int                           i;
    size_t                        n;
    uint8_t                       pad[72];
    const uint8_t                *p;
    ngx_http_clockchain_sha256_t  h;

    static const uint32_t  init[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
    };

    memcpy(h.state, init, sizeof(init));
    h.bytes = len;
    p = data;

    for ( /* void */ ; len >= 64; len -= 64, p += 64) {
        ngx_http_clockchain_sha256_block(&h, p);
    }

    /* the tail, 0x80, zeros, and the length in bits: one or two blocks */

    memset(h.block, 0, sizeof(h.block));
    memcpy(h.block, p, len);
    h.block[len] = 0x80;

    if (len >= 56) {
        ngx_http_clockchain_sha256_block(&h, h.block);
        memset(h.block, 0, sizeof(h.block));
    }

    for (i = 0; i < 8; i++) {
        pad[i] = (uint8_t) ((h.bytes * 8) >> (56 - 8 * i));
    }

    memcpy(h.block + 56, pad, 8);
    ngx_http_clockchain_sha256_block(&h, h.block);

    for (i = 0, n = 0; i < 8; i++, n += 8) {
        snprintf(hex + n, 9, "%08x", (unsigned) h.state[i]);
    }
}


static int
ngx_http_clockchain_str_cmp(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t **) a),
                  json_string_value(*(json_t **) b));
}


static int
ngx_http_clockchain_edge_cmp(const void *a, const void *b)
{
    json_t  *x, *y;
    int      rc;

    x = *(json_t **) a;
    y = *(json_t **) b;

    rc = strcmp(json_string_value(json_object_get(x, "type")),
                json_string_value(json_object_get(y, "type")));

    return rc ? rc : strcmp(json_string_value(json_object_get(x, "target")),
                            json_string_value(json_object_get(y, "target")));
}


/*
 * A line of a whole-graph export: the node's TDF record as ?format=tdf
 * writes it, its outgoing edges in payload.edges as a seeds file has them,
 * and payload.clockchain_restore for what the record cannot say (the
 * restore, ngx_http_clockchain_seed.c, reads it back): the node's own
 * tdf_hash, graph_state_hash and updated_at, a created_at the timestamp
 * does not give back, and "absent", the columns shown with defaults the
 * node does not hold.  Keys sorted and the edges by type, then target,
 * so that one graph always exports the same bytes.
 */

char *
ngx_http_clockchain_export_line(json_t *node, const char *path,
    json_t *edges, size_t *len)
{
    char         hex[NGX_HTTP_CLOCKCHAIN_SHA256_HEX + 1], *text;
    size_t       i, n;
    json_t      *copy, *rec, *payload, *kept, *absent, *list, *e, *v;
    json_t     **sorted;
    const char  *key, *s;

    static const char *const  own[] = {
        "tdf_hash", "graph_state_hash", "updated_at", NULL
    };

    copy = json_deep_copy(node);
    kept = json_object();
    absent = json_array();
    list = json_array();
    sorted = NULL;
    rec = NULL;
    text = NULL;

    if (copy == NULL || kept == NULL || absent == NULL || list == NULL) {
        goto done;
    }

    if (json_object_get(copy, "path") == NULL
        && json_object_set_new(copy, "path", json_string(path)) != 0)
    {
        goto done;
    }

    if (ngx_http_clockchain_node_columns(copy) != 0) {
        goto done;
    }

    json_object_foreach(copy, key, v) {
        if (json_object_get(node, key) == NULL
            && strcmp(key, "tdf_hash") != 0 && strcmp(key, "path") != 0)
        {
            if (json_array_append_new(absent, json_string(key)) != 0) {
                goto done;
            }
        }
    }

    rec = ngx_http_clockchain_tdf_record(copy);
    if (rec == NULL) {
        goto done;
    }

    payload = json_object_get(rec, "payload");

    for (i = 0; own[i]; i++) {
        v = json_object_get(node, own[i]);
        if (json_is_string(v) && json_object_set(kept, own[i], v) != 0) {
            goto done;
        }
    }

    /* the timestamp gives back a created_at the module wrote, no other */
    v = json_object_get(node, "created_at");
    s = json_is_string(v) ? json_string_value(v) : "";

    if (json_is_string(v)
        && !(strlen(s) == 27 && s[19] == '.' && s[26] == 'Z'))
    {
        if (json_object_set(kept, "created_at", v) != 0) {
            goto done;
        }
    }

    n = json_array_size(absent);

    if (n) {
        sorted = malloc(n * sizeof(json_t *));
        if (sorted == NULL) {
            goto done;
        }

        for (i = 0; i < n; i++) {
            sorted[i] = json_array_get(absent, i);
        }

        qsort(sorted, n, sizeof(json_t *), ngx_http_clockchain_str_cmp);

        v = json_array();
        for (i = 0; v && i < n; i++) {
            json_array_append(v, sorted[i]);
        }

        free(sorted);
        sorted = NULL;

        if (v == NULL || json_object_set_new(kept, "absent", v) != 0) {
            goto done;
        }
    }

    if (json_object_size(kept)
        && json_object_set(payload, "clockchain_restore", kept) != 0)
    {
        goto done;
    }

    /* the edges this node holds as their source */

    json_array_foreach(edges, i, e) {
        v = json_object_get(e, "source");

        if (!json_is_object(e)
            || (v && (!json_is_string(v)
                      || strcmp(json_string_value(v), path) != 0))
            || !json_is_string(json_object_get(e, "type"))
            || !json_is_string(json_object_get(e, "target")))
        {
            continue;
        }

        v = json_deep_copy(e);
        if (v == NULL) {
            goto done;
        }

        json_object_del(v, "source");

        if (json_is_number(json_object_get(v, "weight"))) {
            json_object_set_new(v, "weight", json_real(json_number_value(
                                    json_object_get(v, "weight"))));
        }

        if (json_array_append_new(list, v) != 0) {
            goto done;
        }
    }

    n = json_array_size(list);

    if (n) {
        sorted = malloc(n * sizeof(json_t *));
        if (sorted == NULL) {
            goto done;
        }

        for (i = 0; i < n; i++) {
            sorted[i] = json_array_get(list, i);
        }

        qsort(sorted, n, sizeof(json_t *), ngx_http_clockchain_edge_cmp);

        v = json_array();
        for (i = 0; v && i < n; i++) {
            json_array_append(v, sorted[i]);
        }

        if (v == NULL || json_object_set_new(payload, "edges", v) != 0) {
            goto done;
        }
    }

    /* the record's hash is of the payload as written */

    text = ngx_http_clockchain_py_dumps(payload, 0, &n);
    if (text == NULL) {
        goto done;
    }

    ngx_http_clockchain_sha256_hex(text, n, hex);
    free(text);

    if (json_object_set_new(rec, "tdf_hash", json_string(hex)) != 0) {
        text = NULL;
        goto done;
    }

    text = ngx_http_clockchain_py_dumps(rec, 1, len);

done:

    free(sorted);
    json_decref(copy);
    json_decref(kept);
    json_decref(absent);
    json_decref(list);
    json_decref(rec);

    return text;
}


/*
 * Copyright (C) The Clockchain authors
 */


#include <stdio.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <sys/random.h>

#include <jansson.h>

#include "ngx_http_clockchain_job.h"


static int ngx_http_clockchain_parse_entry(json_t *obj,
    ngx_http_clockchain_job_req_t *req, ngx_http_clockchain_alloc_pt alloc,
    void *ctx, const char *where, char *err, size_t errlen);
static json_t *ngx_http_clockchain_load(const char *body, size_t len,
    char *err, size_t errlen);
static const char *ngx_http_clockchain_choice(json_t *obj, const char *field,
    const char *const *choices, const char *dflt, const char *where,
    char *err, size_t errlen);


static const char *const  ngx_http_clockchain_presets[] = {
    "hd", "hyper", "balanced", "gemini3", NULL
};

static const char *const  ngx_http_clockchain_visibilities[] = {
    "public", "private", NULL
};

static const char *const  ngx_http_clockchain_status_names[] = {
    "pending", "processing", "completed", "failed"
};


int
ngx_http_clockchain_parse_generate(const char *body, size_t len,
    ngx_http_clockchain_job_req_t **reqs, ngx_http_clockchain_alloc_pt alloc,
    void *ctx, char *err, size_t errlen)
{
    int      rc;
    json_t  *root;

    root = ngx_http_clockchain_load(body, len, err, errlen);
    if (root == NULL) {
        return 0;
    }

    if (!json_is_object(root)) {
        snprintf(err, errlen, "Request body must be a JSON object");
        json_decref(root);
        return 0;
    }

    *reqs = alloc(ctx, sizeof(ngx_http_clockchain_job_req_t));
    if (*reqs == NULL) {
        json_decref(root);
        return -1;
    }

    rc = ngx_http_clockchain_parse_entry(root, *reqs, alloc, ctx, "", err,
                                         errlen);
    json_decref(root);

    return rc;
}


int
ngx_http_clockchain_parse_bulk(const char *body, size_t len, size_t max,
    ngx_http_clockchain_job_req_t **reqs, ngx_http_clockchain_alloc_pt alloc,
    void *ctx, char *err, size_t errlen)
{
    int      rc;
    char     where[32];
    size_t   i, n;
    json_t  *root, *queries, *entry;

    root = ngx_http_clockchain_load(body, len, err, errlen);
    if (root == NULL) {
        return 0;
    }

    rc = 0;

    if (!json_is_object(root)) {
        snprintf(err, errlen, "Request body must be a JSON object");
        goto done;
    }

    queries = json_object_get(root, "queries");

    if (queries == NULL) {
        snprintf(err, errlen, "queries: field required");
        goto done;
    }

    if (!json_is_array(queries)) {
        snprintf(err, errlen, "queries: must be an array");
        goto done;
    }

    n = json_array_size(queries);

    if (n == 0) {
        snprintf(err, errlen, "queries: must not be empty");
        goto done;
    }

    if (n > max) {
        snprintf(err, errlen, "queries: at most %zu entries are allowed, "
                 "got %zu", max, n);
        goto done;
    }

    *reqs = alloc(ctx, n * sizeof(ngx_http_clockchain_job_req_t));
    if (*reqs == NULL) {
        rc = -1;
        goto done;
    }

    for (i = 0; i < n; i++) {
        entry = json_array_get(queries, i);
        snprintf(where, sizeof(where), "queries[%zu]", i);

        if (!json_is_object(entry)) {
            snprintf(err, errlen, "%s: must be a JSON object", where);
            rc = 0;
            goto done;
        }

        /* "queries[3]" + ".query: ..." */
        snprintf(where, sizeof(where), "queries[%zu].", i);

        rc = ngx_http_clockchain_parse_entry(entry, &(*reqs)[i], alloc, ctx,
                                             where, err, errlen);
        if (rc != 1) {
            goto done;
        }
    }

    rc = (int) n;

done:

    json_decref(root);
    return rc;
}


/* {"visibility": "public" | "private"}, the field and the body optional */

int
ngx_http_clockchain_parse_publish(const char *body, size_t len,
    const char **visibility, char *err, size_t errlen)
{
    json_t  *root;

    *visibility = "public";

    if (len == 0) {
        return 1;
    }

    root = ngx_http_clockchain_load(body, len, err, errlen);
    if (root == NULL) {
        return 0;
    }

    if (!json_is_object(root)) {
        snprintf(err, errlen, "Request body must be a JSON object");
        json_decref(root);
        return 0;
    }

    *visibility = ngx_http_clockchain_choice(root, "visibility",
                                             ngx_http_clockchain_visibilities,
                                             "public", "", err, errlen);
    json_decref(root);

    return *visibility != NULL;
}


/*
 * PATCH .../visibility: {"visibility": "public"|"private", "user_id": ...},
 * visibility required, user_id optional (a string, or null for none),
 * 1 to usermax printable ASCII characters without spaces, copied into user
 * (not NUL-terminated) with its length in *userlen, 0 when absent.
 */

int
ngx_http_clockchain_parse_visibility(const char *body, size_t len,
    const char **visibility, char *user, size_t usermax, size_t *userlen,
    char *err, size_t errlen)
{
    size_t       i, n;
    json_t      *root, *v;
    const char  *s;

    *visibility = NULL;
    *userlen = 0;

    if (len == 0) {
        snprintf(err, errlen, "Request body required: "
                 "{\"visibility\": \"public\" or \"private\"}");
        return 0;
    }

    root = ngx_http_clockchain_load(body, len, err, errlen);
    if (root == NULL) {
        return 0;
    }

    if (!json_is_object(root)) {
        snprintf(err, errlen, "Request body must be a JSON object");
        json_decref(root);
        return 0;
    }

    if (json_object_get(root, "visibility") == NULL) {
        snprintf(err, errlen, "visibility: required, one of public, private");
        json_decref(root);
        return 0;
    }

    *visibility = ngx_http_clockchain_choice(root, "visibility",
                                             ngx_http_clockchain_visibilities,
                                             NULL, "", err, errlen);
    if (*visibility == NULL) {
        json_decref(root);
        return 0;
    }

    v = json_object_get(root, "user_id");

    if (v != NULL && !json_is_null(v)) {
        s = json_is_string(v) ? json_string_value(v) : NULL;
        n = s ? json_string_length(v) : 0;

        if (n == 0 || n > usermax) {
            snprintf(err, errlen, "user_id: must be a string of 1 to %zu "
                     "characters", usermax);
            *visibility = NULL;
            json_decref(root);
            return 0;
        }

        for (i = 0; i < n; i++) {
            if ((unsigned char) s[i] < 0x21 || (unsigned char) s[i] > 0x7e) {
                snprintf(err, errlen, "user_id: only printable ASCII "
                         "without spaces is allowed");
                *visibility = NULL;
                json_decref(root);
                return 0;
            }
        }

        memcpy(user, s, n);
        *userlen = n;
    }

    json_decref(root);

    return 1;
}


static json_t *
ngx_http_clockchain_load(const char *body, size_t len, char *err,
    size_t errlen)
{
    json_t        *root;
    json_error_t   jerr;

    /* NUL bytes inside strings are refused by jansson's default flags */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);

    if (root == NULL) {
        snprintf(err, errlen, "Invalid JSON body: %s (line %d, column %d)",
                 jerr.text, jerr.line, jerr.column);
    }

    return root;
}


static int
ngx_http_clockchain_parse_entry(json_t *obj,
    ngx_http_clockchain_job_req_t *req, ngx_http_clockchain_alloc_pt alloc,
    void *ctx, const char *where, char *err, size_t errlen)
{
    char        *copy;
    size_t       len, chars, i;
    json_t      *query;
    const char  *s;

    query = json_object_get(obj, "query");

    if (query == NULL) {
        snprintf(err, errlen, "%squery: field required", where);
        return 0;
    }

    if (!json_is_string(query)) {
        snprintf(err, errlen, "%squery: must be a string", where);
        return 0;
    }

    s = json_string_value(query);
    len = json_string_length(query);

    /* trim as str.strip() would for ASCII white space */

    while (len && (*s == ' ' || (*s >= '\t' && *s <= '\r'))) {
        s++;
        len--;
    }

    while (len && (s[len - 1] == ' '
                   || (s[len - 1] >= '\t' && s[len - 1] <= '\r')))
    {
        len--;
    }

    /* jansson guarantees valid UTF-8: count the lead bytes */

    chars = 0;

    for (i = 0; i < len; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            chars++;
        }
    }

    if (chars < NGX_HTTP_CLOCKCHAIN_QUERY_MIN
        || chars > NGX_HTTP_CLOCKCHAIN_QUERY_MAX)
    {
        snprintf(err, errlen, "%squery: must be %d to %d characters long "
                 "(got %zu)", where, NGX_HTTP_CLOCKCHAIN_QUERY_MIN,
                 NGX_HTTP_CLOCKCHAIN_QUERY_MAX, chars);
        return 0;
    }

    copy = alloc(ctx, len + 1);
    if (copy == NULL) {
        return -1;
    }

    memcpy(copy, s, len);
    copy[len] = '\0';

    req->query = copy;
    req->query_len = len;

    req->preset = ngx_http_clockchain_choice(obj, "preset",
                                             ngx_http_clockchain_presets,
                                             "balanced", where, err, errlen);
    if (req->preset == NULL) {
        return 0;
    }

    req->visibility = ngx_http_clockchain_choice(obj, "visibility",
                                             ngx_http_clockchain_visibilities,
                                             "private", where, err, errlen);
    if (req->visibility == NULL) {
        return 0;
    }

    return 1;
}


static const char *
ngx_http_clockchain_choice(json_t *obj, const char *field,
    const char *const *choices, const char *dflt, const char *where,
    char *err, size_t errlen)
{
    size_t       i, n;
    json_t      *v;
    const char  *s;

    v = json_object_get(obj, field);

    if (v == NULL) {
        return dflt;
    }

    if (json_is_string(v)) {
        s = json_string_value(v);

        for (i = 0; choices[i]; i++) {
            if (strcmp(s, choices[i]) == 0
                && json_string_length(v) == strlen(choices[i]))
            {
                return choices[i];
            }
        }
    }

    n = (size_t) snprintf(err, errlen, "%s%s: must be one of ", where, field);

    for (i = 0; choices[i] && n < errlen; i++) {
        n += (size_t) snprintf(err + n, errlen - n, "%s%s",
                               i ? ", " : "", choices[i]);
    }

    return NULL;
}


/*
 * The canonical lowercase form of a version 4 UUID, by a table: each byte
 * has the classes it belongs to (hex digit, '-', the version digit '4',
 * a variant digit 8, 9, a or b), and each position of an id the class its
 * byte must have.  No branch per byte: the id is on every GET.
 */

#define NGX_HTTP_CLOCKCHAIN_ID_HEX      0x01
#define NGX_HTTP_CLOCKCHAIN_ID_DASH     0x02
#define NGX_HTTP_CLOCKCHAIN_ID_VERSION  0x04
#define NGX_HTTP_CLOCKCHAIN_ID_VARIANT  0x08

#define X  NGX_HTTP_CLOCKCHAIN_ID_HEX
#define XV (NGX_HTTP_CLOCKCHAIN_ID_HEX|NGX_HTTP_CLOCKCHAIN_ID_VARIANT)
#define X4 (NGX_HTTP_CLOCKCHAIN_ID_HEX|NGX_HTTP_CLOCKCHAIN_ID_VERSION)
#define D  NGX_HTTP_CLOCKCHAIN_ID_DASH

static const unsigned char  ngx_http_clockchain_id_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, D, 0, 0,     /* '-' */
    X, X, X, X, X4, X, X, X, XV, XV, 0, 0, 0, 0, 0, 0,  /* 0-9 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, XV, XV, X, X, X, X, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* a-f */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 0x80 - 0xff: none */
};

#undef X
#undef XV
#undef X4
#undef D

#define H  NGX_HTTP_CLOCKCHAIN_ID_HEX
#define D  NGX_HTTP_CLOCKCHAIN_ID_DASH
#define V4 NGX_HTTP_CLOCKCHAIN_ID_VERSION
#define VR NGX_HTTP_CLOCKCHAIN_ID_VARIANT

/*
 * What each of the 36 characters may be: 8-4-4-4-12 lowercase hex digits,
 * "4" for the version, one of 8, 9, a, b for the variant.
 */
static const unsigned char  ngx_http_clockchain_id_form[
                                               NGX_HTTP_CLOCKCHAIN_ID_LEN] = {
    H, H, H, H, H, H, H, H, D,
    H, H, H, H, D,
    V4, H, H, H, D,
    VR, H, H, H, D,
    H, H, H, H, H, H, H, H, H, H, H, H
};

#undef H
#undef D
#undef V4
#undef VR


int
ngx_http_clockchain_valid_id(const char *id, size_t len)
{
    size_t         i;
    unsigned char  miss;

    if (len != NGX_HTTP_CLOCKCHAIN_ID_LEN) {
        return 0;
    }

    miss = 0;

    /* four bytes a turn: the loop's own test and jump a quarter as often */

    for (i = 0; i < NGX_HTTP_CLOCKCHAIN_ID_LEN; i += 4) {
        miss |= (ngx_http_clockchain_id_form[i]
                 & ~ngx_http_clockchain_id_class[(unsigned char) id[i]])
                | (ngx_http_clockchain_id_form[i + 1]
                   & ~ngx_http_clockchain_id_class[(unsigned char) id[i + 1]])
                | (ngx_http_clockchain_id_form[i + 2]
                   & ~ngx_http_clockchain_id_class[(unsigned char) id[i + 2]])
                | (ngx_http_clockchain_id_form[i + 3]
                   & ~ngx_http_clockchain_id_class[(unsigned char) id[i + 3]]);
    }

    return miss == 0;
}


/*
 * A canonical graph path, as the runner builds it:
 * /{year}/{month}/{DD}/{HHMM}/{country}/{region}/{city}/{slug}, the year an
 * integer (negative for BCE), the month a lowercase English name, DD 01-31,
 * HHMM a time of day, and four segments of 1 to 100 of [a-z0-9_-].
 * Only such a path ever becomes part of a Redis key.
 */

int
ngx_http_clockchain_valid_path(const char *path, size_t len)
{
    size_t       i, n, seg;
    const char  *p, *end, *s;

    static const char *const  months[] = {
        "january", "february", "march", "april", "may", "june", "july",
        "august", "september", "october", "november", "december", NULL
    };

    if (len < 2 || len > NGX_HTTP_CLOCKCHAIN_PATH_LEN || path[0] != '/') {
        return 0;
    }

    p = path + 1;
    end = path + len;

    for (seg = 0; seg < 8; seg++) {
        s = p;

        while (p < end && *p != '/') {
            p++;
        }

        n = (size_t) (p - s);

        if (n == 0 || (seg < 7 && p == end) || (seg == 7 && p != end)) {
            return 0;
        }

        switch (seg) {

        case 0: /* year */
            i = (s[0] == '-') ? 1 : 0;

            if (n == i || n - i > 12 || (s[i] == '0' && n - i > 1)
                || (i && s[i] == '0'))
            {
                return 0;
            }

            for ( /* void */ ; i < n; i++) {
                if (s[i] < '0' || s[i] > '9') {
                    return 0;
                }
            }

            break;

        case 1: /* month */
            for (i = 0; months[i]; i++) {
                if (strlen(months[i]) == n && memcmp(months[i], s, n) == 0) {
                    break;
                }
            }

            if (months[i] == NULL) {
                return 0;
            }

            break;

        case 2: /* DD */
            if (n != 2 || s[0] < '0' || s[0] > '3' || s[1] < '0' || s[1] > '9'
                || (s[0] == '0' && s[1] == '0')
                || (s[0] == '3' && s[1] > '1'))
            {
                return 0;
            }

            break;

        case 3: /* HHMM */
            if (n != 4) {
                return 0;
            }

            for (i = 0; i < 4; i++) {
                if (s[i] < '0' || s[i] > '9') {
                    return 0;
                }
            }

            if ((s[0] - '0') * 10 + (s[1] - '0') > 23 || s[2] > '5') {
                return 0;
            }

            break;

        default: /* country, region, city, slug */
            if (n > 100) {
                return 0;
            }

            for (i = 0; i < n; i++) {
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')
                      || s[i] == '-' || s[i] == '_'))
                {
                    return 0;
                }
            }
        }

        p++;
    }

    return 1;
}


/*
 * The original service's form of a path, its day without a leading zero
 * (/2016/march/9/...), as the canonical one (/2016/march/09/...), which
 * is the only one stored: the canonical path's length, written to out
 * (room for len + 1 bytes), or 0 when the path is a moment's in neither
 * form.
 */

size_t
ngx_http_clockchain_canonical_path(const char *path, size_t len, char *out)
{
    size_t  i, n, day;

    if (ngx_http_clockchain_valid_path(path, len)) {
        memcpy(out, path, len);
        return len;
    }

    /* the day is the third segment: after the third slash */

    for (i = 0, n = 0, day = 0; i < len; i++) {
        if (path[i] == '/' && ++n == 3) {
            day = i + 1;
            break;
        }
    }

    if (day == 0 || day + 1 >= len || path[day + 1] != '/'
        || path[day] < '1' || path[day] > '9')
    {
        return 0;
    }

    memcpy(out, path, day);
    out[day] = '0';
    memcpy(out + day + 1, path + day, len - day);

    return ngx_http_clockchain_valid_path(out, len + 1) ? len + 1 : 0;
}


/*
 * The kernel's CSPRNG, drawn a page at a time: ids must not be guessable
 * from pid or time, and one getrandom() per id was 4% of a POST.  A forked
 * process must not reuse its parent's bytes: a worker calls
 * ngx_http_clockchain_random_reset() when it starts.
 */

static unsigned char  ngx_http_clockchain_random[4096];
static size_t         ngx_http_clockchain_random_left;


void
ngx_http_clockchain_random_reset(void)
{
    memset(ngx_http_clockchain_random, 0, sizeof(ngx_http_clockchain_random));
    ngx_http_clockchain_random_left = 0;
}


static int
ngx_http_clockchain_random_bytes(unsigned char *out, size_t len)
{
    size_t          n;
    ssize_t         got;
    unsigned char  *start;

    if (ngx_http_clockchain_random_left < len) {

        for (n = 0; n < sizeof(ngx_http_clockchain_random); n += (size_t) got)
        {
            got = getrandom(ngx_http_clockchain_random + n,
                            sizeof(ngx_http_clockchain_random) - n, 0);

            if (got < 0) {
                if (errno == EINTR) {
                    got = 0;
                    continue;
                }

                return -1;
            }
        }

        ngx_http_clockchain_random_left = sizeof(ngx_http_clockchain_random);
    }

    start = ngx_http_clockchain_random + sizeof(ngx_http_clockchain_random)
            - ngx_http_clockchain_random_left;

    memcpy(out, start, len);

    /* bytes handed out are not kept around */
    memset(start, 0, len);
    ngx_http_clockchain_random_left -= len;

    return 0;
}


int
ngx_http_clockchain_uuid4(char *out)
{
    size_t          i, n;
    unsigned char   b[16];
    static const char  hex[] = "0123456789abcdef";

    if (ngx_http_clockchain_random_bytes(b, sizeof(b)) != 0) {
        return -1;
    }

    b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80);

    for (i = 0, n = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[n++] = '-';
        }

        out[n++] = hex[b[i] >> 4];
        out[n++] = hex[b[i] & 0x0f];
    }

    return 0;
}


/*
 * A fencing token: 128 random bits as 32 hex digits (no NUL).  Tokens are
 * compared for equality only; a counter in Redis would be issued again
 * after Redis loses its last writes, and a stale runner would pass.
 */

int
ngx_http_clockchain_token(char *out)
{
    size_t          i;
    unsigned char   b[16];
    static const char  hex[] = "0123456789abcdef";

    if (ngx_http_clockchain_random_bytes(b, sizeof(b)) != 0) {
        return -1;
    }

    for (i = 0; i < 16; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 0x0f];
    }

    return 0;
}


void
ngx_http_clockchain_iso_time(char *out, int64_t sec, long usec)
{
    char       buf[128];
    time_t     t;
    struct tm  tm;

    t = (time_t) sec;
    gmtime_r(&t, &tm);

    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, usec);

    memcpy(out, buf, NGX_HTTP_CLOCKCHAIN_TIME_LEN);
}


/*
 * Now, as iso_time writes it.  Everything up to the second is the same for
 * a whole second: gmtime_r() and snprintf() run once a second, and each
 * call writes only its microseconds (a POST takes one per job).
 */

void
ngx_http_clockchain_iso_now(char *out)
{
    int              i;
    long             usec;
    struct timespec  ts;

    /* "2026-03-06T14:32:18." */
    static time_t    second = (time_t) -1;
    static char      prefix[NGX_HTTP_CLOCKCHAIN_TIME_LEN];

    clock_gettime(CLOCK_REALTIME, &ts);

    if (ts.tv_sec != second) {
        ngx_http_clockchain_iso_time(prefix, (int64_t) ts.tv_sec, 0);
        second = ts.tv_sec;
    }

    memcpy(out, prefix, NGX_HTTP_CLOCKCHAIN_TIME_LEN - 7);

    usec = ts.tv_nsec / 1000;

    for (i = NGX_HTTP_CLOCKCHAIN_TIME_LEN - 2;
         i >= NGX_HTTP_CLOCKCHAIN_TIME_LEN - 7;
         i--)
    {
        out[i] = (char) ('0' + usec % 10);
        usec /= 10;
    }

    out[NGX_HTTP_CLOCKCHAIN_TIME_LEN - 1] = 'Z';
}


/*
 * Seconds since the epoch of an ISO time as iso_time writes it, or -1 for
 * anything else, a month 13 too.
 */

int64_t
ngx_http_clockchain_iso_parse(const char *s)
{
    int        i;
    struct tm  tm;

    static const char  shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";

    for (i = 0; i < NGX_HTTP_CLOCKCHAIN_TIME_LEN; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i]) {
            return -1;
        }
    }

    memset(&tm, 0, sizeof(struct tm));

    tm.tm_year = (s[0] - '0') * 1000 + (s[1] - '0') * 100
                 + (s[2] - '0') * 10 + (s[3] - '0') - 1900;
    tm.tm_mon = (s[5] - '0') * 10 + (s[6] - '0') - 1;
    tm.tm_mday = (s[8] - '0') * 10 + (s[9] - '0');
    tm.tm_hour = (s[11] - '0') * 10 + (s[12] - '0');
    tm.tm_min = (s[14] - '0') * 10 + (s[15] - '0');
    tm.tm_sec = (s[17] - '0') * 10 + (s[18] - '0');

    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31
        || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
    {
        return -1;
    }

    return (int64_t) timegm(&tm);
}


const char *
ngx_http_clockchain_status_name(unsigned status)
{
    if (status > NGX_HTTP_CLOCKCHAIN_FAILED) {
        return "unknown";
    }

    return ngx_http_clockchain_status_names[status];
}


unsigned
ngx_http_clockchain_status_parse(const char *s, size_t len)
{
    unsigned  i;

    for (i = 0; i <= NGX_HTTP_CLOCKCHAIN_FAILED; i++) {
        if (len == strlen(ngx_http_clockchain_status_names[i])
            && memcmp(s, ngx_http_clockchain_status_names[i], len) == 0)
        {
            return i;
        }
    }

    return NGX_HTTP_CLOCKCHAIN_UNKNOWN;
}


/*
 * Returns the length of the UTF-8 sequence at s (1 to 4), or 0 when the
 * bytes there are not valid UTF-8 (overlong forms and surrogates included).
 */

static size_t
ngx_http_clockchain_utf8_seq(const unsigned char *s, size_t len)
{
    size_t    n, i;
    uint32_t  c, min;

    c = s[0];

    if (c < 0x80) {
        return 1;
    }

    if ((c & 0xe0) == 0xc0) {
        n = 2; c &= 0x1f; min = 0x80;

    } else if ((c & 0xf0) == 0xe0) {
        n = 3; c &= 0x0f; min = 0x800;

    } else if ((c & 0xf8) == 0xf0) {
        n = 4; c &= 0x07; min = 0x10000;

    } else {
        return 0;
    }

    if (len < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }

        c = (c << 6) | (s[i] & 0x3f);
    }

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    return n;
}


/*
 * A JSON string literal with quotes; invalid UTF-8 becomes U+FFFD so that
 * whatever Flash or Redis handed us, the output is valid JSON.
 */

/* printable ASCII but '"' and '\\': copied into a JSON string as it is */

static inline int
ngx_http_clockchain_json_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}


/*
 * What goes between the quotes: ngx_http_clockchain_json_escape() writes
 * it, ngx_http_clockchain_json_escape_len() measures it.  The zone keeps
 * a job's path and error so, and answers copy them as they are.
 */

size_t
ngx_http_clockchain_json_escape_len(const char *s, size_t len)
{
    size_t                n, size;
    const unsigned char  *p, *end;

    p = (const unsigned char *) s;
    end = p + len;
    size = 0;

    while (p < end) {
        if (ngx_http_clockchain_json_plain(*p)) {
            /* ids, paths, times and most errors are only this */
            size++;
            p++;

        } else if (*p == '"' || *p == '\\') {
            size += 2;
            p++;

        } else if (*p < 0x20 || *p == 0x7f) {
            size += 6;
            p++;

        } else {
            n = ngx_http_clockchain_utf8_seq(p, (size_t) (end - p));

            if (n == 0) {
                size += 3;
                p++;

            } else {
                size += n;
                p += n;
            }
        }
    }

    return size;
}


char *
ngx_http_clockchain_json_escape(char *dst, const char *s, size_t len)
{
    size_t                n;
    const unsigned char  *p, *end;
    static const char     hex[] = "0123456789abcdef";

    p = (const unsigned char *) s;
    end = p + len;

    while (p < end) {
        if (ngx_http_clockchain_json_plain(*p)) {
            *dst++ = (char) *p++;

        } else if (*p == '"' || *p == '\\') {
            *dst++ = '\\';
            *dst++ = (char) *p++;

        } else if (*p < 0x20 || *p == 0x7f) {
            *dst++ = '\\'; *dst++ = 'u'; *dst++ = '0'; *dst++ = '0';
            *dst++ = hex[*p >> 4];
            *dst++ = hex[*p & 0x0f];
            p++;

        } else {
            n = ngx_http_clockchain_utf8_seq(p, (size_t) (end - p));

            if (n == 0) {
                *dst++ = (char) 0xef; *dst++ = (char) 0xbf;
                *dst++ = (char) 0xbd;
                p++;

            } else {
                memcpy(dst, p, n);
                dst += n;
                p += n;
            }
        }
    }

    return dst;
}


size_t
ngx_http_clockchain_json_string_len(const char *s, size_t len)
{
    return ngx_http_clockchain_json_escape_len(s, len) + 2;
}


char *
ngx_http_clockchain_json_string(char *dst, const char *s, size_t len)
{
    *dst++ = '"';
    dst = ngx_http_clockchain_json_escape(dst, s, len);
    *dst++ = '"';

    return dst;
}


#define NGX_HTTP_CLOCKCHAIN_JOB_FMT_LEN                                       \
    (sizeof("{\"job_id\":\"\",\"status\":,\"path\":,\"error\":,"              \
            "\"created_at\":\"\",\"completed_at\":}") - 1)


/* a path or an error as the job object has it: a string, or null */

static size_t
ngx_http_clockchain_job_string_len(const ngx_http_clockchain_job_t *job,
    const char *s, size_t len)
{
    if (s == NULL) {
        return sizeof("null") - 1;
    }

    return job->verbatim ? len + 2
                         : ngx_http_clockchain_json_string_len(s, len);
}


size_t
ngx_http_clockchain_job_json_len(const ngx_http_clockchain_job_t *job)
{
    size_t  size;

    size = NGX_HTTP_CLOCKCHAIN_JOB_FMT_LEN + NGX_HTTP_CLOCKCHAIN_ID_LEN
           + NGX_HTTP_CLOCKCHAIN_TIME_LEN
           + sizeof("\"processing\"") - 1;

    size += ngx_http_clockchain_job_string_len(job, job->path,
                                               job->path_len);
    size += ngx_http_clockchain_job_string_len(job, job->error,
                                               job->error_len);

    size += job->completed_at ? NGX_HTTP_CLOCKCHAIN_TIME_LEN + 2
                              : sizeof("null") - 1;

    return size;
}


#define ngx_http_clockchain_put(dst, lit)                                     \
    (memcpy(dst, lit, sizeof(lit) - 1), (dst) + sizeof(lit) - 1)


static char *
ngx_http_clockchain_job_string(char *dst, const ngx_http_clockchain_job_t *job,
    const char *s, size_t len)
{
    if (s == NULL) {
        return ngx_http_clockchain_put(dst, "null");
    }

    if (!job->verbatim) {
        return ngx_http_clockchain_json_string(dst, s, len);
    }

    *dst++ = '"';
    memcpy(dst, s, len);
    dst += len;
    *dst++ = '"';

    return dst;
}


char *
ngx_http_clockchain_job_json(char *dst, const ngx_http_clockchain_job_t *job)
{
    size_t       len;
    const char  *name;

    dst = ngx_http_clockchain_put(dst, "{\"job_id\":\"");
    memcpy(dst, job->id, NGX_HTTP_CLOCKCHAIN_ID_LEN);
    dst += NGX_HTTP_CLOCKCHAIN_ID_LEN;

    dst = ngx_http_clockchain_put(dst, "\",\"status\":\"");
    name = ngx_http_clockchain_status_name(job->status);
    len = strlen(name);
    memcpy(dst, name, len);
    dst += len;

    dst = ngx_http_clockchain_put(dst, "\",\"path\":");
    dst = ngx_http_clockchain_job_string(dst, job, job->path, job->path_len);

    dst = ngx_http_clockchain_put(dst, ",\"error\":");
    dst = ngx_http_clockchain_job_string(dst, job, job->error,
                                         job->error_len);

    dst = ngx_http_clockchain_put(dst, ",\"created_at\":\"");
    memcpy(dst, job->created_at, NGX_HTTP_CLOCKCHAIN_TIME_LEN);
    dst += NGX_HTTP_CLOCKCHAIN_TIME_LEN;

    dst = ngx_http_clockchain_put(dst, "\",\"completed_at\":");

    if (job->completed_at) {
        *dst++ = '"';
        memcpy(dst, job->completed_at, NGX_HTTP_CLOCKCHAIN_TIME_LEN);
        dst += NGX_HTTP_CLOCKCHAIN_TIME_LEN;
        *dst++ = '"';

    } else {
        dst = ngx_http_clockchain_put(dst, "null");
    }

    *dst++ = '}';

    return dst;
}


/*
 * When a finished job may be forgotten (seconds since the epoch): its
 * completed_at plus how long its kind is kept; 0 for an unfinished one.
 */

int64_t
ngx_http_clockchain_job_expire(const ngx_http_clockchain_job_t *job,
    int64_t keep_completed, int64_t keep_failed)
{
    int64_t  t;

    if (!ngx_http_clockchain_is_terminal(job->status)
        || job->completed_at == NULL)
    {
        return 0;
    }

    t = ngx_http_clockchain_iso_parse(job->completed_at);

    if (t < 0) {
        return 0;
    }

    return t + (job->status == NGX_HTTP_CLOCKCHAIN_COMPLETED
                ? keep_completed : keep_failed);
}

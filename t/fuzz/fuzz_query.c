
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * libFuzzer target: the query parameters of the graph reads
 * (ngx_http_clockchain_query.c).  The input is a query string; each
 * "name=value" is unescaped into a buffer of its exact size, and every
 * parser is run on the value and checked against a reference written here
 * from the documented rules: an integer is an optional "-" and 1 to 15
 * digits within its range, a weight digits with at most one point from 0
 * to 1 (20 bytes at most), edge types a comma list of the twelve (one
 * trailing comma allowed), text well-formed UTF-8 with no control
 * character.  AddressSanitizer sees any read or write past a value.
 */


#include <errno.h>

#include "fuzz.h"
#include "ngx_http_clockchain_query.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int
fz_ref_int(const unsigned char *v, size_t len, int64_t min, int64_t max,
    int64_t *n)
{
    char       buf[32], *end;
    size_t     i, digits;
    long long  x;

    digits = (len && v[0] == '-') ? len - 1 : len;

    if (digits == 0 || digits > 15) {
        return -1;
    }

    for (i = len - digits; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return -1;
        }
    }

    memcpy(buf, v, len);
    buf[len] = '\0';

    errno = 0;
    x = strtoll(buf, &end, 10);
    fz_assert(errno == 0 && *end == '\0');

    if (x < min || x > max) {
        return -1;
    }

    *n = x;

    return 0;
}


static int
fz_ref_weight(const unsigned char *v, size_t len)
{
    char    buf[32], *end;
    size_t  i, dots;
    double  w;

    if (len == 0 || len > 20) {
        return -1;
    }

    for (i = 0, dots = 0; i < len; i++) {
        if (v[i] == '.') {
            dots++;

        } else if (v[i] < '0' || v[i] > '9') {
            return -1;
        }
    }

    if (dots > 1 || len == dots) {
        return -1;
    }

    memcpy(buf, v, len);
    buf[len] = '\0';
    w = strtod(buf, &end);

    return (*end == '\0' && w >= 0 && w <= 1) ? 0 : -1;
}


static int
fz_is_type(const unsigned char *p, size_t n)
{
    const char *const  *t;

    for (t = ngx_http_clockchain_edge_types; *t; t++) {
        if (strlen(*t) == n && memcmp(p, *t, n) == 0) {
            return 1;
        }
    }

    return 0;
}


static int
fz_ref_types(const unsigned char *v, size_t len)
{
    size_t                n;
    const unsigned char  *p, *end, *comma;

    if (len && v[len - 1] == ',') {
        len--;
    }

    if (len == 0) {
        return -1;
    }

    p = v;
    end = v + len;

    for ( ;; ) {
        comma = memchr(p, ',', end - p);
        n = (comma ? comma : end) - p;

        if (!fz_is_type(p, n)) {
            return -1;
        }

        if (comma == NULL) {
            return 0;
        }

        p = comma + 1;
    }
}


static int
fz_ref_text(const unsigned char *v, size_t len, size_t max)
{
    size_t  i;

    if (len > max || !fz_valid_utf8((const char *) v, len)) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (v[i] < 0x20 || v[i] == 0x7f) {
            return -1;
        }
    }

    return 0;
}


static void
fz_value(const unsigned char *raw, size_t rawlen)
{
    int             rc;
    size_t          len, i;
    ssize_t         n;
    int64_t         got, want;
    unsigned char  *v, *out;

    static const int64_t  ranges[][2] = {
        { 1, 100 }, { 0, 100000 }, { -1000000, 1000000 }, { 1, 3 },
        { 1, 500 }, { INT64_MIN / 2, INT64_MAX / 2 }
    };

    v = malloc(rawlen ? rawlen : 1);
    fz_assert(v != NULL);

    len = ngx_http_clockchain_query_unescape(v, raw, rawlen);
    fz_assert(len <= rawlen);

    if (memchr(raw, '%', rawlen) == NULL) {
        fz_assert(len == rawlen);

        for (i = 0; i < len; i++) {
            fz_assert(v[i] == (raw[i] == '+' ? ' ' : raw[i]));
        }
    }

    for (i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
        got = want = 12345;
        rc = ngx_http_clockchain_query_int(v, len, ranges[i][0],
                                           ranges[i][1], &got);
        fz_assert(rc == fz_ref_int(v, len, ranges[i][0], ranges[i][1],
                                   &want));
        fz_assert(rc != 0 || got == want);
        fz_assert(rc != 0 || (got >= ranges[i][0] && got <= ranges[i][1]));
    }

    fz_assert(ngx_http_clockchain_query_weight(v, len)
              == fz_ref_weight(v, len));

    out = malloc(len + 2);
    fz_assert(out != NULL);

    n = ngx_http_clockchain_query_edge_types(v, len, out);
    fz_assert((n >= 0) == (fz_ref_types(v, len) == 0));

    if (n >= 0) {
        fz_assert((size_t) n <= len + 2 && n >= 3);
        fz_assert(out[0] == ',' && out[n - 1] == ',');
    }

    free(out);

    fz_assert(ngx_http_clockchain_query_text(v, len, 200)
              == fz_ref_text(v, len, 200));

    free(v);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char  *p, *end, *amp, *eq;

    p = data;
    end = data + size;

    while (p < end) {
        amp = memchr(p, '&', end - p);
        if (amp == NULL) {
            amp = end;
        }

        eq = memchr(p, '=', amp - p);

        /* each value on a buffer of its own size */
        fz_value(eq ? eq + 1 : amp, eq ? (size_t) (amp - eq - 1) : 0);

        p = amp + (amp < end);
    }

    return 0;
}


/*
 * Copyright (C) The Clockchain authors
 */


#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "ngx_http_clockchain_query.h"


/* a whole number has at most this many digits: no overflow below */
#define NGX_HTTP_CLOCKCHAIN_QUERY_DIGITS  15


const char *const  ngx_http_clockchain_edge_types[] = {
    "causes", "caused_by", "influences", "contemporaneous", "same_era",
    "same_location", "same_conflict", "same_figure", "thematic",
    "precedes", "follows", "challenges", NULL
};


static int
ngx_http_clockchain_query_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/*
 * As a form encodes it: "%XX" is a byte and "+" a space; a "%" not
 * followed by two hex digits stays as it is, as browsers leave it.  dst
 * may be src; it gets at most len bytes.
 */

size_t
ngx_http_clockchain_query_unescape(unsigned char *dst,
    const unsigned char *src, size_t len)
{
    int                   hi, lo;
    unsigned char        *d;
    const unsigned char  *end;

    d = dst;
    end = src + len;

    while (src < end) {
        if (*src == '%' && end - src >= 3
            && (hi = ngx_http_clockchain_query_hex(src[1])) >= 0
            && (lo = ngx_http_clockchain_query_hex(src[2])) >= 0)
        {
            *d++ = (unsigned char) (hi << 4 | lo);
            src += 3;
            continue;
        }

        *d++ = (*src == '+') ? ' ' : *src;
        src++;
    }

    return d - dst;
}


/* an optional "-" and digits, within [min, max]: 0, else -1 */

int
ngx_http_clockchain_query_int(const unsigned char *v, size_t len,
    int64_t min, int64_t max, int64_t *n)
{
    int64_t  sign, value;
    size_t   i;

    sign = 1;

    if (len && v[0] == '-') {
        sign = -1;
        v++;
        len--;
    }

    if (len == 0 || len > NGX_HTTP_CLOCKCHAIN_QUERY_DIGITS) {
        return -1;
    }

    value = 0;

    for (i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return -1;
        }

        value = value * 10 + (v[i] - '0');
    }

    value *= sign;

    if (value < min || value > max) {
        return -1;
    }

    *n = value;

    return 0;
}


/* a weight: digits with at most one point, from 0 to 1 */

int
ngx_http_clockchain_query_weight(const unsigned char *v, size_t len)
{
    char    buf[24], *end;
    size_t  i, dots;
    double  w;

    if (len == 0 || len > 20) {
        return -1;
    }

    dots = 0;

    for (i = 0; i < len; i++) {
        if (v[i] == '.') {
            dots++;

        } else if (v[i] < '0' || v[i] > '9') {
            return -1;
        }
    }

    if (dots > 1 || (dots && len == 1)) {
        return -1;
    }

    memcpy(buf, v, len);
    buf[len] = '\0';

    w = strtod(buf, &end);

    if (*end != '\0' || w < 0 || w > 1) {
        return -1;
    }

    return 0;
}


/*
 * "a,b": each one of the twelve, written to out as ",a,b," for the walk
 * script to find ",type," in (out has room for len + 2 bytes); its
 * length, or -1 for an unknown or empty type.
 */

ssize_t
ngx_http_clockchain_query_edge_types(const unsigned char *v, size_t len,
    unsigned char *out)
{
    size_t                n;
    unsigned char        *o;
    const unsigned char  *p, *end, *comma;
    const char *const    *t;

    o = out;
    *o++ = ',';

    p = v;
    end = v + len;

    while (p < end) {
        comma = memchr(p, ',', end - p);
        n = (comma ? comma : end) - p;

        for (t = ngx_http_clockchain_edge_types; *t; t++) {
            if (strlen(*t) == n && memcmp(p, *t, n) == 0) {
                break;
            }
        }

        if (*t == NULL) {
            return -1;
        }

        memcpy(o, p, n);
        o += n;
        *o++ = ',';

        p += n + (comma ? 1 : 0);
    }

    if (o == out + 1) {
        return -1;
    }

    return o - out;
}


/* text to match against names: UTF-8, no control character, max bytes */

int
ngx_http_clockchain_query_text(const unsigned char *v, size_t len,
    size_t max)
{
    size_t            i;
    utf8proc_int32_t  c;
    utf8proc_ssize_t  n;

    if (len > max) {
        return -1;
    }

    for (i = 0; i < len; i += n) {
        n = utf8proc_iterate(v + i, len - i, &c);

        if (n < 0 || c < 0x20 || c == 0x7f) {
            return -1;
        }
    }

    return 0;
}


/* the index of v in names (NULL-terminated), or -1 */

int
ngx_http_clockchain_query_one_of(const unsigned char *v, size_t len,
    const char *const *names)
{
    int  i;

    for (i = 0; names[i]; i++) {
        if (strlen(names[i]) == len && memcmp(v, names[i], len) == 0) {
            return i;
        }
    }

    return -1;
}

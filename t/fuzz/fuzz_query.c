
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
 * The value is also split into search words (ngx_http_clockchain_words()
 * in scene.c, what GET /api/search does to q), and each word checked:
 * well-formed UTF-8 of 2 to NGX_HTTP_CLOCKCHAIN_WORD_MAX code points,
 * letters and digits only (no mark), lowercase where Latin, Greek and
 * Cyrillic have case, no accented Latin letter (none of U+00C0-U+024F
 * that decomposes), the same word when split again; at most one word for
 * every two bytes of the text; a walk stopped by its callback at the
 * ninth word (the search handler's NGX_HTTP_CLOCKCHAIN_SEARCH_WORDS + 1)
 * returns what the callback returned and calls it no more.
 */


#include <errno.h>

#include <utf8proc.h>

#include "fuzz.h"
#include "ngx_http_clockchain_query.h"
#include "ngx_http_clockchain_scene.h"


typedef struct {
    size_t       n;        /* words seen */
    size_t       stop;     /* return 1 at this word (0: never) */
    const char  *again;    /* a word split again: the one it must give */
    size_t       again_len;
} fz_words_t;


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


static int
fz_word_again(const char *word, size_t len, void *data)
{
    fz_words_t *w = data;

    fz_assert(w->n == 0);
    fz_assert(len == w->again_len && memcmp(word, w->again, len) == 0);
    w->n++;

    return 0;
}


static int
fz_word(const char *word, size_t len, void *data)
{
    fz_words_t *w = data;

    size_t                  i, chars;
    utf8proc_int32_t        c, dec[8];
    utf8proc_ssize_t        r;
    utf8proc_category_t     cat;
    fz_words_t              again;

    w->n++;
    fz_assert(w->stop == 0 || w->n <= w->stop);

    fz_assert(fz_valid_utf8(word, len));

    for (i = 0, chars = 0; i < len; i += r, chars++) {
        r = utf8proc_iterate((const utf8proc_uint8_t *) word + i,
                             len - i, &c);
        fz_assert(r > 0);

        cat = utf8proc_category(c);
        fz_assert((cat >= UTF8PROC_CATEGORY_LU
                   && cat <= UTF8PROC_CATEGORY_LO)
                  || (cat >= UTF8PROC_CATEGORY_ND
                      && cat <= UTF8PROC_CATEGORY_NO));

        if (c < 0x0530) {
            fz_assert(utf8proc_tolower(c) == c);
        }

        if (c >= 0xc0 && c <= 0x24f) {
            fz_assert(utf8proc_decompose_char(c, dec, 8, UTF8PROC_DECOMPOSE,
                                              NULL)
                      == 1);
        }
    }

    fz_assert(chars >= 2 && chars <= NGX_HTTP_CLOCKCHAIN_WORD_MAX);

    again.n = 0;
    again.again = word;
    again.again_len = len;
    fz_assert(ngx_http_clockchain_words(word, len, fz_word_again, &again)
              == 0);
    fz_assert(again.n == 1);

    return (w->stop && w->n == w->stop) ? 1 : 0;
}


static void
fz_words(const unsigned char *v, size_t len)
{
    int         rc;
    size_t      i;
    fz_words_t  w;

    w.n = 0;
    w.stop = 0;
    fz_assert(ngx_http_clockchain_words((const char *) v, len, fz_word, &w)
              == 0);

    /*
     * A word takes two letters: in ASCII, two bytes.  A ligature is
     * more: U+FDFA, three bytes, is four words under NFKD (18 code
     * points), so the bound is scene.c's 32 code points a byte, halved.
     */
    for (i = 0; i < len && v[i] < 0x80; i++) { /* void */ }

    fz_assert(w.n <= (i == len ? len / 2 : len * 16));

    w.n = 0;
    w.stop = 9;
    rc = ngx_http_clockchain_words((const char *) v, len, fz_word, &w);
    fz_assert(rc == (w.n == 9));
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

    fz_words(v, len);

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

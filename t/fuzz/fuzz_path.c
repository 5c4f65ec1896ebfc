
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * libFuzzer target: the canonical path of GET /api/moments/{path}
 * (ngx_http_clockchain_valid_path), the check that stands between a URI
 * and a Redis key.  Its verdict on any bytes must equal a reference
 * written here as one POSIX extended regular expression from the contract:
 * /{year}/{month}/{DD}/{HHMM}/{country}/{region}/{city}/{slug}, the year
 * an integer without leading zeros (negative for BCE, at most 12 digits),
 * a lowercase English month, DD 01-31, HHMM 0000-2359, four segments of 1
 * to 100 of [a-z0-9_-], 512 bytes at most.  An accepted path never holds
 * "..", a NUL, "%" or a "\\".  ngx_http_clockchain_canonical_path() must
 * give such a path back as it is, and the original's form with a one-digit
 * day (/2016/march/9/...) with a "0" before the day, and nothing else.
 */


#define _GNU_SOURCE           /* memmem() */

#include <regex.h>

#include "fuzz.h"


#define FZ_PATH_RE                                                            \
    "^/(0|-?[1-9][0-9]{0,11})"                                                \
    "/(january|february|march|april|may|june|july|august|september"           \
    "|october|november|december)"                                             \
    "/(0[1-9]|[12][0-9]|3[01])"                                               \
    "/([01][0-9]|2[0-3])[0-5][0-9]"                                           \
    "(/[a-z0-9_-]{1,100}){4}$"

/* the same with a day of one digit: the original's unpadded form */
#define FZ_UNPADDED_RE                                                        \
    "^/(0|-?[1-9][0-9]{0,11})"                                                \
    "/(january|february|march|april|may|june|july|august|september"           \
    "|october|november|december)"                                             \
    "/[1-9]"                                                                  \
    "/([01][0-9]|2[0-3])[0-5][0-9]"                                           \
    "(/[a-z0-9_-]{1,100}){4}$"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static regex_t  fz_re, fz_unpadded_re;
static int      fz_re_ready;


static int
fz_reference_path(const uint8_t *data, size_t size)
{
    int    ok;
    char  *s;

    if (!fz_re_ready) {
        fz_assert(regcomp(&fz_re, FZ_PATH_RE, REG_EXTENDED | REG_NOSUB) == 0);
        fz_assert(regcomp(&fz_unpadded_re, FZ_UNPADDED_RE,
                          REG_EXTENDED | REG_NOSUB) == 0);
        fz_re_ready = 1;
    }

    if (size > NGX_HTTP_CLOCKCHAIN_PATH_LEN || memchr(data, '\0', size)) {
        return 0;
    }

    s = malloc(size + 1);
    fz_assert(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';

    ok = regexec(&fz_re, s, 0, NULL, 0) == 0;

    if (!ok && size < NGX_HTTP_CLOCKCHAIN_PATH_LEN
        && regexec(&fz_unpadded_re, s, 0, NULL, 0) == 0)
    {
        ok = 2;
    }

    free(s);

    return ok;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int      ok, ref;
    char    *out;
    size_t   n, day;

    ok = ngx_http_clockchain_valid_path((const char *) data, size);
    ref = fz_reference_path(data, size);

    out = malloc(size + 1);
    fz_assert(out != NULL);
    n = ngx_http_clockchain_canonical_path((const char *) data, size, out);

    if (ref == 2) {
        /* the day follows the third slash; a "0" goes before it */
        for (n = 0, day = 0; n < 3; day++) {
            n += (data[day] == '/');
        }

        n = ngx_http_clockchain_canonical_path((const char *) data, size,
                                               out);
        fz_assert(n == size + 1 && out[day] == '0'
                  && memcmp(out, data, day) == 0
                  && memcmp(out + day + 1, data + day, size - day) == 0);
        fz_assert(ngx_http_clockchain_valid_path(out, n));
        ref = 0;

    } else if (ref) {
        fz_assert(n == size && memcmp(out, data, size) == 0);

    } else {
        fz_assert(n == 0);
    }

    free(out);

    if (ok != ref) {
        fprintf(stderr, "valid_path says %d for \"%.*s\"\n", ok, (int) size,
                (const char *) data);
        abort();
    }

    if (ok) {
        fz_assert(memmem(data, size, "..", 2) == NULL);
        fz_assert(memchr(data, '%', size) == NULL);
        fz_assert(memchr(data, '\\', size) == NULL);
    }

    return 0;
}

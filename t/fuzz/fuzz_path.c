
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
 * "..", a NUL, "%" or a "\\".
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


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static regex_t  fz_re;
static int      fz_re_ready;


static int
fz_reference_path(const uint8_t *data, size_t size)
{
    int    ok;
    char  *s;

    if (!fz_re_ready) {
        fz_assert(regcomp(&fz_re, FZ_PATH_RE, REG_EXTENDED | REG_NOSUB) == 0);
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

    free(s);

    return ok;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int  ok;

    ok = ngx_http_clockchain_valid_path((const char *) data, size);

    if (ok != fz_reference_path(data, size)) {
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

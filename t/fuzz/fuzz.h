
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * Helpers shared by the libFuzzer targets in t/fuzz/ (see
 * docs/hardening.md): a pool that hands out exact-size blocks (so that
 * AddressSanitizer sees an overflow by one byte) and frees them all after
 * each input, as nginx's request pool does, and a strict UTF-8 checker
 * written from the Unicode standard's table of well-formed sequences,
 * independently of the code under test.
 */


#ifndef _CLOCKCHAIN_FUZZ_H_INCLUDED_
#define _CLOCKCHAIN_FUZZ_H_INCLUDED_


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#include "ngx_http_clockchain_job.h"


/* abort() with a message: libFuzzer saves the input as a crash */
#define fz_assert(cond)                                                       \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: assertion failed: %s\n",                  \
                    __FILE__, __LINE__, #cond);                               \
            abort();                                                          \
        }                                                                     \
    } while (0)


typedef struct {
    void    **blocks;
    size_t    n;
    size_t    cap;
} fz_pool_t;


static inline void *
fz_alloc(void *ctx, size_t size)
{
    void       *p, **b;
    fz_pool_t  *pool = ctx;

    if (pool->n == pool->cap) {
        pool->cap = pool->cap ? pool->cap * 2 : 16;
        b = realloc(pool->blocks, pool->cap * sizeof(void *));
        if (b == NULL) {
            abort();
        }
        pool->blocks = b;
    }

    /* malloc(0) may return NULL: the parsers never ask for 0 bytes */
    p = malloc(size);
    fz_assert(p != NULL);

    pool->blocks[pool->n++] = p;

    return p;
}


static inline void
fz_pool_free(fz_pool_t *pool)
{
    size_t  i;

    for (i = 0; i < pool->n; i++) {
        free(pool->blocks[i]);
    }

    free(pool->blocks);
    pool->blocks = NULL;
    pool->n = 0;
    pool->cap = 0;
}


/*
 * The length of the well-formed UTF-8 sequence at p (Unicode 15, table
 * 3-7), or 0 when the bytes there are not one.
 */

static inline size_t
fz_utf8_seq(const unsigned char *p, size_t len)
{
    unsigned char  lo, hi;
    size_t         n, i;

    if (len == 0) {
        return 0;
    }

    lo = 0x80;
    hi = 0xbf;

    if (p[0] < 0x80) {
        return 1;

    } else if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;

    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;

        if (p[0] == 0xe0) {
            lo = 0xa0;

        } else if (p[0] == 0xed) {
            hi = 0x9f;
        }

    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;

        if (p[0] == 0xf0) {
            lo = 0x90;

        } else if (p[0] == 0xf4) {
            hi = 0x8f;
        }

    } else {
        return 0;
    }

    if (len < n || p[1] < lo || p[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xbf) {
            return 0;
        }
    }

    return n;
}


static inline int
fz_valid_utf8(const char *s, size_t len)
{
    size_t                n;
    const unsigned char  *p, *end;

    p = (const unsigned char *) s;
    end = p + len;

    while (p < end) {
        n = fz_utf8_seq(p, (size_t) (end - p));

        if (n == 0) {
            return 0;
        }

        p += n;
    }

    return 1;
}


/* err must hold a NUL-terminated string within errlen bytes */

static inline void
fz_check_err(const char *err, size_t errlen)
{
    fz_assert(errlen == 0 || memchr(err, '\0', errlen) != NULL);
}


static inline int
fz_is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}


/* one validated entry, as the handler relies on it */

static inline void
fz_check_req(const ngx_http_clockchain_job_req_t *req)
{
    size_t  i, chars;

    fz_assert(req->query != NULL);
    fz_assert(req->query[req->query_len] == '\0');
    fz_assert(strlen(req->query) == req->query_len);
    fz_assert(fz_valid_utf8(req->query, req->query_len));
    fz_assert(!fz_is_space((unsigned char) req->query[0]));
    fz_assert(!fz_is_space((unsigned char) req->query[req->query_len - 1]));

    for (i = 0, chars = 0; i < req->query_len; i++) {
        chars += ((unsigned char) req->query[i] & 0xc0) != 0x80;
    }

    fz_assert(chars >= NGX_HTTP_CLOCKCHAIN_QUERY_MIN);
    fz_assert(chars <= NGX_HTTP_CLOCKCHAIN_QUERY_MAX);

    fz_assert(req->preset != NULL && req->visibility != NULL);
    fz_assert(strcmp(req->preset, "hd") == 0
              || strcmp(req->preset, "hyper") == 0
              || strcmp(req->preset, "balanced") == 0
              || strcmp(req->preset, "gemini3") == 0);
    fz_assert(strcmp(req->visibility, "public") == 0
              || strcmp(req->visibility, "private") == 0);
}


#endif /* _CLOCKCHAIN_FUZZ_H_INCLUDED_ */

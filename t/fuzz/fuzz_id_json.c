
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * libFuzzer target: job ids in GET /api/jobs/{id}
 * (ngx_http_clockchain_valid_id, checked against a reference written here
 * from the contract: lowercase canonical UUID v4) and the JSON string
 * escaping every response uses (ngx_http_clockchain_json_string and
 * ngx_http_clockchain_json_string_len).
 *
 * For any bytes: the measured length is the written length; the output is
 * one JSON string for jansson; it decodes to the input with each byte that
 * does not start a well-formed UTF-8 sequence replaced by U+FFFD.  The same
 * bytes as a job's path and error make a job object that jansson reads
 * back with its six keys, and the same object again when the path and the
 * error are given in their escaped form (ngx_http_clockchain_json_escape(),
 * as the zone keeps them) and copied verbatim.
 */


#include <jansson.h>

#include "fuzz.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* 8-4-4-4-12 lowercase hex; version nibble 4; variant 8, 9, a or b */

static int
fz_reference_id(const uint8_t *s, size_t len)
{
    size_t  i;

    static const char  form[] = "xxxxxxxx-xxxx-4xxx-vxxx-xxxxxxxxxxxx";

    if (len != sizeof(form) - 1) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        switch (form[i]) {

        case 'x':
            if (!strchr("0123456789abcdef", s[i]) || s[i] == '\0') {
                return 0;
            }
            break;

        case 'v':
            if (!strchr("89ab", s[i]) || s[i] == '\0') {
                return 0;
            }
            break;

        default:
            if (s[i] != (uint8_t) form[i]) {
                return 0;
            }
        }
    }

    return 1;
}


/* the input with U+FFFD for each byte that starts no valid sequence */

static char *
fz_replaced(const uint8_t *s, size_t len, size_t *outlen)
{
    char    *out;
    size_t   i, n, k;

    out = malloc(3 * len + 1);
    fz_assert(out != NULL);

    for (i = 0, n = 0; i < len; i += k) {
        k = fz_utf8_seq(s + i, len - i);

        if (k == 0) {
            memcpy(out + n, "\xef\xbf\xbd", 3);
            n += 3;
            k = 1;

        } else {
            memcpy(out + n, s + i, k);
            n += k;
        }
    }

    *outlen = n;

    return out;
}


static void
fz_json_string(const uint8_t *data, size_t size)
{
    char          *dst, *end, *expect;
    size_t         len, expect_len;
    json_t        *v;
    json_error_t   jerr;

    len = ngx_http_clockchain_json_string_len((const char *) data, size);

    dst = malloc(len);
    fz_assert(dst != NULL);

    end = ngx_http_clockchain_json_string(dst, (const char *) data, size);
    fz_assert(end == dst + len);

    v = json_loadb(dst, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);

    if (v == NULL) {
        fprintf(stderr, "not JSON: %s: %.*s\n", jerr.text, (int) len, dst);
        abort();
    }

    fz_assert(json_is_string(v));

    expect = fz_replaced(data, size, &expect_len);

    fz_assert(json_string_length(v) == expect_len);
    fz_assert(memcmp(json_string_value(v), expect, expect_len) == 0);

    free(expect);
    json_decref(v);
    free(dst);
}


static void
fz_job_json(const uint8_t *data, size_t size)
{
    char                       *dst, *end, *esc, *vdst, *vend;
    size_t                      len, half, plen, elen;
    json_t                     *v;
    json_error_t                jerr;
    ngx_http_clockchain_job_t   job, vjob;

    half = size / 2;

    job.id = "a3d8f7e2-4c1b-4a9e-8f2d-1e3c5b7a9d0f";
    job.status = size % 6;    /* 4 and 5: out of range, "unknown" */
    job.path = (size % 3 == 0) ? NULL : (const char *) data;
    job.path_len = half;
    job.error = (size % 5 == 0) ? NULL : (const char *) data + half;
    job.error_len = size - half;
    job.created_at = "2026-03-06T14:32:18.123456Z";
    job.completed_at = (size % 2) ? job.created_at : NULL;
    job.verbatim = 0;

    len = ngx_http_clockchain_job_json_len(&job);

    dst = malloc(len);
    fz_assert(dst != NULL);

    end = ngx_http_clockchain_job_json(dst, &job);
    fz_assert(end <= dst + len);

    v = json_loadb(dst, (size_t) (end - dst), JSON_ALLOW_NUL, &jerr);

    if (v == NULL) {
        fprintf(stderr, "job not JSON: %s: %.*s\n", jerr.text,
                (int) (end - dst), dst);
        abort();
    }

    fz_assert(json_is_object(v) && json_object_size(v) == 6);
    fz_assert(json_is_string(json_object_get(v, "status")));

    /* the zone's form: the strings escaped once, then copied */

    vjob = job;
    vjob.verbatim = 1;

    plen = job.path ? ngx_http_clockchain_json_escape_len(job.path,
                                                          job.path_len)
                    : 0;
    elen = job.error ? ngx_http_clockchain_json_escape_len(job.error,
                                                           job.error_len)
                     : 0;

    esc = malloc(plen + elen + 1);
    fz_assert(esc != NULL);

    if (job.path) {
        fz_assert(ngx_http_clockchain_json_escape(esc, job.path, job.path_len)
                  == esc + plen);
        vjob.path = esc;
        vjob.path_len = plen;
    }

    if (job.error) {
        fz_assert(ngx_http_clockchain_json_escape(esc + plen, job.error,
                                                  job.error_len)
                  == esc + plen + elen);
        vjob.error = esc + plen;
        vjob.error_len = elen;
    }

    fz_assert(ngx_http_clockchain_job_json_len(&vjob) == len);

    vdst = malloc(len);
    fz_assert(vdst != NULL);

    vend = ngx_http_clockchain_job_json(vdst, &vjob);
    fz_assert(vend - vdst == end - dst);
    fz_assert(memcmp(vdst, dst, (size_t) (end - dst)) == 0);

    free(vdst);
    free(esc);
    json_decref(v);
    free(dst);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_assert(ngx_http_clockchain_valid_id((const char *) data, size)
              == fz_reference_id(data, size));

    fz_json_string(data, size);
    fz_job_json(data, size);

    return 0;
}

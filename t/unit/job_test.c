
/*
 * Unit tests of src/ngx_http_clockchain_job.c (no nginx), printing TAP.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regex.h>
#include <time.h>

#include <jansson.h>

#include "ngx_http_clockchain_job.h"


static int  tests, failed;


static void
ok(int cond, const char *name)
{
    tests++;

    if (!cond) {
        failed++;
    }

    printf("%sok %d - %s\n", cond ? "" : "not ", tests, name);
}


static void *
test_alloc(void *ctx, size_t size)
{
    (void) ctx;
    return malloc(size);   /* leaked on purpose: a test process */
}


static int
matches(const char *re, const char *s, size_t len)
{
    int      rc;
    char     buf[128];
    regex_t  r;

    snprintf(buf, sizeof(buf), "%.*s", (int) len, s);
    regcomp(&r, re, REG_EXTENDED | REG_NOSUB);
    rc = regexec(&r, buf, 0, NULL, 0);
    regfree(&r);

    return rc == 0;
}


static int
cmp36(const void *a, const void *b)
{
    return memcmp(a, b, 36);
}


static void
test_ids(void)
{
    int    i, all_ok;
    char   a[36], b[36], *ids;

    ok(ngx_http_clockchain_valid_id("a3d8f7e2-4c1b-4a9e-8f2d-1e3c5b7a9d0f",
                                    36), "seed's id is valid");
    ok(!ngx_http_clockchain_valid_id("A3D8F7E2-4C1B-4A9E-8F2D-1E3C5B7A9D0F",
                                     36), "uppercase id is refused");
    ok(!ngx_http_clockchain_valid_id("a3d8f7e2-4c1b-1a9e-8f2d-1e3c5b7a9d0f",
                                     36), "version 1 id is refused");
    ok(!ngx_http_clockchain_valid_id("a3d8f7e2-4c1b-4a9e-cf2d-1e3c5b7a9d0f",
                                     36), "bad variant is refused");
    ok(!ngx_http_clockchain_valid_id("a3d8f7e2-4c1b-4a9e-8f2d-1e3c5b7a9d0",
                                     35), "short id is refused");
    ok(!ngx_http_clockchain_valid_id("a3d8f7e2x4c1b-4a9e-8f2d-1e3c5b7a9d0f",
                                     36), "missing dash is refused");
    ok(!ngx_http_clockchain_valid_id("a3d8f7e2-4c1b-4a9e-8f2d-1e3c5b7a9d\0f",
                                     36), "NUL inside is refused");

    /*
     * the table against the form, byte by byte: every value of every
     * position of a valid id, the rest left valid
     */

    all_ok = 1;

    for (i = 0; i < 36 * 256; i++) {
        int   pos, c, want;

        pos = i / 256;
        c = i % 256;

        memcpy(a, "a3d8f7e2-4c1b-4a9e-8f2d-1e3c5b7a9d0f", 36);
        a[pos] = (char) c;

        if (pos == 8 || pos == 13 || pos == 18 || pos == 23) {
            want = (c == '-');

        } else if (pos == 14) {
            want = (c == '4');

        } else if (pos == 19) {
            want = (c == '8' || c == '9' || c == 'a' || c == 'b');

        } else {
            want = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        }

        if (ngx_http_clockchain_valid_id(a, 36) != want) {
            all_ok = 0;
            printf("# position %d, byte 0x%02x: %d\n", pos, c, !want);
        }
    }

    ok(all_ok, "each byte of each position is judged as the form says");

    all_ok = 1;

    for (i = 0; i < 1000; i++) {
        if (ngx_http_clockchain_uuid4(a) != 0
            || !ngx_http_clockchain_valid_id(a, 36))
        {
            all_ok = 0;
        }
    }

    ok(all_ok, "1000 drawn ids are valid v4 uuids");

    ngx_http_clockchain_uuid4(a);
    ngx_http_clockchain_uuid4(b);
    ok(memcmp(a, b, 36) != 0, "two drawn ids differ");

    /* ids come from a buffer of 256: across several refills, none repeats */

    ids = malloc(1000 * 36);
    all_ok = (ids != NULL);

    for (i = 0; all_ok && i < 1000; i++) {
        if (i == 500) {
            ngx_http_clockchain_random_reset();   /* as a new worker */
        }

        all_ok = (ngx_http_clockchain_uuid4(ids + i * 36) == 0);
    }

    if (all_ok) {
        qsort(ids, 1000, 36, cmp36);

        for (i = 1; i < 1000; i++) {
            if (memcmp(ids + (i - 1) * 36, ids + i * 36, 36) == 0) {
                all_ok = 0;
            }
        }
    }

    ok(all_ok, "1000 ids over four refills and a reset are distinct");
    free(ids);
}


static void
test_time(void)
{
    int              i, round, all_ok;
    char             t[NGX_HTTP_CLOCKCHAIN_TIME_LEN];
    char             lo[NGX_HTTP_CLOCKCHAIN_TIME_LEN];
    char             hi[NGX_HTTP_CLOCKCHAIN_TIME_LEN];
    struct timespec  before, after, nap;

    ngx_http_clockchain_iso_time(t, 1772807538, 123456);
    ok(memcmp(t, "2026-03-06T14:32:18.123456Z", 27) == 0,
       "iso time with microseconds and Z");

    ngx_http_clockchain_iso_time(t, 0, 7);
    ok(memcmp(t, "1970-01-01T00:00:00.000007Z", 27) == 0,
       "iso time pads microseconds");

    ok(ngx_http_clockchain_iso_parse("2026-03-06T14:32:18.123456Z")
       == 1772807538, "iso time parses back");
    ok(ngx_http_clockchain_iso_parse("2026-03-06 14:32:18.123456Z") == -1,
       "a malformed iso time is refused");
    ok(ngx_http_clockchain_iso_parse("2026-13-06T14:32:18.123456Z") == -1
       && ngx_http_clockchain_iso_parse("2026-00-06T14:32:18.123456Z") == -1
       && ngx_http_clockchain_iso_parse("2026-03-00T14:32:18.123456Z") == -1
       && ngx_http_clockchain_iso_parse("2026-03-06T24:32:18.123456Z") == -1
       && ngx_http_clockchain_iso_parse("2026-03-06T14:60:18.123456Z") == -1,
       "an iso time out of range is refused");

    ngx_http_clockchain_iso_now(t);
    ok(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
               "\\.[0-9]{6}Z$", t, 27), "iso now has the format");

    /*
     * iso_now keeps the text up to the second for the second: it must still
     * be iso_time of the clock read around it, also after the second turns
     */

    for (round = 0, all_ok = 1; round < 2; round++) {

        for (i = 0; i < 2000; i++) {
            clock_gettime(CLOCK_REALTIME, &before);
            ngx_http_clockchain_iso_now(t);
            clock_gettime(CLOCK_REALTIME, &after);

            ngx_http_clockchain_iso_time(lo, (int64_t) before.tv_sec,
                                         before.tv_nsec / 1000);
            ngx_http_clockchain_iso_time(hi, (int64_t) after.tv_sec,
                                         after.tv_nsec / 1000);

            if (memcmp(lo, t, 27) > 0 || memcmp(t, hi, 27) > 0) {
                all_ok = 0;
            }
        }

        /* sleep into the next second */
        clock_gettime(CLOCK_REALTIME, &before);
        nap.tv_sec = 0;
        nap.tv_nsec = 1000000000L - before.tv_nsec + 1000000L;

        if (nap.tv_nsec >= 1000000000L) {
            nap.tv_nsec = 999999999L;
        }

        nanosleep(&nap, NULL);
    }

    ok(all_ok, "iso now is the clock's time, within a second and after it "
       "turns");
}


static void
test_json_string(void)
{
    size_t       len;
    char         out[256], *end;
    json_t      *j;
    const char  *in = "a\"b\\c\n\x01\xff\xc3\xa9\xe2\x82";

    len = ngx_http_clockchain_json_string_len(in, strlen(in));
    end = ngx_http_clockchain_json_string(out, in, strlen(in));
    ok((size_t) (end - out) == len, "escaped length is what was measured");

    *end = '\0';
    j = json_loads(out, JSON_DECODE_ANY, NULL);
    ok(j != NULL, "escaped hostile bytes give valid JSON");

    if (j) {
        ok(strcmp(json_string_value(j),
                  "a\"b\\c\n\x01\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd")
           == 0, "invalid UTF-8 became U+FFFD, valid UTF-8 kept");
        json_decref(j);

    } else {
        ok(0, "invalid UTF-8 became U+FFFD, valid UTF-8 kept");
    }

    /* what goes between the quotes, as the zone keeps a path or error */
    in = "a\"b\\c\n\x01\xff\xc3\xa9\xe2\x80\xa8";
    len = ngx_http_clockchain_json_escape_len(in, strlen(in));
    end = ngx_http_clockchain_json_escape(out, in, strlen(in));
    ok((size_t) (end - out) == len
       && len + 2 == ngx_http_clockchain_json_string_len(in, strlen(in))
       && memcmp(out, "a\\\"b\\\\c\\u000a\\u0001\xef\xbf\xbd\xc3\xa9"
                      "\xe2\x80\xa8", len) == 0,
       "escaped without quotes: the string's inside");

    /* overlong '/' and a surrogate */
    in = "\xc0\xaf\xed\xa0\x80";
    end = ngx_http_clockchain_json_string(out, in, strlen(in));
    *end = '\0';
    j = json_loads(out, JSON_DECODE_ANY, NULL);
    ok(j != NULL, "overlong forms and surrogates are replaced");
    json_decref(j);
}


static void
test_job_json(void)
{
    unsigned                    s;
    char                        out[1024], *end;
    json_t                     *j;
    ngx_http_clockchain_job_t   job;

    memset(&job, 0, sizeof(job));
    job.id = "a3d8f7e2-4c1b-4a9e-8f2d-1e3c5b7a9d0f";
    job.created_at = "2026-03-06T14:32:18.123456Z";

    for (s = 0; s <= NGX_HTTP_CLOCKCHAIN_FAILED; s++) {
        job.status = s;

        job.path = (s == NGX_HTTP_CLOCKCHAIN_COMPLETED)
                   ? "/1776/july/04/1200/united-states/pennsylvania/"
                     "philadelphia/signing-declaration-independence-3f4a"
                   : NULL;
        job.path_len = job.path ? strlen(job.path) : 0;
        job.error = (s == NGX_HTTP_CLOCKCHAIN_FAILED)
                    ? "Flash API error: Invalid date format | response: "
                      "{\"detail\":\"Year must be a valid integer\"}"
                    : NULL;
        job.error_len = job.error ? strlen(job.error) : 0;
        job.completed_at = ngx_http_clockchain_is_terminal(s)
                           ? "2026-03-06T14:32:32.987654Z" : NULL;

        job.verbatim = 0;
        end = ngx_http_clockchain_job_json(out, &job);
        *end = '\0';

        /* the same job with its strings escaped already, as the zone has it */
        {
            char                       esc[512], vout[1024], *vend, *q;
            ngx_http_clockchain_job_t  v;

            v = job;
            v.verbatim = 1;
            q = esc;

            if (job.path) {
                v.path = q;
                q = ngx_http_clockchain_json_escape(q, job.path, job.path_len);
                v.path_len = q - v.path;
            }

            if (job.error) {
                v.error = q;
                q = ngx_http_clockchain_json_escape(q, job.error,
                                                    job.error_len);
                v.error_len = q - v.error;
            }

            vend = ngx_http_clockchain_job_json(vout, &v);

            ok(vend - vout == end - out
               && memcmp(vout, out, (size_t) (end - out)) == 0
               && ngx_http_clockchain_job_json_len(&v)
                  == ngx_http_clockchain_job_json_len(&job),
               "the job json from escaped strings is the same, byte for byte");
        }

        ok((size_t) (end - out) <= ngx_http_clockchain_job_json_len(&job),
           "job json fits the measured length");

        j = json_loads(out, 0, NULL);
        ok(j && json_object_size(j) == 6
           && strcmp(json_string_value(json_object_get(j, "status")),
                     ngx_http_clockchain_status_name(s)) == 0
           && (job.path ? json_is_string(json_object_get(j, "path"))
                        : json_is_null(json_object_get(j, "path")))
           && (job.error ? json_is_string(json_object_get(j, "error"))
                         : json_is_null(json_object_get(j, "error")))
           && (job.completed_at
               ? json_is_string(json_object_get(j, "completed_at"))
               : json_is_null(json_object_get(j, "completed_at"))),
           "job json has the six keys with nulls where due");
        json_decref(j);
    }
}


typedef struct {
    const char  *body;
    int          rc;
    const char  *err;      /* a substring of the message */
} parse_case_t;


static void
test_parse(void)
{
    int                             rc;
    char                            err[NGX_HTTP_CLOCKCHAIN_ERR_LEN], name[256];
    size_t                          i;
    ngx_http_clockchain_job_req_t  *reqs;

    static const parse_case_t  generate[] = {
        { "{\"query\":\"moon landing\"}", 1, NULL },
        { "{\"query\":\"  abc  \"}", 1, NULL },
        { "{\"query\":\"ab\"}", 0, "query: must be 3 to 500" },
        { "{\"query\":\"  ab \\n\"}", 0, "query: must be 3 to 500" },
        { "{\"query\":\"\xc3\xa9\xc3\xa9\xc3\xa9\"}", 1, NULL },
        { "{\"query\":42}", 0, "query: must be a string" },
        { "{\"query\":null}", 0, "query: must be a string" },
        { "{}", 0, "query: field required" },
        { "[]", 0, "must be a JSON object" },
        { "\"abc\"", 0, "Invalid JSON" },
        { "{\"query\":\"abc\"", 0, "Invalid JSON" },
        { "", 0, "Invalid JSON" },
        { "{\"query\":\"abc\",\"query\":\"def\"}", 0, "Invalid JSON" },
        { "{\"query\":\"a\\u0000c\"}", 0, "Invalid JSON" },
        { "{\"query\":\"\xff\xfe\xfd\"}", 0, "Invalid JSON" },
        { "{\"query\":\"abc\",\"preset\":\"hd\"}", 1, NULL },
        { "{\"query\":\"abc\",\"preset\":\"HD\"}", 0, "preset: must be one" },
        { "{\"query\":\"abc\",\"preset\":1}", 0, "preset: must be one" },
        { "{\"query\":\"abc\",\"visibility\":\"public\"}", 1, NULL },
        { "{\"query\":\"abc\",\"visibility\":\"secret\"}", 0,
          "visibility: must be one" },
        { "{\"query\":\"abc\",\"extra\":[1,2]}", 1, NULL },
    };

    static const parse_case_t  bulk[] = {
        { "{\"queries\":[{\"query\":\"abc\"},{\"query\":\"def\"}]}", 2, NULL },
        { "{\"queries\":[]}", 0, "queries: must not be empty" },
        { "{\"queries\":{}}", 0, "queries: must be an array" },
        { "{}", 0, "queries: field required" },
        { "{\"queries\":[{\"query\":\"abc\"},5]}", 0,
          "queries[1]: must be a JSON object" },
        { "{\"queries\":[{\"query\":\"abc\"},{\"query\":\"abc\"},"
          "{\"query\":\"x\"}]}", 0, "queries[2].query: must be 3" },
        { "{\"queries\":[{\"query\":\"abc\"},{\"query\":\"abc\"},"
          "{\"query\":\"abc\"},{\"query\":\"abc\"}]}", 0,
          "at most 3 entries" },
    };

    for (i = 0; i < sizeof(generate) / sizeof(generate[0]); i++) {
        err[0] = '\0';
        rc = ngx_http_clockchain_parse_generate(generate[i].body,
                                                strlen(generate[i].body),
                                                &reqs, test_alloc, NULL,
                                                err, sizeof(err));
        snprintf(name, sizeof(name), "generate %s -> %d %s", generate[i].body,
                 generate[i].rc, generate[i].err ? generate[i].err : "");
        ok(rc == generate[i].rc
           && (generate[i].err == NULL || strstr(err, generate[i].err)),
           name);
    }

    rc = ngx_http_clockchain_parse_generate("{\"query\":\" moon \"}", 18,
                                            &reqs, test_alloc, NULL, err,
                                            sizeof(err));
    ok(rc == 1 && strcmp(reqs[0].query, "moon") == 0
       && strcmp(reqs[0].preset, "balanced") == 0
       && strcmp(reqs[0].visibility, "private") == 0,
       "query is trimmed, preset and visibility default");

    for (i = 0; i < sizeof(bulk) / sizeof(bulk[0]); i++) {
        err[0] = '\0';
        rc = ngx_http_clockchain_parse_bulk(bulk[i].body, strlen(bulk[i].body),
                                            3, &reqs, test_alloc, NULL,
                                            err, sizeof(err));
        snprintf(name, sizeof(name), "bulk %s -> %d %s", bulk[i].body,
                 bulk[i].rc, bulk[i].err ? bulk[i].err : "");
        ok(rc == bulk[i].rc
           && (bulk[i].err == NULL || strstr(err, bulk[i].err)), name);
    }
}


static void
test_paths(void)
{
    size_t  i;
    char    name[700], long_seg[200];

    static const struct {
        const char  *path;
        int          ok;
    } cases[] = {
        { "/1776/july/04/1200/united-states/pennsylvania/philadelphia/"
          "signing-declaration-independence-3f4a", 1 },
        { "/-44/march/15/1800/italia/rome/theatre-of-pompey/ides-ee6c", 1 },
        { "/0/january/01/0000/unknown/unknown/unknown/unknown", 1 },
        { "/1776/july/04/1200/a/b/c/d/", 0 },
        { "/1776/july/04/1200/a/b/c", 0 },
        { "/1776/july/04/1200/a/b/c/d/e", 0 },
        { "1776/july/04/1200/a/b/c/d", 0 },
        { "/1776/July/04/1200/a/b/c/d", 0 },
        { "/1776/7/04/1200/a/b/c/d", 0 },
        { "/1776/july/4/1200/a/b/c/d", 0 },
        { "/1776/july/00/1200/a/b/c/d", 0 },
        { "/1776/july/32/1200/a/b/c/d", 0 },
        { "/1776/july/04/2400/a/b/c/d", 0 },
        { "/1776/july/04/1260/a/b/c/d", 0 },
        { "/01776/july/04/1200/a/b/c/d", 0 },
        { "/-0/july/04/1200/a/b/c/d", 0 },
        { "/-/july/04/1200/a/b/c/d", 0 },
        { "/1776/july/04/1200/a/../c/d", 0 },
        { "/1776/july/04/1200/a/./c/d", 0 },
        { "/1776/july/04/1200/a//c/d", 0 },
        { "/1776/july/04/1200/a/b/c/D", 0 },
        { "/1776/july/04/1200/a/b/c/*", 0 },
        { "/1776/july/04/1200/a/b/c/d%2e", 0 },
        { "/1776/july/04/1200/a/b/c/d e", 0 },
        { "/1776/july/04/1200/a/b/c/\xc3\xa9", 0 },
        { "", 0 },
        { "/", 0 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(name, sizeof(name), "path %s is %s", cases[i].path,
                 cases[i].ok ? "canonical" : "refused");
        ok(ngx_http_clockchain_valid_path(cases[i].path, strlen(cases[i].path))
           == cases[i].ok, name);
    }

    memset(long_seg, 'a', 101);
    long_seg[101] = '\0';
    snprintf(name, sizeof(name), "/1/july/04/1200/a/b/c/%s", long_seg);
    ok(!ngx_http_clockchain_valid_path(name, strlen(name)),
       "a segment of 101 bytes is refused");
    long_seg[100] = '\0';
    snprintf(name, sizeof(name), "/1/july/04/1200/a/b/c/%s", long_seg);
    ok(ngx_http_clockchain_valid_path(name, strlen(name)),
       "a segment of 100 bytes is canonical");
}


int
main(void)
{
    test_ids();
    test_time();
    test_json_string();
    test_job_json();
    test_parse();
    test_paths();

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}

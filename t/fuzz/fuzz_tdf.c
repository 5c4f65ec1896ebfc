
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * libFuzzer target: a moment as the original shows it and as a TDF record
 * (ngx_http_clockchain_tdf.c), on any JSON.  Python's json.dumps as
 * written there must give printable ASCII only that reads back (jansson)
 * as the same value, compact or not; its SHA-256 must be OpenSSL's; and a
 * node of any content must get its columns, a number for a month, and a
 * record whose hash is that of its payload, without a leak or a crash.
 */


#include <openssl/sha.h>

#include "fuzz.h"
#include "ngx_http_clockchain_tdf.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
fz_dumps(json_t *v, int compact)
{
    char           *text, hex[NGX_HTTP_CLOCKCHAIN_SHA256_HEX + 1];
    char            want[NGX_HTTP_CLOCKCHAIN_SHA256_HEX + 1];
    size_t          len, i;
    json_t         *back;
    unsigned char   md[SHA256_DIGEST_LENGTH];

    text = ngx_http_clockchain_py_dumps(v, compact, &len);
    fz_assert(text != NULL);
    fz_assert(strlen(text) == len);

    for (i = 0; i < len; i++) {
        fz_assert(text[i] >= 0x20 && text[i] <= 0x7e);
    }

    back = json_loadb(text, len, JSON_DECODE_ANY, NULL);
    fz_assert(back != NULL);
    fz_assert(json_equal(back, v));
    json_decref(back);

    ngx_http_clockchain_sha256_hex(text, len, hex);
    SHA256((const unsigned char *) text, len, md);

    for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        snprintf(want + 2 * i, 3, "%02x", md[i]);
    }

    fz_assert(memcmp(hex, want, NGX_HTTP_CLOCKCHAIN_SHA256_HEX) == 0);

    free(text);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char     *text, hex[NGX_HTTP_CLOCKCHAIN_SHA256_HEX + 1];
    size_t    len;
    json_t   *v, *rec, *month;

    v = json_loadb((const char *) data, size, JSON_DECODE_ANY, NULL);
    if (v == NULL) {
        return 0;
    }

    fz_dumps(v, 0);
    fz_dumps(v, 1);

    if (json_is_object(v)) {
        fz_assert(ngx_http_clockchain_node_columns(v) == 0);
        fz_assert(json_object_get(v, "tdf_hash") != NULL);

        rec = ngx_http_clockchain_tdf_record(v);
        fz_assert(rec != NULL);

        text = ngx_http_clockchain_py_dumps(json_object_get(rec, "payload"),
                                            0, &len);
        fz_assert(text != NULL);
        ngx_http_clockchain_sha256_hex(text, len, hex);
        fz_assert(strcmp(hex, json_string_value(json_object_get(rec,
                                                   "tdf_hash"))) == 0);
        free(text);
        json_decref(rec);

        fz_assert(ngx_http_clockchain_node_month(v) == 0);
        month = json_object_get(v, "month");
        fz_assert(json_is_integer(month) && json_integer_value(month) >= 0
                  && json_integer_value(month) <= 12);
    }

    json_decref(v);

    return 0;
}

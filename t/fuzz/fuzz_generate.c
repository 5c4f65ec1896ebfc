
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * libFuzzer target: the body of POST /api/generate
 * (ngx_http_clockchain_parse_generate).  The input is the body as is.
 * Every accepted body must give one entry as the handler relies on it
 * (trimmed valid UTF-8 query of 3..500 characters, NUL-terminated, a known
 * preset and visibility) and must be a JSON object for jansson too; a
 * refused one a NUL-terminated message.  The body is parsed twice, the
 * second time with a short error buffer of exact size: the verdict must not
 * change and nothing may be written past it.  The same bytes go to the
 * publish body parser (ngx_http_clockchain_parse_publish) and the PATCH
 * .../visibility one (ngx_http_clockchain_parse_visibility): 0 or 1, a
 * known visibility (and a user_id of printable ASCII within its buffer),
 * or a NUL-terminated message within its buffer.
 */


#include <jansson.h>

#include "fuzz.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int
fz_parse(const uint8_t *data, size_t size, size_t errlen)
{
    int                             rc;
    char                           *err;
    json_t                         *root;
    fz_pool_t                       pool = { NULL, 0, 0 };
    ngx_http_clockchain_job_req_t  *reqs = NULL;

    err = malloc(errlen);
    fz_assert(err != NULL);

    rc = ngx_http_clockchain_parse_generate((const char *) data, size, &reqs,
                                            fz_alloc, &pool, err, errlen);

    fz_assert(rc == 0 || rc == 1);

    if (rc == 1) {
        fz_assert(reqs != NULL);
        fz_check_req(&reqs[0]);

        root = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                          NULL);
        fz_assert(json_is_object(root));
        fz_assert(json_is_string(json_object_get(root, "query")));
        json_decref(root);

    } else {
        fz_check_err(err, errlen);
    }

    free(err);
    fz_pool_free(&pool);

    return rc;
}


static void
fz_publish(const uint8_t *data, size_t size, size_t errlen)
{
    int          rc;
    char        *err;
    const char  *visibility;

    err = malloc(errlen);
    fz_assert(err != NULL);

    rc = ngx_http_clockchain_parse_publish((const char *) data, size,
                                           &visibility, err, errlen);

    fz_assert(rc == 0 || rc == 1);

    if (rc == 1) {
        fz_assert(visibility != NULL);
        fz_assert(strcmp(visibility, "public") == 0
                  || strcmp(visibility, "private") == 0);

    } else {
        fz_check_err(err, errlen);
    }

    free(err);
}


static void
fz_visibility(const uint8_t *data, size_t size, size_t errlen)
{
    int          rc;
    char        *err;
    char         user[255];
    size_t       ulen, i;
    const char  *visibility;

    err = malloc(errlen);
    fz_assert(err != NULL);

    ulen = 12345;

    rc = ngx_http_clockchain_parse_visibility((const char *) data, size,
                                              &visibility, user, sizeof(user),
                                              &ulen, err, errlen);

    fz_assert(rc == 0 || rc == 1);

    if (rc == 1) {
        fz_assert(visibility != NULL);
        fz_assert(strcmp(visibility, "public") == 0
                  || strcmp(visibility, "private") == 0);
        fz_assert(ulen <= sizeof(user));

        for (i = 0; i < ulen; i++) {
            fz_assert(user[i] > 0x20 && user[i] < 0x7f);
        }

    } else {
        fz_check_err(err, errlen);
    }

    free(err);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int  rc;

    rc = fz_parse(data, size, NGX_HTTP_CLOCKCHAIN_ERR_LEN);

    fz_assert(fz_parse(data, size, 1 + size % 40) == rc);

    fz_publish(data, size, NGX_HTTP_CLOCKCHAIN_ERR_LEN);
    fz_publish(data, size, 1 + size % 40);

    fz_visibility(data, size, NGX_HTTP_CLOCKCHAIN_ERR_LEN);
    fz_visibility(data, size, 1 + size % 40);

    return 0;
}


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
 * change and nothing may be written past it.
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


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int  rc;

    rc = fz_parse(data, size, NGX_HTTP_CLOCKCHAIN_ERR_LEN);

    fz_assert(fz_parse(data, size, 1 + size % 40) == rc);

    return 0;
}

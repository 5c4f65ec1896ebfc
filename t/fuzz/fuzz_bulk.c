
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * libFuzzer target: the body of POST /api/bulk-generate
 * (ngx_http_clockchain_parse_bulk).  The input is the body as is.  Parsed
 * with the default clockchain_bulk_max (100) and a 256-byte error buffer,
 * then again with a small max and a short error buffer of exact size: an
 * accepted body gives n entries that each pass the checks the handler
 * relies on, the small max accepts the same body when n fits and refuses it
 * otherwise, and an error message never runs past its buffer.
 */


#include <jansson.h>

#include "fuzz.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int
fz_parse(const uint8_t *data, size_t size, size_t max, size_t errlen)
{
    int                             rc, i;
    char                           *err;
    json_t                         *root, *queries;
    fz_pool_t                       pool = { NULL, 0, 0 };
    ngx_http_clockchain_job_req_t  *reqs = NULL;

    err = malloc(errlen);
    fz_assert(err != NULL);

    rc = ngx_http_clockchain_parse_bulk((const char *) data, size, max, &reqs,
                                        fz_alloc, &pool, err, errlen);

    fz_assert(rc >= 0 && (size_t) rc <= max);

    if (rc > 0) {
        fz_assert(reqs != NULL);

        for (i = 0; i < rc; i++) {
            fz_check_req(&reqs[i]);
        }

        root = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                          NULL);
        queries = json_object_get(root, "queries");
        fz_assert(json_is_array(queries));
        fz_assert(json_array_size(queries) == (size_t) rc);
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
    int     rc, rc2;
    size_t  max;

    rc = fz_parse(data, size, 100, NGX_HTTP_CLOCKCHAIN_ERR_LEN);

    max = 1 + size % 4;
    rc2 = fz_parse(data, size, max, 1 + size % 40);

    if (rc > 0 && (size_t) rc <= max) {
        fz_assert(rc2 == rc);

    } else {
        fz_assert(rc2 == 0);
    }

    return 0;
}

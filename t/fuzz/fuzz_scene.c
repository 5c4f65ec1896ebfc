
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * libFuzzer target: Flash's scene -> canonical path and graph node
 * (ngx_http_clockchain_scene_to_node) and the job's error text for a Flash
 * HTTP error (ngx_http_clockchain_flash_error).
 *
 * Input: when it holds a NUL byte, the bytes before the first NUL are the
 * job's query (any bytes: the runner reads it back from Redis) and the rest
 * is Flash's body; otherwise all of it is the body and the query is fixed.
 *
 * On every successful scene the safe-path rules hold: the path matches
 * ^/-?[0-9]+/[a-z]+/[0-9]{2}/[0-9]{4}(/[a-z0-9_-]+){4}$, has no "..", no
 * segment longer than 100 bytes, ngx_http_clockchain_valid_path() accepts
 * it, and the node is a JSON object (jansson) whose "path" is the path.  A failed scene gives a NUL-terminated valid
 * UTF-8 message.  flash_error() writes valid UTF-8, NUL-terminated, within
 * outlen, for a status, an outlen and a body taken from the input.
 */


#include <regex.h>

#include <jansson.h>

#include "fuzz.h"
#include "ngx_http_clockchain_scene.h"


#define FZ_PATH_RE                                                            \
    "^/-?[0-9]+/[a-z]+/[0-9]{2}/[0-9]{4}(/[a-z0-9_-]+){4}$"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static regex_t  fz_path_re;
static int      fz_path_re_ready;


static void
fz_check_path(const char *path)
{
    size_t       n;
    const char  *p, *slash;

    if (!fz_path_re_ready) {
        fz_assert(regcomp(&fz_path_re, FZ_PATH_RE, REG_EXTENDED | REG_NOSUB)
                  == 0);
        fz_path_re_ready = 1;
    }

    fz_assert(regexec(&fz_path_re, path, 0, NULL, 0) == 0);
    fz_assert(strstr(path, "..") == NULL);
    fz_assert(strlen(path) < NGX_HTTP_CLOCKCHAIN_PATH_MAX);

    /* what the runner writes, GET /api/moments/{path} must accept */
    fz_assert(ngx_http_clockchain_valid_path(path, strlen(path)));

    for (p = path + 1; ; p = slash + 1) {
        slash = strchr(p, '/');
        n = slash ? (size_t) (slash - p) : strlen(p);

        fz_assert(n >= 1 && n <= NGX_HTTP_CLOCKCHAIN_SEGMENT_MAX);

        if (slash == NULL) {
            break;
        }
    }
}


static void
fz_check_node(const char *path, const char *node)
{
    json_t        *root, *v;
    json_error_t   jerr;

    fz_assert(fz_valid_utf8(node, strlen(node)));

    root = json_loads(node, 0, &jerr);

    if (root == NULL) {
        fprintf(stderr, "node is not JSON: %s\n%s\n", jerr.text, node);
        abort();
    }

    fz_assert(json_is_object(root));

    v = json_object_get(root, "path");
    fz_assert(json_is_string(v));
    fz_assert(strcmp(json_string_value(v), path) == 0);

    fz_assert(json_is_integer(json_object_get(root, "year")));
    fz_assert(json_is_integer(json_object_get(root, "sort_key")));
    fz_assert(json_array_size(json_object_get(root, "tags"))
              <= NGX_HTTP_CLOCKCHAIN_TAGS_MAX);
    fz_assert(json_array_size(json_object_get(root, "figures"))
              <= NGX_HTTP_CLOCKCHAIN_FIGURES_MAX);

    json_decref(root);
}


static void
fz_scene(const char *body, size_t len, const char *query)
{
    int                             rc;
    char                           *path, *node;
    char                            err[NGX_HTTP_CLOCKCHAIN_ERR_LEN];
    ngx_http_clockchain_scene_in_t  in;

    in.job_id = "a3d8f7e2-4c1b-4a9e-8f2d-1e3c5b7a9d0f";
    in.query = query;
    in.visibility = "public";
    in.created_by = "user-42";
    in.created_at = "2026-03-06T14:32:18.123456Z";

    rc = ngx_http_clockchain_scene_to_node(body, len, &in, &path, &node, err,
                                           sizeof(err));

    /* allocations do not fail here: -1 would be a bug */
    fz_assert(rc == 0 || rc == 1);

    if (rc == 1) {
        fz_assert(path != NULL && node != NULL);
        fz_check_path(path);
        fz_check_node(path, node);

    } else {
        fz_assert(path == NULL && node == NULL);
        fz_check_err(err, sizeof(err));
        fz_assert(err[0] != '\0');
        fz_assert(fz_valid_utf8(err, strlen(err)));
    }

    free(path);
    free(node);
}


static void
fz_flash_error(const uint8_t *data, size_t size)
{
    long     status;
    char    *out;
    size_t   outlen, n;

    if (size < 3) {
        return;
    }

    /* -32768..32767 covers the table, 0 and nonsense alike */
    status = (int16_t) (data[0] | (data[1] << 8));
    outlen = 1 + (size_t) data[2] * 3;    /* 1..766, the prefix is ~50 */

    out = malloc(outlen);
    fz_assert(out != NULL);

    n = ngx_http_clockchain_flash_error(status, (const char *) data + 3,
                                        size - 3, out, outlen);

    fz_assert(n < outlen);
    fz_assert(out[n] == '\0');
    fz_assert(strlen(out) == n);
    fz_assert(fz_valid_utf8(out, n));

    free(out);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char           *query;
    const uint8_t  *nul;

    nul = memchr(data, '\0', size);

    if (nul == NULL) {
        fz_scene((const char *) data, size, "moon landing, houston 1969");

    } else {
        /* the query is data up to and with the NUL: a copy of exact size */
        query = malloc((size_t) (nul - data) + 1);
        fz_assert(query != NULL);
        memcpy(query, data, (size_t) (nul - data) + 1);

        fz_scene((const char *) nul + 1, size - (size_t) (nul - data) - 1,
                 query);

        free(query);
    }

    fz_flash_error(data, size);

    return 0;
}

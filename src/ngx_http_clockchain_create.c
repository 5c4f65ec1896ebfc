
/*
 * Copyright (C) The Clockchain authors
 */


#include <stdio.h>
#include <string.h>

#include "ngx_http_clockchain_create.h"


/* create.lua's arguments before the six of each job */
#define NGX_HTTP_CLOCKCHAIN_CREATE_ARGS   7

#define NGX_HTTP_CLOCKCHAIN_NUM_LEN       (sizeof("18446744073709551615"))


static char *ngx_http_clockchain_create_num(uint64_t v,
    ngx_http_clockchain_alloc_pt alloc, void *ctx, size_t *len);


/* X-User-Id: 1 to 255 printable characters without spaces */

const char *
ngx_http_clockchain_check_user(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_CLOCKCHAIN_USER_MAX) {
        return "X-User-Id: must be 1 to 255 characters";
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] < 0x21 || (unsigned char) s[i] > 0x7e) {
            return "X-User-Id: only printable ASCII without spaces is "
                   "allowed";
        }
    }

    return NULL;
}


/* Idempotency-Key: 1 to 255 printable characters */

const char *
ngx_http_clockchain_check_idempotency(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_CLOCKCHAIN_IDEMPOTENCY_MAX) {
        return "Idempotency-Key: must be 1 to 255 printable characters";
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] > 0x7e) {
            return "Idempotency-Key: must be 1 to 255 printable characters";
        }
    }

    return NULL;
}


/* every key of the module is written here: the Redis key schema */

size_t
ngx_http_clockchain_key_write(char *key, const char *prefix,
    size_t prefix_len, const char *name, const char *tail, size_t tail_len)
{
    char    *p;
    size_t   name_len;

    name_len = strlen(name);

    p = key;

    memcpy(p, prefix, prefix_len);
    p += prefix_len;
    memcpy(p, "{cc}:" NGX_HTTP_CLOCKCHAIN_SCHEMA ":",
           sizeof("{cc}:" NGX_HTTP_CLOCKCHAIN_SCHEMA ":") - 1);
    p += sizeof("{cc}:" NGX_HTTP_CLOCKCHAIN_SCHEMA ":") - 1;
    memcpy(p, name, name_len);
    p += name_len;

    if (tail_len) {
        memcpy(p, tail, tail_len);
        p += tail_len;
    }

    *p = '\0';

    return p - key;
}


char *
ngx_http_clockchain_key_make(const char *prefix, size_t prefix_len,
    const char *name, const char *tail, size_t tail_len,
    ngx_http_clockchain_alloc_pt alloc, void *ctx, size_t *len)
{
    char  *key;

    key = alloc(ctx, ngx_http_clockchain_key_len(prefix_len, name, tail_len)
                     + 1);
    if (key == NULL) {
        return NULL;
    }

    *len = ngx_http_clockchain_key_write(key, prefix, prefix_len, name, tail,
                                         tail_len);

    return key;
}


/*
 * KEYS:  queue, [idempotency key], one hash per job;
 * ARGV:  (unused), schema, max pending, fingerprint material or "",
 *        idempotency TTL, replicas, the writer's token record or "", then
 *        id, created_at, query, preset, visibility, created_by for each
 *        job.
 */

int
ngx_http_clockchain_create_argv(const ngx_http_clockchain_create_t *cr,
    const ngx_http_clockchain_job_req_t *reqs, ngx_http_clockchain_job_t *jobs,
    size_t n, ngx_http_clockchain_alloc_pt alloc, void *ctx,
    ngx_http_clockchain_argv_t *out)
{
    int            k, a, nkeys, argc;
    char          *s, *id;
    size_t         i, len;
    const char   **argv, *kind;
    size_t        *argvlen;

    nkeys = (int) n + 1 + (cr->idempotency ? 1 : 0);
    argc = nkeys + NGX_HTTP_CLOCKCHAIN_CREATE_ARGS + 6 * (int) n;

    argv = alloc(ctx, argc * sizeof(char *));
    argvlen = alloc(ctx, argc * sizeof(size_t));

    if (argv == NULL || argvlen == NULL) {
        return -1;
    }

    k = 0;

    s = ngx_http_clockchain_key_make(cr->prefix, cr->prefix_len, "queue",
                                     NULL, 0, alloc, ctx, &len);
    if (s == NULL) {
        return -1;
    }

    argv[k] = s;
    argvlen[k++] = len;

    if (cr->idempotency) {
        s = ngx_http_clockchain_key_make(cr->prefix, cr->prefix_len, "idem:",
                                         cr->idempotency, cr->idempotency_len,
                                         alloc, ctx, &len);
        if (s == NULL) {
            return -1;
        }

        argv[k] = s;
        argvlen[k++] = len;
    }

    a = nkeys + NGX_HTTP_CLOCKCHAIN_CREATE_ARGS;

    for (i = 0; i < n; i++) {
        id = alloc(ctx, NGX_HTTP_CLOCKCHAIN_ID_LEN + 1);
        s = alloc(ctx, NGX_HTTP_CLOCKCHAIN_TIME_LEN + 1);

        if (id == NULL || s == NULL) {
            return -1;
        }

        if (ngx_http_clockchain_uuid4(id) != 0) {
            return -2;
        }

        ngx_http_clockchain_iso_now(s);

        memset(&jobs[i], 0, sizeof(ngx_http_clockchain_job_t));
        jobs[i].id = id;
        jobs[i].created_at = s;
        jobs[i].status = NGX_HTTP_CLOCKCHAIN_PENDING;

        s = ngx_http_clockchain_key_make(cr->prefix, cr->prefix_len, "job:",
                                         id, NGX_HTTP_CLOCKCHAIN_ID_LEN,
                                         alloc, ctx, &len);
        if (s == NULL) {
            return -1;
        }

        argv[k] = s;
        argvlen[k++] = len;

        argv[a] = id;
        argvlen[a++] = NGX_HTTP_CLOCKCHAIN_ID_LEN;
        argv[a] = jobs[i].created_at;
        argvlen[a++] = NGX_HTTP_CLOCKCHAIN_TIME_LEN;
        argv[a] = reqs[i].query;
        argvlen[a++] = reqs[i].query_len;
        argv[a] = reqs[i].preset;
        argvlen[a++] = strlen(reqs[i].preset);
        argv[a] = reqs[i].visibility;
        argvlen[a++] = strlen(reqs[i].visibility);
        argv[a] = cr->user;
        argvlen[a++] = cr->user_len;
    }

    /* ARGV[1] is not read: jobs are due now on Redis's clock (TIME) */
    argv[k] = "";
    argvlen[k] = 0;

    argv[k + 1] = NGX_HTTP_CLOCKCHAIN_SCHEMA;
    argvlen[k + 1] = sizeof(NGX_HTTP_CLOCKCHAIN_SCHEMA) - 1;

    argv[k + 2] = ngx_http_clockchain_create_num(cr->max_pending, alloc, ctx,
                                                 &argvlen[k + 2]);

    /*
     * The same key is the same request when all of this is the same: the
     * endpoint, the creator and the body, byte for byte.
     */

    if (cr->idempotency) {
        kind = cr->bulk ? "bulk" : "generate";
        len = strlen(kind) + 1 + cr->user_len + 1 + cr->body_len;

        s = alloc(ctx, len + 1);
        if (s == NULL) {
            return -1;
        }

        argv[k + 3] = s;
        argvlen[k + 3] = len;

        memcpy(s, kind, strlen(kind));
        s += strlen(kind);
        *s++ = '\n';
        memcpy(s, cr->user, cr->user_len);
        s += cr->user_len;
        *s++ = '\n';

        if (cr->body_len) {
            memcpy(s, cr->body, cr->body_len);
            s += cr->body_len;
        }

        *s = '\0';

    } else {
        argv[k + 3] = "";
        argvlen[k + 3] = 0;
    }

    argv[k + 4] = NGX_HTTP_CLOCKCHAIN_IDEMPOTENCY_TTL;
    argvlen[k + 4] = sizeof(NGX_HTTP_CLOCKCHAIN_IDEMPOTENCY_TTL) - 1;

    /* with fewer replicas online the WAIT could only time out: none made */
    argv[k + 5] = ngx_http_clockchain_create_num(cr->replicas, alloc, ctx,
                                                 &argvlen[k + 5]);

    if (argv[k + 2] == NULL || argv[k + 5] == NULL) {
        return -1;
    }

    /* checked in the same step as the jobs are written: a token revoked
     * since the request's check writes nothing */
    if (cr->token) {
        argv[k + 6] = ngx_http_clockchain_key_make(cr->prefix,
                                                   cr->prefix_len,
                                                   "agent:tok:", cr->token,
                                                   cr->token_len, alloc, ctx,
                                                   &argvlen[k + 6]);
        if (argv[k + 6] == NULL) {
            return -1;
        }

    } else {
        argv[k + 6] = "";
        argvlen[k + 6] = 0;
    }

    out->nkeys = nkeys;
    out->argc = argc;
    out->argv = argv;
    out->argvlen = argvlen;

    return 0;
}


static char *
ngx_http_clockchain_create_num(uint64_t v, ngx_http_clockchain_alloc_pt alloc,
    void *ctx, size_t *len)
{
    int    n;
    char  *s;

    s = alloc(ctx, NGX_HTTP_CLOCKCHAIN_NUM_LEN);
    if (s == NULL) {
        return NULL;
    }

    n = snprintf(s, NGX_HTTP_CLOCKCHAIN_NUM_LEN, "%llu",
                 (unsigned long long) v);
    *len = (size_t) n;

    return s;
}


/*
 * Copyright (C) The Clockchain authors
 */


#include <string.h>

#include "ngx_http_clockchain_create.h"


/* create.lua's arguments: the call's, each request's, each job's */
#define NGX_HTTP_CLOCKCHAIN_CREATE_ARGS       5
#define NGX_HTTP_CLOCKCHAIN_CREATE_REQ_ARGS   4
#define NGX_HTTP_CLOCKCHAIN_CREATE_JOB_ARGS   5

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


int
ngx_http_clockchain_create_jobs(ngx_http_clockchain_job_t *jobs, size_t n,
    ngx_http_clockchain_alloc_pt alloc, void *ctx)
{
    char    *id, *at;
    size_t   i;

    for (i = 0; i < n; i++) {
        id = alloc(ctx, NGX_HTTP_CLOCKCHAIN_ID_LEN + 1);
        at = alloc(ctx, NGX_HTTP_CLOCKCHAIN_TIME_LEN + 1);

        if (id == NULL || at == NULL) {
            return -1;
        }

        if (ngx_http_clockchain_uuid4(id) != 0) {
            return -2;
        }

        ngx_http_clockchain_iso_now(at);

        memset(&jobs[i], 0, sizeof(ngx_http_clockchain_job_t));
        jobs[i].id = id;
        jobs[i].created_at = at;
        jobs[i].status = NGX_HTTP_CLOCKCHAIN_PENDING;
    }

    return 0;
}


/* each argument also costs RESP's "$<len>\r\n" and "\r\n" */
#define NGX_HTTP_CLOCKCHAIN_ARG_COST    (NGX_HTTP_CLOCKCHAIN_NUM_LEN + 4)

size_t
ngx_http_clockchain_create_size(const ngx_http_clockchain_create_t *cr,
    const ngx_http_clockchain_create_conf_t *cf)
{
    size_t  i, size;

    size = 4 * NGX_HTTP_CLOCKCHAIN_ARG_COST + NGX_HTTP_CLOCKCHAIN_NUM_LEN
           + cr->user_len;

    if (cr->idempotency) {
        size += 2 * NGX_HTTP_CLOCKCHAIN_ARG_COST
                + ngx_http_clockchain_key_len(cf->prefix_len, "idem:",
                                              cr->idempotency_len)
                + sizeof("generate") + 1 + cr->user_len + cr->body_len;
    }

    if (cr->token) {
        size += ngx_http_clockchain_key_len(cf->prefix_len, "agent:tok:",
                                            cr->token_len);
    }

    for (i = 0; i < cr->njobs; i++) {
        size += 6 * NGX_HTTP_CLOCKCHAIN_ARG_COST
                + ngx_http_clockchain_key_len(cf->prefix_len, "job:",
                                              NGX_HTTP_CLOCKCHAIN_ID_LEN)
                + NGX_HTTP_CLOCKCHAIN_ID_LEN + NGX_HTTP_CLOCKCHAIN_TIME_LEN
                + cr->reqs[i].query_len + strlen(cr->reqs[i].preset)
                + strlen(cr->reqs[i].visibility);
    }

    return size;
}


/*
 * KEYS:  queue, then per request [its idempotency key], one hash per job;
 * ARGV:  schema, max pending, idempotency TTL, replicas, the number of
 *        requests, then per request: its number of jobs, fingerprint
 *        material or "", the writer's token record or "", created_by,
 *        and id, created_at, query, preset, visibility for each job.
 */

int
ngx_http_clockchain_create_argv(const ngx_http_clockchain_create_conf_t *cf,
    const ngx_http_clockchain_create_t *crs, size_t n,
    ngx_http_clockchain_alloc_pt alloc, void *ctx,
    ngx_http_clockchain_argv_t *out)
{
    int                                  k, a, nkeys, argc;
    char                                *s;
    size_t                               r, i, len, klen;
    const char                         **argv, *kind;
    size_t                              *argvlen;
    const ngx_http_clockchain_create_t  *cr;

    nkeys = 1;
    argc = NGX_HTTP_CLOCKCHAIN_CREATE_ARGS;

    for (r = 0; r < n; r++) {
        nkeys += (crs[r].idempotency ? 1 : 0) + (int) crs[r].njobs;
        argc += NGX_HTTP_CLOCKCHAIN_CREATE_REQ_ARGS
                + NGX_HTTP_CLOCKCHAIN_CREATE_JOB_ARGS * (int) crs[r].njobs;
    }

    argc += nkeys;

    argv = alloc(ctx, argc * sizeof(char *));
    argvlen = alloc(ctx, argc * sizeof(size_t));

    if (argv == NULL || argvlen == NULL) {
        return -1;
    }

    k = 0;

    s = ngx_http_clockchain_key_make(cf->prefix, cf->prefix_len, "queue",
                                     NULL, 0, alloc, ctx, &len);
    if (s == NULL) {
        return -1;
    }

    argv[k] = s;
    argvlen[k++] = len;

    a = nkeys;

    argv[a] = NGX_HTTP_CLOCKCHAIN_SCHEMA;
    argvlen[a++] = sizeof(NGX_HTTP_CLOCKCHAIN_SCHEMA) - 1;

    argv[a] = ngx_http_clockchain_create_num(cf->max_pending, alloc, ctx,
                                             &argvlen[a]);
    if (argv[a++] == NULL) {
        return -1;
    }

    argv[a] = NGX_HTTP_CLOCKCHAIN_IDEMPOTENCY_TTL;
    argvlen[a++] = sizeof(NGX_HTTP_CLOCKCHAIN_IDEMPOTENCY_TTL) - 1;

    /* with fewer replicas online the WAIT could only time out: none made */
    argv[a] = ngx_http_clockchain_create_num(cf->replicas, alloc, ctx,
                                             &argvlen[a]);
    if (argv[a++] == NULL) {
        return -1;
    }

    argv[a] = ngx_http_clockchain_create_num(n, alloc, ctx, &argvlen[a]);
    if (argv[a++] == NULL) {
        return -1;
    }

    for (r = 0; r < n; r++) {
        cr = &crs[r];

        argv[a] = ngx_http_clockchain_create_num(cr->njobs, alloc, ctx,
                                                 &argvlen[a]);
        if (argv[a++] == NULL) {
            return -1;
        }

        /*
         * The same key is the same request when all of this is the same:
         * the endpoint, the creator and the body, byte for byte.
         */

        if (cr->idempotency) {
            s = ngx_http_clockchain_key_make(cf->prefix, cf->prefix_len,
                                             "idem:", cr->idempotency,
                                             cr->idempotency_len, alloc, ctx,
                                             &klen);
            if (s == NULL) {
                return -1;
            }

            argv[k] = s;
            argvlen[k++] = klen;

            kind = cr->bulk ? "bulk" : "generate";
            len = strlen(kind) + 1 + cr->user_len + 1 + cr->body_len;

            s = alloc(ctx, len + 1);
            if (s == NULL) {
                return -1;
            }

            argv[a] = s;
            argvlen[a++] = len;

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
            argv[a] = "";
            argvlen[a++] = 0;
        }

        /* checked in the same step as the jobs are written: a token
         * revoked since the request's check writes nothing */

        if (cr->token) {
            argv[a] = ngx_http_clockchain_key_make(cf->prefix,
                                                   cf->prefix_len,
                                                   "agent:tok:", cr->token,
                                                   cr->token_len, alloc, ctx,
                                                   &argvlen[a]);
            if (argv[a++] == NULL) {
                return -1;
            }

        } else {
            argv[a] = "";
            argvlen[a++] = 0;
        }

        argv[a] = cr->user;
        argvlen[a++] = cr->user_len;

        for (i = 0; i < cr->njobs; i++) {
            s = ngx_http_clockchain_key_make(cf->prefix, cf->prefix_len,
                                             "job:", cr->jobs[i].id,
                                             NGX_HTTP_CLOCKCHAIN_ID_LEN,
                                             alloc, ctx, &len);
            if (s == NULL) {
                return -1;
            }

            argv[k] = s;
            argvlen[k++] = len;

            argv[a] = cr->jobs[i].id;
            argvlen[a++] = NGX_HTTP_CLOCKCHAIN_ID_LEN;
            argv[a] = cr->jobs[i].created_at;
            argvlen[a++] = NGX_HTTP_CLOCKCHAIN_TIME_LEN;
            argv[a] = cr->reqs[i].query;
            argvlen[a++] = cr->reqs[i].query_len;
            argv[a] = cr->reqs[i].preset;
            argvlen[a++] = strlen(cr->reqs[i].preset);
            argv[a] = cr->reqs[i].visibility;
            argvlen[a++] = strlen(cr->reqs[i].visibility);
        }
    }

    out->nkeys = nkeys;
    out->argc = argc;
    out->argv = argv;
    out->argvlen = argvlen;

    return 0;
}


/* a number's digits, without printf */

static char *
ngx_http_clockchain_create_num(uint64_t v, ngx_http_clockchain_alloc_pt alloc,
    void *ctx, size_t *len)
{
    char  *s, buf[NGX_HTTP_CLOCKCHAIN_NUM_LEN], *p;

    p = buf + sizeof(buf);

    do {
        *--p = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    *len = buf + sizeof(buf) - p;

    s = alloc(ctx, *len + 1);
    if (s == NULL) {
        return NULL;
    }

    memcpy(s, p, *len);
    s[*len] = '\0';

    return s;
}

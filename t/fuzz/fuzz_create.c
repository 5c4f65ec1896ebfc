
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * libFuzzer target: a whole create request as the handlers build it
 * (src/ngx_http_clockchain_create.c), headers included, in a create.lua
 * call of one to four requests, as the group commit sends them.  The
 * input is
 *
 *   byte 0      flags: 1 bulk, 2 an Idempotency-Key, 4 an X-User-Id,
 *               8 the longest prefix (128 bytes), 16 a writer's token,
 *               32 and 64 how many more copies of the request share the
 *               call (the odd ones without the key and the token)
 *   byte 1, 2   the lengths of the X-User-Id and Idempotency-Key values
 *   then        those values, then the body
 *
 * Headers the checks refuse must get a message; accepted ones with a body
 * the parsers accept must give create.lua's call exactly as its header
 * says: the keys under the prefix, in order, the fingerprint as endpoint,
 * creator and body byte for byte, four arguments per request and five per
 * job, each job's id drawn for it.  Every byte of every argument is read
 * back, so ASan reports any length past its buffer, each of which is
 * allocated on its own.
 */


#include "fuzz.h"
#include "ngx_http_clockchain_create.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
fz_is(const char *s, size_t len, const char *want, size_t want_len)
{
    fz_assert(len == want_len);
    fz_assert(memcmp(s, want, len) == 0);
}


static void
fz_is_key(const char *key, size_t len, const char *prefix, size_t plen,
    const char *name, const char *tail, size_t tail_len)
{
    size_t  nlen;

    nlen = strlen(name);

    fz_assert(len == plen + sizeof("{cc}:v1:") - 1 + nlen + tail_len);
    fz_assert(memcmp(key, prefix, plen) == 0);
    fz_assert(memcmp(key + plen, "{cc}:v1:", 8) == 0);
    fz_assert(memcmp(key + plen + 8, name, nlen) == 0);
    fz_assert(memcmp(key + plen + 8 + nlen, tail, tail_len) == 0);
    fz_assert(key[len] == '\0');
}


static void
fz_is_num(const char *s, size_t len, uint64_t want)
{
    char  buf[32];
    int   n;

    n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long) want);
    fz_is(s, len, buf, (size_t) n);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                                 n, rc, a, k;
    char                                err[NGX_HTTP_CLOCKCHAIN_ERR_LEN];
    char                                prefix[129];
    size_t                              ulen, ilen, i, j, r, nreq, sum;
    const char                         *user, *idem, *body, *detail, *kind;
    fz_pool_t                           pool = { NULL, 0, 0 };
    ngx_http_clockchain_argv_t          av;
    ngx_http_clockchain_create_t        crs[4], *cr;
    ngx_http_clockchain_create_conf_t   cf;
    ngx_http_clockchain_job_req_t      *reqs = NULL;

    if (size < 3) {
        return 0;
    }

    ulen = data[1];
    ilen = data[2];

    if (3 + ulen + ilen > size) {
        return 0;
    }

    user = (const char *) data + 3;
    idem = user + ulen;
    body = idem + ilen;

    memset(&cf, 0, sizeof(cf));
    memset(crs, 0, sizeof(crs));

    cr = &crs[0];

    cr->bulk = data[0] & 1;

    if (data[0] & 16) {
        /* a writer's token, as its SHA-256 hex */
        cr->token = "5e884898da28047151d0e56f8dc62927"
                    "73603d0d6aabbdd62a11ef721d1542d8";
        cr->token_len = 64;
    }

    if (data[0] & 8) {
        memset(prefix, 'p', 127);
        prefix[127] = ':';
        cf.prefix = prefix;
        cf.prefix_len = 128;

    } else {
        cf.prefix = "clockchain:";
        cf.prefix_len = sizeof("clockchain:") - 1;
    }

    if (data[0] & 4) {
        detail = ngx_http_clockchain_check_user(user, ulen);
        if (detail) {
            fz_assert(*detail != '\0');
            return 0;
        }

        cr->user = user;
        cr->user_len = ulen;

    } else {
        cr->user = "system";
        cr->user_len = sizeof("system") - 1;
    }

    if (data[0] & 2) {
        detail = ngx_http_clockchain_check_idempotency(idem, ilen);
        if (detail) {
            fz_assert(*detail != '\0');
            return 0;
        }

        cr->idempotency = idem;
        cr->idempotency_len = ilen;
    }

    cr->body = body;
    cr->body_len = size - 3 - ulen - ilen;
    cf.max_pending = data[1] * 1000;
    cf.replicas = data[2] % 4;

    if (cr->bulk) {
        n = ngx_http_clockchain_parse_bulk(body, cr->body_len, 100, &reqs,
                                           fz_alloc, &pool, err, sizeof(err));
    } else {
        n = ngx_http_clockchain_parse_generate(body, cr->body_len, &reqs,
                                               fz_alloc, &pool, err,
                                               sizeof(err));
    }

    fz_assert(n >= 0);

    if (n == 0) {
        fz_pool_free(&pool);
        return 0;
    }

    cr->reqs = reqs;
    cr->njobs = n;

    /* the copies: each its own jobs, the odd ones without key and token */

    nreq = 1 + ((data[0] >> 5) & 3);

    for (r = 0; r < nreq; r++) {
        if (r) {
            crs[r] = crs[0];

            if (r % 2) {
                crs[r].idempotency = NULL;
                crs[r].idempotency_len = 0;
                crs[r].token = NULL;
                crs[r].token_len = 0;
            }
        }

        crs[r].jobs = fz_alloc(&pool, n * sizeof(ngx_http_clockchain_job_t));

        rc = ngx_http_clockchain_create_jobs(crs[r].jobs, n, fz_alloc, &pool);
        fz_assert(rc == 0);

        fz_assert(ngx_http_clockchain_create_size(&crs[r], &cf)
                  > crs[r].body_len * (crs[r].idempotency ? 1 : 0));
    }

    rc = ngx_http_clockchain_create_argv(&cf, crs, nreq, fz_alloc, &pool,
                                         &av);
    fz_assert(rc == 0);

    /* the shape create.lua's header gives */

    k = 1;
    a = 5;

    for (r = 0; r < nreq; r++) {
        k += (crs[r].idempotency ? 1 : 0) + n;
        a += 4 + 5 * n;
    }

    fz_assert(av.nkeys == k);
    fz_assert(av.argc == av.nkeys + a);

    /* every byte of every argument is there to read */

    sum = 0;

    for (a = 0; a < av.argc; a++) {
        fz_assert(av.argv[a] != NULL);

        for (j = 0; j < av.argvlen[a]; j++) {
            sum += (unsigned char) av.argv[a][j];
        }
    }

    fz_assert(sum != (size_t) -1);

    k = 0;
    fz_is_key(av.argv[k], av.argvlen[k], cf.prefix, cf.prefix_len, "queue",
              "", 0);
    k++;

    /* schema, limits, how many requests */

    a = av.nkeys;
    fz_is(av.argv[a], av.argvlen[a], "v1", 2);
    a++;
    fz_is_num(av.argv[a], av.argvlen[a], cf.max_pending);
    a++;
    fz_is(av.argv[a], av.argvlen[a], "86400", 5);
    a++;
    fz_is_num(av.argv[a], av.argvlen[a], cf.replicas);
    a++;
    fz_is_num(av.argv[a], av.argvlen[a], nreq);
    a++;

    for (r = 0; r < nreq; r++) {
        cr = &crs[r];

        fz_is_num(av.argv[a], av.argvlen[a], (uint64_t) n);
        a++;

        /* the key, and the fingerprint: endpoint, creator, body */

        if (cr->idempotency) {
            fz_is_key(av.argv[k], av.argvlen[k], cf.prefix, cf.prefix_len,
                      "idem:", idem, ilen);
            k++;

            kind = cr->bulk ? "bulk" : "generate";
            fz_assert(av.argvlen[a]
                      == strlen(kind) + 2 + cr->user_len + cr->body_len);
            fz_assert(memcmp(av.argv[a], kind, strlen(kind)) == 0);
            fz_assert(av.argv[a][strlen(kind)] == '\n');
            fz_assert(memcmp(av.argv[a] + strlen(kind) + 1, cr->user,
                             cr->user_len) == 0);
            fz_assert(av.argv[a][strlen(kind) + 1 + cr->user_len] == '\n');
            fz_assert(memcmp(av.argv[a] + strlen(kind) + 2 + cr->user_len,
                             body, cr->body_len) == 0);

        } else {
            fz_assert(av.argvlen[a] == 0);
        }

        a++;

        if (cr->token) {
            fz_is_key(av.argv[a], av.argvlen[a], cf.prefix, cf.prefix_len,
                      "agent:tok:", cr->token, cr->token_len);
        } else {
            fz_assert(av.argvlen[a] == 0);
        }

        a++;

        fz_is(av.argv[a], av.argvlen[a], cr->user, cr->user_len);
        a++;

        for (i = 0; i < (size_t) n; i++, k++) {
            fz_assert(cr->jobs[i].status == NGX_HTTP_CLOCKCHAIN_PENDING);
            fz_assert(ngx_http_clockchain_valid_id(cr->jobs[i].id,
                                                   NGX_HTTP_CLOCKCHAIN_ID_LEN));
            fz_is_key(av.argv[k], av.argvlen[k], cf.prefix, cf.prefix_len,
                      "job:", cr->jobs[i].id, NGX_HTTP_CLOCKCHAIN_ID_LEN);

            fz_is(av.argv[a], av.argvlen[a], cr->jobs[i].id,
                  NGX_HTTP_CLOCKCHAIN_ID_LEN);
            a++;
            fz_assert(av.argvlen[a] == NGX_HTTP_CLOCKCHAIN_TIME_LEN);
            fz_assert(ngx_http_clockchain_iso_parse(av.argv[a]) > 0);
            fz_assert(av.argv[a] == cr->jobs[i].created_at);
            a++;
            fz_is(av.argv[a], av.argvlen[a], reqs[i].query,
                  reqs[i].query_len);
            a++;
            fz_is(av.argv[a], av.argvlen[a], reqs[i].preset,
                  strlen(reqs[i].preset));
            a++;
            fz_is(av.argv[a], av.argvlen[a], reqs[i].visibility,
                  strlen(reqs[i].visibility));
            a++;
        }
    }

    fz_assert(k == av.nkeys);
    fz_assert(a == av.argc);

    /* ids are drawn for each job of each request */

    for (r = 1; r < nreq; r++) {
        for (i = 0; i < (size_t) n; i++) {
            fz_assert(memcmp(crs[r].jobs[i].id, crs[0].jobs[i].id,
                             NGX_HTTP_CLOCKCHAIN_ID_LEN) != 0);
        }
    }

    fz_pool_free(&pool);

    return 0;
}

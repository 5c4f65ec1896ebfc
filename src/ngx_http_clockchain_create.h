
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * Building a create request, as plain data: the checks of its headers, the
 * idempotency fingerprint and create.lua's keys and arguments.  Nothing
 * here calls into nginx, so a fuzzer links it with job.c alone and ASan
 * checks every buffer it writes.
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_CREATE_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_CREATE_H_INCLUDED_


#include <string.h>

#include "ngx_http_clockchain_job.h"


#define NGX_HTTP_CLOCKCHAIN_USER_MAX          255
#define NGX_HTTP_CLOCKCHAIN_IDEMPOTENCY_MAX   255

/* how long an Idempotency-Key is remembered, seconds */
#define NGX_HTTP_CLOCKCHAIN_IDEMPOTENCY_TTL   "86400"


/* what the requests of one create.lua call share */
typedef struct {
    const char       *prefix;            /* clockchain_redis prefix= */
    size_t            prefix_len;
    uint64_t          max_pending;       /* clockchain_max_pending */
    uint64_t          replicas;          /* clockchain_redis wait= */
} ngx_http_clockchain_create_conf_t;


/* what a POST /api/generate or /api/bulk-generate is made of */
typedef struct {
    unsigned          bulk;
    const char       *user;              /* the creator: checked, or "system" */
    size_t            user_len;
    const char       *idempotency;       /* checked, or NULL */
    size_t            idempotency_len;
    const char       *body;              /* as the client sent it */
    size_t            body_len;
    const char       *token;             /* the writer's SHA-256 hex, or NULL */
    size_t            token_len;

    /* its jobs, as parsed, and as ngx_http_clockchain_create_jobs() drew */
    const ngx_http_clockchain_job_req_t  *reqs;
    ngx_http_clockchain_job_t            *jobs;
    size_t                                njobs;
} ngx_http_clockchain_create_t;


/* a script call: KEYS then ARGV, as create.lua's header lists them */
typedef struct {
    int               nkeys;
    int               argc;
    const char      **argv;
    size_t           *argvlen;
} ngx_http_clockchain_argv_t;


/* NULL when the header's value is good, else what is wrong with it */
const char *ngx_http_clockchain_check_user(const char *s, size_t len);
const char *ngx_http_clockchain_check_idempotency(const char *s, size_t len);

/*
 * Draws n jobs' ids and creation times into jobs[0..n) (pending), in
 * memory from alloc(ctx): 0, or -1 when allocation failed, -2 when no
 * random bytes could be had.  Again for new ids after EXISTS.
 */
int ngx_http_clockchain_create_jobs(ngx_http_clockchain_job_t *jobs,
    size_t n, ngx_http_clockchain_alloc_pt alloc, void *ctx);

/* about the bytes a request adds to a create.lua call */
size_t ngx_http_clockchain_create_size(const ngx_http_clockchain_create_t *cr,
    const ngx_http_clockchain_create_conf_t *cf);

/*
 * create.lua's call for n requests, their jobs drawn; every buffer comes
 * from alloc(ctx), and the arguments point into the requests' memory
 * (their queries and bodies): 0, or -1 when allocation failed.
 */
int ngx_http_clockchain_create_argv(const ngx_http_clockchain_create_conf_t *cf,
    const ngx_http_clockchain_create_t *crs, size_t n,
    ngx_http_clockchain_alloc_pt alloc, void *ctx,
    ngx_http_clockchain_argv_t *out);

/* "<prefix>{cc}:<schema>:<name><tail>", NUL-ended: its length, its bytes */
#define ngx_http_clockchain_key_len(prefix_len, name, tail_len)               \
    ((prefix_len) + sizeof("{cc}:" NGX_HTTP_CLOCKCHAIN_SCHEMA ":") - 1        \
     + strlen(name) + (tail_len))

size_t ngx_http_clockchain_key_write(char *key, const char *prefix,
    size_t prefix_len, const char *name, const char *tail, size_t tail_len);
/* ... in alloc(ctx)ed memory */
char *ngx_http_clockchain_key_make(const char *prefix, size_t prefix_len,
    const char *name, const char *tail, size_t tail_len,
    ngx_http_clockchain_alloc_pt alloc, void *ctx, size_t *len);


#endif /* _NGX_HTTP_CLOCKCHAIN_CREATE_H_INCLUDED_ */

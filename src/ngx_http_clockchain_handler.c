
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * Content handlers of the jobs API: POST generate and bulk-generate create
 * jobs in Redis (one Lua script, all or none) and cache them in the zone;
 * GET jobs answers from the zone and falls back on Redis.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_stats.h"
#include "ngx_http_clockchain_shm.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_request.h"
#include "ngx_http_clockchain_agents.h"
#include "ngx_http_clockchain_events.h"
#include "ngx_http_clockchain_create.h"
#include "ngx_http_clockchain_store.h"
#include "ngx_http_clockchain_wait.h"
#include "ngx_http_clockchain_commit.h"


#define NGX_HTTP_CLOCKCHAIN_CREATE_TRIES   3



static ngx_int_t ngx_http_clockchain_create(ngx_http_request_t *r,
    ngx_uint_t bulk);
static void ngx_http_clockchain_create_body(ngx_http_request_t *r);
static void ngx_http_clockchain_create_writer(ngx_http_request_t *r);
static ngx_int_t ngx_http_clockchain_create_send(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx);
static const char *ngx_http_clockchain_pcopy(ngx_pool_t *pool,
    const char *s, size_t len);
static ngx_int_t ngx_http_clockchain_replay(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_clockchain_send_jobs(ngx_http_request_t *r,
    ngx_http_clockchain_job_t *jobs, ngx_uint_t n, ngx_uint_t array);
static ngx_int_t ngx_http_clockchain_send_cached(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx);
static ngx_int_t ngx_http_clockchain_job_lookup(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx);
static ngx_int_t ngx_http_clockchain_job_fetch(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx);
static void ngx_http_clockchain_fetch_done(void *data, redisReply *reply);
static ngx_int_t ngx_http_clockchain_fetch_failed(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx);


ngx_int_t
ngx_http_clockchain_generate_handler(ngx_http_request_t *r)
{
    return ngx_http_clockchain_create(r, 0);
}


ngx_int_t
ngx_http_clockchain_bulk_handler(ngx_http_request_t *r)
{
    return ngx_http_clockchain_create(r, 1);
}


static ngx_int_t
ngx_http_clockchain_create(ngx_http_request_t *r, ngx_uint_t bulk)
{
    ngx_int_t                        rc, n;
    ngx_str_t                        user, idempotency;
    const char                      *detail;
    ngx_http_clockchain_ctx_t       *ctx;
    ngx_http_clockchain_loc_conf_t  *llcf;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_clockchain_module);

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_clockchain_not_allowed(r, "POST");
    }

    rc = ngx_http_clockchain_auth(r, bulk);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (ngx_http_clockchain_json_content_type(r) != NGX_OK) {
        return ngx_http_clockchain_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                   "Content-Type must be application/json: send the body "
                   "as JSON with \"Content-Type: application/json\"");
    }

    if (r->headers_in.content_length_n > (off_t) llcf->max_body_size) {
        return ngx_http_clockchain_error(r,
                   NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                   "Request body too large: the limit is %uz bytes",
                   llcf->max_body_size);
    }

    detail = ngx_http_clockchain_user(r, &user);
    if (detail) {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST, "%s",
                                         detail);
    }

    if (user.len == 0) {
        ngx_str_set(&user, "system");
    }

    n = ngx_http_clockchain_header(r, "Idempotency-Key", &idempotency);

    if (n > 1) {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                   "Idempotency-Key: the header is given more than once");
    }

    if (n == 1) {
        detail = ngx_http_clockchain_check_idempotency(
                                               (char *) idempotency.data,
                                               idempotency.len);
        if (detail) {
            return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST, "%s",
                                             detail);
        }

    } else {
        ngx_str_null(&idempotency);
    }

    ctx = ngx_http_clockchain_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->bulk = bulk;
    ctx->created_by = user;
    ctx->idempotency = idempotency;

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_clockchain_create_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_clockchain_create_body(ngx_http_request_t *r)
{
    int                              n;
    char                             err[NGX_HTTP_CLOCKCHAIN_ERR_LEN];
    ngx_int_t                        rc;
    ngx_str_t                        body;
    ngx_http_clockchain_ctx_t       *ctx;
    ngx_http_clockchain_loc_conf_t  *llcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);
    llcf = ngx_http_get_module_loc_conf(r, ngx_http_clockchain_module);

    rc = ngx_http_clockchain_read_body(r, &body);

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->body = body;

    /* a chunked body has no Content-Length to check up front */

    if (body.len > llcf->max_body_size) {
        ngx_http_finalize_request(r, ngx_http_clockchain_error(r,
                                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "Request body too large: the limit is "
                                  "%uz bytes", llcf->max_body_size));
        return;
    }

    err[0] = '\0';

    if (ctx->bulk) {
        n = ngx_http_clockchain_parse_bulk((char *) body.data, body.len,
                                           llcf->bulk_max, &ctx->reqs,
                                           ngx_http_clockchain_palloc,
                                           r->pool, err, sizeof(err));

    } else {
        n = ngx_http_clockchain_parse_generate((char *) body.data, body.len,
                                               &ctx->reqs,
                                               ngx_http_clockchain_palloc,
                                               r->pool, err, sizeof(err));
    }

    if (n < 0) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (n == 0) {
        ngx_http_finalize_request(r, ngx_http_clockchain_error(r,
                                  NGX_HTTP_BAD_REQUEST, "%s", err));
        return;
    }

    ctx->njobs = n;

    ctx->jobs = ngx_pcalloc(r->pool, n * sizeof(ngx_http_clockchain_job_t));
    if (ctx->jobs == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (!ctx->bulk) {
        /* the original's require_write_auth (bulk needs the admin key) */
        rc = ngx_http_clockchain_writer_auth(r,
                                             NGX_HTTP_CLOCKCHAIN_AGENT_WRITE,
                                             ngx_http_clockchain_create_writer);
        if (rc == NGX_DONE) {
            return;
        }

        if (rc != NGX_DECLINED) {
            ngx_http_finalize_request(r, rc);
            return;
        }
    }

    rc = ngx_http_clockchain_create_send(r, ctx);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }

    /* else the reply finalizes the request */
}


/* the writer's token was found valid in Redis */

static void
ngx_http_clockchain_create_writer(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_clockchain_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);

    rc = ngx_http_clockchain_create_send(r, ctx);

    if (rc != NGX_DONE) {
        ngx_http_clockchain_finalize(r, rc);
    }
}


static ngx_int_t
ngx_http_clockchain_create_send(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx)
{
    int  rc;

    /* the ids and times are drawn here (create.c); the call is commit.c's */

    rc = ngx_http_clockchain_create_jobs(ctx->jobs, ctx->njobs,
                                         ngx_http_clockchain_palloc, r->pool);
    if (rc == -2) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                      "clockchain: getrandom() failed");
    }

    if (rc != 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_clockchain_commit_add(ctx) != NGX_OK) {
        return ngx_http_clockchain_unavailable(r, "Job store unavailable: "
                                               "Redis cannot be reached, "
                                               "retry later");
    }

    /* its result in the call's reply answers the request */
    return NGX_DONE;
}


/* the call could not be sent */

void
ngx_http_clockchain_create_unsent(ngx_http_clockchain_ctx_t *ctx)
{
    ngx_http_request_t  *r;

    r = ctx->request;

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                 "Job store unavailable: Redis cannot be "
                                 "reached, retry later"));
}


/*
 * This request's result in create.lua's reply: it is answered here, or
 * sent again with new ids (NGX_DONE), or waits for the call's WAIT
 * (NGX_AGAIN).
 */

ngx_int_t
ngx_http_clockchain_create_result(ngx_http_clockchain_ctx_t *ctx,
    redisReply *reply)
{
    u_char                           *p;
    ngx_int_t                         rc, online;
    ngx_uint_t                        i;
    ngx_http_request_t               *r;
    ngx_http_clockchain_main_conf_t  *mcf;

    r = ctx->request;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    /* the writer's token, revoked since the request's check */
    rc = ngx_http_clockchain_writer_revoked(r, reply);
    if (rc != NGX_DECLINED) {
        ngx_http_clockchain_finalize(r, rc);
        return NGX_DONE;
    }

    if ((reply && reply->type == REDIS_REPLY_INTEGER)
        || ngx_http_clockchain_bug(ACK))
    {
        ngx_http_clockchain_stat_add(created, ctx->njobs);

        for (i = 0; i < ctx->njobs; i++) {
            /* create.lua made them at version 1 */
            ngx_http_clockchain_store_cache(mcf, &ctx->jobs[i], 1,
                                            ctx->epoch);
        }

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "clockchain: created %ui job(s), first %*s",
                       ctx->njobs, (size_t) NGX_HTTP_CLOCKCHAIN_ID_LEN,
                       ctx->jobs[0].id);

        if (mcf->redis.wait && !ngx_http_clockchain_bug(ACK)) {
            /* answer once enough replicas have the jobs too */
            return NGX_AGAIN;
        }

        rc = ngx_http_clockchain_send_jobs(r, ctx->jobs, ctx->njobs,
                                           ctx->bulk);
        ngx_http_clockchain_finalize(r, rc);
        return NGX_DONE;
    }

    if (reply && reply->type == REDIS_REPLY_ARRAY) {
        /* the Idempotency-Key was seen with this request: the same jobs */
        rc = ngx_http_clockchain_replay(r, ctx, reply);

        if (rc == NGX_OK && mcf->redis.wait) {
            /* confirmed by the replicas like the first answer was to be */
            return NGX_AGAIN;
        }

        if (rc == NGX_OK) {
            rc = ngx_http_clockchain_send_jobs(r, ctx->jobs, ctx->njobs,
                                               ctx->bulk);
        }

        ngx_http_clockchain_finalize(r, rc);
        return NGX_DONE;
    }

    if (ngx_http_clockchain_redis_script_error(reply, "CONFLICT")) {
        rc = ngx_http_clockchain_error(r, NGX_HTTP_CONFLICT,
                                       "Idempotency-Key was already used "
                                       "with a different request");
        ngx_http_clockchain_finalize(r, rc);
        return NGX_DONE;
    }

    if (ngx_http_clockchain_redis_script_error(reply, "REPLICAS")) {
        /* "REPLICAS <online>": WAIT could only time out, nothing created */

        p = (u_char *) reply->str + reply->len;

        while (p > (u_char *) reply->str && p[-1] != ' ') {
            p--;
        }

        online = ngx_atoi(p, (u_char *) reply->str + reply->len - p);

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "clockchain: %ui replica(s) must confirm each job, "
                      "redis has %i online, not creating the job",
                      mcf->redis.wait, online);

        if (ngx_http_clockchain_add_header(r, "Retry-After",
                                           NGX_HTTP_CLOCKCHAIN_RETRY_AFTER)
            != NGX_OK)
        {
            ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_DONE;
        }

        rc = ngx_http_clockchain_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                       "Job store unavailable: %ui "
                                       "replica(s) must confirm each job, "
                                       "Redis has %i online; the job was "
                                       "not created, retry later",
                                       mcf->redis.wait, online);
        ngx_http_clockchain_finalize(r, rc);
        return NGX_DONE;
    }

    if (ngx_http_clockchain_redis_script_error(reply, "FULL")) {
        /* backpressure: nothing was created */

        if (ngx_http_clockchain_add_header(r, "Retry-After",
                                           NGX_HTTP_CLOCKCHAIN_RETRY_AFTER)
            != NGX_OK)
        {
            ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_DONE;
        }

        rc = ngx_http_clockchain_error(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                       "Too many pending jobs: the queue "
                                       "holds its maximum of %ui, retry "
                                       "later", mcf->max_pending);
        ngx_http_clockchain_finalize(r, rc);
        return NGX_DONE;
    }

    if (ngx_http_clockchain_redis_script_error(reply, "EXISTS")
        && ++ctx->tries < NGX_HTTP_CLOCKCHAIN_CREATE_TRIES)
    {
        /* a drawn id is taken: draw all again, nothing was written */

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "clockchain: job id collision, drawing new ids");

        rc = ngx_http_clockchain_create_send(r, ctx);

        if (rc != NGX_DONE) {
            ngx_http_clockchain_finalize(r, rc);
        }

        return NGX_DONE;
    }

    if (reply) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "clockchain: redis refused to create jobs: %s",
                      reply->type == REDIS_REPLY_ERROR ? reply->str
                                                       : "unexpected reply");
    }

    rc = ngx_http_clockchain_unavailable(r, "Job store unavailable: the job "
                                         "was not created, retry later");
    ngx_http_clockchain_finalize(r, rc);

    return NGX_DONE;
}


/*
 * WAIT: with Sentinel, a job acknowledged by the master alone can be lost
 * in a failover; clockchain_redis wait=N answers only once N replicas have
 * it (WAITAOF with waitaof=on: on their disks), and 503 otherwise (a retry
 * with the same Idempotency-Key is safe).  One WAIT after the call covers
 * every request in it (commit.c, store_wait()); reply is its answer, NULL
 * when there was none; sent is 0 when it could not be sent.
 */

void
ngx_http_clockchain_create_waited(ngx_http_clockchain_ctx_t *ctx,
    redisReply *reply, ngx_uint_t sent)
{
    ngx_int_t                         rc;
    const char                       *said;
    ngx_http_request_t               *r;
    ngx_http_clockchain_main_conf_t  *mcf;

    r = ctx->request;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    if (!sent) {
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Job store unavailable: the job could "
                                     "not be replicated, retry later"));
        return;
    }

    if (ngx_http_clockchain_store_confirmed(mcf, reply, &said)) {
        rc = ngx_http_clockchain_send_jobs(r, ctx->jobs, ctx->njobs,
                                           ctx->bulk);
        ngx_http_clockchain_finalize(r, rc);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "clockchain: %ui replica(s) did not confirm job %*s in "
                  "time (%s answered: %s)", mcf->redis.wait,
                  (size_t) NGX_HTTP_CLOCKCHAIN_ID_LEN, ctx->jobs[0].id,
                  mcf->redis.waitaof ? "WAITAOF" : "WAIT", said);

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                 "Job store unavailable: the job was not "
                                 "confirmed by a replica, retry later "
                                 "(with the same Idempotency-Key)"));
}


static ngx_int_t
ngx_http_clockchain_replay(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, redisReply *reply)
{
    size_t                      i, n;
    redisReply                **f;
    ngx_http_clockchain_job_t  *job;

    n = reply->elements - 1;

    if (n == 0 || n > ctx->njobs) {
        goto malformed;
    }

    for (i = 0; i < n; i++) {
        if (reply->element[i + 1]->type != REDIS_REPLY_ARRAY
            || reply->element[i + 1]->elements != 6)
        {
            goto malformed;
        }

        f = reply->element[i + 1]->element;
        job = &ctx->jobs[i];

        if (f[0]->len != NGX_HTTP_CLOCKCHAIN_ID_LEN
            || f[4]->len != NGX_HTTP_CLOCKCHAIN_TIME_LEN
            || (f[5]->len && f[5]->len != NGX_HTTP_CLOCKCHAIN_TIME_LEN))
        {
            goto malformed;
        }

        job->status = ngx_http_clockchain_status_parse(f[1]->str, f[1]->len);

        if (job->status == NGX_HTTP_CLOCKCHAIN_UNKNOWN) {
            goto malformed;
        }

        /* the reply is freed after this: copy what the answer needs */

        job->id = ngx_http_clockchain_pcopy(r->pool, f[0]->str, f[0]->len);
        job->created_at = ngx_http_clockchain_pcopy(r->pool, f[4]->str,
                                                    f[4]->len);
        job->completed_at = f[5]->len
                            ? ngx_http_clockchain_pcopy(r->pool, f[5]->str,
                                                        f[5]->len)
                            : NULL;
        job->path = NULL;
        job->error = NULL;

        if (job->status == NGX_HTTP_CLOCKCHAIN_COMPLETED && f[2]->len) {
            job->path = ngx_http_clockchain_pcopy(r->pool, f[2]->str,
                                                  f[2]->len);
            job->path_len = f[2]->len;
        }

        if (job->status == NGX_HTTP_CLOCKCHAIN_FAILED && f[3]->len) {
            job->error = ngx_http_clockchain_pcopy(r->pool, f[3]->str,
                                                   f[3]->len);
            job->error_len = f[3]->len;
        }

        if (job->id == NULL || job->created_at == NULL
            || (f[5]->len && job->completed_at == NULL)
            || (job->path_len && job->path == NULL)
            || (job->error_len && job->error == NULL))
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ctx->njobs = n;

    return NGX_OK;

malformed:

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "clockchain: the jobs of an idempotency key are missing "
                  "or malformed in redis");

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


static const char *
ngx_http_clockchain_pcopy(ngx_pool_t *pool, const char *s, size_t len)
{
    u_char  *p;

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s, len);

    return (const char *) p;
}


/* the job's answer as the zone wrote it (ngx_http_clockchain_shm_get()) */

static ngx_int_t
ngx_http_clockchain_send_cached(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx)
{
    const char  *status;

    /* what the access log shows, as ngx_http_clockchain_send_jobs() */

    ctx->log_id.data = ctx->id;
    ctx->log_id.len = NGX_HTTP_CLOCKCHAIN_ID_LEN;

    status = ngx_http_clockchain_status_name(ctx->cached_status);
    ctx->log_status.data = (u_char *) status;
    ctx->log_status.len = ngx_strlen(status);

    return ngx_http_clockchain_send(r, NGX_HTTP_OK, ctx->cached.data,
                                    ctx->cached.len);
}


static ngx_int_t
ngx_http_clockchain_send_jobs(ngx_http_request_t *r,
    ngx_http_clockchain_job_t *jobs, ngx_uint_t n, ngx_uint_t array)
{
    u_char                     *data, *p;
    size_t                      len;
    ngx_uint_t                  i;
    const char                 *status;
    ngx_http_clockchain_ctx_t  *ctx;

    /* what the access log shows: the job(s), and the state answered */

    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);

    if (ctx && n) {
        ctx->log_id.data = ngx_pnalloc(r->pool,
                                       n * (NGX_HTTP_CLOCKCHAIN_ID_LEN + 1));
        if (ctx->log_id.data) {
            p = ctx->log_id.data;

            for (i = 0; i < n; i++) {
                if (i) {
                    *p++ = ',';
                }

                p = ngx_cpymem(p, jobs[i].id, NGX_HTTP_CLOCKCHAIN_ID_LEN);
            }

            ctx->log_id.len = p - ctx->log_id.data;
        }

        status = ngx_http_clockchain_status_name(jobs[0].status);
        ctx->log_status.data = (u_char *) status;
        ctx->log_status.len = ngx_strlen(status);
    }

    len = array ? n + 1 : 0;

    for (i = 0; i < n; i++) {
        len += ngx_http_clockchain_job_json_len(&jobs[i]);
    }

    data = ngx_pnalloc(r->pool, len);
    if (data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = data;

    if (array) {
        *p++ = '[';
    }

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }

        p = (u_char *) ngx_http_clockchain_job_json((char *) p, &jobs[i]);
    }

    if (array) {
        *p++ = ']';
    }

    return ngx_http_clockchain_send(r, NGX_HTTP_OK, data, p - data);
}


ngx_int_t
ngx_http_clockchain_jobs_handler(ngx_http_request_t *r)
{
    u_char                           *id;
    size_t                            len;
    ngx_int_t                         rc, n;
    ngx_str_t                         value;
    ngx_msec_t                        timeout;
    ngx_http_clockchain_ctx_t        *ctx;
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_clockchain_loc_conf_t   *llcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_clockchain_not_allowed(r, "GET, HEAD");
    }

    rc = ngx_http_clockchain_auth(r, 0);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    /* the job id is what follows the location's prefix */

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    id = r->uri.data;
    len = r->uri.len;

    if (len >= clcf->name.len
        && ngx_strncmp(id, clcf->name.data, clcf->name.len) == 0)
    {
        id += clcf->name.len;
        len -= clcf->name.len;
    }

    if (!ngx_http_clockchain_valid_id((char *) id, len)) {
        return ngx_http_clockchain_error(r, NGX_HTTP_NOT_FOUND,
                                         "Job not found");
    }

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_clockchain_module);

    ctx = ngx_http_clockchain_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(ctx->id, id, NGX_HTTP_CLOCKCHAIN_ID_LEN);

    /* ?wait=N: answer when the job is finished, or after N seconds */

    if (ngx_http_arg(r, (u_char *) "wait", 4, &value) == NGX_OK) {
        n = ngx_atoi(value.data, value.len);

        if (n == NGX_ERROR) {
            return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                       "wait: must be a whole number of seconds");
        }

        if (n > 0) {
            timeout = (ngx_msec_t) ngx_min(n, 86400) * 1000;

            if (ngx_http_clockchain_wait_start(ctx,
                                               ngx_min(timeout, llcf->wait_max))
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    rc = ngx_http_clockchain_job_lookup(r, ctx);

    if (rc != NGX_DONE) {
        ngx_http_clockchain_wait_stop(ctx);
        return rc;
    }

    /* a client that goes away while it waits is noticed and cleaned up */
    r->read_event_handler = ngx_http_test_reading;

    r->main->count++;

    return NGX_DONE;
}


/*
 * Answers from the zone when it can be trusted, else asks Redis: a
 * finished job always, an unfinished one only while this worker hears
 * every change (subscribed, and cached since it last subscribed).
 * NGX_DONE: waiting, for Redis or for the job to finish.
 */

static ngx_int_t
ngx_http_clockchain_job_lookup(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx)
{
    ngx_int_t                         rc;
    ngx_http_clockchain_shm_meta_t    meta;
    ngx_http_clockchain_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    rc = ngx_http_clockchain_shm_get(mcf->shm_zone, ctx->id, r->pool,
                                     &ctx->cached_status, &ctx->cached,
                                     &meta);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->has_cached = (rc == NGX_OK);

    if (rc == NGX_OK) {
        if (ngx_http_clockchain_is_terminal(ctx->cached_status)) {
            return ngx_http_clockchain_send_cached(r, ctx);
        }

        if (meta.fresh && ngx_http_clockchain_events_subscribed()) {
            if (ngx_http_clockchain_wait_asleep(ctx)) {
                /* its change will be heard */
                ctx->wait_known = 1;
                return NGX_DONE;
            }

            return ngx_http_clockchain_send_cached(r, ctx);
        }
    }

    rc = ngx_http_clockchain_job_fetch(r, ctx);

    if (rc == NGX_DECLINED) {
        return ngx_http_clockchain_fetch_failed(r, ctx);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DONE;
}


/*
 * HMGET of the job, answered in ngx_http_clockchain_fetch_done().
 * NGX_DECLINED: Redis cannot be asked now.
 */

static ngx_int_t
ngx_http_clockchain_job_fetch(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx)
{
    ngx_http_clockchain_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    /* an answer is trusted only in the epoch it was asked in */
    ctx->epoch = ngx_http_clockchain_shm_epoch(mcf->shm_zone);

    ctx->op = ngx_http_clockchain_store_fetch(mcf, ctx->id,
                                              ngx_http_clockchain_fetch_done,
                                              ctx);

    return (ctx->op == NULL) ? NGX_DECLINED : NGX_OK;
}


/* a request woken from ?wait (wait.c): it answers with what there is */

void
ngx_http_clockchain_jobs_answer(ngx_http_clockchain_ctx_t *ctx)
{
    ngx_int_t  rc;

    rc = ngx_http_clockchain_job_lookup(ctx->request, ctx);

    if (rc != NGX_DONE) {
        ngx_http_clockchain_finalize(ctx->request, rc);
    }
}


/* a waiting request reads its job again (wait.c), and waits on */

ngx_int_t
ngx_http_clockchain_jobs_read(ngx_http_clockchain_ctx_t *ctx)
{
    return ngx_http_clockchain_job_fetch(ctx->request, ctx);
}


static void
ngx_http_clockchain_fetch_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    ngx_int_t                         rc;
    ngx_uint_t                        i;
    uint64_t                          version;
    redisReply                       *f[6];
    ngx_http_request_t               *r;
    ngx_http_clockchain_job_t         job;
    ngx_http_clockchain_main_conf_t  *mcf;

    r = ctx->request;
    ctx->op = NULL;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 6)
    {
        if (reply) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "clockchain: redis could not read job %*s: %s",
                          (size_t) NGX_HTTP_CLOCKCHAIN_ID_LEN, ctx->id,
                          reply->type == REDIS_REPLY_ERROR
                          ? reply->str : "unexpected reply");
        }

        if (ctx->wait_state == NGX_HTTP_CLOCKCHAIN_WAIT_REREAD
            || (ctx->wait_state == NGX_HTTP_CLOCKCHAIN_WAIT_STALE
                && ctx->wait_known))
        {
            /*
             * only a read again (a re-read that went stale when the
             * subscription came back once more is one too): it waits on,
             * and its timer answers
             */
            ctx->wait_state = NGX_HTTP_CLOCKCHAIN_WAIT_ASLEEP;
            return;
        }

        rc = ngx_http_clockchain_fetch_failed(r, ctx);
        goto done;
    }

    for (i = 0; i < 6; i++) {
        f[i] = reply->element[i];

        if (f[i]->type != REDIS_REPLY_STRING) {
            f[i] = NULL;
        }
    }

    if (f[0] == NULL) {
        rc = ngx_http_clockchain_error(r, NGX_HTTP_NOT_FOUND,
                                       "Job not found");
        goto done;
    }

    ngx_memzero(&job, sizeof(ngx_http_clockchain_job_t));

    job.id = (char *) ctx->id;
    job.status = ngx_http_clockchain_status_parse(f[0]->str, f[0]->len);

    if (job.status == NGX_HTTP_CLOCKCHAIN_UNKNOWN
        || f[3] == NULL || f[3]->len != NGX_HTTP_CLOCKCHAIN_TIME_LEN
        || (f[4] && f[4]->len != NGX_HTTP_CLOCKCHAIN_TIME_LEN))
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "clockchain: job %*s in redis is malformed",
                      (size_t) NGX_HTTP_CLOCKCHAIN_ID_LEN, ctx->id);
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    version = f[5] ? strtoull(f[5]->str, NULL, 10) : 0;

    /* the reply is freed when this returns: copy what the answer needs */

    job.created_at = ngx_pnalloc(r->pool, 2 * NGX_HTTP_CLOCKCHAIN_TIME_LEN);
    if (job.created_at == NULL) {
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        goto done;
    }

    ngx_memcpy((char *) job.created_at, f[3]->str,
               NGX_HTTP_CLOCKCHAIN_TIME_LEN);

    if (f[4]) {
        job.completed_at = job.created_at + NGX_HTTP_CLOCKCHAIN_TIME_LEN;
        ngx_memcpy((char *) job.completed_at, f[4]->str,
                   NGX_HTTP_CLOCKCHAIN_TIME_LEN);
    }

    if (job.status == NGX_HTTP_CLOCKCHAIN_COMPLETED && f[1]) {
        job.path = f[1]->str;
        job.path_len = f[1]->len;
    }

    if (job.status == NGX_HTTP_CLOCKCHAIN_FAILED && f[2]) {
        job.error = f[2]->str;
        job.error_len = f[2]->len;
    }

    ngx_http_clockchain_store_cache(mcf, &job, version, ctx->epoch);

    if (!ngx_http_clockchain_is_terminal(job.status)) {

        switch (ctx->wait_state) {

        case NGX_HTTP_CLOCKCHAIN_WAIT_STALE:
            /* read before the subscription came back: read once more */
            ctx->wait_state = NGX_HTTP_CLOCKCHAIN_WAIT_REREAD;

            if (ngx_http_clockchain_job_fetch(r, ctx) != NGX_OK) {
                ctx->wait_state = NGX_HTTP_CLOCKCHAIN_WAIT_ASLEEP;
            }

            return;

        case NGX_HTTP_CLOCKCHAIN_WAIT_ASLEEP:
        case NGX_HTTP_CLOCKCHAIN_WAIT_REREAD:
            /* not finished yet: the change will wake it */
            ctx->wait_state = NGX_HTTP_CLOCKCHAIN_WAIT_ASLEEP;
            ctx->wait_known = 1;
            return;

        case NGX_HTTP_CLOCKCHAIN_WAIT_WOKEN:
            /* woken while this was on its way: read after the change */
            ctx->wait_state = NGX_HTTP_CLOCKCHAIN_WAIT_NONE;

            rc = ngx_http_clockchain_job_lookup(r, ctx);

            if (rc == NGX_DONE) {
                return;
            }

            goto done;

        default: /* NGX_HTTP_CLOCKCHAIN_WAIT_NONE */
            break;
        }
    }

    rc = ngx_http_clockchain_send_jobs(r, &job, 1, 0);

done:

    ngx_http_clockchain_wait_stop(ctx);

    ngx_http_clockchain_finalize(r, rc);
}


static ngx_int_t
ngx_http_clockchain_fetch_failed(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx)
{
    if (ctx->has_cached) {
        /* stale beats nothing while Redis is away */
        return ngx_http_clockchain_send_cached(r, ctx);
    }

    return ngx_http_clockchain_unavailable(r, "Job store unavailable: Redis "
                                           "cannot be reached, retry later");
}

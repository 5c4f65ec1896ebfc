
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * Group commit of creates.  A worker has at most one create.lua call in
 * flight.  The POSTs whose jobs are ready while it is (or in the same turn
 * of the event loop) wait in a queue, and go to Redis together, as one
 * call, when it returns: Redis runs one script and the worker writes and
 * reads once for all of them.  A request still gets its own answer, only
 * once Redis has its jobs: create.lua decides each request as if it were a
 * call of its own, in order, all or none, and answers one result each.
 * A call is bounded (NGX_HTTP_CLOCKCHAIN_COMMIT_*); what does not fit
 * goes with the next.
 *
 * With clockchain_redis wait=N the POSTs ready in one turn go as one call
 * on a create connection of their own (redis_durable.c), and one WAIT
 * after it covers every request of the call that created or replayed
 * jobs.  Calls are not held back behind one in flight there: each is a
 * POST as redis_durable.c knows it, with its queue for a connection and
 * its deadline counted from the turn its requests were ready.
 *
 * A request that goes away while queued leaves the queue (nothing of it
 * is sent); one whose call is in flight leaves its slot empty, and its
 * result is dropped.  (An HTTP/1.x client that closes its connection is
 * not noticed before its answer is written, as before: its jobs are made.)
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_commit.h"
#include "ngx_http_clockchain_create.h"
#include "ngx_http_clockchain_agents.h"
#include "ngx_http_clockchain_shm.h"
#include "ngx_http_clockchain_store.h"


/* one create.lua call in flight: its requests, by their place in it */
typedef struct {
    ngx_http_clockchain_redis_op_t     *op;        /* the call, then WAIT */
    ngx_uint_t                          n;
    ngx_uint_t                          waiting;   /* for the WAIT */
    ngx_http_clockchain_ctx_t          *ctx[1];    /* NULL: gone */
} ngx_http_clockchain_commit_call_t;


typedef struct {
    ngx_http_clockchain_main_conf_t    *mcf;
    ngx_log_t                          *log;
    ngx_queue_t                         queue;
    ngx_event_t                         dispatch;
    ngx_http_clockchain_commit_call_t  *call;      /* in flight */
    ngx_pool_t                         *pool;      /* a call's arguments */
} ngx_http_clockchain_commit_t;


static void ngx_http_clockchain_commit_request(ngx_http_clockchain_ctx_t *ctx,
    ngx_http_clockchain_create_t *cr);
static void ngx_http_clockchain_commit_dispatch(ngx_event_t *ev);
static ngx_http_clockchain_commit_call_t *ngx_http_clockchain_commit_send(
    ngx_http_clockchain_commit_t *cm);
static void ngx_http_clockchain_commit_reply(void *data, redisReply *reply);
static void ngx_http_clockchain_commit_waited(void *data, redisReply *reply);
static void ngx_http_clockchain_commit_done(
    ngx_http_clockchain_commit_call_t *call);


static ngx_http_clockchain_commit_t  ngx_http_clockchain_commit;


ngx_int_t
ngx_http_clockchain_commit_init_process(ngx_cycle_t *cycle,
    ngx_http_clockchain_main_conf_t *mcf)
{
    ngx_http_clockchain_commit_t  *cm = &ngx_http_clockchain_commit;

    ngx_memzero(cm, sizeof(ngx_http_clockchain_commit_t));

    cm->mcf = mcf;
    cm->log = cycle->log;

    cm->pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, cycle->log);
    if (cm->pool == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_init(&cm->queue);

    cm->dispatch.handler = ngx_http_clockchain_commit_dispatch;
    cm->dispatch.data = cm;
    cm->dispatch.log = cycle->log;

    return NGX_OK;
}


void
ngx_http_clockchain_commit_exit_process(void)
{
    ngx_http_clockchain_commit_t  *cm = &ngx_http_clockchain_commit;

    if (cm->dispatch.posted) {
        ngx_delete_posted_event(&cm->dispatch);
    }

    if (cm->pool) {
        ngx_destroy_pool(cm->pool);
        cm->pool = NULL;
    }
}


ngx_int_t
ngx_http_clockchain_commit_add(ngx_http_clockchain_ctx_t *ctx)
{
    ngx_http_clockchain_create_t       cr;
    ngx_http_clockchain_create_conf_t  cf;
    ngx_http_clockchain_commit_t      *cm = &ngx_http_clockchain_commit;

    if (cm->pool == NULL || !ngx_http_clockchain_redis_available()) {
        return NGX_DECLINED;
    }

    ngx_http_clockchain_commit_request(ctx, &cr);

    cf.prefix = (char *) cm->mcf->redis.prefix.data;
    cf.prefix_len = cm->mcf->redis.prefix.len;
    cf.max_pending = cm->mcf->max_pending;
    cf.replicas = cm->mcf->redis.wait;

    ctx->commit_size = ngx_http_clockchain_create_size(&cr, &cf);

    ngx_queue_insert_tail(&cm->queue, &ctx->commit_queue);
    ctx->commit_queued = 1;

    /* after the I/O of this turn, so that what else is ready joins it */

    if ((cm->call == NULL || cm->mcf->redis.wait) && !cm->dispatch.posted) {
        ngx_post_event(&cm->dispatch, &ngx_posted_events);
    }

    return NGX_OK;
}


void
ngx_http_clockchain_commit_cancel(ngx_http_clockchain_ctx_t *ctx)
{
    ngx_http_clockchain_commit_call_t  *call;

    if (ctx->commit_queued) {
        ngx_queue_remove(&ctx->commit_queue);
        ctx->commit_queued = 0;
    }

    if (ctx->commit_call) {
        call = ctx->commit_call;
        call->ctx[ctx->commit_slot] = NULL;
        ctx->commit_call = NULL;
    }
}


/* a request as create.c takes it */

static void
ngx_http_clockchain_commit_request(ngx_http_clockchain_ctx_t *ctx,
    ngx_http_clockchain_create_t *cr)
{
    ngx_str_t  token;

    ngx_http_clockchain_writer_token(ctx->request, &token);

    cr->bulk = ctx->bulk;
    cr->user = (char *) ctx->created_by.data;
    cr->user_len = ctx->created_by.len;
    cr->idempotency = ctx->idempotency.len ? (char *) ctx->idempotency.data
                                           : NULL;
    cr->idempotency_len = ctx->idempotency.len;
    cr->body = (char *) ctx->body.data;
    cr->body_len = ctx->body.len;
    cr->token = token.len ? (char *) token.data : NULL;
    cr->token_len = token.len;
    cr->reqs = ctx->reqs;
    cr->jobs = ctx->jobs;
    cr->njobs = ctx->njobs;
}


/*
 * After the I/O of a turn: the queue goes out in calls.  Without wait= one
 * call at a time, the next when it returns.  With wait= a call goes each
 * turn, on a create connection of its own (redis_durable.c) with its WAIT
 * after it, as a single POST went: the connections' queue and its
 * deadline (timeout= from the moment the call is handed over, which is
 * the turn its requests were ready) apply to it unchanged, and the WAITs
 * of calls in flight are held by Redis at once.
 */

static void
ngx_http_clockchain_commit_dispatch(ngx_event_t *ev)
{
    ngx_uint_t                          wait;
    ngx_http_clockchain_commit_call_t  *call;
    ngx_http_clockchain_commit_t       *cm = ev->data;

    wait = cm->mcf->redis.wait != 0;

    while (!ngx_queue_empty(&cm->queue) && (wait || cm->call == NULL)) {
        call = ngx_http_clockchain_commit_send(cm);

        if (call && !wait) {
            cm->call = call;
        }
    }
}


/* the queue's head, as much of it as one call takes: the call, or NULL
 * when it could not be sent (its requests are answered) */

static ngx_http_clockchain_commit_call_t *
ngx_http_clockchain_commit_send(ngx_http_clockchain_commit_t *cm)
{
    int                                 rc;
    size_t                              bytes;
    uint32_t                            epoch;
    ngx_uint_t                          i, n, jobs;
    ngx_queue_t                        *q;
    ngx_http_clockchain_ctx_t          *ctx;
    ngx_http_clockchain_argv_t          av;
    ngx_http_clockchain_create_t       *crs;
    ngx_http_clockchain_create_conf_t   cf;
    ngx_http_clockchain_commit_call_t  *call;

    n = 0;
    jobs = 0;
    bytes = 0;

    for (q = ngx_queue_head(&cm->queue);
         q != ngx_queue_sentinel(&cm->queue);
         q = ngx_queue_next(q))
    {
        ctx = ngx_queue_data(q, ngx_http_clockchain_ctx_t, commit_queue);

        if (n
            && (n == NGX_HTTP_CLOCKCHAIN_COMMIT_REQUESTS
                || jobs + ctx->njobs > NGX_HTTP_CLOCKCHAIN_COMMIT_JOBS
                || bytes + ctx->commit_size > NGX_HTTP_CLOCKCHAIN_COMMIT_BYTES))
        {
            break;
        }

        n++;
        jobs += ctx->njobs;
        bytes += ctx->commit_size;
    }

    call = ngx_alloc(sizeof(ngx_http_clockchain_commit_call_t)
                     + (n - 1) * sizeof(ngx_http_clockchain_ctx_t *),
                     cm->log);
    if (call == NULL) {
        /* one at a time off the queue: an answer may cancel the next */
        for (i = 0; i < n && !ngx_queue_empty(&cm->queue); i++) {
            q = ngx_queue_head(&cm->queue);
            ctx = ngx_queue_data(q, ngx_http_clockchain_ctx_t, commit_queue);
            ngx_queue_remove(q);
            ctx->commit_queued = 0;
            ngx_http_clockchain_create_unsent(ctx);
        }

        return NULL;
    }

    call->op = NULL;
    call->n = n;
    call->waiting = 0;

    /* the zone's epoch when the creates were sent (see store_cache) */
    epoch = ngx_http_clockchain_shm_epoch(cm->mcf->shm_zone);

    for (i = 0; i < n; i++) {
        q = ngx_queue_head(&cm->queue);
        ctx = ngx_queue_data(q, ngx_http_clockchain_ctx_t, commit_queue);
        ngx_queue_remove(q);

        ctx->commit_queued = 0;
        ctx->commit_call = call;
        ctx->commit_slot = i;
        call->ctx[i] = ctx;
        ctx->epoch = epoch;
    }

    crs = ngx_palloc(cm->pool, n * sizeof(ngx_http_clockchain_create_t));

    rc = -1;

    if (crs) {
        for (i = 0; i < n; i++) {
            ngx_http_clockchain_commit_request(call->ctx[i], &crs[i]);
        }

        cf.prefix = (char *) cm->mcf->redis.prefix.data;
        cf.prefix_len = cm->mcf->redis.prefix.len;
        cf.max_pending = cm->mcf->max_pending;
        cf.replicas = cm->mcf->redis.wait;

        rc = ngx_http_clockchain_create_argv(&cf, crs, n,
                                             ngx_http_clockchain_palloc,
                                             cm->pool, &av);
    }

    /* the call copies what it sends: the arguments' memory is free again */

    if (rc == 0) {
        call->op = ngx_http_clockchain_store_create(cm->mcf, &av,
                                              ngx_http_clockchain_commit_reply,
                                              call);
    }

    ngx_reset_pool(cm->pool);

    if (call->op) {
        return call;
    }

    if (rc != 0) {
        ngx_log_error(NGX_LOG_ALERT, cm->log, 0,
                      "clockchain: could not allocate a create call");
    }

    for (i = 0; i < n; i++) {
        ctx = call->ctx[i];

        if (ctx) {
            call->ctx[i] = NULL;
            ctx->commit_call = NULL;
            ngx_http_clockchain_create_unsent(ctx);
        }
    }

    ngx_free(call);

    return NULL;
}


static void
ngx_http_clockchain_commit_reply(void *data, redisReply *reply)
{
    ngx_http_clockchain_commit_call_t *call = data;

    ngx_int_t                      rc;
    ngx_uint_t                     i, each;
    redisReply                    *one;
    ngx_http_clockchain_ctx_t     *ctx;
    ngx_http_clockchain_commit_t  *cm = &ngx_http_clockchain_commit;

    call->op = NULL;

    each = reply && reply->type == REDIS_REPLY_ARRAY
           && reply->elements == call->n;

    if (reply && !each && reply->type != REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, cm->log, 0,
                      "clockchain: redis answered create.lua for %ui "
                      "request(s) with an unexpected reply", call->n);
        reply = NULL;
    }

    /* an error for the whole call (OOM, ...) is every request's answer */

    for (i = 0; i < call->n; i++) {
        ctx = call->ctx[i];

        if (ctx == NULL) {
            continue;
        }

        call->ctx[i] = NULL;
        ctx->commit_call = NULL;

        one = each ? reply->element[i] : reply;

        rc = ngx_http_clockchain_create_result(ctx, one);

        if (rc == NGX_AGAIN) {
            /* answered once the replicas have its jobs too */
            call->ctx[i] = ctx;
            ctx->commit_call = call;
            call->waiting++;
        }
    }

    if (call->waiting) {
        /* on the connection of the call, from its reply's handler */
        call->op = ngx_http_clockchain_store_wait(cm->mcf,
                                             ngx_http_clockchain_commit_waited,
                                             call);
        if (call->op) {
            return;
        }

        for (i = 0; i < call->n; i++) {
            ctx = call->ctx[i];

            if (ctx) {
                call->ctx[i] = NULL;
                ctx->commit_call = NULL;
                ngx_http_clockchain_create_waited(ctx, NULL, 0);
            }
        }
    }

    ngx_http_clockchain_commit_done(call);
}


static void
ngx_http_clockchain_commit_waited(void *data, redisReply *reply)
{
    ngx_http_clockchain_commit_call_t *call = data;

    ngx_uint_t                  i;
    ngx_http_clockchain_ctx_t  *ctx;

    call->op = NULL;

    for (i = 0; i < call->n; i++) {
        ctx = call->ctx[i];

        if (ctx) {
            call->ctx[i] = NULL;
            ctx->commit_call = NULL;
            ngx_http_clockchain_create_waited(ctx, reply, 1);
        }
    }

    ngx_http_clockchain_commit_done(call);
}


/* the call is over: the next one, with what queued meanwhile */

static void
ngx_http_clockchain_commit_done(ngx_http_clockchain_commit_call_t *call)
{
    ngx_http_clockchain_commit_t  *cm = &ngx_http_clockchain_commit;

    if (cm->call == call) {
        cm->call = NULL;
    }

    ngx_free(call);

    if (!ngx_queue_empty(&cm->queue) && !cm->dispatch.posted) {
        ngx_post_event(&cm->dispatch, &ngx_posted_events);
    }
}

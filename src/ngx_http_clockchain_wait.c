
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * Long-poll: GET /api/jobs/{id}?wait=N waits here until its job changes.
 * Waiters are grouped by job id in an rbtree of this worker; the events
 * subscriber (events.c) tells of each change and of each new subscription
 * through the functions registered in init_process, and knows nothing of
 * requests.  Each waiter has its timer; a guard timer, which nginx does not
 * cancel, keeps a leaving worker until every waiter has had its answer.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_request.h"
#include "ngx_http_clockchain_events.h"
#include "ngx_http_clockchain_wait.h"
#include "ngx_http_clockchain_stats.h"


#define NGX_HTTP_CLOCKCHAIN_WAIT_GUARD   250


typedef struct {
    ngx_rbtree_node_t                  node;       /* key: crc32 of the id */
    u_char                             id[NGX_HTTP_CLOCKCHAIN_ID_LEN];
    ngx_queue_t                        waiters;    /* of contexts */
} ngx_http_clockchain_wait_group_t;


typedef struct {
    ngx_rbtree_t                       groups;
    ngx_rbtree_node_t                  sentinel;
    ngx_uint_t                         nwaiters;
    ngx_event_t                        guard;
    ngx_log_t                         *log;
} ngx_http_clockchain_waiters_t;


static void ngx_http_clockchain_wait_changed(const u_char *id);
static void ngx_http_clockchain_wait_resubscribed(void);
static void ngx_http_clockchain_wait_wake(ngx_http_clockchain_ctx_t *ctx);
static void ngx_http_clockchain_wait_timeout(ngx_event_t *wev);
static void ngx_http_clockchain_wait_guard(ngx_event_t *gev);
static ngx_http_clockchain_wait_group_t *ngx_http_clockchain_wait_group(
    const u_char *id, uint32_t hash);
static void ngx_http_clockchain_wait_rbtree_insert_value(
    ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel);


static ngx_http_clockchain_waiters_t  ngx_http_clockchain_wait;


ngx_int_t
ngx_http_clockchain_wait_init_process(ngx_cycle_t *cycle)
{
    ngx_http_clockchain_waiters_t  *wt = &ngx_http_clockchain_wait;

    ngx_memzero(wt, sizeof(ngx_http_clockchain_waiters_t));

    wt->log = cycle->log;

    ngx_rbtree_init(&wt->groups, &wt->sentinel,
                    ngx_http_clockchain_wait_rbtree_insert_value);

    /* not cancelable: a leaving worker stays while anyone waits */
    wt->guard.handler = ngx_http_clockchain_wait_guard;
    wt->guard.log = cycle->log;
    wt->guard.data = wt;

    ngx_http_clockchain_events_on_change(ngx_http_clockchain_wait_changed,
                                     ngx_http_clockchain_wait_resubscribed);

    return NGX_OK;
}


void
ngx_http_clockchain_wait_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_clockchain_waiters_t  *wt = &ngx_http_clockchain_wait;

    if (wt->guard.timer_set) {
        ngx_del_timer(&wt->guard);
    }
}


/* the request waits from now on, at most timeout */

ngx_int_t
ngx_http_clockchain_wait_start(ngx_http_clockchain_ctx_t *ctx,
    ngx_msec_t timeout)
{
    uint32_t                           hash;
    ngx_http_request_t                *r;
    ngx_http_clockchain_wait_group_t  *g;
    ngx_http_clockchain_waiters_t   *wt = &ngx_http_clockchain_wait;

    r = ctx->request;
    hash = ngx_crc32_short(ctx->id, NGX_HTTP_CLOCKCHAIN_ID_LEN);

    g = ngx_http_clockchain_wait_group(ctx->id, hash);

    if (g == NULL) {
        g = ngx_alloc(sizeof(ngx_http_clockchain_wait_group_t),
                      r->connection->log);
        if (g == NULL) {
            return NGX_ERROR;
        }

        g->node.key = hash;
        ngx_memcpy(g->id, ctx->id, NGX_HTTP_CLOCKCHAIN_ID_LEN);
        ngx_queue_init(&g->waiters);

        ngx_rbtree_insert(&wt->groups, &g->node);
    }

    ngx_queue_insert_tail(&g->waiters, &ctx->wait_queue);
    ctx->wait_group = g;
    ctx->wait_state = NGX_HTTP_CLOCKCHAIN_WAIT_ASLEEP;

    ctx->wait_timer.handler = ngx_http_clockchain_wait_timeout;
    ctx->wait_timer.data = ctx;
    ctx->wait_timer.log = r->connection->log;
    ctx->wait_timer.cancelable = 1;

    ngx_add_timer(&ctx->wait_timer, timeout);

    ngx_http_clockchain_stat_add(waiters, 1);

    if (wt->nwaiters++ == 0 && !wt->guard.timer_set) {
        ngx_add_timer(&wt->guard, NGX_HTTP_CLOCKCHAIN_WAIT_GUARD);
    }

    return NGX_OK;
}


/* the request waits no more (it answers, or goes away) */

void
ngx_http_clockchain_wait_stop(ngx_http_clockchain_ctx_t *ctx)
{
    ngx_http_clockchain_wait_group_t  *g;
    ngx_http_clockchain_waiters_t   *wt = &ngx_http_clockchain_wait;

    ctx->wait_state = NGX_HTTP_CLOCKCHAIN_WAIT_NONE;

    if (ctx->wait_timer.timer_set) {
        ngx_del_timer(&ctx->wait_timer);
    }

    g = ctx->wait_group;

    if (g == NULL) {
        return;
    }

    ctx->wait_group = NULL;
    ngx_queue_remove(&ctx->wait_queue);

    if (ngx_queue_empty(&g->waiters)) {
        ngx_rbtree_delete(&wt->groups, &g->node);
        ngx_free(g);
    }

    ngx_http_clockchain_stat_add(waiters, (ngx_atomic_int_t) -1);

    if (--wt->nwaiters == 0 && wt->guard.timer_set) {
        ngx_del_timer(&wt->guard);
    }
}


/* events.c: job id changed somewhere in the fleet */

static void
ngx_http_clockchain_wait_changed(const u_char *id)
{
    ngx_uint_t                         last;
    ngx_queue_t                       *q;
    ngx_http_clockchain_ctx_t         *ctx;
    ngx_http_clockchain_wait_group_t  *g;

    g = ngx_http_clockchain_wait_group(id,
                           ngx_crc32_short((u_char *) id,
                                           NGX_HTTP_CLOCKCHAIN_ID_LEN));
    if (g == NULL) {
        return;
    }

    /* each wake takes its request off the group; the last one frees it */

    do {
        q = ngx_queue_head(&g->waiters);
        last = (ngx_queue_next(q) == ngx_queue_sentinel(&g->waiters));
        ctx = ngx_queue_data(q, ngx_http_clockchain_ctx_t, wait_queue);

        ngx_http_clockchain_wait_wake(ctx);

    } while (!last);
}


/*
 * events.c: the subscription is (back) up.  A change a request waits for
 * may have been published while nobody listened, and no event will say
 * so: every waiter of this worker reads its job again and sleeps on.  Only
 * commands are sent here, nothing answers, so the tree can be walked.
 */

static void
ngx_http_clockchain_wait_resubscribed(void)
{
    ngx_uint_t                         n;
    ngx_queue_t                       *q;
    ngx_rbtree_node_t                 *node, *root, *sentinel;
    ngx_http_clockchain_ctx_t         *ctx;
    ngx_http_clockchain_wait_group_t  *g;
    ngx_http_clockchain_waiters_t   *wt = &ngx_http_clockchain_wait;

    root = wt->groups.root;
    sentinel = wt->groups.sentinel;

    if (root == sentinel) {
        return;
    }

    n = 0;

    for (node = ngx_rbtree_min(root, sentinel);
         node;
         node = ngx_rbtree_next(&wt->groups, node))
    {
        g = (ngx_http_clockchain_wait_group_t *) node;

        for (q = ngx_queue_head(&g->waiters);
             q != ngx_queue_sentinel(&g->waiters);
             q = ngx_queue_next(q))
        {
            ctx = ngx_queue_data(q, ngx_http_clockchain_ctx_t, wait_queue);
            n++;

            if (ctx->op) {
                /* the answer on its way may predate the subscription */
                ctx->wait_state = NGX_HTTP_CLOCKCHAIN_WAIT_STALE;
                continue;
            }

            ctx->wait_state = NGX_HTTP_CLOCKCHAIN_WAIT_REREAD;

            if (ngx_http_clockchain_jobs_read(ctx) != NGX_OK) {
                /* Redis cannot be asked now: the waiter's timer answers */
                ctx->wait_state = NGX_HTTP_CLOCKCHAIN_WAIT_ASLEEP;
            }
        }
    }

    ngx_log_error(NGX_LOG_INFO, wt->log, 0,
                  "clockchain: %ui waiting request(s) read their job again "
                  "after the subscription", n);
}


/* a change, its timer, or nginx leaving: the request answers */

static void
ngx_http_clockchain_wait_wake(ngx_http_clockchain_ctx_t *ctx)
{
    ngx_http_clockchain_wait_stop(ctx);

    if (ctx->op) {
        /* the answer on its way may predate the change: read once more */
        ctx->wait_state = NGX_HTTP_CLOCKCHAIN_WAIT_WOKEN;
        return;
    }

    ngx_http_clockchain_jobs_answer(ctx);
}


static void
ngx_http_clockchain_wait_timeout(ngx_event_t *wev)
{
    ngx_http_clockchain_wait_wake(wev->data);
}


static void
ngx_http_clockchain_wait_guard(ngx_event_t *gev)
{
    ngx_queue_t                       *q;
    ngx_rbtree_node_t                 *node;
    ngx_http_clockchain_wait_group_t  *g;
    ngx_http_clockchain_waiters_t   *wt = gev->data;

    if (!(ngx_exiting || ngx_quit || ngx_terminate)) {
        ngx_add_timer(&wt->guard, NGX_HTTP_CLOCKCHAIN_WAIT_GUARD);
        return;
    }

    /* this worker is leaving: everyone waiting gets the state there is */

    while (wt->groups.root != wt->groups.sentinel) {
        node = ngx_rbtree_min(wt->groups.root, wt->groups.sentinel);
        g = (ngx_http_clockchain_wait_group_t *) node;

        q = ngx_queue_head(&g->waiters);

        ngx_http_clockchain_wait_wake(
                  ngx_queue_data(q, ngx_http_clockchain_ctx_t, wait_queue));
    }
}


static ngx_http_clockchain_wait_group_t *
ngx_http_clockchain_wait_group(const u_char *id, uint32_t hash)
{
    ngx_int_t                          rc;
    ngx_rbtree_node_t                 *node, *sentinel;
    ngx_http_clockchain_wait_group_t  *g;

    node = ngx_http_clockchain_wait.groups.root;
    sentinel = ngx_http_clockchain_wait.groups.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        g = (ngx_http_clockchain_wait_group_t *) node;
        rc = ngx_memcmp(id, g->id, NGX_HTTP_CLOCKCHAIN_ID_LEN);

        if (rc == 0) {
            return g;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_clockchain_wait_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t                 **p;
    ngx_http_clockchain_wait_group_t   *g, *gt;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            g = (ngx_http_clockchain_wait_group_t *) node;
            gt = (ngx_http_clockchain_wait_group_t *) temp;

            p = (ngx_memcmp(g->id, gt->id, NGX_HTTP_CLOCKCHAIN_ID_LEN) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}

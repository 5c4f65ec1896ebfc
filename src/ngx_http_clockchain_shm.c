
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * The node-local job cache: a hash table of job ids with an LRU queue in
 * a slab-allocated shared zone.  Redis stays the system of record; a full
 * zone evicts the least recently used jobs and never fails a request.
 *
 * A hash table, not the rbtree that ngx_http_limit_req_module uses: job ids
 * are random, so the buckets stay even, and with 10^5 jobs and more a walk
 * down the tree was ~17 cache misses per request (12% of a POST's worker
 * time in the bench); a bucket is one or two.  The table has a bucket for
 * every 512 bytes of the zone, allocated with the zone.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_shm.h"


#define NGX_HTTP_CLOCKCHAIN_SHM_EVICT     16
#define NGX_HTTP_CLOCKCHAIN_SHM_MAX_DATA  4096
#define NGX_HTTP_CLOCKCHAIN_SHM_BUCKET    512     /* zone bytes per bucket */


typedef struct ngx_http_clockchain_shm_node_s  ngx_http_clockchain_shm_node_t;


struct ngx_http_clockchain_shm_node_s {
    ngx_http_clockchain_shm_node_t  *next;   /* in its bucket */
    ngx_queue_t                  queue;
    ngx_msec_t                   updated;
    uint64_t                     version;    /* the job's, in Redis */
    time_t                       expire;     /* as in Redis; 0: never */
    uint32_t                     hash;
    uint32_t                     epoch;
    u_char                       stale;      /* changed since: a miss */
    u_short                      path_len;
    u_short                      error_len;
    u_char                       status;
    u_char                       has_completed;
    u_char                       id[NGX_HTTP_CLOCKCHAIN_ID_LEN];
    u_char                       created_at[NGX_HTTP_CLOCKCHAIN_TIME_LEN];
    u_char                       completed_at[NGX_HTTP_CLOCKCHAIN_TIME_LEN];
    u_char                       data[1];    /* path, then error */
};


typedef struct {
    ngx_http_clockchain_shm_node_t  **buckets;
    uint32_t                     mask;       /* buckets - 1, a power of 2 */
    ngx_queue_t                  lru;
    ngx_atomic_t                 jobs;

    /* bumped when a worker (re)subscribes to the events channel */
    uint32_t                     epoch;

    ngx_http_clockchain_stats_t  stats;

    /* the runner role: one worker of this nginx holds it */
    ngx_pid_t                    runner_pid;
    ngx_msec_t                   runner_beat;
    ngx_uint_t                   runner_generation;
} ngx_http_clockchain_shm_sh_t;


typedef struct {
    ngx_http_clockchain_shm_sh_t  *sh;
    ngx_slab_pool_t               *shpool;
} ngx_http_clockchain_shm_ctx_t;


static ngx_int_t ngx_http_clockchain_shm_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_clockchain_shm_link(ngx_http_clockchain_shm_ctx_t *ctx,
    ngx_http_clockchain_shm_node_t *cn);
static ngx_http_clockchain_shm_node_t *ngx_http_clockchain_shm_lookup(
    ngx_http_clockchain_shm_ctx_t *ctx, const u_char *id, uint32_t hash);
static void ngx_http_clockchain_shm_free_node(
    ngx_http_clockchain_shm_ctx_t *ctx, ngx_http_clockchain_shm_node_t *cn);
static ngx_http_clockchain_shm_node_t *ngx_http_clockchain_shm_alloc(
    ngx_shm_zone_t *shm_zone, size_t size);
static void ngx_http_clockchain_shm_mark_locked(ngx_shm_zone_t *shm_zone,
    const u_char *id, uint32_t hash, uint64_t version);


ngx_shm_zone_t *
ngx_http_clockchain_shm_add(ngx_conf_t *cf, ngx_str_t *name, size_t size)
{
    ngx_shm_zone_t                 *shm_zone;
    ngx_http_clockchain_shm_ctx_t  *ctx;

    shm_zone = ngx_shared_memory_add(cf, name, size,
                                     &ngx_http_clockchain_module);
    if (shm_zone == NULL) {
        return NULL;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "clockchain zone \"%V\" is already used", name);
        return NULL;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_clockchain_shm_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    shm_zone->init = ngx_http_clockchain_shm_init_zone;
    shm_zone->data = ctx;

    return shm_zone;
}


static ngx_int_t
ngx_http_clockchain_shm_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_clockchain_shm_ctx_t  *octx = data;

    size_t                          len, n;
    ngx_http_clockchain_shm_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        /* reload with the same name and size: keep the cached jobs */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool,
                             sizeof(ngx_http_clockchain_shm_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_memzero(ctx->sh, sizeof(ngx_http_clockchain_shm_sh_t));

    for (n = 64; n < shm_zone->shm.size / NGX_HTTP_CLOCKCHAIN_SHM_BUCKET;
         n *= 2)
    {
        /* void */
    }

    ctx->sh->buckets = ngx_slab_calloc(ctx->shpool,
                                   n * sizeof(ngx_http_clockchain_shm_node_t *));
    if (ctx->sh->buckets == NULL) {
        return NGX_ERROR;
    }

    ctx->sh->mask = (uint32_t) (n - 1);

    ngx_queue_init(&ctx->sh->lru);
    ctx->sh->jobs = 0;

    len = sizeof(" in clockchain zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in clockchain zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full zone is expected: we evict instead of logging "no memory" */
    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


static ngx_http_clockchain_shm_node_t *
ngx_http_clockchain_shm_lookup(ngx_http_clockchain_shm_ctx_t *ctx,
    const u_char *id, uint32_t hash)
{
    ngx_http_clockchain_shm_node_t  *cn;

    for (cn = ctx->sh->buckets[hash & ctx->sh->mask]; cn; cn = cn->next) {
        if (cn->hash == hash
            && ngx_memcmp(id, cn->id, NGX_HTTP_CLOCKCHAIN_ID_LEN) == 0)
        {
            return cn;
        }
    }

    return NULL;
}


static void
ngx_http_clockchain_shm_link(ngx_http_clockchain_shm_ctx_t *ctx,
    ngx_http_clockchain_shm_node_t *cn)
{
    ngx_http_clockchain_shm_node_t  **bucket;

    bucket = &ctx->sh->buckets[cn->hash & ctx->sh->mask];

    cn->next = *bucket;
    *bucket = cn;

    ngx_queue_insert_head(&ctx->sh->lru, &cn->queue);
    ctx->sh->jobs++;
}


ngx_int_t
ngx_http_clockchain_shm_get(ngx_shm_zone_t *shm_zone, const u_char *id,
    ngx_pool_t *pool, ngx_http_clockchain_job_t *job,
    ngx_http_clockchain_shm_meta_t *meta)
{
    u_char                          *p;
    size_t                           size;
    uint32_t                         hash;
    ngx_http_clockchain_shm_ctx_t   *ctx;
    ngx_http_clockchain_shm_node_t  *cn;

    ctx = shm_zone->data;
    hash = ngx_crc32_short((u_char *) id, NGX_HTTP_CLOCKCHAIN_ID_LEN);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    cn = ngx_http_clockchain_shm_lookup(ctx, id, hash);

    if (cn == NULL || cn->stale) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_DECLINED;
    }

    if (cn->expire && cn->expire <= ngx_time()) {
        /* Redis has let the finished job go: so does the zone */
        ngx_http_clockchain_shm_free_node(ctx, cn);
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_DECLINED;
    }

    ngx_queue_remove(&cn->queue);
    ngx_queue_insert_head(&ctx->sh->lru, &cn->queue);

    /* copy out under the lock: the node may be replaced right after */

    size = NGX_HTTP_CLOCKCHAIN_ID_LEN + 2 * NGX_HTTP_CLOCKCHAIN_TIME_LEN
           + cn->path_len + cn->error_len;

    p = ngx_pnalloc(pool, size);
    if (p == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    ngx_memcpy(p, cn->id, NGX_HTTP_CLOCKCHAIN_ID_LEN
                          + 2 * NGX_HTTP_CLOCKCHAIN_TIME_LEN);
    ngx_memcpy(p + NGX_HTTP_CLOCKCHAIN_ID_LEN
               + 2 * NGX_HTTP_CLOCKCHAIN_TIME_LEN,
               cn->data, cn->path_len + cn->error_len);

    job->status = cn->status;
    job->id = (char *) p;
    p += NGX_HTTP_CLOCKCHAIN_ID_LEN;
    job->created_at = (char *) p;
    p += NGX_HTTP_CLOCKCHAIN_TIME_LEN;
    job->completed_at = cn->has_completed ? (char *) p : NULL;
    p += NGX_HTTP_CLOCKCHAIN_TIME_LEN;

    job->path_len = cn->path_len;
    job->path = (job->status == NGX_HTTP_CLOCKCHAIN_COMPLETED) ? (char *) p
                                                                : NULL;
    p += cn->path_len;

    job->error_len = cn->error_len;
    job->error = (job->status == NGX_HTTP_CLOCKCHAIN_FAILED) ? (char *) p
                                                              : NULL;

    meta->age = ngx_current_msec - cn->updated;
    meta->version = cn->version;
    meta->fresh = (cn->epoch == ctx->sh->epoch);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


/*
 * Caches a job as Redis had it at version (0: not known).  An entry of a
 * newer version wins, and a finished job never goes back.  epoch is the
 * zone's when the read was sent, not now: a read sent before a worker
 * subscribed may predate a change nobody heard, so it must not be trusted
 * in the epoch that subscription began.
 */

void
ngx_http_clockchain_shm_put(ngx_shm_zone_t *shm_zone,
    const ngx_http_clockchain_job_t *job, uint64_t version, time_t expire,
    uint32_t epoch)
{
    size_t                           size, path_len, error_len;
    uint32_t                         hash;
    ngx_http_clockchain_shm_ctx_t   *ctx;
    ngx_http_clockchain_shm_node_t  *cn, *old;

    ctx = shm_zone->data;
    hash = ngx_crc32_short((u_char *) job->id, NGX_HTTP_CLOCKCHAIN_ID_LEN);

    path_len = job->path ? job->path_len : 0;
    error_len = job->error ? job->error_len : 0;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (path_len + error_len > NGX_HTTP_CLOCKCHAIN_SHM_MAX_DATA) {
        /*
         * not worth the zone: such a job is served from Redis, and only
         * its version is kept, so that no older answer is cached after it
         */
        if (version) {
            ngx_http_clockchain_shm_mark_locked(shm_zone, (u_char *) job->id,
                                                hash, version);

        } else {
            /* no version to hold: what is cached goes */
            old = ngx_http_clockchain_shm_lookup(ctx, (u_char *) job->id,
                                                 hash);
            if (old) {
                ngx_http_clockchain_shm_free_node(ctx, old);
            }
        }

        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return;
    }

    size = offsetof(ngx_http_clockchain_shm_node_t, data)
           + path_len + error_len;

    old = ngx_http_clockchain_shm_lookup(ctx, (u_char *) job->id, hash);

    if (old) {
        if (old->version > version
            || (!old->stale && old->version == version
                && ngx_http_clockchain_is_terminal(old->status)))
        {
            /* what is cached is newer, or the same and final */
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return;
        }

        if (!old->stale && ngx_http_clockchain_is_terminal(old->status)
            && !ngx_http_clockchain_is_terminal(job->status))
        {
            /* a job never goes back from a terminal state */
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return;
        }

        /* off the LRU while the new entry is allocated: not evicted */
        ngx_queue_remove(&old->queue);
    }

    cn = ngx_http_clockchain_shm_alloc(shm_zone, size);

    if (old) {
        ngx_queue_insert_head(&ctx->sh->lru, &old->queue);

        if (cn) {
            ngx_http_clockchain_shm_free_node(ctx, old);

        } else {
            /*
             * The zone had no room even after evicting: the old entry
             * stays as a marker of this version, or an answer Redis gave
             * before this change could be cached after it.
             */
            old->version = version;
            old->stale = 1;
        }
    }

    if (cn == NULL) {
        if (old == NULL) {
            /* a marker is the smallest entry: it may still fit */
            ngx_http_clockchain_shm_mark_locked(shm_zone, (u_char *) job->id,
                                                hash, version);
        }

        ngx_shmtx_unlock(&ctx->shpool->mutex);

        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "clockchain zone \"%V\" is full, job %*s not cached",
                      &shm_zone->shm.name,
                      (size_t) NGX_HTTP_CLOCKCHAIN_ID_LEN, job->id);
        return;
    }

    cn->hash = hash;
    cn->updated = ngx_current_msec;
    cn->version = version;
    cn->expire = expire;
    cn->epoch = epoch;
    cn->stale = 0;
    cn->status = (u_char) job->status;
    cn->path_len = (u_short) path_len;
    cn->error_len = (u_short) error_len;

    ngx_memcpy(cn->id, job->id, NGX_HTTP_CLOCKCHAIN_ID_LEN);
    ngx_memcpy(cn->created_at, job->created_at,
               NGX_HTTP_CLOCKCHAIN_TIME_LEN);

    cn->has_completed = (job->completed_at != NULL);

    if (job->completed_at) {
        ngx_memcpy(cn->completed_at, job->completed_at,
                   NGX_HTTP_CLOCKCHAIN_TIME_LEN);
    }

    if (path_len) {
        ngx_memcpy(cn->data, job->path, path_len);
    }

    if (error_len) {
        ngx_memcpy(cn->data + path_len, job->error, error_len);
    }

    ngx_http_clockchain_shm_link(ctx, cn);

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/* with the mutex held: a full zone gives up its least recently used jobs */

static ngx_http_clockchain_shm_node_t *
ngx_http_clockchain_shm_alloc(ngx_shm_zone_t *shm_zone, size_t size)
{
    ngx_uint_t                       i;
    ngx_queue_t                     *q;
    ngx_http_clockchain_shm_ctx_t   *ctx;
    ngx_http_clockchain_shm_node_t  *cn;

    ctx = shm_zone->data;

    for (i = 0; /* void */ ; i++) {
        cn = ngx_slab_alloc_locked(ctx->shpool, size);

        if (cn != NULL || i == NGX_HTTP_CLOCKCHAIN_SHM_EVICT
            || ngx_queue_empty(&ctx->sh->lru))
        {
            return cn;
        }

        q = ngx_queue_last(&ctx->sh->lru);
        ngx_http_clockchain_shm_free_node(ctx,
                ngx_queue_data(q, ngx_http_clockchain_shm_node_t, queue));
    }
}


/*
 * A job changed to version somewhere in the fleet: what is cached of an
 * older version is no longer served, and an answer that Redis gave before
 * the change cannot be cached afterwards (the marker holds the version).
 */

void
ngx_http_clockchain_shm_mark(ngx_shm_zone_t *shm_zone, const u_char *id,
    uint64_t version)
{
    ngx_http_clockchain_shm_ctx_t  *ctx;

    ctx = shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ngx_http_clockchain_shm_mark_locked(shm_zone, id,
                            ngx_crc32_short((u_char *) id,
                                            NGX_HTTP_CLOCKCHAIN_ID_LEN),
                            version);

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


static void
ngx_http_clockchain_shm_mark_locked(ngx_shm_zone_t *shm_zone,
    const u_char *id, uint32_t hash, uint64_t version)
{
    ngx_http_clockchain_shm_ctx_t   *ctx;
    ngx_http_clockchain_shm_node_t  *cn;

    ctx = shm_zone->data;

    cn = ngx_http_clockchain_shm_lookup(ctx, id, hash);

    if (cn) {
        if (cn->version < version) {
            cn->version = version;
            cn->stale = 1;
        }

        return;
    }

    cn = ngx_http_clockchain_shm_alloc(shm_zone,
                               offsetof(ngx_http_clockchain_shm_node_t, data));
    if (cn == NULL) {
        return;
    }

    ngx_memzero(cn, offsetof(ngx_http_clockchain_shm_node_t, data));

    cn->hash = hash;
    cn->updated = ngx_current_msec;
    cn->version = version;
    cn->epoch = ctx->sh->epoch;
    cn->stale = 1;
    cn->status = NGX_HTTP_CLOCKCHAIN_UNKNOWN;
    ngx_memcpy(cn->id, id, NGX_HTTP_CLOCKCHAIN_ID_LEN);

    ngx_http_clockchain_shm_link(ctx, cn);
}


/*
 * The epoch now: taken when a read of a job is sent, and given to
 * ngx_http_clockchain_shm_put() with its answer.
 */

uint32_t
ngx_http_clockchain_shm_epoch(ngx_shm_zone_t *shm_zone)
{
    uint32_t                        epoch;
    ngx_http_clockchain_shm_ctx_t  *ctx;

    ctx = shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);
    epoch = ctx->sh->epoch;
    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return epoch;
}


/*
 * A worker (re)subscribed to the events channel: changes may have been
 * missed, so unfinished jobs cached before now, or read before now and
 * cached after, are asked of Redis again.
 */

void
ngx_http_clockchain_shm_new_epoch(ngx_shm_zone_t *shm_zone)
{
    ngx_http_clockchain_shm_ctx_t  *ctx;

    ctx = shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);
    ctx->sh->epoch++;
    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


static void
ngx_http_clockchain_shm_free_node(ngx_http_clockchain_shm_ctx_t *ctx,
    ngx_http_clockchain_shm_node_t *cn)
{
    ngx_http_clockchain_shm_node_t  **p;

    for (p = &ctx->sh->buckets[cn->hash & ctx->sh->mask];
         *p != cn;
         p = &(*p)->next)
    {
        /* void */
    }

    *p = cn->next;

    ngx_queue_remove(&cn->queue);
    ngx_slab_free_locked(ctx->shpool, cn);
    ctx->sh->jobs--;
}


/*
 * Takes or renews the runner role for pid.  The role passes to another
 * worker when its holder has not renewed it for ttl (it died or hangs);
 * every change of holder bumps the generation, so a holder that wakes up
 * after losing the role sees that it is no longer its own.
 */

ngx_http_clockchain_stats_t *
ngx_http_clockchain_shm_stats(ngx_shm_zone_t *shm_zone)
{
    ngx_http_clockchain_shm_ctx_t  *ctx = shm_zone->data;

    return &ctx->sh->stats;
}


/* jobs cached, pages of the zone in all and free, the runner's pid */

void
ngx_http_clockchain_shm_usage(ngx_shm_zone_t *shm_zone, ngx_uint_t *jobs,
    ngx_uint_t *pages, ngx_uint_t *free, ngx_pid_t *runner)
{
    ngx_http_clockchain_shm_ctx_t  *ctx = shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    *jobs = ctx->sh->jobs;
    *pages = (ctx->shpool->end - ctx->shpool->start) / ngx_pagesize;
    *free = ctx->shpool->pfree;
    *runner = ctx->sh->runner_pid;

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


ngx_int_t
ngx_http_clockchain_shm_runner_lease(ngx_shm_zone_t *shm_zone, ngx_pid_t pid,
    ngx_msec_t ttl, ngx_uint_t *generation)
{
    ngx_int_t                       rc;
    ngx_msec_int_t                  idle;
    ngx_http_clockchain_shm_ctx_t  *ctx;

    ctx = shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    idle = (ngx_msec_int_t) (ngx_current_msec - ctx->sh->runner_beat);

    if (ctx->sh->runner_pid == pid
        && ctx->sh->runner_generation == *generation)
    {
        ctx->sh->runner_beat = ngx_current_msec;
        rc = NGX_OK;

    } else if (ctx->sh->runner_pid == 0 || idle > (ngx_msec_int_t) ttl) {
        ctx->sh->runner_pid = pid;
        ctx->sh->runner_beat = ngx_current_msec;
        *generation = ++ctx->sh->runner_generation;
        rc = NGX_OK;

    } else {
        rc = NGX_DECLINED;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


void
ngx_http_clockchain_shm_runner_release(ngx_shm_zone_t *shm_zone,
    ngx_pid_t pid)
{
    ngx_http_clockchain_shm_ctx_t  *ctx;

    ctx = shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (ctx->sh->runner_pid == pid) {
        ctx->sh->runner_pid = 0;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}

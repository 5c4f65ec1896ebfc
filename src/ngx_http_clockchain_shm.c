
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
 *
 * A worker can die while it holds the lock (a crash, the OOM killer): the
 * master releases the lock, but the hash, the LRU or the slab pool itself
 * may be half changed.  Every change is made with sh->dirty set to the
 * changer's pid, and cleared only once the change is whole; the next holder
 * that finds it set empties the zone (the jobs are all in Redis) and lays
 * the pool out again.  A link found inconsistent on the way does the same.
 *
 * A job's path and error are kept in their JSON form, escaped once when the
 * job is cached: an answer from the zone is copied, never escaped again.
 * Ids are hashed with MurmurHash2 (ngx_murmur_hash2()).  What the zone
 * holds and how is its layout, NGX_HTTP_CLOCKCHAIN_SHM_LAYOUT: a reload
 * that finds the zone laid out otherwise does not share it (see
 * ngx_http_clockchain_shm_init_zone()).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_shm.h"


/*
 * The layout of the zone: the entries, their hash, the shared context.
 * Bumped with every change to any of them: workers of two layouts must
 * never share a zone.
 *   1  before the layout was recorded
 *   2  the layout recorded, first in the shared context
 *   3  a job's path and error in their JSON form; null ones told apart
 *   4  ids hashed with MurmurHash2, not CRC32
 */
#ifndef NGX_HTTP_CLOCKCHAIN_SHM_LAYOUT
#define NGX_HTTP_CLOCKCHAIN_SHM_LAYOUT    4
#endif

/* "cczone" and the layout, the first 8 bytes of the shared context */
#define NGX_HTTP_CLOCKCHAIN_SHM_MAGIC     0x63637a6f6e650000ULL

#define NGX_HTTP_CLOCKCHAIN_SHM_EVICT     16
#define NGX_HTTP_CLOCKCHAIN_SHM_MAX_DATA  4096    /* path and error, raw */

/* a path and an error in their JSON form: 6 bytes a byte at most */
#define NGX_HTTP_CLOCKCHAIN_SHM_MAX_JSON  (6 * NGX_HTTP_CLOCKCHAIN_SHM_MAX_DATA)

#define NGX_HTTP_CLOCKCHAIN_SHM_COMPLETED_AT  0x01
#define NGX_HTTP_CLOCKCHAIN_SHM_PATH          0x02    /* path not null */
#define NGX_HTTP_CLOCKCHAIN_SHM_ERROR         0x04    /* error not null */
#define NGX_HTTP_CLOCKCHAIN_SHM_BUCKET    512     /* zone bytes per bucket */

/* public moments: zone bytes per bucket, the marks kept for fills */
#define NGX_HTTP_CLOCKCHAIN_SHM_MBUCKET   4096
#define NGX_HTTP_CLOCKCHAIN_SHM_MARKS     256


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
    u_char                       reread;     /* Redis lost writes: see put */
    u_short                      path_len;   /* in data, escaped */
    u_short                      error_len;  /* in data, escaped */
    u_char                       status;
    u_char                       has;        /* ..._SHM_COMPLETED_AT, ... */
    u_char                       id[NGX_HTTP_CLOCKCHAIN_ID_LEN];
    u_char                       created_at[NGX_HTTP_CLOCKCHAIN_TIME_LEN];
    u_char                       completed_at[NGX_HTTP_CLOCKCHAIN_TIME_LEN];
    u_char                       data[1];    /* path, then error: JSON */
};


/*
 * A public moment's answer (GET without a key): the path, then the body.
 * seq is the zone's moment sequence when the read that gave it was sent.
 */
typedef struct ngx_http_clockchain_shm_mnode_s  ngx_http_clockchain_shm_mnode_t;

struct ngx_http_clockchain_shm_mnode_s {
    ngx_http_clockchain_shm_mnode_t  *next;  /* in its bucket */
    ngx_queue_t                  queue;
    uint64_t                     seq;
    size_t                       size;       /* as allocated */
    uint32_t                     hash;
    uint32_t                     body_len;
    u_short                      path_len;
    u_short                      status;
    u_char                       etag[NGX_HTTP_CLOCKCHAIN_ETAG_LEN];
    u_char                       data[1];
};


typedef struct {
    uint32_t                     hash;
    uint64_t                     seq;
} ngx_http_clockchain_shm_mark_t;


typedef struct {
    /*
     * NGX_HTTP_CLOCKCHAIN_SHM_MAGIC | NGX_HTTP_CLOCKCHAIN_SHM_LAYOUT, of
     * the build that laid the zone out: first, in every layout to come
     */
    uint64_t                     layout;

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

    /*
     * The pid of the process changing the hash, the LRU or the pool, 0
     * between changes: set once the lock is taken, cleared just before it
     * is released.  Found set, it names a holder that died mid-change.
     */
    ngx_atomic_t                 dirty;
    ngx_uint_t                   broken;     /* a link found inconsistent */
    ngx_uint_t                   off;        /* could not be laid out again */

    /* the test-only hook has fired (once per zone) */
    ngx_uint_t                   debug_fired;

    /*
     * Public moments, on an LRU of their own, in at most mmax bytes.
     * mseq counts the changes heard; the last MARKS of them are kept by
     * path hash, so that a read sent before a change to its path is not
     * cached after it.  Nothing older than mfloor is trusted: a change
     * to every moment, a new subscription, a drop.
     */
    ngx_http_clockchain_shm_mnode_t  **mbuckets;
    uint32_t                     mmask;
    ngx_queue_t                  mlru;
    ngx_uint_t                   moments;
    size_t                       mbytes;
    size_t                       mmax;
    uint64_t                     mseq;
    uint64_t                     mfloor;
    ngx_http_clockchain_shm_mark_t  marks[NGX_HTTP_CLOCKCHAIN_SHM_MARKS];
} ngx_http_clockchain_shm_sh_t;


typedef struct {
    ngx_http_clockchain_shm_sh_t  *sh;
    ngx_slab_pool_t               *shpool;
} ngx_http_clockchain_shm_ctx_t;


/* what init_zone allocates, in this order, on an empty pool */
typedef struct {
    ngx_http_clockchain_shm_sh_t     *sh;
    ngx_http_clockchain_shm_node_t  **buckets;
    size_t                            nbuckets;
    ngx_http_clockchain_shm_mnode_t **mbuckets;
    size_t                            nmbuckets;
    u_char                           *log_ctx;
} ngx_http_clockchain_shm_layout_t;


static ngx_int_t ngx_http_clockchain_shm_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_clockchain_shm_layout(ngx_shm_zone_t *shm_zone,
    ngx_http_clockchain_shm_layout_t *lo);
static uint64_t ngx_http_clockchain_shm_layout_id(ngx_shm_zone_t *shm_zone);
static ngx_int_t ngx_http_clockchain_shm_lock(ngx_shm_zone_t *shm_zone);
static ngx_int_t ngx_http_clockchain_shm_lock_read(ngx_shm_zone_t *shm_zone);
static void ngx_http_clockchain_shm_changing(ngx_http_clockchain_shm_sh_t *sh);
static void ngx_http_clockchain_shm_unlock(ngx_shm_zone_t *shm_zone);
static void ngx_http_clockchain_shm_drop(ngx_shm_zone_t *shm_zone);
static ngx_int_t ngx_http_clockchain_shm_linked(
    ngx_http_clockchain_shm_ctx_t *ctx, ngx_queue_t *q);
static void ngx_http_clockchain_shm_link(ngx_http_clockchain_shm_ctx_t *ctx,
    ngx_http_clockchain_shm_node_t *cn);
static ngx_http_clockchain_shm_node_t *ngx_http_clockchain_shm_lookup(
    ngx_http_clockchain_shm_ctx_t *ctx, const u_char *id, uint32_t hash);
static ngx_int_t ngx_http_clockchain_shm_free_node(
    ngx_http_clockchain_shm_ctx_t *ctx, ngx_http_clockchain_shm_node_t *cn);
static ngx_http_clockchain_shm_node_t *ngx_http_clockchain_shm_alloc(
    ngx_shm_zone_t *shm_zone, size_t size);
static void ngx_http_clockchain_shm_mark_locked(ngx_shm_zone_t *shm_zone,
    const u_char *id, uint32_t hash, uint64_t version);
static void ngx_http_clockchain_shm_debug_count(void);
static ngx_int_t ngx_http_clockchain_shm_debug_hook(
    ngx_http_clockchain_shm_ctx_t *ctx);
static ngx_uint_t ngx_http_clockchain_shm_lost(
    ngx_http_clockchain_shm_node_t *cn, ngx_uint_t status, uint64_t version,
    const ngx_http_clockchain_job_t *job, ngx_str_t *json);
static void ngx_http_clockchain_shm_log_lost(ngx_shm_zone_t *shm_zone,
    const u_char *id, ngx_uint_t status, uint64_t version);
static void ngx_http_clockchain_shm_moments_init(
    ngx_http_clockchain_shm_sh_t *sh);
static ngx_http_clockchain_shm_mnode_t *ngx_http_clockchain_shm_moment_lookup(
    ngx_http_clockchain_shm_ctx_t *ctx, ngx_str_t *path, uint32_t hash);
static ngx_int_t ngx_http_clockchain_shm_moment_free(
    ngx_http_clockchain_shm_ctx_t *ctx, ngx_http_clockchain_shm_mnode_t *mn);
static ngx_int_t ngx_http_clockchain_shm_moment_evict(
    ngx_http_clockchain_shm_ctx_t *ctx);


/*
 * Test only (docs/hardening.md), from CLOCKCHAIN_DEBUG_CRASH_IN_ZONE in a
 * worker's environment (nginx's "env" directive).  The first time a worker
 * frees an entry after it has cached N jobs, the entry is out of its bucket
 * but still on the LRU, and then
 *   put:N     the worker kills itself (SIGKILL), holding the lock: the zone
 *             is left as a worker killed at that instruction leaves it;
 *   unlink:N  the worker leaves it so and goes on, as a bug would: the LRU
 *             and the hash disagree, with no dead holder to tell.
 * Once per zone.
 */
#define NGX_HTTP_CLOCKCHAIN_SHM_DEBUG_KILL    1
#define NGX_HTTP_CLOCKCHAIN_SHM_DEBUG_UNLINK  2

static ngx_int_t   ngx_http_clockchain_shm_debug_at = -1;  /* -1: not read */
static ngx_uint_t  ngx_http_clockchain_shm_debug_mode;
static ngx_uint_t  ngx_http_clockchain_shm_debug_puts;


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

    uint64_t                           layout, old;
    ngx_slab_pool_t                   *shpool;
    ngx_http_clockchain_shm_ctx_t     *ctx;
    ngx_http_clockchain_shm_layout_t   lo;

    ctx = shm_zone->data;
    layout = ngx_http_clockchain_shm_layout_id(shm_zone);

    if (octx) {
        /*
         * A reload with the same name and size: nginx hands over the zone
         * of the cycle before, cached jobs and all, and its workers go on
         * using it until they exit.  Shared only if it is laid out as this
         * build lays it out, as the zone itself says (octx is the other
         * build's struct, if another build made it).  Otherwise the reload
         * fails: laid out anew, the zone would be read by the old workers
         * in their layout; taken as it is, by the new ones in theirs.
         */
        shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
        old = shpool->data ? *(uint64_t *) shpool->data : 0;

        if (old != layout) {
            /* no magic: a build from before layouts were recorded */
            old = ((old & ~(uint64_t) 0xffff) == NGX_HTTP_CLOCKCHAIN_SHM_MAGIC)
                  ? old & 0xffff : 1;

            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "clockchain zone \"%V\" is laid out by another "
                          "build of the module (layout %uL, this build's "
                          "is %uL) and its workers still use it, so it "
                          "cannot be shared: restart nginx to use this "
                          "build (or give the zone another name or size)",
                          &shm_zone->shm.name, old, layout & 0xffff);
            return NGX_ERROR;
        }

        ctx->shpool = shpool;
        ctx->sh = shpool->data;

        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    /* nobody else sees the new zone yet: no lock */

    if (ngx_http_clockchain_shm_layout(shm_zone, &lo) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->sh = lo.sh;
    ctx->shpool->data = ctx->sh;

    ngx_memzero(ctx->sh, sizeof(ngx_http_clockchain_shm_sh_t));
    ngx_memzero(lo.buckets,
                lo.nbuckets * sizeof(ngx_http_clockchain_shm_node_t *));

    ctx->sh->layout = layout;

    ctx->sh->buckets = lo.buckets;
    ctx->sh->mask = (uint32_t) (lo.nbuckets - 1);

    ngx_queue_init(&ctx->sh->lru);
    ctx->sh->jobs = 0;

    ctx->sh->mbuckets = lo.mbuckets;
    ctx->sh->mmask = (uint32_t) (lo.nmbuckets - 1);
    ctx->sh->mmax = shm_zone->shm.size / 2;

    ngx_http_clockchain_shm_moments_init(ctx->sh);

    return NGX_OK;
}


/*
 * Allocates, on an empty pool, what the zone keeps for good: the shared
 * context, the buckets and the pool's log context.  The slab allocator is
 * deterministic, so on a pool laid out again the same calls return the
 * same addresses: ngx_http_clockchain_shm_drop() relies on it.
 */

static ngx_int_t
ngx_http_clockchain_shm_layout(ngx_shm_zone_t *shm_zone,
    ngx_http_clockchain_shm_layout_t *lo)
{
    size_t                          len, n;
    ngx_http_clockchain_shm_ctx_t  *ctx;

    ctx = shm_zone->data;

    lo->sh = ngx_slab_alloc_locked(ctx->shpool,
                                   sizeof(ngx_http_clockchain_shm_sh_t));
    if (lo->sh == NULL) {
        return NGX_ERROR;
    }

    for (n = 64; n < shm_zone->shm.size / NGX_HTTP_CLOCKCHAIN_SHM_BUCKET;
         n *= 2)
    {
        /* void */
    }

    lo->nbuckets = n;
    lo->buckets = ngx_slab_alloc_locked(ctx->shpool,
                                  n * sizeof(ngx_http_clockchain_shm_node_t *));
    if (lo->buckets == NULL) {
        return NGX_ERROR;
    }

    for (n = 64; n < shm_zone->shm.size / NGX_HTTP_CLOCKCHAIN_SHM_MBUCKET;
         n *= 2)
    {
        /* void */
    }

    lo->nmbuckets = n;
    lo->mbuckets = ngx_slab_alloc_locked(ctx->shpool,
                                 n * sizeof(ngx_http_clockchain_shm_mnode_t *));
    if (lo->mbuckets == NULL) {
        return NGX_ERROR;
    }

    len = sizeof(" in clockchain zone \"\"") + shm_zone->shm.name.len;

    lo->log_ctx = ngx_slab_alloc_locked(ctx->shpool, len);
    if (lo->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(lo->log_ctx, " in clockchain zone \"%V\"%Z",
                &shm_zone->shm.name);

    ctx->shpool->log_ctx = lo->log_ctx;

    /* a full zone is expected: we evict instead of logging "no memory" */
    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


/*
 * NGX_HTTP_CLOCKCHAIN_SHM_MAGIC and this build's layout.  Test only
 * (t/04-jobs-zone-layout.t): CLOCKCHAIN_DEBUG_ZONE_LAYOUT in the master's
 * environment names a file whose number is taken as the layout, read
 * each time the zone is set up, so that one nginx can be reloaded as if
 * onto a build of another layout.
 */

static uint64_t
ngx_http_clockchain_shm_layout_id(ngx_shm_zone_t *shm_zone)
{
    char        *file;
    u_char       buf[32];
    ssize_t      n;
    ngx_int_t    v;
    ngx_fd_t     fd;
    ngx_uint_t   layout;

    layout = NGX_HTTP_CLOCKCHAIN_SHM_LAYOUT;

    file = getenv("CLOCKCHAIN_DEBUG_ZONE_LAYOUT");

    if (file && *file) {
        fd = ngx_open_file(file, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

        if (fd != NGX_INVALID_FILE) {
            n = read(fd, buf, sizeof(buf));
            (void) ngx_close_file(fd);

            while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) {
                n--;
            }

            v = (n > 0) ? ngx_atoi(buf, n) : NGX_ERROR;

            if (v != NGX_ERROR && v <= 0xffff) {
                layout = (ngx_uint_t) v;
            }
        }

        ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                      "clockchain zone \"%V\": CLOCKCHAIN_DEBUG_ZONE_LAYOUT: "
                      "layout %ui", &shm_zone->shm.name, layout);
    }

    return NGX_HTTP_CLOCKCHAIN_SHM_MAGIC | (uint64_t) (layout & 0xffff);
}


/*
 * Takes the lock for a change of the hash, the LRU or the pool.  The zone
 * is emptied first if the last change was cut short.  NGX_DECLINED: the
 * zone is not used (ngx_http_clockchain_shm_unlock() all the same).
 */

static ngx_int_t
ngx_http_clockchain_shm_lock(ngx_shm_zone_t *shm_zone)
{
    ngx_int_t                      rc;
    ngx_http_clockchain_shm_ctx_t  *ctx;

    ctx = shm_zone->data;

    rc = ngx_http_clockchain_shm_lock_read(shm_zone);

    if (rc == NGX_OK) {
        ngx_http_clockchain_shm_changing(ctx->sh);
    }

    return rc;
}


/*
 * The lock for a read, that may become a change: the holder calls
 * ngx_http_clockchain_shm_changing() before its first store.  A read
 * leaves the zone's lines of memory as they were (no sh->dirty stored
 * and cleared): the other worker's next lock finds them in its cache.
 */

static ngx_int_t
ngx_http_clockchain_shm_lock_read(ngx_shm_zone_t *shm_zone)
{
    ngx_http_clockchain_shm_sh_t   *sh;
    ngx_http_clockchain_shm_ctx_t  *ctx;

    ctx = shm_zone->data;
    sh = ctx->sh;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    if (sh->off) {
        return NGX_DECLINED;
    }

    if (sh->dirty) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "clockchain zone \"%V\": process %P died while "
                      "changing it, its cached jobs are dropped",
                      &shm_zone->shm.name, (ngx_pid_t) sh->dirty);

        ngx_http_clockchain_shm_drop(shm_zone);

        if (sh->off) {
            return NGX_DECLINED;
        }

        /* emptied: a change of this holder's, cleared at its unlock */
        sh->dirty = (ngx_atomic_uint_t) ngx_pid;
        ngx_memory_barrier();
    }

    return NGX_OK;
}


/* with the lock held, before the first store of a change */

static void
ngx_http_clockchain_shm_changing(ngx_http_clockchain_shm_sh_t *sh)
{
    if (sh->dirty == (ngx_atomic_uint_t) ngx_pid) {
        return;
    }

    sh->dirty = (ngx_atomic_uint_t) ngx_pid;

    /* set before any store of the change, in the compiler and the CPU */
    ngx_memory_barrier();
}


static void
ngx_http_clockchain_shm_unlock(ngx_shm_zone_t *shm_zone)
{
    ngx_http_clockchain_shm_sh_t   *sh;
    ngx_http_clockchain_shm_ctx_t  *ctx;

    ctx = shm_zone->data;
    sh = ctx->sh;

    if (sh->broken && !sh->off) {
        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "clockchain zone \"%V\": its LRU and its hash "
                      "disagree, its cached jobs are dropped",
                      &shm_zone->shm.name);

        ngx_http_clockchain_shm_changing(sh);
        ngx_http_clockchain_shm_drop(shm_zone);
    }

    if (sh->dirty) {
        /* cleared after every store of the change */
        ngx_memory_barrier();

        sh->dirty = 0;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/*
 * With the mutex held: empties the zone.  A change cut short may have left
 * the slab pool itself inconsistent, so the pool is laid out again from
 * scratch and what init_zone allocated is allocated again: at the same
 * addresses, so the pointers every process holds stay good, and sh keeps
 * the counters, the epoch and the runner lease.  Should an address differ,
 * the zone is left unused (every lookup a miss) rather than trusted.
 */

static void
ngx_http_clockchain_shm_drop(ngx_shm_zone_t *shm_zone)
{
    ngx_http_clockchain_shm_sh_t      *sh;
    ngx_http_clockchain_shm_ctx_t     *ctx;
    ngx_http_clockchain_shm_layout_t   lo;

    ctx = shm_zone->data;
    sh = ctx->sh;

    ngx_slab_init(ctx->shpool);

    if (ngx_http_clockchain_shm_layout(shm_zone, &lo) != NGX_OK
        || lo.sh != sh
        || lo.buckets != sh->buckets
        || lo.nbuckets != (size_t) sh->mask + 1
        || lo.mbuckets != sh->mbuckets
        || lo.nmbuckets != (size_t) sh->mmask + 1)
    {
        sh->off = 1;

        ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, 0,
                      "clockchain zone \"%V\" could not be laid out again, "
                      "it is not used until nginx restarts",
                      &shm_zone->shm.name);
        return;
    }

    ngx_memzero(sh->buckets,
                lo.nbuckets * sizeof(ngx_http_clockchain_shm_node_t *));

    ngx_queue_init(&sh->lru);
    sh->jobs = 0;
    sh->broken = 0;

    /* as after a resubscribe: what was read before is not trusted after */
    sh->epoch++;

    ngx_http_clockchain_shm_moments_init(sh);
}


/* no moment cached, none trusted that was read before now */

static void
ngx_http_clockchain_shm_moments_init(ngx_http_clockchain_shm_sh_t *sh)
{
    ngx_memzero(sh->mbuckets,
                ((size_t) sh->mmask + 1)
                * sizeof(ngx_http_clockchain_shm_mnode_t *));

    ngx_queue_init(&sh->mlru);
    sh->moments = 0;
    sh->mbytes = 0;
    sh->mfloor = ++sh->mseq;
}


/*
 * An LRU link as a change cut short leaves it: NULL, outside the zone, or
 * not pointing back.  Marks the zone broken (it is emptied at unlock).
 */

static ngx_int_t
ngx_http_clockchain_shm_linked(ngx_http_clockchain_shm_ctx_t *ctx,
    ngx_queue_t *q)
{
    u_char  *start, *end;

    start = ctx->shpool->start;
    end = ctx->shpool->end;

    if ((u_char *) q >= start && (u_char *) q < end
        && (u_char *) q->prev >= start && (u_char *) q->prev < end
        && (u_char *) q->next >= start && (u_char *) q->next < end
        && q->prev->next == q && q->next->prev == q)
    {
        return NGX_OK;
    }

    ctx->sh->broken = 1;

    return NGX_ERROR;
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

    if (ngx_http_clockchain_shm_linked(ctx, &ctx->sh->lru) != NGX_OK) {
        /* the zone is emptied at unlock, cn with it */
        return;
    }

    bucket = &ctx->sh->buckets[cn->hash & ctx->sh->mask];

    cn->next = *bucket;
    *bucket = cn;

    ngx_queue_insert_head(&ctx->sh->lru, &cn->queue);
    ctx->sh->jobs++;
}


/*
 * The answer to GET of the job: its JSON object, written into one buffer
 * of the pool straight from the entry, whose path and error are in their
 * JSON form already.  A read under the lock: nothing is stored in the
 * zone unless the entry has expired or must move to the head of the LRU.
 */

ngx_int_t
ngx_http_clockchain_shm_get(ngx_shm_zone_t *shm_zone, const u_char *id,
    ngx_pool_t *pool, ngx_uint_t *status, ngx_str_t *answer,
    ngx_http_clockchain_shm_meta_t *meta)
{
    u_char                          *p;
    size_t                           size;
    uint32_t                         hash;
    ngx_http_clockchain_job_t        job;
    ngx_http_clockchain_shm_ctx_t   *ctx;
    ngx_http_clockchain_shm_node_t  *cn;

    ctx = shm_zone->data;
    hash = ngx_murmur_hash2((u_char *) id, NGX_HTTP_CLOCKCHAIN_ID_LEN);

    if (ngx_http_clockchain_shm_lock_read(shm_zone) != NGX_OK) {
        ngx_http_clockchain_shm_unlock(shm_zone);
        return NGX_DECLINED;
    }

    cn = ngx_http_clockchain_shm_lookup(ctx, id, hash);

    if (cn == NULL || cn->stale) {
        ngx_http_clockchain_shm_unlock(shm_zone);
        return NGX_DECLINED;
    }

    if (cn->expire && cn->expire <= ngx_time()) {
        /* Redis has let the finished job go: so does the zone */
        ngx_http_clockchain_shm_changing(ctx->sh);
        (void) ngx_http_clockchain_shm_free_node(ctx, cn);
        ngx_http_clockchain_shm_unlock(shm_zone);
        return NGX_DECLINED;
    }

    if (ngx_http_clockchain_shm_linked(ctx, &cn->queue) != NGX_OK
        || ngx_http_clockchain_shm_linked(ctx, &ctx->sh->lru) != NGX_OK)
    {
        ngx_http_clockchain_shm_unlock(shm_zone);
        return NGX_DECLINED;
    }

    if (ngx_queue_head(&ctx->sh->lru) != &cn->queue) {
        ngx_http_clockchain_shm_changing(ctx->sh);
        ngx_queue_remove(&cn->queue);
        ngx_queue_insert_head(&ctx->sh->lru, &cn->queue);
    }

    /* written under the lock: the node may be replaced right after */

    job.id = (char *) cn->id;
    job.status = cn->status;
    job.path = (cn->has & NGX_HTTP_CLOCKCHAIN_SHM_PATH) ? (char *) cn->data
                                                        : NULL;
    job.path_len = cn->path_len;
    job.error = (cn->has & NGX_HTTP_CLOCKCHAIN_SHM_ERROR)
                ? (char *) cn->data + cn->path_len : NULL;
    job.error_len = cn->error_len;
    job.created_at = (char *) cn->created_at;
    job.completed_at = (cn->has & NGX_HTTP_CLOCKCHAIN_SHM_COMPLETED_AT)
                       ? (char *) cn->completed_at : NULL;
    job.verbatim = 1;

    size = ngx_http_clockchain_job_json_len(&job);

    p = ngx_pnalloc(pool, size);
    if (p == NULL) {
        ngx_http_clockchain_shm_unlock(shm_zone);
        return NGX_ERROR;
    }

    answer->data = p;
    answer->len = (u_char *) ngx_http_clockchain_job_json((char *) p, &job)
                  - p;

    *status = cn->status;

    meta->age = ngx_current_msec - cn->updated;
    meta->version = cn->version;
    meta->fresh = (cn->epoch == ctx->sh->epoch);

    ngx_http_clockchain_shm_unlock(shm_zone);

    return NGX_OK;
}


/*
 * Caches a job as Redis had it at version (0: not known).  An entry of a
 * newer version wins, and a finished job never goes back; unless Redis
 * lost writes (see ngx_http_clockchain_shm_lost()): then what is cached
 * goes stale, and the next answer from Redis is cached whatever its
 * version.  epoch is the zone's when the read was sent, not now: a read
 * sent before a worker subscribed may predate a change nobody heard, so it
 * must not be trusted in the epoch that subscription began.
 */

void
ngx_http_clockchain_shm_put(ngx_shm_zone_t *shm_zone,
    const ngx_http_clockchain_job_t *job, uint64_t version, time_t expire,
    uint32_t epoch)
{
    u_char                          *p;
    size_t                           size;
    uint32_t                         hash;
    ngx_str_t                        json[2];
    ngx_uint_t                       fits;
    const char                      *path, *error;
    ngx_http_clockchain_shm_ctx_t   *ctx;
    ngx_http_clockchain_shm_node_t  *cn, *old;

    /* a job's path and error in their JSON form, before the lock */
    static u_char  buf[NGX_HTTP_CLOCKCHAIN_SHM_MAX_JSON];

    ctx = shm_zone->data;
    hash = ngx_murmur_hash2((u_char *) job->id, NGX_HTTP_CLOCKCHAIN_ID_LEN);

    /* a path only with "completed", an error only with "failed" */

    path = (job->status == NGX_HTTP_CLOCKCHAIN_COMPLETED) ? job->path : NULL;
    error = (job->status == NGX_HTTP_CLOCKCHAIN_FAILED) ? job->error : NULL;

    fits = (path ? job->path_len : 0) + (error ? job->error_len : 0)
           <= NGX_HTTP_CLOCKCHAIN_SHM_MAX_DATA;

    ngx_str_null(&json[0]);
    ngx_str_null(&json[1]);

    if (fits) {
        p = buf;

        if (path) {
            json[0].data = p;
            p = (u_char *) ngx_http_clockchain_json_escape((char *) p, path,
                                                           job->path_len);
            json[0].len = p - json[0].data;
        }

        if (error) {
            json[1].data = p;
            p = (u_char *) ngx_http_clockchain_json_escape((char *) p, error,
                                                           job->error_len);
            json[1].len = p - json[1].data;
        }
    }

    ngx_http_clockchain_shm_debug_count();

    if (ngx_http_clockchain_shm_lock(shm_zone) != NGX_OK) {
        ngx_http_clockchain_shm_unlock(shm_zone);
        return;
    }

    old = ngx_http_clockchain_shm_lookup(ctx, (u_char *) job->id, hash);

    if (old
        && ngx_http_clockchain_shm_lost(old, job->status, version, job,
                                        fits ? json : NULL))
    {
        old->stale = 1;
        old->reread = 1;

        ngx_http_clockchain_shm_unlock(shm_zone);

        ngx_http_clockchain_shm_log_lost(shm_zone, (u_char *) job->id,
                                         job->status, version);
        return;
    }

    if (!fits) {
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
                (void) ngx_http_clockchain_shm_free_node(ctx, old);
            }
        }

        ngx_http_clockchain_shm_unlock(shm_zone);
        return;
    }

    size = offsetof(ngx_http_clockchain_shm_node_t, data)
           + json[0].len + json[1].len;

    if (old && !old->reread) {
        if (old->version > version
            || (!old->stale && old->version == version
                && ngx_http_clockchain_is_terminal(old->status)))
        {
            /* what is cached is newer, or the same and final */
            ngx_http_clockchain_shm_unlock(shm_zone);
            return;
        }

        if (!old->stale && ngx_http_clockchain_is_terminal(old->status)
            && !ngx_http_clockchain_is_terminal(job->status))
        {
            /* a job never goes back from a terminal state */
            ngx_http_clockchain_shm_unlock(shm_zone);
            return;
        }
    }

    if (old && ngx_http_clockchain_shm_linked(ctx, &old->queue) != NGX_OK) {
        ngx_http_clockchain_shm_unlock(shm_zone);
        return;
    }

    if (old) {
        /* off the LRU while the new entry is allocated: not evicted */
        ngx_queue_remove(&old->queue);
    }

    cn = ngx_http_clockchain_shm_alloc(shm_zone, size);

    if (ctx->sh->broken) {
        /* the zone is emptied at unlock: old and cn go with it */
        ngx_http_clockchain_shm_unlock(shm_zone);
        return;
    }

    if (old) {
        if (ngx_http_clockchain_shm_linked(ctx, &ctx->sh->lru) != NGX_OK) {
            ngx_http_clockchain_shm_unlock(shm_zone);
            return;
        }

        ngx_queue_insert_head(&ctx->sh->lru, &old->queue);

        if (cn) {
            if (ngx_http_clockchain_shm_free_node(ctx, old) != NGX_OK) {
                ngx_http_clockchain_shm_unlock(shm_zone);
                return;
            }

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

        ngx_http_clockchain_shm_unlock(shm_zone);

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
    cn->reread = 0;
    cn->status = (u_char) job->status;
    cn->path_len = (u_short) json[0].len;
    cn->error_len = (u_short) json[1].len;
    cn->has = 0;

    ngx_memcpy(cn->id, job->id, NGX_HTTP_CLOCKCHAIN_ID_LEN);
    ngx_memcpy(cn->created_at, job->created_at,
               NGX_HTTP_CLOCKCHAIN_TIME_LEN);

    if (job->completed_at) {
        cn->has |= NGX_HTTP_CLOCKCHAIN_SHM_COMPLETED_AT;
        ngx_memcpy(cn->completed_at, job->completed_at,
                   NGX_HTTP_CLOCKCHAIN_TIME_LEN);
    }

    if (path) {
        cn->has |= NGX_HTTP_CLOCKCHAIN_SHM_PATH;
        ngx_memcpy(cn->data, json[0].data, json[0].len);
    }

    if (error) {
        cn->has |= NGX_HTTP_CLOCKCHAIN_SHM_ERROR;
        ngx_memcpy(cn->data + json[0].len, json[1].data, json[1].len);
    }

    ngx_http_clockchain_shm_link(ctx, cn);

    ngx_http_clockchain_shm_unlock(shm_zone);
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

        if (cn != NULL || i == NGX_HTTP_CLOCKCHAIN_SHM_EVICT) {
            return cn;
        }

        /* jobs first: a moment is one read of Redis away as well */
        if (!ngx_queue_empty(&ctx->sh->mlru)) {
            if (ngx_http_clockchain_shm_moment_evict(ctx) != NGX_OK) {
                return NULL;
            }

            continue;
        }

        if (ngx_queue_empty(&ctx->sh->lru)) {
            return NULL;
        }

        q = ngx_queue_last(&ctx->sh->lru);

        /* the tail as a change cut short may leave it: NULL, or not a job */
        if (ngx_http_clockchain_shm_linked(ctx, q) != NGX_OK
            || ngx_http_clockchain_shm_free_node(ctx,
                   ngx_queue_data(q, ngx_http_clockchain_shm_node_t, queue))
               != NGX_OK)
        {
            return NULL;
        }

        ctx->sh->stats.zone_evictions++;
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
    if (ngx_http_clockchain_shm_lock(shm_zone) == NGX_OK) {
        ngx_http_clockchain_shm_mark_locked(shm_zone, id,
                                ngx_murmur_hash2((u_char *) id,
                                                 NGX_HTTP_CLOCKCHAIN_ID_LEN),
                                version);
    }

    ngx_http_clockchain_shm_unlock(shm_zone);
}


/*
 * A job changed to a final status at version, heard without the state
 * itself ("<id> <status> <version>" alone): as ngx_http_clockchain_shm_mark(),
 * and what is cached goes stale and is read again when Redis lost writes.
 */

void
ngx_http_clockchain_shm_mark_final(ngx_shm_zone_t *shm_zone, const u_char *id,
    ngx_uint_t status, uint64_t version)
{
    uint32_t                         hash;
    ngx_uint_t                       lost;
    ngx_http_clockchain_shm_ctx_t   *ctx;
    ngx_http_clockchain_shm_node_t  *cn;

    ctx = shm_zone->data;
    hash = ngx_murmur_hash2((u_char *) id, NGX_HTTP_CLOCKCHAIN_ID_LEN);
    lost = 0;

    if (ngx_http_clockchain_shm_lock(shm_zone) != NGX_OK) {
        ngx_http_clockchain_shm_unlock(shm_zone);
        return;
    }

    cn = ngx_http_clockchain_shm_lookup(ctx, id, hash);

    if (cn && ngx_http_clockchain_shm_lost(cn, status, version, NULL, NULL))
    {
        cn->stale = 1;
        cn->reread = 1;
        lost = 1;

    } else {
        ngx_http_clockchain_shm_mark_locked(shm_zone, id, hash, version);
    }

    ngx_http_clockchain_shm_unlock(shm_zone);

    if (lost) {
        ngx_http_clockchain_shm_log_lost(shm_zone, id, status, version);
    }
}


/*
 * A job reaches a final state once, and nothing changes it afterwards;
 * versions only grow.  A final state at a version no newer than what is
 * cached, and not the one cached, means that Redis lost writes (the tail
 * of its AOF, an asynchronous failover) and counted the same versions
 * again: the cached entry, of a history Redis no longer has, must not
 * stand.  job is NULL when only the status is known; json is the job's
 * path and error in their JSON form, NULL when they are too long to be
 * cached (and so not what is cached).  The forms are compared: two texts
 * have the same form only if they are the same text, but for bytes of
 * invalid UTF-8, which the answers show alike, as U+FFFD.
 */

static ngx_uint_t
ngx_http_clockchain_shm_lost(ngx_http_clockchain_shm_node_t *cn,
    ngx_uint_t status, uint64_t version, const ngx_http_clockchain_job_t *job,
    ngx_str_t *json)
{
    if (!ngx_http_clockchain_is_terminal(status) || cn->reread
        || version == 0 || cn->version < version)
    {
        return 0;
    }

    if (cn->stale) {
        /* a marker: a change newer than this final state was heard */
        return cn->version > version;
    }

    if (!ngx_http_clockchain_is_terminal(cn->status)
        || cn->status != status || cn->version > version)
    {
        return 1;
    }

    /* the same final status at the same version: is it the same state? */

    if (job == NULL) {
        return 0;
    }

    if ((job->completed_at != NULL)
        != ((cn->has & NGX_HTTP_CLOCKCHAIN_SHM_COMPLETED_AT) != 0)
        || (job->completed_at
            && ngx_memcmp(job->completed_at, cn->completed_at,
                          NGX_HTTP_CLOCKCHAIN_TIME_LEN) != 0))
    {
        return 1;
    }

    if (json == NULL) {
        return 1;
    }

    if (status == NGX_HTTP_CLOCKCHAIN_COMPLETED) {
        return json[0].len != cn->path_len
               || (json[0].len
                   && ngx_memcmp(json[0].data, cn->data, json[0].len) != 0);
    }

    return json[1].len != cn->error_len
           || (json[1].len
               && ngx_memcmp(json[1].data, cn->data + cn->path_len,
                             json[1].len)
                  != 0);
}


static void
ngx_http_clockchain_shm_log_lost(ngx_shm_zone_t *shm_zone, const u_char *id,
    ngx_uint_t status, uint64_t version)
{
    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "clockchain: job %*s is %s at version %uL in redis, not "
                  "as cached in zone \"%V\" (redis lost writes?): it is "
                  "read from redis again",
                  (size_t) NGX_HTTP_CLOCKCHAIN_ID_LEN, id,
                  ngx_http_clockchain_status_name(status), version,
                  &shm_zone->shm.name);
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
            /* past the version Redis lost, versions are in order again */
            cn->version = version;
            cn->stale = 1;
            cn->reread = 0;
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

    /* and so are cached moments */
    ctx->sh->mfloor = ++ctx->sh->mseq;

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/*
 * With the mutex held.  NGX_ERROR: cn is not in its bucket, or its LRU
 * links are not whole (a change cut short); nothing is changed and the
 * zone is marked broken, to be emptied at unlock.
 */

static ngx_int_t
ngx_http_clockchain_shm_free_node(ngx_http_clockchain_shm_ctx_t *ctx,
    ngx_http_clockchain_shm_node_t *cn)
{
    ngx_http_clockchain_shm_node_t  **p;

    for (p = &ctx->sh->buckets[cn->hash & ctx->sh->mask];
         *p != cn;
         p = &(*p)->next)
    {
        if (*p == NULL) {
            /* on the LRU but not in the hash */
            ctx->sh->broken = 1;
            return NGX_ERROR;
        }
    }

    if (ngx_http_clockchain_shm_linked(ctx, &cn->queue) != NGX_OK) {
        return NGX_ERROR;
    }

    *p = cn->next;

    if (ngx_http_clockchain_shm_debug_at > 0
        && ngx_http_clockchain_shm_debug_hook(ctx) == NGX_DONE)
    {
        return NGX_OK;
    }

    ngx_queue_remove(&cn->queue);
    ngx_slab_free_locked(ctx->shpool, cn);
    ctx->sh->jobs--;

    return NGX_OK;
}


static void
ngx_http_clockchain_shm_debug_count(void)
{
    char  *v;

    if (ngx_http_clockchain_shm_debug_at == -1) {
        v = getenv("CLOCKCHAIN_DEBUG_CRASH_IN_ZONE");

        ngx_http_clockchain_shm_debug_at = 0;

        if (v && ngx_strncmp(v, "put:", 4) == 0) {
            ngx_http_clockchain_shm_debug_mode =
                                           NGX_HTTP_CLOCKCHAIN_SHM_DEBUG_KILL;
            v += 4;

        } else if (v && ngx_strncmp(v, "unlink:", 7) == 0) {
            ngx_http_clockchain_shm_debug_mode =
                                         NGX_HTTP_CLOCKCHAIN_SHM_DEBUG_UNLINK;
            v += 7;

        } else {
            v = NULL;
        }

        if (v) {
            ngx_http_clockchain_shm_debug_at = ngx_atoi((u_char *) v,
                                                        ngx_strlen(v));

            if (ngx_http_clockchain_shm_debug_at == NGX_ERROR) {
                ngx_http_clockchain_shm_debug_at = 0;
            }
        }
    }

    if (ngx_http_clockchain_shm_debug_at > 0) {
        ngx_http_clockchain_shm_debug_puts++;
    }
}


/* NGX_DONE: leave the entry half freed */

static ngx_int_t
ngx_http_clockchain_shm_debug_hook(ngx_http_clockchain_shm_ctx_t *ctx)
{
    if (ngx_http_clockchain_shm_debug_puts
        < (ngx_uint_t) ngx_http_clockchain_shm_debug_at
        || ctx->sh->debug_fired)
    {
        return NGX_OK;
    }

    ctx->sh->debug_fired = 1;

    if (ngx_http_clockchain_shm_debug_mode
        == NGX_HTTP_CLOCKCHAIN_SHM_DEBUG_UNLINK)
    {
        ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                      "clockchain: CLOCKCHAIN_DEBUG_CRASH_IN_ZONE: an entry "
                      "left on the LRU, out of the hash");
        return NGX_DONE;
    }

    ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                  "clockchain: CLOCKCHAIN_DEBUG_CRASH_IN_ZONE: killing this "
                  "worker inside the zone lock");

    (void) kill(ngx_pid, SIGKILL);

    return NGX_OK;
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


/*
 * Public moments.  The answer to GET {path} without a key, 200 with its
 * body or 404, is kept until a change to the moment is heard (an event
 * names its path, or every moment) or the events subscription comes back
 * (changes may have been missed).  known: the ETags a client holds
 * (If-None-Match), nknown of them; a 200 with one of them is found
 * without its body (m->body empty).  The same LRU keeps browse answers,
 * under keys that do not start with "/", each with the graph version it
 * was read at (m->version); the caller compares it with Redis's.
 */

ngx_int_t
ngx_http_clockchain_shm_moment_get(ngx_shm_zone_t *shm_zone, ngx_str_t *path,
    ngx_pool_t *pool, const u_char *known, ngx_uint_t nknown,
    ngx_http_clockchain_shm_moment_t *m)
{
    uint32_t                          hash;
    ngx_uint_t                        i;
    ngx_http_clockchain_shm_ctx_t    *ctx;
    ngx_http_clockchain_shm_mnode_t  *mn;

    ctx = shm_zone->data;
    hash = ngx_crc32_short(path->data, path->len);

    if (ngx_http_clockchain_shm_lock(shm_zone) != NGX_OK) {
        ngx_http_clockchain_shm_unlock(shm_zone);
        return NGX_DECLINED;
    }

    mn = ngx_http_clockchain_shm_moment_lookup(ctx, path, hash);

    if (mn == NULL) {
        ngx_http_clockchain_shm_unlock(shm_zone);
        return NGX_DECLINED;
    }

    if (path->len && path->data[0] == '/' && mn->seq < ctx->sh->mfloor) {
        /* read before a change to every moment, or a new subscription */
        (void) ngx_http_clockchain_shm_moment_free(ctx, mn);
        ngx_http_clockchain_shm_unlock(shm_zone);
        return NGX_DECLINED;
    }

    if (ngx_http_clockchain_shm_linked(ctx, &mn->queue) != NGX_OK
        || ngx_http_clockchain_shm_linked(ctx, &ctx->sh->mlru) != NGX_OK)
    {
        ngx_http_clockchain_shm_unlock(shm_zone);
        return NGX_DECLINED;
    }

    ngx_queue_remove(&mn->queue);
    ngx_queue_insert_head(&ctx->sh->mlru, &mn->queue);

    m->status = mn->status;
    m->version = mn->seq;
    ngx_memcpy(m->etag, mn->etag, NGX_HTTP_CLOCKCHAIN_ETAG_LEN);
    ngx_str_null(&m->body);

    if (mn->status == NGX_HTTP_OK) {
        for (i = 0; i < nknown; i++) {
            if (ngx_memcmp(known + i * NGX_HTTP_CLOCKCHAIN_ETAG_LEN,
                           mn->etag, NGX_HTTP_CLOCKCHAIN_ETAG_LEN)
                == 0)
            {
                break;
            }
        }

        if (i == nknown) {
            /* copied out under the lock: the entry may go right after */
            m->body.data = ngx_pnalloc(pool, mn->body_len);
            if (m->body.data == NULL) {
                ngx_http_clockchain_shm_unlock(shm_zone);
                return NGX_ERROR;
            }

            ngx_memcpy(m->body.data, mn->data + mn->path_len, mn->body_len);
            m->body.len = mn->body_len;
        }
    }

    ngx_http_clockchain_shm_unlock(shm_zone);

    return NGX_OK;
}


/* the sequence now: taken when a read of a moment is sent */

uint64_t
ngx_http_clockchain_shm_moment_seq(ngx_shm_zone_t *shm_zone)
{
    uint64_t                        seq;
    ngx_http_clockchain_shm_ctx_t  *ctx;

    ctx = shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);
    seq = ctx->sh->mseq;
    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return seq;
}


/*
 * Caches the answer of a read sent at seq, unless a change to its path
 * (or to every moment) was heard since: that read may have been answered
 * before the change.  When more changes were heard since than the zone
 * remembers, it is not cached either.  An answer over a sixteenth of the
 * moments' share of the zone is not cached: it is read from Redis.
 */

void
ngx_http_clockchain_shm_moment_put(ngx_shm_zone_t *shm_zone, ngx_str_t *path,
    ngx_http_clockchain_shm_moment_t *m, uint64_t seq)
{
    size_t                            size;
    uint32_t                          hash;
    uint64_t                          s;
    ngx_uint_t                        i, browse;
    ngx_http_clockchain_shm_sh_t     *sh;
    ngx_http_clockchain_shm_ctx_t    *ctx;
    ngx_http_clockchain_shm_mnode_t  *mn, *old;

    ctx = shm_zone->data;
    sh = ctx->sh;
    hash = ngx_crc32_short(path->data, path->len);

    size = offsetof(ngx_http_clockchain_shm_mnode_t, data) + path->len
           + m->body.len;

    if (ngx_http_clockchain_shm_lock(shm_zone) != NGX_OK) {
        ngx_http_clockchain_shm_unlock(shm_zone);
        return;
    }

    browse = (path->len == 0 || path->data[0] != '/');

    if (browse) {
        /* a browse answer: good while Redis's version is the one read
         * before it (the caller checks), whatever events were heard */
        seq = m->version;

    } else {
        if (seq < sh->mfloor
            || sh->mseq - seq >= NGX_HTTP_CLOCKCHAIN_SHM_MARKS)
        {
            goto done;
        }

        for (s = seq + 1; s <= sh->mseq; s++) {
            if (sh->marks[s % NGX_HTTP_CLOCKCHAIN_SHM_MARKS].hash == hash) {
                /* changed since the read was sent (or a path of the same
                 * hash) */
                goto done;
            }
        }
    }

    old = ngx_http_clockchain_shm_moment_lookup(ctx, path, hash);

    if (old) {
        if (!browse && old->seq > seq) {
            /* a later read is cached */
            goto done;
        }

        if (ngx_http_clockchain_shm_moment_free(ctx, old) != NGX_OK) {
            goto done;
        }
    }

    if (size > sh->mmax / 16 || path->len > 0xffff) {
        goto done;
    }

    while (sh->mbytes + size > sh->mmax && !ngx_queue_empty(&sh->mlru)) {
        if (ngx_http_clockchain_shm_moment_evict(ctx) != NGX_OK) {
            goto done;
        }
    }

    for (i = 0; /* void */ ; i++) {
        mn = ngx_slab_alloc_locked(ctx->shpool, size);

        if (mn != NULL || i == NGX_HTTP_CLOCKCHAIN_SHM_EVICT
            || ngx_queue_empty(&sh->mlru))
        {
            break;
        }

        /* moments give way to moments only: jobs keep their share */
        if (ngx_http_clockchain_shm_moment_evict(ctx) != NGX_OK) {
            goto done;
        }
    }

    if (mn == NULL) {
        goto done;
    }

    if (ngx_http_clockchain_shm_linked(ctx, &sh->mlru) != NGX_OK) {
        /* the zone is emptied at unlock, mn with it */
        goto done;
    }

    mn->seq = seq;
    mn->size = size;
    mn->hash = hash;
    mn->body_len = (uint32_t) m->body.len;
    mn->path_len = (u_short) path->len;
    mn->status = (u_short) m->status;
    ngx_memcpy(mn->etag, m->etag, NGX_HTTP_CLOCKCHAIN_ETAG_LEN);
    ngx_memcpy(mn->data, path->data, path->len);

    if (m->body.len) {
        ngx_memcpy(mn->data + path->len, m->body.data, m->body.len);
    }

    mn->next = sh->mbuckets[hash & sh->mmask];
    sh->mbuckets[hash & sh->mmask] = mn;

    ngx_queue_insert_head(&sh->mlru, &mn->queue);
    sh->moments++;
    sh->mbytes += size;

done:

    ngx_http_clockchain_shm_unlock(shm_zone);
}


/*
 * A change to the moment at path was heard (path NULL: to every moment):
 * what is cached of it goes, and an answer read before it is not cached.
 */

void
ngx_http_clockchain_shm_moment_mark(ngx_shm_zone_t *shm_zone, ngx_str_t *path)
{
    uint32_t                          hash;
    ngx_http_clockchain_shm_sh_t     *sh;
    ngx_http_clockchain_shm_ctx_t    *ctx;
    ngx_http_clockchain_shm_mnode_t  *mn;

    ctx = shm_zone->data;
    sh = ctx->sh;

    if (ngx_http_clockchain_shm_lock(shm_zone) != NGX_OK) {
        ngx_http_clockchain_shm_unlock(shm_zone);
        return;
    }

    sh->mseq++;

    if (path == NULL) {
        /* what is cached goes when it is looked up, or evicted */
        sh->mfloor = sh->mseq;
        ngx_http_clockchain_shm_unlock(shm_zone);
        return;
    }

    hash = ngx_crc32_short(path->data, path->len);

    sh->marks[sh->mseq % NGX_HTTP_CLOCKCHAIN_SHM_MARKS].hash = hash;
    sh->marks[sh->mseq % NGX_HTTP_CLOCKCHAIN_SHM_MARKS].seq = sh->mseq;

    mn = ngx_http_clockchain_shm_moment_lookup(ctx, path, hash);

    if (mn) {
        (void) ngx_http_clockchain_shm_moment_free(ctx, mn);
    }

    ngx_http_clockchain_shm_unlock(shm_zone);
}


void
ngx_http_clockchain_shm_moment_usage(ngx_shm_zone_t *shm_zone,
    ngx_uint_t *moments, size_t *bytes)
{
    ngx_http_clockchain_shm_ctx_t  *ctx = shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    *moments = ctx->sh->moments;
    *bytes = ctx->sh->mbytes;

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


static ngx_http_clockchain_shm_mnode_t *
ngx_http_clockchain_shm_moment_lookup(ngx_http_clockchain_shm_ctx_t *ctx,
    ngx_str_t *path, uint32_t hash)
{
    ngx_http_clockchain_shm_mnode_t  *mn;

    for (mn = ctx->sh->mbuckets[hash & ctx->sh->mmask]; mn; mn = mn->next) {
        if (mn->hash == hash && mn->path_len == path->len
            && ngx_memcmp(mn->data, path->data, path->len) == 0)
        {
            return mn;
        }
    }

    return NULL;
}


/* with the mutex held; NGX_ERROR as ngx_http_clockchain_shm_free_node() */

static ngx_int_t
ngx_http_clockchain_shm_moment_free(ngx_http_clockchain_shm_ctx_t *ctx,
    ngx_http_clockchain_shm_mnode_t *mn)
{
    ngx_http_clockchain_shm_mnode_t  **p;

    for (p = &ctx->sh->mbuckets[mn->hash & ctx->sh->mmask];
         *p != mn;
         p = &(*p)->next)
    {
        if (*p == NULL) {
            ctx->sh->broken = 1;
            return NGX_ERROR;
        }
    }

    if (ngx_http_clockchain_shm_linked(ctx, &mn->queue) != NGX_OK) {
        return NGX_ERROR;
    }

    *p = mn->next;

    ngx_queue_remove(&mn->queue);
    ctx->sh->moments--;
    ctx->sh->mbytes -= mn->size;
    ngx_slab_free_locked(ctx->shpool, mn);

    return NGX_OK;
}


/* with the mutex held: the least recently used moment goes */

static ngx_int_t
ngx_http_clockchain_shm_moment_evict(ngx_http_clockchain_shm_ctx_t *ctx)
{
    ngx_queue_t  *q;

    q = ngx_queue_last(&ctx->sh->mlru);

    if (ngx_http_clockchain_shm_linked(ctx, q) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->sh->stats.zone_evictions++;

    return ngx_http_clockchain_shm_moment_free(ctx,
               ngx_queue_data(q, ngx_http_clockchain_shm_mnode_t, queue));
}

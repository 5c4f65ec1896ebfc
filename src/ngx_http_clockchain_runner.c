
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * The runner: one worker of each nginx holds the runner role (a lease in
 * the shared zone) and advances jobs.  It claims runnable jobs from Redis
 * (claim.lua), calls Flash for each (many calls in flight), turns the
 * scene into a graph node, and commits the outcome: complete.lua, fail.lua
 * or, for an attempt to be retried, requeue.lua, each fenced by the
 * claim's token.  While calls run, their job leases are renewed
 * (heartbeat.lua).
 *
 * A worker leaving after a reload or a graceful stop keeps a drain window:
 * calls that finish in it commit, the rest are handed back to the queue.
 * A commit that Redis could not take is kept and sent again when Redis is
 * back.  Flash answering 401/402, or failing call after call, pauses the
 * claiming instead of failing the backlog.
 *
 * With clockchain_redis wait=, an outcome goes in two steps, each followed
 * by WAIT on its connection: kept beside the job (readers still see it
 * processing), then, once replicas have it, revealed (reveal.lua) and
 * announced.  A step WAIT did not confirm is sent again and WAIT asked
 * again: no answer shows an outcome a failover could take back.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_stats.h"
#include "ngx_http_clockchain_shm.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_flash.h"
#include "ngx_http_clockchain_scene.h"
#include "ngx_http_clockchain_runner.h"
#include "ngx_http_clockchain_events.h"
#include "ngx_http_clockchain_store.h"
#include "ngx_http_clockchain_status.h"

#if (defined __GLIBC__)
#include <malloc.h>
#endif


#define NGX_HTTP_CLOCKCHAIN_TICK          100
#define NGX_HTTP_CLOCKCHAIN_ROLE_TTL      1000
#define NGX_HTTP_CLOCKCHAIN_CLAIM_MAX     64
#define NGX_HTTP_CLOCKCHAIN_TOKEN_LEN     (NGX_HTTP_CLOCKCHAIN_TOKEN_HEX + 1)
#define NGX_HTTP_CLOCKCHAIN_TRIM_QUIET    300
#define NGX_HTTP_CLOCKCHAIN_REFUSED_MAX   30000     /* ms between retries */

/* a result refused this often for what it is fails its job */
#define NGX_HTTP_CLOCKCHAIN_REFUSED_RESULT  3
/* completed_at with a NUL: the scene code reads it as a C string */
#define NGX_HTTP_CLOCKCHAIN_STAMP         (NGX_HTTP_CLOCKCHAIN_TIME_LEN + 1)
/* an outcome's mark: "<token> completed", or claim.lua's, with a NUL */
#define NGX_HTTP_CLOCKCHAIN_MARK_LEN      64

/*
 * Outcomes sent to Redis and not yet answered.  Flash answers arrive in
 * bursts; sent all at once, the last of a burst would wait behind all the
 * others, and so would the claims and the readers' HMGETs that queue
 * behind them.  The rest wait here, and completed_at is stamped when an
 * outcome is sent, not when Flash answered.  Measured with an instant
 * Flash (./build.sh bench 3 5): 4 in flight gave ~2500 jobs/s and a 5 ms
 * median from completed_at to a waiter's answer, 16 gave ~3900 jobs/s and
 * 10 ms, 8 gives 2700-3500 jobs/s and 6-9 ms.
 */
#define NGX_HTTP_CLOCKCHAIN_COMMIT_MAX    8

#define NGX_HTTP_CLOCKCHAIN_CALLING       0
#define NGX_HTTP_CLOCKCHAIN_COMPLETE      1
#define NGX_HTTP_CLOCKCHAIN_FAIL          2
#define NGX_HTTP_CLOCKCHAIN_REQUEUE       3


/* one claimed job, from the claim to its commit */

typedef struct {
    ngx_queue_t                        queue;
    ngx_http_clockchain_flash_call_t   call;
    char                               id[NGX_HTTP_CLOCKCHAIN_ID_LEN + 1];
    char                               token[NGX_HTTP_CLOCKCHAIN_TOKEN_LEN];
    char                               created_at[NGX_HTTP_CLOCKCHAIN_TIME_LEN];
    char                               completed_at[NGX_HTTP_CLOCKCHAIN_STAMP];
    char                              *query;
    size_t                             query_len;
    char                              *preset;
    char                              *visibility;
    char                              *created_by;

    ngx_uint_t                         attempts;    /* made, this one too */
    uint64_t                           version;     /* the job's, in Redis */
    uint32_t                           epoch;       /* zone's, when read */
    ngx_uint_t                         outcome;
    char                              *path;
    char                              *node;
    char                              *error;
    ngx_msec_t                         delay;       /* requeue: run after */
    unsigned                           count:1;     /* requeue: an attempt */

    ngx_queue_t                        wait;        /* in rn->commits */
    ngx_msec_t                         retry_at;    /* refused: not before */
    ngx_uint_t                         refused;     /* in a row */
    ngx_msec_t                         refused_at;  /* the first of them */
    unsigned                           committing:1;
    unsigned                           commit_wait:1;
    unsigned                           stamped:1;
    unsigned                           held:1;      /* wait=: claim unsure */
    unsigned                           nocache:1;   /* wait=: path refused */

    /*
     * wait=: an outcome is kept beside its job until replicas have it,
     * then revealed (reveal.lua), then announced once they have that too
     */
    unsigned                           kept:1;      /* confirmed: reveal */
    unsigned                           reveal:1;    /* a claim's: no call */
    ngx_uint_t                         unconfirmed; /* WAITs in a row */
    char                               mark[NGX_HTTP_CLOCKCHAIN_MARK_LEN];
    ngx_str_t                          final;       /* reveal.lua's, */
    ngx_str_t                          change;      /* to announce */
} ngx_http_clockchain_run_t;


typedef struct {
    ngx_http_clockchain_main_conf_t   *mcf;
    ngx_log_t                         *log;
    ngx_event_t                        tick;
    ngx_event_t                        drain;
    ngx_msec_t                         last_beat;
    ngx_msec_t                         pause_until;
    ngx_msec_t                         claim_at;    /* refused: not before */
    ngx_uint_t                         claim_refused;
    ngx_uint_t                         failures;    /* in a row */
    ngx_uint_t                         generation;
    ngx_uint_t                         holder;
    ngx_uint_t                         claiming;
    uint32_t                           claim_epoch; /* zone's, when sent */
    ngx_uint_t                         draining;
    ngx_msec_t                         drain_end;   /* outcomes: until */
    ngx_queue_t                        runs;
    ngx_uint_t                         nruns;
    ngx_queue_t                        commits;     /* waiting to be sent */
    ngx_uint_t                         ncommits;    /* sent, unanswered */
    u_char                             name[NGX_MAXHOSTNAMELEN + NGX_INT_T_LEN];
    size_t                             name_len;
    u_char                             channel[256];
    size_t                             channel_len;
    ngx_uint_t                         exiting;
    ngx_msec_t                         trim;        /* last run freed, 0 */
} ngx_http_clockchain_runner_t;


static void ngx_http_clockchain_runner_tick(ngx_event_t *ev);
static void ngx_http_clockchain_runner_drain_handler(ngx_event_t *ev);
static void ngx_http_clockchain_runner_claim(
    ngx_http_clockchain_runner_t *rn);
static void ngx_http_clockchain_runner_claimed(void *data,
    redisReply *reply);
static void ngx_http_clockchain_runner_hold(ngx_http_clockchain_runner_t *rn,
    redisReply *reply);
static void ngx_http_clockchain_runner_confirmed(void *data,
    redisReply *reply);
static ngx_http_clockchain_run_t *ngx_http_clockchain_runner_start(
    ngx_http_clockchain_runner_t *rn, redisReply *job);
static ngx_http_clockchain_run_t *ngx_http_clockchain_runner_kept(
    ngx_http_clockchain_runner_t *rn, redisReply *kept);
static void ngx_http_clockchain_runner_add(ngx_http_clockchain_runner_t *rn,
    ngx_http_clockchain_run_t *run);
static void ngx_http_clockchain_runner_call(ngx_http_clockchain_run_t *run);
static void ngx_http_clockchain_runner_called(
    ngx_http_clockchain_flash_call_t *call);
static void ngx_http_clockchain_runner_outcome(
    ngx_http_clockchain_run_t *run);
static ngx_uint_t ngx_http_clockchain_runner_retryable(
    ngx_http_clockchain_run_t *run);
static void ngx_http_clockchain_runner_pause(ngx_http_clockchain_runner_t *rn,
    const char *why);
static void ngx_http_clockchain_runner_gauges(
    ngx_http_clockchain_runner_t *rn);
static void ngx_http_clockchain_runner_gauge(void *data, redisReply *reply);
static void ngx_http_clockchain_runner_handback(
    ngx_http_clockchain_run_t *run);
static void ngx_http_clockchain_runner_settle(ngx_http_clockchain_run_t *run);
static void ngx_http_clockchain_runner_commits(
    ngx_http_clockchain_runner_t *rn);
static ngx_int_t ngx_http_clockchain_runner_commit(
    ngx_http_clockchain_run_t *run);
static void ngx_http_clockchain_runner_committed(void *data,
    redisReply *reply);
static void ngx_http_clockchain_runner_again(ngx_http_clockchain_run_t *run,
    redisReply *reply);
static void ngx_http_clockchain_runner_replicated(void *data,
    redisReply *reply);
static void ngx_http_clockchain_runner_revealed(void *data,
    redisReply *reply);
static void ngx_http_clockchain_runner_shown(void *data, redisReply *reply);
static ngx_uint_t ngx_http_clockchain_runner_unconfirmed(
    ngx_http_clockchain_run_t *run, redisReply *reply, const char *what);
static void ngx_http_clockchain_runner_done(ngx_http_clockchain_run_t *run,
    ngx_uint_t written, ngx_uint_t cache);
static ngx_int_t ngx_http_clockchain_runner_bound(
    ngx_http_clockchain_run_t *run, redisReply *reply);
static ngx_msec_t ngx_http_clockchain_runner_refused(ngx_uint_t *n);
static void ngx_http_clockchain_runner_heartbeat(
    ngx_http_clockchain_runner_t *rn);
static void ngx_http_clockchain_runner_cache(ngx_http_clockchain_run_t *run,
    ngx_uint_t status);
static ngx_int_t ngx_http_clockchain_runner_repath(
    ngx_http_clockchain_run_t *run, redisReply *path);
static void ngx_http_clockchain_runner_free(ngx_http_clockchain_run_t *run);
static char *ngx_http_clockchain_strdup(const char *s, size_t len);


static ngx_http_clockchain_runner_t  ngx_http_clockchain_runner;

/*
 * Test only: with CLOCKCHAIN_FAULT_FLASH_START set in a worker's
 * environment (nginx's "env" directive), no Flash call can start, as when
 * curl cannot allocate; the suite checks the runner's bound on that.
 */
static ngx_uint_t  ngx_http_clockchain_runner_fault_start;


ngx_int_t
ngx_http_clockchain_runner_init_process(ngx_cycle_t *cycle,
    ngx_http_clockchain_main_conf_t *mcf)
{
    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    ngx_memzero(rn, sizeof(ngx_http_clockchain_runner_t));

    rn->mcf = mcf;
    rn->log = cycle->log;
    ngx_queue_init(&rn->runs);

    ngx_http_clockchain_runner_fault_start =
                             (getenv("CLOCKCHAIN_FAULT_FLASH_START") != NULL);
    ngx_queue_init(&rn->commits);

    rn->name_len = ngx_snprintf(rn->name, sizeof(rn->name), "%V:%P",
                                &cycle->hostname, ngx_pid) - rn->name;
    rn->channel_len = ngx_http_clockchain_store_channel(mcf, rn->channel,
                                                        sizeof(rn->channel));

    if (ngx_http_clockchain_flash_init(cycle, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    rn->tick.handler = ngx_http_clockchain_runner_tick;
    rn->tick.log = cycle->log;
    rn->tick.data = rn;
    rn->tick.cancelable = 1;

    /*
     * Not cancelable, and armed while calls are in flight: it keeps a
     * worker that is asked to leave alive for the drain window, and ends
     * that window.
     */
    rn->drain.handler = ngx_http_clockchain_runner_drain_handler;
    rn->drain.log = cycle->log;
    rn->drain.data = rn;

    ngx_add_timer(&rn->tick, NGX_HTTP_CLOCKCHAIN_TICK);

    return NGX_OK;
}


void
ngx_http_clockchain_runner_exit_process(ngx_cycle_t *cycle)
{
    ngx_queue_t                   *q;
    ngx_http_clockchain_run_t     *run;
    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    if (rn->mcf == NULL) {
        return;
    }

    rn->exiting = 1;

    /* let the next worker take the role at once */
    ngx_http_clockchain_shm_runner_release(rn->mcf->shm_zone, ngx_pid);

    if (rn->tick.timer_set) {
        ngx_del_timer(&rn->tick);
    }

    if (rn->drain.timer_set) {
        ngx_del_timer(&rn->drain);
    }

    /*
     * What is still here was not handed back (a fast stop, or Redis away):
     * the leases expire and the jobs run again on the next holder.
     */

    while (!ngx_queue_empty(&rn->runs)) {
        q = ngx_queue_head(&rn->runs);
        run = ngx_queue_data(q, ngx_http_clockchain_run_t, queue);
        ngx_http_clockchain_runner_free(run);
    }

    ngx_http_clockchain_flash_exit();
}


static void
ngx_http_clockchain_runner_tick(ngx_event_t *ev)
{
    ngx_http_clockchain_runner_t *rn = ev->data;

    ngx_int_t  rc;

    if (rn->exiting || ngx_terminate) {
        return;
    }

    if ((ngx_exiting || ngx_quit) && !rn->draining) {
        rn->draining = 1;

        if (rn->holder) {
            ngx_http_clockchain_shm_runner_release(rn->mcf->shm_zone,
                                                   ngx_pid);
            rn->holder = 0;
        }

        if (rn->nruns) {
            ngx_log_error(NGX_LOG_NOTICE, rn->log, 0,
                          "clockchain: draining %ui job(s) for up to %M ms",
                          rn->nruns, rn->mcf->drain_timeout);

            if (rn->drain.timer_set) {
                ngx_del_timer(&rn->drain);
            }

            ngx_add_timer(&rn->drain, rn->mcf->drain_timeout);
        }
    }

    if (!rn->draining) {
        rc = ngx_http_clockchain_shm_runner_lease(rn->mcf->shm_zone, ngx_pid,
                                                  NGX_HTTP_CLOCKCHAIN_ROLE_TTL,
                                                  &rn->generation);

        if (rc == NGX_OK && !rn->holder) {
            ngx_log_error(NGX_LOG_NOTICE, rn->log, 0,
                          "clockchain: this worker runs jobs now "
                          "(generation %ui)", rn->generation);
            rn->holder = 1;

        } else if (rc != NGX_OK && rn->holder) {
            ngx_log_error(NGX_LOG_WARN, rn->log, 0,
                          "clockchain: this worker lost the runner role, "
                          "it claims no more jobs");
            rn->holder = 0;
        }
    }

    if (rn->nruns && ngx_http_clockchain_redis_available()) {

        if (ngx_current_msec - rn->last_beat >= rn->mcf->job_lease / 3) {
            ngx_http_clockchain_runner_heartbeat(rn);
        }

        /* outcomes that Redis could not take, once more */
        ngx_http_clockchain_runner_commits(rn);
    }

    if (rn->holder) {
        ngx_http_clockchain_runner_claim(rn);

        if (ngx_http_clockchain_redis_available()) {
            ngx_http_clockchain_runner_gauges(rn);
        }

        /* what the status page shows: no timer of its own */
        ngx_http_clockchain_status_tick(rn->mcf, rn->generation,
                                        rn->pause_until, rn->failures);
    }

#if (defined __GLIBC__)
    if (rn->nruns == 0 && rn->trim
        && ngx_current_msec - rn->trim >= NGX_HTTP_CLOCKCHAIN_TRIM_QUIET)
    {
        /*
         * A burst of runs (Flash answers up to 16 MiB each, outcomes
         * waiting for the commit window) leaves the heap at its high-water
         * mark; glibc keeps freed pages inside the heap.  Give them back
         * once the burst has been over for a while, not between the runs
         * of a trickle.
         */
        rn->trim = 0;
        (void) malloc_trim(0);
    }
#endif

    ngx_add_timer(&rn->tick, NGX_HTTP_CLOCKCHAIN_TICK);
}


static void
ngx_http_clockchain_runner_drain_handler(ngx_event_t *ev)
{
    ngx_http_clockchain_runner_t *rn = ev->data;

    ngx_queue_t                *q, *next;
    ngx_http_clockchain_run_t  *run;

    if (!rn->draining) {
        /* not leaving: the guard is only renewed */
        ngx_add_timer(&rn->drain, rn->mcf->drain_timeout);
        return;
    }

    /* the window is over: hand back what is still calling Flash */

    for (q = ngx_queue_head(&rn->runs);
         q != ngx_queue_sentinel(&rn->runs);
         q = next)
    {
        next = ngx_queue_next(q);
        run = ngx_queue_data(q, ngx_http_clockchain_run_t, queue);

        if (run->outcome == NGX_HTTP_CLOCKCHAIN_CALLING) {
            ngx_log_error(NGX_LOG_NOTICE, rn->log, 0,
                          "clockchain: handing job %s back to the queue",
                          run->id);
            ngx_http_clockchain_flash_free(&run->call);
            ngx_http_clockchain_runner_handback(run);
        }
    }

    if (rn->nruns == 0) {
        return;
    }

    /*
     * Outcomes still on their way to Redis (a refused one waits for its
     * retry, driven by the cancelable tick) keep the worker: this timer is
     * the only one that does.  For one lease at most; after that their
     * jobs are claimed again when their leases expire anyway.
     */

    if (rn->drain_end == 0) {
        rn->drain_end = ngx_current_msec + rn->mcf->job_lease;
    }

    /* a leaving worker does not reconnect: without Redis, no use waiting */

    if ((ngx_msec_int_t) (rn->drain_end - ngx_current_msec) > 0
        && ngx_http_clockchain_redis_available())
    {
        ngx_add_timer(&rn->drain, NGX_HTTP_CLOCKCHAIN_TICK);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, rn->log, 0,
                  "clockchain: leaving with %ui outcome(s) redis did not "
                  "take; their jobs are claimed again when their leases "
                  "expire", rn->nruns);
}


static void
ngx_http_clockchain_runner_claim(ngx_http_clockchain_runner_t *rn)
{
    char                               tokens[NGX_HTTP_CLOCKCHAIN_CLAIM_MAX]
                                             [NGX_HTTP_CLOCKCHAIN_TOKEN_HEX];
    ngx_str_t                          name, channel;
    ngx_uint_t                         room, i;
    ngx_http_clockchain_main_conf_t   *mcf = rn->mcf;

    if (rn->claiming || rn->draining
        || !ngx_http_clockchain_redis_available())
    {
        return;
    }

    if ((ngx_msec_int_t) (rn->pause_until - ngx_current_msec) > 0
        || (ngx_msec_int_t) (rn->claim_at - ngx_current_msec) > 0)
    {
        return;
    }

    if (rn->nruns >= mcf->flash_max_calls
        || ngx_http_clockchain_flash_buffered() >= mcf->flash_buffers)
    {
        /* calls past the limits wait in the queue */
        return;
    }

    room = ngx_min(mcf->flash_max_calls - rn->nruns,
                   NGX_HTTP_CLOCKCHAIN_CLAIM_MAX);

    /*
     * a token for each job it may claim, random: a counter in Redis would
     * hand out the same number again after Redis lost its last writes
     */

    for (i = 0; i < room; i++) {
        if (ngx_http_clockchain_token(tokens[i]) != 0) {
            ngx_log_error(NGX_LOG_ALERT, rn->log, ngx_errno,
                          "clockchain: getrandom() failed");
            return;
        }

    }

    rn->claim_epoch = ngx_http_clockchain_shm_epoch(mcf->shm_zone);

    name.data = rn->name;
    name.len = rn->name_len;
    channel.data = rn->channel;
    channel.len = rn->channel_len;

    if (ngx_http_clockchain_store_claim(mcf, &name, &channel, tokens, room,
                                        ngx_http_clockchain_runner_claimed,
                                        rn)
        != NULL)
    {
        rn->claiming = 1;
    }
}


static void
ngx_http_clockchain_runner_claimed(void *data, redisReply *reply)
{
    ngx_http_clockchain_runner_t *rn = data;

    size_t                      i;
    ngx_msec_t                  delay;
    redisReply                 *jobs;
    ngx_http_clockchain_run_t  *run;

    rn->claiming = 0;

    if (reply == NULL) {
        return;
    }

    /* with wait=, the kept outcomes to reveal come fourth */

    if (reply->type != REDIS_REPLY_ARRAY
        || reply->elements != (rn->mcf->redis.wait ? 4 : 3)
        || reply->element[0]->type != REDIS_REPLY_ARRAY
        || reply->element[1]->type != REDIS_REPLY_INTEGER
        || reply->element[2]->type != REDIS_REPLY_INTEGER
        || (rn->mcf->redis.wait
            && reply->element[3]->type != REDIS_REPLY_ARRAY))
    {
        delay = ngx_http_clockchain_runner_refused(&rn->claim_refused);
        rn->claim_at = ngx_current_msec + delay;

        ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                      "clockchain: claiming jobs failed: %s; trying again "
                      "in %M ms",
                      reply->type == REDIS_REPLY_ERROR ? reply->str
                                                       : "unexpected reply",
                      delay);
        return;
    }

    rn->claim_refused = 0;

    if (reply->element[1]->integer > 0 || reply->element[2]->integer > 0) {
        /* leases that ran out: their runners died or hung */
        ngx_http_clockchain_stat_add(stalled, reply->element[1]->integer
                                              + reply->element[2]->integer);
        ngx_http_clockchain_stat_add(failed, reply->element[2]->integer);
    }

    if (rn->mcf->redis.wait) {
        ngx_http_clockchain_runner_hold(rn, reply);
        return;
    }

    jobs = reply->element[0];

    for (i = 0; i < jobs->elements; i++) {
        run = ngx_http_clockchain_runner_start(rn, jobs->element[i]);

        if (run) {
            ngx_http_clockchain_runner_call(run);
        }
    }

    if (jobs->elements && !rn->draining && rn->holder) {
        /* more may be waiting: claim again without waiting for a tick */
        ngx_http_clockchain_runner_claim(rn);
    }
}


/*
 * clockchain_redis wait=N: no Flash call starts before its claim, which
 * counted the attempt, is on N replicas.  A claim the primary alone had
 * would be lost with it in a failover, and the job called once more than
 * its hash says.  The claimed jobs wait for the WAIT sent after the claim
 * on its connection, and so do the kept outcomes claim.lua gave to reveal
 * (the failures it decided, and outcomes whose runner died before it
 * revealed them): that WAIT covers them too, being later on the primary.
 */

static void
ngx_http_clockchain_runner_hold(ngx_http_clockchain_runner_t *rn,
    redisReply *reply)
{
    size_t                      i;
    ngx_uint_t                  held;
    redisReply                 *jobs, *kept;
    ngx_http_clockchain_run_t  *run;

    jobs = reply->element[0];
    kept = reply->element[3];
    held = 0;

    for (i = 0; i < jobs->elements; i++) {
        run = ngx_http_clockchain_runner_start(rn, jobs->element[i]);

        if (run) {
            run->held = 1;
            held++;
        }
    }

    for (i = 0; i < kept->elements; i++) {
        run = ngx_http_clockchain_runner_kept(rn, kept->element[i]);

        if (run) {
            run->held = 1;
            held++;
        }
    }

    if (held == 0) {
        return;
    }

    /* on the claim's connection: WAIT counts the writes made on it */

    if (ngx_http_clockchain_store_wait(rn->mcf,
                                       ngx_http_clockchain_runner_confirmed,
                                       rn)
        != NULL)
    {
        rn->claiming = 1;
        return;
    }

    ngx_http_clockchain_runner_confirmed(rn, NULL);
}


static void
ngx_http_clockchain_runner_confirmed(void *data, redisReply *reply)
{
    ngx_http_clockchain_runner_t *rn = data;

    ngx_uint_t                  ok, n, k;
    ngx_msec_t                  delay;
    const char                 *said;
    ngx_queue_t                *q, *next;
    ngx_http_clockchain_run_t  *run;

    rn->claiming = 0;

    ok = ngx_http_clockchain_store_confirmed(rn->mcf, reply, &said);

    n = 0;
    k = 0;

    for (q = ngx_queue_head(&rn->runs);
         q != ngx_queue_sentinel(&rn->runs);
         q = ngx_queue_next(q))
    {
        run = ngx_queue_data(q, ngx_http_clockchain_run_t, queue);

        if (run->held) {
            n += !run->reveal;
            k += run->reveal;
        }
    }

    if (!ok) {
        ngx_log_error(NGX_LOG_WARN, rn->log, 0,
                      "clockchain: %ui replica(s) did not confirm a claim "
                      "in time (%s answered: %s): handing %ui job(s) back "
                      "without calling flash, %ui kept outcome(s) left "
                      "unrevealed",
                      rn->mcf->redis.wait,
                      rn->mcf->redis.waitaof ? "WAITAOF" : "WAIT", said, n,
                      k);
    }

    for (q = ngx_queue_head(&rn->runs);
         q != ngx_queue_sentinel(&rn->runs);
         q = next)
    {
        next = ngx_queue_next(q);
        run = ngx_queue_data(q, ngx_http_clockchain_run_t, queue);

        if (!run->held) {
            continue;
        }

        run->held = 0;

        if (run->reveal) {
            if (ok) {
                ngx_http_clockchain_runner_settle(run);

            } else {
                /* still in the confirming set: a later claim gives it */
                ngx_http_clockchain_runner_free(run);
            }

            continue;
        }

        if (ok) {
            ngx_http_clockchain_runner_call(run);

        } else {
            /* counted as a hand-back; its claim's attempt is taken back */
            ngx_http_clockchain_runner_handback(run);
        }
    }

    if (!ok && n) {
        /* the replicas are behind or away: not at once again */
        delay = ngx_http_clockchain_runner_refused(&rn->claim_refused);
        rn->claim_at = ngx_current_msec + delay;
        return;
    }

    if (n && !rn->draining && rn->holder) {
        ngx_http_clockchain_runner_claim(rn);
    }
}


/* a run for a claimed job, or NULL: malformed, or handed back already */

static ngx_http_clockchain_run_t *
ngx_http_clockchain_runner_start(ngx_http_clockchain_runner_t *rn,
    redisReply *job)
{
    ngx_int_t                   n;
    ngx_uint_t                  i;
    redisReply                **f;
    ngx_http_clockchain_run_t  *run;

    if (job->type != REDIS_REPLY_ARRAY || job->elements != 9) {
        ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                      "clockchain: unexpected claim reply");
        return NULL;
    }

    f = job->element;

    for (i = 0; i < 9; i++) {
        if (f[i]->type != REDIS_REPLY_STRING) {
            ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                          "clockchain: claimed job has missing fields");
            return NULL;
        }
    }

    n = ngx_atoi((u_char *) f[7]->str, f[7]->len);

    if (f[0]->len != NGX_HTTP_CLOCKCHAIN_ID_LEN
        || f[1]->len >= NGX_HTTP_CLOCKCHAIN_TOKEN_LEN
        || f[6]->len != NGX_HTTP_CLOCKCHAIN_TIME_LEN
        || n == NGX_ERROR)
    {
        ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                      "clockchain: claimed job is malformed");
        return NULL;
    }

    run = ngx_calloc(sizeof(ngx_http_clockchain_run_t), rn->log);
    if (run == NULL) {
        return NULL;
    }

    ngx_memcpy(run->id, f[0]->str, NGX_HTTP_CLOCKCHAIN_ID_LEN);
    ngx_memcpy(run->token, f[1]->str, f[1]->len);
    ngx_memcpy(run->created_at, f[6]->str, NGX_HTTP_CLOCKCHAIN_TIME_LEN);

    run->attempts = n + 1;
    run->version = strtoull(f[8]->str, NULL, 10);
    run->epoch = rn->claim_epoch;
    run->query = ngx_http_clockchain_strdup(f[2]->str, f[2]->len);
    run->query_len = f[2]->len;
    run->preset = ngx_http_clockchain_strdup(f[3]->str, f[3]->len);
    run->visibility = ngx_http_clockchain_strdup(f[4]->str, f[4]->len);
    run->created_by = ngx_http_clockchain_strdup(f[5]->str, f[5]->len);

    ngx_http_clockchain_runner_add(rn, run);

    if (run->query == NULL || run->preset == NULL || run->visibility == NULL
        || run->created_by == NULL)
    {
        ngx_http_clockchain_runner_handback(run);
        return NULL;
    }

    return run;
}


/* wait=: a kept outcome claim.lua gave, { id, its mark }, to reveal */

static ngx_http_clockchain_run_t *
ngx_http_clockchain_runner_kept(ngx_http_clockchain_runner_t *rn,
    redisReply *kept)
{
    ngx_http_clockchain_run_t  *run;

    if (kept->type != REDIS_REPLY_ARRAY || kept->elements != 2
        || kept->element[0]->type != REDIS_REPLY_STRING
        || kept->element[1]->type != REDIS_REPLY_STRING
        || kept->element[0]->len != NGX_HTTP_CLOCKCHAIN_ID_LEN
        || kept->element[1]->len >= NGX_HTTP_CLOCKCHAIN_MARK_LEN)
    {
        ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                      "clockchain: claim gave a malformed kept outcome");
        return NULL;
    }

    run = ngx_calloc(sizeof(ngx_http_clockchain_run_t), rn->log);
    if (run == NULL) {
        return NULL;
    }

    ngx_memcpy(run->id, kept->element[0]->str, NGX_HTTP_CLOCKCHAIN_ID_LEN);
    ngx_memcpy(run->mark, kept->element[1]->str, kept->element[1]->len);

    /* not calling: a drain does not hand it back */
    run->outcome = NGX_HTTP_CLOCKCHAIN_FAIL;
    run->kept = 1;
    run->reveal = 1;

    ngx_http_clockchain_runner_add(rn, run);

    return run;
}


static void
ngx_http_clockchain_runner_add(ngx_http_clockchain_runner_t *rn,
    ngx_http_clockchain_run_t *run)
{
    ngx_queue_insert_tail(&rn->runs, &run->queue);
    rn->nruns++;

    ngx_http_clockchain_stat_set(in_flight, rn->nruns);

    if (!rn->drain.timer_set) {
        ngx_add_timer(&rn->drain, rn->mcf->drain_timeout);
    }
}


static void
ngx_http_clockchain_runner_call(ngx_http_clockchain_run_t *run)
{
    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    if (rn->draining || ngx_exiting || ngx_quit) {
        /* claimed just as this worker was asked to leave */
        ngx_http_clockchain_runner_handback(run);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rn->log, 0,
                   "clockchain: calling flash for job %s, attempt %ui",
                   run->id, run->attempts);

    ngx_http_clockchain_runner_cache(run, NGX_HTTP_CLOCKCHAIN_PROCESSING);

    run->call.done = ngx_http_clockchain_runner_called;
    run->call.data = run;

    if (ngx_http_clockchain_runner_fault_start
        || ngx_http_clockchain_flash_start(&run->call, run->id, run->query,
                                           run->query_len, run->preset)
           != NGX_OK)
    {
        /*
         * A call that cannot start is a failed attempt like a call that
         * cannot connect: retried with backoff, failed after the last.
         * Handed back uncounted it was claimed again at once, forever.
         */

        ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                      "clockchain: could not start the flash call of job %s",
                      run->id);

        ngx_http_clockchain_flash_free(&run->call);
        ngx_memzero(&run->call, sizeof(ngx_http_clockchain_flash_call_t));
        run->call.data = run;
        run->call.result = CURLE_FAILED_INIT;
        ngx_cpystrn((u_char *) run->call.errbuf,
                    (u_char *) "the call could not be started",
                    sizeof(run->call.errbuf));

        ngx_http_clockchain_runner_called(&run->call);
    }
}


static void
ngx_http_clockchain_runner_called(ngx_http_clockchain_flash_call_t *call)
{
    ngx_http_clockchain_run_t  *run = call->data;

    ngx_http_clockchain_runner_outcome(run);

    /* the answer can be large: free it before the commit round trip */
    ngx_http_clockchain_flash_free(&run->call);

    ngx_http_clockchain_runner_settle(run);
}


static void
ngx_http_clockchain_runner_outcome(ngx_http_clockchain_run_t *run)
{
    int                                rc;
    char                               err[1024];
    ngx_msec_t                         delay, cap;
    ngx_uint_t                         retry, n;
    ngx_http_clockchain_scene_in_t     in;
    ngx_http_clockchain_runner_t      *rn = &ngx_http_clockchain_runner;
    ngx_http_clockchain_main_conf_t   *mcf = rn->mcf;

    ngx_http_clockchain_iso_now(run->completed_at);
    run->completed_at[NGX_HTTP_CLOCKCHAIN_TIME_LEN] = '\0';

    err[0] = '\0';

    if (run->call.no_room) {
        /*
         * Not Flash's doing nor the job's: the answers of the other calls
         * hold clockchain_flash_buffers.  The job runs again later, and
         * no attempt is counted; alone, its answer always fits (merge
         * checks flash_buffers >= flash_max_response).
         */

        ngx_log_error(NGX_LOG_WARN, rn->log, 0,
                      "clockchain: the answers in flight hold all of "
                      "clockchain_flash_buffers (%uz bytes): job %s runs "
                      "again in %M ms", mcf->flash_buffers, run->id,
                      mcf->flash_backoff);

        run->outcome = NGX_HTTP_CLOCKCHAIN_REQUEUE;
        run->count = 0;
        run->attempts--;
        run->delay = mcf->flash_backoff;
        return;
    }

    if (run->call.too_large
        || run->call.result == CURLE_FILESIZE_EXCEEDED)
    {
        ngx_snprintf((u_char *) err, sizeof(err),
                     "Flash API error: the response is larger than "
                     "%uz bytes%Z", mcf->flash_max_response);

    } else if (run->call.result == CURLE_OPERATION_TIMEDOUT) {
        ngx_snprintf((u_char *) err, sizeof(err),
                     "Flash API timeout: no complete answer within %M ms%Z",
                     mcf->flash_timeout);

    } else if (run->call.result == CURLE_COULDNT_CONNECT
               || run->call.result == CURLE_COULDNT_RESOLVE_HOST
               || run->call.result == CURLE_SEND_ERROR
               || run->call.result == CURLE_RECV_ERROR
               || run->call.result == CURLE_PARTIAL_FILE
               || run->call.result == CURLE_GOT_NOTHING)
    {
        ngx_snprintf((u_char *) err, sizeof(err),
                     "Flash API connection error: %s%Z",
                     run->call.errbuf[0] ? run->call.errbuf
                         : curl_easy_strerror(run->call.result));

    } else if (run->call.result != CURLE_OK) {
        ngx_snprintf((u_char *) err, sizeof(err),
                     "Flash API error: %s%Z",
                     run->call.errbuf[0] ? run->call.errbuf
                         : curl_easy_strerror(run->call.result));

    } else if (run->call.status != 200) {
        ngx_http_clockchain_flash_error(run->call.status,
                                        (char *) run->call.body,
                                        run->call.len, err, sizeof(err));

    } else {
        in.job_id = run->id;
        in.query = run->query;
        in.visibility = run->visibility;
        in.created_by = run->created_by;
        in.created_at = run->completed_at;

        rc = ngx_http_clockchain_scene_to_node(
                               run->call.body ? (char *) run->call.body : "",
                               run->call.len, &in, &run->path, &run->node,
                               err, sizeof(err));

        if (rc == 1) {
            rn->failures = 0;
            run->outcome = NGX_HTTP_CLOCKCHAIN_COMPLETE;
            return;
        }

        if (rc < 0) {
            ngx_snprintf((u_char *) err, sizeof(err),
                         "Graph indexing error: out of memory%Z");
        }
    }

    run->error = ngx_http_clockchain_strdup(err, ngx_strlen(err));

    if (run->call.status == 401 || run->call.status == 402) {
        /*
         * A bad key or no credits: every job would fail the same way.
         * This one waits, as the backlog does, and counts no attempt.
         */
        ngx_http_clockchain_runner_pause(rn, err);
        ngx_http_clockchain_stats_retried(NGX_HTTP_CLOCKCHAIN_RETRY_PAUSED);

        run->outcome = NGX_HTTP_CLOCKCHAIN_REQUEUE;
        run->count = 0;
        run->attempts--;
        run->delay = mcf->breaker_pause;
        return;
    }

    retry = ngx_http_clockchain_runner_retryable(run);

    if (retry && ++rn->failures >= mcf->breaker_failures) {
        ngx_http_clockchain_runner_pause(rn, err);
        rn->failures = 0;
    }

    if (retry && run->attempts < mcf->flash_attempts) {

        /* exponential backoff with jitter: between half and all of it */

        cap = mcf->flash_backoff;

        /* doubled once per attempt made before, no shift past the width */
        for (n = 1; n < run->attempts && cap < mcf->flash_backoff_max; n++) {
            cap *= 2;
        }

        cap = ngx_min(cap, mcf->flash_backoff_max);
        delay = cap / 2 + ngx_random() % (cap / 2 + 1);

        if (run->call.retry_after > 0) {
            delay = ngx_max(delay, (ngx_msec_t) run->call.retry_after * 1000);
        }

        ngx_log_error(NGX_LOG_WARN, rn->log, 0,
                      "clockchain: job %s attempt %ui of %ui failed: %s; "
                      "retrying in %M ms", run->id, run->attempts,
                      mcf->flash_attempts, err, delay);

        ngx_http_clockchain_stats_retried(
                    run->call.result == CURLE_OPERATION_TIMEDOUT
                    ? NGX_HTTP_CLOCKCHAIN_RETRY_TIMEOUT
                    : run->call.result != CURLE_OK
                    ? NGX_HTTP_CLOCKCHAIN_RETRY_CONNECTION
                    : NGX_HTTP_CLOCKCHAIN_RETRY_STATUS);

        run->outcome = NGX_HTTP_CLOCKCHAIN_REQUEUE;
        run->count = 1;
        run->delay = delay;
        return;
    }

    ngx_log_error(NGX_LOG_WARN, rn->log, 0,
                  "clockchain: job %s failed after %ui attempt(s): %s",
                  run->id, run->attempts, err);

    run->outcome = NGX_HTTP_CLOCKCHAIN_FAIL;
}


/* timeouts, connection errors and the configured statuses are retried */

static ngx_uint_t
ngx_http_clockchain_runner_retryable(ngx_http_clockchain_run_t *run)
{
    ngx_uint_t                        i, *status;
    ngx_http_clockchain_runner_t     *rn = &ngx_http_clockchain_runner;

    if (run->call.too_large
        || run->call.result == CURLE_FILESIZE_EXCEEDED)
    {
        return 0;
    }

    if (run->call.result != CURLE_OK) {
        return 1;
    }

    if (run->call.status == 200) {
        /* an answer that is not a usable scene is not retried */
        return 0;
    }

    status = rn->mcf->flash_retry_status->elts;

    for (i = 0; i < rn->mcf->flash_retry_status->nelts; i++) {
        if (status[i] == (ngx_uint_t) run->call.status) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_http_clockchain_runner_pause(ngx_http_clockchain_runner_t *rn,
    const char *why)
{
    if ((ngx_msec_int_t) (rn->pause_until - ngx_current_msec) > 0) {
        return;
    }

    rn->pause_until = ngx_current_msec + rn->mcf->breaker_pause;

    ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                  "clockchain: circuit breaker open, no jobs are claimed "
                  "for %M ms (they stay pending): %s",
                  rn->mcf->breaker_pause, why);
}


/* the queue's numbers for /metrics, once a second, by the runner */

static void
ngx_http_clockchain_runner_gauges(ngx_http_clockchain_runner_t *rn)
{
    if ((ngx_atomic_uint_t) ngx_time()
        == ngx_http_clockchain_stats->queue_updated)
    {
        return;
    }

    ngx_http_clockchain_stat_set(queue_updated, ngx_time());

    ngx_http_clockchain_store_count(rn->mcf, "queue",
                                ngx_http_clockchain_runner_gauge,
                                (void *) &ngx_http_clockchain_stats->pending);
    ngx_http_clockchain_store_count(rn->mcf, "processing",
                             ngx_http_clockchain_runner_gauge,
                             (void *) &ngx_http_clockchain_stats->processing);
}


static void
ngx_http_clockchain_runner_gauge(void *data, redisReply *reply)
{
    ngx_atomic_t  *gauge = data;

    if (reply && reply->type == REDIS_REPLY_INTEGER) {
        *gauge = (ngx_atomic_uint_t) reply->integer;
    }
}


/* back to the queue at once, no attempt counted */

static void
ngx_http_clockchain_runner_handback(ngx_http_clockchain_run_t *run)
{
    run->outcome = NGX_HTTP_CLOCKCHAIN_REQUEUE;
    run->count = 0;
    run->attempts--;
    run->delay = 0;
    run->held = 0;

    ngx_http_clockchain_runner_settle(run);
}


/* an outcome goes to Redis now, or waits for room in the window */

static void
ngx_http_clockchain_runner_settle(ngx_http_clockchain_run_t *run)
{
    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    ngx_queue_insert_tail(&rn->commits, &run->wait);
    run->commit_wait = 1;

    ngx_http_clockchain_runner_commits(rn);
}


static void
ngx_http_clockchain_runner_commits(ngx_http_clockchain_runner_t *rn)
{
    ngx_queue_t                *q, *next;
    ngx_http_clockchain_run_t  *run;

    for (q = ngx_queue_head(&rn->commits);
         q != ngx_queue_sentinel(&rn->commits)
         && rn->ncommits < NGX_HTTP_CLOCKCHAIN_COMMIT_MAX;
         q = next)
    {
        next = ngx_queue_next(q);
        run = ngx_queue_data(q, ngx_http_clockchain_run_t, wait);

        if (run->retry_at
            && (ngx_msec_int_t) (run->retry_at - ngx_current_msec) > 0)
        {
            /* refused by Redis a moment ago: the others go first */
            continue;
        }

        if (ngx_http_clockchain_runner_commit(run) != NGX_OK) {
            /* Redis is away: the tick tries again when it is back */
            return;
        }
    }
}


static ngx_int_t
ngx_http_clockchain_runner_commit(ngx_http_clockchain_run_t *run)
{
    ngx_str_t                            channel;
    ngx_http_clockchain_store_outcome_t  o;
    ngx_http_clockchain_runner_t        *rn = &ngx_http_clockchain_runner;
    ngx_http_clockchain_main_conf_t *mcf = rn->mcf;

    if (run->kept) {
        /* wait=: the outcome kept and confirmed, made the job's now */

        run->epoch = ngx_http_clockchain_shm_epoch(mcf->shm_zone);

        if (ngx_http_clockchain_store_reveal(mcf, run->id, run->mark,
                                          ngx_http_clockchain_runner_revealed,
                                          run)
            == NULL)
        {
            return NGX_AGAIN;
        }

        goto sent;
    }

    if (!run->stamped && run->outcome != NGX_HTTP_CLOCKCHAIN_REQUEUE) {
        /* the job becomes completed or failed now, in one script */
        ngx_http_clockchain_iso_now(run->completed_at);
    }

    o.kind = (run->outcome == NGX_HTTP_CLOCKCHAIN_COMPLETE)
             ? NGX_HTTP_CLOCKCHAIN_STORE_COMPLETE
             : (run->outcome == NGX_HTTP_CLOCKCHAIN_FAIL)
             ? NGX_HTTP_CLOCKCHAIN_STORE_FAIL
             : NGX_HTTP_CLOCKCHAIN_STORE_REQUEUE;
    o.id = run->id;
    o.token = run->token;
    o.completed_at = run->completed_at;
    o.path = run->path;
    o.node = run->node;
    o.error = run->error;
    o.attempts = run->attempts;
    o.count = run->count;
    o.delay = run->delay;

    channel.data = rn->channel;
    channel.len = rn->channel_len;

    run->epoch = ngx_http_clockchain_shm_epoch(mcf->shm_zone);

    if (ngx_http_clockchain_store_commit(mcf, &channel, &o,
                                         ngx_http_clockchain_runner_committed,
                                         run)
        == NULL)
    {
        /* not sent: stamped again when it is */
        return NGX_AGAIN;
    }

    run->stamped = 1;

sent:

    ngx_queue_remove(&run->wait);
    run->commit_wait = 0;
    run->committing = 1;
    rn->ncommits++;

    return NGX_OK;
}


static void
ngx_http_clockchain_runner_committed(void *data, redisReply *reply)
{
    ngx_http_clockchain_run_t *run = data;

    ngx_uint_t                     cache;
    redisReply                    *done;
    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    run->committing = 0;
    rn->ncommits--;

    /* complete.lua answers { version, path }, the others the version */

    done = NULL;
    cache = 1;

    if (reply && run->outcome == NGX_HTTP_CLOCKCHAIN_COMPLETE) {
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
            && reply->element[0]->type == REDIS_REPLY_INTEGER
            && reply->element[1]->type == REDIS_REPLY_STRING)
        {
            done = reply->element[0];

            /* done in Redis all the same: only the zone goes without */
            cache = (ngx_http_clockchain_runner_repath(run,
                                                       reply->element[1])
                     == NGX_OK);
        }

    } else if (reply && reply->type == REDIS_REPLY_INTEGER) {
        done = reply;
    }

    if (done) {
        run->version = (uint64_t) done->integer;

        if (rn->mcf->redis.wait
            && run->outcome != NGX_HTTP_CLOCKCHAIN_REQUEUE)
        {
            /*
             * wait=: kept beside the job, and revealed only once the
             * replicas have it: a final state the primary alone had could
             * be answered, then lost in a failover and the job run again
             * to another outcome
             */

            run->nocache = !cache;
            run->committing = 1;
            rn->ncommits++;

            if (ngx_http_clockchain_store_wait(rn->mcf,
                                         ngx_http_clockchain_runner_replicated,
                                         run)
                == NULL)
            {
                ngx_http_clockchain_runner_replicated(run, NULL);
            }

            return;
        }

        ngx_http_clockchain_runner_done(run, 1, cache);
        return;

    } else if (ngx_http_clockchain_redis_script_error(reply, "FENCED")) {
        ngx_log_error(NGX_LOG_WARN, rn->log, 0,
                      "clockchain: the outcome of job %s was refused: its "
                      "lease expired and it was claimed again", run->id);

    } else if (ngx_http_clockchain_redis_script_error(reply, "PATH_TAKEN")) {
        /* every path tried is another creator's: nothing was written */
        ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                      "clockchain: job %s fails: the moment's path and "
                      "every variant tried belong to other creators",
                      run->id);

        ngx_free(run->error);
        run->error = ngx_http_clockchain_strdup(
                         "Graph indexing error: no free path for the moment",
                         sizeof("Graph indexing error: no free path for the "
                                "moment") - 1);
        run->outcome = NGX_HTTP_CLOCKCHAIN_FAIL;
        run->stamped = 0;

        ngx_http_clockchain_runner_settle(run);
        return;

    } else {
        ngx_http_clockchain_runner_again(run, reply);
        return;
    }

    /* refused for good (FENCED): nothing written, nothing counted */
    ngx_http_clockchain_runner_done(run, 0, 0);
}


/* not answered (Redis away), or refused: sent again later */

static void
ngx_http_clockchain_runner_again(ngx_http_clockchain_run_t *run,
    redisReply *reply)
{
    ngx_msec_t                     delay;
    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    /* lost with the connection: sent again once Redis is back */
    delay = NGX_HTTP_CLOCKCHAIN_TICK;

    if (reply) {
        /* refused: the script did not run, it is stamped again */

        if (run->refused == 0) {
            run->refused_at = ngx_current_msec;
        }

        delay = ngx_http_clockchain_runner_refused(&run->refused);
        run->stamped = 0;
        run->retry_at = ngx_current_msec + delay;

        if (run->retry_at == 0) {
            run->retry_at = 1;
        }

        if (ngx_http_clockchain_runner_bound(run, reply) != NGX_OK) {
            /* given up: the run is freed */
            ngx_http_clockchain_runner_commits(rn);
            return;
        }
    }

    ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                  "clockchain: could not commit job %s: %s; trying "
                  "again in %M ms", run->id,
                  reply == NULL ? "redis is not available"
                  : reply->type == REDIS_REPLY_ERROR ? reply->str
                  : "unexpected reply", delay);

    ngx_queue_insert_tail(&rn->commits, &run->wait);
    run->commit_wait = 1;
}


/*
 * wait=: the outcome is kept on the primary, beside its job; WAIT
 * answered, or could not.  Confirmed, it is revealed next; else its
 * script goes again (it writes the mark again for the next WAIT to count,
 * or, lost in a failover, the outcome itself while the claim is current).
 */

static void
ngx_http_clockchain_runner_replicated(void *data, redisReply *reply)
{
    ngx_http_clockchain_run_t *run = data;

    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    run->committing = 0;
    rn->ncommits--;

    if (ngx_http_clockchain_runner_unconfirmed(run, reply, "outcome")) {
        return;
    }

    (void) ngx_snprintf((u_char *) run->mark, sizeof(run->mark), "%s %s%Z",
                        run->token,
                        run->outcome == NGX_HTTP_CLOCKCHAIN_COMPLETE
                        ? "completed" : "failed");
    run->kept = 1;

    ngx_http_clockchain_runner_settle(run);
}


/* reveal.lua answered { version, final message or "", change message } */

static void
ngx_http_clockchain_runner_revealed(void *data, redisReply *reply)
{
    ngx_http_clockchain_run_t *run = data;

    u_char                        *p;
    redisReply                   **e;
    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    run->committing = 0;
    rn->ncommits--;

    e = (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3)
        ? reply->element : NULL;

    if (e && e[0]->type == REDIS_REPLY_INTEGER
        && e[1]->type == REDIS_REPLY_STRING
        && e[2]->type == REDIS_REPLY_STRING)
    {
        run->version = (uint64_t) e[0]->integer;

        if (run->reveal) {
            /* a claim's: what it was shows in the change message */
            run->outcome = ngx_strstrn((u_char *) e[2]->str, " completed ",
                                       sizeof(" completed ") - 2)
                           ? NGX_HTTP_CLOCKCHAIN_COMPLETE
                           : NGX_HTTP_CLOCKCHAIN_FAIL;
        }

        ngx_free(run->final.data);
        run->final.data = NULL;

        p = ngx_alloc(e[1]->len + e[2]->len, rn->log);

        if (p) {
            /* a path the zone refused is not announced as final either */
            run->final.data = p;
            run->final.len = run->nocache ? 0 : e[1]->len;
            p = ngx_cpymem(p, e[1]->str, e[1]->len);
            run->change.data = p;
            run->change.len = e[2]->len;
            ngx_memcpy(p, e[2]->str, e[2]->len);
        }

        run->committing = 1;
        rn->ncommits++;

        if (ngx_http_clockchain_store_wait(rn->mcf,
                                           ngx_http_clockchain_runner_shown,
                                           run)
            == NULL)
        {
            ngx_http_clockchain_runner_shown(run, NULL);
        }

        return;
    }

    if (ngx_http_clockchain_redis_script_error(reply, "FENCED")) {
        /* lost in a failover, and the job claimed again: not this one's */
        ngx_log_error(NGX_LOG_WARN, rn->log, 0,
                      "clockchain: the kept outcome of job %s is no longer "
                      "in redis: the job runs again", run->id);
        ngx_http_clockchain_runner_done(run, 0, 0);
        return;
    }

    ngx_http_clockchain_runner_again(run, reply);
}


/* wait=: the outcome is the job's on the primary, and now on the replicas */

static void
ngx_http_clockchain_runner_shown(void *data, redisReply *reply)
{
    ngx_http_clockchain_run_t *run = data;

    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    run->committing = 0;
    rn->ncommits--;

    if (ngx_http_clockchain_runner_unconfirmed(run, reply, "revealed outcome"))
    {
        return;
    }

    if (run->final.data) {
        ngx_http_clockchain_store_announce(rn->mcf, &run->final,
                                           &run->change);
    }

    /* a claim's: neither counted (claim did) nor known enough to cache */
    ngx_http_clockchain_runner_done(run, !run->reveal,
                                    !run->reveal && !run->nocache);
}


/*
 * WAIT's answer to a write of wait=: not confirmed, the run goes back to
 * the commits, to write again and ask again, later each time in a row.
 * Nothing is shown meanwhile: its waiters wait, as they would for Flash.
 */

static ngx_uint_t
ngx_http_clockchain_runner_unconfirmed(ngx_http_clockchain_run_t *run,
    redisReply *reply, const char *what)
{
    ngx_uint_t                     level;
    ngx_msec_t                     delay;
    const char                    *said;
    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    if (ngx_http_clockchain_store_confirmed(rn->mcf, reply, &said)) {
        run->unconfirmed = 0;
        run->retry_at = 0;
        return 0;
    }

    delay = ngx_http_clockchain_runner_refused(&run->unconfirmed);

    /* once in a row at warn: replicas away for long would flood the log */
    level = (run->unconfirmed == 1) ? NGX_LOG_WARN : NGX_LOG_INFO;

    ngx_log_error(level, rn->log, 0,
                  "clockchain: %ui replica(s) did not confirm the %s of "
                  "job %s in time (%s answered: %s): not shown yet, asking "
                  "again in %M ms", rn->mcf->redis.wait, what, run->id,
                  rn->mcf->redis.waitaof ? "WAITAOF" : "WAIT", said, delay);

    run->retry_at = ngx_current_msec + delay;

    if (run->retry_at == 0) {
        run->retry_at = 1;
    }

    ngx_queue_insert_tail(&rn->commits, &run->wait);
    run->commit_wait = 1;

    return 1;
}


/* the outcome is Redis's: the counters, the zone, the next claim */

static void
ngx_http_clockchain_runner_done(ngx_http_clockchain_run_t *run,
    ngx_uint_t written, ngx_uint_t cache)
{
    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    if (written && run->outcome == NGX_HTTP_CLOCKCHAIN_COMPLETE) {
        ngx_http_clockchain_stat_add(completed, 1);

    } else if (written && run->outcome != NGX_HTTP_CLOCKCHAIN_REQUEUE) {
        ngx_http_clockchain_stat_add(failed, 1);
    }

    if (cache) {
        ngx_http_clockchain_runner_cache(run,
                   run->outcome == NGX_HTTP_CLOCKCHAIN_COMPLETE
                   ? NGX_HTTP_CLOCKCHAIN_COMPLETED
                   : run->outcome == NGX_HTTP_CLOCKCHAIN_FAIL
                   ? NGX_HTTP_CLOCKCHAIN_FAILED
                   : NGX_HTTP_CLOCKCHAIN_PENDING);
    }

    ngx_http_clockchain_runner_free(run);

    ngx_http_clockchain_runner_commits(rn);

    if (!rn->exiting && rn->holder) {
        ngx_http_clockchain_runner_claim(rn);
    }
}


/*
 * A commit Redis keeps refusing must not keep its job processing, and its
 * call slot taken, forever.  A result Redis refuses for what it is (a script
 * error, not a full or busy Redis) fails the job with the reason after a few
 * tries.  Any outcome refused for a whole lease is given up: the slot is
 * freed, the heartbeats stop, and the job is claimed again when its lease
 * expires (and failed as stalled after clockchain_job_max_stalls).
 */

static ngx_int_t
ngx_http_clockchain_runner_bound(ngx_http_clockchain_run_t *run,
    redisReply *reply)
{
    size_t                         len;
    u_char                        *p, err[NGX_HTTP_CLOCKCHAIN_ERR_LEN];
    ngx_uint_t                     i, passing;
    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    /* what a Redis says while full, busy, starting or failing over */
    static const char *const  states[] = {
        "OOM", "BUSY", "LOADING", "READONLY", "MASTERDOWN", "NOREPLICAS",
        "TRYAGAIN", "NOSCRIPT", NULL
    };

    passing = 0;

    for (i = 0; reply->type == REDIS_REPLY_ERROR && states[i]; i++) {
        len = ngx_strlen(states[i]);

        if (ngx_strncmp(reply->str, states[i], len) == 0
            && (reply->str[len] == ' ' || reply->str[len] == '\0'))
        {
            passing = 1;
            break;
        }
    }

    if (run->outcome == NGX_HTTP_CLOCKCHAIN_COMPLETE
        && run->refused >= NGX_HTTP_CLOCKCHAIN_REFUSED_RESULT
        && !passing && !run->kept)
    {
        p = ngx_snprintf(err, sizeof(err) - 1,
                         "Graph store error: the result could not be "
                         "stored: %s",
                         reply->type == REDIS_REPLY_ERROR ? reply->str
                                                          : "unexpected reply");
        *p = '\0';

        ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                      "clockchain: redis refused the result of job %s %ui "
                      "times: failing the job", run->id, run->refused);

        ngx_free(run->error);
        run->error = ngx_http_clockchain_strdup((char *) err, p - err);
        run->outcome = NGX_HTTP_CLOCKCHAIN_FAIL;
        run->retry_at = 0;
        run->refused = 0;

        return NGX_OK;
    }

    if (run->refused > 1
        && ngx_current_msec - run->refused_at >= rn->mcf->job_lease)
    {
        ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                      "clockchain: gave up on the outcome of job %s: redis "
                      "refused it for %M ms (%s); the job is claimed again "
                      "when its lease expires", run->id,
                      ngx_current_msec - run->refused_at,
                      reply->type == REDIS_REPLY_ERROR ? reply->str
                                                       : "unexpected reply");

        ngx_http_clockchain_runner_free(run);

        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * What Redis refused (OOM when full, BUSY, a script error) would be refused
 * the same way at once: each try in a row waits twice as long, from one
 * tick up to 30 s.
 */

static ngx_msec_t
ngx_http_clockchain_runner_refused(ngx_uint_t *n)
{
    ngx_msec_t  delay;

    delay = (ngx_msec_t) NGX_HTTP_CLOCKCHAIN_TICK << ngx_min(*n, 9);
    (*n)++;

    return ngx_min(delay, NGX_HTTP_CLOCKCHAIN_REFUSED_MAX);
}


static void
ngx_http_clockchain_runner_heartbeat(ngx_http_clockchain_runner_t *rn)
{
    ngx_uint_t                   n;
    ngx_queue_t                 *q;
    const char                 **ids, **tokens;
    ngx_http_clockchain_run_t   *run;

    ids = ngx_alloc(2 * rn->nruns * sizeof(char *), rn->log);
    if (ids == NULL) {
        return;
    }

    tokens = ids + rn->nruns;
    n = 0;

    for (q = ngx_queue_head(&rn->runs);
         q != ngx_queue_sentinel(&rn->runs);
         q = ngx_queue_next(q))
    {
        run = ngx_queue_data(q, ngx_http_clockchain_run_t, queue);

        ids[n] = run->id;
        tokens[n++] = run->token;
    }

    ngx_http_clockchain_store_heartbeat(rn->mcf, ids, tokens, n, rn->log);
    ngx_free(ids);

    rn->last_beat = ngx_current_msec;
}


/* what this worker knows now, the zone shows at once */

static void
ngx_http_clockchain_runner_cache(ngx_http_clockchain_run_t *run,
    ngx_uint_t status)
{
    ngx_http_clockchain_job_t      job;
    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    ngx_memzero(&job, sizeof(ngx_http_clockchain_job_t));

    job.id = run->id;
    job.status = status;
    job.created_at = run->created_at;

    if (ngx_http_clockchain_is_terminal(status)) {
        job.completed_at = run->completed_at;
    }

    if (status == NGX_HTTP_CLOCKCHAIN_COMPLETED && run->path) {
        job.path = run->path;
        job.path_len = ngx_strlen(run->path);
    }

    if (status == NGX_HTTP_CLOCKCHAIN_FAILED && run->error) {
        job.error = run->error;
        job.error_len = ngx_strlen(run->error);
    }

    ngx_http_clockchain_store_cache(rn->mcf, &job, run->version, run->epoch);
}


static void
ngx_http_clockchain_runner_free(ngx_http_clockchain_run_t *run)
{
    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    ngx_queue_remove(&run->queue);
    rn->nruns--;
    rn->trim = ngx_current_msec ? ngx_current_msec : 1;

    if (run->commit_wait) {
        ngx_queue_remove(&run->wait);
    }

    ngx_http_clockchain_stat_set(in_flight, rn->nruns);

    if (rn->nruns == 0 && rn->drain.timer_set) {
        /* nothing left to drain: a leaving worker may go now */
        ngx_del_timer(&rn->drain);
    }

    ngx_http_clockchain_flash_free(&run->call);

    ngx_free(run->final.data);
    free(run->path);
    free(run->node);
    ngx_free(run->query);
    ngx_free(run->preset);
    ngx_free(run->visibility);
    ngx_free(run->created_by);
    ngx_free(run->error);
    ngx_free(run);
}


/*
 * The path complete.lua gave the job: another creator's node at the
 * canonical path gives this job a node of its own, at another path.
 */

static ngx_int_t
ngx_http_clockchain_runner_repath(ngx_http_clockchain_run_t *run,
    redisReply *path)
{
    char  *p;

    if (!ngx_http_clockchain_valid_path(path->str, path->len)) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "clockchain: job %s completed with a path that is "
                      "not canonical", run->id);
        return NGX_ERROR;
    }

    if (run->path && ngx_strlen(run->path) == path->len
        && ngx_strncmp(run->path, path->str, path->len) == 0)
    {
        return NGX_OK;
    }

    p = ngx_http_clockchain_strdup(path->str, path->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    free(run->path);
    run->path = p;

    return NGX_OK;
}


static char *
ngx_http_clockchain_strdup(const char *s, size_t len)
{
    char  *p;

    p = ngx_alloc(len + 1, ngx_cycle->log);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s, len);
    p[len] = '\0';

    return p;
}

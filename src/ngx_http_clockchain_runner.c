
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * The runner: one worker of each nginx holds the runner role (a lease in
 * the shared zone) and advances jobs.  It claims runnable jobs from Redis
 * (claim.lua), calls Flash for each (many calls in flight), turns the
 * scene into a graph node, and commits the outcome (complete.lua or
 * fail.lua), fenced by the claim's token.  While calls run, their job
 * leases are renewed (heartbeat.lua).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_shm.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_flash.h"
#include "ngx_http_clockchain_scene.h"


#define NGX_HTTP_CLOCKCHAIN_TICK          100
#define NGX_HTTP_CLOCKCHAIN_ROLE_TTL      1000
#define NGX_HTTP_CLOCKCHAIN_CLAIM_MAX     64
#define NGX_HTTP_CLOCKCHAIN_TOKEN_LEN     24


/* one claimed job, from the claim to its commit */

typedef struct {
    ngx_queue_t                        queue;
    ngx_http_clockchain_flash_call_t   call;
    char                               id[NGX_HTTP_CLOCKCHAIN_ID_LEN + 1];
    char                               token[NGX_HTTP_CLOCKCHAIN_TOKEN_LEN];
    char                               created_at[NGX_HTTP_CLOCKCHAIN_TIME_LEN];
    char                               completed_at[NGX_HTTP_CLOCKCHAIN_TIME_LEN];
    char                              *query;
    size_t                             query_len;
    char                              *preset;
    char                              *visibility;
    char                              *created_by;
    char                              *path;
    char                              *error;
    ngx_uint_t                         committing;
} ngx_http_clockchain_run_t;


typedef struct {
    ngx_http_clockchain_main_conf_t   *mcf;
    ngx_log_t                         *log;
    ngx_event_t                        tick;
    ngx_msec_t                         last_beat;
    ngx_uint_t                         generation;
    ngx_uint_t                         holder;
    ngx_uint_t                         claiming;
    ngx_queue_t                        runs;
    ngx_uint_t                         nruns;
    u_char                             name[NGX_MAXHOSTNAMELEN + NGX_INT_T_LEN];
    size_t                             name_len;
    ngx_uint_t                         exiting;
} ngx_http_clockchain_runner_t;


static void ngx_http_clockchain_runner_tick(ngx_event_t *ev);
static void ngx_http_clockchain_runner_claim(
    ngx_http_clockchain_runner_t *rn);
static void ngx_http_clockchain_runner_claimed(void *data,
    redisReply *reply);
static void ngx_http_clockchain_runner_start(ngx_http_clockchain_runner_t *rn,
    redisReply *job);
static void ngx_http_clockchain_runner_called(
    ngx_http_clockchain_flash_call_t *call);
static void ngx_http_clockchain_runner_outcome(
    ngx_http_clockchain_run_t *run);
static void ngx_http_clockchain_runner_commit(ngx_http_clockchain_run_t *run,
    const char *node);
static void ngx_http_clockchain_runner_committed(void *data,
    redisReply *reply);
static void ngx_http_clockchain_runner_heartbeat(
    ngx_http_clockchain_runner_t *rn);
static void ngx_http_clockchain_runner_cache(ngx_http_clockchain_run_t *run,
    ngx_uint_t status);
static void ngx_http_clockchain_runner_free(ngx_http_clockchain_run_t *run);
static size_t ngx_http_clockchain_runner_key(u_char *buf,
    ngx_http_clockchain_main_conf_t *mcf, const char *name,
    const char *id);
static char *ngx_http_clockchain_strdup(const char *s, size_t len);


static ngx_http_clockchain_runner_t  ngx_http_clockchain_runner;


ngx_int_t
ngx_http_clockchain_runner_init_process(ngx_cycle_t *cycle,
    ngx_http_clockchain_main_conf_t *mcf)
{
    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    ngx_memzero(rn, sizeof(ngx_http_clockchain_runner_t));

    rn->mcf = mcf;
    rn->log = cycle->log;
    ngx_queue_init(&rn->runs);

    rn->name_len = ngx_snprintf(rn->name, sizeof(rn->name), "%V:%P",
                                &cycle->hostname, ngx_pid) - rn->name;

    if (ngx_http_clockchain_flash_init(cycle, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    rn->tick.handler = ngx_http_clockchain_runner_tick;
    rn->tick.log = cycle->log;
    rn->tick.data = rn;
    rn->tick.cancelable = 1;

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

    /*
     * Calls still in flight are abandoned: their leases expire and the
     * jobs run again on the next holder.
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

    if (rn->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        if (rn->holder) {
            ngx_http_clockchain_shm_runner_release(rn->mcf->shm_zone,
                                                   ngx_pid);
            rn->holder = 0;
        }

        return;
    }

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

    if (rn->holder) {
        if (rn->nruns
            && ngx_current_msec - rn->last_beat >= rn->mcf->job_lease / 3)
        {
            ngx_http_clockchain_runner_heartbeat(rn);
        }

        ngx_http_clockchain_runner_claim(rn);
    }

    ngx_add_timer(&rn->tick, NGX_HTTP_CLOCKCHAIN_TICK);
}


static void
ngx_http_clockchain_runner_claim(ngx_http_clockchain_runner_t *rn)
{
    u_char                             queue[256], processing[256];
    u_char                             tokens[256], jobs[256];
    u_char                             now[NGX_INT64_LEN], lease[NGX_INT_T_LEN];
    u_char                             n[NGX_INT_T_LEN], stalls[NGX_INT_T_LEN];
    char                               iso[NGX_HTTP_CLOCKCHAIN_TIME_LEN];
    ngx_uint_t                         room;
    ngx_time_t                        *tp;
    const char                        *argv[10];
    size_t                             argvlen[10];
    ngx_http_clockchain_main_conf_t   *mcf = rn->mcf;

    if (rn->claiming || !ngx_http_clockchain_redis_available()) {
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

    tp = ngx_timeofday();
    ngx_http_clockchain_iso_now(iso);

    argv[0] = (char *) queue;
    argvlen[0] = ngx_http_clockchain_runner_key(queue, mcf, "queue", NULL);
    argv[1] = (char *) processing;
    argvlen[1] = ngx_http_clockchain_runner_key(processing, mcf,
                                                "processing", NULL);
    argv[2] = (char *) tokens;
    argvlen[2] = ngx_http_clockchain_runner_key(tokens, mcf, "tokens", NULL);
    argv[3] = (char *) now;
    argvlen[3] = ngx_sprintf(now, "%T%03M", tp->sec, tp->msec) - now;
    argv[4] = (char *) lease;
    argvlen[4] = ngx_sprintf(lease, "%M", mcf->job_lease) - lease;
    argv[5] = (char *) n;
    argvlen[5] = ngx_sprintf(n, "%ui", room) - n;
    argv[6] = (char *) jobs;
    argvlen[6] = ngx_http_clockchain_runner_key(jobs, mcf, "job:", NULL);
    argv[7] = (char *) rn->name;
    argvlen[7] = rn->name_len;
    argv[8] = (char *) stalls;
    argvlen[8] = ngx_sprintf(stalls, "%ui", mcf->job_max_stalls) - stalls;
    argv[9] = iso;
    argvlen[9] = NGX_HTTP_CLOCKCHAIN_TIME_LEN;

    if (ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_CLAIM,
                                       ngx_http_clockchain_runner_claimed,
                                       rn, 3, 10, argv, argvlen)
        != NULL)
    {
        rn->claiming = 1;
    }
}


static void
ngx_http_clockchain_runner_claimed(void *data, redisReply *reply)
{
    ngx_http_clockchain_runner_t *rn = data;

    size_t  i;

    rn->claiming = 0;

    if (reply == NULL) {
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY) {
        ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                      "clockchain: claiming jobs failed: %s",
                      reply->type == REDIS_REPLY_ERROR ? reply->str
                                                       : "unexpected reply");
        return;
    }

    for (i = 0; i < reply->elements; i++) {
        ngx_http_clockchain_runner_start(rn, reply->element[i]);
    }

    if (reply->elements && !rn->exiting && rn->holder) {
        /* more may be waiting: claim again without waiting for a tick */
        ngx_http_clockchain_runner_claim(rn);
    }
}


static void
ngx_http_clockchain_runner_start(ngx_http_clockchain_runner_t *rn,
    redisReply *job)
{
    ngx_uint_t                  i;
    redisReply                **f;
    ngx_http_clockchain_run_t  *run;

    if (job->type != REDIS_REPLY_ARRAY || job->elements != 7) {
        ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                      "clockchain: unexpected claim reply");
        return;
    }

    f = job->element;

    for (i = 0; i < 7; i++) {
        if (f[i]->type != REDIS_REPLY_STRING) {
            ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                          "clockchain: claimed job has missing fields");
            return;
        }
    }

    if (f[0]->len != NGX_HTTP_CLOCKCHAIN_ID_LEN
        || f[1]->len >= NGX_HTTP_CLOCKCHAIN_TOKEN_LEN
        || f[6]->len != NGX_HTTP_CLOCKCHAIN_TIME_LEN)
    {
        ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                      "clockchain: claimed job is malformed");
        return;
    }

    run = ngx_calloc(sizeof(ngx_http_clockchain_run_t), rn->log);
    if (run == NULL) {
        return;
    }

    ngx_memcpy(run->id, f[0]->str, NGX_HTTP_CLOCKCHAIN_ID_LEN);
    ngx_memcpy(run->token, f[1]->str, f[1]->len);
    ngx_memcpy(run->created_at, f[6]->str, NGX_HTTP_CLOCKCHAIN_TIME_LEN);

    run->query = ngx_http_clockchain_strdup(f[2]->str, f[2]->len);
    run->query_len = f[2]->len;
    run->preset = ngx_http_clockchain_strdup(f[3]->str, f[3]->len);
    run->visibility = ngx_http_clockchain_strdup(f[4]->str, f[4]->len);
    run->created_by = ngx_http_clockchain_strdup(f[5]->str, f[5]->len);

    ngx_queue_insert_tail(&rn->runs, &run->queue);
    rn->nruns++;

    if (run->query == NULL || run->preset == NULL || run->visibility == NULL
        || run->created_by == NULL)
    {
        ngx_http_clockchain_runner_free(run);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, rn->log, 0,
                   "clockchain: calling flash for job %s", run->id);

    ngx_http_clockchain_runner_cache(run, NGX_HTTP_CLOCKCHAIN_PROCESSING);

    run->call.done = ngx_http_clockchain_runner_called;
    run->call.data = run;

    if (ngx_http_clockchain_flash_start(&run->call, run->id, run->query,
                                        run->query_len, run->preset)
        != NGX_OK)
    {
        run->error = ngx_http_clockchain_strdup(
                         "Flash API error: the call could not be started",
                         sizeof("Flash API error: the call could not be "
                                "started") - 1);
        ngx_http_clockchain_runner_commit(run, NULL);
    }
}


static void
ngx_http_clockchain_runner_called(ngx_http_clockchain_flash_call_t *call)
{
    ngx_http_clockchain_run_t  *run = call->data;

    ngx_http_clockchain_runner_outcome(run);

    /* the answer can be large: free it before the commit round trip */

    if (run->call.body) {
        ngx_http_clockchain_flash_free(&run->call);
    }
}


static void
ngx_http_clockchain_runner_outcome(ngx_http_clockchain_run_t *run)
{
    int                                rc;
    char                              *node, err[1024];
    size_t                             len;
    ngx_http_clockchain_scene_in_t     in;
    ngx_http_clockchain_runner_t      *rn = &ngx_http_clockchain_runner;

    ngx_http_clockchain_iso_now(run->completed_at);

    err[0] = '\0';
    node = NULL;

    if (run->call.too_large
        || run->call.result == CURLE_FILESIZE_EXCEEDED)
    {
        ngx_snprintf((u_char *) err, sizeof(err),
                     "Flash API error: the response is larger than "
                     "%uz bytes%Z", rn->mcf->flash_max_response);

    } else if (run->call.result == CURLE_OPERATION_TIMEDOUT) {
        ngx_snprintf((u_char *) err, sizeof(err),
                     "Flash API timeout: no complete answer within %M ms%Z",
                     rn->mcf->flash_timeout);

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
                               run->call.len, &in, &run->path, &node,
                               err, sizeof(err));

        if (rc < 0) {
            ngx_snprintf((u_char *) err, sizeof(err),
                         "Graph indexing error: out of memory%Z");

        } else if (rc == 1) {
            ngx_http_clockchain_runner_commit(run, node);
            free(node);
            return;
        }
    }

    len = ngx_strlen(err);

    run->error = ngx_http_clockchain_strdup(err, len);

    ngx_log_error(NGX_LOG_WARN, rn->log, 0,
                  "clockchain: job %s failed: %s", run->id,
                  run->error ? run->error : "");

    ngx_http_clockchain_runner_commit(run, NULL);
}


static void
ngx_http_clockchain_runner_commit(ngx_http_clockchain_run_t *run,
    const char *node)
{
    u_char                           job[256], processing[256], prefix[256];
    u_char                           cap[NGX_INT_T_LEN];
    const char                      *argv[9];
    size_t                           argvlen[9];
    ngx_uint_t                       argc, script;
    ngx_http_clockchain_runner_t    *rn = &ngx_http_clockchain_runner;
    ngx_http_clockchain_main_conf_t *mcf = rn->mcf;

    run->committing = 1;

    argv[0] = (char *) job;
    argvlen[0] = ngx_http_clockchain_runner_key(job, mcf, "job:", run->id);
    argv[1] = (char *) processing;
    argvlen[1] = ngx_http_clockchain_runner_key(processing, mcf,
                                                "processing", NULL);
    argv[2] = run->token;
    argvlen[2] = ngx_strlen(run->token);
    argv[3] = run->id;
    argvlen[3] = NGX_HTTP_CLOCKCHAIN_ID_LEN;
    argv[4] = run->completed_at;
    argvlen[4] = NGX_HTTP_CLOCKCHAIN_TIME_LEN;

    if (node) {
        script = NGX_HTTP_CLOCKCHAIN_SCRIPT_COMPLETE;
        argv[5] = run->path;
        argvlen[5] = ngx_strlen(run->path);
        argv[6] = node;
        argvlen[6] = ngx_strlen(node);
        argv[7] = (char *) prefix;
        argvlen[7] = ngx_http_clockchain_runner_key(prefix, mcf, "", NULL);
        argv[8] = (char *) cap;
        argvlen[8] = ngx_sprintf(cap, "%ui", mcf->edges_max) - cap;
        argc = 9;

    } else {
        script = NGX_HTTP_CLOCKCHAIN_SCRIPT_FAIL;
        argv[5] = run->error ? run->error : "Job failed";
        argvlen[5] = ngx_strlen(argv[5]);
        argc = 6;
    }

    if (ngx_http_clockchain_redis_eval(script,
                                       ngx_http_clockchain_runner_committed,
                                       run, 2, argc, argv, argvlen)
        == NULL)
    {
        /*
         * Redis is away: the job keeps its lease until it expires, then
         * runs again (at least once, never lost).
         */
        ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                      "clockchain: could not commit job %s: redis is not "
                      "available, it will run again", run->id);
        ngx_http_clockchain_runner_free(run);
    }
}


static void
ngx_http_clockchain_runner_committed(void *data, redisReply *reply)
{
    ngx_http_clockchain_run_t *run = data;

    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    if (reply && reply->type == REDIS_REPLY_INTEGER) {
        ngx_http_clockchain_runner_cache(run, run->error
                                         ? NGX_HTTP_CLOCKCHAIN_FAILED
                                         : NGX_HTTP_CLOCKCHAIN_COMPLETED);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rn->log, 0,
                       "clockchain: job %s %s", run->id,
                       run->error ? "failed" : "completed");

    } else if (ngx_http_clockchain_redis_script_error(reply, "FENCED")) {
        ngx_log_error(NGX_LOG_WARN, rn->log, 0,
                      "clockchain: the outcome of job %s was refused: its "
                      "lease expired and it was claimed again", run->id);

    } else {
        ngx_log_error(NGX_LOG_ERR, rn->log, 0,
                      "clockchain: could not commit job %s: %s, it will "
                      "run again", run->id,
                      reply == NULL ? "redis is not available"
                      : reply->type == REDIS_REPLY_ERROR ? reply->str
                      : "unexpected reply");
    }

    ngx_http_clockchain_runner_free(run);

    if (!rn->exiting && rn->holder) {
        ngx_http_clockchain_runner_claim(rn);
    }
}


static void
ngx_http_clockchain_runner_heartbeat(ngx_http_clockchain_runner_t *rn)
{
    u_char                          *p, processing[256], jobs[256];
    u_char                           expiry[NGX_INT64_LEN];
    size_t                          *argvlen;
    ngx_uint_t                       argc;
    ngx_time_t                      *tp;
    ngx_queue_t                     *q;
    const char                     **argv;
    ngx_http_clockchain_run_t       *run;

    argc = 3 + 2 * rn->nruns;

    p = ngx_alloc(argc * (sizeof(char *) + sizeof(size_t)), rn->log);
    if (p == NULL) {
        return;
    }

    argv = (const char **) p;
    argvlen = (size_t *) (p + argc * sizeof(char *));

    tp = ngx_timeofday();

    argv[0] = (char *) processing;
    argvlen[0] = ngx_http_clockchain_runner_key(processing, rn->mcf,
                                                "processing", NULL);
    argv[1] = (char *) expiry;
    argvlen[1] = ngx_sprintf(expiry, "%T%03M",
                             tp->sec + (time_t) (rn->mcf->job_lease / 1000),
                             tp->msec) - expiry;
    argv[2] = (char *) jobs;
    argvlen[2] = ngx_http_clockchain_runner_key(jobs, rn->mcf, "job:", NULL);

    argc = 3;

    for (q = ngx_queue_head(&rn->runs);
         q != ngx_queue_sentinel(&rn->runs);
         q = ngx_queue_next(q))
    {
        run = ngx_queue_data(q, ngx_http_clockchain_run_t, queue);

        argv[argc] = run->id;
        argvlen[argc++] = NGX_HTTP_CLOCKCHAIN_ID_LEN;
        argv[argc] = run->token;
        argvlen[argc++] = ngx_strlen(run->token);
    }

    (void) ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_HEARTBEAT,
                                          NULL, NULL, 1, argc, argv,
                                          argvlen);
    ngx_free(p);

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

    ngx_http_clockchain_shm_put(rn->mcf->shm_zone, &job);
}


static void
ngx_http_clockchain_runner_free(ngx_http_clockchain_run_t *run)
{
    ngx_http_clockchain_runner_t  *rn = &ngx_http_clockchain_runner;

    ngx_queue_remove(&run->queue);
    rn->nruns--;

    ngx_http_clockchain_flash_free(&run->call);

    free(run->path);
    ngx_free(run->query);
    ngx_free(run->preset);
    ngx_free(run->visibility);
    ngx_free(run->created_by);
    ngx_free(run->error);
    ngx_free(run);
}


/* "<prefix>{cc}:v1:<name><id>" */

static size_t
ngx_http_clockchain_runner_key(u_char *buf,
    ngx_http_clockchain_main_conf_t *mcf, const char *name, const char *id)
{
    u_char  *p;

    p = ngx_snprintf(buf, 255, "%V{cc}:" NGX_HTTP_CLOCKCHAIN_SCHEMA ":%s%s",
                     &mcf->redis_prefix, name, id ? id : "");
    *p = '\0';

    return p - buf;
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

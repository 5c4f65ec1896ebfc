
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * Every change of a job is published by the Lua script that makes it, on
 * "<prefix>{cc}:v1:events" as "<id> <status> <version>"; just before a
 * change to a final state, the whole of it goes to "<that channel>:final"
 * as "<id> <status> <version> <created_at> <completed_at> <path or error>"
 * (two channels: a node of an older version reads only the first).  Each
 * worker subscribes to both on a connection of its own: a change marks
 * what the shared zone holds of the job as outdated (so no nginx of the
 * fleet serves an old state), a final state is cached as it is (so no one
 * asks Redis for it again, and the change that follows it finds the same
 * version there), and whoever registered with
 * ngx_http_clockchain_events_on_change() is told (the long-poll waiters of
 * GET /api/jobs/{id}?wait=N, in wait.c): of each change, and of each new
 * subscription, after which changes may have been missed.
 *
 * A third channel, "<that channel>:moments", names the graph nodes whose
 * public answer a script changed (publish.lua, complete.lua): paths
 * separated by spaces, or "*" for every one.  What the zone caches of
 * them goes (ngx_http_clockchain_shm_moment_mark()).
 *
 * A fourth, "<that channel>:agents", has the SHA-256 of an agent's token
 * that was revoked (agents.lua); whoever registered with
 * ngx_http_clockchain_events_on_revoke() (agents.c) drops it.  Only an
 * nginx with writer tokens configured subscribes to it.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_http.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_shm.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_redis_adapter.h"
#include "ngx_http_clockchain_events.h"
#include "ngx_http_clockchain_store.h"
#include "ngx_http_clockchain_stats.h"


#define NGX_HTTP_CLOCKCHAIN_EVENTS_BACKOFF_MIN  50
#define NGX_HTTP_CLOCKCHAIN_EVENTS_BACKOFF_MAX  2000


typedef struct {
    redisAsyncContext                 *ac;
    ngx_uint_t                         subscribed;
    ngx_event_t                        reconnect;
    ngx_event_t                        deadline;   /* for the SUBSCRIBE */
    ngx_msec_t                         backoff;
    ngx_http_clockchain_main_conf_t   *mcf;
    ngx_http_clockchain_redis_conf_t  *rcf;        /* &mcf->redis */
    ngx_log_t                         *log;
    u_char                             channel[256];
    size_t                             channel_len;

    /* where it connected: "host:port" of the master known then, or unix */
    u_char                             addr[NGX_SOCKADDR_STRLEN
                                            + NGX_INT_T_LEN + 2];

    /* who is told: the long-poll waiters (wait.c) */
    ngx_http_clockchain_events_change_pt        changed;
    ngx_http_clockchain_events_resubscribed_pt  resubscribed;

    /* who is told of a revoked agent token: agents.c */
    ngx_http_clockchain_events_revoked_pt       revoked;

    ngx_uint_t                         exiting;
} ngx_http_clockchain_events_t;


static void ngx_http_clockchain_events_connect(void);
static void ngx_http_clockchain_events_lost(void);
static void ngx_http_clockchain_events_reconnect_handler(ngx_event_t *ev);
static void ngx_http_clockchain_events_deadline_handler(ngx_event_t *ev);
static void ngx_http_clockchain_events_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_clockchain_events_disconnected(
    const redisAsyncContext *ac, int status);
static void ngx_http_clockchain_events_auth_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_clockchain_events_message(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_clockchain_events_change(u_char *p, size_t len);
static ngx_int_t ngx_http_clockchain_events_final(u_char *id,
    ngx_uint_t status, uint64_t version, u_char *p, u_char *last);
static void ngx_http_clockchain_events_moments(u_char *p, size_t len);


static ngx_http_clockchain_events_t  ngx_http_clockchain_events;


ngx_int_t
ngx_http_clockchain_events_init_process(ngx_cycle_t *cycle,
    ngx_http_clockchain_main_conf_t *mcf)
{
    ngx_http_clockchain_events_t  *ev = &ngx_http_clockchain_events;

    ngx_memzero(ev, sizeof(ngx_http_clockchain_events_t));

    ev->mcf = mcf;
    ev->rcf = &mcf->redis;
    ev->log = cycle->log;
    ev->backoff = NGX_HTTP_CLOCKCHAIN_EVENTS_BACKOFF_MIN;
    ev->channel_len = ngx_http_clockchain_store_channel(mcf, ev->channel,
                                                         sizeof(ev->channel));

    ev->reconnect.handler = ngx_http_clockchain_events_reconnect_handler;
    ev->reconnect.log = cycle->log;
    ev->reconnect.data = ev;
    ev->reconnect.cancelable = 1;

    ev->deadline.handler = ngx_http_clockchain_events_deadline_handler;
    ev->deadline.log = cycle->log;
    ev->deadline.data = ev;
    ev->deadline.cancelable = 1;

    ngx_http_clockchain_events_connect();

    return NGX_OK;
}


void
ngx_http_clockchain_events_exit_process(ngx_cycle_t *cycle)
{
    redisAsyncContext             *ac;
    ngx_http_clockchain_events_t  *ev = &ngx_http_clockchain_events;

    if (ev->mcf == NULL) {
        return;
    }

    ev->exiting = 1;

    if (ev->reconnect.timer_set) {
        ngx_del_timer(&ev->reconnect);
    }

    if (ev->deadline.timer_set) {
        ngx_del_timer(&ev->deadline);
    }

    if (ev->ac) {
        ac = ev->ac;
        ev->ac = NULL;
        redisAsyncFree(ac);
    }
}


ngx_uint_t
ngx_http_clockchain_events_subscribed(void)
{
    return ngx_http_clockchain_events.subscribed;
}


/*
 * The command connection was told where the master is (Sentinel).  A
 * subscription elsewhere goes there too: the old master, demoted but
 * still up, would otherwise keep it and hear nothing of the new one (or
 * only what reaches it as a replica, with gaps nobody notices).
 */

void
ngx_http_clockchain_events_follow(void)
{
    u_char                        *host, *p;
    u_char                         addr[NGX_SOCKADDR_STRLEN
                                        + NGX_INT_T_LEN + 2];
    ngx_int_t                      port;
    redisAsyncContext             *ac;
    ngx_http_clockchain_events_t  *ev = &ngx_http_clockchain_events;

    if (ev->mcf == NULL || ev->exiting || ev->ac == NULL
        || ev->rcf->unix_path
        || ngx_http_clockchain_redis_master(&host, &port) != NGX_OK)
    {
        /* not connected: the next connect goes to the master named last */
        return;
    }

    p = ngx_snprintf(addr, sizeof(addr) - 1, "%s:%i", host, port);
    *p = '\0';

    if (ngx_strcmp(addr, ev->addr) == 0) {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                  "clockchain: the events subscription moves from %s to "
                  "the master at %s", ev->addr, addr);

    /* not a loss to warn about: it comes back at once, on the master */
    ev->subscribed = 0;

    ac = ev->ac;
    ev->ac = NULL;
    redisAsyncFree(ac);

    ngx_http_clockchain_events_lost();
}


static void
ngx_http_clockchain_events_connect(void)
{
    u_char                        *host, *p;
    u_char                         final[256 + sizeof(":final")];
    u_char                         moments[256 + sizeof(":moments")];
    u_char                         agents[256 + sizeof(":agents")];
    ngx_int_t                      port;
    redisAsyncContext             *ac;
    const char                    *argv[5];
    size_t                         argvlen[5];
    ngx_http_clockchain_events_t  *ev = &ngx_http_clockchain_events;

    if (ev->rcf->unix_path) {
        ac = redisAsyncConnectUnix((char *) ev->rcf->unix_path);
        p = ngx_snprintf(ev->addr, sizeof(ev->addr) - 1, "unix:%s",
                         ev->rcf->unix_path);
        *p = '\0';

    } else if (ngx_http_clockchain_redis_master(&host, &port) == NGX_OK) {
        ac = redisAsyncConnect((char *) host, (int) port);
        p = ngx_snprintf(ev->addr, sizeof(ev->addr) - 1, "%s:%i",
                         host, port);
        *p = '\0';

    } else {
        /* the master is not known yet: Sentinel is being asked */
        ngx_http_clockchain_events_lost();
        return;
    }

    if (ac == NULL || ac->err) {
        if (ac) {
            redisAsyncFree(ac);
        }

        ngx_http_clockchain_events_lost();
        return;
    }

    if (ngx_http_clockchain_redis_attach(ac, ev->log) != NGX_OK) {
        redisAsyncFree(ac);
        ngx_http_clockchain_events_lost();
        return;
    }

    redisAsyncSetConnectCallback(ac, ngx_http_clockchain_events_connected);
    redisAsyncSetDisconnectCallback(ac,
                                    ngx_http_clockchain_events_disconnected);

    ev->ac = ac;

    if (ev->rcf->password.len) {
        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = (char *) ev->rcf->password.data;
        argvlen[1] = ev->rcf->password.len;

        (void) redisAsyncCommandArgv(ac, ngx_http_clockchain_events_auth_reply,
                                     NULL, 2, argv, argvlen);
    }

    /*
     * "<channel>" has every change as "<id> <status> <version>", as every
     * version of the module reads it; "<channel>:final" has a final state
     * whole, published just before the change itself; "<channel>:moments"
     * the graph nodes whose public answer changed; "<channel>:agents"
     * the revoked agent tokens, for an nginx that checks them (writer
     * tokens configured; without, no token is ever looked at).  One
     * SUBSCRIBE: all are heard from its first confirmation on.
     */

    argv[0] = "SUBSCRIBE";
    argvlen[0] = sizeof("SUBSCRIBE") - 1;
    argv[1] = (char *) ev->channel;
    argvlen[1] = ev->channel_len;
    argv[2] = (char *) final;
    argvlen[2] = ngx_sprintf(final, "%*s:final", ev->channel_len, ev->channel)
                 - final;
    argv[3] = (char *) moments;
    argvlen[3] = ngx_sprintf(moments, "%*s:moments", ev->channel_len,
                             ev->channel)
                 - moments;
    argv[4] = (char *) agents;
    argvlen[4] = ngx_sprintf(agents, "%*s:agents", ev->channel_len,
                             ev->channel)
                 - agents;

    (void) redisAsyncCommandArgv(ac, ngx_http_clockchain_events_message,
                                 NULL, ev->mcf->writers ? 5 : 4, argv,
                                 argvlen);

    /* a Redis that takes the connection but never answers is let go */
    if (ev->deadline.timer_set) {
        ngx_del_timer(&ev->deadline);
    }

    ngx_add_timer(&ev->deadline, ev->rcf->timeout);
}


static void
ngx_http_clockchain_events_lost(void)
{
    ngx_http_clockchain_events_t  *ev = &ngx_http_clockchain_events;

    ev->ac = NULL;
    ev->subscribed = 0;

    if (ev->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (!ev->reconnect.timer_set) {
        ngx_add_timer(&ev->reconnect, ev->backoff);
        ev->backoff = ngx_min(ev->backoff * 2,
                              NGX_HTTP_CLOCKCHAIN_EVENTS_BACKOFF_MAX);
    }
}


static void
ngx_http_clockchain_events_reconnect_handler(ngx_event_t *rev)
{
    ngx_http_clockchain_events_t  *ev = rev->data;

    if (ev->exiting || ngx_exiting || ev->ac) {
        return;
    }

    ngx_http_clockchain_events_connect();
}


static void
ngx_http_clockchain_events_deadline_handler(ngx_event_t *dev)
{
    ngx_http_clockchain_events_t  *ev = dev->data;

    redisAsyncContext  *ac;

    if (ev->exiting || ev->subscribed || ev->ac == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                  "clockchain: redis did not confirm the events subscription "
                  "in %M ms, connecting again", ev->rcf->timeout);

    ac = ev->ac;
    ev->ac = NULL;
    redisAsyncFree(ac);

    ngx_http_clockchain_events_lost();
}


static void
ngx_http_clockchain_events_connected(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns */
        ngx_http_clockchain_events_lost();
    }
}


static void
ngx_http_clockchain_events_disconnected(const redisAsyncContext *ac,
    int status)
{
    ngx_http_clockchain_events_t  *ev = &ngx_http_clockchain_events;

    if (!ev->exiting && ev->subscribed) {
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "clockchain: lost the events subscription, cached "
                      "jobs are checked with redis until it is back");
    }

    ngx_http_clockchain_events_lost();
}


static void
ngx_http_clockchain_events_auth_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply  *reply = r;

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_http_clockchain_events.log, 0,
                      "clockchain: redis AUTH failed for the events "
                      "subscription: %s", reply->str);
    }
}


static void
ngx_http_clockchain_events_message(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                    *reply = r;
    ngx_http_clockchain_events_t  *ev = &ngx_http_clockchain_events;

    if (reply == NULL || ev->exiting) {
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        if (reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                          "clockchain: SUBSCRIBE failed: %s", reply->str);
        }

        return;
    }

    if (ngx_strcmp(reply->element[0]->str, "subscribe") == 0) {

        if (reply->element[1]->type != REDIS_REPLY_STRING
            || reply->element[1]->len != ev->channel_len
            || ngx_memcmp(reply->element[1]->str, ev->channel,
                          ev->channel_len)
               != 0)
        {
            /* ":final" only adds to what the changes channel says */
            return;
        }

        ev->subscribed = 1;
        ev->backoff = NGX_HTTP_CLOCKCHAIN_EVENTS_BACKOFF_MIN;

        if (ev->deadline.timer_set) {
            ngx_del_timer(&ev->deadline);
        }

        /* changes made while nobody listened: ask Redis again */
        if (!ngx_http_clockchain_bug(EPOCH)) {
            ngx_http_clockchain_shm_new_epoch(ev->mcf->shm_zone);
        }

        if (ev->resubscribed) {
            ev->resubscribed();
        }

        ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                      "clockchain: subscribed to \"%s\" at %s",
                      ev->channel, ev->addr);
        return;
    }

    if (ngx_strcmp(reply->element[0]->str, "message") == 0
        && reply->element[1]->type == REDIS_REPLY_STRING
        && reply->element[1]->len == ev->channel_len + sizeof(":moments") - 1
        && reply->element[2]->type == REDIS_REPLY_STRING
        && ngx_strncmp(reply->element[1]->str + ev->channel_len, ":moments",
                       sizeof(":moments") - 1)
           == 0)
    {
        ngx_http_clockchain_events_moments((u_char *) reply->element[2]->str,
                                           reply->element[2]->len);
        return;
    }

    if (ngx_strcmp(reply->element[0]->str, "message") == 0
        && reply->element[1]->type == REDIS_REPLY_STRING
        && reply->element[1]->len == ev->channel_len + sizeof(":agents") - 1
        && reply->element[2]->type == REDIS_REPLY_STRING
        && ngx_strncmp(reply->element[1]->str + ev->channel_len, ":agents",
                       sizeof(":agents") - 1)
           == 0)
    {
        if (ev->revoked) {
            ev->revoked((u_char *) reply->element[2]->str,
                        reply->element[2]->len);
        }

        return;
    }

    if (ngx_strcmp(reply->element[0]->str, "message") == 0
        && reply->element[2]->type == REDIS_REPLY_STRING)
    {
        ngx_http_clockchain_events_change((u_char *) reply->element[2]->str,
                                          reply->element[2]->len);
    }
}


/* "<id> <status> <version>" */

static void
ngx_http_clockchain_events_change(u_char *p, size_t len)
{
    u_char                         *s, *last, *id;
    uint64_t                        version;
    ngx_uint_t                      status;
    ngx_http_clockchain_events_t   *ev = &ngx_http_clockchain_events;

    id = p;
    last = p + len;

    if (len < NGX_HTTP_CLOCKCHAIN_ID_LEN + 4
        || !ngx_http_clockchain_valid_id((char *) p,
                                         NGX_HTTP_CLOCKCHAIN_ID_LEN)
        || p[NGX_HTTP_CLOCKCHAIN_ID_LEN] != ' ')
    {
        goto invalid;
    }

    s = p + NGX_HTTP_CLOCKCHAIN_ID_LEN + 1;
    p = ngx_strlchr(s, last, ' ');

    if (p == NULL) {
        goto invalid;
    }

    status = ngx_http_clockchain_status_parse((char *) s, p - s);

    version = 0;

    for (p++; p < last && *p != ' '; p++) {
        if (*p < '0' || *p > '9' || version > 1000000000000000ULL) {
            goto invalid;
        }

        version = version * 10 + (*p - '0');
    }

    if (status == NGX_HTTP_CLOCKCHAIN_UNKNOWN || version == 0) {
        goto invalid;
    }

    if (p < last && !ngx_http_clockchain_is_terminal(status)) {
        goto invalid;
    }

    if (p == last
        || ngx_http_clockchain_events_final(id, status, version, p, last)
           != NGX_OK)
    {
        /* no final state, or one that is not usable: Redis will tell */

        if (!ngx_http_clockchain_is_terminal(status)) {
            ngx_http_clockchain_shm_mark(ev->mcf->shm_zone, id, version);
            return;
        }

        ngx_http_clockchain_shm_mark_final(ev->mcf->shm_zone, id, status,
                                           version);
    }

    if (ev->changed) {
        ev->changed(id);
    }

    return;

invalid:

    ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                  "clockchain: ignored a malformed event \"%*s\"",
                  ngx_min(len, 128), last - len);
}


/*
 * " <created_at> <completed_at> <path or error>" after a final status: the
 * job as it ended, cached as it is, with the same checks as a state read
 * from Redis.
 */

static ngx_int_t
ngx_http_clockchain_events_final(u_char *id, ngx_uint_t status,
    uint64_t version, u_char *p, u_char *last)
{
    ngx_http_clockchain_job_t      job;
    ngx_http_clockchain_events_t  *ev = &ngx_http_clockchain_events;

    if (last - p < 2 * (NGX_HTTP_CLOCKCHAIN_TIME_LEN + 1) + 1
        || p[NGX_HTTP_CLOCKCHAIN_TIME_LEN + 1] != ' '
        || p[2 * (NGX_HTTP_CLOCKCHAIN_TIME_LEN + 1)] != ' ')
    {
        goto invalid;
    }

    ngx_memzero(&job, sizeof(ngx_http_clockchain_job_t));

    job.id = (char *) id;
    job.status = status;
    job.created_at = (char *) p + 1;
    job.completed_at = (char *) p + NGX_HTTP_CLOCKCHAIN_TIME_LEN + 2;

    if (ngx_http_clockchain_iso_parse(job.created_at) < 0
        || ngx_http_clockchain_iso_parse(job.completed_at) < 0)
    {
        goto invalid;
    }

    p += 2 * (NGX_HTTP_CLOCKCHAIN_TIME_LEN + 1) + 1;

    if (status == NGX_HTTP_CLOCKCHAIN_COMPLETED) {
        if (!ngx_http_clockchain_valid_path((char *) p, last - p)) {
            goto invalid;
        }

        job.path = (char *) p;
        job.path_len = last - p;

    } else {
        job.error = (char *) p;
        job.error_len = last - p;
    }

    /* a final state: trusted in any epoch */
    ngx_http_clockchain_store_cache(ev->mcf, &job, version,
                             ngx_http_clockchain_shm_epoch(ev->mcf->shm_zone));

    return NGX_OK;

invalid:

    ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                  "clockchain: ignored the final state in a malformed event "
                  "\"%*s\", job %*s is read from redis",
                  ngx_min((size_t) (last - id), 128), id,
                  (size_t) NGX_HTTP_CLOCKCHAIN_ID_LEN, id);

    return NGX_DECLINED;
}


/*
 * "<path> <path> ..." or "*": the public answers of these moments changed.
 * A message that does not parse changes every moment: which of them it
 * meant is not known.
 */

static void
ngx_http_clockchain_events_moments(u_char *p, size_t len)
{
    u_char                        *last, *s;
    ngx_str_t                      path;
    ngx_http_clockchain_events_t  *ev = &ngx_http_clockchain_events;

    ngx_http_clockchain_stat_add(moment_events, 1);

    last = p + len;

    for (s = p; s < last; s = p + 1) {
        p = ngx_strlchr(s, last, ' ');
        if (p == NULL) {
            p = last;
        }

        if (!ngx_http_clockchain_valid_path((char *) s, p - s)) {
            break;
        }
    }

    if (len == 0 || s < last || last[-1] == ' ') {
        if (len != 1 || *(last - 1) != '*') {
            ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                          "clockchain: a moments event that is not a list "
                          "of paths, \"%*s\": every cached moment is read "
                          "from redis again", ngx_min(len, 128), last - len);
        }

        ngx_http_clockchain_shm_moment_mark(ev->mcf->shm_zone, NULL);
        return;
    }

    for (s = last - len; s < last; s = p + 1) {
        p = ngx_strlchr(s, last, ' ');
        if (p == NULL) {
            p = last;
        }

        path.data = s;
        path.len = p - s;

        ngx_http_clockchain_shm_moment_mark(ev->mcf->shm_zone, &path);
    }
}


/*
 * Who is told of a change and of a new subscription: the long-poll side
 * registers itself in init_process, after events_init_process().
 */

void
ngx_http_clockchain_events_on_change(
    ngx_http_clockchain_events_change_pt changed,
    ngx_http_clockchain_events_resubscribed_pt resubscribed)
{
    ngx_http_clockchain_events.changed = changed;
    ngx_http_clockchain_events.resubscribed = resubscribed;
}


void
ngx_http_clockchain_events_on_revoke(
    ngx_http_clockchain_events_revoked_pt revoked)
{
    ngx_http_clockchain_events.revoked = revoked;
}

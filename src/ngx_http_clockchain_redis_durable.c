
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * With clockchain_redis wait=N, each create and its WAIT go on a small
 * pool of connections that carry one of them at a time: WAIT blocks the
 * connection it is sent on, and counts only the writes made on it.  The
 * command connection, and with it GETs, heartbeats and claims, never
 * waits behind a WAIT.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_redis_private.h"
#include "ngx_http_clockchain_stats.h"
#include "ngx_http_clockchain_redis_adapter.h"


/* per worker: POSTs queued for a connection */
#define NGX_HTTP_CLOCKCHAIN_DURABLE_QUEUE       256


static ngx_http_clockchain_redis_durable_t *
    ngx_http_clockchain_redis_durable_pick(void);
static ngx_int_t ngx_http_clockchain_redis_durable_open(
    ngx_http_clockchain_redis_durable_t *d);
static ngx_int_t ngx_http_clockchain_redis_durable_send(
    ngx_http_clockchain_redis_durable_t *d,
    ngx_http_clockchain_redis_op_t *op, int argc, const char **argv,
    const size_t *argvlen, ngx_msec_t timeout);
static void ngx_http_clockchain_redis_durable_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_clockchain_redis_durable_connected(
    const redisAsyncContext *ac, int status);
static void ngx_http_clockchain_redis_durable_disconnected(
    const redisAsyncContext *ac, int status);
static void ngx_http_clockchain_redis_durable_timeout(ngx_event_t *ev);
static void ngx_http_clockchain_redis_durable_dispatch(ngx_event_t *ev);
static void ngx_http_clockchain_redis_durable_expire(ngx_event_t *ev);
static void ngx_http_clockchain_redis_durable_expire_at_head(void);
static void ngx_http_clockchain_redis_durable_close(
    ngx_http_clockchain_redis_durable_t *d);


void
ngx_http_clockchain_redis_durable_init(ngx_cycle_t *cycle)
{
    ngx_uint_t                    i;
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    /*
     * Opened when POSTs need them.  Timeouts not cancelable, as the
     * command connection's.
     */

    for (i = 0; i < NGX_HTTP_CLOCKCHAIN_DURABLE_CONNS; i++) {
        rd->durable[i].timeout.handler =
                                      ngx_http_clockchain_redis_durable_timeout;
        rd->durable[i].timeout.log = cycle->log;
        rd->durable[i].timeout.data = &rd->durable[i];
    }

    ngx_queue_init(&rd->queue);
    rd->dispatch.handler = ngx_http_clockchain_redis_durable_dispatch;
    rd->dispatch.log = cycle->log;
    rd->dispatch.data = rd;

    rd->expire.handler = ngx_http_clockchain_redis_durable_expire;
    rd->expire.log = cycle->log;
    rd->expire.data = rd;
}


void
ngx_http_clockchain_redis_durable_exit(void)
{
    ngx_uint_t                       i;
    ngx_queue_t                     *q;
    ngx_http_clockchain_redis_op_t  *op;
    ngx_http_clockchain_redis_t     *rd = &ngx_http_clockchain_redis;

    if (rd->dispatch.posted) {
        ngx_delete_posted_event(&rd->dispatch);
    }

    if (rd->expire.timer_set) {
        ngx_del_timer(&rd->expire);
    }

    /* replies still due come back NULL, and nobody is told */

    for (i = 0; i < NGX_HTTP_CLOCKCHAIN_DURABLE_CONNS; i++) {
        ngx_http_clockchain_redis_durable_close(&rd->durable[i]);
    }

    while (!ngx_queue_empty(&rd->queue)) {
        q = ngx_queue_head(&rd->queue);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_http_clockchain_redis_op_t, queue);
        ngx_free(op);
    }

    rd->queued = 0;
}


/*
 * clockchain_redis wait=N: the create goes on a connection of the pool, and
 * its WAIT after it on the same one, so that WAIT counts that write and
 * blocks nothing else.  The body is sent with EVAL each time: no SHA1 to
 * learn per connection, and no NOSCRIPT after a SCRIPT FLUSH.  When every
 * connection is busy the op waits in a queue; its timeout= counts from
 * here, queued or sent, so that a POST never gets a second one.
 */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_redis_durable_eval(ngx_uint_t script,
    ngx_http_clockchain_redis_handler_pt handler, void *data, int nkeys,
    int argc, const char **argv, const size_t *argvlen)
{
    ngx_http_clockchain_redis_op_t       *op;
    ngx_http_clockchain_redis_durable_t  *d;
    ngx_http_clockchain_redis_t          *rd = &ngx_http_clockchain_redis;

    /* without the command connection, Redis is most likely down */

    if (rd->exiting || !ngx_http_clockchain_redis_available()) {
        return NULL;
    }

    op = ngx_http_clockchain_redis_op_alloc(script, handler, data, nkeys,
                                            argc, argv, argvlen);
    if (op == NULL) {
        return NULL;
    }

    op->argv[0] = "EVAL";
    op->argvlen[0] = 4;
    op->argv[1] = ngx_http_clockchain_scripts[script];
    op->argvlen[1] = ngx_strlen(ngx_http_clockchain_scripts[script]);

    /* sent from the handler of a reply (new ids): on that connection */

    d = rd->current;

    if (d == NULL || d->op != NULL) {
        d = ngx_http_clockchain_redis_durable_pick();
    }

    if (d == NULL) {
        if (rd->queued >= NGX_HTTP_CLOCKCHAIN_DURABLE_QUEUE) {
            ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                          "clockchain: %ui POSTs already wait for a "
                          "connection to redis, refusing this one",
                          rd->queued);
            ngx_free(op);
            return NULL;
        }

        op->queued = ngx_current_msec;
        ngx_queue_insert_tail(&rd->queue, &op->queue);
        rd->queued++;

        if (!rd->expire.timer_set) {
            ngx_http_clockchain_redis_durable_expire_at_head();
        }

        return op;
    }

    if (ngx_http_clockchain_redis_durable_send(d, op, op->argc, op->argv,
                                               op->argvlen,
                                               rd->rcf->timeout)
        != NGX_OK)
    {
        ngx_free(op);
        return NULL;
    }

    return op;
}


/* only from the handler of a durable_eval's reply: on the same connection */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_redis_durable_command(
    ngx_http_clockchain_redis_handler_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen)
{
    ngx_http_clockchain_redis_op_t       *op;
    ngx_http_clockchain_redis_durable_t  *d;

    d = ngx_http_clockchain_redis.current;

    if (d == NULL || d->op != NULL || d->ac == NULL) {
        return NULL;
    }

    op = ngx_calloc(sizeof(ngx_http_clockchain_redis_op_t),
                    ngx_http_clockchain_redis.log);
    if (op == NULL) {
        return NULL;
    }

    op->handler = handler;
    op->data = data;
    op->script = -1;

    if (ngx_http_clockchain_redis_durable_send(d, op, argc, argv, argvlen,
                                               ngx_http_clockchain_redis.rcf
                                                                  ->timeout)
        != NGX_OK)
    {
        ngx_free(op);
        return NULL;
    }

    return op;
}


/* an idle connection, else a slot to open one in, else NULL: all busy */

static ngx_http_clockchain_redis_durable_t *
ngx_http_clockchain_redis_durable_pick(void)
{
    u_char                               *host;
    ngx_int_t                             port;
    ngx_uint_t                            i;
    ngx_http_clockchain_redis_durable_t  *d, *empty;
    ngx_http_clockchain_redis_t          *rd = &ngx_http_clockchain_redis;

    empty = NULL;

    if (rd->rcf->sentinels == NULL
        || ngx_http_clockchain_redis_master(&host, &port) != NGX_OK)
    {
        host = NULL;
        port = 0;
    }

    for (i = 0; i < NGX_HTTP_CLOCKCHAIN_DURABLE_CONNS; i++) {
        d = &rd->durable[i];

        if (d->op) {
            continue;
        }

        if (d->ac && host
            && (d->port != port
                || ngx_strcmp(d->host, host) != 0))
        {
            /* Sentinel named another master since it was opened */
            ngx_http_clockchain_redis_durable_close(d);
        }

        if (d->ac) {
            return d;
        }

        if (empty == NULL) {
            empty = d;
        }
    }

    return empty;
}


static ngx_int_t
ngx_http_clockchain_redis_durable_open(ngx_http_clockchain_redis_durable_t *d)
{
    u_char                       *host;
    ngx_int_t                     port;
    redisAsyncContext            *ac;
    const char                   *argv[2];
    size_t                        argvlen[2];
    u_char                        db[NGX_INT_T_LEN];
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    host = NULL;
    port = 0;

    if (rd->rcf->unix_path) {
        ac = redisAsyncConnectUnix((char *) rd->rcf->unix_path);

    } else if (ngx_http_clockchain_redis_master(&host, &port) == NGX_OK) {
        ac = redisAsyncConnect((char *) host, (int) port);

    } else {
        /* the master is not known yet: Sentinel is being asked */
        return NGX_ERROR;
    }

    if (ac == NULL || ac->err
        || ngx_http_clockchain_redis_attach(ac, rd->log) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "clockchain: could not connect to redis at \"%V\" "
                      "for a POST: %s", &rd->rcf->addr,
                      ac && ac->err ? ac->errstr : "no memory");
        if (ac) {
            redisAsyncFree(ac);
        }

        return NGX_ERROR;
    }

    ac->data = d;
    redisAsyncSetConnectCallback(ac,
                                 ngx_http_clockchain_redis_durable_connected);
    redisAsyncSetDisconnectCallback(ac,
                               ngx_http_clockchain_redis_durable_disconnected);

    d->ac = ac;

    if (host) {
        (void) ngx_cpystrn(d->host, host, NGX_SOCKADDR_STRLEN);
        d->port = port;
    }

    /* as on the command connection, ahead of the op */

    if (rd->rcf->password.len) {
        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = (char *) rd->rcf->password.data;
        argvlen[1] = rd->rcf->password.len;

        (void) redisAsyncCommandArgv(ac,
                                     ngx_http_clockchain_redis_durable_reply,
                                     NULL, 2, argv, argvlen);
    }

    if (rd->rcf->db) {
        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = (char *) db;
        argvlen[1] = ngx_sprintf(db, "%i", rd->rcf->db) - db;

        (void) redisAsyncCommandArgv(ac,
                                     ngx_http_clockchain_redis_durable_reply,
                                     NULL, 2, argv, argvlen);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_clockchain_redis_durable_send(ngx_http_clockchain_redis_durable_t *d,
    ngx_http_clockchain_redis_op_t *op, int argc, const char **argv,
    const size_t *argvlen, ngx_msec_t timeout)
{
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    if (d->ac == NULL && ngx_http_clockchain_redis_durable_open(d) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (redisAsyncCommandArgv(d->ac, ngx_http_clockchain_redis_durable_reply,
                              op, argc, argv, argvlen)
        != REDIS_OK)
    {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "clockchain: could not queue a redis command");
        return NGX_ERROR;
    }

    d->op = op;
    op->conn = d;
    op->sent = ngx_http_clockchain_redis_now_us();

    /* not cancelable, as the command connection's */

    if (d->timeout.timer_set) {
        ngx_del_timer(&d->timeout);
    }

    ngx_add_timer(&d->timeout, timeout);

    return NGX_OK;
}


static void
ngx_http_clockchain_redis_durable_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                           *reply = r;
    ngx_uint_t                            demoted;
    ngx_http_clockchain_redis_op_t       *op = privdata;
    ngx_http_clockchain_redis_durable_t  *d = ac->data;
    ngx_http_clockchain_redis_t          *rd = &ngx_http_clockchain_redis;

    if (op == NULL) {
        /* AUTH or SELECT */

        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                          "clockchain: redis refused to set up a connection "
                          "for POSTs: %s", reply->str);
        }

        return;
    }

    d->op = NULL;

    if (d->timeout.timer_set) {
        ngx_del_timer(&d->timeout);
    }

    if (reply == NULL) {
        /* hiredis is freeing the context */
        if (d->ac == ac) {
            d->ac = NULL;
        }

    } else if (op->script >= 0) {
        ngx_http_clockchain_stats_redis(ngx_http_clockchain_redis_now_us()
                                        - op->sent);
    }

    demoted = reply && reply->type == REDIS_REPLY_ERROR
              && ngx_strncmp(reply->str, "READONLY", 8) == 0;

    if (demoted) {
        /* the command connection finds the new master; later POSTs follow */
        ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                      "clockchain: redis answered READONLY to a POST, "
                      "closing its connection");
    }

    if (op->handler && !rd->exiting) {
        rd->current = (reply && d->ac == ac && !demoted) ? d : NULL;
        op->handler(op->data, reply);
        rd->current = NULL;
    }

    ngx_free(op);

    if (demoted && d->ac == ac && d->op == NULL) {
        /* freed once this callback returns */
        ngx_http_clockchain_redis_durable_close(d);
    }

    if (d->op == NULL && rd->queued && !rd->exiting) {
        ngx_post_event(&rd->dispatch, &ngx_posted_events);
    }
}


static void
ngx_http_clockchain_redis_durable_connected(const redisAsyncContext *ac,
    int status)
{
    ngx_http_clockchain_redis_durable_t  *d = ac->data;

    if (status == REDIS_OK) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, ngx_http_clockchain_redis.log, 0,
                  "clockchain: could not connect to redis at \"%V\" for a "
                  "POST: %s", &ngx_http_clockchain_redis.rcf->addr,
                  ac->errstr);

    /* hiredis frees it when this returns; the op's reply comes NULL */

    if (d->ac == ac) {
        d->ac = NULL;
    }
}


static void
ngx_http_clockchain_redis_durable_disconnected(const redisAsyncContext *ac,
    int status)
{
    ngx_http_clockchain_redis_durable_t  *d = ac->data;
    ngx_http_clockchain_redis_t          *rd = &ngx_http_clockchain_redis;

    if (d->ac != ac) {
        /* closed on purpose */
        return;
    }

    d->ac = NULL;

    if (!rd->exiting) {
        ngx_log_error(NGX_LOG_INFO, rd->log, 0,
                      "clockchain: redis closed a connection for POSTs%s%s",
                      ac->err ? ": " : "", ac->err ? ac->errstr : "");
    }
}


static void
ngx_http_clockchain_redis_durable_timeout(ngx_event_t *ev)
{
    ngx_http_clockchain_redis_durable_t  *d = ev->data;
    ngx_http_clockchain_redis_t          *rd = &ngx_http_clockchain_redis;

    if (d->ac == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                  "clockchain: redis at \"%V\" did not answer a POST in "
                  "%M ms, closing its connection", &rd->rcf->addr,
                  rd->rcf->timeout);

    /* its op is answered NULL */
    ngx_http_clockchain_redis_durable_close(d);
}


/* a connection is free: the ops queued, in order */

static void
ngx_http_clockchain_redis_durable_dispatch(ngx_event_t *ev)
{
    ngx_msec_t                            waited;
    ngx_queue_t                          *q;
    ngx_http_clockchain_redis_op_t       *op;
    ngx_http_clockchain_redis_durable_t  *d;
    ngx_http_clockchain_redis_t          *rd = ev->data;

    while (!ngx_queue_empty(&rd->queue) && !rd->exiting) {
        q = ngx_queue_head(&rd->queue);
        op = ngx_queue_data(q, ngx_http_clockchain_redis_op_t, queue);

        d = NULL;
        waited = ngx_current_msec - op->queued;

        if (op->handler && waited < rd->rcf->timeout) {
            d = ngx_http_clockchain_redis_durable_pick();

            if (d == NULL) {
                break;
            }
        }

        ngx_queue_remove(q);
        rd->queued--;

        /* what is left of its timeout=, not a new one */

        if (d == NULL
            || ngx_http_clockchain_redis_durable_send(d, op, op->argc,
                                                      op->argv, op->argvlen,
                                                      rd->rcf->timeout
                                                      - waited)
               != NGX_OK)
        {
            /* cancelled, waited its whole timeout, or not sent */

            if (op->handler) {
                op->handler(op->data, NULL);
            }

            ngx_free(op);
        }
    }

    ngx_http_clockchain_redis_durable_expire_at_head();
}


/*
 * The queue's head has waited its whole timeout= while every connection
 * stayed busy: it and every other op as old answer NULL (503) now, not
 * when a connection frees.
 */

static void
ngx_http_clockchain_redis_durable_expire(ngx_event_t *ev)
{
    ngx_queue_t                      *q;
    ngx_http_clockchain_redis_op_t   *op;
    ngx_http_clockchain_redis_t      *rd = ev->data;

    while (!ngx_queue_empty(&rd->queue) && !rd->exiting) {
        q = ngx_queue_head(&rd->queue);
        op = ngx_queue_data(q, ngx_http_clockchain_redis_op_t, queue);

        if (op->handler
            && ngx_current_msec - op->queued < rd->rcf->timeout)
        {
            break;
        }

        ngx_queue_remove(q);
        rd->queued--;

        if (op->handler) {
            ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                          "clockchain: a POST waited %M ms for a connection "
                          "to redis at \"%V\", every one busy, answering "
                          "503", ngx_current_msec - op->queued,
                          &rd->rcf->addr);

            op->handler(op->data, NULL);
        }

        ngx_free(op);
    }

    ngx_http_clockchain_redis_durable_expire_at_head();
}


/* the timer for the queue's oldest op, or none for an empty queue */

static void
ngx_http_clockchain_redis_durable_expire_at_head(void)
{
    ngx_msec_t                       waited;
    ngx_http_clockchain_redis_op_t  *op;
    ngx_http_clockchain_redis_t     *rd = &ngx_http_clockchain_redis;

    if (rd->expire.timer_set) {
        ngx_del_timer(&rd->expire);
    }

    if (ngx_queue_empty(&rd->queue) || rd->exiting) {
        return;
    }

    op = ngx_queue_data(ngx_queue_head(&rd->queue),
                        ngx_http_clockchain_redis_op_t, queue);

    waited = ngx_current_msec - op->queued;

    ngx_add_timer(&rd->expire, waited < rd->rcf->timeout
                               ? rd->rcf->timeout - waited : 1);
}


static void
ngx_http_clockchain_redis_durable_close(ngx_http_clockchain_redis_durable_t *d)
{
    redisAsyncContext  *ac;

    if (d->timeout.timer_set) {
        ngx_del_timer(&d->timeout);
    }

    if (d->ac) {
        ac = d->ac;
        d->ac = NULL;
        redisAsyncFree(ac);
    }
}

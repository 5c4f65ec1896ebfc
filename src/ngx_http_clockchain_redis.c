
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * One asynchronous hiredis connection per worker, driven by nginx's event
 * loop.  Commands are pipelined; every command gets its callback exactly
 * once, with a NULL reply when Redis cannot answer.  A command that sees
 * no reply for the configured timeout closes the connection, which fails
 * every command in flight; reconnection runs from a timer with backoff.
 *
 * Sentinel discovery is in redis_sentinel.c, the create connections of
 * wait= in redis_durable.c, hiredis on nginx's event loop in
 * redis_adapter.c.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <hiredis/async.h>

#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_redis_private.h"
#include "ngx_http_clockchain_redis_sentinel.h"
#include "ngx_http_clockchain_redis_adapter.h"
#include "ngx_http_clockchain_stats.h"
#include "ngx_http_clockchain_lua.h"


static void ngx_http_clockchain_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_http_clockchain_redis_timeout_handler(ngx_event_t *ev);
static void ngx_http_clockchain_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_clockchain_redis_disconnected(
    const redisAsyncContext *ac, int status);
static ngx_int_t ngx_http_clockchain_redis_send(
    ngx_http_clockchain_redis_op_t *op, int argc, const char **argv,
    const size_t *argvlen);
static ngx_int_t ngx_http_clockchain_redis_send_eval(
    ngx_http_clockchain_redis_op_t *op);
static ngx_int_t ngx_http_clockchain_redis_send_formatted(
    ngx_http_clockchain_redis_op_t *op, u_char *cmd, size_t len);
static ngx_int_t ngx_http_clockchain_redis_queued(
    ngx_http_clockchain_redis_op_t *op, int rc);
static size_t ngx_http_clockchain_redis_resp_size(size_t len,
    ngx_uint_t bytes);
static u_char *ngx_http_clockchain_redis_resp_uint(u_char *p, size_t n);
static u_char *ngx_http_clockchain_redis_resp_arg(u_char *p, u_char *data,
    size_t len);
static u_char *ngx_http_clockchain_redis_resp_num(u_char *p, size_t n);
static void ngx_http_clockchain_redis_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void ngx_http_clockchain_redis_load_script(ngx_uint_t i);
static void ngx_http_clockchain_redis_setup_reply(void *data,
    redisReply *reply);
static void ngx_http_clockchain_redis_script_reply(void *data,
    redisReply *reply);
static void ngx_http_clockchain_redis_policy_reply(void *data,
    redisReply *reply);


/* "*<n>\r\n$7\r\nEVALSHA\r\n$40\r\n<sha1>\r\n" fits */
#define NGX_HTTP_CLOCKCHAIN_RESP_HEAD  (NGX_INT64_LEN + 64)


ngx_http_clockchain_redis_t  ngx_http_clockchain_redis;


/* a round trip is well under a millisecond: ngx_current_msec is too coarse */

ngx_msec_t
ngx_http_clockchain_redis_now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (ngx_msec_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char  *ngx_http_clockchain_scripts[] = {
    ngx_http_clockchain_lua_create,
    ngx_http_clockchain_lua_claim,
    ngx_http_clockchain_lua_heartbeat,
    ngx_http_clockchain_lua_complete,
    ngx_http_clockchain_lua_fail,
    ngx_http_clockchain_lua_requeue,
    ngx_http_clockchain_lua_moment,
    ngx_http_clockchain_lua_publish,
    ngx_http_clockchain_lua_neighbors,
    ngx_http_clockchain_lua_stats,
    ngx_http_clockchain_lua_list,
    ngx_http_clockchain_lua_walk,
    ngx_http_clockchain_lua_search,
    ngx_http_clockchain_lua_browse,
    ngx_http_clockchain_lua_seed,
    ngx_http_clockchain_lua_export,
    ngx_http_clockchain_lua_restore,
    ngx_http_clockchain_lua_agents,
    ngx_http_clockchain_lua_propose,
    ngx_http_clockchain_lua_ingest,
    ngx_http_clockchain_lua_reveal
};


ngx_int_t
ngx_http_clockchain_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_clockchain_redis_conf_t *rcf)
{
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    ngx_memzero(rd, sizeof(ngx_http_clockchain_redis_t));

    rd->rcf = rcf;
    rd->log = cycle->log;
    rd->backoff = NGX_HTTP_CLOCKCHAIN_BACKOFF_MIN;

    rd->reconnect.handler = ngx_http_clockchain_redis_reconnect_handler;
    rd->reconnect.log = cycle->log;
    rd->reconnect.data = rd;
    rd->reconnect.cancelable = 1;

    /*
     * Not cancelable: while commands are in flight, a worker leaving after
     * a reload waits for their replies (at most the timeout).
     */
    rd->timeout.handler = ngx_http_clockchain_redis_timeout_handler;
    rd->timeout.log = cycle->log;
    rd->timeout.data = rd;

    ngx_http_clockchain_redis_durable_init(cycle);

    ngx_http_clockchain_redis_connect();

    return NGX_OK;
}


void
ngx_http_clockchain_redis_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    rd->exiting = 1;

    ngx_http_clockchain_redis_durable_exit();

    if (rd->reconnect.timer_set) {
        ngx_del_timer(&rd->reconnect);
    }

    if (rd->sentinel) {
        redisAsyncFree(rd->sentinel);
        rd->sentinel = NULL;
    }

    if (rd->ac) {
        redisAsyncFree(rd->ac);
        rd->ac = NULL;
    }

    if (rd->timeout.timer_set) {
        ngx_del_timer(&rd->timeout);
    }
}


ngx_uint_t
ngx_http_clockchain_redis_available(void)
{
    /* ac is NULL while a dropped connection's callbacks run */
    return ngx_http_clockchain_redis.state
           == NGX_HTTP_CLOCKCHAIN_REDIS_CONNECTED
           && ngx_http_clockchain_redis.ac != NULL;
}


void
ngx_http_clockchain_redis_connect(void)
{
    ngx_uint_t                    i;
    ngx_connection_t             *c;
    redisAsyncContext            *ac;
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;
    const char                   *argv[3];
    size_t                        argvlen[3];
    u_char                        db[NGX_INT_T_LEN];

    if (rd->rcf->sentinels && !rd->discovered) {
        /* ask a Sentinel where the master is first */
        ngx_http_clockchain_redis_sentinel_discover();
        return;
    }

    rd->leaving = 0;

    if (rd->rcf->unix_path) {
        ac = redisAsyncConnectUnix((char *) rd->rcf->unix_path);

    } else if (rd->rcf->sentinels) {
        /* ask again on the next connect: a failover moves the master */
        rd->discovered = 0;
        ac = redisAsyncConnect((char *) rd->master, (int) rd->master_port);

    } else {
        ac = redisAsyncConnect((char *) rd->rcf->host,
                               (int) rd->rcf->port);
    }

    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ALERT, rd->log, 0,
                      "clockchain: could not allocate a redis context");
        ngx_http_clockchain_redis_lost();
        return;
    }

    if (ac->err) {
        ngx_http_clockchain_redis_log(rd->log, 0,
                      "clockchain: could not connect to redis at \"%V\": %s",
                      &rd->rcf->addr, ac->errstr);
        redisAsyncFree(ac);
        ngx_http_clockchain_redis_lost();
        return;
    }

    if (ngx_http_clockchain_redis_attach(ac, rd->log) != NGX_OK) {
        redisAsyncFree(ac);
        ngx_http_clockchain_redis_lost();
        return;
    }

    c = ac->ev.data;

    redisAsyncSetConnectCallback(ac, ngx_http_clockchain_redis_connected);
    redisAsyncSetDisconnectCallback(ac,
                                    ngx_http_clockchain_redis_disconnected);

    rd->ac = ac;
    rd->state = NGX_HTTP_CLOCKCHAIN_REDIS_CONNECTING;

    /* the connect completes on the first write event */
    ngx_http_clockchain_redis_add_write(c);

    /* pipelined ahead of any request's command */

    if (rd->rcf->password.len) {
        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = (char *) rd->rcf->password.data;
        argvlen[1] = rd->rcf->password.len;

        (void) ngx_http_clockchain_redis_command(
                            ngx_http_clockchain_redis_setup_reply, "AUTH",
                            2, argv, argvlen);
    }

    if (rd->rcf->db) {
        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = (char *) db;
        argvlen[1] = ngx_sprintf(db, "%i", rd->rcf->db) - db;

        (void) ngx_http_clockchain_redis_command(
                            ngx_http_clockchain_redis_setup_reply, "SELECT",
                            2, argv, argvlen);
    }

    for (i = 0; i < NGX_HTTP_CLOCKCHAIN_SCRIPTS; i++) {
        rd->sha_known[i] = 0;
        ngx_http_clockchain_redis_load_script(i);
    }

    if (rd->rcf->sentinels) {
        /* a master Sentinel named may have been demoted since */
        argv[0] = "ROLE";
        argvlen[0] = 4;

        (void) ngx_http_clockchain_redis_command(
                            ngx_http_clockchain_redis_sentinel_role_reply,
                            NULL, 1, argv, argvlen);
    }

    argv[0] = "CONFIG";
    argvlen[0] = 6;
    argv[1] = "GET";
    argvlen[1] = 3;
    argv[2] = "maxmemory-policy";
    argvlen[2] = sizeof("maxmemory-policy") - 1;

    (void) ngx_http_clockchain_redis_command(
                        ngx_http_clockchain_redis_policy_reply, NULL,
                        3, argv, argvlen);

    if (!rd->timeout.timer_set) {
        ngx_add_timer(&rd->timeout, rd->rcf->timeout);
    }
}


/* where the master is now: for the events subscription */

ngx_int_t
ngx_http_clockchain_redis_master(u_char **host, ngx_int_t *port)
{
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    if (rd->rcf->sentinels == NULL) {
        *host = rd->rcf->host;
        *port = rd->rcf->port;
        return NGX_OK;
    }

    if (rd->master_port == 0) {
        return NGX_DECLINED;
    }

    *host = rd->master;
    *port = rd->master_port;

    return NGX_OK;
}


/*
 * An outage is logged as an error once, then every 30 attempts.  The level
 * is drawn once, before ngx_log_error(), which evaluates it twice.
 */

void
ngx_http_clockchain_redis_log(ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    u_char      *p, msg[NGX_MAX_ERROR_STR];
    va_list      args;
    ngx_uint_t   level;

    level = (ngx_http_clockchain_redis.failures++ % 30 == 0) ? NGX_LOG_ERR
                                                            : NGX_LOG_INFO;

    va_start(args, fmt);
    p = ngx_vslprintf(msg, msg + sizeof(msg), fmt, args);
    va_end(args);

    ngx_log_error(level, log, err, "%*s", p - msg, msg);
}


/* the context is gone (or never was): try again later */

void
ngx_http_clockchain_redis_lost(void)
{
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    rd->ac = NULL;
    rd->state = NGX_HTTP_CLOCKCHAIN_REDIS_DISCONNECTED;

    if (rd->timeout.timer_set) {
        ngx_del_timer(&rd->timeout);
    }

    if (rd->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (!rd->reconnect.timer_set) {
        ngx_add_timer(&rd->reconnect, rd->backoff);
        rd->backoff = ngx_min(rd->backoff * 2,
                              NGX_HTTP_CLOCKCHAIN_BACKOFF_MAX);
    }
}


static void
ngx_http_clockchain_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_clockchain_redis_t  *rd = ev->data;

    if (rd->exiting || ngx_exiting || rd->ac || rd->sentinel) {
        return;
    }

    ngx_http_clockchain_redis_connect();
}


static void
ngx_http_clockchain_redis_timeout_handler(ngx_event_t *ev)
{
    ngx_http_clockchain_redis_t  *rd = ev->data;

    redisAsyncContext  *ac;

    if (rd->sentinel) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "clockchain: a sentinel did not answer in %M ms",
                      rd->rcf->timeout);
        ac = rd->sentinel;
        rd->sentinel = NULL;
        redisAsyncFree(ac);
        ngx_http_clockchain_redis_lost();
        return;
    }

    if (rd->ac == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                  "clockchain: redis at \"%V\" did not answer in %M ms, "
                  "closing the connection", &rd->rcf->addr,
                  rd->rcf->timeout);

    /* fails every command in flight with a NULL reply */

    ac = rd->ac;
    rd->ac = NULL;
    redisAsyncFree(ac);

    ngx_http_clockchain_redis_lost();
}


static void
ngx_http_clockchain_redis_connected(const redisAsyncContext *ac, int status)
{
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    if (status != REDIS_OK) {
        ngx_http_clockchain_redis_log(rd->log, 0,
                      "clockchain: could not connect to redis at \"%V\": %s",
                      &rd->rcf->addr, ac->errstr);

        /* hiredis frees the context when this returns */
        ngx_http_clockchain_redis_lost();
        return;
    }

    ngx_log_error(NGX_LOG_INFO, rd->log, 0,
                  "clockchain: connected to redis at \"%V\"",
                  &rd->rcf->addr);

    rd->state = NGX_HTTP_CLOCKCHAIN_REDIS_CONNECTED;
    rd->backoff = NGX_HTTP_CLOCKCHAIN_BACKOFF_MIN;
    rd->failures = 0;

    if (rd->pending == 0 && rd->timeout.timer_set) {
        ngx_del_timer(&rd->timeout);
    }
}


static void
ngx_http_clockchain_redis_disconnected(const redisAsyncContext *ac,
    int status)
{
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    if (!rd->exiting) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "clockchain: lost the connection to redis at \"%V\"%s%s",
                      &rd->rcf->addr, ac->err ? ": " : "",
                      ac->err ? ac->errstr : "");
    }

    ngx_http_clockchain_redis_lost();
}


ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_redis_command(ngx_http_clockchain_redis_handler_pt handler,
    void *data, int argc, const char **argv, const size_t *argvlen)
{
    ngx_http_clockchain_redis_op_t  *op;

    if (ngx_http_clockchain_redis.ac == NULL) {
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

    if (ngx_http_clockchain_redis_send(op, argc, argv, argvlen) != NGX_OK) {
        ngx_free(op);
        return NULL;
    }

    return op;
}


/*
 * A script call is written in RESP here, once, rather than by hiredis from
 * an argv (its sdscatfmt() per argument) after a copy of the arguments kept
 * for a NOSCRIPT retry: the RESP is what is kept.  "*<n>", EVALSHA and the
 * SHA1 go in the room left before it when it is sent.
 */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_redis_eval(ngx_uint_t script,
    ngx_http_clockchain_redis_handler_pt handler, void *data, int nkeys,
    int argc, const char **argv, const size_t *argvlen)
{
    int                              i;
    u_char                          *p;
    size_t                           size;
    ngx_http_clockchain_redis_op_t  *op;

    if (!ngx_http_clockchain_redis_available()) {
        return NULL;
    }

    size = sizeof(ngx_http_clockchain_redis_op_t)
           + NGX_HTTP_CLOCKCHAIN_RESP_HEAD
           + ngx_http_clockchain_redis_resp_size((size_t) nkeys, 0);

    for (i = 0; i < argc; i++) {
        size += ngx_http_clockchain_redis_resp_size(argvlen[i], 1);
    }

    op = ngx_alloc(size, ngx_http_clockchain_redis.log);
    if (op == NULL) {
        return NULL;
    }

    ngx_memzero(op, sizeof(ngx_http_clockchain_redis_op_t));

    op->handler = handler;
    op->data = data;
    op->script = script;
    op->argc = argc + 3;
    op->tail = (u_char *) (op + 1) + NGX_HTTP_CLOCKCHAIN_RESP_HEAD;

    p = ngx_http_clockchain_redis_resp_num(op->tail, (size_t) nkeys);

    for (i = 0; i < argc; i++) {
        p = ngx_http_clockchain_redis_resp_arg(p, (u_char *) argv[i],
                                               argvlen[i]);
    }

    op->tail_len = p - op->tail;

    if (ngx_http_clockchain_redis_send_eval(op) != NGX_OK) {
        ngx_free(op);
        return NULL;
    }

    return op;
}


/* RESP's bytes for an argument of len bytes (or the number len) */

static size_t
ngx_http_clockchain_redis_resp_size(size_t len, ngx_uint_t bytes)
{
    size_t  digits, n;

    for (digits = 1, n = len; n >= 10; n /= 10) {
        digits++;
    }

    if (bytes) {
        /* "$<len>\r\n<bytes>\r\n" */
        return 1 + digits + 2 + len + 2;
    }

    /* "$<digits>\r\n<len>\r\n" */
    return 1 + 1 + 2 + digits + 2;
}


static u_char *
ngx_http_clockchain_redis_resp_uint(u_char *p, size_t n)
{
    u_char  buf[NGX_INT64_LEN], *q;

    q = buf + sizeof(buf);

    do {
        *--q = (u_char) ('0' + n % 10);
        n /= 10;
    } while (n);

    return ngx_cpymem(p, q, buf + sizeof(buf) - q);
}


static u_char *
ngx_http_clockchain_redis_resp_arg(u_char *p, u_char *data, size_t len)
{
    *p++ = '$';
    p = ngx_http_clockchain_redis_resp_uint(p, len);
    *p++ = CR;
    *p++ = LF;
    p = ngx_cpymem(p, data, len);
    *p++ = CR;
    *p++ = LF;

    return p;
}


static u_char *
ngx_http_clockchain_redis_resp_num(u_char *p, size_t n)
{
    u_char  buf[NGX_INT64_LEN], *q;

    q = ngx_http_clockchain_redis_resp_uint(buf, n);

    return ngx_http_clockchain_redis_resp_arg(p, buf, q - buf);
}


ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_redis_op_alloc(ngx_uint_t script,
    ngx_http_clockchain_redis_handler_pt handler, void *data, int nkeys,
    int argc, const char **argv, const size_t *argvlen)
{
    int                              i;
    u_char                          *p;
    size_t                           size;
    ngx_http_clockchain_redis_op_t  *op;

    /*
     * EVAL/EVALSHA, script, numkeys, then the caller's arguments; kept
     * with the op so that a NOSCRIPT answer can be resent as EVAL.
     */

    size = sizeof(ngx_http_clockchain_redis_op_t)
           + (argc + 3) * (sizeof(char *) + sizeof(size_t))
           + NGX_INT_T_LEN;

    for (i = 0; i < argc; i++) {
        size += argvlen[i];
    }

    op = ngx_alloc(size, ngx_http_clockchain_redis.log);
    if (op == NULL) {
        return NULL;
    }

    op->handler = handler;
    op->data = data;
    op->script = script;
    op->resent = 0;
    op->conn = NULL;
    op->tail = NULL;
    op->tail_len = 0;
    op->argc = argc + 3;
    op->argv = (const char **) (op + 1);
    op->argvlen = (size_t *) (op->argv + op->argc);

    p = (u_char *) (op->argvlen + op->argc);

    op->argv[2] = (char *) p;
    op->argvlen[2] = ngx_sprintf(p, "%d", nkeys) - p;
    p += NGX_INT_T_LEN;

    for (i = 0; i < argc; i++) {
        op->argv[i + 3] = (char *) p;
        op->argvlen[i + 3] = argvlen[i];
        p = ngx_cpymem(p, argv[i], argvlen[i]);
    }

    return op;
}


/*
 * Whether reply is the error a script raised with redis.error_reply(code):
 * Redis 7 sends such errors as "ERR <code>", older ones as "<code>".
 */

ngx_uint_t
ngx_http_clockchain_redis_script_error(redisReply *reply, const char *code)
{
    size_t   len;
    char    *p;

    if (reply == NULL || reply->type != REDIS_REPLY_ERROR) {
        return 0;
    }

    p = reply->str;

    if (ngx_strncmp(p, "ERR ", 4) == 0) {
        p += 4;
    }

    len = ngx_strlen(code);

    return ngx_strncmp(p, code, len) == 0 && (p[len] == '\0' || p[len] == ' ');
}


void
ngx_http_clockchain_redis_cancel(ngx_http_clockchain_redis_op_t *op)
{
    /* the reply still arrives; nobody is told */
    op->handler = NULL;
}


static ngx_int_t
ngx_http_clockchain_redis_send_eval(ngx_http_clockchain_redis_op_t *op)
{
    u_char                       *p, *cmd, head[NGX_HTTP_CLOCKCHAIN_RESP_HEAD];
    size_t                        len, hlen;
    ngx_int_t                     rc;
    const char                   *body;
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    if (op->tail && rd->sha_known[op->script] && !op->resent) {
        p = head;
        *p++ = '*';
        p = ngx_http_clockchain_redis_resp_uint(p, (size_t) op->argc);
        *p++ = CR;
        *p++ = LF;
        p = ngx_http_clockchain_redis_resp_arg(p, (u_char *) "EVALSHA", 7);
        p = ngx_http_clockchain_redis_resp_arg(p,
                                               (u_char *) rd->sha[op->script],
                                               40);
        hlen = p - head;

        cmd = op->tail - hlen;
        ngx_memcpy(cmd, head, hlen);

        return ngx_http_clockchain_redis_send_formatted(op, cmd,
                                                        hlen + op->tail_len);
    }

    if (op->tail) {
        /* EVAL and the script's body: a buffer of its own, this once */

        body = ngx_http_clockchain_scripts[op->script];
        len = ngx_strlen(body);

        cmd = ngx_alloc(NGX_HTTP_CLOCKCHAIN_RESP_HEAD + len + op->tail_len,
                        rd->log);
        if (cmd == NULL) {
            return NGX_ERROR;
        }

        p = cmd;
        *p++ = '*';
        p = ngx_http_clockchain_redis_resp_uint(p, (size_t) op->argc);
        *p++ = CR;
        *p++ = LF;
        p = ngx_http_clockchain_redis_resp_arg(p, (u_char *) "EVAL", 4);
        p = ngx_http_clockchain_redis_resp_arg(p, (u_char *) body, len);
        p = ngx_cpymem(p, op->tail, op->tail_len);

        rc = ngx_http_clockchain_redis_send_formatted(op, cmd, p - cmd);

        ngx_free(cmd);

        return rc;
    }

    if (rd->sha_known[op->script] && !op->resent) {
        op->argv[0] = "EVALSHA";
        op->argvlen[0] = 7;
        op->argv[1] = rd->sha[op->script];
        op->argvlen[1] = 40;

    } else {
        op->argv[0] = "EVAL";
        op->argvlen[0] = 4;
        op->argv[1] = ngx_http_clockchain_scripts[op->script];
        op->argvlen[1] = ngx_strlen(ngx_http_clockchain_scripts[op->script]);
    }

    return ngx_http_clockchain_redis_send(op, op->argc, op->argv,
                                          op->argvlen);
}


static ngx_int_t
ngx_http_clockchain_redis_send(ngx_http_clockchain_redis_op_t *op, int argc,
    const char **argv, const size_t *argvlen)
{
    int                           rc;
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    rc = redisAsyncCommandArgv(rd->ac, ngx_http_clockchain_redis_reply, op,
                               argc, argv, argvlen);

    return ngx_http_clockchain_redis_queued(op, rc);
}


static ngx_int_t
ngx_http_clockchain_redis_send_formatted(ngx_http_clockchain_redis_op_t *op,
    u_char *cmd, size_t len)
{
    int                           rc;
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    rc = redisAsyncFormattedCommand(rd->ac, ngx_http_clockchain_redis_reply,
                                    op, (char *) cmd, len);

    return ngx_http_clockchain_redis_queued(op, rc);
}


/*
 * What follows hiredis's answer to a command queued on the command
 * connection, however it was given (an argv or RESP written here): one
 * place that counts it as pending and arms the timeout, so that the two
 * ways of sending cannot drift apart.
 */

static ngx_int_t
ngx_http_clockchain_redis_queued(ngx_http_clockchain_redis_op_t *op, int rc)
{
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    if (rc != REDIS_OK) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "clockchain: could not queue a redis command");
        return NGX_ERROR;
    }

    rd->pending++;
    op->sent = ngx_http_clockchain_redis_now_us();

    if (!rd->timeout.timer_set) {
        ngx_add_timer(&rd->timeout, rd->rcf->timeout);
    }

    return NGX_OK;
}


static void
ngx_http_clockchain_redis_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                      *reply = r;
    ngx_http_clockchain_redis_op_t  *op = privdata;
    ngx_http_clockchain_redis_t     *rd = &ngx_http_clockchain_redis;

    rd->pending--;

    if (reply) {
        ngx_http_clockchain_stats_redis(ngx_http_clockchain_redis_now_us()
                                        - op->sent);
    }

    /* progress: the timeout counts from the last reply */

    if (rd->timeout.timer_set) {
        ngx_del_timer(&rd->timeout);
    }

    if ((rd->pending || rd->state == NGX_HTTP_CLOCKCHAIN_REDIS_CONNECTING)
        && rd->ac && reply)
    {
        ngx_add_timer(&rd->timeout, rd->rcf->timeout);
    }

    if (reply && reply->type == REDIS_REPLY_ERROR
        && ngx_strncmp(reply->str, "READONLY", 8) == 0
        && rd->ac && !rd->leaving)
    {
        /* a failover demoted this server: find the new master */
        ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                      "clockchain: redis answered READONLY, reconnecting");
        rd->leaving = 1;
        redisAsyncDisconnect(rd->ac);
    }

    if (reply && reply->type == REDIS_REPLY_ERROR && op->script >= 0
        && !op->resent && rd->ac
        && ngx_strncmp(reply->str, "NOSCRIPT", 8) == 0)
    {
        /* the script cache was flushed: send the body this once */

        ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                      "clockchain: redis lost its script cache, reloading");

        rd->sha_known[op->script] = 0;
        op->resent = 1;

        ngx_http_clockchain_redis_load_script(op->script);

        if (ngx_http_clockchain_redis_send_eval(op) == NGX_OK) {
            return;
        }

        reply = NULL;
    }

    if (op->handler && !rd->exiting) {
        op->handler(op->data, reply);
    }

    ngx_free(op);
}


/* SCRIPT LOAD: later calls of the script send its SHA1 only */

static void
ngx_http_clockchain_redis_load_script(ngx_uint_t i)
{
    const char  *argv[3];
    size_t       argvlen[3];

    argv[0] = "SCRIPT";
    argvlen[0] = 6;
    argv[1] = "LOAD";
    argvlen[1] = 4;
    argv[2] = ngx_http_clockchain_scripts[i];
    argvlen[2] = ngx_strlen(ngx_http_clockchain_scripts[i]);

    (void) ngx_http_clockchain_redis_command(
                            ngx_http_clockchain_redis_script_reply,
                            (void *) (uintptr_t) i, 3, argv, argvlen);
}


static void
ngx_http_clockchain_redis_setup_reply(void *data, redisReply *reply)
{
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        /* the reply never echoes the password */
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "clockchain: redis %s failed: %s", (char *) data,
                      reply->str);
    }
}


static void
ngx_http_clockchain_redis_script_reply(void *data, redisReply *reply)
{
    ngx_uint_t                    i = (uintptr_t) data;
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    if (reply == NULL) {
        return;
    }

    if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "clockchain: redis SCRIPT LOAD failed: %s",
                      reply->type == REDIS_REPLY_ERROR ? reply->str
                                                       : "unexpected reply");
        return;
    }

    ngx_memcpy(rd->sha[i], reply->str, 40);
    rd->sha[i][40] = '\0';
    rd->sha_known[i] = 1;
}


/*
 * Jobs have no TTL while they run: a policy that evicts could drop them,
 * which is the one way Redis itself loses acknowledged jobs.  Said once a
 * worker; a server that forbids CONFIG is not second-guessed.
 */

static void
ngx_http_clockchain_redis_policy_reply(void *data, redisReply *reply)
{
    static ngx_uint_t  warned;

    if (warned || reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2
        || reply->element[1]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    warned = 1;

    if (ngx_strcmp(reply->element[1]->str, "noeviction") != 0) {
        ngx_log_error(NGX_LOG_WARN, ngx_http_clockchain_redis.log, 0,
                      "clockchain: redis at \"%V\" has maxmemory-policy "
                      "\"%s\", which can evict job keys under memory "
                      "pressure; set it to \"noeviction\"",
                      &ngx_http_clockchain_redis.rcf->addr,
                      reply->element[1]->str);
    }
}

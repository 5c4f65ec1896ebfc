
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * With clockchain_redis sentinel=: each (re)connect of the command
 * connection first asks a Sentinel, the next one in the list each time,
 * where the master is; once connected, ROLE checks that it still is.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_redis_private.h"
#include "ngx_http_clockchain_redis_sentinel.h"
#include "ngx_http_clockchain_redis_adapter.h"
#include "ngx_http_clockchain_events.h"


static void ngx_http_clockchain_redis_sentinel_discovered(
    redisAsyncContext *ac, void *r, void *privdata);
static void ngx_http_clockchain_redis_sentinel_connected(
    const redisAsyncContext *ac, int status);


/* SENTINEL get-master-addr-by-name, from the Sentinels in turn */

void
ngx_http_clockchain_redis_sentinel_discover(void)
{
    redisAsyncContext            *ac;
    ngx_http_clockchain_addr_t   *sentinel;
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;
    const char                   *argv[3];
    size_t                        argvlen[3];

    sentinel = rd->rcf->sentinels->elts;
    sentinel += rd->next_sentinel++ % rd->rcf->sentinels->nelts;

    ac = redisAsyncConnect((char *) sentinel->host, (int) sentinel->port);

    if (ac == NULL || ac->err
        || ngx_http_clockchain_redis_attach(ac, rd->log) != NGX_OK)
    {
        ngx_http_clockchain_redis_log(rd->log, 0,
                      "clockchain: could not reach sentinel %s:%i",
                      sentinel->host, sentinel->port);
        if (ac) {
            redisAsyncFree(ac);
        }

        ngx_http_clockchain_redis_lost();
        return;
    }

    redisAsyncSetConnectCallback(ac,
                                 ngx_http_clockchain_redis_sentinel_connected);

    if (rd->rcf->sentinel_password.len) {
        /* a refused password shows as NOAUTH in the answer below */
        argv[0] = "AUTH";
        argvlen[0] = 4;
        argv[1] = (char *) rd->rcf->sentinel_password.data;
        argvlen[1] = rd->rcf->sentinel_password.len;

        (void) redisAsyncCommandArgv(ac, NULL, NULL, 2, argv, argvlen);
    }

    argv[0] = "SENTINEL";
    argvlen[0] = 8;
    argv[1] = "get-master-addr-by-name";
    argvlen[1] = sizeof("get-master-addr-by-name") - 1;
    argv[2] = (char *) rd->rcf->sentinel_master.data;
    argvlen[2] = rd->rcf->sentinel_master.len;

    if (redisAsyncCommandArgv(ac,
                              ngx_http_clockchain_redis_sentinel_discovered,
                              NULL, 3, argv, argvlen)
        != REDIS_OK)
    {
        redisAsyncFree(ac);
        ngx_http_clockchain_redis_lost();
        return;
    }

    rd->sentinel = ac;
    rd->state = NGX_HTTP_CLOCKCHAIN_REDIS_CONNECTING;

    if (!rd->timeout.timer_set) {
        ngx_add_timer(&rd->timeout, rd->rcf->timeout);
    }
}


static void
ngx_http_clockchain_redis_sentinel_connected(const redisAsyncContext *ac,
    int status)
{
    if (status != REDIS_OK) {
        ngx_http_clockchain_redis_log(
                      ngx_http_clockchain_redis.log, 0,
                      "clockchain: could not connect to a sentinel: %s",
                      ac->errstr);
        /* the pending request gets a NULL reply, which moves on */
    }
}


static void
ngx_http_clockchain_redis_sentinel_discovered(redisAsyncContext *ac,
    void *r, void *privdata)
{
    size_t                        len;
    ngx_int_t                     port;
    redisReply                   *reply = r;
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    if (rd->sentinel != ac) {
        return;
    }

    rd->sentinel = NULL;

    if (rd->timeout.timer_set) {
        ngx_del_timer(&rd->timeout);
    }

    if (reply == NULL) {
        ngx_http_clockchain_redis_lost();
        return;
    }

    /* done with this Sentinel: closed once this callback returns */
    redisAsyncDisconnect(ac);

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING
        || reply->element[0]->len >= NGX_SOCKADDR_STRLEN)
    {
        if (reply->type == REDIS_REPLY_ERROR) {
            ngx_http_clockchain_redis_log(rd->log, 0,
                      "clockchain: a sentinel refused to name master \"%V\": "
                      "%s", &rd->rcf->sentinel_master, reply->str);

        } else {
            ngx_http_clockchain_redis_log(rd->log, 0,
                      "clockchain: a sentinel does not know master \"%V\"",
                      &rd->rcf->sentinel_master);
        }

        ngx_http_clockchain_redis_lost();
        return;
    }

    port = ngx_atoi((u_char *) reply->element[1]->str,
                    reply->element[1]->len);

    if (port < 1 || port > 65535) {
        ngx_http_clockchain_redis_lost();
        return;
    }

    len = reply->element[0]->len;

    if (len != ngx_strlen(rd->master)
        || ngx_strncmp(rd->master, reply->element[0]->str, len) != 0
        || port != rd->master_port)
    {
        ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                      "clockchain: sentinel names %*s:%i as master \"%V\"",
                      len, reply->element[0]->str, port,
                      &rd->rcf->sentinel_master);
    }

    ngx_memcpy(rd->master, reply->element[0]->str, len);
    rd->master[len] = '\0';
    rd->master_port = port;
    rd->discovered = 1;

    if (rd->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        /* asked before the worker was told to leave: it connects no more */
        return;
    }

    /* a subscription on a master of before goes where commands go */
    ngx_http_clockchain_events_follow();

    ngx_http_clockchain_redis_connect();
}


/* ROLE, after each connect: Sentinel may have named a master demoted since */

void
ngx_http_clockchain_redis_sentinel_role_reply(void *data, redisReply *reply)
{
    ngx_http_clockchain_redis_t  *rd = &ngx_http_clockchain_redis;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements == 0
        || reply->element[0]->type != REDIS_REPLY_STRING
        || ngx_strcmp(reply->element[0]->str, "master") == 0)
    {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                  "clockchain: %s:%i is no longer a master, asking the "
                  "sentinels again", rd->master, rd->master_port);

    if (rd->ac && !rd->leaving) {
        rd->leaving = 1;
        redisAsyncDisconnect(rd->ac);
    }
}

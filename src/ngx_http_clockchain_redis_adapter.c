
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * hiredis on nginx's event loop, for every hiredis context of the module:
 * the command connection, the create connections of wait=, Sentinels and
 * the events subscription.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_clockchain_redis_adapter.h"


static void ngx_http_clockchain_redis_read_handler(ngx_event_t *ev);
static void ngx_http_clockchain_redis_write_handler(ngx_event_t *ev);
static void ngx_http_clockchain_redis_add_read(void *data);
static void ngx_http_clockchain_redis_del_read(void *data);
static void ngx_http_clockchain_redis_del_write(void *data);
static void ngx_http_clockchain_redis_cleanup(void *data);


/*
 * Drives a hiredis context from nginx's event loop: an nginx connection
 * for its socket, and the hooks hiredis calls to watch it.
 */

ngx_int_t
ngx_http_clockchain_redis_attach(redisAsyncContext *ac, ngx_log_t *log)
{
    int                value;
    ngx_connection_t  *c;

    c = ngx_get_connection(ac->c.fd, log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    if (ac->c.connection_type == REDIS_CONN_TCP) {
        /*
         * A Redis that vanished without a FIN (a dead host, a NAT or
         * firewall that forgot the flow) leaves an idle connection, such
         * as the events subscription, open forever: the kernel probes it
         * after 15 s idle and gives up 3 probes of 5 s later.
         */

        value = 1;
        (void) setsockopt(ac->c.fd, SOL_SOCKET, SO_KEEPALIVE,
                          (const void *) &value, sizeof(int));
#if (NGX_HAVE_KEEPALIVE_TUNABLE)
        value = 15;
        (void) setsockopt(ac->c.fd, IPPROTO_TCP, TCP_KEEPIDLE,
                          (const void *) &value, sizeof(int));
        value = 5;
        (void) setsockopt(ac->c.fd, IPPROTO_TCP, TCP_KEEPINTVL,
                          (const void *) &value, sizeof(int));
        value = 3;
        (void) setsockopt(ac->c.fd, IPPROTO_TCP, TCP_KEEPCNT,
                          (const void *) &value, sizeof(int));
#endif
    }

    c->data = ac;
    c->log = log;
    c->read->handler = ngx_http_clockchain_redis_read_handler;
    c->write->handler = ngx_http_clockchain_redis_write_handler;
    c->read->log = log;
    c->write->log = log;

    ac->ev.data = c;
    ac->ev.addRead = ngx_http_clockchain_redis_add_read;
    ac->ev.delRead = ngx_http_clockchain_redis_del_read;
    ac->ev.addWrite = ngx_http_clockchain_redis_add_write;
    ac->ev.delWrite = ngx_http_clockchain_redis_del_write;
    ac->ev.cleanup = ngx_http_clockchain_redis_cleanup;

    return NGX_OK;
}


static void
ngx_http_clockchain_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    /* may free the context and the connection: touch neither after */
    redisAsyncHandleRead(c->data);
}


static void
ngx_http_clockchain_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleWrite(c->data);
}


/*
 * Level-triggered on both directions: hiredis reads at most 16 KB a call,
 * so with edge-triggered epoll the rest of a large reply would never wake us.
 */

static void
ngx_http_clockchain_redis_add_read(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->read->active
        && ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "clockchain: could not add the redis read event");
    }
}


static void
ngx_http_clockchain_redis_del_read(void *data)
{
    ngx_connection_t  *c = data;

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


void
ngx_http_clockchain_redis_add_write(void *data)
{
    ngx_connection_t  *c = data;

    if (!c->write->active
        && ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
           != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "clockchain: could not add the redis write event");
    }
}


static void
ngx_http_clockchain_redis_del_write(void *data)
{
    ngx_connection_t  *c = data;

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


static void
ngx_http_clockchain_redis_cleanup(void *data)
{
    ngx_connection_t  *c = data;

    /* hiredis closes the fd itself (redisFree): only release ours */

    ngx_http_clockchain_redis_del_read(c);
    ngx_http_clockchain_redis_del_write(c);

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);

    c->fd = (ngx_socket_t) -1;
}

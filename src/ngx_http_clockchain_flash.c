
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * Calls to Flash through libcurl's multi interface, driven by nginx's event
 * loop: curl tells which sockets to watch and when to wake it, nginx's
 * events and timers do the waiting.  No thread, no blocking call.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <jansson.h>

#include "ngx_http_clockchain_flash.h"
#include "ngx_http_clockchain_stats.h"


typedef struct {
    CURLM                              *multi;
    ngx_event_t                         timer;
    ngx_uint_t                          in_flight;
    size_t                              buffered;
    ngx_http_clockchain_main_conf_t    *mcf;
    ngx_log_t                          *log;
    char                               *url;
    char                               *key_header;
} ngx_http_clockchain_flash_t;


static int ngx_http_clockchain_flash_socket(CURL *easy, curl_socket_t s,
    int what, void *userp, void *socketp);
static int ngx_http_clockchain_flash_timer(CURLM *multi, long timeout_ms,
    void *userp);
static void ngx_http_clockchain_flash_timer_handler(ngx_event_t *ev);
static void ngx_http_clockchain_flash_read_handler(ngx_event_t *ev);
static void ngx_http_clockchain_flash_write_handler(ngx_event_t *ev);
static void ngx_http_clockchain_flash_action(curl_socket_t s, int what);
static void ngx_http_clockchain_flash_check(void);
static size_t ngx_http_clockchain_flash_write(char *ptr, size_t size,
    size_t nmemb, void *userdata);


static ngx_http_clockchain_flash_t  ngx_http_clockchain_flash;


ngx_int_t
ngx_http_clockchain_flash_init(ngx_cycle_t *cycle,
    ngx_http_clockchain_main_conf_t *mcf)
{
    size_t                        len;
    ngx_http_clockchain_flash_t  *fl = &ngx_http_clockchain_flash;

    ngx_memzero(fl, sizeof(ngx_http_clockchain_flash_t));

    fl->mcf = mcf;
    fl->log = cycle->log;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "clockchain: curl_global_init() failed");
        return NGX_ERROR;
    }

    fl->multi = curl_multi_init();
    if (fl->multi == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "clockchain: curl_multi_init() failed");
        return NGX_ERROR;
    }

    curl_multi_setopt(fl->multi, CURLMOPT_SOCKETFUNCTION,
                      ngx_http_clockchain_flash_socket);
    curl_multi_setopt(fl->multi, CURLMOPT_TIMERFUNCTION,
                      ngx_http_clockchain_flash_timer);

    len = mcf->flash_url.len + sizeof("/api/v1/timepoints/generate/sync");
    fl->url = ngx_alloc(len, cycle->log);

    len = sizeof("X-Service-Key: ") + mcf->flash_key.len;
    fl->key_header = ngx_alloc(len, cycle->log);

    if (fl->url == NULL || fl->key_header == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf((u_char *) fl->url, "%V/api/v1/timepoints/generate/sync%Z",
                &mcf->flash_url);
    ngx_sprintf((u_char *) fl->key_header, "X-Service-Key: %V%Z",
                &mcf->flash_key);

    fl->timer.handler = ngx_http_clockchain_flash_timer_handler;
    fl->timer.log = cycle->log;
    fl->timer.data = fl;
    fl->timer.cancelable = 1;

    return NGX_OK;
}


void
ngx_http_clockchain_flash_exit(void)
{
    ngx_http_clockchain_flash_t  *fl = &ngx_http_clockchain_flash;

    if (fl->multi == NULL) {
        return;
    }

    /* calls its socket callback: our state must still be alive here */
    curl_multi_cleanup(fl->multi);
    fl->multi = NULL;

    if (fl->timer.timer_set) {
        ngx_del_timer(&fl->timer);
    }

    ngx_free(fl->url);
    ngx_free(fl->key_header);
}


ngx_int_t
ngx_http_clockchain_flash_start(ngx_http_clockchain_flash_call_t *call,
    const char *job_id, const char *query, size_t query_len,
    const char *preset)
{
    CURL                         *easy;
    json_t                       *req;
    ngx_http_clockchain_flash_t  *fl = &ngx_http_clockchain_flash;

    req = json_pack("{s:s%,s:s,s:b,s:s,s:{s:s,s:s,s:s}}",
                    "query", query, query_len,
                    "preset", preset,
                    "generate_image", 1,
                    "model_policy", "permissive",
                    "request_context",
                        "source", "clockchain",
                        "worker", "renderer",
                        "job_id", job_id);
    if (req == NULL) {
        return NGX_ERROR;
    }

    call->request = json_dumps(req, JSON_COMPACT);
    json_decref(req);

    if (call->request == NULL) {
        return NGX_ERROR;
    }

    easy = curl_easy_init();
    if (easy == NULL) {
        return NGX_ERROR;
    }

    call->easy = easy;

    call->headers = curl_slist_append(NULL, "Content-Type: application/json");
    call->headers = curl_slist_append(call->headers, fl->key_header);
    call->headers = curl_slist_append(call->headers, "Expect:");

    if (call->headers == NULL) {
        return NGX_ERROR;
    }

    curl_easy_setopt(easy, CURLOPT_URL, fl->url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, call->headers);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, call->request);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION,
                     ngx_http_clockchain_flash_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, call);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, call->errbuf);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) fl->mcf->flash_timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE,
                     (curl_off_t) fl->mcf->flash_max_response);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "ngx_clockchain_module");

    if (curl_multi_add_handle(fl->multi, easy) != CURLM_OK) {
        return NGX_ERROR;
    }

    fl->in_flight++;
    call->started = ngx_current_msec;

    return NGX_OK;
}


void
ngx_http_clockchain_flash_free(ngx_http_clockchain_flash_call_t *call)
{
    ngx_http_clockchain_flash_t  *fl = &ngx_http_clockchain_flash;

    if (call->easy) {
        if (fl->multi) {
            curl_multi_remove_handle(fl->multi, call->easy);
        }

        curl_easy_cleanup(call->easy);
        call->easy = NULL;
    }

    if (call->headers) {
        curl_slist_free_all(call->headers);
        call->headers = NULL;
    }

    if (call->request) {
        free(call->request);
        call->request = NULL;
    }

    if (call->body) {
        fl->buffered -= call->cap;
        ngx_free(call->body);
        call->body = NULL;
    }
}


ngx_uint_t
ngx_http_clockchain_flash_in_flight(void)
{
    return ngx_http_clockchain_flash.in_flight;
}


size_t
ngx_http_clockchain_flash_buffered(void)
{
    return ngx_http_clockchain_flash.buffered;
}


/*
 * The response is capped here: CURLOPT_MAXFILESIZE cannot stop a body of
 * unknown length (chunked, or closed by the server) before it is too late.
 */

static size_t
ngx_http_clockchain_flash_write(char *ptr, size_t size, size_t nmemb,
    void *userdata)
{
    ngx_http_clockchain_flash_call_t *call = userdata;

    u_char                       *p;
    size_t                        n, cap;
    ngx_http_clockchain_flash_t  *fl = &ngx_http_clockchain_flash;

    n = size * nmemb;

    if (call->len + n > fl->mcf->flash_max_response) {
        call->too_large = 1;
        return 0;
    }

    if (call->len + n > call->cap) {
        cap = ngx_max(call->cap * 2, 16384);

        while (cap < call->len + n) {
            cap *= 2;
        }

        cap = ngx_min(cap, fl->mcf->flash_max_response);

        if (fl->buffered - call->cap + cap > fl->mcf->flash_buffers) {
            /*
             * clockchain_flash_buffers bounds the answers in flight
             * together, not only when a call starts: calls already in
             * flight could each grow to clockchain_flash_max_response.
             * This one stops; the runner runs it again later.
             */
            call->no_room = 1;
            return 0;
        }

        p = ngx_alloc(cap, fl->log);
        if (p == NULL) {
            return 0;
        }

        if (call->body) {
            ngx_memcpy(p, call->body, call->len);
            ngx_free(call->body);
        }

        fl->buffered += cap - call->cap;
        call->body = p;
        call->cap = cap;
    }

    ngx_memcpy(call->body + call->len, ptr, n);
    call->len += n;

    return n;
}


static int
ngx_http_clockchain_flash_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp)
{
    ngx_connection_t             *c = socketp;
    ngx_http_clockchain_flash_t  *fl = &ngx_http_clockchain_flash;

    if (what == CURL_POLL_REMOVE) {
        if (c == NULL) {
            /* a socket we never watched */
            return 0;
        }

        /* curl may keep the socket for reuse: never close it here */

        if (c->read->active) {
            ngx_del_event(c->read, NGX_READ_EVENT, 0);
        }

        if (c->write->active) {
            ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        curl_multi_assign(fl->multi, s, NULL);

        ngx_free_connection(c);
        c->fd = (ngx_socket_t) -1;

        return 0;
    }

    if (c == NULL) {
        c = ngx_get_connection(s, fl->log);
        if (c == NULL) {
            return -1;
        }

        c->log = fl->log;
        c->read->log = fl->log;
        c->write->log = fl->log;
        c->read->handler = ngx_http_clockchain_flash_read_handler;
        c->write->handler = ngx_http_clockchain_flash_write_handler;

        curl_multi_assign(fl->multi, s, c);
    }

    /* level-triggered, as curl expects of a poll()-like loop */

    if (what & CURL_POLL_IN) {
        if (!c->read->active
            && ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
               != NGX_OK)
        {
            return -1;
        }

    } else if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }

    if (what & CURL_POLL_OUT) {
        if (!c->write->active
            && ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
               != NGX_OK)
        {
            return -1;
        }

    } else if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }

    return 0;
}


static int
ngx_http_clockchain_flash_timer(CURLM *multi, long timeout_ms, void *userp)
{
    ngx_http_clockchain_flash_t  *fl = &ngx_http_clockchain_flash;

    /* a changed deadline must replace the old one, not be ignored */

    if (fl->timer.timer_set) {
        ngx_del_timer(&fl->timer);
    }

    if (timeout_ms >= 0) {
        /* 0 means "now": socket_action must not run inside this callback */
        ngx_add_timer(&fl->timer, (ngx_msec_t) timeout_ms);
    }

    return 0;
}


static void
ngx_http_clockchain_flash_timer_handler(ngx_event_t *ev)
{
    ngx_http_clockchain_flash_action(CURL_SOCKET_TIMEOUT, 0);
}


static void
ngx_http_clockchain_flash_read_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    /* c may be freed by the call: pass the fd, not the connection */
    ngx_http_clockchain_flash_action(c->fd, CURL_CSELECT_IN);
}


static void
ngx_http_clockchain_flash_write_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    ngx_http_clockchain_flash_action(c->fd, CURL_CSELECT_OUT);
}


static void
ngx_http_clockchain_flash_action(curl_socket_t s, int what)
{
    int                           running;
    CURLMcode                     rc;
    ngx_http_clockchain_flash_t  *fl = &ngx_http_clockchain_flash;

    if (fl->multi == NULL) {
        return;
    }

    rc = curl_multi_socket_action(fl->multi, s, what, &running);

    if (rc != CURLM_OK) {
        ngx_log_error(NGX_LOG_ERR, fl->log, 0,
                      "clockchain: curl_multi_socket_action() failed: %s",
                      curl_multi_strerror(rc));
    }

    ngx_http_clockchain_flash_check();
}


static void
ngx_http_clockchain_flash_check(void)
{
    int                                msgs;
    CURL                              *easy;
    curl_off_t                         retry_after;
    CURLMsg                           *msg;
    ngx_http_clockchain_flash_t       *fl = &ngx_http_clockchain_flash;
    ngx_http_clockchain_flash_call_t  *call;

    while ((msg = curl_multi_info_read(fl->multi, &msgs)) != NULL) {

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        easy = msg->easy_handle;
        call = NULL;

        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &call);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &call->status);
        call->result = msg->data.result;

        call->retry_after = -1;

        if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after)
            == CURLE_OK && retry_after > 0)
        {
            call->retry_after = (long) ngx_min(retry_after, 3600);
        }

        curl_multi_remove_handle(fl->multi, easy);
        fl->in_flight--;

        ngx_http_clockchain_stats_flash(ngx_current_msec - call->started);

        /* the handler owns the call from here, and may start new ones */
        call->done(call);

        if (fl->multi == NULL) {
            return;
        }
    }
}

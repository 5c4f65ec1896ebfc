
/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_REQUEST_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_REQUEST_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_redis.h"


/*
 * every JSON answer: reals as written (a weight 0.3, not jansson's default
 * %.17g 0.29999999999999999), as the original prints them
 */
#define NGX_HTTP_CLOCKCHAIN_JSON_ANSWER  (JSON_COMPACT | JSON_REAL_PRECISION(15))




typedef struct {
    ngx_http_request_t               *request;
    ngx_http_clockchain_redis_op_t   *op;

    ngx_http_clockchain_job_req_t    *reqs;
    ngx_http_clockchain_job_t        *jobs;
    ngx_uint_t                        njobs;
    ngx_uint_t                        tries;
    ngx_str_t                         created_by;
    ngx_str_t                         idempotency;
    ngx_str_t                         body;

    /* a chunked body as it comes, up to one byte past the limit */
    ngx_buf_t                        *chunked;

    /* for $clockchain_job_id and $clockchain_job_status */
    ngx_str_t                         log_id;
    ngx_str_t                         log_status;

    /* the job's answer and status as the zone had them (has_cached) */
    ngx_str_t                         cached;
    ngx_uint_t                        cached_status;
    u_char                            id[NGX_HTTP_CLOCKCHAIN_ID_LEN];

    /* the zone's epoch when the command in ctx->op was sent */
    uint32_t                          epoch;

    ngx_str_t                         path;        /* a moment's */
    const char                       *visibility;

    /* a public moment's read: the zone's moment sequence when it was sent */
    uint64_t                          moment_seq;

    /* a graph read through the zone (ngx_http_clockchain_read_cached()):
     * its key there, 64 bits of the graph's version read before it, and
     * what sends the read to Redis on a miss */
    ngx_str_t                         cache_key;
    uint64_t                          cache_version;
    ngx_int_t                       (*cache_read)(ngx_http_request_t *r,
                                                  void *ctx);

    /* the writer (ngx_http_clockchain_writer_auth(), agents.c): the agent's
     * name; while its token is looked up, what it needs, the token's
     * SHA-256, the zone's epoch and revocations then, and what goes on */
    ngx_str_t                         agent;
    ngx_uint_t                        agent_need;
    u_char                            agent_hash[65];
    uint32_t                          agent_epoch;
    ngx_atomic_uint_t                 agent_gen;
    void                            (*agent_done)(ngx_http_request_t *r);

    /* a create in the worker's group commit (commit.c): its place in the
     * queue, or its call in flight and its slot there */
    ngx_queue_t                       commit_queue;
    void                             *commit_call;
    ngx_uint_t                        commit_slot;
    size_t                            commit_size;

    /* the writers' workflow (propose.c): its own state */
    void                             *workflow;

    /* GET ?wait=N: ngx_http_clockchain_wait.c; the timer is also the
     * status page's wait for Redis (status.c); the cleanup deletes it */
    ngx_event_t                       wait_timer;
    ngx_queue_t                       wait_queue;
    void                             *wait_group;
    ngx_uint_t                        wait_state;  /* ..._WAIT_ASLEEP, ... */

    unsigned                          bulk:1;
    unsigned                          has_cached:1;
    unsigned                          wait_known:1;  /* asleep, knowing */
    unsigned                          moment_public:1;  /* zone-cached */
    unsigned                          agent_stored:1;  /* its record read */
    unsigned                          commit_queued:1;
} ngx_http_clockchain_ctx_t;


ngx_http_clockchain_ctx_t *ngx_http_clockchain_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_auth(ngx_http_request_t *r, ngx_uint_t admin);
ngx_int_t ngx_http_clockchain_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
ngx_int_t ngx_http_clockchain_json_content_type(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_read_body(ngx_http_request_t *r,
    ngx_str_t *body);
void ngx_http_clockchain_finalize(ngx_http_request_t *r, ngx_int_t rc);
ngx_int_t ngx_http_clockchain_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *fmt, ...);
ngx_int_t ngx_http_clockchain_send(ngx_http_request_t *r, ngx_uint_t status,
    u_char *data, size_t len);
ngx_int_t ngx_http_clockchain_send_type(ngx_http_request_t *r,
    ngx_uint_t status, u_char *data, size_t len, const char *type);
ngx_int_t ngx_http_clockchain_send_body(ngx_http_request_t *r,
    ngx_uint_t status, u_char *data, size_t len, const char *type,
    const char *cache_control);
ngx_int_t ngx_http_clockchain_etag(ngx_http_request_t *r, u_char *value,
    size_t len);
ngx_int_t ngx_http_clockchain_send_json(ngx_http_request_t *r, json_t *json);
ngx_int_t ngx_http_clockchain_read_cached(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, const char *mode,
    ngx_int_t (*read)(ngx_http_request_t *r, void *ctx));
ngx_int_t ngx_http_clockchain_graph_reply(ngx_http_request_t *r,
    redisReply *reply, const char *what, const char *missing);
ngx_int_t ngx_http_clockchain_add_header(ngx_http_request_t *r,
    const char *name, const char *value);
void *ngx_http_clockchain_palloc(void *ctx, size_t size);
const char *ngx_http_clockchain_user(ngx_http_request_t *r, ngx_str_t *user);
ngx_int_t ngx_http_clockchain_unavailable(ngx_http_request_t *r,
    const char *detail);
ngx_int_t ngx_http_clockchain_not_allowed(ngx_http_request_t *r,
    const char *allow);
ngx_int_t ngx_http_clockchain_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
ngx_int_t ngx_http_clockchain_read_start(ngx_http_request_t *r,
    ngx_uint_t *anonymous, ngx_http_clockchain_ctx_t **ctxp);
void ngx_http_clockchain_uri_tail(ngx_http_request_t *r, ngx_str_t *tail);
ngx_int_t ngx_http_clockchain_vary(ngx_http_request_t *r, const char *field);
ngx_int_t ngx_http_clockchain_moment_canonical(ngx_http_request_t *r,
    u_char *p, size_t len, ngx_str_t *path);
ngx_int_t ngx_http_clockchain_arg_int(ngx_http_request_t *r,
    const char *name, int64_t min, int64_t max, int64_t *n,
    const char **detail);


#endif /* _NGX_HTTP_CLOCKCHAIN_REQUEST_H_INCLUDED_ */

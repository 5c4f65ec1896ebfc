
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * The writers' workflow (the original's app/api/propose.py), on the
 * moments location: POST {location}/propose, and on a moment (the ninth
 * segment after its eight) POST .../challenge, .../verify (admin),
 * .../reconcile (admin), GET .../challenges and .../history.  Each needs
 * the service key; the writes also a writer (ngx_http_clockchain_writer_
 * auth(): "system" without writer tokens).  Bodies are checked here, the
 * nodes built as a seed's are (ngx_http_clockchain_seed_propose()), and
 * each action is one step of propose.lua, which checks the status
 * transitions itself so that two at once stay consistent.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <jansson.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_propose.h"
#include "ngx_http_clockchain_agents.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_request.h"
#include "ngx_http_clockchain_store.h"
#include "ngx_http_clockchain_shm.h"
#include "ngx_http_clockchain_seed.h"


#define NGX_HTTP_CLOCKCHAIN_CHALLENGES_SHOWN  1000


typedef struct {
    ngx_uint_t                   action;
    ngx_str_t                    other;      /* competing, winner */
    ngx_str_t                    loser;
    ngx_str_t                    name;       /* the proposed moment's */
    ngx_str_t                    payload;    /* propose.lua's {node,edges} */
    ngx_str_t                    reason;
} ngx_http_clockchain_workflow_t;


static const struct {
    const char  *name;
    ngx_uint_t   action;
} ngx_http_clockchain_propose_actions[] = {
    { "challenge", NGX_HTTP_CLOCKCHAIN_PROPOSE_CHALLENGE },
    { "verify", NGX_HTTP_CLOCKCHAIN_PROPOSE_VERIFY },
    { "reconcile", NGX_HTTP_CLOCKCHAIN_PROPOSE_RECONCILE },
    { "challenges", NGX_HTTP_CLOCKCHAIN_PROPOSE_CHALLENGES },
    { "history", NGX_HTTP_CLOCKCHAIN_PROPOSE_HISTORY },
    { NULL, 0 }
};


static void ngx_http_clockchain_propose_body(ngx_http_request_t *r);
static void ngx_http_clockchain_propose_writer(ngx_http_request_t *r);
static ngx_int_t ngx_http_clockchain_propose_check(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, ngx_http_clockchain_workflow_t *w);
static ngx_int_t ngx_http_clockchain_propose_node(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, ngx_http_clockchain_workflow_t *w,
    json_t *req, const char *what);
static ngx_int_t ngx_http_clockchain_propose_path(ngx_http_request_t *r,
    json_t *v, ngx_str_t *path);
static ngx_int_t ngx_http_clockchain_propose_send(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx);
static void ngx_http_clockchain_propose_done(void *data, redisReply *reply);
static ngx_int_t ngx_http_clockchain_propose_answer(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, redisReply *reply);
static ngx_int_t ngx_http_clockchain_propose_read(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, redisReply *reply);
static json_t *ngx_http_clockchain_history_entry(const char *action,
    redisReply *agent, redisReply *at, const char *details, size_t dlen);
static json_t *ngx_http_clockchain_history_status(ngx_http_request_t *r,
    redisReply *status, json_t *by);


ngx_uint_t
ngx_http_clockchain_propose_action(u_char *s, size_t len)
{
    ngx_uint_t  i;

    for (i = 0; ngx_http_clockchain_propose_actions[i].name; i++) {
        if (len == ngx_strlen(ngx_http_clockchain_propose_actions[i].name)
            && ngx_strncmp(s, ngx_http_clockchain_propose_actions[i].name,
                           len)
               == 0)
        {
            return ngx_http_clockchain_propose_actions[i].action;
        }
    }

    return 0;
}


ngx_int_t
ngx_http_clockchain_propose_handler(ngx_http_request_t *r, ngx_str_t *path,
    ngx_uint_t action)
{
    ngx_int_t                        rc;
    ngx_uint_t                       read;
    ngx_http_clockchain_ctx_t       *ctx;
    ngx_http_clockchain_loc_conf_t  *llcf;
    ngx_http_clockchain_workflow_t  *w;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_clockchain_module);

    read = (action == NGX_HTTP_CLOCKCHAIN_PROPOSE_CHALLENGES
            || action == NGX_HTTP_CLOCKCHAIN_PROPOSE_HISTORY);

    if (read && !(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_clockchain_not_allowed(r, "GET, HEAD");
    }

    if (!read && r->method != NGX_HTTP_POST) {
        return ngx_http_clockchain_not_allowed(r, "POST");
    }

    /* as every router of the original's propose.py: the service key */

    rc = ngx_http_clockchain_auth(r, 0);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (action != NGX_HTTP_CLOCKCHAIN_PROPOSE_NEW && path->data == NULL) {
        return ngx_http_clockchain_error(r, NGX_HTTP_NOT_FOUND,
                                         "Moment not found");
    }

    ctx = ngx_http_clockchain_ctx(r);
    w = ngx_pcalloc(r->pool, sizeof(ngx_http_clockchain_workflow_t));

    if (ctx == NULL || w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->path = *path;
    ctx->workflow = w;
    w->action = action;

    if (read) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_clockchain_propose_send(r, ctx);
        if (rc == NGX_DONE) {
            r->main->count++;
        }

        return rc;
    }

    if ((r->headers_in.content_length_n > 0 || r->headers_in.chunked)
        && ngx_http_clockchain_json_content_type(r) != NGX_OK)
    {
        return ngx_http_clockchain_error(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                   "Content-Type must be application/json: send the body "
                   "as JSON with \"Content-Type: application/json\"");
    }

    if (r->headers_in.content_length_n > (off_t) llcf->max_body_size) {
        return ngx_http_clockchain_error(r,
                   NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                   "Request body too large: the limit is %uz bytes",
                   llcf->max_body_size);
    }

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_clockchain_propose_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_clockchain_propose_body(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_uint_t                       need;
    ngx_http_clockchain_ctx_t       *ctx;
    ngx_http_clockchain_loc_conf_t  *llcf;
    ngx_http_clockchain_workflow_t  *w;

    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);
    llcf = ngx_http_get_module_loc_conf(r, ngx_http_clockchain_module);
    w = ctx->workflow;

    if (ngx_http_clockchain_read_body(r, &ctx->body) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->body.len > llcf->max_body_size) {
        ngx_http_finalize_request(r, ngx_http_clockchain_error(r,
                                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "Request body too large: the limit is "
                                  "%uz bytes", llcf->max_body_size));
        return;
    }

    /* the original's require_write_auth, and require_admin_auth */

    need = (w->action == NGX_HTTP_CLOCKCHAIN_PROPOSE_VERIFY
            || w->action == NGX_HTTP_CLOCKCHAIN_PROPOSE_RECONCILE)
           ? NGX_HTTP_CLOCKCHAIN_AGENT_ADMIN
           : NGX_HTTP_CLOCKCHAIN_AGENT_WRITE;

    rc = ngx_http_clockchain_writer_auth(r, need,
                                         ngx_http_clockchain_propose_writer);
    if (rc == NGX_DECLINED) {
        ngx_http_clockchain_propose_writer(r);
        return;
    }

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/* the writer is known: the body is checked, then the step is sent */

static void
ngx_http_clockchain_propose_writer(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_clockchain_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);

    rc = ngx_http_clockchain_propose_check(r, ctx, ctx->workflow);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_clockchain_propose_send(r, ctx);
    }

    if (rc != NGX_DONE) {
        ngx_http_clockchain_finalize(r, rc);
    }
}


/*
 * NGX_DECLINED when the body is right (as ngx_http_clockchain_auth()), or
 * the status to finalize with, the answer sent
 */

static ngx_int_t
ngx_http_clockchain_propose_check(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, ngx_http_clockchain_workflow_t *w)
{
    size_t         len;
    json_t        *body, *v;
    ngx_int_t      rc;
    json_error_t   jerr;

    if (w->action == NGX_HTTP_CLOCKCHAIN_PROPOSE_VERIFY) {
        /* no body is read: the original's verify takes none */
        return NGX_DECLINED;
    }

    body = json_loadb((char *) ctx->body.data, ctx->body.len,
                      JSON_REJECT_DUPLICATES, &jerr);

    if (body == NULL || !json_is_object(body)) {
        json_decref(body);
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                                         "Invalid body: a JSON object, as "
                                         "the original's %s",
                   w->action == NGX_HTTP_CLOCKCHAIN_PROPOSE_NEW
                   ? "ProposeRequest"
                   : w->action == NGX_HTTP_CLOCKCHAIN_PROPOSE_CHALLENGE
                   ? "ChallengeRequest" : "ReconcileRequest");
    }

    switch (w->action) {

    case NGX_HTTP_CLOCKCHAIN_PROPOSE_NEW:
        rc = ngx_http_clockchain_propose_node(r, ctx, w, body, "body");
        break;

    case NGX_HTTP_CLOCKCHAIN_PROPOSE_CHALLENGE:
        v = json_object_get(body, "reason");

        if (v != NULL && !json_is_null(v)
            && (!json_is_string(v) || json_string_length(v) > 2000))
        {
            rc = ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                     "reason: a string of at most 2000 bytes");
            break;
        }

        len = json_is_string(v) ? json_string_length(v) : 0;
        w->reason.data = ngx_pnalloc(r->pool, len + 1);
        if (w->reason.data == NULL) {
            rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            break;
        }

        ngx_memcpy(w->reason.data, len ? json_string_value(v) : "", len);
        w->reason.len = len;

        v = json_object_get(body, "competing_moment");

        if (!json_is_object(v)) {
            rc = ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                     "competing_moment: the challenger's moment, an object "
                     "as a proposal's body");
            break;
        }

        rc = ngx_http_clockchain_propose_node(r, ctx, w, v,
                                              "competing_moment");
        break;

    default: /* reconcile */
        if (ngx_http_clockchain_propose_path(r,
                                 json_object_get(body, "winner_id"),
                                 &w->other)
            != NGX_OK)
        {
            rc = ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                     "winner_id: a moment's path");
            break;
        }

        if (ngx_http_clockchain_propose_path(r,
                                 json_object_get(body, "loser_id"),
                                 &w->loser)
            != NGX_OK)
        {
            rc = ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                     "loser_id: a moment's path");
            break;
        }

        v = json_object_get(body, "reason");

        if (v != NULL && !json_is_null(v) && !json_is_string(v)) {
            rc = ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                     "reason: a string");
            break;
        }

        if (w->other.len == w->loser.len
            && ngx_strncmp(w->other.data, w->loser.data, w->loser.len) == 0)
        {
            rc = ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                     "winner_id and loser_id must be two moments");
            break;
        }

        if (!(ctx->path.len == w->other.len
              && ngx_strncmp(ctx->path.data, w->other.data, w->other.len)
                 == 0)
            && !(ctx->path.len == w->loser.len
                 && ngx_strncmp(ctx->path.data, w->loser.data,
                                w->loser.len)
                    == 0))
        {
            rc = ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                     "Path moment_id must match either winner_id or "
                     "loser_id");
            break;
        }

        rc = NGX_DECLINED;
    }

    json_decref(body);

    return rc;
}


/* a proposal's node and edges, checked and built (the pure layer) */

static ngx_int_t
ngx_http_clockchain_propose_node(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, ngx_http_clockchain_workflow_t *w,
    json_t *req, const char *what)
{
    char        err[NGX_HTTP_CLOCKCHAIN_ERR_LEN], *text, *agent;
    json_t     *node, *edges, *all;
    ngx_str_t   s;

    agent = ngx_pnalloc(r->pool, ctx->agent.len + 1);
    if (agent == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(agent, ctx->agent.data, ctx->agent.len);
    agent[ctx->agent.len] = '\0';

    if (ngx_http_clockchain_seed_propose(req, agent, what, &node, &edges,
                                         err, sizeof(err))
        != 1)
    {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST, "%s", err);
    }

    s.data = (u_char *) json_string_value(json_object_get(node, "path"));
    s.len = s.data ? ngx_strlen(s.data) : 0;
    w->other.data = ngx_pstrdup(r->pool, &s);
    w->other.len = s.len;

    s.data = (u_char *) json_string_value(json_object_get(node, "name"));
    s.len = s.data ? ngx_strlen(s.data) : 0;
    w->name.data = s.len ? ngx_pstrdup(r->pool, &s) : (u_char *) "";
    w->name.len = s.len;

    all = json_pack("{s:o,s:o}", "node", node, "edges", edges);
    text = all ? json_dumps(all, JSON_COMPACT) : NULL;
    json_decref(all);

    if (text == NULL || w->other.data == NULL || w->name.data == NULL) {
        free(text);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s.data = (u_char *) text;
    s.len = ngx_strlen(text);
    w->payload.data = ngx_pstrdup(r->pool, &s);
    w->payload.len = s.len;
    free(text);

    if (w->payload.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (w->action == NGX_HTTP_CLOCKCHAIN_PROPOSE_CHALLENGE
        && w->other.len == ctx->path.len
        && ngx_strncmp(w->other.data, ctx->path.data, ctx->path.len) == 0)
    {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                   "competing_moment.id: a moment cannot challenge itself");
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_clockchain_propose_path(ngx_http_request_t *r, json_t *v,
    ngx_str_t *path)
{
    if (!json_is_string(v)) {
        return NGX_DECLINED;
    }

    if (ngx_http_clockchain_moment_canonical(r,
                                       (u_char *) json_string_value(v),
                                       json_string_length(v), path)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    /* the canonical form may be the JSON string's own bytes: copied */

    path->data = ngx_pstrdup(r->pool, path);

    return path->data ? NGX_OK : NGX_ERROR;
}


/* NGX_DONE once sent, or the status to finalize with */

static ngx_int_t
ngx_http_clockchain_propose_send(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx)
{
    ngx_str_t                         args[5], token;
    ngx_uint_t                        n;
    const char                       *op;
    ngx_http_clockchain_main_conf_t  *mcf;
    ngx_http_clockchain_workflow_t   *w;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);
    w = ctx->workflow;

    switch (w->action) {

    case NGX_HTTP_CLOCKCHAIN_PROPOSE_NEW:
        op = "propose";
        args[0] = w->payload;
        n = 1;
        break;

    case NGX_HTTP_CLOCKCHAIN_PROPOSE_CHALLENGE:
        op = "challenge";
        args[0] = ctx->path;
        args[1] = w->payload;
        args[2] = w->reason;
        args[3] = ctx->agent;
        n = 4;
        break;

    case NGX_HTTP_CLOCKCHAIN_PROPOSE_VERIFY:
        op = "verify";
        args[0] = ctx->path;
        n = 1;
        break;

    case NGX_HTTP_CLOCKCHAIN_PROPOSE_RECONCILE:
        op = "reconcile";
        args[0] = w->other;
        args[1] = w->loser;
        n = 2;
        break;

    default:
        op = (w->action == NGX_HTTP_CLOCKCHAIN_PROPOSE_HISTORY)
             ? "history" : "challenges";
        args[0] = ctx->path;
        ngx_str_set(&args[1],
                    ngx_value(NGX_HTTP_CLOCKCHAIN_CHALLENGES_SHOWN));
        n = 2;
    }

    if (w->action == NGX_HTTP_CLOCKCHAIN_PROPOSE_CHALLENGES
        || w->action == NGX_HTTP_CLOCKCHAIN_PROPOSE_HISTORY)
    {
        ngx_str_set(&token, "");

    } else {
        ngx_http_clockchain_writer_token(r, &token);
    }

    ctx->op = ngx_http_clockchain_store_propose(mcf, op, &token, args, n,
                                              ngx_http_clockchain_propose_done,
                                              ctx);
    if (ctx->op == NULL) {
        return ngx_http_clockchain_unavailable(r, "Graph store unavailable: "
                                               "Redis cannot be reached, "
                                               "retry later");
    }

    return NGX_DONE;
}


static void
ngx_http_clockchain_propose_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    ngx_int_t                        rc;
    ngx_http_request_t              *r;
    ngx_http_clockchain_workflow_t  *w;

    r = ctx->request;
    ctx->op = NULL;
    w = ctx->workflow;

    rc = ngx_http_clockchain_writer_revoked(r, reply);
    if (rc != NGX_DECLINED) {
        ngx_http_clockchain_finalize(r, rc);
        return;
    }

    if (reply == NULL) {
        /* sent, and not answered in time: Redis may still have run it */
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: Redis did not "
                                     "answer, the change may have been "
                                     "made; read the moment before sending "
                                     "it again"));
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "clockchain: propose.lua failed: %s", reply->str);

        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: nothing was "
                                     "changed, retry later"));
        return;
    }

    if (w->action == NGX_HTTP_CLOCKCHAIN_PROPOSE_CHALLENGES
        || w->action == NGX_HTTP_CLOCKCHAIN_PROPOSE_HISTORY)
    {
        ngx_http_clockchain_finalize(r,
                             ngx_http_clockchain_propose_read(r, ctx, reply));
        return;
    }

    ngx_http_clockchain_finalize(r,
                           ngx_http_clockchain_propose_answer(r, ctx, reply));
}


static ngx_int_t
ngx_http_clockchain_propose_answer(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, redisReply *reply)
{
    json_t                           *json;
    const char                       *s;
    ngx_http_clockchain_main_conf_t  *mcf;
    ngx_http_clockchain_workflow_t   *w;

    w = ctx->workflow;
    s = (reply->type == REDIS_REPLY_STRING || reply->type
         == REDIS_REPLY_STATUS) ? reply->str : "";

    if (reply->type == REDIS_REPLY_NIL) {
        return ngx_http_clockchain_error(r, NGX_HTTP_NOT_FOUND,
                                         "Moment not found");
    }

    if (ngx_strcmp(s, "EXISTS") == 0) {
        return ngx_http_clockchain_error(r, NGX_HTTP_CONFLICT,
                   w->action == NGX_HTTP_CLOCKCHAIN_PROPOSE_NEW
                   ? "Moment '%V' already exists. Use challenge to dispute "
                     "it."
                   : "Competing moment '%V' already exists", &w->other);
    }

    if (ngx_strcmp(s, "ALTERNATIVE") == 0) {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                   w->action == NGX_HTTP_CLOCKCHAIN_PROPOSE_VERIFY
                   ? "Cannot verify an alternative moment. Use reconcile "
                     "instead."
                   : "Cannot challenge an alternative moment");
    }

    if (ngx_strcmp(s, "VERIFIED") == 0) {
        return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                                         "Moment is already verified");
    }

    if (ngx_strcmp(s, "NO_WINNER") == 0) {
        return ngx_http_clockchain_error(r, NGX_HTTP_NOT_FOUND,
                   "Winner moment '%V' not found", &w->other);
    }

    if (ngx_strcmp(s, "NO_LOSER") == 0) {
        return ngx_http_clockchain_error(r, NGX_HTTP_NOT_FOUND,
                   "Loser moment '%V' not found", &w->loser);
    }

    if (ngx_strcmp(s, "OK") != 0
        && !(reply->type == REDIS_REPLY_ARRAY && reply->elements == 3))
    {
        return ngx_http_clockchain_unavailable(r, "Graph store unavailable: "
                                               "an unexpected answer");
    }

    /* read your own write, as a publish: this nginx forgets its answers */

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);
    ngx_http_clockchain_shm_moment_mark(mcf->shm_zone, NULL);

    switch (w->action) {

    case NGX_HTTP_CLOCKCHAIN_PROPOSE_NEW:
        json = json_pack("{s:s%,s:s%,s:s,s:s%}",
                         "path", w->other.data, w->other.len,
                         "name", w->name.data, w->name.len,
                         "status", "proposed",
                         "proposed_by", ctx->agent.data, ctx->agent.len);
        break;

    case NGX_HTTP_CLOCKCHAIN_PROPOSE_CHALLENGE:
        json = json_pack("{s:s%,s:s,s:s%,s:s,s:s%}",
                         "original_moment_id", ctx->path.data, ctx->path.len,
                         "original_status", "challenged",
                         "competing_moment_id", w->other.data, w->other.len,
                         "competing_status", "proposed",
                         "challenged_by", ctx->agent.data, ctx->agent.len);
        break;

    case NGX_HTTP_CLOCKCHAIN_PROPOSE_VERIFY:
        json = json_pack("{s:s%,s:s,s:s%}",
                         "moment_id", ctx->path.data, ctx->path.len,
                         "status", "verified",
                         "verified_by", ctx->agent.data, ctx->agent.len);
        break;

    default:
        json = json_pack("{s:s%,s:s,s:s%,s:s,s:s%}",
                         "winner_id", w->other.data, w->other.len,
                         "winner_status", "verified",
                         "loser_id", w->loser.data, w->loser.len,
                         "loser_status", "alternative",
                         "reconciled_by", ctx->agent.data, ctx->agent.len);
    }

    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_clockchain_send_json(r, json);
}


/*
 * challenges: { status, { HGETALL of each challenger } };
 * history: { status, proposed_by, created_at, challenged_by,
 * { { proposed_by, created_at, description } } }.
 */

static ngx_int_t
ngx_http_clockchain_propose_read(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, redisReply *reply)
{
    u_char                          *p;
    size_t                           i, len;
    json_t                          *json, *list, *e, *by;
    redisReply                     **f, none, **c;
    ngx_http_clockchain_workflow_t  *w;

    w = ctx->workflow;

    if (reply->type == REDIS_REPLY_NIL) {
        return ngx_http_clockchain_error(r, NGX_HTTP_NOT_FOUND,
                                         "Moment not found");
    }

    if (reply->type != REDIS_REPLY_ARRAY
        || reply->elements != (w->action
                               == NGX_HTTP_CLOCKCHAIN_PROPOSE_HISTORY
                               ? 5 : 2))
    {
        return ngx_http_clockchain_unavailable(r, "Graph store unavailable: "
                                               "an unexpected answer");
    }

    f = reply->element;
    list = json_array();

    if (w->action == NGX_HTTP_CLOCKCHAIN_PROPOSE_CHALLENGES) {
        ngx_memzero(&none, sizeof(redisReply));
        none.type = REDIS_REPLY_ARRAY;

        for (i = 0; f[1]->type == REDIS_REPLY_ARRAY && i < f[1]->elements;
             i++)
        {
            e = ngx_http_clockchain_moment_json(f[1]->element[i], &none, 0);
            if (e) {
                json_object_del(e, "edges");
                json_array_append_new(list, e);
            }
        }

        json = json_pack("{s:s%,s:o,s:I}",
                         "moment_id", ctx->path.data, ctx->path.len,
                         "challenges", list,
                         "count", (json_int_t) json_array_size(list));

        return json ? ngx_http_clockchain_send_json(r, json)
                    : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the original's get_moment_history(): derived, not logged */

    len = f[1]->len;
    p = ngx_pnalloc(r->pool, len + sizeof("Proposed by "));
    if (p == NULL) {
        json_decref(list);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = len ? (size_t) (ngx_sprintf(p, "Proposed by %*s", f[1]->len,
                                      f[1]->str) - p)
              : (size_t) (ngx_cpymem(p, "Proposed", 8) - p);

    json_array_append_new(list, ngx_http_clockchain_history_entry("proposed",
                                                     f[1], f[2], (char *) p,
                                                     len));

    for (i = 0; f[4]->type == REDIS_REPLY_ARRAY && i < f[4]->elements; i++) {
        if (f[4]->element[i]->type != REDIS_REPLY_ARRAY
            || f[4]->element[i]->elements != 3)
        {
            continue;
        }

        c = f[4]->element[i]->element;

        if (c[2]->len) {
            e = ngx_http_clockchain_history_entry("challenged", c[0], c[1],
                                                  c[2]->str, c[2]->len);

        } else {
            p = ngx_pnalloc(r->pool, c[0]->len + sizeof("Challenged by "));
            if (p == NULL) {
                json_decref(list);
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            len = ngx_sprintf(p, "Challenged by %*s", c[0]->len, c[0]->str)
                  - p;
            e = ngx_http_clockchain_history_entry("challenged", c[0], c[1],
                                                  (char *) p, len);
        }

        json_array_append_new(list, e);
    }

    if (f[0]->len == sizeof("verified") - 1
        ? ngx_strncmp(f[0]->str, "verified", f[0]->len) == 0
        : (f[0]->len == sizeof("alternative") - 1
           && ngx_strncmp(f[0]->str, "alternative", f[0]->len) == 0))
    {
        by = json_loadb(f[3]->str, f[3]->len, 0, NULL);
        e = json_pack("{s:s%,s:s,s:s}", "action", f[0]->str,
                      (size_t) f[0]->len, "agent", "", "timestamp", "");

        if (e) {
            json_object_set_new(e, "details",
                ngx_http_clockchain_history_status(r, f[0], by));
            json_array_append_new(list, e);
        }

        json_decref(by);
    }

    json = json_pack("{s:s%,s:s%,s:o}",
                     "moment_id", ctx->path.data, ctx->path.len,
                     "status", f[0]->str, (size_t) f[0]->len,
                     "history", list);

    return json ? ngx_http_clockchain_send_json(r, json)
                : NGX_HTTP_INTERNAL_SERVER_ERROR;
}


static json_t *
ngx_http_clockchain_history_entry(const char *action, redisReply *agent,
    redisReply *at, const char *details, size_t dlen)
{
    return json_pack("{s:s,s:s%,s:s%,s:s%}", "action", action,
                     "agent", agent->type == REDIS_REPLY_STRING
                              ? agent->str : "",
                     (size_t) (agent->type == REDIS_REPLY_STRING
                               ? agent->len : 0),
                     "timestamp", at->type == REDIS_REPLY_STRING
                                  ? at->str : "",
                     (size_t) (at->type == REDIS_REPLY_STRING
                               ? at->len : 0),
                     "details", details, dlen);
}


/* "Status set to verified (challenged by: a, b)", as the original says */

static json_t *
ngx_http_clockchain_history_status(ngx_http_request_t *r, redisReply *status,
    json_t *by)
{
    u_char      *buf, *p;
    size_t       i, len;
    json_t      *v;
    ngx_uint_t   n;

    len = sizeof("Status set to  (challenged by: )") + status->len;

    json_array_foreach(by, i, v) {
        if (json_is_string(v)) {
            len += json_string_length(v) + 2;
        }
    }

    buf = ngx_pnalloc(r->pool, len);
    if (buf == NULL) {
        return NULL;
    }

    p = ngx_sprintf(buf, "Status set to %*s", (size_t) status->len,
                    status->str);
    n = 0;

    json_array_foreach(by, i, v) {
        if (json_is_string(v)) {
            p = ngx_sprintf(p, "%s%*s", n++ ? ", " : " (challenged by: ",
                            json_string_length(v), json_string_value(v));
        }
    }

    if (n) {
        *p++ = ')';
    }

    return json_stringn((char *) buf, p - buf);
}


/*
 * Copyright (C) The Clockchain authors
 */


/*
 * The writers (the original's app/core/multi_writer.py and app/api/
 * agents.py).  An agent holds a Bearer token; Redis keeps the token's
 * SHA-256 only, with the agent's id, name, permissions (read, write,
 * admin) and whether it is active (agents.lua).  With
 * clockchain_admin_token_file or clockchain_writer_tokens_file, a write
 * route asks ngx_http_clockchain_writer_auth() for its writer; without
 * them every writer is "system", as the original's legacy mode.
 *
 * {location}/register (POST), {location} (GET: the list; POST: register
 * too) and {location}/{id} (DELETE: revoke), admin agents only, with the
 * service key as well.  A revocation publishes the token's hash on
 * "<events channel>:agents"; every worker of every nginx drops what it
 * cached (each worker keeps the tokens it found valid for a minute at
 * most, and trusts them only while its subscription is up and no
 * revocation was heard since they were read).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/random.h>

#include <jansson.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_agents.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_request.h"
#include "ngx_http_clockchain_store.h"
#include "ngx_http_clockchain_shm.h"
#include "ngx_http_clockchain_events.h"
#include "ngx_http_clockchain_stats.h"
#include "ngx_http_clockchain_tdf.h"


#define NGX_HTTP_CLOCKCHAIN_AGENT_CACHE   256      /* slots, per worker */
#define NGX_HTTP_CLOCKCHAIN_AGENT_TTL     60000    /* ms */
#define NGX_HTTP_CLOCKCHAIN_AGENT_TOKEN   4096     /* a Bearer token, bytes */
#define NGX_HTTP_CLOCKCHAIN_AGENTS_LISTED 1000

/* the routes under the location */
#define NGX_HTTP_CLOCKCHAIN_AGENTS_ROOT      0
#define NGX_HTTP_CLOCKCHAIN_AGENTS_REGISTER  1
#define NGX_HTTP_CLOCKCHAIN_AGENTS_ONE       2
#define NGX_HTTP_CLOCKCHAIN_AGENTS_UNKNOWN   3


typedef struct {
    u_char                            hash[64];
    u_char                            name[NGX_HTTP_CLOCKCHAIN_AGENT_NAME_MAX];
    size_t                            name_len;     /* 0: empty */
    ngx_uint_t                        perm;
    uint32_t                          epoch;
    ngx_atomic_uint_t                 gen;
    ngx_msec_t                        expires;
} ngx_http_clockchain_agent_slot_t;


static ngx_int_t ngx_http_clockchain_writer_check(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, ngx_uint_t perm, u_char *name,
    size_t len);
static ngx_int_t ngx_http_clockchain_bearer_refused(ngx_http_request_t *r,
    const char *detail);
static void ngx_http_clockchain_writer_found(void *data, redisReply *reply);
static ngx_int_t ngx_http_clockchain_agent_perm(const char *s, size_t len,
    ngx_uint_t *perm);
static ngx_http_clockchain_agent_slot_t *ngx_http_clockchain_agent_slot(
    const u_char *hash);
static void ngx_http_clockchain_agent_revoked(const u_char *hash, size_t len);
static void ngx_http_clockchain_agents_body(ngx_http_request_t *r);
static void ngx_http_clockchain_agents_authorized(ngx_http_request_t *r);
static void ngx_http_clockchain_agents_register(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx);
static void ngx_http_clockchain_agents_registered(void *data,
    redisReply *reply);
static void ngx_http_clockchain_agents_listed(void *data, redisReply *reply);
static void ngx_http_clockchain_agents_revoke_done(void *data,
    redisReply *reply);
static ngx_uint_t ngx_http_clockchain_agents_route(ngx_http_request_t *r,
    ngx_str_t *id);
static void ngx_http_clockchain_agents_send_op(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx);
static void ngx_http_clockchain_agents_tick(ngx_event_t *ev);
static void ngx_http_clockchain_agents_booted(void *data, redisReply *reply);


static const char  *ngx_http_clockchain_agent_perms[] = {
    "read", "write", "admin"
};

static ngx_http_clockchain_agent_slot_t
    ngx_http_clockchain_agent_cache[NGX_HTTP_CLOCKCHAIN_AGENT_CACHE];

static ngx_http_clockchain_main_conf_t  *ngx_http_clockchain_agents_mcf;
static ngx_event_t                       ngx_http_clockchain_agents_ev;
static ngx_http_clockchain_redis_op_t   *ngx_http_clockchain_agents_op;
static ngx_uint_t                        ngx_http_clockchain_agents_booted_ok;


ngx_int_t
ngx_http_clockchain_writer_auth(ngx_http_request_t *r, ngx_uint_t need,
    ngx_http_clockchain_writer_done_pt done)
{
    u_char                            *token;
    size_t                             i, len;
    ngx_str_t                          value;
    ngx_http_clockchain_ctx_t         *ctx;
    ngx_http_clockchain_main_conf_t   *mcf;
    ngx_http_clockchain_agent_slot_t  *s;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);
    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);

    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!mcf->writers) {
        /* the original's legacy mode: the service key is enough */
        ngx_str_set(&ctx->agent, "system");
        return NGX_DECLINED;
    }

    if (ngx_http_clockchain_header(r, "Authorization", &value) != 1
        || value.len <= sizeof("Bearer ") - 1
        || ngx_strncasecmp(value.data, (u_char *) "Bearer ",
                           sizeof("Bearer ") - 1)
           != 0)
    {
        return ngx_http_clockchain_bearer_refused(r, "Bearer token required");
    }

    token = value.data + sizeof("Bearer ") - 1;
    len = value.len - (sizeof("Bearer ") - 1);

    for (i = 0; i < len; i++) {
        if (token[i] < 0x21 || token[i] > 0x7e) {
            break;
        }
    }

    if (i < len || len > NGX_HTTP_CLOCKCHAIN_AGENT_TOKEN) {
        return ngx_http_clockchain_bearer_refused(r, "Bearer token required");
    }

    /*
     * Only the token's SHA-256 is kept, and it is the key the record is
     * found by: no stored secret is compared byte by byte, so there is no
     * early exit whose timing tells how much of a token was right (a
     * lookup by hash leaks at most the hash's prefix, which does not help
     * find a token).
     */

    ngx_http_clockchain_sha256_hex(token, len, (char *) ctx->agent_hash);

    ctx->agent_need = need;
    ctx->agent_done = done;

    s = ngx_http_clockchain_agent_slot(ctx->agent_hash);

    if (s->name_len
        && ngx_memcmp(s->hash, ctx->agent_hash, 64) == 0
        && ngx_http_clockchain_events_subscribed()
        && s->epoch == ngx_http_clockchain_shm_epoch(mcf->shm_zone)
        && s->gen == ngx_http_clockchain_stats->agent_revocations
        && (ngx_msec_int_t) (s->expires - ngx_current_msec) > 0)
    {
        /* the slot was filled from the token's record in Redis */
        ctx->agent_stored = 1;

        return ngx_http_clockchain_writer_check(r, ctx, s->perm, s->name,
                                                s->name_len);
    }

    /*
     * What was true when the read was sent: its answer is cached only if
     * no revocation was heard (and the subscription was not new) since.
     */

    ctx->agent_epoch = ngx_http_clockchain_shm_epoch(mcf->shm_zone);
    ctx->agent_gen = ngx_http_clockchain_stats->agent_revocations;

    ctx->op = ngx_http_clockchain_store_agent(mcf, ctx->agent_hash,
                                          ngx_http_clockchain_writer_found,
                                          ctx);
    if (ctx->op == NULL) {
        return ngx_http_clockchain_unavailable(r, "Graph store unavailable: "
                                               "Redis cannot be reached, "
                                               "retry later");
    }

    return NGX_DONE;
}


void
ngx_http_clockchain_writer_token(ngx_http_request_t *r, ngx_str_t *hash)
{
    ngx_http_clockchain_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);

    if (ctx == NULL || !ctx->agent_stored) {
        ngx_str_set(hash, "");
        return;
    }

    hash->data = ctx->agent_hash;
    hash->len = 64;
}


ngx_int_t
ngx_http_clockchain_writer_revoked(ngx_http_request_t *r, redisReply *reply)
{
    char                       *s;
    ngx_http_clockchain_ctx_t  *ctx;

    if (reply == NULL || reply->type != REDIS_REPLY_ERROR) {
        return NGX_DECLINED;
    }

    /* Redis puts "ERR " before an error of one word */

    s = reply->str;

    if (ngx_strncmp(s, "ERR ", 4) == 0) {
        s += 4;
    }

    if (ngx_strcmp(s, "REVOKED") != 0) {
        return NGX_DECLINED;
    }

    /* a prefix of the hash, never the token (as the revocations' log) */

    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "clockchain: agent token %*s... revoked since it was "
                  "checked: nothing written", (size_t) 12, ctx->agent_hash);

    return ngx_http_clockchain_bearer_refused(r, "Token revoked");
}


static ngx_int_t
ngx_http_clockchain_writer_check(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx, ngx_uint_t perm, u_char *name,
    size_t len)
{
    if (perm < ctx->agent_need) {
        return ngx_http_clockchain_error(r, NGX_HTTP_FORBIDDEN,
                   ctx->agent_need == NGX_HTTP_CLOCKCHAIN_AGENT_ADMIN
                   ? "Admin permission required"
                   : "Write permission required");
    }

    ctx->agent.data = ngx_pnalloc(r->pool, len);
    if (ctx->agent.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(ctx->agent.data, name, len);
    ctx->agent.len = len;

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_clockchain_bearer_refused(ngx_http_request_t *r, const char *detail)
{
    if (ngx_http_clockchain_add_header(r, "WWW-Authenticate", "Bearer")
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_clockchain_error(r, NGX_HTTP_UNAUTHORIZED, "%s", detail);
}


/* HMGET id agent_name permissions is_active of the token's record */

static void
ngx_http_clockchain_writer_found(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    u_char                            *name;
    size_t                             len;
    ngx_int_t                          rc;
    ngx_uint_t                         i, perm;
    redisReply                       **f;
    ngx_http_request_t                *r;
    ngx_http_clockchain_main_conf_t   *mcf;
    ngx_http_clockchain_agent_conf_t  *a;
    ngx_http_clockchain_agent_slot_t  *s;

    r = ctx->request;
    ctx->op = NULL;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 4)
    {
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: the token "
                                     "could not be checked, retry later"));
        return;
    }

    f = reply->element;

    if (f[0]->type != REDIS_REPLY_STRING) {

        /*
         * Not in Redis: a token of the directives' files before its worker
         * 0 wrote them (nginx just started) is valid as the files say.  One
         * that was written and revoked is there, inactive.
         */

        a = mcf->agent_tokens ? mcf->agent_tokens->elts : NULL;

        for (i = 0; a && i < mcf->agent_tokens->nelts; i++) {
            if (ngx_memcmp(a[i].hash, ctx->agent_hash, 64) == 0) {
                break;
            }
        }

        if (a == NULL || i == mcf->agent_tokens->nelts) {
            ngx_http_clockchain_finalize(r,
                ngx_http_clockchain_bearer_refused(r, "Invalid token"));
            return;
        }

        rc = ngx_http_clockchain_writer_check(r, ctx, a[i].perm,
                                              a[i].name.data, a[i].name.len);
        goto done;
    }

    if (f[1]->type != REDIS_REPLY_STRING || f[2]->type != REDIS_REPLY_STRING
        || f[3]->type != REDIS_REPLY_STRING
        || ngx_http_clockchain_agent_perm(f[2]->str, f[2]->len, &perm)
           != NGX_OK
        || f[1]->len == 0 || f[1]->len > NGX_HTTP_CLOCKCHAIN_AGENT_NAME_MAX)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "clockchain: an agent record in redis is malformed "
                      "(agent %*s)", (size_t) ngx_min(f[0]->len, 20),
                      f[0]->str);
        ngx_http_clockchain_finalize(r,
            ngx_http_clockchain_bearer_refused(r, "Invalid token"));
        return;
    }

    if (!(f[3]->len == 1 && f[3]->str[0] == '1')) {
        /* the rule: a revoked token is as good as none (401) */
        ngx_http_clockchain_finalize(r,
            ngx_http_clockchain_bearer_refused(r, "Token revoked"));
        return;
    }

    name = (u_char *) f[1]->str;
    len = f[1]->len;
    ctx->agent_stored = 1;

    if (ctx->agent_epoch == ngx_http_clockchain_shm_epoch(mcf->shm_zone)
        && ctx->agent_gen == ngx_http_clockchain_stats->agent_revocations
        && ngx_http_clockchain_events_subscribed())
    {
        s = ngx_http_clockchain_agent_slot(ctx->agent_hash);

        ngx_memcpy(s->hash, ctx->agent_hash, 64);
        ngx_memcpy(s->name, name, len);
        s->name_len = len;
        s->perm = perm;
        s->epoch = ctx->agent_epoch;
        s->gen = ctx->agent_gen;
        s->expires = ngx_current_msec + NGX_HTTP_CLOCKCHAIN_AGENT_TTL;
    }

    rc = ngx_http_clockchain_writer_check(r, ctx, perm, name, len);

done:

    if (rc != NGX_DECLINED) {
        ngx_http_clockchain_finalize(r, rc);
        return;
    }

    ctx->agent_done(r);
}


static ngx_int_t
ngx_http_clockchain_agent_perm(const char *s, size_t len, ngx_uint_t *perm)
{
    ngx_uint_t  i;

    for (i = 0; i < 3; i++) {
        if (len == ngx_strlen(ngx_http_clockchain_agent_perms[i])
            && ngx_strncmp(s, ngx_http_clockchain_agent_perms[i], len) == 0)
        {
            *perm = i;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


static ngx_http_clockchain_agent_slot_t *
ngx_http_clockchain_agent_slot(const u_char *hash)
{
    ngx_int_t  n;

    /* a token's hash is uniform: its first two hex digits pick the slot */
    n = ngx_hextoi((u_char *) hash, 2);

    return &ngx_http_clockchain_agent_cache[n < 0 ? 0 : n];
}


/*
 * A revocation heard (events.c), or made here: every cached token of
 * every worker of this nginx stops being trusted (the zone-wide count
 * moves), and this worker forgets the one named.
 */

static void
ngx_http_clockchain_agent_revoked(const u_char *hash, size_t len)
{
    ngx_http_clockchain_agent_slot_t  *s;

    ngx_http_clockchain_stat_add(agent_revocations, 1);

    if (len == 64) {
        s = ngx_http_clockchain_agent_slot(hash);

        if (ngx_memcmp(s->hash, hash, 64) == 0) {
            s->name_len = 0;
        }
    }

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "clockchain: agent token %*s... revoked: dropped from "
                  "this worker's cache", (size_t) ngx_min(len, 12), hash);
}


ngx_int_t
ngx_http_clockchain_agents_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_str_t                   id;
    ngx_uint_t                  route;
    ngx_http_clockchain_ctx_t  *ctx;

    route = ngx_http_clockchain_agents_route(r, &id);

    switch (route) {

    case NGX_HTTP_CLOCKCHAIN_AGENTS_ROOT:
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST))) {
            return ngx_http_clockchain_not_allowed(r, "GET, HEAD, POST");
        }
        break;

    case NGX_HTTP_CLOCKCHAIN_AGENTS_REGISTER:
        if (r->method != NGX_HTTP_POST) {
            return ngx_http_clockchain_not_allowed(r, "POST");
        }
        break;

    case NGX_HTTP_CLOCKCHAIN_AGENTS_ONE:
        if (r->method != NGX_HTTP_DELETE) {
            return ngx_http_clockchain_not_allowed(r, "DELETE");
        }
        break;

    default:
        return ngx_http_clockchain_error(r, NGX_HTTP_NOT_FOUND, "Not Found");
    }

    /* the service key as on every route, then the admin's token */

    rc = ngx_http_clockchain_auth(r, 0);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx = ngx_http_clockchain_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (route == NGX_HTTP_CLOCKCHAIN_AGENTS_ONE) {
        if (id.len == 0 || id.len > 15 || ngx_atoi(id.data, id.len) <= 0) {
            return ngx_http_clockchain_error(r, NGX_HTTP_BAD_REQUEST,
                       "agent_id: a positive integer, as POST "
                       "/api/agents/register answered");
        }
    }

    ctx->path = id;

    if (r->method == NGX_HTTP_POST) {
        if ((r->headers_in.content_length_n > 0 || r->headers_in.chunked)
            && ngx_http_clockchain_json_content_type(r) != NGX_OK)
        {
            return ngx_http_clockchain_error(r,
                       NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                       "Content-Type must be application/json: send the "
                       "body as JSON with \"Content-Type: "
                       "application/json\"");
        }

        if (r->headers_in.content_length_n > NGX_HTTP_CLOCKCHAIN_PUBLISH_MAX)
        {
            return ngx_http_clockchain_error(r,
                       NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                       "Request body too large: the limit is "
                       ngx_value(NGX_HTTP_CLOCKCHAIN_PUBLISH_MAX) " bytes");
        }

        rc = ngx_http_read_client_request_body(r,
                                           ngx_http_clockchain_agents_body);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_clockchain_writer_auth(r, NGX_HTTP_CLOCKCHAIN_AGENT_ADMIN,
                                         ngx_http_clockchain_agents_authorized);
    if (rc == NGX_DECLINED) {
        r->main->count++;
        ngx_http_clockchain_agents_authorized(r);
        return NGX_DONE;
    }

    if (rc == NGX_DONE) {
        r->main->count++;
    }

    return rc;
}


/* "" or "/" (the list), "/register", "/<id>"; after the location's name */

static ngx_uint_t
ngx_http_clockchain_agents_route(ngx_http_request_t *r, ngx_str_t *id)
{
    ngx_str_t  tail;

    ngx_http_clockchain_uri_tail(r, &tail);
    ngx_str_null(id);

    if (tail.len == 0 || (tail.len == 1 && tail.data[0] == '/')) {
        return NGX_HTTP_CLOCKCHAIN_AGENTS_ROOT;
    }

    if (tail.data[0] != '/' || ngx_strlchr(tail.data + 1,
                                           tail.data + tail.len, '/'))
    {
        return NGX_HTTP_CLOCKCHAIN_AGENTS_UNKNOWN;
    }

    if (tail.len == sizeof("/register") - 1
        && ngx_strncmp(tail.data, "/register", tail.len) == 0)
    {
        return NGX_HTTP_CLOCKCHAIN_AGENTS_REGISTER;
    }

    id->data = tail.data + 1;
    id->len = tail.len - 1;

    return NGX_HTTP_CLOCKCHAIN_AGENTS_ONE;
}


static void
ngx_http_clockchain_agents_body(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_clockchain_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);

    if (ngx_http_clockchain_read_body(r, &ctx->body) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->body.len > NGX_HTTP_CLOCKCHAIN_PUBLISH_MAX) {
        ngx_http_finalize_request(r, ngx_http_clockchain_error(r,
                                  NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "Request body too large: the limit is "
                                  ngx_value(NGX_HTTP_CLOCKCHAIN_PUBLISH_MAX)
                                  " bytes"));
        return;
    }

    rc = ngx_http_clockchain_writer_auth(r, NGX_HTTP_CLOCKCHAIN_AGENT_ADMIN,
                                         ngx_http_clockchain_agents_authorized);
    if (rc == NGX_DECLINED) {
        ngx_http_clockchain_agents_authorized(r);
        return;
    }

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/* the admin is known: the request is counted, and its answer finalizes it */

static void
ngx_http_clockchain_agents_authorized(ngx_http_request_t *r)
{
    ngx_http_clockchain_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_clockchain_module);

    if (r->method == NGX_HTTP_POST) {
        ngx_http_clockchain_agents_register(r, ctx);
        return;
    }

    ngx_http_clockchain_agents_send_op(r, ctx);
}


static void
ngx_http_clockchain_agents_send_op(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx)
{
    ngx_str_t                         arg;
    ngx_http_clockchain_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    if (r->method == NGX_HTTP_DELETE) {
        ctx->op = ngx_http_clockchain_store_agents(mcf, "revoke", &ctx->path,
                                      1, ngx_http_clockchain_agents_revoke_done,
                                      ctx);
    } else {
        ngx_str_set(&arg, ngx_value(NGX_HTTP_CLOCKCHAIN_AGENTS_LISTED));
        ctx->op = ngx_http_clockchain_store_agents(mcf, "list", &arg, 1,
                                          ngx_http_clockchain_agents_listed,
                                          ctx);
    }

    if (ctx->op == NULL) {
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: Redis cannot "
                                     "be reached, retry later"));
    }
}


/*
 * {agent_name, permissions}: a name of 1 to 128 bytes without control
 * characters; permissions "read", "write" (the default) or "admin".
 */

static void
ngx_http_clockchain_agents_register(ngx_http_request_t *r,
    ngx_http_clockchain_ctx_t *ctx)
{
    u_char                            raw[32], *token;
    size_t                            i, len;
    json_t                           *body, *v;
    ngx_str_t                         src, dst, args[3];
    ngx_uint_t                        perm;
    const char                       *name;
    json_error_t                      jerr;
    ngx_http_clockchain_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_clockchain_module);

    body = json_loadb((char *) ctx->body.data, ctx->body.len, 0, &jerr);

    if (body == NULL || !json_is_object(body)) {
        json_decref(body);
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_error(r,
                                     NGX_HTTP_BAD_REQUEST,
                                     "Invalid body: a JSON object "
                                     "{\"agent_name\": ..., \"permissions\":"
                                     " \"read\" | \"write\" | \"admin\"}"));
        return;
    }

    v = json_object_get(body, "agent_name");
    name = json_string_value(v);
    len = name ? json_string_length(v) : 0;

    for (i = 0; i < len; i++) {
        if ((u_char) name[i] < 0x20 || name[i] == 0x7f) {
            break;
        }
    }

    if (name == NULL || len == 0 || len > NGX_HTTP_CLOCKCHAIN_AGENT_NAME_MAX
        || i < len)
    {
        json_decref(body);
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_error(r,
                                     NGX_HTTP_BAD_REQUEST,
                                     "agent_name: a string of 1 to "
                                     ngx_value(
                                         NGX_HTTP_CLOCKCHAIN_AGENT_NAME_MAX)
                                     " bytes without control characters"));
        return;
    }

    perm = NGX_HTTP_CLOCKCHAIN_AGENT_WRITE;
    v = json_object_get(body, "permissions");

    if (v && !json_is_null(v)
        && (!json_is_string(v)
            || ngx_http_clockchain_agent_perm(json_string_value(v),
                                              json_string_length(v), &perm)
               != NGX_OK))
    {
        json_decref(body);
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_error(r,
                                     NGX_HTTP_BAD_REQUEST,
                                     "Invalid permissions value: \"read\", "
                                     "\"write\" or \"admin\""));
        return;
    }

    args[1].data = ngx_pnalloc(r->pool, len);
    if (args[1].data == NULL) {
        json_decref(body);
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(args[1].data, name, len);
    args[1].len = len;
    json_decref(body);

    /* secrets.token_urlsafe(32): 32 bytes of the kernel's, base64url */

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t) sizeof(raw)) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                      "clockchain: getrandom() failed");
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    token = ngx_pnalloc(r->pool, ngx_base64_encoded_length(sizeof(raw)));
    if (token == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    src.data = raw;
    src.len = sizeof(raw);
    dst.data = token;
    ngx_encode_base64url(&dst, &src);
    ngx_explicit_memzero(raw, sizeof(raw));

    /* kept for the answer; Redis is given its hash only */
    ctx->idempotency = dst;

    args[0].data = ctx->agent_hash;
    args[0].len = 64;
    ngx_http_clockchain_sha256_hex(dst.data, dst.len, (char *) ctx->agent_hash);

    args[2].data = (u_char *) ngx_http_clockchain_agent_perms[perm];
    args[2].len = ngx_strlen(args[2].data);

    /* for the answer: the name and the permissions */
    ctx->created_by = args[1];
    ctx->visibility = ngx_http_clockchain_agent_perms[perm];

    ctx->op = ngx_http_clockchain_store_agents(mcf, "register", args, 3,
                                       ngx_http_clockchain_agents_registered,
                                       ctx);
    if (ctx->op == NULL) {
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: Redis cannot "
                                     "be reached, retry later"));
    }
}


static void
ngx_http_clockchain_agents_registered(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    json_t              *json;
    ngx_http_request_t  *r;

    r = ctx->request;
    ctx->op = NULL;

    if (reply && reply->type == REDIS_REPLY_STRING
        && ngx_strcmp(reply->str, "EXISTS") == 0)
    {
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_error(r,
                                     NGX_HTTP_CONFLICT,
                                     "Agent '%V' already exists",
                                     &ctx->created_by));
        return;
    }

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        if (reply && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "clockchain: registering an agent failed: %s",
                          reply->str);
        }

        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: the agent "
                                     "was not registered, retry later"));
        return;
    }

    json = json_pack("{s:I,s:s%,s:s%,s:s}",
                     "agent_id", (json_int_t) reply->integer,
                     "agent_name", ctx->created_by.data, ctx->created_by.len,
                     "token", ctx->idempotency.data, ctx->idempotency.len,
                     "permissions", ctx->visibility);
    if (json == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_json(r, json));
}


/* {total, {id, name, permissions, is_active, created_at}...} */

static void
ngx_http_clockchain_agents_listed(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    size_t               i;
    json_t              *json, *list, *a;
    redisReply         **f;
    ngx_http_request_t  *r;

    r = ctx->request;
    ctx->op = NULL;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements == 0
        || reply->element[0]->type != REDIS_REPLY_INTEGER)
    {
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: Redis cannot "
                                     "be reached, retry later"));
        return;
    }

    list = json_array();
    json = json_pack("{s:o,s:I}", "agents", list, "total",
                     (json_int_t) reply->element[0]->integer);
    if (json == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 1; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_ARRAY
            || reply->element[i]->elements != 5)
        {
            continue;
        }

        f = reply->element[i]->element;

        if (f[0]->type != REDIS_REPLY_STRING
            || f[1]->type != REDIS_REPLY_STRING
            || f[2]->type != REDIS_REPLY_STRING
            || f[3]->type != REDIS_REPLY_STRING
            || f[4]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        a = json_pack("{s:I,s:s%,s:s%,s:b,s:s%}",
                      "agent_id", (json_int_t) strtoll(f[0]->str, NULL, 10),
                      "agent_name", f[1]->str, (size_t) f[1]->len,
                      "permissions", f[2]->str, (size_t) f[2]->len,
                      "is_active", f[3]->len == 1 && f[3]->str[0] == '1',
                      "created_at", f[4]->str, (size_t) f[4]->len);
        if (a) {
            json_array_append_new(list, a);
        }
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_json(r, json));
}


static void
ngx_http_clockchain_agents_revoke_done(void *data, redisReply *reply)
{
    ngx_http_clockchain_ctx_t *ctx = data;

    json_t              *json;
    ngx_http_request_t  *r;

    r = ctx->request;
    ctx->op = NULL;

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        if (reply) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "clockchain: revoking an agent failed: %s",
                          reply->str);
        }

        ngx_http_clockchain_finalize(r, ngx_http_clockchain_unavailable(r,
                                     "Graph store unavailable: the agent "
                                     "was not revoked, retry later"));
        return;
    }

    if (reply->type != REDIS_REPLY_STRING) {
        ngx_http_clockchain_finalize(r, ngx_http_clockchain_error(r,
                                     NGX_HTTP_NOT_FOUND, "Agent not found"));
        return;
    }

    /*
     * Read your own write: every worker of this nginx stops trusting what
     * it cached now, not when the event comes back.
     */

    ngx_http_clockchain_stat_add(agent_revocations, 1);

    json = json_pack("{s:I,s:s}", "agent_id",
                     (json_int_t) ngx_atoi(ctx->path.data, ctx->path.len),
                     "status", "revoked");
    if (json == NULL) {
        ngx_http_clockchain_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_clockchain_finalize(r, ngx_http_clockchain_send_json(r, json));
}


/*
 * The tokens of the directives' files, written into Redis by worker 0 of
 * each nginx once Redis answers (agents.lua "bootstrap": a token already
 * there, active or revoked, is left alone, so every start of every nginx
 * may send it).
 */

ngx_int_t
ngx_http_clockchain_agents_init_process(ngx_cycle_t *cycle,
    ngx_http_clockchain_main_conf_t *mcf)
{
    ngx_event_t  *ev = &ngx_http_clockchain_agents_ev;

    ngx_http_clockchain_agents_mcf = mcf;
    ngx_http_clockchain_agents_op = NULL;
    ngx_http_clockchain_agents_booted_ok = 0;

    ngx_memzero(ngx_http_clockchain_agent_cache,
                sizeof(ngx_http_clockchain_agent_cache));

    ngx_http_clockchain_events_on_revoke(ngx_http_clockchain_agent_revoked);

    if (mcf->agent_tokens == NULL || ngx_worker != 0) {
        return NGX_OK;
    }

    ngx_memzero(ev, sizeof(ngx_event_t));

    ev->handler = ngx_http_clockchain_agents_tick;
    ev->data = mcf;
    ev->log = cycle->log;
    /* only polls: a leaving worker does not wait for it */
    ev->cancelable = 1;

    ngx_add_timer(ev, 1);

    return NGX_OK;
}


void
ngx_http_clockchain_agents_exit_process(void)
{
    if (ngx_http_clockchain_agents_op) {
        ngx_http_clockchain_redis_cancel(ngx_http_clockchain_agents_op);
        ngx_http_clockchain_agents_op = NULL;
    }

    if (ngx_http_clockchain_agents_ev.timer_set) {
        ngx_del_timer(&ngx_http_clockchain_agents_ev);
    }
}


static void
ngx_http_clockchain_agents_tick(ngx_event_t *ev)
{
    ngx_http_clockchain_main_conf_t *mcf = ev->data;

    ngx_str_t                         *args;
    ngx_uint_t                         i, n;
    ngx_http_clockchain_agent_conf_t  *a;

    if (ngx_http_clockchain_agents_booted_ok || ngx_http_clockchain_agents_op
        || ngx_exiting || ngx_terminate || ngx_quit)
    {
        return;
    }

    if (!ngx_http_clockchain_redis_available()) {
        ngx_add_timer(ev, 500);
        return;
    }

    n = mcf->agent_tokens->nelts;
    a = mcf->agent_tokens->elts;

    args = ngx_alloc(3 * n * sizeof(ngx_str_t), ev->log);
    if (args == NULL) {
        ngx_add_timer(ev, 5000);
        return;
    }

    for (i = 0; i < n; i++) {
        args[3 * i].data = a[i].hash;
        args[3 * i].len = 64;
        args[3 * i + 1] = a[i].name;
        args[3 * i + 2].data =
                         (u_char *) ngx_http_clockchain_agent_perms[a[i].perm];
        args[3 * i + 2].len = ngx_strlen(args[3 * i + 2].data);
    }

    ngx_http_clockchain_agents_op = ngx_http_clockchain_store_agents(mcf,
                                        "bootstrap", args, 3 * n,
                                        ngx_http_clockchain_agents_booted,
                                        mcf);
    ngx_free(args);

    if (ngx_http_clockchain_agents_op == NULL) {
        ngx_add_timer(ev, 500);
    }
}


static void
ngx_http_clockchain_agents_booted(void *data, redisReply *reply)
{
    ngx_uint_t    level;
    ngx_event_t  *ev = &ngx_http_clockchain_agents_ev;

    ngx_http_clockchain_agents_op = NULL;

    if (reply && reply->type == REDIS_REPLY_INTEGER) {
        ngx_http_clockchain_agents_booted_ok = 1;

        level = reply->integer ? NGX_LOG_NOTICE : NGX_LOG_INFO;

        ngx_log_error(level, ev->log, 0,
                      "clockchain: %L of the %ui agent tokens of the "
                      "directives' files were new in redis",
                      (int64_t) reply->integer,
                      ngx_http_clockchain_agents_mcf->agent_tokens->nelts);
        return;
    }

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "clockchain: writing the agent tokens failed: %s, "
                      "tried again in 5s", reply->str);
    }

    if (!ngx_exiting && !ngx_terminate && !ngx_quit && !ev->timer_set) {
        ngx_add_timer(ev, reply ? 5000 : 500);
    }
}

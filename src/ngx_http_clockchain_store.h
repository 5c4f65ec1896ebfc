
/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_STORE_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_STORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_create.h"


/* the longest key: "<prefix>{cc}:v1:edges:<path>" */
#define NGX_HTTP_CLOCKCHAIN_KEY_MAX                                           \
    (NGX_HTTP_CLOCKCHAIN_PREFIX_MAX + sizeof("{cc}:v1:edges:")                \
     + NGX_HTTP_CLOCKCHAIN_PATH_LEN)

/* the most words of a query search.lua is given */
#define NGX_HTTP_CLOCKCHAIN_SEARCH_WORDS     8

#define NGX_HTTP_CLOCKCHAIN_STORE_COMPLETE   1
#define NGX_HTTP_CLOCKCHAIN_STORE_FAIL       2
#define NGX_HTTP_CLOCKCHAIN_STORE_REQUEUE    3


/* a runner's outcome: complete.lua, fail.lua or requeue.lua */
typedef struct {
    ngx_uint_t                        kind;          /* ..._STORE_COMPLETE */
    const char                       *id;
    const char                       *token;
    const char                       *completed_at;  /* complete, fail */
    const char                       *path;          /* complete */
    const char                       *node;          /* complete */
    const char                       *error;         /* fail, requeue */
    ngx_uint_t                        attempts;
    ngx_uint_t                        count;         /* requeue: counted */
    ngx_msec_t                        delay;         /* requeue */
} ngx_http_clockchain_store_outcome_t;


/* "<prefix>{cc}:v1:<name><tail>" into buf of NGX_HTTP_CLOCKCHAIN_KEY_MAX */
size_t ngx_http_clockchain_store_key(u_char *buf,
    ngx_http_clockchain_main_conf_t *mcf, const char *name,
    const u_char *tail, size_t len);
size_t ngx_http_clockchain_store_channel(ngx_http_clockchain_main_conf_t *mcf,
    u_char *buf, size_t len);

/* caches a job as Redis had it at version, read in epoch, with its expiry */
void ngx_http_clockchain_store_cache(ngx_http_clockchain_main_conf_t *mcf,
    const ngx_http_clockchain_job_t *job, uint64_t version, uint32_t epoch);

/*
 * One call per script or command, each argv built here from the script's
 * header (src/lua/).  NULL: not sent (Redis is not connected).
 */
/* a walk over the graph (walk.lua): its header says what each field is */
typedef struct {
    const char                *mode;
    ngx_str_t                  from;
    ngx_str_t                  to;
    ngx_str_t                  user;
    ngx_uint_t                 hops;
    ngx_uint_t                 most;
    const char                *direction;
    ngx_str_t                  types;
    ngx_str_t                  min_weight;
    ngx_uint_t                 per_node;
    ngx_uint_t                 budget;
} ngx_http_clockchain_store_walk_t;


ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_create(
    ngx_http_clockchain_main_conf_t *mcf,
    const ngx_http_clockchain_argv_t *av,
    ngx_http_clockchain_redis_handler_pt handler, void *data);
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_fetch(
    ngx_http_clockchain_main_conf_t *mcf, const u_char *id,
    ngx_http_clockchain_redis_handler_pt handler, void *data);
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_moment(
    ngx_http_clockchain_main_conf_t *mcf, ngx_str_t *path, ngx_str_t *user,
    const char *mode, ngx_uint_t edges,
    ngx_http_clockchain_redis_handler_pt handler, void *data);
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_neighbors(
    ngx_http_clockchain_main_conf_t *mcf, ngx_str_t *path, ngx_str_t *user,
    ngx_uint_t max, ngx_http_clockchain_redis_handler_pt handler,
    void *data);
/* list.lua: what, mode, user, then the list's own arguments (its header) */
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_list(
    ngx_http_clockchain_main_conf_t *mcf, const char *what, const char *mode,
    ngx_str_t *user, ngx_uint_t budget, ngx_str_t *args, ngx_uint_t nargs,
    ngx_http_clockchain_redis_handler_pt handler, void *data);
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_walk(
    ngx_http_clockchain_main_conf_t *mcf,
    const ngx_http_clockchain_store_walk_t *w,
    ngx_http_clockchain_redis_handler_pt handler, void *data);
/* search.lua: words normalised (ngx_http_clockchain_words()), distinct */
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_search(
    ngx_http_clockchain_main_conf_t *mcf, const char *mode, ngx_str_t *user,
    ngx_uint_t limit, ngx_uint_t budget, ngx_str_t *words, ngx_uint_t n,
    ngx_http_clockchain_redis_handler_pt handler, void *data);
/* browse: parent is "/" or a checked prefix of a canonical path */
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_graph_version(
    ngx_http_clockchain_main_conf_t *mcf,
    ngx_http_clockchain_redis_handler_pt handler, void *data);
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_browse(
    ngx_http_clockchain_main_conf_t *mcf, const char *mode, ngx_str_t *user,
    ngx_str_t *parent, ngx_http_clockchain_redis_handler_pt handler,
    void *data);
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_stats(
    ngx_http_clockchain_main_conf_t *mcf,
    ngx_http_clockchain_redis_handler_pt handler, void *data);
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_publish(
    ngx_http_clockchain_main_conf_t *mcf, ngx_str_t *path, ngx_str_t *user,
    const char *visibility, ngx_str_t *token,
    ngx_http_clockchain_redis_handler_pt handler, void *data);
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_claim(
    ngx_http_clockchain_main_conf_t *mcf, ngx_str_t *runner,
    ngx_str_t *channel, char (*tokens)[NGX_HTTP_CLOCKCHAIN_TOKEN_HEX],
    ngx_uint_t n, ngx_http_clockchain_redis_handler_pt handler, void *data);
void ngx_http_clockchain_store_heartbeat(ngx_http_clockchain_main_conf_t *mcf,
    const char **ids, const char **tokens, ngx_uint_t n, ngx_log_t *log);
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_commit(
    ngx_http_clockchain_main_conf_t *mcf, ngx_str_t *channel,
    const ngx_http_clockchain_store_outcome_t *o,
    ngx_http_clockchain_redis_handler_pt handler, void *data);
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_reveal(
    ngx_http_clockchain_main_conf_t *mcf, const char *id, const char *mark,
    ngx_http_clockchain_redis_handler_pt handler, void *data);
/* clockchain_redis wait=: WAIT after a durable_eval, in its reply handler */
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_wait(
    ngx_http_clockchain_main_conf_t *mcf,
    ngx_http_clockchain_redis_handler_pt handler, void *data);
ngx_int_t ngx_http_clockchain_store_confirmed(
    ngx_http_clockchain_main_conf_t *mcf, redisReply *reply,
    const char **said);
/* final is "" for a change that is not a final state */
void ngx_http_clockchain_store_announce(ngx_http_clockchain_main_conf_t *mcf,
    ngx_str_t *final, ngx_str_t *change);
void ngx_http_clockchain_store_count(ngx_http_clockchain_main_conf_t *mcf,
    const char *name, ngx_http_clockchain_redis_handler_pt handler,
    void *data);


/* export.lua: a page of the whole graph after a path ("" first) */
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_export(
    ngx_http_clockchain_main_conf_t *mcf, ngx_str_t *after, ngx_uint_t limit,
    ngx_uint_t budget, ngx_http_clockchain_redis_handler_pt handler,
    void *data);
/* restore.lua: a chunk of an export, as restore_parse() gives it */
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_restore(
    ngx_http_clockchain_main_conf_t *mcf, const char *chunk, size_t len,
    ngx_http_clockchain_redis_handler_pt handler, void *data);

/*
 * The writers' agents: one token's record by the SHA-256 hex of the token
 * (HMGET id agent_name permissions is_active), and agents.lua's operations
 * ("register", "list", "revoke", "bootstrap": its header), args after its
 * fixed ones ("revoke" is given the agents channel here).
 */
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_agent(
    ngx_http_clockchain_main_conf_t *mcf, const u_char *hash,
    ngx_http_clockchain_redis_handler_pt handler, void *data);
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_agents(
    ngx_http_clockchain_main_conf_t *mcf, const char *op, ngx_str_t *args,
    ngx_uint_t nargs, ngx_http_clockchain_redis_handler_pt handler,
    void *data);

/*
 * propose.lua's operations (its header), args after its fixed ones; token:
 * ngx_http_clockchain_writer_token()'s, "" for a read
 */
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_propose(
    ngx_http_clockchain_main_conf_t *mcf, const char *op, ngx_str_t *token,
    ngx_str_t *args, ngx_uint_t nargs,
    ngx_http_clockchain_redis_handler_pt handler, void *data);


/* ingest.lua: a writer's nodes and edges (ngx_http_clockchain_ingest.c) */
ngx_http_clockchain_redis_op_t *ngx_http_clockchain_store_ingest(
    ngx_http_clockchain_main_conf_t *mcf, ngx_str_t *graph, ngx_str_t *token,
    ngx_http_clockchain_redis_handler_pt handler, void *data);

/* seeding the graph (clockchain_seed_file); per worker */
ngx_int_t ngx_http_clockchain_store_seed_init_process(ngx_cycle_t *cycle,
    ngx_http_clockchain_main_conf_t *mcf);
void ngx_http_clockchain_store_seed_exit_process(void);


#endif /* _NGX_HTTP_CLOCKCHAIN_STORE_H_INCLUDED_ */

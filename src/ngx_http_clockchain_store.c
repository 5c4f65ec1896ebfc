
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * The store: what the module keeps in Redis, as typed calls.  Every key is
 * written by one function (ngx_http_clockchain_key_write(), create.c), and
 * each script's arguments are put in order here, and only here, as its
 * header in src/lua/ lists them.  Handlers and the runner decide; this file
 * says how a decision is written down.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_shm.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_store.h"


size_t
ngx_http_clockchain_store_key(u_char *buf,
    ngx_http_clockchain_main_conf_t *mcf, const char *name,
    const u_char *tail, size_t len)
{
    return ngx_http_clockchain_key_write((char *) buf,
                                         (char *) mcf->redis.prefix.data,
                                         mcf->redis.prefix.len, name,
                                         (char *) tail, len);
}


/* pub/sub ignores databases: two of them on one server must not mix */

size_t
ngx_http_clockchain_store_channel(ngx_http_clockchain_main_conf_t *mcf,
    u_char *buf, size_t len)
{
    u_char  *p, db[sizeof(":db") + NGX_INT_T_LEN];

    p = db;

    if (mcf->redis.db) {
        p = ngx_sprintf(db, ":db%i", mcf->redis.db);
    }

    if (ngx_http_clockchain_key_len(mcf->redis.prefix.len, "events",
                                    (size_t) (p - db))
        >= len)
    {
        return 0;
    }

    return ngx_http_clockchain_store_key(buf, mcf, "events", db, p - db);
}


void
ngx_http_clockchain_store_cache(ngx_http_clockchain_main_conf_t *mcf,
    const ngx_http_clockchain_job_t *job, uint64_t version, uint32_t epoch)
{
    int64_t  expire;

    expire = ngx_http_clockchain_job_expire(job, mcf->keep_completed,
                                            mcf->keep_failed);

    ngx_http_clockchain_shm_put(mcf->shm_zone, job, version, (time_t) expire,
                                epoch);
}


/* create.lua, with the argv create.c built; on its own connection for WAIT */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_create(ngx_http_clockchain_main_conf_t *mcf,
    const ngx_http_clockchain_argv_t *av,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    if (mcf->redis.wait) {
        /* WAIT blocks its connection: the create and it go on their own */
        return ngx_http_clockchain_redis_durable_eval(
                                    NGX_HTTP_CLOCKCHAIN_SCRIPT_CREATE,
                                    handler, data, av->nkeys, av->argc,
                                    av->argv, av->argvlen);
    }

    return ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_CREATE,
                                          handler, data, av->nkeys, av->argc,
                                          av->argv, av->argvlen);
}


/* HMGET of a job's six answered fields and its version */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_fetch(ngx_http_clockchain_main_conf_t *mcf,
    const u_char *id, ngx_http_clockchain_redis_handler_pt handler,
    void *data)
{
    ngx_uint_t   i;
    u_char       key[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    const char  *argv[8];
    size_t       argvlen[8];

    static const char  *fields[] = {
        "status", "path", "error", "created_at", "completed_at", "version"
    };

    argv[0] = "HMGET";
    argvlen[0] = 5;
    argv[1] = (char *) key;
    argvlen[1] = ngx_http_clockchain_store_key(key, mcf, "job:", id,
                                               NGX_HTTP_CLOCKCHAIN_ID_LEN);

    for (i = 0; i < 6; i++) {
        argv[i + 2] = fields[i];
        argvlen[i + 2] = ngx_strlen(fields[i]);
    }

    return ngx_http_clockchain_redis_command(handler, data, 8, argv, argvlen);
}


/* moment.lua: a node and its edges, as user, asking as mode, may see them */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_moment(ngx_http_clockchain_main_conf_t *mcf,
    ngx_str_t *path, ngx_str_t *user, const char *mode, ngx_uint_t edges,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    u_char       node[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       edge[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       prefix[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       max[NGX_INT_T_LEN];
    const char  *argv[7];
    size_t       argvlen[7];

    argv[0] = (char *) node;
    argvlen[0] = ngx_http_clockchain_store_key(node, mcf, "node:",
                                               path->data, path->len);
    argv[1] = (char *) edge;
    argvlen[1] = ngx_http_clockchain_store_key(edge, mcf, "edges:",
                                               path->data, path->len);
    argv[2] = (char *) path->data;
    argvlen[2] = path->len;
    argv[3] = user->len ? (char *) user->data : "";
    argvlen[3] = user->len;
    argv[4] = (char *) prefix;
    argvlen[4] = ngx_http_clockchain_store_key(prefix, mcf, "", NULL, 0);
    argv[5] = (char *) max;
    argvlen[5] = ngx_sprintf(max, "%ui", edges) - max;
    argv[6] = mode;
    argvlen[6] = ngx_strlen(mode);

    return ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_MOMENT,
                                          handler, data, 2, 7, argv,
                                          argvlen);
}


/* neighbors.lua: a node's edges out and in, as user may see them */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_neighbors(ngx_http_clockchain_main_conf_t *mcf,
    ngx_str_t *path, ngx_str_t *user, ngx_uint_t max,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    u_char       node[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       edge[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       prefix[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       n[NGX_INT_T_LEN];
    const char  *argv[6];
    size_t       argvlen[6];

    argv[0] = (char *) node;
    argvlen[0] = ngx_http_clockchain_store_key(node, mcf, "node:",
                                               path->data, path->len);
    argv[1] = (char *) edge;
    argvlen[1] = ngx_http_clockchain_store_key(edge, mcf, "edges:",
                                               path->data, path->len);
    argv[2] = (char *) path->data;
    argvlen[2] = path->len;
    argv[3] = user->len ? (char *) user->data : "";
    argvlen[3] = user->len;
    argv[4] = (char *) prefix;
    argvlen[4] = ngx_http_clockchain_store_key(prefix, mcf, "", NULL, 0);
    argv[5] = (char *) n;
    argvlen[5] = ngx_sprintf(n, "%ui", max) - n;

    return ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_NEIGHBORS,
                                          handler, data, 2, 6, argv,
                                          argvlen);
}


/*
 * list.lua: a list read from idx:time; args are ARGV[6] on, which differ
 * with what ("list", "today", "random")
 */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_list(ngx_http_clockchain_main_conf_t *mcf,
    const char *what, const char *mode, ngx_str_t *user, ngx_uint_t budget,
    ngx_str_t *args, ngx_uint_t nargs,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    u_char       time[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       prefix[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       n[NGX_INT_T_LEN];
    ngx_uint_t   i;
    const char  *argv[6 + 8];
    size_t       argvlen[6 + 8];

    if (nargs > 8) {
        return NULL;
    }

    argv[0] = (char *) time;
    argvlen[0] = ngx_http_clockchain_store_key(time, mcf, "idx:time",
                                               NULL, 0);
    argv[1] = what;
    argvlen[1] = ngx_strlen(what);
    argv[2] = mode;
    argvlen[2] = ngx_strlen(mode);
    argv[3] = user->len ? (char *) user->data : "";
    argvlen[3] = user->len;
    argv[4] = (char *) prefix;
    argvlen[4] = ngx_http_clockchain_store_key(prefix, mcf, "", NULL, 0);
    argv[5] = (char *) n;
    argvlen[5] = ngx_sprintf(n, "%ui", budget) - n;

    for (i = 0; i < nargs; i++) {
        argv[6 + i] = args[i].len ? (char *) args[i].data : "";
        argvlen[6 + i] = args[i].len;
    }

    return ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_LIST,
                                          handler, data, 1, 6 + nargs, argv,
                                          argvlen);
}


/* walk.lua: a subgraph, a traversal or a path, as user may see them */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_walk(ngx_http_clockchain_main_conf_t *mcf,
    const ngx_http_clockchain_store_walk_t *w,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    u_char       node[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       prefix[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       n[4][NGX_INT_T_LEN];
    const char  *argv[13];
    size_t       argvlen[13];

    argv[0] = (char *) node;
    argvlen[0] = ngx_http_clockchain_store_key(node, mcf, "node:",
                                               w->from.data, w->from.len);
    argv[1] = w->mode;
    argvlen[1] = ngx_strlen(w->mode);
    argv[2] = w->user.len ? (char *) w->user.data : "";
    argvlen[2] = w->user.len;
    argv[3] = (char *) prefix;
    argvlen[3] = ngx_http_clockchain_store_key(prefix, mcf, "", NULL, 0);
    argv[4] = (char *) w->from.data;
    argvlen[4] = w->from.len;
    argv[5] = w->to.len ? (char *) w->to.data : "";
    argvlen[5] = w->to.len;
    argv[6] = (char *) n[0];
    argvlen[6] = ngx_sprintf(n[0], "%ui", w->hops) - n[0];
    argv[7] = (char *) n[1];
    argvlen[7] = ngx_sprintf(n[1], "%ui", w->most) - n[1];
    argv[8] = w->direction;
    argvlen[8] = ngx_strlen(w->direction);
    argv[9] = w->types.len ? (char *) w->types.data : "";
    argvlen[9] = w->types.len;
    argv[10] = (char *) w->min_weight.data;
    argvlen[10] = w->min_weight.len;
    argv[11] = (char *) n[2];
    argvlen[11] = ngx_sprintf(n[2], "%ui", w->per_node) - n[2];
    argv[12] = (char *) n[3];
    argvlen[12] = ngx_sprintf(n[3], "%ui", w->budget) - n[3];

    return ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_WALK,
                                          handler, data, 1, 13, argv,
                                          argvlen);
}


/* stats.lua: the graph's counters and the ends of its time index */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_stats(ngx_http_clockchain_main_conf_t *mcf,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    u_char       stats[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       time[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    const char  *argv[2];
    size_t       argvlen[2];

    argv[0] = (char *) stats;
    argvlen[0] = ngx_http_clockchain_store_key(stats, mcf, "stats", NULL, 0);
    argv[1] = (char *) time;
    argvlen[1] = ngx_http_clockchain_store_key(time, mcf, "idx:time", NULL,
                                               0);

    return ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_STATS,
                                          handler, data, 2, 2, argv,
                                          argvlen);
}


/* search.lua: the nodes with every word, as user may see them */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_search(ngx_http_clockchain_main_conf_t *mcf,
    const char *mode, ngx_str_t *user, ngx_uint_t limit, ngx_uint_t budget,
    ngx_str_t *words, ngx_uint_t n,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    u_char       prefix[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       nums[2][NGX_INT_T_LEN];
    ngx_uint_t   i;
    const char  *argv[5 + NGX_HTTP_CLOCKCHAIN_SEARCH_WORDS];
    size_t       argvlen[5 + NGX_HTTP_CLOCKCHAIN_SEARCH_WORDS];

    if (n > NGX_HTTP_CLOCKCHAIN_SEARCH_WORDS) {
        return NULL;
    }

    argv[0] = (char *) prefix;
    argvlen[0] = ngx_http_clockchain_store_key(prefix, mcf, "", NULL, 0);
    argv[1] = mode;
    argvlen[1] = ngx_strlen(mode);
    argv[2] = user->len ? (char *) user->data : "";
    argvlen[2] = user->len;
    argv[3] = (char *) nums[0];
    argvlen[3] = ngx_sprintf(nums[0], "%ui", limit) - nums[0];
    argv[4] = (char *) nums[1];
    argvlen[4] = ngx_sprintf(nums[1], "%ui", budget) - nums[1];

    for (i = 0; i < n; i++) {
        argv[5 + i] = (char *) words[i].data;
        argvlen[5 + i] = words[i].len;
    }

    return ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_SEARCH,
                                          handler, data, 0, 5 + n, argv,
                                          argvlen);
}


/* the graph's version (idx:version), nil before any: the zone's reads */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_graph_version(ngx_http_clockchain_main_conf_t *mcf,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    u_char       key[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    const char  *argv[2];
    size_t       argvlen[2];

    argv[0] = "GET";
    argvlen[0] = 3;
    argv[1] = (char *) key;
    argvlen[1] = ngx_http_clockchain_store_key(key, mcf, "idx:version",
                                               NULL, 0);

    return ngx_http_clockchain_redis_command(handler, data, 2, argv, argvlen);
}


/*
 * The counts under parent as user may see them: the service's hash with a
 * plain HGETALL (no script: the root's is thousands of fields), a user's
 * two with browse.lua, in one step.
 */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_browse(ngx_http_clockchain_main_conf_t *mcf,
    const char *mode, ngx_str_t *user, ngx_str_t *parent,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    u_char       prefix[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       key[NGX_HTTP_CLOCKCHAIN_KEY_MAX + sizeof("idx:ba:")];
    const char  *argv[4];
    size_t       argvlen[4];

    if (ngx_strcmp(mode, "service") == 0) {
        argv[0] = "HGETALL";
        argvlen[0] = 7;
        argv[1] = (char *) key;
        argvlen[1] = ngx_http_clockchain_store_key(key, mcf, "idx:ba:",
                                                   parent->data, parent->len);

        return ngx_http_clockchain_redis_command(handler, data, 2, argv,
                                                 argvlen);
    }

    argv[0] = (char *) prefix;
    argvlen[0] = ngx_http_clockchain_store_key(prefix, mcf, "", NULL, 0);
    argv[1] = mode;
    argvlen[1] = ngx_strlen(mode);
    argv[2] = user->len ? (char *) user->data : "";
    argvlen[2] = user->len;
    argv[3] = (char *) parent->data;
    argvlen[3] = parent->len;

    return ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_BROWSE,
                                          handler, data, 0, 4, argv,
                                          argvlen);
}

/* publish.lua: a node's visibility, as user may set it */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_publish(ngx_http_clockchain_main_conf_t *mcf,
    ngx_str_t *path, ngx_str_t *user, const char *visibility,
    ngx_str_t *token, ngx_http_clockchain_redis_handler_pt handler,
    void *data)
{
    u_char       node[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       edge[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       prefix[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       channel[256 + sizeof(":moments")];
    char         now[NGX_HTTP_CLOCKCHAIN_TIME_LEN + 1];
    size_t       len;
    const char  *argv[9];
    size_t       argvlen[9];

    ngx_http_clockchain_iso_now(now);

    len = ngx_http_clockchain_store_channel(mcf, channel, 256);

    argv[0] = (char *) node;
    argvlen[0] = ngx_http_clockchain_store_key(node, mcf, "node:",
                                               path->data, path->len);
    argv[1] = (char *) edge;
    argvlen[1] = ngx_http_clockchain_store_key(edge, mcf, "edges:",
                                               path->data, path->len);
    argv[2] = user->len ? (char *) user->data : "";
    argvlen[2] = user->len;
    argv[3] = visibility;
    argvlen[3] = ngx_strlen(visibility);
    argv[4] = now;
    argvlen[4] = NGX_HTTP_CLOCKCHAIN_TIME_LEN;
    argv[5] = (char *) path->data;
    argvlen[5] = path->len;
    argv[6] = (char *) channel;
    argvlen[6] = ngx_sprintf(channel + len, ":moments") - channel;
    argv[7] = (char *) prefix;
    argvlen[7] = ngx_http_clockchain_store_key(prefix, mcf, "", NULL, 0);
    argv[8] = token->len ? (char *) token->data : "";
    argvlen[8] = token->len;

    return ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_PUBLISH,
                                          handler, data, 2, 9, argv,
                                          argvlen);
}


/* claim.lua: up to n jobs, one fencing token each */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_claim(ngx_http_clockchain_main_conf_t *mcf,
    ngx_str_t *runner, ngx_str_t *channel,
    char (*tokens)[NGX_HTTP_CLOCKCHAIN_TOKEN_HEX], ngx_uint_t n,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    u_char        queue[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char        processing[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char        confirming[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char        jobs[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char        lease[NGX_INT_T_LEN], stalls[NGX_INT_T_LEN];
    u_char        keep[NGX_TIME_T_LEN], attempts[NGX_INT_T_LEN];
    char          iso[NGX_HTTP_CLOCKCHAIN_TIME_LEN + 1];
    size_t       *argvlen;
    ngx_uint_t    i, argc;
    const char  **argv;

    ngx_http_clockchain_redis_op_t  *op;

    argc = 11 + n;

    argv = ngx_alloc(argc * (sizeof(char *) + sizeof(size_t)),
                     ngx_cycle->log);
    if (argv == NULL) {
        return NULL;
    }

    argvlen = (size_t *) (argv + argc);

    ngx_http_clockchain_iso_now(iso);

    /* leases and run-at times are read on Redis's clock, not this one */

    argv[0] = (char *) queue;
    argvlen[0] = ngx_http_clockchain_store_key(queue, mcf, "queue", NULL, 0);
    argv[1] = (char *) processing;
    argvlen[1] = ngx_http_clockchain_store_key(processing, mcf, "processing",
                                               NULL, 0);
    argv[2] = (char *) confirming;
    argvlen[2] = ngx_http_clockchain_store_key(confirming, mcf, "confirming",
                                               NULL, 0);
    argv[3] = (char *) lease;
    argvlen[3] = ngx_sprintf(lease, "%M", mcf->job_lease) - lease;
    argv[4] = (char *) jobs;
    argvlen[4] = ngx_http_clockchain_store_key(jobs, mcf, "job:", NULL, 0);
    argv[5] = (char *) runner->data;
    argvlen[5] = runner->len;
    argv[6] = (char *) stalls;
    argvlen[6] = ngx_sprintf(stalls, "%ui", mcf->job_max_stalls) - stalls;
    argv[7] = iso;
    argvlen[7] = NGX_HTTP_CLOCKCHAIN_TIME_LEN;
    argv[8] = (char *) channel->data;
    argvlen[8] = channel->len;
    argv[9] = (char *) keep;
    argvlen[9] = ngx_sprintf(keep, "%T", mcf->keep_failed) - keep;
    /* wait=: each claim counts its attempt, and none past the last */
    argv[10] = (char *) attempts;
    argvlen[10] = mcf->redis.wait
                 ? (size_t) (ngx_sprintf(attempts, "%ui", mcf->flash_attempts)
                             - attempts)
                 : 0;

    for (i = 0; i < n; i++) {
        argv[11 + i] = tokens[i];
        argvlen[11 + i] = NGX_HTTP_CLOCKCHAIN_TOKEN_HEX;
    }

    if (mcf->redis.wait) {
        /* no Flash call before its claim is on the replicas: WAIT after it */
        op = ngx_http_clockchain_redis_durable_eval(
                                        NGX_HTTP_CLOCKCHAIN_SCRIPT_CLAIM,
                                        handler, data, 3, argc, argv,
                                        argvlen);

    } else {
        op = ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_CLAIM,
                                            handler, data, 3, argc, argv,
                                            argvlen);
    }

    ngx_free(argv);

    return op;
}


/* heartbeat.lua: renew the leases of the jobs in hand; nobody is told */

void
ngx_http_clockchain_store_heartbeat(ngx_http_clockchain_main_conf_t *mcf,
    const char **ids, const char **tokens, ngx_uint_t n, ngx_log_t *log)
{
    u_char        processing[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char        jobs[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char        lease[NGX_INT_T_LEN];
    size_t       *argvlen;
    ngx_uint_t    i, argc;
    const char  **argv;

    argc = 3 + 2 * n;

    argv = ngx_alloc(argc * (sizeof(char *) + sizeof(size_t)), log);
    if (argv == NULL) {
        return;
    }

    argvlen = (size_t *) (argv + argc);

    argv[0] = (char *) processing;
    argvlen[0] = ngx_http_clockchain_store_key(processing, mcf, "processing",
                                               NULL, 0);
    /* the lease runs from now on Redis's clock, not this one */
    argv[1] = (char *) lease;
    argvlen[1] = ngx_sprintf(lease, "%M", mcf->job_lease) - lease;
    argv[2] = (char *) jobs;
    argvlen[2] = ngx_http_clockchain_store_key(jobs, mcf, "job:", NULL, 0);

    for (i = 0; i < n; i++) {
        argv[3 + 2 * i] = ids[i];
        argvlen[3 + 2 * i] = NGX_HTTP_CLOCKCHAIN_ID_LEN;
        argv[4 + 2 * i] = tokens[i];
        argvlen[4 + 2 * i] = ngx_strlen(tokens[i]);
    }

    (void) ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_HEARTBEAT,
                                          NULL, NULL, 1, argc, argv,
                                          argvlen);
    ngx_free(argv);
}


/* complete.lua, fail.lua or requeue.lua: what became of a job */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_commit(ngx_http_clockchain_main_conf_t *mcf,
    ngx_str_t *channel, const ngx_http_clockchain_store_outcome_t *o,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    u_char       job[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       processing[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       other[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       confirming[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       cap[NGX_INT_T_LEN], attempts[NGX_INT_T_LEN];
    u_char       delay[NGX_INT_T_LEN], keep[NGX_TIME_T_LEN];
    const char  *argv[14];
    size_t       argvlen[14];
    ngx_uint_t   argc, script, nkeys;

    argv[0] = (char *) job;
    argvlen[0] = ngx_http_clockchain_store_key(job, mcf, "job:",
                                               (u_char *) o->id,
                                               NGX_HTTP_CLOCKCHAIN_ID_LEN);
    argv[1] = (char *) processing;
    argvlen[1] = ngx_http_clockchain_store_key(processing, mcf, "processing",
                                               NULL, 0);
    /* the confirming set of complete.lua's and fail.lua's wait= */
    argv[2] = (char *) confirming;
    argvlen[2] = ngx_http_clockchain_store_key(confirming, mcf, "confirming",
                                               NULL, 0);

    switch (o->kind) {

    case NGX_HTTP_CLOCKCHAIN_STORE_COMPLETE:
        script = NGX_HTTP_CLOCKCHAIN_SCRIPT_COMPLETE;
        nkeys = 3;
        argv[3] = o->token;
        argvlen[3] = ngx_strlen(o->token);
        argv[4] = o->id;
        argvlen[4] = NGX_HTTP_CLOCKCHAIN_ID_LEN;
        argv[5] = o->completed_at;
        argvlen[5] = NGX_HTTP_CLOCKCHAIN_TIME_LEN;
        argv[6] = o->path;
        argvlen[6] = ngx_strlen(o->path);
        argv[7] = o->node;
        argvlen[7] = ngx_strlen(o->node);
        argv[8] = (char *) other;
        argvlen[8] = ngx_http_clockchain_store_key(other, mcf, "", NULL, 0);
        argv[9] = (char *) cap;
        argvlen[9] = ngx_sprintf(cap, "%ui", mcf->edges_max) - cap;
        argv[10] = (char *) attempts;
        argvlen[10] = ngx_sprintf(attempts, "%ui", o->attempts) - attempts;
        argc = 11;
        break;

    case NGX_HTTP_CLOCKCHAIN_STORE_FAIL:
        script = NGX_HTTP_CLOCKCHAIN_SCRIPT_FAIL;
        nkeys = 3;
        argv[3] = o->token;
        argvlen[3] = ngx_strlen(o->token);
        argv[4] = o->id;
        argvlen[4] = NGX_HTTP_CLOCKCHAIN_ID_LEN;
        argv[5] = o->completed_at;
        argvlen[5] = NGX_HTTP_CLOCKCHAIN_TIME_LEN;
        argv[6] = o->error ? o->error : "Job failed";
        argvlen[6] = ngx_strlen(argv[6]);
        argv[7] = (char *) attempts;
        argvlen[7] = ngx_sprintf(attempts, "%ui", o->attempts) - attempts;
        argc = 8;
        break;

    default: /* NGX_HTTP_CLOCKCHAIN_STORE_REQUEUE */
        script = NGX_HTTP_CLOCKCHAIN_SCRIPT_REQUEUE;
        argv[2] = (char *) other;
        argvlen[2] = ngx_http_clockchain_store_key(other, mcf, "queue",
                                                   NULL, 0);
        argv[3] = o->token;
        argvlen[3] = ngx_strlen(o->token);
        argv[4] = o->id;
        argvlen[4] = NGX_HTTP_CLOCKCHAIN_ID_LEN;
        /* from now on Redis's clock, which the claims read */
        argv[5] = (char *) delay;
        argvlen[5] = ngx_sprintf(delay, "%M", o->delay) - delay;
        argv[6] = (char *) attempts;
        argvlen[6] = o->count
                     ? (size_t) (ngx_sprintf(attempts, "%ui", o->attempts)
                                 - attempts)
                     : 0;
        argv[7] = o->error ? o->error : "";
        argvlen[7] = ngx_strlen(argv[7]);
        nkeys = 3;
        argc = 8;
        break;
    }

    /* every script publishes the change on the events channel */
    argv[argc] = (char *) channel->data;
    argvlen[argc++] = channel->len;

    if (script != NGX_HTTP_CLOCKCHAIN_SCRIPT_REQUEUE) {
        /* a finished job is kept this long, then Redis lets it go */
        argv[argc] = (char *) keep;
        argvlen[argc++] = ngx_sprintf(keep, "%T",
                                 script == NGX_HTTP_CLOCKCHAIN_SCRIPT_COMPLETE
                                 ? mcf->keep_completed : mcf->keep_failed)
                          - keep;
    }

    if (mcf->redis.wait == 0) {
        return ngx_http_clockchain_redis_eval(script, handler, data, nkeys,
                                              argc, argv, argvlen);
    }

    /*
     * wait=: a hand-back takes back the attempt its claim counted; a final
     * state is published by the runner, once replicas have it (WAIT), so
     * it goes on a connection of its own with its WAIT
     */

    argv[argc] = "1";
    argvlen[argc++] = 1;

    if (script == NGX_HTTP_CLOCKCHAIN_SCRIPT_REQUEUE) {
        return ngx_http_clockchain_redis_eval(script, handler, data, nkeys,
                                              argc, argv, argvlen);
    }

    return ngx_http_clockchain_redis_durable_eval(script, handler, data,
                                                  nkeys, argc, argv, argvlen);
}


/* reveal.lua: a kept outcome made the job's, on a connection with its WAIT */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_reveal(ngx_http_clockchain_main_conf_t *mcf,
    const char *id, const char *mark,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    u_char       job[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       confirming[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       completed[NGX_TIME_T_LEN], failed[NGX_TIME_T_LEN];
    const char  *argv[6];
    size_t       argvlen[6];

    argv[0] = (char *) job;
    argvlen[0] = ngx_http_clockchain_store_key(job, mcf, "job:",
                                               (u_char *) id,
                                               NGX_HTTP_CLOCKCHAIN_ID_LEN);
    argv[1] = (char *) confirming;
    argvlen[1] = ngx_http_clockchain_store_key(confirming, mcf, "confirming",
                                               NULL, 0);
    argv[2] = id;
    argvlen[2] = NGX_HTTP_CLOCKCHAIN_ID_LEN;
    argv[3] = mark;
    argvlen[3] = ngx_strlen(mark);
    argv[4] = (char *) completed;
    argvlen[4] = ngx_sprintf(completed, "%T", mcf->keep_completed)
                 - completed;
    argv[5] = (char *) failed;
    argvlen[5] = ngx_sprintf(failed, "%T", mcf->keep_failed) - failed;

    return ngx_http_clockchain_redis_durable_eval(
                                        NGX_HTTP_CLOCKCHAIN_SCRIPT_REVEAL,
                                        handler, data, 2, 6, argv, argvlen);
}


/*
 * WAIT for clockchain_redis wait=N replicas, at most half of timeout=
 * (WAIT n 0 would block for ever); only from the handler of a
 * durable_eval's reply: WAIT counts the writes of its own connection.
 * With waitaof=on, WAITAOF 1 N: the primary's AOF and N replicas' have
 * them on disk, not merely received (a replica that has just loaded a
 * full sync persists nothing until its first AOF is written).
 */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_wait(ngx_http_clockchain_main_conf_t *mcf,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    int          argc;
    u_char       n[NGX_INT_T_LEN], ms[NGX_INT_T_LEN];
    const char  *argv[4];
    size_t       argvlen[4];

    argc = 0;

    if (mcf->redis.waitaof) {
        argv[argc] = "WAITAOF";
        argvlen[argc++] = 7;
        argv[argc] = "1";
        argvlen[argc++] = 1;

    } else {
        argv[argc] = "WAIT";
        argvlen[argc++] = 4;
    }

    argv[argc] = (char *) n;
    argvlen[argc++] = ngx_sprintf(n, "%ui", mcf->redis.wait) - n;
    argv[argc] = (char *) ms;
    argvlen[argc++] = ngx_sprintf(ms, "%M",
                                  ngx_max(mcf->redis.timeout / 2, 1))
                      - ms;

    return ngx_http_clockchain_redis_durable_command(handler, data, argc,
                                                     argv, argvlen);
}


/*
 * Whether store_wait's answer confirms the writes; *said, for the log, what
 * it said otherwise: WAIT answers the replicas that have them, WAITAOF
 * [primary fsynced (0 or 1), replicas fsynced], and an error (a Redis
 * before 7.2 does not know WAITAOF, or the primary's appendonly is off)
 * as it is.
 */

ngx_int_t
ngx_http_clockchain_store_confirmed(ngx_http_clockchain_main_conf_t *mcf,
    redisReply *reply, const char **said)
{
    if (reply == NULL) {
        *said = "nothing";
        return 0;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        *said = reply->str;
        return 0;
    }

    if (!mcf->redis.waitaof) {
        if (reply->type == REDIS_REPLY_INTEGER
            && reply->integer >= (long long) mcf->redis.wait)
        {
            return 1;
        }

        *said = reply->type == REDIS_REPLY_INTEGER ? "too few replicas"
                                                   : "something else";
        return 0;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER
        || reply->element[1]->type != REDIS_REPLY_INTEGER)
    {
        *said = "something else";
        return 0;
    }

    if (reply->element[0]->integer < 1) {
        *said = "not on the primary's disk";
        return 0;
    }

    if (reply->element[1]->integer < (long long) mcf->redis.wait) {
        *said = "on too few replicas' disks";
        return 0;
    }

    return 1;
}


/* PUBLISH a job's change, and its final state first when there is one */

void
ngx_http_clockchain_store_announce(ngx_http_clockchain_main_conf_t *mcf,
    ngx_str_t *final, ngx_str_t *change)
{
    u_char       channel[256 + sizeof(":final")];
    size_t       len;
    const char  *argv[3];
    size_t       argvlen[3];

    len = ngx_http_clockchain_store_channel(mcf, channel, 256);

    argv[0] = "PUBLISH";
    argvlen[0] = 7;
    argv[1] = (char *) channel;

    if (final->len) {
        argvlen[1] = ngx_sprintf(channel + len, ":final") - channel;
        argv[2] = (char *) final->data;
        argvlen[2] = final->len;

        (void) ngx_http_clockchain_redis_command(NULL, NULL, 3, argv,
                                                 argvlen);
    }

    argvlen[1] = len;
    argv[2] = (char *) change->data;
    argvlen[2] = change->len;

    (void) ngx_http_clockchain_redis_command(NULL, NULL, 3, argv, argvlen);
}


/* ingest.lua: a writer's request, all of it or none */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_ingest(ngx_http_clockchain_main_conf_t *mcf,
    ngx_str_t *graph, ngx_str_t *token,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    u_char       prefix[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       channel[256 + sizeof(":moments")];
    u_char       cap[NGX_INT_T_LEN];
    char         now[NGX_HTTP_CLOCKCHAIN_TIME_LEN + 1];
    size_t       len;
    const char  *argv[6];
    size_t       argvlen[6];

    ngx_http_clockchain_iso_now(now);

    len = ngx_http_clockchain_store_channel(mcf, channel, 256);

    argv[0] = (char *) prefix;
    argvlen[0] = ngx_http_clockchain_store_key(prefix, mcf, "", NULL, 0);
    argv[1] = (char *) graph->data;
    argvlen[1] = graph->len;
    argv[2] = (char *) cap;
    argvlen[2] = ngx_sprintf(cap, "%ui", mcf->edges_max) - cap;
    argv[3] = (char *) channel;
    argvlen[3] = ngx_sprintf(channel + len, ":moments") - channel;
    argv[4] = now;
    argvlen[4] = NGX_HTTP_CLOCKCHAIN_TIME_LEN;
    argv[5] = token->len ? (char *) token->data : "";
    argvlen[5] = token->len;

    return ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_INGEST,
                                          handler, data, 0, 6, argv,
                                          argvlen);
}


/* ZCARD of the queue or the processing set, for the gauges */

void
ngx_http_clockchain_store_count(ngx_http_clockchain_main_conf_t *mcf,
    const char *name, ngx_http_clockchain_redis_handler_pt handler,
    void *data)
{
    u_char       key[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    const char  *argv[2];
    size_t       argvlen[2];

    argv[0] = "ZCARD";
    argvlen[0] = 5;
    argv[1] = (char *) key;
    argvlen[1] = ngx_http_clockchain_store_key(key, mcf, name, NULL, 0);

    (void) ngx_http_clockchain_redis_command(handler, data, 2, argv, argvlen);
}


/* export.lua: a page of the whole graph, after a path ("" first) */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_export(ngx_http_clockchain_main_conf_t *mcf,
    ngx_str_t *after, ngx_uint_t limit, ngx_uint_t budget,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    u_char       prefix[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       n[NGX_INT_T_LEN], b[NGX_INT_T_LEN];
    const char  *argv[4];
    size_t       argvlen[4];

    argv[0] = (char *) prefix;
    argvlen[0] = ngx_http_clockchain_store_key(prefix, mcf, "", NULL, 0);
    argv[1] = after->len ? (char *) after->data : "";
    argvlen[1] = after->len;
    argv[2] = (char *) n;
    argvlen[2] = ngx_sprintf(n, "%ui", limit) - n;
    argv[3] = (char *) b;
    argvlen[3] = ngx_sprintf(b, "%ui", budget) - b;

    return ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_EXPORT,
                                          handler, data, 0, 4, argv,
                                          argvlen);
}


/* restore.lua: a chunk of an export, parsed and checked */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_restore(ngx_http_clockchain_main_conf_t *mcf,
    const char *chunk, size_t len,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    u_char       prefix[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       channel[256 + sizeof(":moments")];
    char         now[NGX_HTTP_CLOCKCHAIN_TIME_LEN + 1];
    size_t       clen;
    const char  *argv[4];
    size_t       argvlen[4];

    ngx_http_clockchain_iso_now(now);
    clen = ngx_http_clockchain_store_channel(mcf, channel, 256);

    argv[0] = (char *) prefix;
    argvlen[0] = ngx_http_clockchain_store_key(prefix, mcf, "", NULL, 0);
    argv[1] = chunk;
    argvlen[1] = len;
    argv[2] = now;
    argvlen[2] = NGX_HTTP_CLOCKCHAIN_TIME_LEN;
    argv[3] = (char *) channel;
    argvlen[3] = ngx_sprintf(channel + clen, ":moments") - channel;

    return ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_RESTORE,
                                          handler, data, 0, 4, argv,
                                          argvlen);
}


/* one agent token's record: plain HMGET, no script (every write asks) */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_agent(ngx_http_clockchain_main_conf_t *mcf,
    const u_char *hash, ngx_http_clockchain_redis_handler_pt handler,
    void *data)
{
    u_char       key[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    const char  *argv[6];
    size_t       argvlen[6];

    argv[0] = "HMGET";
    argvlen[0] = 5;
    argv[1] = (char *) key;
    argvlen[1] = ngx_http_clockchain_store_key(key, mcf, "agent:tok:", hash,
                                               64);
    argv[2] = "id";
    argvlen[2] = 2;
    argv[3] = "agent_name";
    argvlen[3] = 10;
    argv[4] = "permissions";
    argvlen[4] = 11;
    argv[5] = "is_active";
    argvlen[5] = 9;

    return ngx_http_clockchain_redis_command(handler, data, 6, argv,
                                             argvlen);
}


/* agents.lua: prefix, op, now, then the op's own arguments */

#define NGX_HTTP_CLOCKCHAIN_AGENTS_ARGS                                       \
    (4 + 3 * NGX_HTTP_CLOCKCHAIN_AGENT_TOKENS + 1)

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_agents(ngx_http_clockchain_main_conf_t *mcf,
    const char *op, ngx_str_t *args, ngx_uint_t nargs,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    u_char        prefix[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char        channel[256 + sizeof(":agents")];
    char          now[NGX_HTTP_CLOCKCHAIN_TIME_LEN + 1];
    size_t        len;
    ngx_uint_t    i, argc;
    const char   *argv[NGX_HTTP_CLOCKCHAIN_AGENTS_ARGS];
    size_t        argvlen[NGX_HTTP_CLOCKCHAIN_AGENTS_ARGS];

    if (nargs + 4 >= NGX_HTTP_CLOCKCHAIN_AGENTS_ARGS) {
        return NULL;
    }

    ngx_http_clockchain_iso_now(now);

    argv[0] = (char *) prefix;
    argvlen[0] = ngx_http_clockchain_store_key(prefix, mcf, "", NULL, 0);
    argv[1] = op;
    argvlen[1] = ngx_strlen(op);
    argv[2] = now;
    argvlen[2] = NGX_HTTP_CLOCKCHAIN_TIME_LEN;

    argc = 3;

    for (i = 0; i < nargs; i++) {
        argv[argc] = (char *) args[i].data;
        argvlen[argc++] = args[i].len;
    }

    if (ngx_strcmp(op, "revoke") == 0) {
        len = ngx_http_clockchain_store_channel(mcf, channel, 256);
        argv[argc] = (char *) channel;
        argvlen[argc++] = ngx_sprintf(channel + len, ":agents") - channel;
    }

    return ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_AGENTS,
                                          handler, data, 0, (int) argc, argv,
                                          argvlen);
}


/*
 * propose.lua: prefix, op, now, the moments channel, the auto-edges' cap,
 * the writer's token hash ("" for none), the op's arguments
 */

ngx_http_clockchain_redis_op_t *
ngx_http_clockchain_store_propose(ngx_http_clockchain_main_conf_t *mcf,
    const char *op, ngx_str_t *token, ngx_str_t *args, ngx_uint_t nargs,
    ngx_http_clockchain_redis_handler_pt handler, void *data)
{
    u_char        prefix[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char        channel[256 + sizeof(":moments")];
    u_char        cap[NGX_INT_T_LEN];
    char          now[NGX_HTTP_CLOCKCHAIN_TIME_LEN + 1];
    size_t        len;
    ngx_uint_t    i;
    const char   *argv[14];
    size_t        argvlen[14];

    if (nargs > 8) {
        return NULL;
    }

    ngx_http_clockchain_iso_now(now);
    len = ngx_http_clockchain_store_channel(mcf, channel, 256);

    argv[0] = (char *) prefix;
    argvlen[0] = ngx_http_clockchain_store_key(prefix, mcf, "", NULL, 0);
    argv[1] = op;
    argvlen[1] = ngx_strlen(op);
    argv[2] = now;
    argvlen[2] = NGX_HTTP_CLOCKCHAIN_TIME_LEN;
    argv[3] = (char *) channel;
    argvlen[3] = ngx_sprintf(channel + len, ":moments") - channel;
    argv[4] = (char *) cap;
    argvlen[4] = ngx_sprintf(cap, "%ui", mcf->edges_max) - cap;
    argv[5] = token->len ? (char *) token->data : "";
    argvlen[5] = token->len;

    for (i = 0; i < nargs; i++) {
        argv[6 + i] = (char *) args[i].data;
        argvlen[6 + i] = args[i].len;
    }

    return ngx_http_clockchain_redis_eval(NGX_HTTP_CLOCKCHAIN_SCRIPT_PROPOSE,
                                          handler, data, 0, (int) (6 + nargs),
                                          argv, argvlen);
}


/*
 * seed.lua: the graph seeded once (clockchain_seed_file).  One worker of
 * each nginx (number 0, which nginx respawns with the same number) sends
 * it as soon as Redis is connected, and again after a failure, until
 * Redis answers; the script's marker makes every other call of every
 * nginx, and every later start, write nothing.
 */

static ngx_event_t                      ngx_http_clockchain_seed_ev;
static ngx_http_clockchain_redis_op_t  *ngx_http_clockchain_seed_op;
static ngx_uint_t                       ngx_http_clockchain_seed_done;


static void
ngx_http_clockchain_seed_reply(void *data, redisReply *reply)
{
    ngx_http_clockchain_main_conf_t *mcf = data;

    ngx_event_t  *ev = &ngx_http_clockchain_seed_ev;

    ngx_http_clockchain_seed_op = NULL;

    if (reply == NULL) {
        /* not connected, timed out: the next tick sends it again */
        goto again;
    }

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
        && reply->element[0]->type == REDIS_REPLY_INTEGER)
    {
        ngx_http_clockchain_seed_done = 1;

        if (reply->element[0]->integer < 0) {
            ngx_log_error(NGX_LOG_INFO, ev->log, 0,
                          "clockchain: the graph was already seeded (%s), "
                          "\"%V\" not loaded",
                          reply->element[1]->type == REDIS_REPLY_STRING
                          ? reply->element[1]->str : "", &mcf->seed_file);
            return;
        }

        ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                      "clockchain: seeded %L nodes and %L edges "
                      "from \"%V\"", (int64_t) reply->element[0]->integer,
                      (int64_t) (reply->element[1]->type
                                 == REDIS_REPLY_INTEGER
                                 ? reply->element[1]->integer : 0),
                      &mcf->seed_file);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                  "clockchain: seeding from \"%V\" failed: %*s, tried again "
                  "in 5s", &mcf->seed_file,
                  (size_t) (reply->type == REDIS_REPLY_ERROR ? reply->len : 0),
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "");

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_add_timer(ev, 5000);
    }

    return;

again:

    if (!ngx_exiting && !ngx_terminate && !ngx_quit && !ev->timer_set) {
        ngx_add_timer(ev, 500);
    }
}


static void
ngx_http_clockchain_seed_tick(ngx_event_t *ev)
{
    ngx_http_clockchain_main_conf_t *mcf = ev->data;

    u_char       marker[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       prefix[NGX_HTTP_CLOCKCHAIN_KEY_MAX];
    u_char       channel[256 + sizeof(":moments")];
    char         now[NGX_HTTP_CLOCKCHAIN_TIME_LEN + 1];
    size_t       len;
    const char  *argv[5];
    size_t       argvlen[5];

    if (ngx_http_clockchain_seed_done || ngx_http_clockchain_seed_op
        || ngx_exiting || ngx_terminate || ngx_quit)
    {
        return;
    }

    if (!ngx_http_clockchain_redis_available()) {
        ngx_add_timer(ev, 500);
        return;
    }

    ngx_http_clockchain_iso_now(now);
    len = ngx_http_clockchain_store_channel(mcf, channel, 256);

    argv[0] = (char *) marker;
    argvlen[0] = ngx_http_clockchain_store_key(marker, mcf, "seeded", NULL,
                                               0);
    argv[1] = (char *) prefix;
    argvlen[1] = ngx_http_clockchain_store_key(prefix, mcf, "", NULL, 0);
    argv[2] = (char *) mcf->seed.data;
    argvlen[2] = mcf->seed.len;
    argv[3] = now;
    argvlen[3] = NGX_HTTP_CLOCKCHAIN_TIME_LEN;
    argv[4] = (char *) channel;
    argvlen[4] = ngx_sprintf(channel + len, ":moments") - channel;

    ngx_http_clockchain_seed_op = ngx_http_clockchain_redis_eval(
                                      NGX_HTTP_CLOCKCHAIN_SCRIPT_SEED,
                                      ngx_http_clockchain_seed_reply, mcf,
                                      1, 5, argv, argvlen);

    if (ngx_http_clockchain_seed_op == NULL) {
        ngx_add_timer(ev, 500);
    }
}


ngx_int_t
ngx_http_clockchain_store_seed_init_process(ngx_cycle_t *cycle,
    ngx_http_clockchain_main_conf_t *mcf)
{
    ngx_event_t  *ev = &ngx_http_clockchain_seed_ev;

    ngx_http_clockchain_seed_op = NULL;
    ngx_http_clockchain_seed_done = 0;

    if (mcf->seed.len == 0 || ngx_worker != 0) {
        return NGX_OK;
    }

    ngx_memzero(ev, sizeof(ngx_event_t));

    ev->handler = ngx_http_clockchain_seed_tick;
    ev->data = mcf;
    ev->log = cycle->log;
    /* only polls: a leaving worker does not wait for it */
    ev->cancelable = 1;

    ngx_add_timer(ev, 1);

    return NGX_OK;
}


void
ngx_http_clockchain_store_seed_exit_process(void)
{
    if (ngx_http_clockchain_seed_op) {
        ngx_http_clockchain_redis_cancel(ngx_http_clockchain_seed_op);
        ngx_http_clockchain_seed_op = NULL;
    }

    if (ngx_http_clockchain_seed_ev.timer_set) {
        ngx_del_timer(&ngx_http_clockchain_seed_ev);
    }
}


/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_MODULE_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_clockchain_job.h"
#include "ngx_http_clockchain_redis_conf.h"


#define NGX_HTTP_CLOCKCHAIN_RETRY_AFTER   "2"

/* in a handler directive's offset: the request body the handler reads */
#define NGX_HTTP_CLOCKCHAIN_READS_BODY     1   /* clockchain_max_body_size */
#define NGX_HTTP_CLOCKCHAIN_READS_PUBLISH  2   /* a publish body */

#define NGX_HTTP_CLOCKCHAIN_PUBLISH_MAX    4096

/* an agent's name, at most, in bytes; the tokens a directive's file holds */
#define NGX_HTTP_CLOCKCHAIN_AGENT_NAME_MAX  128
#define NGX_HTTP_CLOCKCHAIN_AGENT_TOKENS    1000

/* what an agent's token allows (the original's permissions) */
#define NGX_HTTP_CLOCKCHAIN_AGENT_READ     0
#define NGX_HTTP_CLOCKCHAIN_AGENT_WRITE    1
#define NGX_HTTP_CLOCKCHAIN_AGENT_ADMIN    2


/* a token of clockchain_admin_token_file or clockchain_writer_tokens_file */
typedef struct {
    u_char                        hash[65];   /* SHA-256 hex; not the token */
    ngx_str_t                     name;
    ngx_uint_t                    perm;       /* ..._AGENT_WRITE, _ADMIN */
} ngx_http_clockchain_agent_conf_t;


typedef struct {
    ngx_shm_zone_t               *shm_zone;

    ngx_http_clockchain_redis_conf_t  redis;     /* clockchain_redis */

    /* the runner: on when flash_url is set */
    ngx_str_t                     flash_url;
    ngx_str_t                     flash_key;
    ngx_msec_t                    flash_timeout;
    ngx_uint_t                    flash_max_calls;
    size_t                        flash_max_response;
    size_t                        flash_buffers;
    ngx_uint_t                    edges_max;
    ngx_msec_t                    job_lease;
    ngx_uint_t                    job_max_stalls;
    ngx_uint_t                    flash_attempts;
    ngx_array_t                  *flash_retry_status;  /* of ngx_uint_t */
    ngx_msec_t                    flash_backoff;
    ngx_msec_t                    flash_backoff_max;
    ngx_uint_t                    breaker_failures;
    ngx_msec_t                    breaker_pause;
    ngx_msec_t                    drain_timeout;
    time_t                        keep_completed;    /* s */
    time_t                        keep_failed;       /* s */

    ngx_uint_t                    max_pending;
    /* clockchain_seed_file: the file, and seed.lua's argument from it */
    ngx_str_t                     seed_file;
    ngx_str_t                     seed;

    /*
     * clockchain_admin_token_file, clockchain_writer_tokens_file: the
     * agents written into Redis once (of ngx_http_clockchain_agent_conf_t);
     * with either directive, writes need an agent's Bearer token
     */
    ngx_array_t                  *agent_tokens;
    ngx_flag_t                    writers;

    ngx_uint_t                    enabled;        /* a handler is in use */
} ngx_http_clockchain_main_conf_t;


typedef struct {
    ngx_array_t                  *service_keys;   /* of ngx_str_t */
    ngx_array_t                  *admin_keys;     /* of ngx_str_t */
    size_t                        max_body_size;
    ngx_uint_t                    bulk_max;
    ngx_msec_t                    wait_max;

    /* clockchain_cors_origins: of ngx_str_t, NULL for none, "*" alone */
    ngx_array_t                  *cors_origins;

    /* clockchain_moments_max_age: Cache-Control of public moments, s */
    time_t                        moments_max_age;

    /* the location's clockchain handler, behind ngx_http_clockchain_entry */
    ngx_http_handler_pt           handler;

    /* core's conf of a location whose handler reads a body, else NULL */
    ngx_http_core_loc_conf_t     *body_core;
    ngx_uint_t                    body_reader;    /* READS_BODY, ... */
    size_t                        body_max;       /* its limit, merged */
} ngx_http_clockchain_loc_conf_t;


extern ngx_module_t  ngx_http_clockchain_module;


ngx_int_t ngx_http_clockchain_generate_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_bulk_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_jobs_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_moments_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_neighbors_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_list_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_today_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_random_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_subgraph_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_traverse_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_path_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_search_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_browse_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_metrics_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_status_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_health_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_service_info_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_stats_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_openapi_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_agents_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_index_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_ingest_subgraph_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_ingest_tdf_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_export_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_restore_handler(ngx_http_request_t *r);

ngx_int_t ngx_http_clockchain_entry(ngx_http_request_t *r);
ngx_int_t ngx_http_clockchain_cors_headers(ngx_http_request_t *r);
void ngx_http_clockchain_body_filter_init(void);

ngx_int_t ngx_http_clockchain_add_variables(ngx_conf_t *cf);

/* a file named in a directive, read whole into the conf pool */
ngx_int_t ngx_http_clockchain_read_conf_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *content);


/*
 * Planted bugs, for the chaos campaign's proof that its checker can fail
 * (ngx_http_clockchain_planted.c): only in a module built for it.
 */
#if (NGX_HTTP_CLOCKCHAIN_PLANTED)

#define NGX_HTTP_CLOCKCHAIN_BUG_FENCE  0x01
#define NGX_HTTP_CLOCKCHAIN_BUG_EPOCH  0x02
#define NGX_HTTP_CLOCKCHAIN_BUG_ACK    0x04

#define ngx_http_clockchain_bug(name)                                       \
    (ngx_http_clockchain_planted & NGX_HTTP_CLOCKCHAIN_BUG_ ## name)

extern ngx_uint_t  ngx_http_clockchain_planted;

ngx_int_t ngx_http_clockchain_planted_init(ngx_conf_t *cf);

#else

#define ngx_http_clockchain_bug(name)  0

#endif


#endif /* _NGX_HTTP_CLOCKCHAIN_MODULE_H_INCLUDED_ */

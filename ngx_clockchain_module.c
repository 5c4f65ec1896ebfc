
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * The Clockchain jobs API inside nginx: module definition, directives,
 * configuration and the per-worker setup.  The work is done under src/.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_stats.h"
#include "ngx_http_clockchain_shm.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_runner.h"
#include "ngx_http_clockchain_events.h"
#include "ngx_http_clockchain_wait.h"
#include "ngx_http_clockchain_seed.h"
#include "ngx_http_clockchain_store.h"
#include "ngx_http_clockchain_tdf.h"
#include "ngx_http_clockchain_agents.h"
#include "ngx_http_clockchain_commit.h"


/* a service or admin key, at most: not a Redis key (store.h) */
#define NGX_HTTP_CLOCKCHAIN_API_KEY_MAX  4096


static void *ngx_http_clockchain_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_clockchain_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_clockchain_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_clockchain_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_clockchain_seed_file(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_clockchain_token_file(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_clockchain_add_token(ngx_conf_t *cf,
    ngx_http_clockchain_main_conf_t *mcf, u_char *token, size_t len,
    u_char *name, size_t nlen, ngx_uint_t perm, ngx_str_t *file,
    ngx_uint_t line);
static char *ngx_http_clockchain_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_clockchain_flash_url(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_clockchain_flash_key(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_clockchain_retry_status(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_clockchain_retry_backoff(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_clockchain_circuit_breaker(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_clockchain_retention(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_clockchain_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_clockchain_key_file(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_clockchain_add_key(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_array_t **keys, u_char *data, size_t len, ngx_str_t *where,
    ngx_uint_t n);
static char *ngx_http_clockchain_cors_origins(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_clockchain_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_clockchain_header_filter(ngx_http_request_t *r);
static char *ngx_http_clockchain_handler_set(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_clockchain_init_process(ngx_cycle_t *cycle);
static void ngx_http_clockchain_exit_process(ngx_cycle_t *cycle);


static ngx_conf_num_bounds_t  ngx_http_clockchain_bulk_max_bounds = {
    ngx_conf_check_num_bounds, 1, 10000
};


static ngx_conf_num_bounds_t  ngx_http_clockchain_max_calls_bounds = {
    ngx_conf_check_num_bounds, 1, 100000
};


static ngx_conf_num_bounds_t  ngx_http_clockchain_edges_max_bounds = {
    ngx_conf_check_num_bounds, 0, 1000
};


static ngx_conf_num_bounds_t  ngx_http_clockchain_attempts_bounds = {
    ngx_conf_check_num_bounds, 1, 100
};


static ngx_command_t  ngx_http_clockchain_commands[] = {

    { ngx_string("clockchain_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_clockchain_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("clockchain_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_clockchain_redis_conf_set,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_clockchain_main_conf_t, redis),
      NULL },

    { ngx_string("clockchain_flash_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_clockchain_flash_url,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("clockchain_flash_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_clockchain_flash_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("clockchain_flash_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_clockchain_flash_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      1,
      NULL },

    { ngx_string("clockchain_flash_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_clockchain_main_conf_t, flash_timeout),
      NULL },

    { ngx_string("clockchain_flash_max_calls"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_clockchain_main_conf_t, flash_max_calls),
      &ngx_http_clockchain_max_calls_bounds },

    { ngx_string("clockchain_flash_max_response"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_clockchain_main_conf_t, flash_max_response),
      NULL },

    { ngx_string("clockchain_flash_buffers"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_clockchain_main_conf_t, flash_buffers),
      NULL },

    { ngx_string("clockchain_edges_max"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_clockchain_main_conf_t, edges_max),
      &ngx_http_clockchain_edges_max_bounds },

    { ngx_string("clockchain_job_lease"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_clockchain_main_conf_t, job_lease),
      NULL },

    { ngx_string("clockchain_job_max_stalls"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_clockchain_main_conf_t, job_max_stalls),
      NULL },

    { ngx_string("clockchain_flash_attempts"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_clockchain_main_conf_t, flash_attempts),
      &ngx_http_clockchain_attempts_bounds },

    { ngx_string("clockchain_flash_retry_status"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_clockchain_retry_status,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("clockchain_flash_retry_backoff"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_clockchain_retry_backoff,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("clockchain_flash_circuit_breaker"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_clockchain_circuit_breaker,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("clockchain_job_retention"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_clockchain_retention,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("clockchain_drain_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_clockchain_main_conf_t, drain_timeout),
      NULL },

    { ngx_string("clockchain_max_pending"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_clockchain_main_conf_t, max_pending),
      NULL },

    { ngx_string("clockchain_seed_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_clockchain_seed_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("clockchain_admin_token_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_clockchain_token_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      NGX_HTTP_CLOCKCHAIN_AGENT_ADMIN,
      NULL },

    { ngx_string("clockchain_writer_tokens_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_clockchain_token_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      NGX_HTTP_CLOCKCHAIN_AGENT_WRITE,
      NULL },

    { ngx_string("clockchain_service_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_clockchain_keys,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_clockchain_loc_conf_t, service_keys),
      NULL },

    { ngx_string("clockchain_service_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_clockchain_key_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_clockchain_loc_conf_t, service_keys),
      NULL },

    { ngx_string("clockchain_admin_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_clockchain_keys,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_clockchain_loc_conf_t, admin_keys),
      NULL },

    { ngx_string("clockchain_admin_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_clockchain_key_file,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_clockchain_loc_conf_t, admin_keys),
      NULL },

    { ngx_string("clockchain_max_body_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_clockchain_loc_conf_t, max_body_size),
      NULL },

    { ngx_string("clockchain_bulk_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_clockchain_loc_conf_t, bulk_max),
      &ngx_http_clockchain_bulk_max_bounds },

    { ngx_string("clockchain_wait_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_clockchain_loc_conf_t, wait_max),
      NULL },

    { ngx_string("clockchain_moments_max_age"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_clockchain_loc_conf_t, moments_max_age),
      NULL },

    { ngx_string("clockchain_cors_origins"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_clockchain_cors_origins,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("clockchain_generate"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_CLOCKCHAIN_READS_BODY,
      ngx_http_clockchain_generate_handler },

    { ngx_string("clockchain_bulk_generate"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_CLOCKCHAIN_READS_BODY,
      ngx_http_clockchain_bulk_handler },

    { ngx_string("clockchain_jobs"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_jobs_handler },

    { ngx_string("clockchain_agents"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_CLOCKCHAIN_READS_PUBLISH,
      ngx_http_clockchain_agents_handler },

    { ngx_string("clockchain_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_metrics_handler },

    { ngx_string("clockchain_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_status_handler },

    { ngx_string("clockchain_moments"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_CLOCKCHAIN_READS_BODY,     /* proposals; publish's is 4k */
      ngx_http_clockchain_moments_handler },

    { ngx_string("clockchain_graph_neighbors"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_neighbors_handler },

    { ngx_string("clockchain_moments_list"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_list_handler },

    { ngx_string("clockchain_today"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_today_handler },

    { ngx_string("clockchain_random"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_random_handler },

    { ngx_string("clockchain_graph_subgraph"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_subgraph_handler },

    { ngx_string("clockchain_graph_traverse"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_traverse_handler },

    { ngx_string("clockchain_graph_path"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_path_handler },

    { ngx_string("clockchain_search"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_search_handler },

    { ngx_string("clockchain_browse"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_browse_handler },

    { ngx_string("clockchain_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_health_handler },

    { ngx_string("clockchain_service_info"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_service_info_handler },

    { ngx_string("clockchain_stats"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_stats_handler },

    { ngx_string("clockchain_openapi"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_openapi_handler },

    { ngx_string("clockchain_export"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_clockchain_export_handler },

    { ngx_string("clockchain_restore"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_CLOCKCHAIN_READS_BODY,
      ngx_http_clockchain_restore_handler },

    { ngx_string("clockchain_index"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_CLOCKCHAIN_READS_BODY,
      ngx_http_clockchain_index_handler },

    { ngx_string("clockchain_ingest_subgraph"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_CLOCKCHAIN_READS_BODY,
      ngx_http_clockchain_ingest_subgraph_handler },

    { ngx_string("clockchain_ingest_tdf"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_clockchain_handler_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_CLOCKCHAIN_READS_BODY,
      ngx_http_clockchain_ingest_tdf_handler },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_clockchain_module_ctx = {
    ngx_http_clockchain_add_variables,     /* preconfiguration */
    ngx_http_clockchain_postconfiguration, /* postconfiguration */

    ngx_http_clockchain_create_main_conf,  /* create main configuration */
    ngx_http_clockchain_init_main_conf,    /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_clockchain_create_loc_conf,   /* create location configuration */
    ngx_http_clockchain_merge_loc_conf     /* merge location configuration */
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


ngx_module_t  ngx_http_clockchain_module = {
    NGX_MODULE_V1,
    &ngx_http_clockchain_module_ctx,       /* module context */
    ngx_http_clockchain_commands,          /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_clockchain_init_process,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_clockchain_exit_process,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_clockchain_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_clockchain_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_clockchain_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mcf->shm_zone = NULL;
     *     mcf->enabled = 0;
     */

    ngx_http_clockchain_redis_conf_create(&mcf->redis);

    mcf->flash_timeout = NGX_CONF_UNSET_MSEC;
    mcf->flash_max_calls = NGX_CONF_UNSET_UINT;
    mcf->flash_max_response = NGX_CONF_UNSET_SIZE;
    mcf->flash_buffers = NGX_CONF_UNSET_SIZE;
    mcf->edges_max = NGX_CONF_UNSET_UINT;
    mcf->job_lease = NGX_CONF_UNSET_MSEC;
    mcf->job_max_stalls = NGX_CONF_UNSET_UINT;
    mcf->max_pending = NGX_CONF_UNSET_UINT;
    mcf->flash_attempts = NGX_CONF_UNSET_UINT;
    mcf->flash_retry_status = NGX_CONF_UNSET_PTR;
    mcf->flash_backoff = NGX_CONF_UNSET_MSEC;
    mcf->flash_backoff_max = NGX_CONF_UNSET_MSEC;
    mcf->breaker_failures = NGX_CONF_UNSET_UINT;
    mcf->breaker_pause = NGX_CONF_UNSET_MSEC;
    mcf->drain_timeout = NGX_CONF_UNSET_MSEC;
    mcf->keep_completed = NGX_CONF_UNSET;
    mcf->keep_failed = NGX_CONF_UNSET;

    return mcf;
}


static char *
ngx_http_clockchain_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_clockchain_main_conf_t  *mcf = conf;

    ngx_uint_t   i, *status;

    static const ngx_uint_t  retry[] = { 408, 429, 500, 502, 503, 504 };

    ngx_http_clockchain_redis_conf_init(&mcf->redis);

    ngx_conf_init_msec_value(mcf->flash_timeout, 480000);
    ngx_conf_init_uint_value(mcf->flash_max_calls, 64);
    ngx_conf_init_size_value(mcf->flash_max_response, 16 * 1024 * 1024);
    ngx_conf_init_size_value(mcf->flash_buffers, 256 * 1024 * 1024);
    ngx_conf_init_uint_value(mcf->edges_max, 20);
    ngx_conf_init_msec_value(mcf->job_lease, 60000);
    ngx_conf_init_uint_value(mcf->job_max_stalls, 2);
    ngx_conf_init_uint_value(mcf->max_pending, 10000);
    ngx_conf_init_uint_value(mcf->flash_attempts, 5);
    ngx_conf_init_msec_value(mcf->flash_backoff, 2000);
    ngx_conf_init_msec_value(mcf->flash_backoff_max, 60000);
    ngx_conf_init_uint_value(mcf->breaker_failures, 10);
    ngx_conf_init_msec_value(mcf->breaker_pause, 30000);
    ngx_conf_init_msec_value(mcf->drain_timeout, 30000);
    ngx_conf_init_value(mcf->keep_completed, 7 * 86400);
    ngx_conf_init_value(mcf->keep_failed, 30 * 86400);

    if (mcf->flash_retry_status == NGX_CONF_UNSET_PTR) {
        mcf->flash_retry_status = ngx_array_create(cf->pool, 6,
                                                   sizeof(ngx_uint_t));
        if (mcf->flash_retry_status == NULL) {
            return NGX_CONF_ERROR;
        }

        for (i = 0; i < sizeof(retry) / sizeof(retry[0]); i++) {
            status = ngx_array_push(mcf->flash_retry_status);
            if (status == NULL) {
                return NGX_CONF_ERROR;
            }

            *status = retry[i];
        }
    }

    if (mcf->job_lease < 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"clockchain_job_lease\" must be at least 1s");
        return NGX_CONF_ERROR;
    }

    if (mcf->flash_buffers < mcf->flash_max_response) {
        /* else an answer that fits its own limit could never be taken */
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"clockchain_flash_buffers\" must be at least "
                           "\"clockchain_flash_max_response\"");
        return NGX_CONF_ERROR;
    }

    if (mcf->flash_url.len && mcf->flash_key.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"clockchain_flash_url\" needs "
                           "\"clockchain_flash_key\" or "
                           "\"clockchain_flash_key_file\"");
        return NGX_CONF_ERROR;
    }

    if (!mcf->enabled) {
        return NGX_CONF_OK;
    }

    if (mcf->shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"clockchain_zone\" must be set in the http "
                           "block when clockchain handlers are used");
        return NGX_CONF_ERROR;
    }

    if (mcf->redis.addr.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"clockchain_redis\" must be set in the http "
                           "block when clockchain handlers are used");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_clockchain_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_clockchain_loc_conf_t  *llcf;

    llcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_clockchain_loc_conf_t));
    if (llcf == NULL) {
        return NULL;
    }

    llcf->service_keys = NGX_CONF_UNSET_PTR;
    llcf->admin_keys = NGX_CONF_UNSET_PTR;
    llcf->max_body_size = NGX_CONF_UNSET_SIZE;
    llcf->bulk_max = NGX_CONF_UNSET_UINT;
    llcf->wait_max = NGX_CONF_UNSET_MSEC;
    llcf->cors_origins = NGX_CONF_UNSET_PTR;
    llcf->moments_max_age = NGX_CONF_UNSET;

    return llcf;
}


static char *
ngx_http_clockchain_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_clockchain_loc_conf_t  *prev = parent;
    ngx_http_clockchain_loc_conf_t  *conf = child;

    size_t                           max;
    ngx_http_core_loc_conf_t        *clcf;

    /* keys set on a level replace, not extend, the inherited ones */
    ngx_conf_merge_ptr_value(conf->service_keys, prev->service_keys, NULL);
    ngx_conf_merge_ptr_value(conf->admin_keys, prev->admin_keys, NULL);

    ngx_conf_merge_size_value(conf->max_body_size, prev->max_body_size,
                              256 * 1024);
    ngx_conf_merge_uint_value(conf->bulk_max, prev->bulk_max, 100);
    ngx_conf_merge_msec_value(conf->wait_max, prev->wait_max, 60000);

    /*
     * allow/deny is all that guards the status page and the metrics, and
     * the page's script reads its JSON from the same origin: a CORS list
     * inherited from the server would let any site the operator's browser
     * visits read them from inside the allowed network.  Never there,
     * then, and nginx -t says so when it is asked for on the location.
     */

    if (conf->handler == ngx_http_clockchain_status_handler
        || conf->handler == ngx_http_clockchain_metrics_handler)
    {
        if (conf->cors_origins != NGX_CONF_UNSET_PTR
            && conf->cors_origins != NULL)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"clockchain_cors_origins\" cannot be used "
                               "with \"%s\": it is guarded by allow/deny "
                               "alone",
                               conf->handler
                               == ngx_http_clockchain_status_handler
                               ? "clockchain_status" : "clockchain_metrics");
            return NGX_CONF_ERROR;
        }

        conf->cors_origins = NULL;
    }

    ngx_conf_merge_ptr_value(conf->cors_origins, prev->cors_origins, NULL);
    ngx_conf_merge_sec_value(conf->moments_max_age, prev->moments_max_age, 0);

    if (conf->body_core) {
        /*
         * A body within clockchain_max_body_size is read into memory whole,
         * whatever nginx's body settings: spooled to client_body_temp_path
         * it would need a directory the workers can write, and a workers'
         * user that cannot reach it turned legal bodies into 500s.  Core's
         * merge has run for every location before any module's after it.
         * The extra byte keeps a chunked body of exactly the limit from
         * filling the buffer, which nginx takes as a reason to spool.
         */

        clcf = conf->body_core;

        max = (conf->body_reader == NGX_HTTP_CLOCKCHAIN_READS_PUBLISH)
              ? NGX_HTTP_CLOCKCHAIN_PUBLISH_MAX : conf->max_body_size;

        /* the one place a location's limit is worked out (request.c too) */
        conf->body_max = max;

        if (clcf->client_body_buffer_size < max + 1) {
            clcf->client_body_buffer_size = max + 1;
        }

        clcf->client_body_in_file_only = 0;    /* off */

        /* nor may nginx's own limit refuse a body the module takes */

        if (clcf->client_max_body_size
            && clcf->client_max_body_size < (off_t) max)
        {
            clcf->client_max_body_size = max;
        }
    }

    return NGX_CONF_OK;
}


/*
 * clockchain_admin_token_file file; (one token: the original's ADMIN_TOKEN)
 * and clockchain_writer_tokens_file file; ("token:agent_name" entries, a
 * line each or separated by commas, as the original's WRITER_TOKENS; a
 * token without a name is "agent-N", N its place from 0).  Read now, so
 * nginx -t names a bad line; only the tokens' SHA-256 is kept, and no
 * message ever shows a token.
 */

static char *
ngx_http_clockchain_token_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_clockchain_main_conf_t  *mcf = conf;

    u_char      *p, *last, *start, *end, *e, *colon, *q, *nm, buf[32];
    char        *rv;
    size_t       nlen;
    ngx_str_t   *value, file, content;
    ngx_uint_t   line, found, perm;

    perm = cmd->offset;
    value = cf->args->elts;
    file = value[1];

    if (ngx_http_clockchain_read_conf_file(cf, &file, &content) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    p = content.data;
    last = p + content.len;
    found = 0;

    for (line = 1; p < last; line++) {
        start = p;

        while (p < last && *p != '\n') {
            p++;
        }

        end = p++;

        while (start < end && (*start == ' ' || *start == '\t')) {
            start++;
        }

        if (start == end || *start == '#') {
            continue;
        }

        /* entries of a line: separated by commas, blanks around them */

        for (q = start; q < end; q = e + 1) {
            e = ngx_strlchr(q, end, ',');
            if (e == NULL) {
                e = end;
            }

            while (q < e && (*q == ' ' || *q == '\t')) {
                q++;
            }

            nm = e;

            while (nm > q
                   && (nm[-1] == ' ' || nm[-1] == '\t' || nm[-1] == '\r'))
            {
                nm--;
            }

            if (q == nm) {
                continue;
            }

            if (perm == NGX_HTTP_CLOCKCHAIN_AGENT_ADMIN) {
                if (found) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "more than one token in \"%V\" "
                                       "(line %ui): it holds the one admin "
                                       "token", &file, line);
                    return NGX_CONF_ERROR;
                }

                rv = ngx_http_clockchain_add_token(cf, mcf, q, nm - q,
                                                   (u_char *) "admin", 5,
                                                   perm, &file, line);

            } else {
                colon = ngx_strlchr(q, nm, ':');

                if (colon) {
                    rv = ngx_http_clockchain_add_token(cf, mcf, q, colon - q,
                                                       colon + 1,
                                                       nm - colon - 1, perm,
                                                       &file, line);

                } else {
                    nlen = ngx_sprintf(buf, "agent-%ui", found) - buf;
                    rv = ngx_http_clockchain_add_token(cf, mcf, q, nm - q,
                                                       buf, nlen, perm,
                                                       &file, line);
                }
            }

            if (rv != NGX_CONF_OK) {
                return rv;
            }

            found++;
        }
    }

    if (found == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no tokens in \"%V\"", &file);
        return NGX_CONF_ERROR;
    }

    mcf->writers = 1;

    return NGX_CONF_OK;
}


static char *
ngx_http_clockchain_add_token(ngx_conf_t *cf,
    ngx_http_clockchain_main_conf_t *mcf, u_char *token, size_t len,
    u_char *name, size_t nlen, ngx_uint_t perm, ngx_str_t *file,
    ngx_uint_t line)
{
    size_t                             i;
    ngx_uint_t                         n;
    ngx_http_clockchain_agent_conf_t  *a, *t;

    /* never echo a token: name its line instead */

    for (i = 0; i < len; i++) {
        if (token[i] < 0x21 || token[i] > 0x7e) {
            break;
        }
    }

    if (len == 0 || len > NGX_HTTP_CLOCKCHAIN_API_KEY_MAX || i < len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid token on line %ui of \"%V\": tokens are "
                           "1 to %d printable ASCII characters without "
                           "spaces, commas or colons", line, file,
                           NGX_HTTP_CLOCKCHAIN_API_KEY_MAX);
        return NGX_CONF_ERROR;
    }

    while (nlen && (*name == ' ' || *name == '\t')) {
        name++;
        nlen--;
    }

    for (i = 0; i < nlen; i++) {
        if (name[i] < 0x20 || name[i] == 0x7f) {
            break;
        }
    }

    if (nlen == 0 || nlen > NGX_HTTP_CLOCKCHAIN_AGENT_NAME_MAX || i < nlen) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid agent name on line %ui of \"%V\": "
                           "names are 1 to %d bytes without control "
                           "characters", line, file,
                           NGX_HTTP_CLOCKCHAIN_AGENT_NAME_MAX);
        return NGX_CONF_ERROR;
    }

    if (mcf->agent_tokens == NULL) {
        mcf->agent_tokens = ngx_array_create(cf->pool, 4,
                                     sizeof(ngx_http_clockchain_agent_conf_t));
        if (mcf->agent_tokens == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (mcf->agent_tokens->nelts >= NGX_HTTP_CLOCKCHAIN_AGENT_TOKENS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many tokens in \"%V\": at most %d in all",
                           file, NGX_HTTP_CLOCKCHAIN_AGENT_TOKENS);
        return NGX_CONF_ERROR;
    }

    a = ngx_array_push(mcf->agent_tokens);
    if (a == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_http_clockchain_sha256_hex(token, len, (char *) a->hash);

    t = mcf->agent_tokens->elts;

    for (n = 0; n + 1 < mcf->agent_tokens->nelts; n++) {
        if (ngx_memcmp(t[n].hash, a->hash, 64) == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "the token on line %ui of \"%V\" is given "
                               "twice", line, file);
            return NGX_CONF_ERROR;
        }
    }

    a->name.data = ngx_pnalloc(cf->pool, nlen);
    if (a->name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(a->name.data, name, nlen);
    a->name.len = nlen;
    a->perm = perm;

    return NGX_CONF_OK;
}


/* clockchain_zone name:size; */

/*
 * clockchain_seed_file path;: read and checked now, so that nginx -t
 * names the line of a record it could not seed; what seed.lua is sent is
 * kept in the conf pool (the file is at most 1m).
 */

static char *
ngx_http_clockchain_seed_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_clockchain_main_conf_t  *mcf = conf;

    char       *json, err[512];
    size_t      nodes, edges, line;
    ngx_str_t  *value, content;

    if (mcf->seed_file.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    mcf->seed_file = value[1];

    if (ngx_http_clockchain_read_conf_file(cf, &mcf->seed_file, &content)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    json = ngx_http_clockchain_seed_parse((char *) content.data, content.len,
                                          &nodes, &edges, &line, err,
                                          sizeof(err));
    if (json == NULL) {
        if (line) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid seeds file \"%V\", line %uz: %s",
                               &mcf->seed_file, line, err);

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid seeds file \"%V\": %s",
                               &mcf->seed_file, err);
        }

        return NGX_CONF_ERROR;
    }

    mcf->seed.len = ngx_strlen(json);
    mcf->seed.data = ngx_pnalloc(cf->pool, mcf->seed.len);

    if (mcf->seed.data == NULL) {
        free(json);
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(mcf->seed.data, json, mcf->seed.len);
    free(json);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "clockchain: seeds file \"%V\": %uz nodes, %uz edges",
                   &mcf->seed_file, nodes, edges);

    return NGX_CONF_OK;
}


static char *
ngx_http_clockchain_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_clockchain_main_conf_t  *mcf = conf;

    u_char     *p;
    ssize_t     size;
    ngx_str_t  *value, name, s;

    if (mcf->shm_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');

    if (p == NULL || p == value[1].data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\": expected name:size",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small, the minimum is %uz",
                           &value[1], 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    mcf->shm_zone = ngx_http_clockchain_shm_add(cf, &name, size);
    if (mcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* clockchain_flash_url http://host[:port][/prefix]; */

static char *
ngx_http_clockchain_flash_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_clockchain_main_conf_t  *mcf = conf;

    size_t      i;
    ngx_str_t  *value, url;

    if (mcf->flash_url.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    url = value[1];

    if (!((url.len > 7 && ngx_strncasecmp(url.data, (u_char *) "http://", 7)
                          == 0)
          || (url.len > 8
              && ngx_strncasecmp(url.data, (u_char *) "https://", 8) == 0)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid flash url \"%V\": it must start with "
                           "http:// or https://", &url);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < url.len; i++) {
        if (url.data[i] <= 0x20 || url.data[i] >= 0x7f) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid flash url \"%V\"", &url);
            return NGX_CONF_ERROR;
        }
    }

    /* the endpoint's path is appended to it */
    while (url.len && url.data[url.len - 1] == '/') {
        url.len--;
    }

    mcf->flash_url = url;

    return NGX_CONF_OK;
}


/* clockchain_flash_key key; and clockchain_flash_key_file file; */

static char *
ngx_http_clockchain_flash_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_clockchain_main_conf_t  *mcf = conf;

    size_t      i;
    ngx_str_t  *value, key;

    if (mcf->flash_key.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    key = value[1];

    if (cmd->offset) {
        if (ngx_http_clockchain_read_conf_file(cf, &value[1], &key)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        while (key.len && (key.data[key.len - 1] == '\n'
                           || key.data[key.len - 1] == '\r'
                           || key.data[key.len - 1] == ' '))
        {
            key.len--;
        }
    }

    for (i = 0; i < key.len; i++) {
        if (key.data[i] < 0x21 || key.data[i] > 0x7e) {
            break;
        }
    }

    if (key.len == 0 || i < key.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid flash key: keys are printable ASCII "
                           "without spaces");
        return NGX_CONF_ERROR;
    }

    mcf->flash_key = key;

    return NGX_CONF_OK;
}


/* clockchain_flash_retry_status code ...; */

static char *
ngx_http_clockchain_retry_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_clockchain_main_conf_t  *mcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value;
    ngx_uint_t   i, *status;

    if (mcf->flash_retry_status != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    mcf->flash_retry_status = ngx_array_create(cf->pool, cf->args->nelts,
                                               sizeof(ngx_uint_t));
    if (mcf->flash_retry_status == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (cf->args->nelts == 2 && ngx_strcmp(value[i].data, "off") == 0) {
            break;
        }

        n = ngx_atoi(value[i].data, value[i].len);

        if (n < 400 || n > 599) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid status \"%V\": 400 to 599, or "
                               "\"off\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        status = ngx_array_push(mcf->flash_retry_status);
        if (status == NULL) {
            return NGX_CONF_ERROR;
        }

        *status = n;
    }

    return NGX_CONF_OK;
}


/* clockchain_flash_retry_backoff base [max]; */

static char *
ngx_http_clockchain_retry_backoff(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_clockchain_main_conf_t  *mcf = conf;

    ngx_str_t   *value;
    ngx_msec_t   base, max;

    if (mcf->flash_backoff != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    base = ngx_parse_time(&value[1], 0);

    if (base == (ngx_msec_t) NGX_ERROR || base == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid backoff \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    max = 60000;

    if (cf->args->nelts == 3) {
        max = ngx_parse_time(&value[2], 0);

        if (max == (ngx_msec_t) NGX_ERROR || max < base) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid maximum backoff \"%V\": it must be "
                               "at least the base", &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    mcf->flash_backoff = base;
    mcf->flash_backoff_max = ngx_max(max, base);

    return NGX_CONF_OK;
}


/* clockchain_flash_circuit_breaker [failures=N] [pause=time]; */

static char *
ngx_http_clockchain_circuit_breaker(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_clockchain_main_conf_t  *mcf = conf;

    ngx_int_t    n;
    ngx_str_t   *value, s;
    ngx_uint_t   i;
    ngx_msec_t   pause;

    if (mcf->breaker_failures != NGX_CONF_UNSET_UINT
        || mcf->breaker_pause != NGX_CONF_UNSET_MSEC)
    {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "failures=", 9) == 0) {
            n = ngx_atoi(value[i].data + 9, value[i].len - 9);

            if (n < 1) {
                goto invalid;
            }

            mcf->breaker_failures = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "pause=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            pause = ngx_parse_time(&s, 0);

            if (pause == (ngx_msec_t) NGX_ERROR || pause == 0) {
                goto invalid;
            }

            mcf->breaker_pause = pause;
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/* clockchain_job_retention [completed=time] [failed=time]; */

static char *
ngx_http_clockchain_retention(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_clockchain_main_conf_t  *mcf = conf;

    time_t       t, *keep;
    ngx_str_t   *value, s;
    ngx_uint_t   i;

    if (mcf->keep_completed != NGX_CONF_UNSET
        || mcf->keep_failed != NGX_CONF_UNSET)
    {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "completed=", 10) == 0) {
            s.data = value[i].data + 10;
            s.len = value[i].len - 10;
            keep = &mcf->keep_completed;

        } else if (ngx_strncmp(value[i].data, "failed=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;
            keep = &mcf->keep_failed;

        } else {
            goto invalid;
        }

        t = ngx_parse_time(&s, 1);

        if (t == (time_t) NGX_ERROR || t < 1) {
            goto invalid;
        }

        *keep = t;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/* clockchain_service_key key ...; and clockchain_admin_key key ...; */

static char *
ngx_http_clockchain_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_array_t  **keys = (ngx_array_t **) ((char *) conf + cmd->offset);

    char        *rv;
    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        rv = ngx_http_clockchain_add_key(cf, cmd, keys, value[i].data,
                                         value[i].len, NULL, i);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    return NGX_CONF_OK;
}


/* one key a line; blank lines and lines starting with "#" are skipped */

static char *
ngx_http_clockchain_key_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_array_t  **keys = (ngx_array_t **) ((char *) conf + cmd->offset);

    u_char      *p, *last, *start, *end;
    char        *rv;
    ngx_str_t   *value, file, content;
    ngx_uint_t   line, found;

    value = cf->args->elts;
    file = value[1];

    if (ngx_http_clockchain_read_conf_file(cf, &file, &content) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    p = content.data;
    last = p + content.len;
    found = 0;

    for (line = 1; p < last; line++) {
        start = p;

        while (p < last && *p != '\n') {
            p++;
        }

        end = p++;

        while (start < end && (*start == ' ' || *start == '\t')) {
            start++;
        }

        while (end > start
               && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        {
            end--;
        }

        if (start == end || *start == '#') {
            continue;
        }

        rv = ngx_http_clockchain_add_key(cf, cmd, keys, start, end - start,
                                         &file, line);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        found++;
    }

    if (found == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no keys in \"%V\"", &file);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_clockchain_add_key(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_array_t **keys, u_char *data, size_t len, ngx_str_t *where,
    ngx_uint_t n)
{
    size_t      i;
    ngx_str_t  *key;

    /* never echo a key: name its position instead */

    for (i = 0; i < len; i++) {
        if (data[i] < 0x21 || data[i] > 0x7e) {
            break;
        }
    }

    if (len == 0 || len > NGX_HTTP_CLOCKCHAIN_API_KEY_MAX || i < len) {
        if (where) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid key on line %ui of \"%V\": keys are "
                               "1 to %d printable ASCII characters without "
                               "spaces", n, where,
                               NGX_HTTP_CLOCKCHAIN_API_KEY_MAX);

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid key in argument %ui of \"%V\": keys "
                               "are 1 to %d printable ASCII characters "
                               "without spaces", n, &cmd->name,
                               NGX_HTTP_CLOCKCHAIN_API_KEY_MAX);
        }

        return NGX_CONF_ERROR;
    }

    if (*keys == NGX_CONF_UNSET_PTR) {
        *keys = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (*keys == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    key = ngx_array_push(*keys);
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    key->data = ngx_pnalloc(cf->pool, len);
    if (key->data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(key->data, data, len);
    key->len = len;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_clockchain_read_conf_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *content)
{
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_file_info_t  fi;

    if (ngx_conf_full_name(cf->cycle, name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", name);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 1024 * 1024)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\" cannot be read or is larger than 1m",
                           name);
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    content->len = (size_t) ngx_file_size(&fi);
    content->data = ngx_pnalloc(cf->pool, content->len + 1);

    if (content->data == NULL) {
        (void) ngx_close_file(fd);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, content->data, content->len);

    (void) ngx_close_file(fd);

    if (n != (ssize_t) content->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_read_fd_n " \"%V\" failed", name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * clockchain_cors_origins origin ... | * | off;
 * An origin is what a browser sends in Origin: scheme "://" host, and a
 * port if not the scheme's; a path, or a trailing "/", never matches.
 */

static char *
ngx_http_clockchain_cors_origins(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_clockchain_loc_conf_t  *llcf = conf;

    u_char      *p, *last;
    ngx_str_t   *value, *o;
    ngx_uint_t   i;

    if (llcf->cors_origins != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        llcf->cors_origins = NULL;
        return NGX_CONF_OK;
    }

    llcf->cors_origins = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                          sizeof(ngx_str_t));
    if (llcf->cors_origins == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (value[i].len == 1 && value[i].data[0] == '*') {
            if (cf->args->nelts != 2) {
                return "takes \"*\" alone, not among origins";
            }

        } else {
            p = value[i].data;
            last = p + value[i].len;

            if (value[i].len > sizeof("https://") - 1
                && ngx_strncmp(p, "https://", sizeof("https://") - 1) == 0)
            {
                p += sizeof("https://") - 1;

            } else if (value[i].len > sizeof("http://") - 1
                       && ngx_strncmp(p, "http://", sizeof("http://") - 1)
                          == 0)
            {
                p += sizeof("http://") - 1;

            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid origin \"%V\": an origin is "
                                   "\"http://\" or \"https://\" and a host",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            for ( /* void */ ; p < last; p++) {
                if (*p <= ' ' || *p >= 0x7f || *p == '/' || *p == '*'
                    || *p == ',')
                {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "invalid origin \"%V\": no path, "
                                       "wildcard, space or list in an origin",
                                       &value[i]);
                    return NGX_CONF_ERROR;
                }
            }
        }

        o = ngx_array_push(llcf->cors_origins);
        if (o == NULL) {
            return NGX_CONF_ERROR;
        }

        *o = value[i];
    }

    return NGX_CONF_OK;
}


/* CORS headers on every answer of a clockchain location, errors too */

static ngx_int_t
ngx_http_clockchain_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_clockchain_header_filter;

    ngx_http_clockchain_body_filter_init();

#if (NGX_HTTP_CLOCKCHAIN_PLANTED)
    if (ngx_http_clockchain_planted_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }
#endif

    return NGX_OK;
}


static ngx_int_t
ngx_http_clockchain_header_filter(ngx_http_request_t *r)
{
    if (ngx_http_clockchain_cors_headers(r) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


static char *
ngx_http_clockchain_handler_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_clockchain_loc_conf_t   *llcf = conf;

    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_clockchain_main_conf_t  *mcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate";
    }

    /* the entry answers a CORS preflight before the handler sees it */
    clcf->handler = ngx_http_clockchain_entry;
    llcf->handler = (ngx_http_handler_pt) cmd->post;

    if (cmd->offset) {
        /* merge_loc_conf sizes nginx's body buffer to the module's limit */
        llcf->body_core = clcf;
        llcf->body_reader = cmd->offset;
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_clockchain_module);
    mcf->enabled = 1;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_clockchain_init_process(ngx_cycle_t *cycle)
{
    ngx_http_clockchain_main_conf_t  *mcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    /* no random bytes of the parent's: job ids must differ per worker */
    ngx_http_clockchain_random_reset();

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_clockchain_module);

    if (mcf == NULL || !mcf->enabled) {
        return NGX_OK;
    }

    /* counted into a dummy until now: from here on into the zone */
    ngx_http_clockchain_stats = ngx_http_clockchain_shm_stats(mcf->shm_zone);

    if (ngx_http_clockchain_redis_init_process(cycle, &mcf->redis)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_clockchain_commit_init_process(cycle, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_clockchain_events_init_process(cycle, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the long-poll waiters hear the events from now on */
    if (ngx_http_clockchain_wait_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_clockchain_store_seed_init_process(cycle, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_clockchain_agents_init_process(cycle, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (mcf->flash_url.len) {
        return ngx_http_clockchain_runner_init_process(cycle, mcf);
    }

    return NGX_OK;
}


static void
ngx_http_clockchain_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_clockchain_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_clockchain_module);

    if (mcf == NULL || !mcf->enabled) {
        return;
    }

    /* the runner first: its commits go through the redis connection */
    ngx_http_clockchain_runner_exit_process(cycle);
    ngx_http_clockchain_store_seed_exit_process();
    ngx_http_clockchain_agents_exit_process();
    ngx_http_clockchain_wait_exit_process(cycle);
    ngx_http_clockchain_events_exit_process(cycle);
    ngx_http_clockchain_commit_exit_process();
    ngx_http_clockchain_redis_exit_process(cycle);
}


/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_FLASH_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_FLASH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <curl/curl.h>

#include "ngx_http_clockchain_module.h"


typedef struct ngx_http_clockchain_flash_call_s
    ngx_http_clockchain_flash_call_t;

typedef void (*ngx_http_clockchain_flash_done_pt)(
    ngx_http_clockchain_flash_call_t *call);


struct ngx_http_clockchain_flash_call_s {
    CURL                                 *easy;
    struct curl_slist                    *headers;
    char                                 *request;      /* JSON body */

    u_char                               *body;         /* the answer */
    size_t                                len;
    size_t                                cap;

    long                                  status;
    long                                  retry_after;  /* s, -1: none */
    CURLcode                              result;
    char                                  errbuf[CURL_ERROR_SIZE];
    unsigned                              too_large:1;
    unsigned                              no_room:1;     /* flash_buffers */

    ngx_msec_t                            started;
    ngx_http_clockchain_flash_done_pt     done;
    void                                 *data;
};


ngx_int_t ngx_http_clockchain_flash_init(ngx_cycle_t *cycle,
    ngx_http_clockchain_main_conf_t *mcf);
void ngx_http_clockchain_flash_exit(void);
ngx_int_t ngx_http_clockchain_flash_start(
    ngx_http_clockchain_flash_call_t *call, const char *job_id,
    const char *query, size_t query_len, const char *preset);
void ngx_http_clockchain_flash_free(ngx_http_clockchain_flash_call_t *call);
ngx_uint_t ngx_http_clockchain_flash_in_flight(void);
size_t ngx_http_clockchain_flash_buffered(void);


#endif /* _NGX_HTTP_CLOCKCHAIN_FLASH_H_INCLUDED_ */


/*
 * Copyright (C) The Clockchain authors
 */


/*
 * Query parameters as plain data: unescaping, and the check of each kind
 * of value the graph reads take.  Nothing here calls into nginx, so the
 * fuzzer (t/fuzz/fuzz_query.c) links this file on its own; the HTTP side
 * (ngx_http_clockchain_arg*() in request.c) only finds the argument.
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_QUERY_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_QUERY_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>


/* the twelve edge types, NULL-terminated */
extern const char *const  ngx_http_clockchain_edge_types[];


size_t ngx_http_clockchain_query_unescape(unsigned char *dst,
    const unsigned char *src, size_t len);
int ngx_http_clockchain_query_int(const unsigned char *v, size_t len,
    int64_t min, int64_t max, int64_t *n);
int ngx_http_clockchain_query_weight(const unsigned char *v, size_t len);
ssize_t ngx_http_clockchain_query_edge_types(const unsigned char *v,
    size_t len, unsigned char *out);
int ngx_http_clockchain_query_text(const unsigned char *v, size_t len,
    size_t max);
int ngx_http_clockchain_query_one_of(const unsigned char *v, size_t len,
    const char *const *names);


#endif /* _NGX_HTTP_CLOCKCHAIN_QUERY_H_INCLUDED_ */

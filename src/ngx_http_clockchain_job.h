
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * Jobs as plain data: request validation, ids, timestamps and the job
 * object's JSON.  Nothing here calls into nginx, so unit tests and fuzzers
 * link this file on its own.
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_JOB_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_JOB_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* the Redis key schema; bumped whenever stored data changes meaning */
#define NGX_HTTP_CLOCKCHAIN_SCHEMA        "v1"

#define NGX_HTTP_CLOCKCHAIN_ID_LEN        36
#define NGX_HTTP_CLOCKCHAIN_TOKEN_HEX     32   /* a fencing token, in hex */
#define NGX_HTTP_CLOCKCHAIN_TIME_LEN      27   /* 2026-03-06T14:32:18.123456Z */
#define NGX_HTTP_CLOCKCHAIN_QUERY_MIN     3
#define NGX_HTTP_CLOCKCHAIN_QUERY_MAX     500  /* characters, after trimming */
#define NGX_HTTP_CLOCKCHAIN_ERR_LEN       256
#define NGX_HTTP_CLOCKCHAIN_PATH_LEN      512  /* a canonical path, at most */

#define NGX_HTTP_CLOCKCHAIN_PENDING       0
#define NGX_HTTP_CLOCKCHAIN_PROCESSING    1
#define NGX_HTTP_CLOCKCHAIN_COMPLETED     2
#define NGX_HTTP_CLOCKCHAIN_FAILED        3
#define NGX_HTTP_CLOCKCHAIN_UNKNOWN       4

#define ngx_http_clockchain_is_terminal(s)                                    \
    ((s) == NGX_HTTP_CLOCKCHAIN_COMPLETED || (s) == NGX_HTTP_CLOCKCHAIN_FAILED)


/* one validated entry of POST /api/generate or /api/bulk-generate */
typedef struct {
    const char       *query;          /* trimmed, NUL-terminated */
    size_t            query_len;
    const char       *preset;         /* a static string */
    const char       *visibility;     /* a static string */
} ngx_http_clockchain_job_req_t;


/* the six keys of the job object; strings need not be NUL-terminated */
typedef struct {
    const char       *id;             /* NGX_HTTP_CLOCKCHAIN_ID_LEN bytes */
    unsigned          status;
    const char       *path;           /* NULL for null */
    size_t            path_len;
    const char       *error;          /* NULL for null */
    size_t            error_len;
    const char       *created_at;     /* NGX_HTTP_CLOCKCHAIN_TIME_LEN */
    const char       *completed_at;   /* NULL for null */

    /*
     * path and error are in their JSON form already, escaped and without
     * quotes (ngx_http_clockchain_json_escape()), as the zone keeps them:
     * the job object copies them verbatim
     */
    unsigned          verbatim;
} ngx_http_clockchain_job_t;


typedef void *(*ngx_http_clockchain_alloc_pt)(void *ctx, size_t size);


/*
 * Both parsers return the number of entries (>= 1) and fill *reqs with an
 * array allocated by alloc(ctx, ...); on a bad body they return 0 and write
 * a message naming the field into err; -1 means allocation failed.
 */
int ngx_http_clockchain_parse_generate(const char *body, size_t len,
    ngx_http_clockchain_job_req_t **reqs, ngx_http_clockchain_alloc_pt alloc,
    void *ctx, char *err, size_t errlen);
int ngx_http_clockchain_parse_bulk(const char *body, size_t len, size_t max,
    ngx_http_clockchain_job_req_t **reqs, ngx_http_clockchain_alloc_pt alloc,
    void *ctx, char *err, size_t errlen);

int ngx_http_clockchain_parse_publish(const char *body, size_t len,
    const char **visibility, char *err, size_t errlen);
int ngx_http_clockchain_parse_visibility(const char *body, size_t len,
    const char **visibility, char *user, size_t usermax, size_t *userlen,
    char *err, size_t errlen);

int ngx_http_clockchain_valid_id(const char *id, size_t len);
int ngx_http_clockchain_valid_path(const char *path, size_t len);
size_t ngx_http_clockchain_canonical_path(const char *path, size_t len,
    char *out);
int ngx_http_clockchain_uuid4(char *out);
int ngx_http_clockchain_token(char *out);
void ngx_http_clockchain_random_reset(void);
void ngx_http_clockchain_iso_time(char *out, int64_t sec, long usec);
void ngx_http_clockchain_iso_now(char *out);
int64_t ngx_http_clockchain_iso_parse(const char *s);

int64_t ngx_http_clockchain_job_expire(const ngx_http_clockchain_job_t *job,
    int64_t keep_completed, int64_t keep_failed);

const char *ngx_http_clockchain_status_name(unsigned status);
unsigned ngx_http_clockchain_status_parse(const char *s, size_t len);

size_t ngx_http_clockchain_json_escape_len(const char *s, size_t len);
char *ngx_http_clockchain_json_escape(char *dst, const char *s, size_t len);
size_t ngx_http_clockchain_json_string_len(const char *s, size_t len);
char *ngx_http_clockchain_json_string(char *dst, const char *s, size_t len);

size_t ngx_http_clockchain_job_json_len(const ngx_http_clockchain_job_t *job);
char *ngx_http_clockchain_job_json(char *dst,
    const ngx_http_clockchain_job_t *job);


#endif /* _NGX_HTTP_CLOCKCHAIN_JOB_H_INCLUDED_ */

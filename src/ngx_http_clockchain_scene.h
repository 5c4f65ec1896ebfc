
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * Flash's scene as plain data: the canonical path, the graph node and the
 * job's error text for a Flash HTTP error.  Nothing here calls into nginx
 * (only libc, jansson and utf8proc), so unit tests and fuzzers link this
 * file on its own.
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_SCENE_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_SCENE_H_INCLUDED_


#include <stddef.h>

#include <jansson.h>


#define NGX_HTTP_CLOCKCHAIN_SEGMENT_MAX   100   /* bytes per path segment */
#define NGX_HTTP_CLOCKCHAIN_PATH_MAX      512   /* a whole path, with NUL */
#define NGX_HTTP_CLOCKCHAIN_TEXT_MAX      2000  /* bytes of free text */
#define NGX_HTTP_CLOCKCHAIN_TAGS_MAX      50
#define NGX_HTTP_CLOCKCHAIN_TAG_LEN       100   /* bytes */
#define NGX_HTTP_CLOCKCHAIN_FIGURES_MAX   50
#define NGX_HTTP_CLOCKCHAIN_FIGURE_LEN    200   /* bytes */
#define NGX_HTTP_CLOCKCHAIN_ONE_LINER     200   /* code points */
#define NGX_HTTP_CLOCKCHAIN_FLASH_BODY    500   /* bytes quoted in errors */

/* search: a word's first code points kept, and the words a node has */
#define NGX_HTTP_CLOCKCHAIN_WORD_MAX      12    /* code points */
#define NGX_HTTP_CLOCKCHAIN_WORD_BYTES    (NGX_HTTP_CLOCKCHAIN_WORD_MAX * 4)
#define NGX_HTTP_CLOCKCHAIN_WORDS_MAX     48

/* |year| beyond this would overflow sort_key (year * 10^8 + ...) */
#define NGX_HTTP_CLOCKCHAIN_YEAR_MAX      90000000000LL


/* what the job knows about itself; strings are NUL-terminated */
typedef struct {
    const char  *job_id;        /* 36-char uuid */
    const char  *query;         /* the job's query text */
    const char  *visibility;    /* "public" | "private" */
    const char  *created_by;    /* X-User-Id or "system" */
    const char  *created_at;    /* 2026-03-06T14:32:18.123456Z */
} ngx_http_clockchain_scene_in_t;


/*
 * Turns Flash's 200 response body (a JSON scene) into the canonical path
 * and the graph node.  Returns 1 and sets *path and *node (both malloc'd,
 * NUL-terminated, caller frees) on success; returns 0 and writes a clear
 * message into err when the job must fail (body not JSON, not a JSON object,
 * year missing or not an integer, blocked provider); -1 on allocation failure.
 */
int ngx_http_clockchain_scene_to_node(const char *body, size_t len,
    const ngx_http_clockchain_scene_in_t *in, char **path, char **node,
    char *err, size_t errlen);

/*
 * Slugifies into out (NUL-terminated, at most outlen - 1 bytes, never ending
 * in '-'); returns the length, which may be 0 (the caller turns that into
 * "unknown").  Invalid UTF-8 bytes are dropped.
 */
size_t ngx_http_clockchain_slugify(const char *in, size_t len, char *out,
    size_t outlen);

/*
 * The words of a UTF-8 text as search sees them: casefolded, decomposed
 * for compatibility, marks stripped ("Zürich" is "zurich", "ﬁne" is
 * "fine"; a few letters that do not decompose are folded too: "ł" is "l"),
 * then each run of letters and digits; cut to its first
 * NGX_HTTP_CLOCKCHAIN_WORD_MAX code points; a word of one code point is
 * left out.  fn gets each word (not NUL-terminated) in order; a non-zero
 * return stops the walk and is returned; else 0.  Invalid bytes separate
 * words.  The same for the node's text and the query, so they meet.
 */
typedef int (*ngx_http_clockchain_word_pt)(const char *word, size_t len,
    void *data);

int ngx_http_clockchain_words(const char *s, size_t len,
    ngx_http_clockchain_word_pt fn, void *data);

/*
 * A node's search words, [[word, class], ...] (class 0 name, 1 one-liner,
 * 2 tag or figure), as complete.lua and seed.lua index them; a new
 * reference, NULL when out of memory.
 */
json_t *ngx_http_clockchain_scene_search(json_t *node);

/*
 * Copies at most max bytes of s into out (room bytes at most, no NUL),
 * never splitting a UTF-8 sequence; invalid bytes and NULs become U+FFFD
 * (so room = 3 * max takes all of it).  Returns the length written.
 */
size_t ngx_http_clockchain_utf8_clean(char *out, size_t room, const char *s,
    size_t len, size_t max);

/*
 * "Flash API error: <status> <reason phrase> | response: <first 500 bytes
 * of body>", valid UTF-8 (cut on a sequence boundary, invalid bytes and NULs
 * replaced by U+FFFD), NUL-terminated in out; returns the length written.
 */
size_t ngx_http_clockchain_flash_error(long status, const char *body,
    size_t len, char *out, size_t outlen);


#endif /* _NGX_HTTP_CLOCKCHAIN_SCENE_H_INCLUDED_ */

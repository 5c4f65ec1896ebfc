
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * A seeds file (clockchain_seed_file) as plain data: the original
 * service's data/seeds.jsonl, one TDF record a line, turned into the
 * nodes and edges seed.lua writes.  Nothing here calls into nginx: the
 * directive reads the file and hands it here, and t/fuzz/fuzz_seed.c
 * links this file on its own.
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_SEED_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_SEED_H_INCLUDED_


#include <stddef.h>

#include <jansson.h>


#define NGX_HTTP_CLOCKCHAIN_SEED_NODES   1000   /* records a file holds */
#define NGX_HTTP_CLOCKCHAIN_SEED_EDGES   64     /* edges a record holds */
#define NGX_HTTP_CLOCKCHAIN_RESTORE_NODES  1000   /* records of a chunk */
#define NGX_HTTP_CLOCKCHAIN_RESTORE_EDGES  10000  /* edges of a record */
#define NGX_HTTP_CLOCKCHAIN_RESTORE_TEXT   65536  /* bytes of a field */


/*
 * One line: 0 for a blank one; 1 with *node (its canonical "path",
 * "sort_key" and search words as "search", as the runner's node has) and
 * *edges (an array, each with both ends canonical), new references; -1
 * with a message in err for a line that is not a record this module can
 * store as the original would.
 */
int ngx_http_clockchain_seed_line(const char *line, size_t len,
    json_t **node, json_t **edges, char *err, size_t errlen);

/*
 * The same for a record already parsed (rec, borrowed): 1 or -1 as above.
 * POST /api/ingest/tdf takes its records so (ngx_http_clockchain_ingest.c).
 */
int ngx_http_clockchain_seed_record(json_t *rec, json_t **node,
    json_t **edges, char *err, size_t errlen);

/*
 * A whole file: seed.lua's argument, {"nodes":[...],"edges":[...]}
 * (malloc'd, NUL-terminated), with the counts; NULL with err and the line
 * (*line, 0 when the file as a whole is wrong) otherwise.  Every edge must
 * end at a node of the file, as the original's foreign keys require; an
 * id given twice is refused.
 */
char *ngx_http_clockchain_seed_parse(const char *data, size_t len,
    size_t *nodes, size_t *edges, size_t *line, char *err, size_t errlen);

/*
 * A proposal or a challenge's competing moment (the original's
 * ProposeRequest, already parsed; what names it in errors, "body" or
 * "competing_moment"): 1 with *node and *edges as seed_line() gives them,
 * the node "proposed" by agent; -1 with a message in err.
 */
int ngx_http_clockchain_seed_propose(json_t *req, const char *agent,
    const char *what, json_t **node, json_t **edges, char *err,
    size_t errlen);


/*
 * A chunk of a whole-graph export (POST /api/restore): as a seeds file,
 * each line read back whole (ngx_http_clockchain_seed.c says what more a
 * restore reads), restore.lua's argument; an edge may end at a node of
 * another chunk.
 */
char *ngx_http_clockchain_restore_parse(const char *data, size_t len,
    size_t *nodes, size_t *edges, size_t *line, char *err, size_t errlen);


#endif /* _NGX_HTTP_CLOCKCHAIN_SEED_H_INCLUDED_ */

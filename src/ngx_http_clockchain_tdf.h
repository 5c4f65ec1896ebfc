
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * A graph node as the original service shows it, and as a record of the
 * Timepoint Data Format (timepointai/timepoint-tdf): the columns it has
 * with their defaults, its content hash, the record and the record's hash,
 * both SHA-256 of the JSON Python's json.dumps() writes.  Nothing here
 * calls into nginx: unit-tested and fuzzed on its own.
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_TDF_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_TDF_H_INCLUDED_


#include <stddef.h>

#include <jansson.h>


#define NGX_HTTP_CLOCKCHAIN_SHA256_HEX  64


/* json.dumps(v, sort_keys=True[, separators=(",", ":")]); malloc'd */
char *ngx_http_clockchain_py_dumps(json_t *v, int compact, size_t *len);

void ngx_http_clockchain_sha256_hex(const void *data, size_t len,
    char *hex);

/* the node's own tdf_hash (the original's compute_tdf_hash()) */
int ngx_http_clockchain_node_hash(json_t *node, char *hex);

/* every column of the original's node, a default for each that is absent */
int ngx_http_clockchain_node_columns(json_t *node);

/* month as its number, month_name as the name: the API's shape */
int ngx_http_clockchain_node_month(json_t *node);

/* the TDF record of a node that has its columns; a new reference */
json_t *ngx_http_clockchain_tdf_record(json_t *node);

/*
 * a line of a whole-graph export (no newline): the node, as its hash
 * holds it with the types a read gives, at path, with its edges (objects
 * as stored); malloc'd
 */
char *ngx_http_clockchain_export_line(json_t *node, const char *path,
    json_t *edges, size_t *len);


#endif /* _NGX_HTTP_CLOCKCHAIN_TDF_H_INCLUDED_ */

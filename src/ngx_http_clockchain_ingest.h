
/*
 * Copyright (C) The Clockchain authors
 */


/*
 * A writer's request as plain data: the bodies of POST /api/index,
 * /api/ingest/subgraph and /api/ingest/tdf checked and turned into the
 * nodes and edges ingest.lua writes, each node as the runner's node is
 * (its canonical "path", "sort_key" and search words as "search").
 * Nothing here calls into nginx: t/fuzz/fuzz_ingest.c links this file
 * on its own.
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_INGEST_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_INGEST_H_INCLUDED_


#include <stddef.h>

#include "ngx_http_clockchain_job.h"


#define NGX_HTTP_CLOCKCHAIN_INGEST_INDEX     0   /* POST /api/index */
#define NGX_HTTP_CLOCKCHAIN_INGEST_SUBGRAPH  1   /* .../ingest/subgraph */
#define NGX_HTTP_CLOCKCHAIN_INGEST_TDF       2   /* .../ingest/tdf */

/*
 * One request's most.  Its nodes are one Lua call, which holds Redis
 * (every nginx's reads too) for 3 to 8 ms a node with its auto-edges,
 * more as the graph grows (t/bench, measure 10): 100 nodes keep a
 * request well under the command timeout, a reply that comes too late
 * being one the client cannot tell written or not.  An edge named costs
 * a few commands.
 */
#define NGX_HTTP_CLOCKCHAIN_INGEST_NODES     100
#define NGX_HTTP_CLOCKCHAIN_INGEST_EDGES     1000

/* the agent's name recorded as proposed_by, at most */
#define NGX_HTTP_CLOCKCHAIN_AGENT_MAX        128


typedef struct {
    size_t   nodes;
    size_t   edges;
    /* POST /api/index: the node's canonical path, NUL-terminated */
    char     path[NGX_HTTP_CLOCKCHAIN_PATH_LEN + 1];
} ngx_http_clockchain_ingest_t;


/*
 * The body of kind (..._INGEST_INDEX ...), agent the writer's name
 * (proposed_by): ingest.lua's argument {"nodes":[...],"edges":[...]}
 * (malloc'd, NUL-terminated), with the counts in *out; NULL with a message
 * naming the entry ("nodes[3].id: ...") in err for a body this module
 * does not store, or when out of memory (err says so).
 */
char *ngx_http_clockchain_ingest_parse(unsigned kind, const char *body,
    size_t len, const char *agent, ngx_http_clockchain_ingest_t *out,
    char *err, size_t errlen);


#endif /* _NGX_HTTP_CLOCKCHAIN_INGEST_H_INCLUDED_ */

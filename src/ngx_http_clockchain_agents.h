
/*
 * Copyright (C) The Clockchain authors
 */


#ifndef _NGX_HTTP_CLOCKCHAIN_AGENTS_H_INCLUDED_
#define _NGX_HTTP_CLOCKCHAIN_AGENTS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>

#include "ngx_http_clockchain_module.h"


typedef void (*ngx_http_clockchain_writer_done_pt)(ngx_http_request_t *r);


/*
 * The writer of a write route (the original's require_write_auth, and
 * require_admin_auth with need ..._AGENT_ADMIN), after the service key was
 * checked.  Without clockchain_admin_token_file and
 * clockchain_writer_tokens_file, every writer is "system" (the original's
 * legacy mode).  Else "Authorization: Bearer <token>" names an active
 * agent with the permission: missing or malformed, unknown or revoked is
 * 401 (WWW-Authenticate: Bearer), without the permission 403.
 *
 * NGX_DECLINED (as ngx_http_clockchain_auth()): the writer is known now, in ctx->agent (ngx_http_clockchain_ctx()
 * of the request must exist).  NGX_DONE: Redis is asked; done(r) is called
 * with ctx->agent set, or the request is answered and finalized (a refusal,
 * Redis unavailable): from a content handler, count the request
 * (r->main->count++) and return NGX_DONE, as for any Redis call; from a
 * body handler, return.  Else: the status to finalize with, the answer
 * already sent.
 */
ngx_int_t ngx_http_clockchain_writer_auth(ngx_http_request_t *r,
    ngx_uint_t need, ngx_http_clockchain_writer_done_pt done);

/*
 * What a writing script checks in its own step, so that a token revoked
 * after writer_auth() passed it (or while this worker's cache trusted it)
 * writes nothing: the token's SHA-256 hex, or "" when there is no record
 * to check (no writer tokens; a token of the directives' files not yet
 * written into Redis).  The script answers the error REVOKED when the
 * record agent:tok:<hash> is missing or not active.
 */
void ngx_http_clockchain_writer_token(ngx_http_request_t *r, ngx_str_t *hash);

/*
 * A script's REVOKED: the 401 {"detail": "Token revoked"} with
 * WWW-Authenticate: Bearer, sent, and the status to finalize with;
 * NGX_DECLINED for any other reply.
 */
ngx_int_t ngx_http_clockchain_writer_revoked(ngx_http_request_t *r,
    redisReply *reply);

ngx_int_t ngx_http_clockchain_agents_init_process(ngx_cycle_t *cycle,
    ngx_http_clockchain_main_conf_t *mcf);
void ngx_http_clockchain_agents_exit_process(void);


#endif /* _NGX_HTTP_CLOCKCHAIN_AGENTS_H_INCLUDED_ */


/*
 * Copyright (C) The Clockchain authors
 */


/*
 * Planted bugs: the chaos campaign's proof that its checker can fail
 * (t/chaos/, docs/hardening.md, "Chaos").  Compiled only into a module
 * built with -DNGX_HTTP_CLOCKCHAIN_PLANTED=1 ("./build.sh chaos-planted"),
 * never into a real one; there, CLOCKCHAIN_PLANTED in nginx's environment
 * names the bug switched on:
 *
 *   fence  complete.lua writes its outcome without the fence: a runner
 *          whose lease expired (stopped past it) completes a job that
 *          another runner took over, and the job finishes twice
 *   epoch  a resubscription does not start a new epoch: a zone entry read
 *          before the subscription broke stays trusted, and a job that
 *          finished meanwhile keeps its old answer
 *   ack    a POST answers 200 whatever Redis answered, and without the
 *          replicas: a job that Redis refused or never got is lost
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_redis.h"
#include "ngx_http_clockchain_redis_private.h"


#if (NGX_HTTP_CLOCKCHAIN_PLANTED)

ngx_uint_t  ngx_http_clockchain_planted;


ngx_int_t
ngx_http_clockchain_planted_init(ngx_conf_t *cf)
{
    char         *name, *script, *fence, *then, *s;
    size_t        len;
    static char  *unfenced;

    /* in the master, before nginx narrows the workers' environment */
    name = getenv("CLOCKCHAIN_PLANTED");

    ngx_http_clockchain_planted = 0;

    if (name == NULL || *name == '\0') {
        return NGX_OK;
    }

    if (ngx_strcmp(name, "fence") == 0) {
        ngx_http_clockchain_planted = NGX_HTTP_CLOCKCHAIN_BUG_FENCE;

    } else if (ngx_strcmp(name, "epoch") == 0) {
        ngx_http_clockchain_planted = NGX_HTTP_CLOCKCHAIN_BUG_EPOCH;

    } else if (ngx_strcmp(name, "ack") == 0) {
        ngx_http_clockchain_planted = NGX_HTTP_CLOCKCHAIN_BUG_ACK;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "clockchain: unknown planted bug \"%s\"", name);
        return NGX_ERROR;
    }

    ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                       "clockchain: PLANTED BUG \"%s\" is on: this module "
                       "is for the chaos campaign only", name);

    if (ngx_http_clockchain_planted != NGX_HTTP_CLOCKCHAIN_BUG_FENCE
        || unfenced != NULL)
    {
        if (unfenced) {
            ngx_http_clockchain_scripts[NGX_HTTP_CLOCKCHAIN_SCRIPT_COMPLETE]
                = unfenced;
        }

        return NGX_OK;
    }

    /* the fence's condition made false: "if false and (...)\nthen" */

    script = (char *)
             ngx_http_clockchain_scripts[NGX_HTTP_CLOCKCHAIN_SCRIPT_COMPLETE];
    fence = ngx_strstr(script, "if redis.call('HGET', KEYS[1], 'token')");
    then = fence ? ngx_strstr(fence, "\nthen") : NULL;

    if (then == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "clockchain: planted bug \"fence\": "
                           "complete.lua has no fence to remove");
        return NGX_ERROR;
    }

    len = ngx_strlen(script);
    unfenced = malloc(len + sizeof("false and ()"));

    if (unfenced == NULL) {
        return NGX_ERROR;
    }

    s = (char *) ngx_cpymem(unfenced, script, fence + 3 - script);
    s = (char *) ngx_cpymem(s, "false and (", sizeof("false and (") - 1);
    s = (char *) ngx_cpymem(s, fence + 3, then - (fence + 3));
    *s++ = ')';
    ngx_memcpy(s, then, len - (then - script) + 1);

    ngx_http_clockchain_scripts[NGX_HTTP_CLOCKCHAIN_SCRIPT_COMPLETE]
        = unfenced;

    return NGX_OK;
}

#endif


/*
 * Copyright (C) The Clockchain authors
 */


/*
 * The clockchain_redis directive: where Redis is (an address, a unix
 * socket, or Sentinels that name the master), and how to talk to it.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_clockchain_module.h"
#include "ngx_http_clockchain_redis_conf.h"


static char *ngx_http_clockchain_hostport(ngx_conf_t *cf, ngx_str_t *url,
    ngx_http_clockchain_addr_t *addr);


void
ngx_http_clockchain_redis_conf_create(ngx_http_clockchain_redis_conf_t *rcf)
{
    /*
     * set by ngx_pcalloc() of the main conf:
     *
     *     rcf->addr = { 0, NULL };
     *     rcf->host = NULL;
     *     rcf->unix_path = NULL;
     *     rcf->password = { 0, NULL };
     *     rcf->sentinel_password = { 0, NULL };
     *     rcf->prefix = { 0, NULL };
     */

    rcf->port = NGX_CONF_UNSET;
    rcf->db = NGX_CONF_UNSET;
    rcf->timeout = NGX_CONF_UNSET_MSEC;
}


void
ngx_http_clockchain_redis_conf_init(ngx_http_clockchain_redis_conf_t *rcf)
{
    ngx_conf_init_value(rcf->db, 0);
    ngx_conf_init_msec_value(rcf->timeout, 5000);

    if (rcf->prefix.data == NULL) {
        ngx_str_set(&rcf->prefix, "clockchain:");
    }
}


/*
 * clockchain_redis address [db=N] [password_file=FILE] [prefix=STR]
 *                  [timeout=TIME];
 */

char *
ngx_http_clockchain_redis_conf_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    u_char                            *p, *last, *comma;
    ngx_str_t                         *value, s, file, content;
    ngx_int_t                          n;
    ngx_uint_t                         i;
    ngx_http_clockchain_addr_t         addr, *sentinel;
    ngx_http_clockchain_redis_conf_t  *rcf;

    /* the conf is the main conf: the offset of its redis part */
    rcf = (ngx_http_clockchain_redis_conf_t *) ((char *) conf + cmd->offset);

    if (rcf->addr.len) {
        return "is duplicate";
    }

    value = cf->args->elts;
    rcf->addr = value[1];

    if (ngx_strncmp(value[1].data, "sentinel=", 9) == 0) {

        /* sentinel=host:port[,host:port...] master=name */

        rcf->sentinels = ngx_array_create(cf->pool, 3,
                                          sizeof(ngx_http_clockchain_addr_t));
        if (rcf->sentinels == NULL) {
            return NGX_CONF_ERROR;
        }

        p = value[1].data + 9;
        last = value[1].data + value[1].len;

        while (p < last) {
            comma = ngx_strlchr(p, last, ',');

            if (comma == NULL) {
                comma = last;
            }

            s.data = p;
            s.len = comma - p;

            if (ngx_http_clockchain_hostport(cf, &s, &addr) != NGX_CONF_OK) {
                return NGX_CONF_ERROR;
            }

            sentinel = ngx_array_push(rcf->sentinels);
            if (sentinel == NULL) {
                return NGX_CONF_ERROR;
            }

            *sentinel = addr;
            p = comma + 1;
        }

        if (rcf->sentinels->nelts == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid sentinel list \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }

    } else if (ngx_strncmp(value[1].data, "unix:", 5) == 0) {
        s.data = value[1].data + 5;
        s.len = value[1].len - 5;

        if (s.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid redis address \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }

        if (ngx_conf_full_name(cf->cycle, &s, 0) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        /* hiredis would cut it to sun_path silently, and connect elsewhere */

        if (s.len >= sizeof(((struct sockaddr_un *) 0)->sun_path)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid redis address \"%V\": the socket's "
                               "path is at most %uz bytes", &value[1],
                               sizeof(((struct sockaddr_un *) 0)->sun_path)
                               - 1);
            return NGX_CONF_ERROR;
        }

        rcf->unix_path = ngx_pnalloc(cf->pool, s.len + 1);
        if (rcf->unix_path == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_cpystrn(rcf->unix_path, s.data, s.len + 1);

    } else {
        if (ngx_http_clockchain_hostport(cf, &value[1], &addr)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        rcf->host = addr.host;
        rcf->port = addr.port;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "master=", 7) == 0
            && rcf->sentinels)
        {
            rcf->sentinel_master.data = value[i].data + 7;
            rcf->sentinel_master.len = value[i].len - 7;

            if (rcf->sentinel_master.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "wait=", 5) == 0) {
            n = ngx_atoi(value[i].data + 5, value[i].len - 5);

            if (n == NGX_ERROR || n > 100) {
                goto invalid;
            }

            rcf->wait = n;
            continue;
        }

        if (ngx_strcmp(value[i].data, "waitaof=on") == 0) {
            rcf->waitaof = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "waitaof=off") == 0) {
            rcf->waitaof = 0;
            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            n = ngx_atoi(value[i].data + 3, value[i].len - 3);

            if (n == NGX_ERROR || n > 65535) {
                goto invalid;
            }

            rcf->db = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            rcf->timeout = ngx_parse_time(&s, 0);

            if (rcf->timeout == (ngx_msec_t) NGX_ERROR
                || rcf->timeout == 0)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            s.data = value[i].data + 7;
            s.len = value[i].len - 7;

            for (p = s.data; p < s.data + s.len; p++) {
                if (*p <= 0x20 || *p >= 0x7f || *p == '{' || *p == '}') {
                    goto invalid;
                }
            }

            /* the runner and events build keys in fixed buffers */

            if (s.len > NGX_HTTP_CLOCKCHAIN_PREFIX_MAX) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid parameter \"%V\": a prefix is "
                                   "at most "
                                   ngx_value(NGX_HTTP_CLOCKCHAIN_PREFIX_MAX)
                                   " bytes", &value[i]);
                return NGX_CONF_ERROR;
            }

            rcf->prefix = s;
            continue;
        }

        if (ngx_strncmp(value[i].data, "password_file=", 14) == 0
            || (ngx_strncmp(value[i].data, "sentinel_password_file=", 23)
                == 0 && rcf->sentinels))
        {
            /* Sentinels may have a password of their own (requirepass) */
            n = (value[i].data[0] == 's') ? 23 : 14;

            file.data = value[i].data + n;
            file.len = value[i].len - n;

            if (ngx_http_clockchain_read_conf_file(cf, &file, &content)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            while (content.len
                   && (content.data[content.len - 1] == '\n'
                       || content.data[content.len - 1] == '\r'))
            {
                content.len--;
            }

            if (content.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "redis password file \"%V\" is empty",
                                   &file);
                return NGX_CONF_ERROR;
            }

            if (n == 23) {
                rcf->sentinel_password = content;

            } else {
                rcf->password = content;
            }

            continue;
        }

        goto invalid;
    }

    if (rcf->sentinels && rcf->sentinel_master.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sentinel=\" needs \"master=\" naming the "
                           "monitored master");
        return NGX_CONF_ERROR;
    }

    if (rcf->waitaof && rcf->wait == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"waitaof=on\" needs \"wait=\" with the number "
                           "of replicas whose disks must have each write");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * host:port, resolved here, once: hiredis would resolve with a blocking
 * call inside the worker.
 */

static char *
ngx_http_clockchain_hostport(ngx_conf_t *cf, ngx_str_t *url,
    ngx_http_clockchain_addr_t *addr)
{
    size_t     len;
    ngx_url_t  u;
    u_char     text[NGX_SOCKADDR_STRLEN];

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *url;
    u.default_port = 6379;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid redis address \"%V\"%s%s", url,
                           u.err ? ": " : "", u.err ? u.err : "");
        return NGX_CONF_ERROR;
    }

    if (u.naddrs == 0 || u.uri.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid redis address \"%V\"", url);
        return NGX_CONF_ERROR;
    }

    len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, text,
                        NGX_SOCKADDR_STRLEN, 0);

    addr->host = ngx_pnalloc(cf->pool, len + 1);
    if (addr->host == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_cpystrn(addr->host, text, len + 1);
    addr->port = u.port;

    return NGX_CONF_OK;
}

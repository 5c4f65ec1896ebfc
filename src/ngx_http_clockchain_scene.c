
/*
 * Copyright (C) The Clockchain authors
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdarg.h>
#include <stdint.h>

#include <jansson.h>
#include <utf8proc.h>

#include "ngx_http_clockchain_scene.h"


#define NGX_HTTP_CLOCKCHAIN_DECOMPOSE_MAX  32   /* U+FDFA gives 18 */
#define NGX_HTTP_CLOCKCHAIN_PROVIDER_LEN   200  /* bytes */
#define NGX_HTTP_CLOCKCHAIN_SCENE_ID_LEN   255  /* bytes */


typedef struct {
    const char       *data;
    size_t            len;
} ngx_http_clockchain_text_t;


typedef struct {
    json_t           *scene;

    json_int_t        year;
    int               month;
    int               day;
    int               hhmm;

    char              country[NGX_HTTP_CLOCKCHAIN_SEGMENT_MAX + 1];
    char              region[NGX_HTTP_CLOCKCHAIN_SEGMENT_MAX + 1];
    char              city[NGX_HTTP_CLOCKCHAIN_SEGMENT_MAX + 1];
    char              slug[NGX_HTTP_CLOCKCHAIN_SEGMENT_MAX + 1];
    char              path[NGX_HTTP_CLOCKCHAIN_PATH_MAX];

    char              query[NGX_HTTP_CLOCKCHAIN_TEXT_MAX];
    size_t            query_len;

    char              provider[NGX_HTTP_CLOCKCHAIN_PROVIDER_LEN];
    size_t            provider_len;
    unsigned          blocked:1;

    char              id[NGX_HTTP_CLOCKCHAIN_SCENE_ID_LEN];
    size_t            id_len;
} ngx_http_clockchain_scene_t;


typedef struct {
    const char       *name;
    int               hhmm;
} ngx_http_clockchain_time_name_t;


typedef struct {
    long              status;
    const char       *reason;
} ngx_http_clockchain_reason_t;


/* the node's search words being gathered: [[word, field class], ...] */
typedef struct {
    json_t           *words;
    int               field;     /* 0 name, 1 one_liner, 2 tags, figures */
} ngx_http_clockchain_search_t;


static void ngx_http_clockchain_scene_error(char *err, size_t errlen,
    const char *fmt, ...);
static const char *ngx_http_clockchain_type_name(json_t *v);
static size_t ngx_http_clockchain_utf8_cut(const char *s, size_t len,
    size_t max);
static int ngx_http_clockchain_is_space(utf8proc_int32_t cp);
static void ngx_http_clockchain_trim(ngx_http_clockchain_text_t *t);
static int ngx_http_clockchain_get_text(json_t *obj, const char *key,
    ngx_http_clockchain_text_t *t);
static size_t ngx_http_clockchain_lower(const char *s, size_t len, char *out,
    size_t max);
static void ngx_http_clockchain_scene_query(ngx_http_clockchain_scene_t *ctx,
    const char *query);
static void ngx_http_clockchain_scene_provider(
    ngx_http_clockchain_scene_t *ctx);
static int ngx_http_clockchain_scene_year(ngx_http_clockchain_scene_t *ctx,
    char *err, size_t errlen);
static int ngx_http_clockchain_scene_number(json_t *v, int max);
static int ngx_http_clockchain_scene_month(json_t *v);
static int ngx_http_clockchain_scene_time(json_t *v);
static void ngx_http_clockchain_segment(const char *s, size_t len, char *out);
static void ngx_http_clockchain_scene_location(
    ngx_http_clockchain_scene_t *ctx);
static void ngx_http_clockchain_scene_slug(ngx_http_clockchain_scene_t *ctx);
static void ngx_http_clockchain_scene_id(ngx_http_clockchain_scene_t *ctx);
static int ngx_http_clockchain_scene_node(ngx_http_clockchain_scene_t *ctx,
    const ngx_http_clockchain_scene_in_t *in, char **node);
static json_t *ngx_http_clockchain_scene_name(
    ngx_http_clockchain_scene_t *ctx);
static json_t *ngx_http_clockchain_scene_tags(json_t *scene);
static json_t *ngx_http_clockchain_scene_figures(json_t *scene);
static json_t *ngx_http_clockchain_scene_one_liner(
    ngx_http_clockchain_scene_t *ctx);
static int ngx_http_clockchain_search_word(const char *word, size_t len,
    void *data);
static json_t *ngx_http_clockchain_json_text(json_t *obj, const char *key);
static json_t *ngx_http_clockchain_json_url(json_t *obj, const char *key,
    int no_data);
static json_t *ngx_http_clockchain_json_clean(const char *s,
    const char *dflt);


static const char *const  ngx_http_clockchain_months[] = {
    "january", "february", "march", "april", "may", "june", "july",
    "august", "september", "october", "november", "december"
};


static const ngx_http_clockchain_time_name_t  ngx_http_clockchain_times[] = {
    { "dawn", 600 },
    { "early morning", 700 },
    { "morning", 900 },
    { "late morning", 1100 },
    { "midday", 1200 },
    { "noon", 1200 },
    { "early afternoon", 1300 },
    { "afternoon", 1400 },
    { "late afternoon", 1600 },
    { "evening", 1800 },
    { "dusk", 1900 },
    { "night", 2100 },
    { "late night", 2300 },
    { "midnight", 0 },
    { NULL, 0 }
};


static const ngx_http_clockchain_reason_t  ngx_http_clockchain_reasons[] = {
    { 300, "Multiple Choices" },
    { 301, "Moved Permanently" },
    { 302, "Found" },
    { 303, "See Other" },
    { 304, "Not Modified" },
    { 307, "Temporary Redirect" },
    { 308, "Permanent Redirect" },
    { 400, "Bad Request" },
    { 401, "Unauthorized" },
    { 402, "Payment Required" },
    { 403, "Forbidden" },
    { 404, "Not Found" },
    { 405, "Method Not Allowed" },
    { 406, "Not Acceptable" },
    { 408, "Request Timeout" },
    { 409, "Conflict" },
    { 410, "Gone" },
    { 411, "Length Required" },
    { 413, "Request Entity Too Large" },
    { 414, "Request-URI Too Long" },
    { 415, "Unsupported Media Type" },
    { 422, "Unprocessable Entity" },
    { 425, "Too Early" },
    { 429, "Too Many Requests" },
    { 431, "Request Header Fields Too Large" },
    { 500, "Internal Server Error" },
    { 501, "Not Implemented" },
    { 502, "Bad Gateway" },
    { 503, "Service Unavailable" },
    { 504, "Gateway Timeout" },
    { 0, NULL }
};


int
ngx_http_clockchain_scene_to_node(const char *body, size_t len,
    const ngx_http_clockchain_scene_in_t *in, char **path, char **node,
    char *err, size_t errlen)
{
    int                           rc;
    size_t                        n, mlen;
    json_t                       *root;
    json_error_t                  jerr;
    ngx_http_clockchain_text_t    model;
    ngx_http_clockchain_scene_t   ctx;

    static const ngx_http_clockchain_scene_in_t  none;

    *path = NULL;
    *node = NULL;

    if (errlen) {
        err[0] = '\0';
    }

    if (in == NULL) {
        in = &none;
    }

    if (body == NULL) {
        body = "";
        len = 0;
    }

    /*
     * default flags: "\u0000" inside a string is refused, so every string
     * we read is NUL-free valid UTF-8; the parser caps nesting depth
     */

    /* jansson leaves jerr untouched on some failed allocations */
    memset(&jerr, 0, sizeof(jerr));

    root = json_loadb(body, len, JSON_DECODE_ANY, &jerr);

    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory) {
            return -1;
        }

        /*
         * jansson reports some failed allocations inside its parser as
         * syntax errors; the job fails either way
         */

        ngx_http_clockchain_scene_error(err, errlen,
                                        "Flash returned invalid JSON: %s "
                                        "(line %d, column %d)",
                                        jerr.text[0] ? jerr.text
                                                     : "parse error",
                                        jerr.line, jerr.column);
        return 0;
    }

    if (!json_is_object(root)) {
        ngx_http_clockchain_scene_error(err, errlen,
                                        "Flash returned a JSON %s, "
                                        "expected an object",
                                        ngx_http_clockchain_type_name(root));
        json_decref(root);
        return 0;
    }

    memset(&ctx, 0, sizeof(ctx));
    ctx.scene = root;

    ngx_http_clockchain_scene_query(&ctx, in->query);

    /* the compliance gate first: a blocked provider's output is not used */

    ngx_http_clockchain_scene_provider(&ctx);

    if (ctx.blocked) {
        if (ngx_http_clockchain_get_text(root, "text_model_used", &model)) {
            mlen = ngx_http_clockchain_utf8_cut(model.data, model.len, 100);

        } else {
            model.data = "unknown";
            mlen = sizeof("unknown") - 1;
        }

        n = ngx_http_clockchain_utf8_cut(ctx.provider, ctx.provider_len, 64);

        ngx_http_clockchain_scene_error(err, errlen,
                                        "Compliance gate: text model "
                                        "provider \"%.*s\" (model \"%.*s\") "
                                        "is not allowed",
                                        (int) n, ctx.provider,
                                        (int) mlen, model.data);
        json_decref(root);
        return 0;
    }

    if (!ngx_http_clockchain_scene_year(&ctx, err, errlen)) {
        json_decref(root);
        return 0;
    }

    ctx.month = ngx_http_clockchain_scene_month(json_object_get(root,
                                                                "month"));
    ctx.day = ngx_http_clockchain_scene_number(json_object_get(root, "day"),
                                               31);
    if (ctx.day == 0) {
        ctx.day = 1;
    }

    ctx.hhmm = ngx_http_clockchain_scene_time(json_object_get(root,
                                                              "time_of_day"));

    ngx_http_clockchain_scene_location(&ctx);
    ngx_http_clockchain_scene_slug(&ctx);
    ngx_http_clockchain_scene_id(&ctx);

    snprintf(ctx.path, sizeof(ctx.path),
             "/%" JSON_INTEGER_FORMAT "/%s/%02d/%04d/%s/%s/%s/%s",
             ctx.year, ngx_http_clockchain_months[ctx.month - 1], ctx.day,
             ctx.hhmm, ctx.country, ctx.region, ctx.city, ctx.slug);

    rc = ngx_http_clockchain_scene_node(&ctx, in, node);

    json_decref(root);

    if (rc != 1) {
        return -1;
    }

    n = strlen(ctx.path);

    *path = malloc(n + 1);
    if (*path == NULL) {
        free(*node);
        *node = NULL;
        return -1;
    }

    memcpy(*path, ctx.path, n + 1);

    return 1;
}


static void
ngx_http_clockchain_scene_error(char *err, size_t errlen, const char *fmt,
    ...)
{
    int      n;
    char     buf[1024];
    size_t   len;
    va_list  args;

    if (errlen == 0) {
        return;
    }

    va_start(args, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);

    if (n < 0) {
        err[0] = '\0';
        return;
    }

    len = ((size_t) n < sizeof(buf)) ? (size_t) n : sizeof(buf) - 1;

    /* jansson's messages quote raw input: keep err valid UTF-8 */

    len = ngx_http_clockchain_utf8_clean(err, errlen - 1, buf, len,
                                         (size_t) -1);
    err[len] = '\0';
}


static const char *
ngx_http_clockchain_type_name(json_t *v)
{
    switch (json_typeof(v)) {

    case JSON_OBJECT:
        return "object";

    case JSON_ARRAY:
        return "array";

    case JSON_STRING:
        return "string";

    case JSON_INTEGER:
        return "integer";

    case JSON_REAL:
        return "real number";

    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";

    default:
        return "null";
    }
}


/* scene.h */

size_t
ngx_http_clockchain_utf8_clean(char *out, size_t room, const char *s,
    size_t len, size_t max)
{
    size_t                  n, off;
    utf8proc_int32_t        cp;
    utf8proc_ssize_t        rc;
    const unsigned char    *p, *end;

    p = (const unsigned char *) s;
    end = p + len;
    n = 0;

    while (p < end) {
        off = (size_t) (p - (const unsigned char *) s);

        if (off >= max) {
            break;
        }

        rc = utf8proc_iterate(p, end - p, &cp);

        if (rc > 0 && cp != 0) {
            if (off + (size_t) rc > max || n + (size_t) rc > room) {
                break;
            }

            memcpy(out + n, p, (size_t) rc);
            n += (size_t) rc;
            p += rc;

            continue;
        }

        if (n + 3 > room) {
            break;
        }

        memcpy(out + n, "\xef\xbf\xbd", 3);
        n += 3;
        p++;
    }

    return n;
}


/* the longest prefix of valid UTF-8 s of at most max bytes, whole sequences */

static size_t
ngx_http_clockchain_utf8_cut(const char *s, size_t len, size_t max)
{
    size_t  n;

    if (len <= max) {
        return len;
    }

    n = max;

    while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80) {
        n--;
    }

    return n;
}


/* what Python's str.strip() strips */

static int
ngx_http_clockchain_is_space(utf8proc_int32_t cp)
{
    utf8proc_category_t  cat;

    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x1f)
        || cp == 0x85)
    {
        return 1;
    }

    if (cp < 0x80) {
        return 0;
    }

    cat = utf8proc_category(cp);

    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL
           || cat == UTF8PROC_CATEGORY_ZP;
}


static void
ngx_http_clockchain_trim(ngx_http_clockchain_text_t *t)
{
    size_t                  i;
    utf8proc_int32_t        cp;
    utf8proc_ssize_t        rc;
    const unsigned char    *p;

    while (t->len) {
        p = (const unsigned char *) t->data;
        rc = utf8proc_iterate(p, (utf8proc_ssize_t) t->len, &cp);

        if (rc <= 0 || !ngx_http_clockchain_is_space(cp)) {
            break;
        }

        t->data += rc;
        t->len -= (size_t) rc;
    }

    while (t->len) {
        p = (const unsigned char *) t->data;
        i = t->len - 1;

        while (i > 0 && (p[i] & 0xc0) == 0x80 && t->len - i < 4) {
            i--;
        }

        rc = utf8proc_iterate(p + i, (utf8proc_ssize_t) (t->len - i), &cp);

        if (rc <= 0 || (size_t) rc != t->len - i
            || !ngx_http_clockchain_is_space(cp))
        {
            break;
        }

        t->len = i;
    }
}


/* a string member, trimmed; 0 when missing, not a string or blank */

static int
ngx_http_clockchain_get_text(json_t *obj, const char *key,
    ngx_http_clockchain_text_t *t)
{
    json_t  *v;

    v = json_object_get(obj, key);

    if (!json_is_string(v)) {
        return 0;
    }

    t->data = json_string_value(v);
    t->len = json_string_length(v);

    ngx_http_clockchain_trim(t);

    return t->len != 0;
}


/* Unicode lowercase into out, whole characters only, at most max bytes */

static size_t
ngx_http_clockchain_lower(const char *s, size_t len, char *out, size_t max)
{
    size_t                  n;
    utf8proc_int32_t        cp;
    utf8proc_ssize_t        rc, k;
    const unsigned char    *p, *end;
    utf8proc_uint8_t        buf[4];

    p = (const unsigned char *) s;
    end = p + len;
    n = 0;

    while (p < end) {
        rc = utf8proc_iterate(p, end - p, &cp);

        if (rc <= 0) {
            p++;
            continue;
        }

        p += rc;

        k = utf8proc_encode_char(utf8proc_tolower(cp), buf);

        if (k <= 0) {
            continue;
        }

        if (n + (size_t) k > max) {
            break;
        }

        memcpy(out + n, buf, (size_t) k);
        n += (size_t) k;
    }

    return n;
}


size_t
ngx_http_clockchain_slugify(const char *in, size_t len, char *out,
    size_t outlen)
{
    int                     bound;
    size_t                  n, max;
    unsigned                dash;
    utf8proc_int32_t        cp, c;
    utf8proc_ssize_t        rc, m, k;
    const unsigned char    *p, *end;
    utf8proc_int32_t        dec[NGX_HTTP_CLOCKCHAIN_DECOMPOSE_MAX];

    if (outlen == 0) {
        return 0;
    }

    max = outlen - 1;
    n = 0;
    dash = 0;
    bound = 0;

    p = (const unsigned char *) in;
    end = p + (in ? len : 0);

    while (p < end && n < max) {
        rc = utf8proc_iterate(p, end - p, &cp);

        if (rc <= 0) {
            /* an invalid byte is dropped */
            p++;
            continue;
        }

        p += rc;

        if (cp < 0x80) {
            dec[0] = cp;
            m = 1;

        } else {
            /* compatibility decomposition: "ü" is "u" + U+0308 */
            m = utf8proc_decompose_char(cp, dec,
                                        NGX_HTTP_CLOCKCHAIN_DECOMPOSE_MAX,
                                        UTF8PROC_COMPAT|UTF8PROC_DECOMPOSE,
                                        &bound);

            if (m <= 0 || m > NGX_HTTP_CLOCKCHAIN_DECOMPOSE_MAX) {
                continue;
            }
        }

        for (k = 0; k < m; k++) {
            c = dec[k];

            if (c >= 'A' && c <= 'Z') {
                c += 'a' - 'A';
            }

            if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') {

                if (dash && n > 0) {
                    /* a '-' only when what follows it fits too */
                    if (n + 2 > max) {
                        goto done;
                    }

                    out[n++] = '-';
                }

                dash = 0;

                if (n + 1 > max) {
                    goto done;
                }

                out[n++] = (char) c;

            } else if (c == ' ' || c == '-' || (c >= '\t' && c <= '\r')) {
                dash = 1;
            }

            /* anything else, non-ASCII included, is dropped */
        }
    }

done:

    out[n] = '\0';

    return n;
}


int
ngx_http_clockchain_words(const char *s, size_t len,
    ngx_http_clockchain_word_pt fn, void *data)
{
    int                     bound, rc;
    size_t                  n, chars;
    utf8proc_int32_t        cp, c;
    utf8proc_ssize_t        r, m, k;
    utf8proc_category_t     cat;
    const unsigned char    *p, *end;
    utf8proc_int32_t        dec[NGX_HTTP_CLOCKCHAIN_DECOMPOSE_MAX];
    char                    word[NGX_HTTP_CLOCKCHAIN_WORD_BYTES];

    n = 0;
    chars = 0;
    bound = 0;

    p = (const unsigned char *) s;
    end = p + (s ? len : 0);

    for ( ;; ) {
        m = 0;

        if (p < end) {
            r = utf8proc_iterate(p, end - p, &cp);

            if (r <= 0) {
                /* an invalid byte ends a word */
                p++;
                dec[0] = ' ';
                m = 1;

            } else {
                p += r;

                m = utf8proc_decompose_char(cp, dec,
                                            NGX_HTTP_CLOCKCHAIN_DECOMPOSE_MAX,
                                            UTF8PROC_CASEFOLD|UTF8PROC_COMPAT
                                            |UTF8PROC_DECOMPOSE
                                            |UTF8PROC_STRIPMARK,
                                            &bound);

                if (m < 0 || m > NGX_HTTP_CLOCKCHAIN_DECOMPOSE_MAX) {
                    m = 0;
                }
            }
        }

        for (k = 0; k < m; k++) {
            c = dec[k];

            /* letters that stay themselves under NFKD, as readers type them */
            switch (c) {
            case 0x0111: c = 'd'; break;    /* đ */
            case 0x0127: c = 'h'; break;    /* ħ */
            case 0x0131: c = 'i'; break;    /* ı */
            case 0x0142: c = 'l'; break;    /* ł */
            case 0x00f8: c = 'o'; break;    /* ø */
            case 0x0167: c = 't'; break;    /* ŧ */
            }

            cat = utf8proc_category(c);

            if ((cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO)
                || (cat >= UTF8PROC_CATEGORY_ND
                    && cat <= UTF8PROC_CATEGORY_NO))
            {
                if (chars < NGX_HTTP_CLOCKCHAIN_WORD_MAX) {
                    n += utf8proc_encode_char(c, (utf8proc_uint8_t *) word
                                                 + n);
                    chars++;
                }

                continue;
            }

            if (chars >= 2) {
                rc = fn(word, n, data);
                if (rc != 0) {
                    return rc;
                }
            }

            n = 0;
            chars = 0;
        }

        if (p >= end && m == 0) {
            break;
        }
    }

    if (chars >= 2) {
        return fn(word, n, data);
    }

    return 0;
}


size_t
ngx_http_clockchain_flash_error(long status, const char *body, size_t len,
    char *out, size_t outlen)
{
    int          n;
    size_t       used;
    const char  *reason;

    const ngx_http_clockchain_reason_t  *r;

    if (outlen == 0) {
        return 0;
    }

    reason = "Error";

    for (r = ngx_http_clockchain_reasons; r->reason; r++) {
        if (r->status == status) {
            reason = r->reason;
            break;
        }
    }

    n = snprintf(out, outlen, "Flash API error: %ld %s | response: ", status,
                 reason);

    if (n < 0) {
        out[0] = '\0';
        return 0;
    }

    /* the prefix is ASCII: cutting it anywhere is safe */

    if ((size_t) n >= outlen) {
        return outlen - 1;
    }

    used = (size_t) n;

    if (body) {
        used += ngx_http_clockchain_utf8_clean(out + used, outlen - 1 - used,
                                               body, len,
                                               NGX_HTTP_CLOCKCHAIN_FLASH_BODY);
    }

    out[used] = '\0';

    return used;
}


/* the job's query (valid UTF-8, trimmed), else the scene's "query" */

static void
ngx_http_clockchain_scene_query(ngx_http_clockchain_scene_t *ctx,
    const char *query)
{
    size_t                      n;
    ngx_http_clockchain_text_t  t;

    if (query) {
        n = ngx_http_clockchain_utf8_clean(ctx->query, sizeof(ctx->query),
                                           query, strlen(query), (size_t) -1);
        t.data = ctx->query;
        t.len = n;

        ngx_http_clockchain_trim(&t);

        if (t.len) {
            memmove(ctx->query, t.data, t.len);
            ctx->query_len = t.len;
            return;
        }
    }

    if (ngx_http_clockchain_get_text(ctx->scene, "query", &t)) {
        n = ngx_http_clockchain_utf8_cut(t.data, t.len, sizeof(ctx->query));
        memcpy(ctx->query, t.data, n);
        ctx->query_len = n;
    }
}


/*
 * model_provider, else text_model_used's part before '/', else "google"
 * for a Gemini model; lowercased and trimmed
 */

static void
ngx_http_clockchain_scene_provider(ngx_http_clockchain_scene_t *ctx)
{
    size_t                      i;
    const char                 *slash;
    ngx_http_clockchain_text_t  t, model;

    static const char *const  blocked[] = {
        "google", "anthropic", "openai", NULL
    };

    ctx->provider_len = 0;

    if (ngx_http_clockchain_get_text(ctx->scene, "model_provider", &t)) {
        ctx->provider_len = ngx_http_clockchain_lower(t.data, t.len,
                                                      ctx->provider,
                                                      sizeof(ctx->provider));

    } else if (ngx_http_clockchain_get_text(ctx->scene, "text_model_used",
                                            &model))
    {
        slash = memchr(model.data, '/', model.len);

        if (slash) {
            t.data = model.data;
            t.len = (size_t) (slash - model.data);

            ngx_http_clockchain_trim(&t);

            ctx->provider_len = ngx_http_clockchain_lower(t.data, t.len,
                                                        ctx->provider,
                                                        sizeof(ctx->provider));
        }

        for (i = 0; ctx->provider_len == 0 && i + 6 <= model.len; i++) {
            if (strncasecmp(model.data + i, "gemini", 6) == 0) {
                memcpy(ctx->provider, "google", 6);
                ctx->provider_len = 6;
            }
        }
    }

    for (i = 0; blocked[i]; i++) {
        if (ctx->provider_len == strlen(blocked[i])
            && memcmp(ctx->provider, blocked[i], ctx->provider_len) == 0)
        {
            ctx->blocked = 1;
        }
    }
}


/*
 * An integer year, grounding.verified_year winning when it is one.  A real
 * such as 1776.0 is refused like a string: Flash's model declares an int.
 */

static int
ngx_http_clockchain_scene_year(ngx_http_clockchain_scene_t *ctx, char *err,
    size_t errlen)
{
    json_t  *v, *g;

    v = json_object_get(ctx->scene, "year");
    g = json_object_get(ctx->scene, "grounding");

    if (json_is_object(g)) {
        g = json_object_get(g, "verified_year");

        if (json_is_integer(g)) {
            v = g;
        }
    }

    if (v == NULL || json_is_null(v)) {
        ngx_http_clockchain_scene_error(err, errlen,
                                        "Flash scene has no valid year: "
                                        "year is missing");
        return 0;
    }

    if (!json_is_integer(v)) {
        ngx_http_clockchain_scene_error(err, errlen,
                                        "Flash scene has no valid year: "
                                        "year must be an integer, got %s %s",
                                        json_is_array(v) || json_is_object(v)
                                        ? "an" : "a",
                                        ngx_http_clockchain_type_name(v));
        return 0;
    }

    ctx->year = json_integer_value(v);

    if (ctx->year > NGX_HTTP_CLOCKCHAIN_YEAR_MAX
        || ctx->year < -NGX_HTTP_CLOCKCHAIN_YEAR_MAX)
    {
        ngx_http_clockchain_scene_error(err, errlen,
                                        "Flash scene has no valid year: "
                                        "year %" JSON_INTEGER_FORMAT
                                        " is out of range", ctx->year);
        return 0;
    }

    return 1;
}


/* an integer, or a string of digits, in 1..max; else 0 */

static int
ngx_http_clockchain_scene_number(json_t *v, int max)
{
    size_t                      i;
    json_int_t                  n;
    ngx_http_clockchain_text_t  t;

    if (json_is_integer(v)) {
        n = json_integer_value(v);
        return (n >= 1 && n <= max) ? (int) n : 0;
    }

    if (!json_is_string(v)) {
        return 0;
    }

    t.data = json_string_value(v);
    t.len = json_string_length(v);

    ngx_http_clockchain_trim(&t);

    if (t.len == 0) {
        return 0;
    }

    n = 0;

    for (i = 0; i < t.len; i++) {
        if (t.data[i] < '0' || t.data[i] > '9') {
            return 0;
        }

        n = n * 10 + (t.data[i] - '0');

        if (n > max) {
            return 0;
        }
    }

    return (n >= 1) ? (int) n : 0;
}


/* 1..12, a month name or at least its first three letters; else 1 */

static int
ngx_http_clockchain_scene_month(json_t *v)
{
    int                         m;
    size_t                      i;
    ngx_http_clockchain_text_t  t;

    m = ngx_http_clockchain_scene_number(v, 12);

    if (m) {
        return m;
    }

    if (!json_is_string(v)) {
        return 1;
    }

    t.data = json_string_value(v);
    t.len = json_string_length(v);

    ngx_http_clockchain_trim(&t);

    if (t.len < 3) {
        return 1;
    }

    for (i = 0; i < 12; i++) {
        if (t.len <= strlen(ngx_http_clockchain_months[i])
            && strncasecmp(t.data, ngx_http_clockchain_months[i], t.len) == 0)
        {
            return (int) i + 1;
        }
    }

    return 1;
}


/*
 * The time table, case-insensitive; runs of blanks, '-' and '_' count as
 * one space ("Late-Night" is "late night").  Anything else is 1200.
 */

static int
ngx_http_clockchain_scene_time(json_t *v)
{
    char                                    c;
    size_t                                  i, n;
    unsigned                                space;
    const ngx_http_clockchain_time_name_t  *t;
    char                                    buf[32];
    ngx_http_clockchain_text_t              s;

    if (!json_is_string(v)) {
        return 1200;
    }

    s.data = json_string_value(v);
    s.len = json_string_length(v);

    ngx_http_clockchain_trim(&s);

    n = 0;
    space = 0;

    for (i = 0; i < s.len; i++) {
        c = s.data[i];

        if (c == ' ' || c == '-' || c == '_' || (c >= '\t' && c <= '\r')) {
            space = 1;
            continue;
        }

        if (n + 2 >= sizeof(buf)) {
            return 1200;
        }

        if (space && n) {
            buf[n++] = ' ';
        }

        space = 0;

        buf[n++] = (c >= 'A' && c <= 'Z') ? (char) (c + 'a' - 'A') : c;
    }

    buf[n] = '\0';

    for (t = ngx_http_clockchain_times; t->name; t++) {
        if (strcmp(buf, t->name) == 0) {
            return t->hhmm;
        }
    }

    return 1200;
}


/* a slugified path segment, "unknown" when nothing is left */

static void
ngx_http_clockchain_segment(const char *s, size_t len, char *out)
{
    if (ngx_http_clockchain_slugify(s, len, out,
                                    NGX_HTTP_CLOCKCHAIN_SEGMENT_MAX + 1)
        == 0)
    {
        memcpy(out, "unknown", sizeof("unknown"));
    }
}


/*
 * Split on commas, trimmed, empty parts dropped, as the contract says:
 * 3+ parts: city = first, region = second to last, country = last;
 * 2 parts: city (also the region) and country; 1 part: all three;
 * none: "unknown".
 */

static void
ngx_http_clockchain_scene_location(ngx_http_clockchain_scene_t *ctx)
{
    size_t                      count;
    json_t                     *v;
    const char                 *p, *end, *comma;
    ngx_http_clockchain_text_t  part, first, prev, last;

    count = 0;
    first.data = prev.data = last.data = NULL;
    first.len = prev.len = last.len = 0;

    v = json_object_get(ctx->scene, "location");

    if (json_is_string(v)) {
        p = json_string_value(v);
        end = p + json_string_length(v);

        for ( ;; ) {
            comma = memchr(p, ',', (size_t) (end - p));

            if (comma == NULL) {
                comma = end;
            }

            part.data = p;
            part.len = (size_t) (comma - p);

            ngx_http_clockchain_trim(&part);

            if (part.len) {
                if (count == 0) {
                    first = part;
                }

                prev = last;
                last = part;
                count++;
            }

            if (comma == end) {
                break;
            }

            p = comma + 1;
        }
    }

    if (count == 0) {
        memcpy(ctx->city, "unknown", sizeof("unknown"));
        memcpy(ctx->region, "unknown", sizeof("unknown"));
        memcpy(ctx->country, "unknown", sizeof("unknown"));
        return;
    }

    if (count == 1) {
        ngx_http_clockchain_segment(first.data, first.len, ctx->city);
        memcpy(ctx->region, ctx->city, sizeof(ctx->city));
        memcpy(ctx->country, ctx->city, sizeof(ctx->city));
        return;
    }

    ngx_http_clockchain_segment(last.data, last.len, ctx->country);

    if (count == 2) {
        ngx_http_clockchain_segment(first.data, first.len, ctx->city);
        memcpy(ctx->region, ctx->city, sizeof(ctx->city));
        return;
    }

    /* 3+ parts: the first names the city, as the contract says */
    ngx_http_clockchain_segment(prev.data, prev.len, ctx->region);
    ngx_http_clockchain_segment(first.data, first.len, ctx->city);
}


/*
 * Flash's slug, else the name, else the query before its first comma; a
 * candidate that slugifies to nothing passes to the next one.  A slug too
 * long for a segment keeps Flash's hex suffix and loses the middle.
 */

static void
ngx_http_clockchain_scene_slug(ngx_http_clockchain_scene_t *ctx)
{
    size_t                      n, i, suffix, room;
    const char                 *comma;
    ngx_http_clockchain_text_t  t;
    char                        buf[NGX_HTTP_CLOCKCHAIN_SEGMENT_MAX + 2];

    if (ngx_http_clockchain_get_text(ctx->scene, "slug", &t)) {
        n = ngx_http_clockchain_slugify(t.data, t.len, buf, sizeof(buf));

        if (n > 0 && n <= NGX_HTTP_CLOCKCHAIN_SEGMENT_MAX) {
            memcpy(ctx->slug, buf, n + 1);
            return;
        }

        if (n > 0) {
            suffix = 0;

            while (suffix < t.len && suffix <= 16) {
                i = t.len - 1 - suffix;

                if (!((t.data[i] >= '0' && t.data[i] <= '9')
                      || (t.data[i] >= 'a' && t.data[i] <= 'f')
                      || (t.data[i] >= 'A' && t.data[i] <= 'F')))
                {
                    break;
                }

                suffix++;
            }

            if (suffix >= 4 && suffix <= 16 && suffix < t.len
                && t.data[t.len - 1 - suffix] == '-')
            {
                room = NGX_HTTP_CLOCKCHAIN_SEGMENT_MAX - suffix - 1;
                n = ngx_http_clockchain_slugify(t.data, t.len - suffix - 1,
                                                ctx->slug, room + 1);
                if (n) {
                    ctx->slug[n++] = '-';
                }

                for (i = 0; i < suffix; i++) {
                    ctx->slug[n++] = (char) (t.data[t.len - suffix + i]
                                             | 0x20);
                }

                ctx->slug[n] = '\0';
                return;
            }

            buf[NGX_HTTP_CLOCKCHAIN_SEGMENT_MAX] = '\0';
            n = NGX_HTTP_CLOCKCHAIN_SEGMENT_MAX;

            while (n && buf[n - 1] == '-') {
                buf[--n] = '\0';
            }

            memcpy(ctx->slug, buf, n + 1);
            return;
        }
    }

    if (ngx_http_clockchain_get_text(ctx->scene, "name", &t)
        && ngx_http_clockchain_slugify(t.data, t.len, ctx->slug,
                                       sizeof(ctx->slug)))
    {
        return;
    }

    if (ctx->query_len) {
        comma = memchr(ctx->query, ',', ctx->query_len);
        n = comma ? (size_t) (comma - ctx->query) : ctx->query_len;

        if (ngx_http_clockchain_slugify(ctx->query, n, ctx->slug,
                                        sizeof(ctx->slug)))
        {
            return;
        }
    }

    memcpy(ctx->slug, "unknown", sizeof("unknown"));
}


/* Flash's "id", else "timepoint_id": a string or an integer */

static void
ngx_http_clockchain_scene_id(ngx_http_clockchain_scene_t *ctx)
{
    int                          n;
    size_t                       i;
    json_t                      *v;
    ngx_http_clockchain_text_t   t;

    static const char *const  keys[] = { "id", "timepoint_id", NULL };

    for (i = 0; keys[i]; i++) {
        v = json_object_get(ctx->scene, keys[i]);

        if (json_is_integer(v)) {
            n = snprintf(ctx->id, sizeof(ctx->id), "%" JSON_INTEGER_FORMAT,
                         json_integer_value(v));
            ctx->id_len = (n > 0) ? (size_t) n : 0;
            return;
        }

        if (ngx_http_clockchain_get_text(ctx->scene, keys[i], &t)) {
            ctx->id_len = ngx_http_clockchain_utf8_cut(t.data, t.len,
                                                       sizeof(ctx->id));
            memcpy(ctx->id, t.data, ctx->id_len);
            return;
        }
    }
}


static int
ngx_http_clockchain_scene_node(ngx_http_clockchain_scene_t *ctx,
    const ngx_http_clockchain_scene_in_t *in, char **out)
{
    size_t       size, len;
    json_t      *node;
    json_int_t   sort_key;
    const char  *perm;
    char         hhmm[8];

    node = json_object();
    if (node == NULL) {
        return -1;
    }

    snprintf(hhmm, sizeof(hhmm), "%04d", ctx->hhmm);

    sort_key = ctx->year * 100000000 + (json_int_t) ctx->month * 1000000
               + (json_int_t) ctx->day * 10000 + ctx->hhmm;

    if (ctx->provider_len == 0) {
        perm = "unknown";

    } else {
        perm = ctx->blocked ? "restricted" : "permissive";
    }

    if (json_object_set_new(node, "path", json_string(ctx->path))
        || json_object_set_new(node, "layer", json_integer(2))
        || json_object_set_new(node, "type", json_string("event"))
        || json_object_set_new(node, "name",
                               ngx_http_clockchain_scene_name(ctx))
        || json_object_set_new(node, "year", json_integer(ctx->year))
        || json_object_set_new(node, "month",
                       json_string(ngx_http_clockchain_months[ctx->month - 1]))
        || json_object_set_new(node, "month_num", json_integer(ctx->month))
        || json_object_set_new(node, "day", json_integer(ctx->day))
        || json_object_set_new(node, "time", json_string(hhmm))
        || json_object_set_new(node, "country", json_string(ctx->country))
        || json_object_set_new(node, "region", json_string(ctx->region))
        || json_object_set_new(node, "city", json_string(ctx->city))
        || json_object_set_new(node, "slug", json_string(ctx->slug))
        || json_object_set_new(node, "visibility",
               ngx_http_clockchain_json_clean(in->visibility, "private"))
        || json_object_set_new(node, "created_by",
               ngx_http_clockchain_json_clean(in->created_by, "system"))
        || json_object_set_new(node, "tags",
                               ngx_http_clockchain_scene_tags(ctx->scene))
        || json_object_set_new(node, "figures",
                               ngx_http_clockchain_scene_figures(ctx->scene))
        || json_object_set_new(node, "one_liner",
                               ngx_http_clockchain_scene_one_liner(ctx))
        || json_object_set_new(node, "flash_timepoint_id",
                               ctx->id_len
                               ? json_stringn(ctx->id, ctx->id_len)
                               : json_null())
        || json_object_set_new(node, "flash_slug",
                    ngx_http_clockchain_json_url(ctx->scene, "slug", 0))
        || json_object_set_new(node, "flash_share_url",
                    ngx_http_clockchain_json_url(ctx->scene, "share_url", 0))
        || json_object_set_new(node, "era",
                    ngx_http_clockchain_json_text(ctx->scene, "era"))
        || json_object_set_new(node, "image_url",
                    ngx_http_clockchain_json_url(ctx->scene, "image_url", 1))
        || json_object_set_new(node, "text_model",
                    ngx_http_clockchain_json_text(ctx->scene,
                                                  "text_model_used"))
        || json_object_set_new(node, "image_model",
                    ngx_http_clockchain_json_text(ctx->scene,
                                                  "image_model_used"))
        || json_object_set_new(node, "model_provider",
                               ctx->provider_len
                               ? json_stringn(ctx->provider,
                                              ctx->provider_len)
                               : json_null())
        || json_object_set_new(node, "model_permissiveness",
                               json_string(perm))
        || json_object_set_new(node, "generation_id",
                               ctx->id_len
                               ? json_stringn(ctx->id, ctx->id_len)
                               : ngx_http_clockchain_json_clean(
                                     in->job_id, NULL))
        || json_object_set_new(node, "created_at",
               ngx_http_clockchain_json_clean(in->created_at, NULL))
        || json_object_set_new(node, "sort_key", json_integer(sort_key))
        || json_object_set_new(node, "search",
                               ngx_http_clockchain_scene_search(node)))
    {
        json_decref(node);
        return -1;
    }

    /* measured, then printed into our own malloc'd buffer */

    size = json_dumpb(node, NULL, 0, JSON_COMPACT);
    if (size == 0) {
        json_decref(node);
        return -1;
    }

    *out = malloc(size + 1);
    if (*out == NULL) {
        json_decref(node);
        return -1;
    }

    len = json_dumpb(node, *out, size, JSON_COMPACT);
    json_decref(node);

    if (len != size) {
        free(*out);
        *out = NULL;
        return -1;
    }

    (*out)[size] = '\0';

    return 1;
}


/* the scene's name, else the query */

static json_t *
ngx_http_clockchain_scene_name(ngx_http_clockchain_scene_t *ctx)
{
    size_t                      len;
    ngx_http_clockchain_text_t  t;

    if (ngx_http_clockchain_get_text(ctx->scene, "name", &t)) {
        len = ngx_http_clockchain_utf8_cut(t.data, t.len,
                                           NGX_HTTP_CLOCKCHAIN_TEXT_MAX);
        return json_stringn(t.data, len);
    }

    if (ctx->query_len) {
        return json_stringn(ctx->query, ctx->query_len);
    }

    return json_null();
}


/* the string tags, trimmed, lowercased, cut, deduplicated, at most 50 */

static json_t *
ngx_http_clockchain_scene_tags(json_t *scene)
{
    size_t                      i, j, n;
    json_t                     *tags, *out, *v, *s;
    ngx_http_clockchain_text_t  t;
    char                        buf[NGX_HTTP_CLOCKCHAIN_TAG_LEN];

    out = json_array();
    if (out == NULL) {
        return NULL;
    }

    tags = json_object_get(scene, "tags");

    if (!json_is_array(tags)) {
        return out;
    }

    for (i = 0;
         i < json_array_size(tags)
         && json_array_size(out) < NGX_HTTP_CLOCKCHAIN_TAGS_MAX;
         i++)
    {
        v = json_array_get(tags, i);

        if (!json_is_string(v)) {
            continue;
        }

        t.data = json_string_value(v);
        t.len = json_string_length(v);

        ngx_http_clockchain_trim(&t);

        n = ngx_http_clockchain_lower(t.data, t.len, buf, sizeof(buf));

        /* the cut may have left blanks at the end */

        t.data = buf;
        t.len = n;

        ngx_http_clockchain_trim(&t);

        if (t.len == 0) {
            continue;
        }

        for (j = 0; j < json_array_size(out); j++) {
            s = json_array_get(out, j);

            if (json_string_length(s) == t.len
                && memcmp(json_string_value(s), t.data, t.len) == 0)
            {
                break;
            }
        }

        if (j < json_array_size(out)) {
            continue;
        }

        if (json_array_append_new(out, json_stringn(t.data, t.len)) != 0) {
            json_decref(out);
            return NULL;
        }
    }

    return out;
}


/*
 * characters.characters[].name (or characters[].name when Flash sends the
 * list itself): trimmed, cut, deduplicated, at most 50
 */

static json_t *
ngx_http_clockchain_scene_figures(json_t *scene)
{
    size_t                      i, j;
    json_t                     *list, *out, *s;
    ngx_http_clockchain_text_t  t;

    out = json_array();
    if (out == NULL) {
        return NULL;
    }

    list = json_object_get(scene, "characters");

    if (json_is_object(list)) {
        list = json_object_get(list, "characters");
    }

    if (!json_is_array(list)) {
        return out;
    }

    for (i = 0;
         i < json_array_size(list)
         && json_array_size(out) < NGX_HTTP_CLOCKCHAIN_FIGURES_MAX;
         i++)
    {
        if (!ngx_http_clockchain_get_text(json_array_get(list, i), "name", &t))
        {
            continue;
        }

        t.len = ngx_http_clockchain_utf8_cut(t.data, t.len,
                                             NGX_HTTP_CLOCKCHAIN_FIGURE_LEN);

        ngx_http_clockchain_trim(&t);

        for (j = 0; j < json_array_size(out); j++) {
            s = json_array_get(out, j);

            if (json_string_length(s) == t.len
                && memcmp(json_string_value(s), t.data, t.len) == 0)
            {
                break;
            }
        }

        if (j < json_array_size(out)) {
            continue;
        }

        if (json_array_append_new(out, json_stringn(t.data, t.len)) != 0) {
            json_decref(out);
            return NULL;
        }
    }

    return out;
}


/*
 * The node's words for search (complete.lua indexes them, then drops the
 * field): [[word, class], ...], class 0 for a word of the name, 1 of the
 * one-liner, 2 of a tag or a figure, the least when a word is in several;
 * the name, tags and figures first, so that a long one-liner cannot crowd
 * them out of the NGX_HTTP_CLOCKCHAIN_WORDS_MAX.  A seed's node gets its
 * words here too (ngx_http_clockchain_seed.c).
 */

json_t *
ngx_http_clockchain_scene_search(json_t *node)
{
    size_t                         i, f;
    json_t                        *v;
    ngx_http_clockchain_search_t   ctx;

    static const struct {
        const char  *name;
        int          field;
    }  fields[] = {
        { "name", 0 }, { "tags", 2 }, { "figures", 2 }, { "one_liner", 1 }
    };

    ctx.words = json_array();
    if (ctx.words == NULL) {
        return NULL;
    }

    for (f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
        ctx.field = fields[f].field;
        v = json_object_get(node, fields[f].name);

        if (json_is_string(v)) {
            if (ngx_http_clockchain_words(json_string_value(v),
                                          json_string_length(v),
                                          ngx_http_clockchain_search_word,
                                          &ctx)
                < 0)
            {
                goto failed;
            }

            continue;
        }

        for (i = 0; i < json_array_size(v); i++) {
            if (!json_is_string(json_array_get(v, i))) {
                continue;
            }

            if (ngx_http_clockchain_words(
                    json_string_value(json_array_get(v, i)),
                    json_string_length(json_array_get(v, i)),
                    ngx_http_clockchain_search_word, &ctx)
                < 0)
            {
                goto failed;
            }
        }
    }

    return ctx.words;

failed:

    json_decref(ctx.words);
    return NULL;
}


/* one word into the node's list (a new one left out once it is full) */

static int
ngx_http_clockchain_search_word(const char *word, size_t len, void *data)
{
    ngx_http_clockchain_search_t *ctx = data;

    size_t   i;
    json_t  *e, *w;

    for (i = 0; i < json_array_size(ctx->words); i++) {
        e = json_array_get(ctx->words, i);
        w = json_array_get(e, 0);

        if (json_string_length(w) == len
            && memcmp(json_string_value(w), word, len) == 0)
        {
            if (json_integer_value(json_array_get(e, 1)) > ctx->field) {
                return json_array_set_new(e, 1, json_integer(ctx->field))
                       ? -1 : 0;
            }

            return 0;
        }
    }

    if (json_array_size(ctx->words) >= NGX_HTTP_CLOCKCHAIN_WORDS_MAX) {
        return 0;
    }

    e = json_pack("[s%i]", word, len, ctx->field);
    if (e == NULL) {
        return -1;
    }

    return json_array_append_new(ctx->words, e) ? -1 : 0;
}


/* moment.plot_summary, else the query: at most 200 code points */

static json_t *
ngx_http_clockchain_scene_one_liner(ngx_http_clockchain_scene_t *ctx)
{
    size_t                      i, chars;
    ngx_http_clockchain_text_t  t;

    if (!ngx_http_clockchain_get_text(json_object_get(ctx->scene, "moment"),
                                      "plot_summary", &t))
    {
        if (ctx->query_len == 0) {
            return json_null();
        }

        t.data = ctx->query;
        t.len = ctx->query_len;
    }

    /* valid UTF-8: every byte but a continuation byte starts a character */

    chars = 0;

    for (i = 0; i < t.len; i++) {
        if (((unsigned char) t.data[i] & 0xc0) != 0x80) {
            if (chars == NGX_HTTP_CLOCKCHAIN_ONE_LINER) {
                break;
            }

            chars++;
        }
    }

    t.len = i;

    ngx_http_clockchain_trim(&t);

    return json_stringn(t.data, t.len);
}


/* free text: trimmed, at most 2000 bytes of whole characters, else null */

static json_t *
ngx_http_clockchain_json_text(json_t *obj, const char *key)
{
    size_t                      len;
    ngx_http_clockchain_text_t  t;

    if (!ngx_http_clockchain_get_text(obj, key, &t)) {
        return json_null();
    }

    len = ngx_http_clockchain_utf8_cut(t.data, t.len,
                                       NGX_HTTP_CLOCKCHAIN_TEXT_MAX);

    return json_stringn(t.data, len);
}


/*
 * A URL (or Flash's raw slug): a cut URL would point elsewhere, so one
 * longer than 2000 bytes is null, as is a data: URI when no_data is set.
 */

static json_t *
ngx_http_clockchain_json_url(json_t *obj, const char *key, int no_data)
{
    ngx_http_clockchain_text_t  t;

    if (!ngx_http_clockchain_get_text(obj, key, &t)) {
        return json_null();
    }

    if (t.len > NGX_HTTP_CLOCKCHAIN_TEXT_MAX) {
        return json_null();
    }

    if (no_data && t.len >= 5 && strncasecmp(t.data, "data:", 5) == 0) {
        return json_null();
    }

    return json_stringn(t.data, t.len);
}


/* one of the job's own strings, made valid UTF-8; dflt when NULL or empty */

static json_t *
ngx_http_clockchain_json_clean(const char *s, const char *dflt)
{
    size_t  n;
    char    buf[NGX_HTTP_CLOCKCHAIN_TEXT_MAX];

    if (s == NULL || *s == '\0') {
        s = dflt;
    }

    if (s == NULL) {
        return json_null();
    }

    n = ngx_http_clockchain_utf8_clean(buf, sizeof(buf), s, strlen(s),
                                       (size_t) -1);

    return json_stringn(buf, n);
}

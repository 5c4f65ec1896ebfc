
/*
 * Unit tests of src/ngx_http_clockchain_scene.c (no nginx), printing TAP.
 *
 * Scenes in the tables are written with ' for " and turned into JSON by
 * json_of() so that they stay readable.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <regex.h>

#include <jansson.h>

#include "ngx_http_clockchain_job.h"
#include "ngx_http_clockchain_scene.h"


#define JOB_ID       "a3d8f7e2-4c1b-4a9e-8f2d-1e3c5b7a9d0f"
#define CREATED_AT   "2026-03-06T14:32:18.123456Z"
#define QUERY        "signing of the declaration, philadelphia 1776"

#define PATH_RE                                                               \
    "^(/-?[0-9]+)(/[a-z]+)(/[0-9]{2})(/[0-9]{4})(/[a-z0-9_-]+){4}$"

#define SEED                                                                  \
    "{'name':'Signing of the Declaration of Independence',"                   \
    "'slug':'signing-declaration-independence-3f4a','year':1776,'month':7,"   \
    "'day':4,'time_of_day':'midday','location':'"                             \
    "Philadelphia, Pennsylvania, United States','model_provider':"            \
    "'openrouter','text_model_used':'deepseek/deepseek-chat'}"

#define SEED_PATH                                                             \
    "/1776/july/04/1200/united-states/pennsylvania/philadelphia/"             \
    "signing-declaration-independence-3f4a"

/* a minimal good scene around one field under test */
#define S(fields)  "{'year':1776,'slug':'s'," fields "}"
#define L(loc)     "/1776/january/01/1200/" loc "/s"


static int      tests, failed;
static regex_t  path_re;


static void
ok(int cond, const char *name)
{
    tests++;

    if (!cond) {
        failed++;
    }

    printf("%sok %d - %s\n", cond ? "" : "not ", tests, name);
}


/* ' becomes " (tables use \\u0027 for a real apostrophe) */

static char *
json_of(const char *s)
{
    char    *r;
    size_t   i, n;

    n = strlen(s);
    r = malloc(n + 1);

    if (r == NULL) {
        abort();
    }

    for (i = 0; i <= n; i++) {
        r[i] = (s[i] == '\'') ? '"' : s[i];
    }

    return r;
}


static int
valid_utf8(const char *s, size_t len)
{
    json_t  *j;

    /* jansson checks UTF-8 when making a string */
    j = json_stringn(s, len);

    if (j == NULL) {
        return 0;
    }

    json_decref(j);

    return memchr(s, '\0', len) == NULL;
}


static int
safe_path(const char *p)
{
    const char  *s, *e;

    if (p == NULL || regexec(&path_re, p, 0, NULL, 0) != 0
        || strstr(p, "..") != NULL || strstr(p, "//") != NULL)
    {
        return 0;
    }

    for (s = p + 1; *s; s = e + (*e == '/')) {
        e = strchr(s, '/');
        if (e == NULL) {
            e = s + strlen(s);
        }

        if (e - s == 0 || e - s > NGX_HTTP_CLOCKCHAIN_SEGMENT_MAX) {
            return 0;
        }
    }

    return 1;
}


static int
run_in(const char *scene, const ngx_http_clockchain_scene_in_t *in,
    char **path, char **node, char *err, size_t errlen)
{
    int    rc;
    char  *body;

    body = json_of(scene);
    rc = ngx_http_clockchain_scene_to_node(body, strlen(body), in, path, node,
                                           err, errlen);
    free(body);

    return rc;
}


static int
run(const char *scene, const char *query, char **path, char **node,
    char *err, size_t errlen)
{
    ngx_http_clockchain_scene_in_t  in;

    in.job_id = JOB_ID;
    in.query = query ? query : QUERY;
    in.visibility = "public";
    in.created_by = "user-42";
    in.created_at = CREATED_AT;

    return run_in(scene, &in, path, node, err, errlen);
}


/* the node of a scene that must succeed, parsed; NULL on failure */

static json_t *
node_of(const char *scene, const char *query)
{
    int      rc;
    char     err[NGX_HTTP_CLOCKCHAIN_ERR_LEN], *path, *node;
    json_t  *j;

    rc = run(scene, query, &path, &node, err, sizeof(err));

    if (rc != 1) {
        printf("# rc %d: %s\n", rc, err);
        return NULL;
    }

    j = json_loads(node, 0, NULL);

    if (j && strcmp(json_string_value(json_object_get(j, "path")), path)) {
        json_decref(j);
        j = NULL;
    }

    free(path);
    free(node);

    return j;
}


static const char *
str(json_t *node, const char *key)
{
    return json_string_value(json_object_get(node, key));
}


static long long
num(json_t *node, const char *key)
{
    return (long long) json_integer_value(json_object_get(node, key));
}


typedef struct {
    const char  *name;
    const char  *scene;
    const char  *query;     /* NULL: QUERY */
    int          rc;
    const char  *expect;    /* the path, or a substring of err */
} scene_case_t;


static const scene_case_t  cases[] = {

    /* the seed and the date */

    { "seed example", SEED, NULL, 1, SEED_PATH },
    { "BCE year, month name",
      "{'year':-44,'month':'march','day':15,'time_of_day':'morning',"
      "'location':'Theatre of Pompey, Rome, Italy','slug':'ides-of-march-a1b2',"
      "'model_provider':'openrouter'}", NULL, 1,
      "/-44/march/15/0900/italy/rome/theatre-of-pompey/ides-of-march-a1b2" },
    { "year 0", "{'year':0,'slug':'s'}", NULL, 1,
      "/0/january/01/1200/unknown/unknown/unknown/s" },
    { "month name upper case", S("'month':'JULY'"), NULL, 1,
      "/1776/july/01/1200/unknown/unknown/unknown/s" },
    { "month abbreviation", S("'month':'Dec'"), NULL, 1,
      "/1776/december/01/1200/unknown/unknown/unknown/s" },
    { "month four-letter prefix", S("'month':'sept'"), NULL, 1,
      "/1776/september/01/1200/unknown/unknown/unknown/s" },
    { "month name padded", S("'month':'  October '"), NULL, 1,
      "/1776/october/01/1200/unknown/unknown/unknown/s" },
    { "month digits string", S("'month':'07'"), NULL, 1,
      "/1776/july/01/1200/unknown/unknown/unknown/s" },
    { "month 12", S("'month':12"), NULL, 1,
      "/1776/december/01/1200/unknown/unknown/unknown/s" },
    { "month 13 -> january", S("'month':13"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "month 0 -> january", S("'month':0"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "month -3 -> january", S("'month':-3"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "month '13' -> january", S("'month':'13'"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "month 'ju' too short -> january", S("'month':'ju'"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "month 'juli' -> january", S("'month':'juli'"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "month real -> january", S("'month':7.0"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "month huge -> january", S("'month':99999999999999"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "month array -> january", S("'month':[7]"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "month null -> january", S("'month':null"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "day 0 -> 01", S("'day':0"), NULL, 1, L("unknown/unknown/unknown") },
    { "day 32 -> 01", S("'day':32"), NULL, 1, L("unknown/unknown/unknown") },
    { "day -1 -> 01", S("'day':-1"), NULL, 1, L("unknown/unknown/unknown") },
    { "day 31", S("'day':31"), NULL, 1,
      "/1776/january/31/1200/unknown/unknown/unknown/s" },
    { "day as digits", S("'day':' 4 '"), NULL, 1,
      "/1776/january/04/1200/unknown/unknown/unknown/s" },
    { "day as word -> 01", S("'day':'fourth'"), NULL, 1,
      L("unknown/unknown/unknown") },

    /* time of day */

    { "time unknown -> 1200", S("'time_of_day':'teatime'"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "time number -> 1200", S("'time_of_day':6"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "time empty -> 1200", S("'time_of_day':''"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "time hyphenated, padded, upper case", S("'time_of_day':' Late-Night '"),
      NULL, 1, "/1776/january/01/2300/unknown/unknown/unknown/s" },
    { "time with inner blanks", S("'time_of_day':'EARLY   afternoon'"), NULL, 1,
      "/1776/january/01/1300/unknown/unknown/unknown/s" },
    { "time midnight", S("'time_of_day':'midnight'"), NULL, 1,
      "/1776/january/01/0000/unknown/unknown/unknown/s" },
    { "time longer than any name", S("'time_of_day':'late late late late "
      "late late late late night'"), NULL, 1, L("unknown/unknown/unknown") },

    /* location */

    { "location 4 parts: city first, region second to last, country last",
      S("'location':'A, B, C, D'"), NULL, 1, L("d/c/a") },
    { "location 6 parts", S("'location':'A,B,C,D,E,F'"), NULL, 1,
      L("f/e/a") },
    { "location: the contract's example",
      S("'location':'Independence Hall, Philadelphia, Pennsylvania, "
        "United States'"), NULL, 1,
      L("united-states/pennsylvania/independence-hall") },
    { "location 3 parts", S("'location':'Hall,City,Land'"), NULL, 1,
      L("land/city/hall") },
    { "location 2 parts", S("'location':'Paris, France'"), NULL, 1,
      L("france/paris/paris") },
    { "location 1 part", S("'location':'Atlantis'"), NULL, 1,
      L("atlantis/atlantis/atlantis") },
    { "location empty", S("'location':''"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "location only commas and blanks", S("'location':' , ,, '"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "location empty parts dropped", S("'location':',Paris,, France,'"),
      NULL, 1, L("france/paris/paris") },
    { "location number", S("'location':42"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "location object", S("'location':{'city':'Rome'}"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "location null", S("'location':null"), NULL, 1,
      L("unknown/unknown/unknown") },

    /* unicode */

    { "Zürich", S("'location':'Zürich, Switzerland'"), NULL, 1,
      L("switzerland/zurich/zurich") },
    { "São Paulo", S("'location':'São Paulo, Brazil'"), NULL, 1,
      L("brazil/sao-paulo/sao-paulo") },
    { "Kraków", S("'location':'Kraków, Lesser Poland, Poland'"), NULL, 1,
      L("poland/lesser-poland/krakow") },
    { "escaped unicode", S("'location':'Z\\u00fcrich'"), NULL, 1,
      L("zurich/zurich/zurich") },
    { "fullwidth via NFKD",
      "{'year':1776,'name':'Ｆｕｌｌｗｉｄｔｈ'}", NULL, 1,
      "/1776/january/01/1200/unknown/unknown/unknown/fullwidth" },
    { "emoji dropped", "{'year':1776,'name':'Party 🎉 Time'}", NULL, 1,
      "/1776/january/01/1200/unknown/unknown/unknown/party-time" },
    { "Chinese location -> unknown", S("'location':'北京'"), NULL, 1,
      L("unknown/unknown/unknown") },
    { "Chinese part -> unknown", S("'location':'Hall, 北京, China'"), NULL, 1,
      L("china/unknown/hall") },
    { "Chinese name falls back to query",
      "{'year':1776,'name':'长城'}", "Great Wall, China", 1,
      "/1776/january/01/1200/unknown/unknown/unknown/great-wall" },
    { "Chinese name and query -> unknown",
      "{'year':1776,'name':'长城'}", "长城的建造", 1,
      "/1776/january/01/1200/unknown/unknown/unknown/unknown" },
    { "ligature and circled digit", S("'location':'ﬁeld ①'"), NULL, 1,
      L("field-1/field-1/field-1") },
    { "Unicode blanks trimmed", S("'location':'\\u3000Rome\\u00a0, Italy'"),
      NULL, 1, L("italy/rome/rome") },

    /* hostile text */

    { "dot-dot and slashes", S("'location':'../../etc, %2e%2e, a/b'"), NULL,
      1, L("ab/2e2e/etc") },
    { "control characters", S("'location':'\\u0001\\u0007x\\u001fy'"), NULL,
      1, L("xy/xy/xy") },
    { "slug of dots falls back to name",
      "{'year':1776,'slug':'..','name':'/etc/passwd'}", NULL, 1,
      "/1776/january/01/1200/unknown/unknown/unknown/etcpasswd" },
    { "everything dots -> unknown",
      "{'year':1776,'slug':'.','name':'..'}", "...,x", 1,
      "/1776/january/01/1200/unknown/unknown/unknown/unknown" },
    { "hostile slug", "{'year':1776,'slug':'../../x y%00'}", NULL, 1,
      "/1776/january/01/1200/unknown/unknown/unknown/x-y00" },
    { "tabs and newlines separate words",
      "{'year':1776,'name':'New\\tYork\\nCity'}", NULL, 1,
      "/1776/january/01/1200/unknown/unknown/unknown/new-york-city" },

    /* slug chain */

    { "slug is slugified, suffix kept",
      "{'year':1776,'slug':'Signing Declaration 3F4A'}", NULL, 1,
      "/1776/january/01/1200/unknown/unknown/unknown/"
      "signing-declaration-3f4a" },
    { "no slug -> name", "{'year':1776,'name':'The Moon Landing!'}", NULL, 1,
      "/1776/january/01/1200/unknown/unknown/unknown/the-moon-landing" },
    { "no slug, no name -> query before comma", "{'year':1776}",
      "Moon landing, 1969", 1,
      "/1776/january/01/1200/unknown/unknown/unknown/moon-landing" },
    { "empty slug -> name", "{'year':1776,'slug':'','name':'N'}", NULL, 1,
      "/1776/january/01/1200/unknown/unknown/unknown/n" },
    { "null slug -> name", "{'year':1776,'slug':null,'name':'N'}", NULL, 1,
      "/1776/january/01/1200/unknown/unknown/unknown/n" },
    { "number slug -> name", "{'year':1776,'slug':12,'name':'N'}", NULL, 1,
      "/1776/january/01/1200/unknown/unknown/unknown/n" },
    { "query without comma", "{'year':1776,'name':7}", "Fall of Rome", 1,
      "/1776/january/01/1200/unknown/unknown/unknown/fall-of-rome" },
    { "query starting with a comma -> unknown", "{'year':1776}", ",Rome", 1,
      "/1776/january/01/1200/unknown/unknown/unknown/unknown" },

    /* year */

    { "verified_year overrides",
      "{'year':1775,'grounding':{'verified_year':1776},'slug':'s'}", NULL, 1,
      L("unknown/unknown/unknown") },
    { "verified_year string ignored",
      "{'year':1776,'grounding':{'verified_year':'1700'},'slug':'s'}", NULL,
      1, L("unknown/unknown/unknown") },
    { "verified_year alone is enough",
      "{'grounding':{'verified_year':1776},'slug':'s'}", NULL, 1,
      L("unknown/unknown/unknown") },
    { "grounding array ignored",
      "{'year':1776,'grounding':[1700],'slug':'s'}", NULL, 1,
      L("unknown/unknown/unknown") },
    { "year string fails", "{'year':'1776'}", NULL, 0,
      "Flash scene has no valid year" },
    { "year real fails", "{'year':1776.0}", NULL, 0,
      "Flash scene has no valid year" },
    { "year null fails", "{'year':null}", NULL, 0,
      "Flash scene has no valid year: year is missing" },
    { "year missing fails", "{'name':'x'}", NULL, 0,
      "Flash scene has no valid year: year is missing" },
    { "year boolean fails", "{'year':true}", NULL, 0,
      "year must be an integer, got a boolean" },
    { "year object fails", "{'year':{}}", NULL, 0,
      "year must be an integer, got an object" },
    { "year out of range fails", "{'year':100000000000}", NULL, 0,
      "out of range" },
    { "year -90e9 accepted", "{'year':-90000000000,'slug':'s'}", NULL, 1,
      "/-90000000000/january/01/1200/unknown/unknown/unknown/s" },

    /* compliance gate */

    { "model_provider Google blocked",
      "{'year':1776,'model_provider':'Google',"
      "'text_model_used':'gemini-2.5-flash'}", NULL, 0,
      "Compliance gate: text model provider \"google\" "
      "(model \"gemini-2.5-flash\") is not allowed" },
    { "openai/gpt-4o blocked",
      "{'year':1776,'text_model_used':'openai/gpt-4o'}", NULL, 0,
      "provider \"openai\" (model \"openai/gpt-4o\")" },
    { "gemini without provider blocked",
      "{'year':1776,'text_model_used':'gemini-2.5-pro'}", NULL, 0,
      "provider \"google\" (model \"gemini-2.5-pro\")" },
    { "GEMINI upper case blocked",
      "{'year':1776,'text_model_used':'My-GEMINI'}", NULL, 0,
      "provider \"google\"" },
    { "Anthropic prefix blocked",
      "{'year':1776,'text_model_used':' Anthropic /claude-sonnet'}", NULL, 0,
      "provider \"anthropic\"" },
    { "padded provider blocked",
      "{'year':1776,'model_provider':' OpenAI '}", NULL, 0,
      "provider \"openai\" (model \"unknown\")" },
    { "blocked even without a year",
      "{'model_provider':'anthropic'}", NULL, 0, "Compliance gate" },
    { "empty provider falls back to the model",
      "{'year':1776,'model_provider':'','text_model_used':'openai/o1'}",
      NULL, 0, "provider \"openai\"" },
    { "permissive provider passes",
      "{'year':1776,'slug':'s','model_provider':'openrouter',"
      "'text_model_used':'google/gemini-2.5-pro'}", NULL, 1,
      L("unknown/unknown/unknown") },
    { "other prefix passes",
      "{'year':1776,'slug':'s','text_model_used':'mistralai/mistral-large'}",
      NULL, 1, L("unknown/unknown/unknown") },
    { "googleish provider passes",
      "{'year':1776,'slug':'s','model_provider':'google-vertex-proxy'}",
      NULL, 1, L("unknown/unknown/unknown") },
    { "number provider ignored",
      "{'year':1776,'slug':'s','model_provider':5}", NULL, 1,
      L("unknown/unknown/unknown") },

    /* bodies that are no scene */

    { "not JSON", "not json", NULL, 0, "Flash returned invalid JSON: " },
    { "empty body", "", NULL, 0, "Flash returned invalid JSON" },
    { "truncated", "{'year':1776", NULL, 0, "Flash returned invalid JSON" },
    { "NUL escape", "{'year':1776,'name':'a\\u0000b'}", NULL, 0,
      "Flash returned invalid JSON" },
    { "top-level array", "[{'year':1776}]", NULL, 0,
      "Flash returned a JSON array, expected an object" },
    { "top-level string", "'x'", NULL, 0,
      "Flash returned a JSON string, expected an object" },
    { "top-level null", "null", NULL, 0,
      "Flash returned a JSON null, expected an object" },
    { "empty object", "{}", NULL, 0, "no valid year" },
};


static void
test_cases(void)
{
    int          rc;
    char         err[NGX_HTTP_CLOCKCHAIN_ERR_LEN], name[512], *path, *node;
    size_t       i;
    const char  *expect;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        path = node = NULL;

        rc = run(cases[i].scene, cases[i].query, &path, &node, err,
                 sizeof(err));

        expect = cases[i].expect;

        if (cases[i].rc == 1) {
            snprintf(name, sizeof(name), "%s: %s", cases[i].name, expect);
            ok(rc == 1 && safe_path(path) && strcmp(path, expect) == 0, name);

            if (rc == 1 && !safe_path(path)) {
                printf("# got %s\n", path);

            } else if (rc != 1 || strcmp(path, expect) != 0) {
                printf("# got %d %s %s\n", rc, path ? path : "", err);
            }

        } else {
            snprintf(name, sizeof(name), "%s fails: %s", cases[i].name,
                     expect);
            ok(rc == 0 && path == NULL && node == NULL
               && strstr(err, expect) != NULL
               && valid_utf8(err, strlen(err)), name);

            if (rc != 0 || strstr(err, expect) == NULL) {
                printf("# got %d %s\n", rc, err);
            }
        }

        free(path);
        free(node);
    }
}


static void
test_times(void)
{
    int          rc, all_ok;
    char         scene[256], err[256], expect[128], *path, *node;
    size_t       i;

    static const struct {
        const char  *name;
        const char  *hhmm;
    } times[] = {
        { "dawn", "0600" }, { "early morning", "0700" },
        { "morning", "0900" }, { "late morning", "1100" },
        { "midday", "1200" }, { "noon", "1200" },
        { "early afternoon", "1300" }, { "afternoon", "1400" },
        { "late afternoon", "1600" }, { "evening", "1800" },
        { "dusk", "1900" }, { "night", "2100" }, { "late night", "2300" },
        { "midnight", "0000" }, { "Dawn", "0600" }, { " NOON ", "1200" },
        { "late_afternoon", "1600" }, { "Sunrise", "1200" },
        { "night time", "1200" }, { "", "1200" }
    };

    for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        snprintf(scene, sizeof(scene),
                 "{'year':1776,'slug':'s','time_of_day':'%s'}",
                 times[i].name);
        snprintf(expect, sizeof(expect),
                 "/1776/january/01/%s/unknown/unknown/unknown/s",
                 times[i].hhmm);

        rc = run(scene, NULL, &path, &node, err, sizeof(err));
        all_ok = (rc == 1 && strcmp(path, expect) == 0);

        snprintf(scene, sizeof(scene), "time_of_day '%s' -> %s",
                 times[i].name, times[i].hhmm);
        ok(all_ok, scene);

        if (rc == 1) {
            free(path);
            free(node);
        }
    }
}


static void
test_node(void)
{
    int          all_ok;
    json_t      *n, *a;
    size_t       i;

    static const char *const  keys[] = {
        "path", "layer", "type", "name", "year", "month", "month_num", "day",
        "time", "country", "region", "city", "slug", "visibility",
        "created_by", "tags", "figures", "one_liner", "flash_timepoint_id",
        "flash_slug", "flash_share_url", "era", "image_url", "text_model",
        "image_model", "model_provider", "model_permissiveness",
        "generation_id", "created_at", "sort_key", "search", NULL
    };

    n = node_of(SEED, NULL);
    ok(n != NULL, "seed node is a JSON object whose path is the path");

    if (n == NULL) {
        return;
    }

    all_ok = 1;

    for (i = 0; keys[i]; i++) {
        if (json_object_get(n, keys[i]) == NULL) {
            printf("# missing %s\n", keys[i]);
            all_ok = 0;
        }
    }

    ok(all_ok && json_object_size(n) == i, "node has exactly the keys");

    ok(num(n, "layer") == 2 && strcmp(str(n, "type"), "event") == 0,
       "layer 2, type event");
    ok(strcmp(str(n, "name"), "Signing of the Declaration of Independence")
       == 0, "name from the scene");
    ok(json_is_integer(json_object_get(n, "year")) && num(n, "year") == 1776
       && strcmp(str(n, "month"), "july") == 0 && num(n, "month_num") == 7
       && num(n, "day") == 4 && strcmp(str(n, "time"), "1200") == 0,
       "year, month, month_num, day, time");
    ok(strcmp(str(n, "country"), "united-states") == 0
       && strcmp(str(n, "region"), "pennsylvania") == 0
       && strcmp(str(n, "city"), "philadelphia") == 0
       && strcmp(str(n, "slug"), "signing-declaration-independence-3f4a")
          == 0, "country, region, city, slug");
    ok(strcmp(str(n, "visibility"), "public") == 0
       && strcmp(str(n, "created_by"), "user-42") == 0
       && strcmp(str(n, "created_at"), CREATED_AT) == 0,
       "visibility, created_by, created_at from the job");
    ok(json_is_array(json_object_get(n, "tags"))
       && json_array_size(json_object_get(n, "tags")) == 0
       && json_is_array(json_object_get(n, "figures"))
       && json_array_size(json_object_get(n, "figures")) == 0,
       "tags and figures are empty arrays when missing");
    ok(strcmp(str(n, "one_liner"), QUERY) == 0,
       "one_liner falls back to the query");
    ok(json_is_null(json_object_get(n, "flash_timepoint_id"))
       && strcmp(str(n, "generation_id"), JOB_ID) == 0,
       "no Flash id: flash_timepoint_id null, generation_id the job id");
    ok(strcmp(str(n, "flash_slug"), "signing-declaration-independence-3f4a")
       == 0, "flash_slug is Flash's slug");
    ok(json_is_null(json_object_get(n, "flash_share_url"))
       && json_is_null(json_object_get(n, "era"))
       && json_is_null(json_object_get(n, "image_url"))
       && json_is_null(json_object_get(n, "image_model")),
       "missing strings are null");
    ok(strcmp(str(n, "text_model"), "deepseek/deepseek-chat") == 0
       && strcmp(str(n, "model_provider"), "openrouter") == 0
       && strcmp(str(n, "model_permissiveness"), "permissive") == 0,
       "text_model, model_provider, permissive");
    ok(json_is_integer(json_object_get(n, "sort_key"))
       && num(n, "sort_key") == 177607041200LL, "sort_key of the seed");

    json_decref(n);

    /* the other fields */

    n = node_of("{'year':1776,'id':'tp-1','timepoint_id':'tp-2',"
                "'era':'American Revolution','share_url':' https://x/s ',"
                "'image_url':'https://x/i.png','image_model_used':'flux',"
                "'text_model_used':'mistralai/mistral','tags':"
                "['  War ','war',5,'Politics',null,'POLITICS','','  ',"
                "'ÉTÉ','été'],'characters':{'characters':[{'name':"
                "'Jefferson'},{'name':' Jefferson '},{'name':5},'x',"
                "{'name':'Adams'},{'nom':'z'},{'name':''}]},"
                "'moment':{'plot_summary':' Delegates sign. '}}", NULL);

    ok(n != NULL, "a full scene gives a node");

    if (n == NULL) {
        return;
    }

    ok(strcmp(str(n, "flash_timepoint_id"), "tp-1") == 0
       && strcmp(str(n, "generation_id"), "tp-1") == 0,
       "id wins over timepoint_id, and is the generation_id");
    ok(strcmp(str(n, "era"), "American Revolution") == 0
       && strcmp(str(n, "flash_share_url"), "https://x/s") == 0
       && strcmp(str(n, "image_url"), "https://x/i.png") == 0
       && strcmp(str(n, "image_model"), "flux") == 0,
       "era, share url (trimmed), image url, image model");
    ok(strcmp(str(n, "model_provider"), "mistralai") == 0
       && strcmp(str(n, "model_permissiveness"), "permissive") == 0,
       "provider from the model name");
    ok(json_is_null(json_object_get(n, "flash_slug")), "no slug: null");
    ok(strcmp(str(n, "name"), QUERY) == 0, "no name: the query");

    a = json_object_get(n, "tags");
    ok(json_array_size(a) == 3
       && strcmp(json_string_value(json_array_get(a, 0)), "war") == 0
       && strcmp(json_string_value(json_array_get(a, 1)), "politics") == 0
       && strcmp(json_string_value(json_array_get(a, 2)), "été") == 0,
       "tags: strings only, trimmed, lowercased (Unicode), deduplicated");

    a = json_object_get(n, "figures");
    ok(json_array_size(a) == 2
       && strcmp(json_string_value(json_array_get(a, 0)), "Jefferson") == 0
       && strcmp(json_string_value(json_array_get(a, 1)), "Adams") == 0,
       "figures: names only, trimmed, deduplicated");
    ok(strcmp(str(n, "one_liner"), "Delegates sign.") == 0,
       "one_liner from the plot summary");

    json_decref(n);

    n = node_of("{'year':1776,'timepoint_id':42,'image_url':"
                "'DATA:image/png;base64,AAAA','era':5,'share_url':[],"
                "'text_model_used':{},'slug':'  raw  ',"
                "'characters':[{'name':'Franklin'}]}", NULL);
    ok(n != NULL
       && strcmp(str(n, "flash_timepoint_id"), "42") == 0
       && strcmp(str(n, "generation_id"), "42") == 0
       && json_is_null(json_object_get(n, "image_url"))
       && json_is_null(json_object_get(n, "era"))
       && json_is_null(json_object_get(n, "flash_share_url"))
       && json_is_null(json_object_get(n, "text_model"))
       && json_is_null(json_object_get(n, "model_provider"))
       && strcmp(str(n, "model_permissiveness"), "unknown") == 0
       && strcmp(str(n, "flash_slug"), "raw") == 0
       && json_array_size(json_object_get(n, "figures")) == 1,
       "integer timepoint_id, data: image dropped, non-strings null, "
       "no provider: unknown, characters as a bare list");
    json_decref(n);

    n = node_of("{'year':1776,'image_url':' data:text/html,x'}", NULL);
    ok(n && json_is_null(json_object_get(n, "image_url")),
       "padded data: URI dropped too");
    json_decref(n);

    n = node_of("{'year':-44,'month':3,'day':15,'time_of_day':'morning'}",
                NULL);
    ok(n && num(n, "year") == -44 && num(n, "sort_key") == -4396849100LL,
       "BCE sort_key");
    json_decref(n);
}


static void
test_node_limits(void)
{
    char        *scene, *p, name[128];
    size_t       i, n, chars;
    json_t      *node, *a, *s;
    const char  *v;

    scene = malloc(1 << 20);

    /* 60 distinct tags, one long one, 60 figures, long summary, long name */

    p = scene;
    p += sprintf(p, "{'year':1776,'tags':['");

    for (i = 0; i < 150; i++) {
        p += sprintf(p, "é");                             /* 300 bytes */
    }

    p += sprintf(p, "'");

    for (i = 0; i < 60; i++) {
        p += sprintf(p, ",'t%zu'", i);
    }

    p += sprintf(p, "],'characters':{'characters':[{'name':'");

    for (i = 0; i < 150; i++) {
        p += sprintf(p, "€");                             /* 450 bytes */
    }

    p += sprintf(p, "'}");

    for (i = 0; i < 60; i++) {
        p += sprintf(p, ",{'name':'F%zu'}", i);
    }

    p += sprintf(p, "]},'moment':{'plot_summary':'");

    for (i = 0; i < 250; i++) {
        p += sprintf(p, "😀");                            /* 4 bytes each */
    }

    p += sprintf(p, "'},'name':'");

    for (i = 0; i < 1500; i++) {
        p += sprintf(p, "ü");                             /* 3000 bytes */
    }

    p += sprintf(p, "','era':'");

    for (i = 0; i < 3000; i++) {
        *p++ = 'e';
    }

    p += sprintf(p, "','share_url':'https://x/");

    for (i = 0; i < 3000; i++) {
        *p++ = 'u';
    }

    sprintf(p, "'}");

    node = node_of(scene, NULL);
    ok(node != NULL, "a scene with long fields gives a node");

    if (node == NULL) {
        free(scene);
        return;
    }

    a = json_object_get(node, "tags");
    v = json_string_value(json_array_get(a, 0));
    ok(json_array_size(a) == NGX_HTTP_CLOCKCHAIN_TAGS_MAX,
       "at most 50 tags");
    ok(strlen(v) == 100 && valid_utf8(v, strlen(v)),
       "a long tag is cut at 100 bytes on a character boundary");

    a = json_object_get(node, "figures");
    v = json_string_value(json_array_get(a, 0));
    ok(json_array_size(a) == NGX_HTTP_CLOCKCHAIN_FIGURES_MAX,
       "at most 50 figures");
    ok(strlen(v) == 198 && valid_utf8(v, strlen(v)),
       "a long figure is cut at 200 bytes on a character boundary");

    v = str(node, "one_liner");
    ok(strlen(v) == 800 && valid_utf8(v, strlen(v)),
       "one_liner: 200 four-byte characters");

    v = str(node, "name");
    ok(strlen(v) == 2000 && valid_utf8(v, strlen(v)),
       "name capped at 2000 bytes on a boundary");
    ok(strlen(str(node, "era")) == 2000, "era capped at 2000 bytes");
    ok(json_is_null(json_object_get(node, "flash_share_url")),
       "a URL longer than 2000 bytes is dropped, not cut");

    /* a cut slug keeps Flash's hex suffix */
    ok(strlen(str(node, "slug")) <= 100, "long name slug capped");
    json_decref(node);

    p = scene;
    p += sprintf(p, "{'year':1776,'slug':'");

    for (i = 0; i < 150; i++) {
        p += sprintf(p, "ab ");
    }

    sprintf(p, "-9f3C'}");

    node = node_of(scene, NULL);
    v = node ? str(node, "slug") : "";
    n = strlen(v);
    ok(n <= 100 && n > 5 && strcmp(v + n - 5, "-9f3c") == 0
       && safe_path(str(node, "path")),
       "a too long slug is cut but keeps its hex suffix");
    json_decref(node);

    p = scene;
    p += sprintf(p, "{'year':1776,'slug':'");

    for (i = 0; i < 150; i++) {
        p += sprintf(p, "a-");
    }

    sprintf(p, "'}");

    node = node_of(scene, NULL);
    v = node ? str(node, "slug") : "";
    ok(strlen(v) == 99 && v[98] == 'a', "a long slug without suffix is cut "
       "without a trailing '-'");
    json_decref(node);

    /* one_liner of two-byte characters */

    p = scene;
    p += sprintf(p, "{'year':1776,'moment':{'plot_summary':'");

    for (i = 0; i < 300; i++) {
        p += sprintf(p, "ж");
    }

    sprintf(p, "'}}");

    node = node_of(scene, NULL);
    v = node ? str(node, "one_liner") : "";

    for (chars = 0, i = 0; v[i]; i++) {
        chars += ((v[i] & 0xc0) != 0x80);
    }

    ok(chars == 200 && strlen(v) == 400 && valid_utf8(v, strlen(v)),
       "one_liner cut at 200 code points of multibyte text");
    json_decref(node);

    /* duplicate tags across a large list stay bounded */

    p = scene;
    p += sprintf(p, "{'year':1776,'tags':['x'");

    for (i = 0; i < 20000; i++) {
        p += sprintf(p, ",'X'");
    }

    sprintf(p, ",'y']}");

    node = node_of(scene, NULL);
    ok(node && json_array_size(json_object_get(node, "tags")) == 2,
       "20000 duplicate tags collapse to one");
    json_decref(node);

    /* tags in all shapes */

    for (i = 0; i < 4; i++) {
        static const char *const  shapes[] = {
            "{'year':1776,'tags':'a,b'}", "{'year':1776,'tags':{'a':1}}",
            "{'year':1776,'tags':null}", "{'year':1776,'tags':[[],{},1.5]}"
        };

        node = node_of(shapes[i], NULL);
        s = node ? json_object_get(node, "tags") : NULL;
        snprintf(name, sizeof(name), "tags %s -> []", shapes[i]);
        ok(json_is_array(s) && json_array_size(s) == 0, name);
        json_decref(node);
    }

    free(scene);
}


static void
test_in(void)
{
    int                              rc;
    char                             err[256], *path, *node;
    json_t                          *n;
    const char                      *p;
    ngx_http_clockchain_scene_in_t   in;

    memset(&in, 0, sizeof(in));

    rc = run_in("{'year':1776}", &in, &path, &node, err, sizeof(err));
    n = (rc == 1) ? json_loads(node, 0, NULL) : NULL;
    ok(n && strcmp(str(n, "created_by"), "system") == 0
       && strcmp(str(n, "visibility"), "private") == 0
       && json_is_null(json_object_get(n, "created_at"))
       && json_is_null(json_object_get(n, "generation_id"))
       && json_is_null(json_object_get(n, "name"))
       && json_is_null(json_object_get(n, "one_liner"))
       && strcmp(strrchr(path, '/'), "/unknown") == 0,
       "an empty job: defaults and nulls, slug unknown");
    json_decref(n);

    if (rc == 1) {
        free(path);
        free(node);
    }

    rc = run_in("{'year':1776,'query':'Scene query, x'}", &in, &path, &node,
                err, sizeof(err));
    ok(rc == 1 && strcmp(strrchr(path, '/'), "/scene-query") == 0,
       "no job query: the scene's query");

    if (rc == 1) {
        free(path);
        free(node);
    }

    in.created_by = "\xff\xfeuser\xc3";
    in.query = "bad \xe2\x82 query";
    in.job_id = JOB_ID;

    rc = run_in("{'year':1776}", &in, &path, &node, err, sizeof(err));
    n = (rc == 1) ? json_loads(node, 0, NULL) : NULL;
    ok(n && strcmp(str(n, "created_by"),
                   "\xef\xbf\xbd\xef\xbf\xbduser\xef\xbf\xbd") == 0
       && strcmp(str(n, "name"), "bad \xef\xbf\xbd\xef\xbf\xbd query") == 0,
       "invalid UTF-8 from the job becomes U+FFFD");
    json_decref(n);

    if (rc == 1) {
        free(path);
        free(node);
    }

    rc = ngx_http_clockchain_scene_to_node(NULL, 0, NULL, &path, &node, err,
                                           sizeof(err));
    ok(rc == 0 && path == NULL && node == NULL
       && strstr(err, "invalid JSON"), "NULL body and NULL job");

    rc = ngx_http_clockchain_scene_to_node("{\"year\":", 8, NULL, &path,
                                           &node, err, 0);
    ok(rc == 0, "errlen 0 is honoured");

    p = "{\"year\":1,\"x\":\"\xff\"}";
    rc = ngx_http_clockchain_scene_to_node(p, strlen(p), NULL, &path, &node,
                                           err, sizeof(err));
    ok(rc == 0 && strstr(err, "invalid JSON") && valid_utf8(err, strlen(err)),
       "raw invalid UTF-8 in the body: invalid JSON, err valid UTF-8");

    rc = ngx_http_clockchain_scene_to_node("{\"year\":1776}xyz", 13, NULL,
                                           &path, &node, err, sizeof(err));
    ok(rc == 1, "len bounds the body");

    if (rc == 1) {
        free(path);
        free(node);
    }

    p = "{\"model_provider\":\"openai\",\"text_model_used\":\""
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}";
    rc = ngx_http_clockchain_scene_to_node(p, strlen(p), NULL, &path, &node,
                                           err, 40);
    ok(rc == 0 && strlen(err) <= 39 && valid_utf8(err, strlen(err)),
       "a short err buffer is cut on a UTF-8 boundary");
}


static void
test_deep(void)
{
    int     rc;
    char   *body, err[256], *path, *node;
    size_t  i, n;

    n = 100000;
    body = malloc(2 * n + 64);

    /* deep nesting */

    for (i = 0; i < n; i++) {
        body[i] = '[';
    }

    rc = ngx_http_clockchain_scene_to_node(body, n, NULL, &path, &node, err,
                                           sizeof(err));
    ok(rc == 0 && strstr(err, "invalid JSON"), "deep nesting is refused");

    i = (size_t) sprintf(body, "{\"year\":1776,\"x\":");

    for (n = 0; n < 1000; n++) {
        body[i++] = '[';
    }

    for (n = 0; n < 1000; n++) {
        body[i++] = ']';
    }

    body[i++] = '}';

    rc = ngx_http_clockchain_scene_to_node(body, i, NULL, &path, &node, err,
                                           sizeof(err));
    ok(rc == 1, "moderate nesting in an unused field is fine");

    if (rc == 1) {
        free(path);
        free(node);
    }

    free(body);
}


static void
test_slugify(void)
{
    char    out[256], name[256];
    size_t  i, n;

    static const struct {
        const char  *in;
        size_t       outlen;
        const char  *out;
    } slugs[] = {
        { "Zürich", 101, "zurich" },
        { "  Hello,   World!  ", 101, "hello-world" },
        { "a--b__c", 101, "a-b__c" },
        { "a - - b", 101, "a-b" },
        { "a.b", 101, "ab" },
        { "---", 101, "" },
        { "", 101, "" },
        { "Ünïcödé Çàfé", 101, "unicode-cafe" },
        { "Straße", 101, "strae" },
        { "Łódź", 101, "odz" },
        { "ﬁeld", 101, "field" },
        { "Ｆｕｌｌｗｉｄｔｈ", 101, "fullwidth" },
        { "x²", 101, "x2" },
        { "½", 101, "12" },
        { "北京", 101, "" },
        { "한국", 101, "" },
        { "🎉🎉", 101, "" },
        { "a\xff\xfe" "b\xc3", 101, "ab" },
        { "\xc0\xaf..\xc0\xaf", 101, "" },
        { "\xed\xa0\x80x", 101, "x" },
        { "../../etc/passwd", 101, "etcpasswd" },
        { "%2e%2e%2f", 101, "2e2e2f" },
        { "aaaa bbbb", 6, "aaaa" },
        { "aaaa bbbb", 10, "aaaa-bbbb" },
        { "aaaa bbbb", 7, "aaaa-b" },
        { "abc", 1, "" },
        { "abc", 2, "a" },
        { "-a-", 101, "a" },
        { "New\tYork", 101, "new-york" },
        { "Ǆemal", 101, "dzemal" },
        { "ÅNGSTRÖM", 101, "angstrom" },
    };

    for (i = 0; i < sizeof(slugs) / sizeof(slugs[0]); i++) {
        memset(out, 'Z', sizeof(out));
        n = ngx_http_clockchain_slugify(slugs[i].in, strlen(slugs[i].in), out,
                                        slugs[i].outlen);
        /* TAP names must not carry raw bytes that break the line */
        if (valid_utf8(slugs[i].in, strlen(slugs[i].in))
            && strchr(slugs[i].in, '\t') == NULL)
        {
            snprintf(name, sizeof(name), "slugify \"%s\" (outlen %zu) -> "
                     "\"%s\"", slugs[i].in, slugs[i].outlen, slugs[i].out);

        } else {
            snprintf(name, sizeof(name), "slugify case %zu (outlen %zu) -> "
                     "\"%s\"", i, slugs[i].outlen, slugs[i].out);
        }

        ok(n == strlen(slugs[i].out) && strcmp(out, slugs[i].out) == 0
           && out[slugs[i].outlen] == 'Z', name);
    }

    n = ngx_http_clockchain_slugify("abc", 3, out, 0);
    ok(n == 0, "slugify with outlen 0 writes nothing");

    n = ngx_http_clockchain_slugify("ab\0cd", 5, out, sizeof(out));
    ok(n == 4 && strcmp(out, "abcd") == 0, "NUL inside the input dropped");

    memset(name, 'a', 200);
    n = ngx_http_clockchain_slugify(name, 200, out, 101);
    ok(n == 100 && strlen(out) == 100, "cap at outlen - 1");
}


/* search words: ngx_http_clockchain_words(), and the node's "search" */

static int
collect(const char *word, size_t len, void *data)
{
    char  *out = data;
    size_t n = strlen(out);

    if (n + len + 2 > 512) {
        return 1;
    }

    if (n) {
        out[n++] = ' ';
    }

    memcpy(out + n, word, len);
    out[n + len] = '\0';

    return 0;
}


static const char *
words_of(const char *text)
{
    static char  out[512];

    out[0] = '\0';
    (void) ngx_http_clockchain_words(text, strlen(text), collect, out);

    return out;
}


static void
test_words(void)
{
    json_t  *n, *w;
    size_t   i;
    int      name;

    ok(strcmp(words_of("Zürich, São Paulo"), "zurich sao paulo") == 0,
       "words: casefolded, accents stripped, punctuation splits");
    ok(strcmp(words_of("Marie SKŁODOWSKA-Curie"),
              "marie sklodowska curie") == 0,
       "words: ł folded to l, a hyphen splits");
    ok(strcmp(words_of("İstanbul Straße ﬁne Søren"),
              "istanbul strasse fine soren") == 0,
       "words: İ, ß, the fi ligature, ø");
    ok(strcmp(words_of("a I x9 42 Apollo11"), "x9 42 apollo11") == 0,
       "words: one code point is no word; digits are letters");
    ok(strcmp(words_of("Internationalization"), "internationa") == 0,
       "words: cut to their first 12 code points");
    ok(strcmp(words_of("\xff\xfe" "ab\xff" "cd"), "ab cd") == 0,
       "words: an invalid byte separates words");
    ok(strcmp(words_of("«Ἀθῆναι» — 東京"), "αθηναι 東京") == 0,
       "words: other scripts, marks stripped");
    ok(strcmp(words_of(""), "") == 0 && strcmp(words_of(" -- "), "") == 0,
       "words: none in an empty text");

    n = node_of(SEED, NULL);
    w = n ? json_object_get(n, "search") : NULL;
    ok(json_is_array(w), "the node carries its search words");

    name = -1;

    for (i = 0; i < json_array_size(w); i++) {
        if (strcmp(json_string_value(json_array_get(json_array_get(w, i), 0)),
                   "declaration") == 0)
        {
            name = json_integer_value(json_array_get(json_array_get(w, i),
                                                     1));
        }
    }

    ok(name == 0, "a word of the name is of class 0");
    json_decref(n);
}


static void
test_flash_error(void)
{
    char    out[4096], body[1024], expect[2048], name[128], code[8];
    size_t  n, i, prefix;

    static const long  statuses[] = {
        400, 401, 402, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504
    };

    n = ngx_http_clockchain_flash_error(422,
            "{\"detail\":\"Year must be a valid integer\"}", 41, out,
            sizeof(out));
    ok(n == strlen(out)
       && strcmp(out, "Flash API error: 422 Unprocessable Entity | response: "
                 "{\"detail\":\"Year must be a valid integer\"}") == 0,
       "422 with its body");

    for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        ngx_http_clockchain_flash_error(statuses[i], "", 0, out, sizeof(out));
        snprintf(name, sizeof(name), "status %ld has its reason phrase: %.60s",
                 statuses[i], out);
        snprintf(code, sizeof(code), "%ld ", statuses[i]);
        ok(strncmp(out + 17, code, 4) == 0
           && strncmp(out + 21, "Error |", 7) != 0, name);
    }

    n = ngx_http_clockchain_flash_error(402, "", 0, out, sizeof(out));
    ok(strcmp(out, "Flash API error: 402 Payment Required | response: ") == 0,
       "402 Payment Required, empty body");

    ngx_http_clockchain_flash_error(504, NULL, 0, out, sizeof(out));
    ok(strcmp(out, "Flash API error: 504 Gateway Timeout | response: ") == 0,
       "NULL body");

    ngx_http_clockchain_flash_error(418, "tea", 3, out, sizeof(out));
    ok(strcmp(out, "Flash API error: 418 Error | response: tea") == 0,
       "unknown status: Error");

    prefix = strlen("Flash API error: 500 Internal Server Error | response: ");

    memset(body, 'a', 600);
    n = ngx_http_clockchain_flash_error(500, body, 600, out, sizeof(out));
    ok(n == prefix + 500 && strlen(out) == n, "body cut at 500 bytes");

    memset(body, 'a', 499);
    memcpy(body + 499, "\xc3\xa9zzz", 5);
    n = ngx_http_clockchain_flash_error(500, body, 504, out, sizeof(out));
    ok(n == prefix + 499 && valid_utf8(out, n),
       "500-byte cut inside a 2-byte character drops it");

    memset(body, 'a', 497);
    memcpy(body + 497, "\xf0\x9f\x98\x80z", 5);
    n = ngx_http_clockchain_flash_error(500, body, 502, out, sizeof(out));
    ok(n == prefix + 497 && valid_utf8(out, n),
       "500-byte cut inside a 4-byte character drops it");

    memset(body, 'a', 496);
    memcpy(body + 496, "\xf0\x9f\x98\x80z", 5);
    n = ngx_http_clockchain_flash_error(500, body, 501, out, sizeof(out));
    ok(n == prefix + 500 && valid_utf8(out, n),
       "a character ending at byte 500 is kept");

    n = ngx_http_clockchain_flash_error(500, "a\xff" "b\xc3", 4, out,
                                        sizeof(out));
    snprintf(expect, sizeof(expect), "Flash API error: 500 Internal Server "
             "Error | response: a\xef\xbf\xbd" "b\xef\xbf\xbd");
    ok(strcmp(out, expect) == 0 && n == strlen(expect),
       "invalid bytes replaced by U+FFFD");

    n = ngx_http_clockchain_flash_error(500, "a\0b", 3, out, sizeof(out));
    ok(n == prefix + 5 && strlen(out) == n && valid_utf8(out, n),
       "a NUL in the body is replaced");

    n = ngx_http_clockchain_flash_error(500, "\xc0\xaf\xed\xa0\x80", 5, out,
                                        sizeof(out));
    ok(n == prefix + 15 && valid_utf8(out, n),
       "overlong forms and surrogates replaced byte by byte");

    memset(body, 0xff, 600);
    n = ngx_http_clockchain_flash_error(500, body, 600, out, sizeof(out));
    ok(n == prefix + 1500 && valid_utf8(out, n),
       "500 invalid bytes become 500 replacement characters");

    n = ngx_http_clockchain_flash_error(500, "\xc3\xa9\xc3\xa9", 4, out,
                                        prefix + 4);
    ok(n == prefix + 2 && strlen(out) == n && valid_utf8(out, n),
       "a small out buffer is cut on a character boundary");

    n = ngx_http_clockchain_flash_error(500, "abc", 3, out, 10);
    ok(n == 9 && strcmp(out, "Flash API") == 0, "out shorter than the prefix");

    out[0] = 'Z';
    n = ngx_http_clockchain_flash_error(500, "abc", 3, out, 0);
    ok(n == 0 && out[0] == 'Z', "outlen 0 writes nothing");

    n = ngx_http_clockchain_flash_error(-1, "x", 1, out, sizeof(out));
    ok(strcmp(out, "Flash API error: -1 Error | response: x") == 0,
       "odd status printed as is");
}


static long  alloc_left, alloc_live;


static void *
failing_malloc(size_t size)
{
    void  *p;

    if (alloc_left-- <= 0) {
        return NULL;
    }

    p = malloc(size);

    if (p) {
        alloc_live++;
    }

    return p;
}


static void
counting_free(void *p)
{
    if (p) {
        alloc_live--;
    }

    free(p);
}


static void
test_oom(void)
{
    int    rc, all_ok, done;
    char  *body, err[256], *path, *node;
    long   k;

    body = json_of("{'year':1776,'id':'x','name':'N','tags':['a','b'],"
                   "'characters':{'characters':[{'name':'F'}]},"
                   "'location':'A, B, C','moment':{'plot_summary':'p'},"
                   "'era':'e','text_model_used':'m/x'}");

    all_ok = 1;
    done = 0;

    for (k = 0; k < 10000 && !done; k++) {
        alloc_left = k;
        alloc_live = 0;
        json_set_alloc_funcs(failing_malloc, counting_free);

        rc = ngx_http_clockchain_scene_to_node(body, strlen(body), NULL, &path,
                                               &node, err, sizeof(err));

        json_set_alloc_funcs(malloc, free);

        if (rc == 1) {
            done = 1;
            free(path);
            free(node);

        } else if (!(rc == -1
                     || (rc == 0 && strstr(err, "invalid JSON") != NULL))
                   || path != NULL || node != NULL)
        {
            printf("# allocation %ld: rc %d %s\n", k, rc, err);
            all_ok = 0;
        }

        if (alloc_live != 0) {
            printf("# allocation %ld: %ld blocks leaked\n", k, alloc_live);
            all_ok = 0;
        }
    }

    /* jansson's parser reports some of its failed allocations as bad JSON */
    ok(all_ok && done, "a failed allocation anywhere gives -1 (or invalid "
       "JSON while parsing) and leaks nothing");

    free(body);
}


/* a small deterministic PRNG: xorshift64 */

static uint64_t  rnd_state = 0x9e3779b97f4a7c15ULL;


static uint64_t
rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;

    return rnd_state;
}


static int
check_result(int rc, char *path, char *node, const char *err)
{
    int      good;
    json_t  *j;

    if (rc == 0) {
        return path == NULL && node == NULL && err[0] != '\0'
               && valid_utf8(err, strlen(err));
    }

    if (rc != 1) {
        return 0;
    }

    good = safe_path(path);

    j = json_loads(node, 0, NULL);

    good = good && j && json_object_size(j) == 31
           && strcmp(str(j, "path"), path) == 0;

    json_decref(j);
    free(path);
    free(node);

    return good;
}


static void
test_fuzz(void)
{
    int          rc, all_ok;
    char        *body, *seed, err[NGX_HTTP_CLOCKCHAIN_ERR_LEN], out[128];
    char        *path, *node, scene[4096];
    size_t       i, j, len, n;
    const char  *p;

    static const char *const  values[] = {
        "null", "true", "1", "-1", "0", "13", "1776", "-44", "1.5", "1e400",
        "[]", "{}", "[1,'a']", "{'characters':[{'name':'x'}]}",
        "''", "' '", "'..'", "'/'", "'a/b'", "'Zürich, CH'", "'北京'",
        "'🎉'", "'\\u0001'", "'\\ud83c\\udf89'", "'ǅ'", "'data:x'",
        "'morning'", "'July'", "'gemini'", "'openai/x'", "'Google'",
        "'a,b,c,d,e'", "',,,'", "'ﬁ ① ²'", "9223372036854775807",
        "-9223372036854775808", "'\\u00a0\\u3000'", "[[[[[]]]]]",
    };

    static const char *const  keys[] = {
        "id", "timepoint_id", "name", "slug", "year", "month", "day",
        "time_of_day", "location", "tags", "characters", "moment",
        "grounding", "era", "image_url", "share_url", "text_model_used",
        "image_model_used", "model_provider", "model_permissiveness", "query"
    };

    /* random scenes built from hostile values */

    all_ok = 1;

    for (i = 0; i < 20000; i++) {
        len = (size_t) sprintf(scene, "{");

        for (j = 0; j < sizeof(keys) / sizeof(keys[0]); j++) {
            if (rnd() % 3 == 0) {
                continue;
            }

            p = values[rnd() % (sizeof(values) / sizeof(values[0]))];

            if (strcmp(keys[j], "year") == 0 && rnd() % 2) {
                p = "1776";
            }

            if (strcmp(keys[j], "grounding") == 0 && rnd() % 2) {
                p = "{'verified_year':-5}";
            }

            if (strcmp(keys[j], "moment") == 0 && rnd() % 2) {
                p = "{'plot_summary':'ж'}";
            }

            len += (size_t) sprintf(scene + len, "%s'%s':%s",
                                    len > 1 ? "," : "", keys[j], p);
        }

        sprintf(scene + len, "}");

        err[0] = '\0';
        path = node = NULL;

        rc = run(scene, rnd() % 4 ? NULL : "\xff,\xfe", &path, &node, err,
                 sizeof(err));

        if (!check_result(rc, path, node, err)) {
            printf("# failed on %s\n", scene);
            all_ok = 0;
            break;
        }
    }

    ok(all_ok, "20000 random hostile scenes: safe paths, valid nodes");

    /* byte mutations of the seed */

    seed = json_of(SEED);
    n = strlen(seed);
    body = malloc(n + 64);
    all_ok = 1;

    for (i = 0; i < 20000; i++) {
        memcpy(body, seed, n);
        len = n;

        for (j = rnd() % 4 + 1; j; j--) {
            switch (rnd() % 3) {

            case 0:
                body[rnd() % len] = (char) rnd();
                break;

            case 1:
                if (len > 1) {
                    len--;
                }

                break;

            default:
                if (len < n + 60) {
                    body[len++] = "{}[],:\"\\0-."[rnd() % 11];
                }
            }
        }

        err[0] = '\0';
        path = node = NULL;

        rc = ngx_http_clockchain_scene_to_node(body, len, NULL, &path, &node,
                                               err, sizeof(err));

        if (!check_result(rc, path, node, err)) {
            printf("# failed on mutation %zu\n", i);
            all_ok = 0;
            break;
        }
    }

    ok(all_ok, "20000 byte mutations of the seed: no crash, safe results");

    free(seed);
    free(body);

    /* random bytes through slugify */

    all_ok = 1;

    for (i = 0; i < 50000; i++) {
        len = rnd() % 64;

        for (j = 0; j < len; j++) {
            scene[j] = (char) rnd();
        }

        n = ngx_http_clockchain_slugify(scene, len, out,
                                        (size_t) (rnd() % 32 + 1));

        if (n != strlen(out) || (n && (out[0] == '-' || out[n - 1] == '-'))
            || strspn(out, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n
            || strstr(out, "--"))
        {
            all_ok = 0;
        }
    }

    ok(all_ok, "50000 random byte strings slugify to [a-z0-9_-], "
       "no leading, trailing or double '-'");
}


int
main(void)
{
    if (regcomp(&path_re, PATH_RE, REG_EXTENDED | REG_NOSUB) != 0) {
        printf("not ok 1 - path regex compiles\n1..1\n");
        return 1;
    }

    test_cases();
    test_times();
    test_node();
    test_node_limits();
    test_in();
    test_deep();
    test_slugify();
    test_flash_error();
    test_words();
    test_oom();
    test_fuzz();

    regfree(&path_re);

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}

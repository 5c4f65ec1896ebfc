-- Browse: the counts one level below a prefix of the canonical path
-- (/year/month/DD/HHMM/country/region/city/slug) that the requester may
-- see, as complete.lua keeps them (idx:ba:<parent> for the service;
-- idx:bs:<parent> and idx:bu:<parent>|<user> for a user), never the
-- keyspace.  The service's is one hash, which the module reads with a
-- plain HGETALL; a user's are two, read here in one step so that they
-- agree.  The module adds and sorts them (ngx_http_clockchain_search.c).
--
-- ARGV[1]  graph key prefix ("<prefix>{cc}:v1:")
-- ARGV[2]  who asks: "service" (every node) or "user" (public, "system"'s
--          and ARGV[3]'s own)
-- ARGV[3]  the user, or ""
-- ARGV[4]  the parent: "/" or "/1969", "/1969/july", ... (checked in C)
--
-- Returns { { segment, count, ... } } for the service, { { shared... },
-- { own... } } for a user, each as HGETALL gives it.

local p, mode, user, parent = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

if mode == 'service' then
    return { redis.call('HGETALL', p .. 'idx:ba:' .. parent) }
end

return { redis.call('HGETALL', p .. 'idx:bs:' .. parent),
         redis.call('HGETALL', p .. 'idx:bu:' .. parent .. '|' .. user) }

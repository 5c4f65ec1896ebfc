-- Complete a job: write its graph node and auto-edges, then mark the job
-- completed, all in one step and fenced by the claim's token.
--
-- KEYS[1]  the job hash
-- KEYS[2]  the processing set
-- KEYS[3]  the confirming set (sorted set: job id by Redis time, ms), for
--          ARGV[11]
-- ARGV[1]  fencing token
-- ARGV[2]  job id
-- ARGV[3]  completed_at
-- ARGV[4]  the node's canonical path
-- ARGV[5]  the node, a JSON object (see ngx_http_clockchain_scene.c)
-- ARGV[6]  graph key prefix ("<prefix>{cc}:v1:")
-- ARGV[7]  the most edges of one type from one new node
-- ARGV[8]  attempts made, recorded with the job
-- ARGV[9]  the events channel (and "<it>:final" for the final state,
--          "<it>:moments" for the nodes whose public answer changed)
-- ARGV[10] how long the finished job is kept, seconds (the node stays)
-- ARGV[11] "1" (clockchain_redis wait=): the outcome is kept beside the
--          job, which stays as it is for every reader ("kept", "kept_at",
--          "kept_path", and the job in the confirming set), until the
--          runner has WAIT's word that replicas have it and reveal.lua
--          makes it the job's; absent or "" otherwise.  The node and its
--          edges are written here all the same, and the ":moments"
--          message published: it only makes every nginx read the node
--          again
--
-- Keys written: node:<path> (hash), edges:<path> (hash "<type>|<other>" ->
-- edge JSON), and the indexes idx:time, idx:date:<y>:<m>:<d>,
-- idx:loc:<country>/<region>/<city>, idx:fig:<name>, idx:tag:<tag>
-- (sorted sets of paths by sort key), all under the {cc} hash tag, and
-- the counters in stats (hash: nodes, edges, edges:<type>, layer:<n>,
-- last_updated): a node counts once, when its hash is new, an edge once,
-- when its field is new, so that /api/stats never scans the graph.
-- The read indexes, so that lists, browse and search never scan either
-- (docs/architecture.md, "Search and browse"):
-- idx:pub:time (the public nodes by sort key, so that the public's list
-- is a page by rank); browse counts for each of the path's eight levels,
-- idx:ba:<parent> (hash "<segment>" -> every node under it: the
-- service's view), idx:bs:<parent> (the public nodes and the private ones
-- of "system": what every user sees) and idx:bu:<parent>|<user> (that
-- user's own private nodes); search: idx:vocab (sorted set of every
-- indexed word, score 0, for ZRANGEBYLEX by prefix) and idx:word:<word>
-- (sorted set of the paths with that word, scored 4 * class + group:
-- class 0 name, 1 one-liner, 2 tag or figure, the least the word has;
-- group 0 public, 1 private of "system", 2 private of a user, who also
-- has idx:word:<word>|<user>).  The node JSON carries its words as
-- "search" (normalised in C, not stored in the node); words:<path> keeps
-- them as " <class><word>" each, to take them out again when the node
-- changes and for search's other words.  idx:version changes with every
-- node written (the zone's graph reads are checked against it).  list.lua, browse.lua and
-- search.lua read these.
-- A node belongs to its first creator (created_by): a job of the same
-- creator landing on its path updates it; a job of another creator gets a
-- node of its own, the same path with the slug's hex suffix (or, with none,
-- the end of the slug) replaced by 4 hex digits of its job id, the next 4
-- if that path is taken too, and so on; after 8 tries, all 32.  The job's
-- path always names a node its creator may read.
--
-- Returns { the job's new version, the node's path }, or an error FENCED
-- when the claim is no longer current, or PATH_TAKEN when every path tried
-- belongs to another creator (nothing is written then); the same outcome
-- sent again (its reply was lost) returns what it returned then, and
-- writes nothing.  "outcome" in the job hash is "<token> completed" from
-- then on.

if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1]
   or redis.call('HGET', KEYS[1], 'status') ~= 'processing'
then
    if redis.call('HGET', KEYS[1], 'outcome') == ARGV[1] .. ' completed' then
        -- this very outcome, written before: its reply was lost with the
        -- connection, or WAIT did not confirm it, and the runner sent it
        -- again.  A write all the same, that the WAIT after it counts: a
        -- new connection's WAIT would otherwise have nothing to wait for
        redis.call('HSET', KEYS[1], 'outcome', ARGV[1] .. ' completed')
        local kept = redis.call('HGET', KEYS[1], 'kept_path')
        if kept then
            local t = redis.call('TIME')
            redis.call('ZADD', KEYS[3], tonumber(t[1]) * 1000
                                        + math.floor(tonumber(t[2]) / 1000),
                       ARGV[2])
        end
        return { tonumber(redis.call('HGET', KEYS[1], 'version') or '0'),
                 kept or redis.call('HGET', KEYS[1], 'path') }
    end
    return redis.error_reply('FENCED')
end

local path = ARGV[4]
local node = cjson.decode(ARGV[5])
local p = ARGV[6]
local cap = tonumber(ARGV[7])
local nkey = p .. 'node:' .. path

-- a path whose node another creator made stays theirs

local function taken(key)
    return redis.call('EXISTS', key) == 1
           and redis.call('HGET', key, 'created_by') ~= node.created_by
end

if taken(nkey) then
    local dir, slug = string.match(path, '^(.*/)([^/]*)$')
    local head, hex = string.match(slug, '^(.*)%-(%x+)$')
    local digits = string.gsub(ARGV[2], '-', '')
    local free = nil

    if hex and #hex >= 4 and #hex <= 16 and head ~= '' then
        slug = head
    end

    for i = 0, 8 do
        local suffix = i < 8 and string.sub(digits, 4 * i + 1, 4 * i + 4)
                       or digits
        -- a segment is at most 100 bytes (ngx_http_clockchain_scene.h)
        local base = string.gsub(string.sub(slug, 1, 99 - #suffix), '%-+$', '')
        local s = base ~= '' and base .. '-' .. suffix or suffix

        if not taken(p .. 'node:' .. dir .. s) then
            free = s
            break
        end
    end

    if free == nil then
        return redis.error_reply('PATH_TAKEN')
    end

    path = dir .. free
    nkey = p .. 'node:' .. path
    node.path = path
    node.slug = free
end

local stats = p .. 'stats'

-- the node, its counters, auto-edges and indexes: lib/node.lua, which
-- ingest.lua shares, after lib/index.lua whose functions it uses

-- #include lib/index.lua
-- #include lib/node.lua

-- an update keeps the node's first creation time and its publication
node_put(path, node, { created_at = true, visibility = true })

-- the node, its edges and its neighbours' changed: every graph read the
-- zone keeps was read before
version(ARGV[2])

-- every nginx forgets what it cached of them ("*": every moment)
node_publish(ARGV[9] .. ':moments')

-- the job

-- never lower than counted: with wait= the claims count the attempts
if tonumber(ARGV[8]) > tonumber(redis.call('HGET', KEYS[1], 'attempts')
                                or '0')
then
    redis.call('HSET', KEYS[1], 'attempts', ARGV[8])
end
-- outcomes written: 1, and a fence that let a stale runner through shows
-- as 2 (the chaos checker reads it)
redis.call('HINCRBY', KEYS[1], 'finishes', 1)
redis.call('HDEL', KEYS[1], 'token')
redis.call('ZREM', KEYS[2], ARGV[2])

if ARGV[11] == '1' then
    -- kept until replicas have it: a reader of this primary still sees
    -- the job processing, so that no answer shows an outcome a failover
    -- could take back (and the job run again, to another one)
    local t = redis.call('TIME')
    redis.call('HSET', KEYS[1], 'kept', 'completed', 'kept_path', path,
               'kept_at', ARGV[3], 'outcome', ARGV[1] .. ' completed')
    redis.call('ZADD', KEYS[3], tonumber(t[1]) * 1000
                                + math.floor(tonumber(t[2]) / 1000), ARGV[2])
    return { tonumber(redis.call('HGET', KEYS[1], 'version') or '0'), path }
end

redis.call('HSET', KEYS[1], 'status', 'completed', 'path', path,
           'completed_at', ARGV[3], 'outcome', ARGV[1] .. ' completed')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[10]))

local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
-- the final state first, on "<channel>:final", so that no instance asks
-- Redis for it; then the change as every version of the module reads it
local event = ARGV[2] .. ' completed ' .. v
local created_at = redis.call('HGET', KEYS[1], 'created_at')
if created_at and #created_at == #ARGV[3] then
    redis.call('PUBLISH', ARGV[9] .. ':final', event .. ' ' .. created_at
                                               .. ' ' .. ARGV[3] .. ' ' .. path)
end
redis.call('PUBLISH', ARGV[9], event)

return { v, path }

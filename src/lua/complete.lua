-- Complete a job: write its graph node and auto-edges, then mark the job
-- completed, all in one step and fenced by the claim's token.
--
-- KEYS[1]  the job hash
-- KEYS[2]  the processing set
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
        -- connection and the runner sent it again
        return { tonumber(redis.call('HGET', KEYS[1], 'version')),
                 redis.call('HGET', KEYS[1], 'path') }
    end
    return redis.error_reply('FENCED')
end

local path = ARGV[4]
local node = cjson.decode(ARGV[5])
-- [[word, class], ...]: indexed below, not a field of the node
local words = type(node.search) == 'table' and node.search or {}
node.search = nil
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
local score = node.sort_key
local YEAR = 100000000

-- read before the node is written: is it new, and its layer until now
local stats = p .. 'stats'
local fresh = redis.call('EXISTS', nkey) == 0
local old_layer = redis.call('HGET', nkey, 'layer')
local old = redis.call('HMGET', nkey, 'visibility', 'created_by')

-- the node: a hash; lists as JSON, nulls absent; same path = same node

local fields = {}
for k, v in pairs(node) do
    if v == cjson.null then
        redis.call('HDEL', nkey, k)
    else
        if type(v) == 'table' then
            v = cjson.encode(v)
        end
        fields[#fields + 1] = k
        fields[#fields + 1] = tostring(v)
    end
end

if redis.call('HEXISTS', nkey, 'created_at') == 1 then
    -- an update keeps the node's first creation time and its publication
    for i = 1, #fields, 2 do
        if fields[i] == 'created_at' or fields[i] == 'visibility' then
            fields[i + 1] = redis.call('HGET', nkey, fields[i])
        end
    end
end

redis.call('HSET', nkey, unpack(fields))

-- the counters: a new node, or one whose layer moved

local layer = node.layer ~= nil and node.layer ~= cjson.null
              and tostring(node.layer) or nil

if fresh then
    redis.call('HINCRBY', stats, 'nodes', 1)
    if type(node.created_at) == 'string'
       and node.created_at > (redis.call('HGET', stats, 'last_updated') or '')
    then
        redis.call('HSET', stats, 'last_updated', node.created_at)
    end
end

if layer ~= old_layer then
    if old_layer then
        redis.call('HINCRBY', stats, 'layer:' .. old_layer, -1)
    end
    if layer then
        redis.call('HINCRBY', stats, 'layer:' .. layer, 1)
    end
end

-- nearer in time first; the same distance in path order, so it is stable

local function by_distance(a, b)
    local da, db = math.abs(a[2] - score), math.abs(b[2] - score)
    if da == db then
        return a[1] < b[1]
    end
    return da < db
end

-- nearest members of an index by time, self excluded

local function nearest(key, lo, hi, n)
    local found = {}
    local up = redis.call('ZRANGEBYSCORE', key, score, hi,
                          'WITHSCORES', 'LIMIT', 0, n + 1)
    local down = redis.call('ZREVRANGEBYSCORE', key, score, lo,
                            'WITHSCORES', 'LIMIT', 0, n + 1)
    local seen = {}
    for _, list in ipairs({ up, down }) do
        for i = 1, #list, 2 do
            local m = list[i]
            if m ~= path and not seen[m] then
                seen[m] = true
                found[#found + 1] = { m, tonumber(list[i + 1]) }
            end
        end
    end
    table.sort(found, by_distance)
    local out = {}
    for i = 1, math.min(n, #found) do
        out[i] = found[i]
    end
    return out
end

-- the nodes whose answer changes: the new node, each node given an edge
-- to it, and on an update every neighbour (its name may have changed)
local touched = {}

local function edge(source, target, etype, weight, theme)
    touched[source] = true
    local e = { source = source, target = target, type = etype,
                weight = weight, created_by = 'auto' }
    if theme then
        e.theme = theme
    end
    if redis.call('HSET', p .. 'edges:' .. source, etype .. '|' .. target,
                  cjson.encode(e)) == 1
    then
        redis.call('HINCRBY', stats, 'edges', 1)
        redis.call('HINCRBY', stats, 'edges:' .. etype, 1)
    end
end

local function both(other, etype, weight, theme)
    edge(path, other, etype, weight, theme)
    edge(other, path, etype, weight, theme)
end

local date_key = p .. 'idx:date:' .. node.year .. ':' .. node.month_num
                 .. ':' .. node.day
local loc_key = p .. 'idx:loc:' .. node.country .. '/' .. node.region
                .. '/' .. node.city
local time_key = p .. 'idx:time'

-- contemporaneous: the same year, month and day

for _, o in ipairs(nearest(date_key, '-inf', '+inf', cap)) do
    both(o[1], 'contemporaneous', 0.8)
end

-- same_era: within ten years, not the same date; precedes / follows

local lo = (node.year - 10) * YEAR
local hi = (node.year + 11) * YEAR - 1
local era, later, earlier = {}, {}, {}

for _, o in ipairs(nearest(time_key, lo, hi, 4 * cap)) do
    if redis.call('ZSCORE', date_key, o[1]) == false then
        era[#era + 1] = o
        if o[2] > score then
            later[#later + 1] = o
        elseif o[2] < score then
            earlier[#earlier + 1] = o
        end
    end
end

for i = 1, math.min(cap, #era) do
    both(era[i][1], 'same_era', 0.3)
end

for i = 1, math.min(cap, #later) do
    edge(path, later[i][1], 'precedes', 0.4)
    edge(later[i][1], path, 'follows', 0.4)
end

for i = 1, math.min(cap, #earlier) do
    edge(path, earlier[i][1], 'follows', 0.4)
    edge(earlier[i][1], path, 'precedes', 0.4)
end

-- same_location

for _, o in ipairs(nearest(loc_key, '-inf', '+inf', cap)) do
    both(o[1], 'same_location', 0.5)
end

-- same_figure and thematic: shared names, sorted and ", "-joined

local function shared(kind, names, etype, weight)
    local cand, order = {}, {}
    for _, name in ipairs(names) do
        for _, o in ipairs(nearest(p .. 'idx:' .. kind .. ':' .. name,
                                   '-inf', '+inf', cap)) do
            if not cand[o[1]] then
                cand[o[1]] = o[2]
                order[#order + 1] = o
            end
        end
    end
    table.sort(order, by_distance)
    for i = 1, math.min(cap, #order) do
        local other = order[i][1]
        local common = {}
        for _, name in ipairs(names) do
            if redis.call('ZSCORE', p .. 'idx:' .. kind .. ':' .. name, other)
               ~= false then
                common[#common + 1] = name
            end
        end
        table.sort(common)
        both(other, etype, weight, table.concat(common, ', '))
    end
end

local figures = node.figures ~= cjson.null and node.figures or {}
local tags = node.tags ~= cjson.null and node.tags or {}

shared('fig', figures, 'same_figure', 0.6)
shared('tag', tags, 'thematic', 0.3)

-- index the node last, so that it is not its own neighbour above

redis.call('ZADD', time_key, score, path)
redis.call('ZADD', date_key, score, path)
redis.call('ZADD', loc_key, score, path)
for _, name in ipairs(figures) do
    redis.call('ZADD', p .. 'idx:fig:' .. name, score, path)
end
for _, tag in ipairs(tags) do
    redis.call('ZADD', p .. 'idx:tag:' .. tag, score, path)
end

-- lists, browse and search: see the header; group(), browse(),
-- version(), serial(), search() and clean_words() are shared with seed.lua

-- #include lib/index.lua

-- words:<path> as written: " <class><word>" each
local function parse(s)
    local out = {}
    for c, w in string.gmatch(s, ' (%d)(%S+)') do
        out[#out + 1] = { w, tonumber(c) }
    end
    return out
end

-- the words as indexed: each once, no space in one, at most 48 (scene.h)
local list = clean_words(words)

local now = redis.call('HMGET', nkey, 'visibility', 'created_by')
local g = group(now[1], now[2])
local wkey = p .. 'words:' .. path
local before = redis.call('GET', wkey)

if before and string.sub(before, 1, 1) ~= '[' then
    -- the same node written again: its old words out (its path, its
    -- visibility and so its place in browse and the public list stay)
    search(parse(before), path, group(old[1], old[2]), old[2], false)
else
    -- new, or written before these indexes (JSON words: the indexes of
    -- an older version, which ops/reindex.lua replaces)
    browse(path, g, now[2], 1)
    if g == 0 then
        redis.call('ZADD', p .. 'idx:pub:time', score, path)
    end
end

search(list, path, g, now[2], true)
redis.call('SET', wkey, serial(list))

-- the node, its edges and its neighbours' changed: every graph read the
-- zone keeps was read before
version(ARGV[2])

-- every nginx forgets what it cached of them ("*": every moment)

local changed = { path }
touched[path] = nil

if not fresh then
    if redis.call('HLEN', p .. 'edges:' .. path) > 256 then
        changed = nil
    else
        for _, field in ipairs(redis.call('HKEYS', p .. 'edges:' .. path)) do
            local other = string.match(field, '^[^|]*|(.*)$')
            if other then
                touched[other] = true
            end
        end
        touched[path] = nil
    end
end

if changed then
    for other in pairs(touched) do
        changed[#changed + 1] = other
        if #changed > 256 then
            changed = nil
            break
        end
    end
end

redis.call('PUBLISH', ARGV[9] .. ':moments',
           changed and table.concat(changed, ' ') or '*')

-- the job

redis.call('HSET', KEYS[1], 'status', 'completed', 'path', path,
           'completed_at', ARGV[3], 'attempts', ARGV[8],
           'outcome', ARGV[1] .. ' completed')
-- outcomes written: 1, and a fence that let a stale runner through shows
-- as 2 (the chaos checker reads it)
redis.call('HINCRBY', KEYS[1], 'finishes', 1)
redis.call('HDEL', KEYS[1], 'token')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[10]))
redis.call('ZREM', KEYS[2], ARGV[2])

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

-- The writers' workflow (the original's app/api/propose.py): propose a
-- moment, challenge one with a competing moment, verify one, reconcile
-- two; and the reads of it, a moment's challengers and its history.
-- Each is one step, so that two challenges at once, or a verify beside a
-- reconcile, leave the statuses as one after the other would.
--
-- ARGV[1]  graph key prefix ("<prefix>{cc}:v1:")
-- ARGV[2]  what to do: "propose", "challenge", "verify", "reconcile",
--          "challenges", "history"
-- ARGV[3]  now, ISO 8601 (idx:version's token)
-- ARGV[4]  the moments channel ("<events channel>:moments")
-- propose:    ARGV[5] {"node": node, "edges": [edge, ...]}, checked and
--             built in C (ngx_http_clockchain_seed_propose(): the node
--             with its sort_key and search words, "status": "proposed",
--             "proposed_by"; each edge {source, target, type, weight,
--             theme, description, schema_version, created_by})
-- challenge:  ARGV[5] the original's path, ARGV[6] the competing moment as
--             propose's ARGV[5], ARGV[7] the reason, ARGV[8] the agent
-- verify:     ARGV[5] the path
-- reconcile:  ARGV[5] the winner's path, ARGV[6] the loser's
-- challenges: ARGV[5] the path, ARGV[6] the most returned
-- history:    ARGV[5] the path, ARGV[6] the most challengers returned
--
-- The statuses: proposed (a node without one, a Flash completion's, is
-- proposed, as the original's column default), challenged, verified,
-- alternative.  A challenge is refused on an alternative moment; a verify
-- on a verified or alternative one; a reconcile sets the winner verified
-- and the loser alternative, whatever they were (the original's rules).
--
-- Keys besides the graph's: challenges:<path>, a sorted set of the paths
-- of the moments that challenge it, by the time of the challenge (the
-- original finds them by its edges' target; here an edge is stored at its
-- source, so the target keeps its own list).
--
-- Replies: propose { "OK", nodes, edges } or "EXISTS"; challenge "OK",
-- false (no original), "ALTERNATIVE" or "EXISTS" (the competing path is
-- taken); verify "OK", false, "VERIFIED" or "ALTERNATIVE"; reconcile "OK",
-- "NO_WINNER" or "NO_LOSER"; challenges false or { status, { node hash as
-- HGETALL, ... } }; history false or { status, proposed_by, created_at,
-- challenged_by, { { proposed_by, created_at, description }, ... } }.
-- Every write bumps idx:version and publishes the paths whose answers
-- changed on the moments channel ("*" past 256).
--
-- TODO(lib/node.lua): a proposed node is written here as seed.lua writes
-- one (lib/index.lua's index_new, no automatic edges); the original's
-- add_node links it as a Flash completion does.  Once lib/node.lua (one
-- code path for a node with its indexes and auto-edges, g16/ingest) is on
-- main, write_node() below becomes its call.

local p = ARGV[1]
local op = ARGV[2]
local now = ARGV[3]
local stats = p .. 'stats'

-- #include lib/index.lua
-- #include lib/edge.lua

local changed, nchanged = {}, 0

local function touched(path)
    if not changed[path] then
        changed[path] = true
        nchanged = nchanged + 1
    end
end

local function announce()
    if nchanged == 0 then
        return
    end
    version(op .. ' ' .. now)
    if nchanged > 256 then
        redis.call('PUBLISH', ARGV[4], '*')
        return
    end
    local list = {}
    for path in pairs(changed) do
        list[#list + 1] = path
    end
    redis.call('PUBLISH', ARGV[4], table.concat(list, ' '))
end

local function status_of(f)
    return f or 'proposed'
end

-- a node as seed.lua writes one, and its edges; false when the path is
-- taken
local function write_node(m)
    local node = m.node
    local path = node.path
    local nkey = p .. 'node:' .. path
    if redis.call('EXISTS', nkey) == 1 then
        return false
    end
    local words = node.search
    node.search = nil
    local fields = {}
    for k, v in pairs(node) do
        if v ~= cjson.null then
            if type(v) == 'table' then
                v = (next(v) == nil) and '[]' or cjson.encode(v)
            end
            fields[#fields + 1] = k
            fields[#fields + 1] = tostring(v)
        end
    end
    redis.call('HSET', nkey, unpack(fields))
    index_new(path, node, words)
    redis.call('HINCRBY', stats, 'nodes', 1)
    redis.call('HINCRBY', stats, 'layer:' .. tostring(node.layer), 1)
    local last = redis.call('HGET', stats, 'last_updated') or ''
    if type(node.created_at) == 'string' and node.created_at > last then
        redis.call('HSET', stats, 'last_updated', node.created_at)
    end
    touched(path)
    local edges = 0
    for _, e in ipairs(m.edges or {}) do
        if edge_put(e) then
            edges = edges + 1
            touched(e.target)
        end
    end
    return edges
end

if op == 'propose' then
    local m = cjson.decode(ARGV[5])
    local edges = write_node(m)
    if not edges then
        return 'EXISTS'
    end
    announce()
    return { 'OK', 1, edges }
end

if op == 'challenge' then
    local orig = ARGV[5]
    local okey = p .. 'node:' .. orig
    local f = redis.call('HMGET', okey, 'path', 'status', 'challenged_by')
    if not f[1] then
        return false
    end
    if status_of(f[2]) == 'alternative' then
        return 'ALTERNATIVE'
    end
    local m = cjson.decode(ARGV[6])
    if m.node.path == orig or not write_node(m) then
        return 'EXISTS'
    end
    local comp = m.node.path
    edge_put({ source = comp, target = orig, type = 'challenges',
               weight = 1.0, theme = '', description = ARGV[7],
               schema_version = '0.2', created_by = ARGV[8] })
    local t = redis.call('TIME')
    redis.call('ZADD', p .. 'challenges:' .. orig,
               tonumber(t[1]) * 1000000 + tonumber(t[2]), comp)
    local by = {}
    local ok, list = pcall(cjson.decode, f[3] or '[]')
    if ok and type(list) == 'table' then
        by = list
    end
    local seen = false
    for _, a in ipairs(by) do
        if a == ARGV[8] then
            seen = true
        end
    end
    if not seen and ARGV[8] ~= '' then
        by[#by + 1] = ARGV[8]
    end
    redis.call('HSET', okey, 'status', 'challenged', 'challenged_by',
               cjson.encode(by))
    touched(orig)
    announce()
    return 'OK'
end

if op == 'verify' then
    local key = p .. 'node:' .. ARGV[5]
    local f = redis.call('HMGET', key, 'path', 'status')
    if not f[1] then
        return false
    end
    local s = status_of(f[2])
    if s == 'verified' then
        return 'VERIFIED'
    end
    if s == 'alternative' then
        return 'ALTERNATIVE'
    end
    redis.call('HSET', key, 'status', 'verified')
    touched(ARGV[5])
    announce()
    return 'OK'
end

if op == 'reconcile' then
    local w, l = p .. 'node:' .. ARGV[5], p .. 'node:' .. ARGV[6]
    if redis.call('EXISTS', w) == 0 then
        return 'NO_WINNER'
    end
    if redis.call('EXISTS', l) == 0 then
        return 'NO_LOSER'
    end
    redis.call('HSET', w, 'status', 'verified')
    redis.call('HSET', l, 'status', 'alternative')
    touched(ARGV[5])
    touched(ARGV[6])
    announce()
    return 'OK'
end

if op == 'challenges' or op == 'history' then
    local key = p .. 'node:' .. ARGV[5]
    local f = redis.call('HMGET', key, 'path', 'status', 'proposed_by',
                         'created_at', 'challenged_by')
    if not f[1] then
        return false
    end
    -- oldest first for the history, newest first for the list (as the
    -- original orders each)
    local ids
    if op == 'history' then
        ids = redis.call('ZRANGE', p .. 'challenges:' .. ARGV[5], 0,
                         tonumber(ARGV[6]) - 1)
    else
        ids = redis.call('ZREVRANGE', p .. 'challenges:' .. ARGV[5], 0,
                         tonumber(ARGV[6]) - 1)
    end
    local out = {}
    for _, c in ipairs(ids) do
        if op == 'history' then
            local h = redis.call('HMGET', p .. 'node:' .. c, 'proposed_by',
                                 'created_at')
            local e = redis.call('HGET', p .. 'edges:' .. c,
                                 'challenges|' .. ARGV[5])
            local d = ''
            if e then
                local ok, v = pcall(cjson.decode, e)
                if ok and type(v) == 'table'
                   and type(v.description) == 'string'
                then
                    d = v.description
                end
            end
            if h[2] then
                out[#out + 1] = { h[1] or '', h[2], d }
            end
        else
            local h = redis.call('HGETALL', p .. 'node:' .. c)
            if #h > 0 then
                out[#out + 1] = h
            end
        end
    end
    if op == 'history' then
        return { status_of(f[2]), f[3] or '', f[4] or '', f[5] or '[]', out }
    end
    return { status_of(f[2]), out }
end

return redis.error_reply('ERR propose.lua: unknown operation')

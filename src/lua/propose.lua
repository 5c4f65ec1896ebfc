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
-- ARGV[5]  the most edges of one type from one new node (auto-edges,
--          clockchain_edges_max)
-- ARGV[6]  the writer's token, its SHA-256 hex, or "" (no writer tokens,
--          a token of the directives' files not in Redis yet, a read)
-- propose:    ARGV[7] {"node": node, "edges": [edge, ...]}, checked and
--             built in C (ngx_http_clockchain_seed_propose(): the node
--             with its sort_key and search words, "status": "proposed",
--             "proposed_by"; each edge {source, target, type, weight,
--             theme, description, schema_version, created_by})
-- challenge:  ARGV[7] the original's path, ARGV[8] the competing moment as
--             propose's ARGV[7], ARGV[9] the reason, ARGV[10] the agent
-- verify:     ARGV[7] the path
-- reconcile:  ARGV[7] the winner's path, ARGV[8] the loser's
-- challenges: ARGV[7] the path, ARGV[8] the most returned
-- history:    ARGV[7] the path, ARGV[8] the most challengers returned
--
-- The statuses: proposed (a node without one, a Flash completion's, is
-- proposed, as the original's column default), challenged, verified,
-- alternative.  A challenge is refused on an alternative moment; a verify
-- on a verified or alternative one; a reconcile sets the winner verified
-- and the loser alternative, whatever they were (the original's rules).
--
-- A proposed moment (and a challenge's competing one) is written as a
-- Flash completion or an ingest writes a node (lib/node.lua: the same
-- hash, counters, automatic edges and indexes), as the original's
-- add_node links it; then its own edges (lib/edge.lua).
--
-- A moment's challengers are the sources of the "challenges" edges into
-- it (edges_in:<path>, lib/edge.lua), as the original finds them by its
-- edges' target: no key of their own, so an export and a restore, which
-- carry the edges, carry them too.  Ordered by the challenger's
-- created_at (then path), newest first for the list, oldest first for
-- the history, as the original orders each.
--
-- Replies: propose { "OK", nodes, edges } or "EXISTS"; challenge "OK",
-- false (no original), "ALTERNATIVE" or "EXISTS" (the competing path is
-- taken); verify "OK", false, "VERIFIED" or "ALTERNATIVE"; reconcile "OK",
-- "NO_WINNER" or "NO_LOSER"; challenges false or { status, { node hash as
-- HGETALL, ... } }; history false or { status, proposed_by, created_at,
-- challenged_by, { { proposed_by, created_at, description }, ... } }.
-- A write whose token (ARGV[6]) is not an active agent's in Redis, revoked
-- since nginx checked it, is the error REVOKED and writes nothing.
-- Every write bumps idx:version and publishes the paths whose answers
-- changed on the moments channel ("*" past 256).

local p = ARGV[1]
local op = ARGV[2]
local now = ARGV[3]
local stats = p .. 'stats'
local cap = tonumber(ARGV[5])

-- #include lib/index.lua
-- #include lib/edge.lua
-- #include lib/node.lua

local read = (op == 'challenges' or op == 'history')

-- the writer's token, in the step that writes: a revocation that lands
-- after nginx checked the token (or that its cache has not heard) is seen
if not read and ARGV[6] ~= ''
   and redis.call('HGET', p .. 'agent:tok:' .. ARGV[6], 'is_active') ~= '1'
then
    return redis.error_reply('REVOKED')
end

local noted = false

local function touched(path)
    node_note(path)
    noted = true
end

local function announce()
    if not noted then
        return
    end
    version(op .. ' ' .. now)
    node_publish(ARGV[4])
end

local function status_of(f)
    return f or 'proposed'
end

-- a node as a completion writes one (lib/node.lua), and its edges; false
-- when the path is taken
local function write_node(m)
    local node = m.node
    local path = node.path
    if redis.call('EXISTS', p .. 'node:' .. path) == 1 then
        return false
    end
    node_put(path, node, {})
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
    local m = cjson.decode(ARGV[7])
    local edges = write_node(m)
    if not edges then
        return 'EXISTS'
    end
    announce()
    return { 'OK', 1, edges }
end

if op == 'challenge' then
    local orig = ARGV[7]
    local okey = p .. 'node:' .. orig
    local f = redis.call('HMGET', okey, 'path', 'status', 'challenged_by')
    if not f[1] then
        return false
    end
    if status_of(f[2]) == 'alternative' then
        return 'ALTERNATIVE'
    end
    local m = cjson.decode(ARGV[8])
    if m.node.path == orig or not write_node(m) then
        return 'EXISTS'
    end
    local comp = m.node.path
    edge_put({ source = comp, target = orig, type = 'challenges',
               weight = 1.0, theme = '', description = ARGV[9],
               schema_version = '0.2', created_by = ARGV[10] })
    local by = {}
    local ok, list = pcall(cjson.decode, f[3] or '[]')
    if ok and type(list) == 'table' then
        by = list
    end
    local seen = false
    for _, a in ipairs(by) do
        if a == ARGV[10] then
            seen = true
        end
    end
    if not seen and ARGV[10] ~= '' then
        by[#by + 1] = ARGV[10]
    end
    redis.call('HSET', okey, 'status', 'challenged', 'challenged_by',
               cjson.encode(by))
    touched(orig)
    announce()
    return 'OK'
end

if op == 'verify' then
    local key = p .. 'node:' .. ARGV[7]
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
    touched(ARGV[7])
    announce()
    return 'OK'
end

if op == 'reconcile' then
    local w, l = p .. 'node:' .. ARGV[7], p .. 'node:' .. ARGV[8]
    if redis.call('EXISTS', w) == 0 then
        return 'NO_WINNER'
    end
    if redis.call('EXISTS', l) == 0 then
        return 'NO_LOSER'
    end
    redis.call('HSET', w, 'status', 'verified')
    redis.call('HSET', l, 'status', 'alternative')
    touched(ARGV[7])
    touched(ARGV[8])
    announce()
    return 'OK'
end

if op == 'challenges' or op == 'history' then
    local key = p .. 'node:' .. ARGV[7]
    local f = redis.call('HMGET', key, 'path', 'status', 'proposed_by',
                         'created_at', 'challenged_by')
    if not f[1] then
        return false
    end
    -- the sources of the "challenges" edges into it, with their
    -- created_at: oldest first for the history, newest first for the list
    -- (as the original orders each), then by path
    local found, cursor = {}, '0'
    repeat
        local page = redis.call('HSCAN', p .. 'edges_in:' .. ARGV[7], cursor,
                                'MATCH', 'challenges|*', 'COUNT', 100)
        cursor = page[1]
        for i = 1, #page[2], 2 do
            local c = string.match(page[2][i], '^challenges|(.*)$')
            if c and not found[c] then
                found[c] = redis.call('HGET', p .. 'node:' .. c,
                                      'created_at') or ''
            end
        end
    until cursor == '0'
    local ids = {}
    for c in pairs(found) do
        ids[#ids + 1] = c
    end
    local old = (op == 'history')
    table.sort(ids, function(x, y)
        if found[x] ~= found[y] then
            return (found[x] < found[y]) == old
        end
        return x < y
    end)
    for i = #ids, tonumber(ARGV[8]) + 1, -1 do
        ids[i] = nil
    end
    local out = {}
    for _, c in ipairs(ids) do
        if op == 'history' then
            local h = redis.call('HMGET', p .. 'node:' .. c, 'proposed_by',
                                 'created_at')
            local e = redis.call('HGET', p .. 'edges:' .. c,
                                 'challenges|' .. ARGV[7])
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

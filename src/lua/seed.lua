-- Seed the graph, once in its life: the nodes and edges of a seeds file
-- (clockchain_seed_file, parsed by ngx_http_clockchain_seed.c), with the
-- indexes and counters a Flash completion writes, and no auto-edges (the
-- original seeds its database so).  The marker is set in the same step:
-- every later call, from any worker of any nginx, writes nothing, even
-- after the seeded nodes were deleted.
--
-- KEYS[1]  the marker ("<prefix>{cc}:v1:seeded")
-- ARGV[1]  graph key prefix ("<prefix>{cc}:v1:")
-- ARGV[2]  {"nodes": [node, ...], "edges": [edge, ...]}: each node with
--          its canonical path, sort_key and search words as the runner's
--          node has them, each edge {source, target, type, weight, theme,
--          description, schema_version, created_by}
-- ARGV[3]  now, ISO 8601 (the marker's, and idx:version's token)
-- ARGV[4]  the moments channel ("<events channel>:moments")
--
-- A node whose path is taken is left as it is, an edge already there too
-- (the original's ON CONFLICT DO NOTHING).  Returns { nodes written,
-- edges written }, or { -1, the marker } when the graph was seeded before.

local p = ARGV[1]

-- #include lib/index.lua

local seeded = redis.call('GET', KEYS[1])

if seeded then
    return { -1, seeded }
end

local seed = cjson.decode(ARGV[2])
local stats = p .. 'stats'

-- #include lib/edge.lua
local nodes, edges = 0, 0
local last = redis.call('HGET', stats, 'last_updated') or ''

for _, node in ipairs(seed.nodes) do
    local path = node.path
    local nkey = p .. 'node:' .. path
    local words = node.search
    node.search = nil

    if redis.call('EXISTS', nkey) == 0 then
        local fields = {}
        for k, v in pairs(node) do
            if v ~= cjson.null then
                if type(v) == 'table' then
                    v = cjson.encode(v)
                end
                fields[#fields + 1] = k
                fields[#fields + 1] = tostring(v)
            end
        end
        redis.call('HSET', nkey, unpack(fields))
        index_new(path, node, words)

        nodes = nodes + 1
        redis.call('HINCRBY', stats, 'nodes', 1)
        redis.call('HINCRBY', stats, 'layer:' .. tostring(node.layer), 1)
        if type(node.created_at) == 'string' and node.created_at > last then
            last = node.created_at
            redis.call('HSET', stats, 'last_updated', last)
        end
    end
end

for _, e in ipairs(seed.edges) do
    if edge_put(e) then
        edges = edges + 1
    end
end

redis.call('SET', KEYS[1], nodes .. ' nodes ' .. edges .. ' edges '
                           .. ARGV[3])

if nodes + edges > 0 then
    version('seed ' .. ARGV[3])
    -- what a reader cached of these paths (a 404) is out of date
    redis.call('PUBLISH', ARGV[4], '*')
end

return { nodes, edges }

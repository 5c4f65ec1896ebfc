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
-- #include lib/graph.lua

local nodes, edges = graph_write(seed)

redis.call('SET', KEYS[1], nodes .. ' nodes ' .. edges .. ' edges '
                           .. ARGV[3])

if nodes + edges > 0 then
    version('seed ' .. ARGV[3])
    -- what a reader cached of these paths (a 404) is out of date
    redis.call('PUBLISH', ARGV[4], '*')
end

return { nodes, edges }

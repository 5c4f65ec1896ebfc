-- Restore one chunk of a whole-graph export (POST /api/restore): its
-- nodes and edges written exactly as given, with the indexes and counters
-- a Flash completion writes and no auto-edges, by the code seed.lua uses
-- (lib/graph.lua), without seeds' once-only marker.  The chunk was parsed
-- and checked in C (ngx_http_clockchain_restore_parse()).
--
-- ARGV[1]  graph key prefix ("<prefix>{cc}:v1:")
-- ARGV[2]  {"nodes": [node, ...], "edges": [edge, ...]}
-- ARGV[3]  now, ISO 8601 (idx:version's token)
-- ARGV[4]  the moments channel ("<events channel>:moments")
--
-- A node whose path is taken is left as it is, an edge already there too:
-- a restore adds to a graph, it never overwrites.  Returns { nodes
-- written, edges written }.

local p = ARGV[1]

-- #include lib/index.lua

local data = cjson.decode(ARGV[2])
local stats = p .. 'stats'

-- #include lib/edge.lua
-- #include lib/graph.lua

local nodes, edges = graph_write(data)

if nodes + edges > 0 then
    version('restore ' .. ARGV[3])
    -- what a reader cached of these paths (a 404) is out of date
    redis.call('PUBLISH', ARGV[4], '*')
end

return { nodes, edges }

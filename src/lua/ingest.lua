-- A writer's request (POST /api/index, /api/ingest/subgraph,
-- /api/ingest/tdf, checked and built by ngx_http_clockchain_ingest.c), all
-- of it or none: each node as a Flash completion writes it (lib/node.lua:
-- the same hash, counters, automatic edges and indexes), in the order
-- given, as the original's add_node one after the other; then each edge
-- named, as the original's add_edge (lib/edge.lua).
--
-- ARGV[1]  graph key prefix ("<prefix>{cc}:v1:")
-- ARGV[2]  {"nodes": [node, ...], "edges": [edge, ...]}: each node with
--          its canonical path, sort_key and search words as the runner's
--          node has them, each edge {source, target, type, weight, theme,
--          description, schema_version, created_by}
-- ARGV[3]  the most edges of one type from one new node (auto-edges)
-- ARGV[4]  the moments channel ("<events channel>:moments")
-- ARGV[5]  now, ISO 8601 (idx:version's token)
-- ARGV[6]  the writer's token, its SHA-256 hex, or "" (no writer tokens,
--          a token of the directives' files not in Redis yet)
--
-- An edge must end at nodes that exist, in Redis or in this request (the
-- original's foreign keys): else nothing is written and the error is
-- "NO_NODE <index> <source|target> <path>"; a token that is no active
-- agent's, "REVOKED".  A node already there is
-- updated (the original's ON CONFLICT DO UPDATE) but for created_at,
-- status and challenged_by (as there) and created_by and visibility (a
-- node stays its creator's; publish changes the visibility).  An edge
-- already there is kept (ON CONFLICT DO NOTHING).  Returns { nodes
-- written, edges new }.

local p = ARGV[1]
local stats = p .. 'stats'
local cap = tonumber(ARGV[3])
local req = cjson.decode(ARGV[2])

-- #include lib/index.lua
-- #include lib/edge.lua
-- #include lib/node.lua

-- every check before the first write: a refused request writes nothing

-- the writer's token, in the step that writes: a revocation that lands
-- after nginx checked the token (or that its cache has not heard) is seen
if ARGV[6] ~= ''
   and redis.call('HGET', p .. 'agent:tok:' .. ARGV[6], 'is_active') ~= '1'
then
    return redis.error_reply('REVOKED')
end

local here = {}
for _, n in ipairs(req.nodes) do
    here[n.path] = true
end

for i, e in ipairs(req.edges) do
    for _, side in ipairs({ 'source', 'target' }) do
        local at = e[side]
        if not here[at] and redis.call('EXISTS', p .. 'node:' .. at) == 0 then
            return redis.error_reply('NO_NODE ' .. (i - 1) .. ' ' .. side
                                     .. ' ' .. at)
        end
    end
end

local keep = { created_at = true, status = true, challenged_by = true,
               created_by = true, visibility = true }

for _, n in ipairs(req.nodes) do
    node_put(n.path, n, keep)
end

local edges = 0
for _, e in ipairs(req.edges) do
    if edge_put(e) then
        edges = edges + 1
        node_note(e.source)
        node_note(e.target)
    end
end

if #req.nodes + edges > 0 then
    version('ingest ' .. ARGV[5])
    node_publish(ARGV[4])
end

return { #req.nodes, edges }

-- Write nodes and edges exactly as given (no auto-edges): seed.lua (a
-- seeds file, once in the graph's life) and restore.lua (a chunk of an
-- export) share it, so seeds and restores store a node alike.  Needs p,
-- stats, lib/index.lua's functions and lib/edge.lua's edge_put in scope.
-- data: {"nodes": [node, ...], "edges": [edge, ...]}, each node with its
-- canonical path, sort_key and search words ("search") as the runner's
-- node has them.  A node whose path is taken is left as it is, an edge
-- already there too (the original's ON CONFLICT DO NOTHING).  Returns the
-- nodes and the edges written.

local function graph_write(data)
    local nodes, edges = 0, 0
    local last = redis.call('HGET', stats, 'last_updated') or ''

    for _, node in ipairs(data.nodes) do
        local path = node.path
        local nkey = p .. 'node:' .. path
        local words = node.search
        node.search = nil

        if redis.call('EXISTS', nkey) == 0 then
            local fields = {}
            for k, v in pairs(node) do
                if v ~= cjson.null then
                    if type(v) == 'table' then
                        -- cjson writes an empty table as {}: a list here
                        v = next(v) == nil and '[]' or cjson.encode(v)
                    end
                    fields[#fields + 1] = k
                    fields[#fields + 1] = tostring(v)
                end
            end
            redis.call('HSET', nkey, unpack(fields))
            index_new(path, node, words)

            nodes = nodes + 1
            redis.call('HINCRBY', stats, 'nodes', 1)
            -- (a restored node may hold no layer: it counts in none)
            if node.layer ~= nil then
                redis.call('HINCRBY', stats, 'layer:' .. tostring(node.layer),
                           1)
            end
            if type(node.created_at) == 'string' and node.created_at > last
            then
                last = node.created_at
                redis.call('HSET', stats, 'last_updated', last)
            end
        end
    end

    for _, e in ipairs(data.edges) do
        if edge_put(e) then
            edges = edges + 1
        end
    end

    return nodes, edges
end

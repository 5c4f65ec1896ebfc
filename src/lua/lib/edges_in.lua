-- The edges into a node that the readers do not find held back by the
-- node's neighbours: edge_put() (lib/edge.lua) names each edge a writer
-- gives in edges_in:<target>, "<type>|<source>" -> "", and the edge itself
-- stays in edges:<source>.  An auto-edge is written both ways and found
-- from the edge out, so a reader first lists the edges out with the edge
-- each neighbour holds back, marking those in listed by "<type>|<source>",
-- then calls this for the rest: fn(edge, source, type) for each edge in
-- not listed yet, a page of the hash at a time, until fn returns false.
-- O(the node's incoming named edges), no SCAN of the keyspace.

local function edges_in(prefix, path, listed, fn)
    local seen = {}
    local cursor = '0'

    repeat
        local page = redis.call('HSCAN', prefix .. 'edges_in:' .. path,
                                cursor, 'COUNT', 100)
        cursor = page[1]
        local fields = page[2]

        for i = 1, #fields, 2 do
            local f = fields[i]
            -- HSCAN may return a field twice
            if not seen[f] and not listed[f] then
                seen[f] = true
                local etype, source = string.match(f, '^([^|]*)|(.*)$')
                local e = source and redis.call('HGET',
                                                prefix .. 'edges:' .. source,
                                                etype .. '|' .. path)
                if e and fn(cjson.decode(e), source, etype) == false then
                    return
                end
            end
        end
    until cursor == '0'
end

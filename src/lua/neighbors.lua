-- A graph node's neighbours: every edge out of it and into it, as a
-- requester may see them.
--
-- KEYS[1]  the node hash
-- KEYS[2]  the node's edge hash
-- ARGV[1]  the node's path
-- ARGV[2]  the requester (X-User-Id), or "" for the calling service itself
-- ARGV[3]  graph key prefix ("<prefix>{cc}:v1:")
-- ARGV[4]  the most neighbours to return
--
-- The calling service sees every node; a requester sees a node that is
-- public, was created by "system", or was created by them. Returns false
-- for a node that is absent or not visible (both answer 404), else a list
-- of { other path, other name, edge type, weight, theme, description,
-- created_by }: the edge out to each neighbour, then the edge it holds
-- back into this node (complete.lua writes every auto-edge both ways),
-- then the edges into it that a writer named (edges_in:<path>, by
-- lib/edge.lua) and that were not listed yet; as the original, which
-- lists the edges out and the edges in.  A neighbour the requester may
-- not see is left out.

local function visible(visibility, by)
    return ARGV[2] == '' or visibility == 'public' or by == 'system'
           or by == ARGV[2]
end

local node = redis.call('HMGET', KEYS[1], 'visibility', 'created_by', 'name')

if not (node[1] or node[2] or node[3]) or not visible(node[1], node[2]) then
    return false
end

local path = ARGV[1]
local max = tonumber(ARGV[4])
local reverse = { precedes = 'follows', follows = 'precedes' }
local out = {}
local seen = {}
-- the edges in listed so far, by "<type>|<source>"
local listed = {}

local function add(e, other, name)
    local by = e.created_by
    if type(by) ~= 'string' or by == '' then
        by = 'auto'
    end
    out[#out + 1] = { other, name or '', tostring(e.type),
                      tostring(e.weight or 0),
                      type(e.theme) == 'string' and e.theme or '',
                      type(e.description) == 'string' and e.description or '',
                      by }
end

-- as moment.lua: a page of the hash at a time, and only as far as the
-- answer needs, so that a popular node never makes Redis walk all of it

local cursor = '0'

repeat
    local page = redis.call('HSCAN', KEYS[2], cursor, 'COUNT', 100)
    cursor = page[1]
    local edges = page[2]

    for i = 1, #edges, 2 do
        if #out >= max then
            break
        end

        -- HSCAN may return a field twice
        if not seen[edges[i]] then
            seen[edges[i]] = true

            local e = cjson.decode(edges[i + 1])
            local other = e.target

            local o = redis.call('HMGET', ARGV[3] .. 'node:' .. other,
                                 'visibility', 'created_by', 'name')

            if (o[1] or o[2] or o[3]) and visible(o[1], o[2]) then
                add(e, other, o[3])

                -- the edge the other node holds towards this one
                local rtype = reverse[e.type] or e.type
                local back = redis.call('HGET', ARGV[3] .. 'edges:' .. other,
                                        rtype .. '|' .. path)
                if back and #out < max then
                    listed[rtype .. '|' .. other] = true
                    add(cjson.decode(back), other, o[3])
                end
            end
        end
    end
until cursor == '0' or #out >= max

-- #include lib/edges_in.lua

if #out < max then
    edges_in(ARGV[3], path, listed, function(e, source)
        local o = redis.call('HMGET', ARGV[3] .. 'node:' .. source,
                             'visibility', 'created_by', 'name')
        if (o[1] or o[2] or o[3]) and visible(o[1], o[2]) then
            add(e, source, o[3])
        end
        return #out < max
    end)
end

return out

-- Read a graph node with its edges, as a requester may see them.
--
-- KEYS[1]  the node hash
-- KEYS[2]  the node's edge hash
-- ARGV[1]  the node's path
-- ARGV[2]  the requester (X-User-Id), or "" for none
-- ARGV[3]  graph key prefix ("<prefix>{cc}:v1:")
-- ARGV[4]  the most edges to return
-- ARGV[5]  who asks: "public" (no service key), "service" (a key without
--          X-User-Id: the calling service itself) or "user" (a key with
--          X-User-Id, ARGV[2])
--
-- The public sees public nodes; the service sees every node; a user sees
-- public nodes, nodes created by "system", and their own. Returns false
-- for a node that is absent or not visible (both answer 404), else { node
-- as HGETALL, edges }, each edge { type, weight, theme, direction, other
-- path, other name }: each edge out ("outgoing") with the edge its other
-- end holds back ("incoming"), then the edges into it a writer named
-- (edges_in:<path>, lib/edge.lua) not listed yet ("incoming"); edges to
-- nodes the requester may not see are left out.

local mode = ARGV[5]

local function visible(visibility, by)
    if mode == 'service' then
        return true
    end

    if visibility == 'public' then
        return true
    end

    return mode == 'user' and (by == 'system' or by == ARGV[2])
end

local node = redis.call('HGETALL', KEYS[1])

if #node == 0 then
    return false
end

local f = {}
for i = 1, #node, 2 do
    f[node[i]] = node[i + 1]
end

if not visible(f.visibility, f.created_by) then
    return false
end

local path = ARGV[1]
local max = tonumber(ARGV[4])
local reverse = { precedes = 'follows', follows = 'precedes' }
local out = {}
local seen = {}
-- the incoming edges listed so far, by "<type>|<source>"
local listed = {}

local function add(e, direction, other, name)
    out[#out + 1] = { e.type, tostring(e.weight), e.theme or '', direction,
                      other, name or '' }
end

-- A node every later node links to holds an edge for each of them: read
-- the hash a page at a time, and only as far as the answer needs, so that
-- one GET of a popular moment never makes Redis walk all of it.

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

            if o[1] and visible(o[1], o[2]) then
                add(e, 'outgoing', other, o[3])

                -- the edge the other node holds towards this one
                local rtype = reverse[e.type] or e.type
                local back = redis.call('HGET', ARGV[3] .. 'edges:' .. other,
                                        rtype .. '|' .. path)
                if back and #out < max then
                    listed[rtype .. '|' .. other] = true
                    add(cjson.decode(back), 'incoming', other, o[3])
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
        if o[1] and visible(o[1], o[2]) then
            add(e, 'incoming', source, o[3])
        end
        return #out < max
    end)
end

return { node, out }

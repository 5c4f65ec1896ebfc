-- The graph walks: a subgraph, a breadth-first traversal, a shortest path,
-- as a requester may see them.
--
-- KEYS[1]  the root node hash (the path's "from")
-- ARGV[1]  mode: "subgraph", "traverse" or "path"
-- ARGV[2]  the requester (X-User-Id), or "" for the calling service itself
-- ARGV[3]  graph key prefix ("<prefix>{cc}:v1:")
-- ARGV[4]  the root's path
-- ARGV[5]  the target's path (path), else ""
-- ARGV[6]  the most hops: depth (subgraph, traverse), max_hops (path)
-- ARGV[7]  the most nodes in the answer, the root included (cap, limit;
--          path: the most nodes expanded)
-- ARGV[8]  direction: "out", "in" or "both" (edges out of a node, into
--          it, or either), or "past" / "future": either edge, to a moment
--          earlier / later in time (sort_key) than the one it leaves
-- ARGV[9]  edge types to follow, "," around each (",causes,same_era,"),
--          or "" for all
-- ARGV[10] the least weight of an edge to follow
-- ARGV[11] the most edge fields read from one node's edge hash
-- ARGV[12] the most edge fields read in all
--
-- Bounds: a node is expanded (its edge hash, then the named edges into
-- it, edges_in:<path>, paged with HSCAN) at most once, at most ARGV[7]
-- nodes are expanded, each for at most ARGV[11] fields of the two, and
-- the walk stops once ARGV[12] fields were read in all: a hub with
-- thousands of edges costs no more than that.
--
-- Returns false when the root (or the target) is absent or not visible
-- (404), else { nodes, edges } where nodes is a list of { path, name,
-- one_liner, year, month (its number), day, country, region, city, depth } and edges a
-- list of { source, target, type, weight, theme }, nearest nodes first;
-- path returns { nodes, edges } along the chain, or {} when no chain was
-- found within the bounds.

local mode, user, p = ARGV[1], ARGV[2], ARGV[3]
local root, target = ARGV[4], ARGV[5]
local hops, most = tonumber(ARGV[6]), tonumber(ARGV[7])
local direction, types = ARGV[8], ARGV[9]
local min_weight = tonumber(ARGV[10])
local per_node, budget = tonumber(ARGV[11]), tonumber(ARGV[12])
local reverse = { precedes = 'follows', follows = 'precedes' }

local FIELDS = { 'path', 'name', 'one_liner', 'year', 'month_num', 'day',
                 'country', 'region', 'city', 'visibility', 'created_by',
                 'sort_key' }

-- past and future cross edges either way, towards one side of time
local when = nil
if direction == 'past' or direction == 'future' then
    when = direction
    direction = 'both'
end

-- a node as the requester may see it, or false; read once per request
local cache = {}

local function node(path)
    local n = cache[path]
    if n == nil then
        local f = redis.call('HMGET', p .. 'node:' .. path, unpack(FIELDS))
        local any = false
        for i = 1, #FIELDS do
            if f[i] then
                any = true
            end
        end
        if any and (user == '' or f[10] == 'public' or f[11] == 'system'
                    or f[11] == user)
        then
            n = f
            n[1] = path
        else
            n = false
        end
        cache[path] = n
    end
    return n
end

-- past and future: is "to" on that side of "from" in time

local function towards(from, to)
    if when == nil then
        return true
    end
    local a, b = tonumber(cache[from][12]), tonumber(cache[to][12])
    if a == nil or b == nil then
        return false
    end
    if when == 'past' then
        return b < a
    end
    return b > a
end


local function summary(path, depth)
    local n = cache[path]
    local s = {}
    for i = 1, 9 do
        s[i] = n[i] or ''
    end
    s[10] = tostring(depth)
    return s
end

local function edge(e, source, target, etype)
    local w = tonumber(e.weight) or 0
    return { source, target, etype, tostring(w),
             type(e.theme) == 'string' and e.theme or '' }
end

local function follow(etype, w)
    return (types == '' or string.find(types, ',' .. etype .. ',', 1, true))
           and (tonumber(w) or 0) >= min_weight
end

-- the edges of one node a walk may cross, each { other, edge }: read a
-- page at a time and no further than the bounds
local read = 0

-- #include lib/edges_in.lua

local function expand(path, known)
    local out = {}
    local seen = {}
    -- the edges in found held back, by "<type>|<source>"
    local listed = {}
    local n = 0
    local cursor = '0'

    repeat
        local page = redis.call('HSCAN', p .. 'edges:' .. path, cursor,
                                'COUNT', 100)
        cursor = page[1]
        local fields = page[2]

        for i = 1, #fields, 2 do
            if n >= per_node or read >= budget then
                break
            end
            -- HSCAN may return a field twice
            if not seen[fields[i]] then
                seen[fields[i]] = true
                n = n + 1
                read = read + 1

                local e = cjson.decode(fields[i + 1])
                local other = e.target
                local etype = tostring(e.type)

                if type(other) ~= 'string' or (known and not known[other])
                then
                    -- not a node of the walk: nothing to read
                elseif known then
                    -- each node of the set is expanded too, and holds
                    -- its own edge back: the edges out are enough
                    out[#out + 1] = { other, edge(e, path, other, etype) }
                elseif node(other) and node(path) and towards(path, other) then
                    if direction ~= 'in' and follow(etype, e.weight) then
                        out[#out + 1] = { other, edge(e, path, other, etype) }
                    end
                    if direction ~= 'out' then
                        -- the edge the other node holds towards this one
                        local rtype = reverse[etype] or etype
                        local back = redis.call('HGET', p .. 'edges:' .. other,
                                                rtype .. '|' .. path)
                        if back then
                            listed[rtype .. '|' .. other] = true
                            local b = cjson.decode(back)
                            if follow(rtype, b.weight) then
                                out[#out + 1] = { other,
                                                  edge(b, other, path, rtype) }
                            end
                        end
                    end
                end
            end
        end
    until cursor == '0' or n >= per_node or read >= budget

    -- the edges into it a writer named, which the other end does not
    -- hold back (a subgraph's last ring needs none: each node of the set
    -- is expanded and gives its edges out)
    if direction ~= 'out' and not known and n < per_node and read < budget
       and node(path)
    then
        edges_in(p, path, listed, function(b, other, etype)
            n = n + 1
            read = read + 1
            if node(other) and towards(path, other)
               and follow(etype, b.weight)
            then
                out[#out + 1] = { other, edge(b, other, path, etype) }
            end
            return n < per_node and read < budget
        end)
    end

    return out
end

if not node(root) or (mode == 'path' and not node(target)) then
    return false
end

local depth = { [root] = 0 }
local order = { root }
local via = {}
local edges = {}
local head = 1

while head <= #order and head <= most and read < budget do
    local at = order[head]
    head = head + 1

    if mode == 'path' and at == target then
        break
    end

    -- past its last ring or its cap, the subgraph is expanded only for
    -- the edges among the nodes already found
    local last = mode == 'subgraph'
                 and (depth[at] >= hops or #order >= most) and depth or nil

    if mode ~= 'traverse' or depth[at] < hops then
        for _, oe in ipairs(expand(at, last)) do
            local other = oe[1]
            if depth[other] == nil and depth[at] < hops
               and (mode == 'path' or #order < most)
            then
                depth[other] = depth[at] + 1
                order[#order + 1] = other
                via[other] = oe[2]
            end
            if mode ~= 'path' then
                edges[#edges + 1] = oe[2]
            end
        end
    end
end

local nodes = {}
local chosen = {}

if mode == 'path' then
    if depth[target] == nil then
        return {}
    end
    local chain = {}
    local at = target
    while at ~= root do
        table.insert(chain, 1, via[at])
        table.insert(nodes, 1, summary(at, depth[at]))
        local e = via[at]
        at = e[1] == at and e[2] or e[1]
    end
    table.insert(nodes, 1, summary(root, 0))
    return { nodes, chain }
end

for _, path in ipairs(order) do
    chosen[path] = true
    nodes[#nodes + 1] = summary(path, depth[path])
end

-- each edge once, both ends in the answer
local out = {}
local dup = {}
for _, e in ipairs(edges) do
    local k = e[1] .. '|' .. e[3] .. '|' .. e[2]
    if chosen[e[1]] and chosen[e[2]] and not dup[k] then
        dup[k] = true
        out[#out + 1] = e
    end
end

return { nodes, out }

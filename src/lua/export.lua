-- One page of a whole-graph export (GET /api/export): the nodes in
-- idx:time order (by sort_key, then path: Redis orders equal scores by
-- member), each with its node hash and its edge hash, for C to write as
-- TDF records.  idx:time holds every node; nothing scans the keyspace.
--
-- ARGV[1]  graph key prefix ("<prefix>{cc}:v1:")
-- ARGV[2]  the last path of the previous page, "" for the first page
-- ARGV[3]  the most nodes in the page
-- ARGV[4]  the most edge fields in the page: the page ends after the
--          node that reaches it (a node's edges are never split)
--
-- Returns { next, nodes }: next is the page's last path when more nodes
-- follow, "" when the export is complete; each node is { path, HGETALL
-- of its hash, HGETALL of its edges }.  A cursor that names no node in
-- idx:time is { false } (the module deletes no node: a client's mistake).

local p = ARGV[1]
local time = p .. 'idx:time'
local limit = tonumber(ARGV[3])
local budget = tonumber(ARGV[4])
local start = 0

if ARGV[2] ~= '' then
    local rank = redis.call('ZRANK', time, ARGV[2])
    if not rank then
        return { false }
    end
    start = rank + 1
end

local paths = redis.call('ZRANGE', time, start, start + limit - 1)
local out = {}
local fields = 0

for _, path in ipairs(paths) do
    local node = redis.call('HGETALL', p .. 'node:' .. path)
    local ekey = p .. 'edges:' .. path
    local edges = redis.call('HGETALL', ekey)

    out[#out + 1] = { path, node, edges }
    fields = fields + #edges / 2

    if fields >= budget then
        break
    end
end

local last = #out > 0 and out[#out][1] or ''
local more = last ~= '' and redis.call('ZRANK', time, last) + 1
                            < redis.call('ZCARD', time)

return { more and last or '', out }

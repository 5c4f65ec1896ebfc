-- Browse: the segments one level below a prefix of the canonical path
-- (/year/month/DD/HHMM/country/region/city/slug), each with the number of
-- nodes under it the requester may see.  Reads complete.lua's counts
-- (idx:ba:<parent> for the service; idx:bs:<parent> and
-- idx:bu:<parent>|<user> for a user), never the keyspace.
--
-- ARGV[1]  graph key prefix ("<prefix>{cc}:v1:")
-- ARGV[2]  who asks: "service" (every node) or "user" (public, "system"'s
--          and ARGV[3]'s own)
-- ARGV[3]  the user, or ""
-- ARGV[4]  the parent: "/" or "/1969", "/1969/july", ... (checked in C)
-- ARGV[5]  the most segments returned
--
-- Returns { segment, count, segment, count, ... } by segment (byte
-- order), segments with no node the requester may see left out.  The
-- service's answer is its hash as it is; a user's, the shared hash with
-- their own counts added (few: their private nodes under the parent).

local p, mode, user = ARGV[1], ARGV[2], ARGV[3]
local parent, most = ARGV[4], tonumber(ARGV[5])

local h, segs, count = nil, {}, {}

if mode == 'service' then
    h = redis.call('HGETALL', p .. 'idx:ba:' .. parent)
else
    h = redis.call('HGETALL', p .. 'idx:bs:' .. parent)
end

for i = 1, #h, 2 do
    segs[#segs + 1] = h[i]
    count[h[i]] = tonumber(h[i + 1])
end

if mode == 'user' then
    h = redis.call('HGETALL', p .. 'idx:bu:' .. parent .. '|' .. user)
    for i = 1, #h, 2 do
        if count[h[i]] == nil then
            segs[#segs + 1] = h[i]
            count[h[i]] = 0
        end
        count[h[i]] = count[h[i]] + tonumber(h[i + 1])
    end
end

table.sort(segs)

local out = {}
for i = 1, math.min(#segs, most) do
    out[#out + 1] = segs[i]
    out[#out + 1] = count[segs[i]]
end

return out

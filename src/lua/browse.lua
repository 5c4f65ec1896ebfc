-- Browse: the segments one level below a prefix of the canonical path
-- (/year/month/DD/HHMM/country/region/city/slug), each with the number of
-- nodes under it the requester may see.  Reads complete.lua's counts
-- (idx:br:<parent>, and idx:br:<parent>|<user> for a user's own private
-- nodes), never the keyspace.
--
-- ARGV[1]  graph key prefix ("<prefix>{cc}:v1:")
-- ARGV[2]  who asks: "service" (every node), "user" (public, "system"'s
--          and ARGV[3]'s own) or "public" (public nodes)
-- ARGV[3]  the user, or ""
-- ARGV[4]  the parent: "/" or "/1969", "/1969/july", ... (checked in C)
-- ARGV[5]  the most segments returned
--
-- Returns { segment, count, segment, count, ... } by segment (byte
-- order), segments with no node the requester may see left out.

local p, mode, user = ARGV[1], ARGV[2], ARGV[3]
local k = p .. 'idx:br:' .. ARGV[4]
local most = tonumber(ARGV[5])
local count = {}

local h = redis.call('HGETALL', k)

for i = 1, #h, 2 do
    local seg, g = string.match(h[i], '^(.*)|(%d)$')
    if seg and (mode == 'service' or g == '0' or (mode == 'user' and g == '1'))
    then
        count[seg] = (count[seg] or 0) + tonumber(h[i + 1])
    end
end

if mode == 'user' then
    h = redis.call('HGETALL', k .. '|' .. user)
    for i = 1, #h, 2 do
        count[h[i]] = (count[h[i]] or 0) + tonumber(h[i + 1])
    end
end

local segs = {}
for seg, n in pairs(count) do
    if n > 0 then
        segs[#segs + 1] = seg
    end
end
table.sort(segs)

local out = {}
for i = 1, math.min(#segs, most) do
    out[#out + 1] = segs[i]
    out[#out + 1] = count[segs[i]]
end

return out

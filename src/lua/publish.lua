-- Set a node's visibility, as its requester may.
--
-- KEYS[1]  the node hash
-- ARGV[1]  the requester (X-User-Id), or "" for none
-- ARGV[2]  "public" or "private"
-- ARGV[3]  now, ISO 8601
--
-- Returns the visibility set, or false when the node is absent or not
-- visible to the requester (404). Becoming public sets published_at.

local f = redis.call('HMGET', KEYS[1], 'visibility', 'created_by')

if not f[1] then
    return false
end

if not (f[1] == 'public' or f[2] == 'system'
        or (ARGV[1] ~= '' and f[2] == ARGV[1]))
then
    return false
end

if ARGV[2] == 'public' and f[1] ~= 'public' then
    redis.call('HSET', KEYS[1], 'published_at', ARGV[3])
end

redis.call('HSET', KEYS[1], 'visibility', ARGV[2])

return ARGV[2]

-- Set a node's visibility, as its requester may.
--
-- KEYS[1]  the node hash
-- ARGV[1]  the requester (X-User-Id), or "" for the calling service itself
-- ARGV[2]  "public" or "private"
-- ARGV[3]  now, ISO 8601
--
-- The service may change any node; a requester only a node they created.
-- Returns the visibility set; false when the node is absent or the
-- requester may not see it (404: public, created by "system", or theirs);
-- 0 when they see it but did not create it (403). Becoming public sets
-- published_at.

local f = redis.call('HMGET', KEYS[1], 'visibility', 'created_by')

if not f[1] then
    return false
end

if ARGV[1] ~= '' and f[2] ~= ARGV[1] then
    if f[1] == 'public' or f[2] == 'system' then
        return 0
    end

    return false
end

if ARGV[2] == 'public' and f[1] ~= 'public' then
    redis.call('HSET', KEYS[1], 'published_at', ARGV[3])
end

redis.call('HSET', KEYS[1], 'visibility', ARGV[2])

return ARGV[2]

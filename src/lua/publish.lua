-- Set a node's visibility, as its requester may.
--
-- KEYS[1]  the node hash
-- KEYS[2]  the node's edge hash
-- ARGV[1]  the requester (X-User-Id), or "" for the calling service itself
-- ARGV[2]  "public" or "private"
-- ARGV[3]  now, ISO 8601
-- ARGV[4]  the node's path
-- ARGV[5]  the moments channel ("<events channel>:moments")
--
-- The service may change any node; a requester only a node they created.
-- Returns the visibility set; false when the node is absent or the
-- requester may not see it (404: public, created by "system", or theirs);
-- 0 when they see it but did not create it (403). Becoming public sets
-- published_at.
--
-- A change of visibility changes the public's answer for the node and for
-- each neighbour (an edge to it shows or goes): their paths are published
-- on ARGV[5], "*" (every moment) past 256 neighbours.

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

if (f[1] == 'public') ~= (ARGV[2] == 'public') then
    local paths = { ARGV[4] }

    if redis.call('HLEN', KEYS[2]) > 256 then
        paths = { '*' }
    else
        local seen = {}
        for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
            local other = string.match(field, '^[^|]*|(.*)$')
            if other and not seen[other] and other ~= ARGV[4] then
                seen[other] = true
                paths[#paths + 1] = other
            end
        end
    end

    redis.call('PUBLISH', ARGV[5], table.concat(paths, ' '))
end

return ARGV[2]

-- Set a node's visibility, as its requester may.
--
-- KEYS[1]  the node hash
-- KEYS[2]  the node's edge hash
-- ARGV[1]  the requester (X-User-Id), or "" for the calling service itself
-- ARGV[2]  "public" or "private"
-- ARGV[3]  now, ISO 8601
-- ARGV[4]  the node's path
-- ARGV[5]  the moments channel ("<events channel>:moments")
-- ARGV[6]  graph key prefix ("<prefix>{cc}:v1:")
--
-- The service may change any node; a requester only a node they created.
-- Returns the visibility set; false when the node is absent or the
-- requester may not see it (404: public, created by "system", or theirs);
-- 0 when they see it but did not create it (403). Becoming public sets
-- published_at.  A node that changes group (public, private of "system",
-- private of a user) moves in the browse counts and the search index in
-- the same step (complete.lua's header says what they hold); a node not
-- indexed yet (no words:<path>, see ops/reindex.lua) is left to reindex.
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

-- the same functions as complete.lua's

local p = ARGV[6]
local path = ARGV[4]

local function group(visibility, by)
    if visibility == 'public' then
        return 0
    end
    return (by == nil or by == 'system') and 1 or 2
end

local function browse(at, g, by, delta)
    local parent = '/'
    for seg in string.gmatch(at, '[^/]+') do
        local k = p .. 'idx:br:' .. parent
        local f = seg .. '|' .. g
        if redis.call('HINCRBY', k, f, delta) <= 0 then
            redis.call('HDEL', k, f)
        end
        if g == 2 and redis.call('HINCRBY', k .. '|' .. by, seg, delta) <= 0
        then
            redis.call('HDEL', k .. '|' .. by, seg)
        end
        parent = (parent == '/' and '' or parent) .. '/' .. seg
    end
end

local function prefixes(list)
    local out = {}
    for _, e in ipairs(list) do
        local w, class, n = e[1], e[2], 0
        for i = 1, #w do
            local b = string.byte(w, i + 1)
            if b == nil or b < 0x80 or b >= 0xc0 then
                n = n + 1
                local pre = string.sub(w, 1, i)
                if n >= 2 and (out[pre] == nil or class < out[pre]) then
                    out[pre] = class
                end
            end
        end
    end
    return out
end

local from, to = group(f[1], f[2]), group(ARGV[2], f[2])
local words = redis.call('GET', p .. 'words:' .. path)

if from ~= to and words then
    browse(path, from, f[2], -1)
    browse(path, to, f[2], 1)

    for pre, class in pairs(prefixes(cjson.decode(words))) do
        local k = p .. 'idx:w:' .. pre
        redis.call('ZADD', k, 4 * class + to, path)
        if from == 2 then
            redis.call('ZREM', k .. '|' .. f[2], path)
        end
        if to == 2 then
            redis.call('ZADD', k .. '|' .. f[2], 4 * class + to, path)
        end
    end
end

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

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
-- ARGV[7]  the writer's token, its SHA-256 hex, or "" (no writer tokens,
--          a token of the directives' files not in Redis yet)
--
-- The service may change any node; a requester only a node they created.
-- Returns the visibility set; false when the node is absent or the
-- requester may not see it (404: public, created by "system", or theirs);
-- 0 when they see it but did not create it (403). Becoming public sets
-- published_at.  A node that changes group (public, private of "system",
-- private of a user) moves in the public list, the browse counts and the
-- search index in the same step (complete.lua's header says what they
-- hold); a node not indexed yet (no words:<path>, or words written by an
-- older version, see ops/reindex.lua) is left to reindex.
--
-- A change of visibility changes the public's answer for the node and for
-- each neighbour (an edge to it shows or goes), those of its edges out
-- and those of the named edges into it (edges_in:<path>, lib/edge.lua):
-- their paths are published on ARGV[5], "*" (every moment) past 256
-- neighbours.

-- the writer's token, in the step that writes: a revocation that lands
-- after nginx checked the token (or that its cache has not heard) is seen;
-- the error REVOKED writes nothing
if ARGV[7] ~= ''
   and redis.call('HGET', ARGV[6] .. 'agent:tok:' .. ARGV[7], 'is_active')
       ~= '1'
then
    return redis.error_reply('REVOKED')
end

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

local function count(k, f, delta)
    if redis.call('HINCRBY', k, f, delta) <= 0 then
        redis.call('HDEL', k, f)
    end
end

-- a group change moves the node between the user's views only: the
-- service's counts (idx:ba:) are the same
local function browse(at, g, by, delta)
    local parent = '/'
    for seg in string.gmatch(at, '[^/]+') do
        if g < 2 then
            count(p .. 'idx:bs:' .. parent, seg, delta)
        else
            count(p .. 'idx:bu:' .. parent .. '|' .. by, seg, delta)
        end
        parent = (parent == '/' and '' or parent) .. '/' .. seg
    end
end

local from, to = group(f[1], f[2]), group(ARGV[2], f[2])
local words = redis.call('GET', p .. 'words:' .. path)

-- JSON words: indexed by an older version, left to ops/reindex.lua
if from ~= to and words and string.sub(words, 1, 1) ~= '[' then
    if (from < 2) ~= (to < 2) then
        browse(path, from, f[2], -1)
        browse(path, to, f[2], 1)
    end

    if from == 0 then
        redis.call('ZREM', p .. 'idx:pub:time', path)
    elseif to == 0 then
        redis.call('ZADD', p .. 'idx:pub:time',
                   redis.call('HGET', KEYS[1], 'sort_key'), path)
    end

    for c, w in string.gmatch(words, ' (%d)(%S+)') do
        local k = p .. 'idx:word:' .. w
        redis.call('ZADD', k, 4 * c + to, path)
        if from == 2 then
            redis.call('ZREM', k .. '|' .. f[2], path)
        end
        if to == 2 then
            redis.call('ZADD', k .. '|' .. f[2], 4 * c + to, path)
        end
    end
end

if f[1] ~= ARGV[2] then
    -- complete.lua's version(): the graph's reads answer otherwise now
    local n = tonumber(string.match(redis.call('GET', p .. 'idx:version')
                                    or '', '^%d+')) or 0
    redis.call('SET', p .. 'idx:version', (n + 1) .. ' ' .. path .. ' '
                                          .. ARGV[3])
end

if (f[1] == 'public') ~= (ARGV[2] == 'public') then
    local paths = { ARGV[4] }

    local into = p .. 'edges_in:' .. ARGV[4]

    if redis.call('HLEN', KEYS[2]) + redis.call('HLEN', into) > 256 then
        paths = { '*' }
    else
        local seen = {}
        for _, key in ipairs({ KEYS[2], into }) do
            for _, field in ipairs(redis.call('HKEYS', key)) do
                local other = string.match(field, '^[^|]*|(.*)$')
                if other and not seen[other] and other ~= ARGV[4] then
                    seen[other] = true
                    paths[#paths + 1] = other
                end
            end
        end
    end

    redis.call('PUBLISH', ARGV[5], table.concat(paths, ' '))
end

return ARGV[2]

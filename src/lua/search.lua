-- Search: the nodes each of whose query words starts a word of their name,
-- one-liner, tags or figures, as the requester may see them, best first.
-- Reads idx:w:<prefix> (complete.lua's header: paths scored 4 * class +
-- group), never the keyspace.
--
-- ARGV[1]  graph key prefix ("<prefix>{cc}:v1:")
-- ARGV[2]  who asks: "service" (every node), "user" (public, "system"'s
--          and ARGV[3]'s own) or "public" (public nodes)
-- ARGV[3]  the user, or ""
-- ARGV[4]  the most results
-- ARGV[5]  with several words: the most nodes of the rarest word examined
-- ARGV[6]… the query's words, normalised as the node's are (in C), each
--          at most as long as an indexed prefix, distinct
--
-- The order: the class of the word that does worst (0 name, 1 one-liner,
-- 2 tag or figure), then the group (public, "system", own), then the path.
-- One word reads the first ARGV[4] of its index, exactly; several read up
-- to ARGV[5] nodes of the rarest word's index in that order and keep those
-- the other words' indexes hold, so past ARGV[5] visible nodes of the
-- rarest word the answer is the best among the first ones.
--
-- Returns { { path, name, one_liner, class, image_url }, ... }, "" for an
-- absent field.

local p, mode, user = ARGV[1], ARGV[2], ARGV[3]
local limit, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local words = {}
for i = 6, #ARGV do
    words[#words + 1] = ARGV[i]
end

local function key(w)
    return p .. 'idx:w:' .. w
end

-- the first n entries of a word's index the requester may see, in order:
-- { path, score, path, score, ... }

local function visible(w, n)
    if mode == 'service' then
        return redis.call('ZRANGE', key(w), 0, n - 1, 'WITHSCORES')
    end

    local out = {}

    local function take(k, lo, hi)
        local left = n - #out / 2
        if left > 0 then
            local r = redis.call('ZRANGEBYSCORE', k, lo, hi, 'WITHSCORES',
                                 'LIMIT', 0, left)
            for i = 1, #r do
                out[#out + 1] = r[i]
            end
        end
    end

    for class = 0, 2 do
        if mode == 'user' then
            take(key(w), 4 * class, 4 * class + 1)
            take(key(w) .. '|' .. user, 4 * class + 2, 4 * class + 2)
        else
            take(key(w), 4 * class, 4 * class)
        end
    end

    return out
end

local found = {}

if #words == 1 then
    local r = visible(words[1], limit)
    for i = 1, #r, 2 do
        found[#found + 1] = { r[i], math.floor(tonumber(r[i + 1]) / 4) }
    end

elseif #words > 1 then
    local lead, size = 1, nil
    for i, w in ipairs(words) do
        local n = redis.call('ZCARD', key(w))
        if size == nil or n < size then
            lead, size = i, n
        end
    end

    local r = visible(words[lead], budget)

    for i = 1, #r, 2 do
        local path, score = r[i], tonumber(r[i + 1])
        local class = math.floor(score / 4)
        local all = true

        for j, w in ipairs(words) do
            if j ~= lead then
                local s = redis.call('ZSCORE', key(w), path)
                if not s then
                    all = false
                    break
                end
                class = math.max(class, math.floor(tonumber(s) / 4))
            end
        end

        if all then
            found[#found + 1] = { path, class, score % 4 }
        end
    end

    table.sort(found, function(a, b)
        if a[2] ~= b[2] then
            return a[2] < b[2]
        end
        if a[3] ~= b[3] then
            return a[3] < b[3]
        end
        return a[1] < b[1]
    end)
end

local out = {}

for i = 1, #found do
    if #out >= limit then
        break
    end

    local f = redis.call('HMGET', p .. 'node:' .. found[i][1], 'name',
                         'one_liner', 'image_url')
    if f[1] then
        out[#out + 1] = { found[i][1], f[1], f[2] or '', found[i][2],
                          f[3] or '' }
    end
end

return out

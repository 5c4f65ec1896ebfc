-- Search: the nodes each of whose query words starts a word of their name,
-- one-liner, tags or figures, as the requester may see them, best first.
-- Reads idx:vocab, idx:word:<word> and words:<path> (complete.lua's
-- header: paths scored 4 * class + group), never the keyspace.
--
-- ARGV[1]  graph key prefix ("<prefix>{cc}:v1:")
-- ARGV[2]  who asks: "service" (every node), "user" (public, "system"'s
--          and ARGV[3]'s own) or "public" (public nodes)
-- ARGV[3]  the user, or ""
-- ARGV[4]  the most results
-- ARGV[5]  with several words: the most nodes of the rarest word examined
-- ARGV[6]… the query's words, normalised as the node's are (in C), each
--          at most as long as an indexed word, distinct
--
-- A query word is a prefix: it stands for the indexed words it starts
-- (ZRANGEBYLEX of idx:vocab), at most EXPAND of them in byte order, so
-- that a call reads a bounded number of sets; a prefix that starts more
-- words is looked up in its first EXPAND.
-- The order: the class of the word that does worst (0 name, 1 one-liner,
-- 2 tag or figure), then the group (public, "system", own), then the path.
-- One word reads the first ARGV[4] entries of each of its words' sets and
-- merges them: exactly the first ARGV[4] (a node ranks by its best word,
-- and a node ahead of it in that word's set is ahead of it overall).
-- Several words read up to ARGV[5] nodes of the rarest word's sets in that
-- order and keep those whose words (words:<path>) start with every other
-- word, so past ARGV[5] visible nodes of the rarest word the answer is the
-- best among the first ones.
--
-- Returns { { path, name, one_liner, class, image_url }, ... }, "" for an
-- absent field.

local EXPAND = 32

local p, mode, user = ARGV[1], ARGV[2], ARGV[3]
local limit, budget = tonumber(ARGV[4]), tonumber(ARGV[5])
local words = {}
for i = 6, #ARGV do
    words[#words + 1] = ARGV[i]
end

local function key(w)
    return p .. 'idx:word:' .. w
end

-- the indexed words that start with w (UTF-8 has no byte 0xff)
local function completions(w)
    return redis.call('ZRANGEBYLEX', p .. 'idx:vocab', '[' .. w,
                      '(' .. w .. '\255', 'LIMIT', 0, EXPAND)
end

-- the first n entries of a word's set the requester may see, in order:
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

local function before(a, b)
    if a[2] ~= b[2] then
        return a[2] < b[2]
    end
    return a[1] < b[1]
end

-- the first n nodes, in order, of the union of the sets of list (each
-- node at its best score): { { path, score }, ... }

local function merged(list, n)
    local best, out = {}, {}
    for _, w in ipairs(list) do
        local r = visible(w, n)
        for i = 1, #r, 2 do
            local s = tonumber(r[i + 1])
            if best[r[i]] == nil or s < best[r[i]] then
                best[r[i]] = s
            end
        end
    end
    for path, s in pairs(best) do
        out[#out + 1] = { path, s }
    end
    table.sort(out, before)
    for i = #out, n + 1, -1 do
        out[i] = nil
    end
    return out
end

-- the least class of the words of s (words:<path>) that w starts, or nil
local function class_in(s, w)
    for class = 0, 2 do
        if string.find(s, ' ' .. class .. w, 1, true) then
            return class
        end
    end
    return nil
end

local found = {}

if #words == 1 then
    for _, e in ipairs(merged(completions(words[1]), limit)) do
        found[#found + 1] = { e[1], math.floor(e[2] / 4) }
    end

elseif #words > 1 then
    -- the rarest word leads: the fewest entries in its words' sets
    local lead, size, expanded = 1, nil, {}
    for i, w in ipairs(words) do
        local c = completions(w)
        if #c == 0 then
            return {}
        end
        local n = #c < EXPAND and 0 or math.huge
        for _, cw in ipairs(c) do
            n = n + redis.call('ZCARD', key(cw))
        end
        expanded[i] = c
        if size == nil or n < size then
            lead, size = i, n
        end
    end

    for _, e in ipairs(merged(expanded[lead], budget)) do
        local path, score = e[1], e[2]
        local class = math.floor(score / 4)
        local s = redis.call('GET', p .. 'words:' .. path)

        for j, w in ipairs(words) do
            if j ~= lead then
                local c = s and class_in(s, w)
                if not c then
                    class = nil
                    break
                end
                class = math.max(class, c)
            end
        end

        if class then
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

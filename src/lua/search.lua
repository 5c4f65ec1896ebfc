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
-- A query word's sets are merged in that order, each node at its best
-- entry (a heap; each set read in growing chunks, only as far as the
-- merge takes it).  One word takes the first ARGV[4] nodes of the merge.
-- Several words walk up to ARGV[5] nodes of the rarest word's merge and
-- keep those whose words (words:<path>) start with every other word; a
-- node ranks no better than in the walk, so the walk stops once ARGV[4]
-- kept nodes rank better than the next.  Past ARGV[5] visible nodes of the
-- rarest word the answer is the best among the first ones.
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

-- the entries of a word's sets the requester may see, in order, as
-- streams read by rank in chunks: the service, the word's set; a user, the
-- shared set without other users' private nodes (group 2), and their own
-- set; the public, the shared set's public nodes

local function streams(w, out)
    local k = key(w)
    if mode == 'service' then
        out[#out + 1] = { k = k, off = 0, buf = {}, pos = 1 }
    elseif mode == 'user' then
        out[#out + 1] = { k = k, skip = 2, off = 0, buf = {}, pos = 1 }
        out[#out + 1] = { k = k .. '|' .. user, off = 0, buf = {}, pos = 1 }
    else
        out[#out + 1] = { k = k, keep = 0, off = 0, buf = {}, pos = 1 }
    end
end

-- the next entries of s into s.buf ({ path, score, ... }), at least one,
-- reading chunk at a time: false at its end
local function fill(s, chunk)
    while not s.spent do
        local r = redis.call('ZRANGE', s.k, s.off, s.off + chunk - 1,
                             'WITHSCORES')
        s.off = s.off + #r / 2
        s.spent = #r < 2 * chunk
        local buf = r
        if s.skip or s.keep then
            buf = {}
            for i = 1, #r, 2 do
                local g = tonumber(r[i + 1]) % 4
                if g ~= s.skip and (s.keep == nil or g == s.keep) then
                    buf[#buf + 1] = r[i]
                    buf[#buf + 1] = r[i + 1]
                end
            end
        end
        if #buf > 0 then
            s.buf, s.pos = buf, 1
            return true
        end
    end
    return false
end

-- the union of the streams of list's words, in order, each node once (at
-- its first, best, entry): an iterator of path, score.  A heap of the
-- streams by their next entry; each reads first entries at first, twice
-- as many each time after, up to most: a call per stream when first is
-- what the caller takes.

local function merge(list, first, most)
    local heap = {}

    local function less(a, b)
        local x, y = tonumber(a.buf[a.pos + 1]), tonumber(b.buf[b.pos + 1])
        if x ~= y then
            return x < y
        end
        return a.buf[a.pos] < b.buf[b.pos]
    end

    local function down(i)
        local n = #heap
        while true do
            local l, r, m = 2 * i, 2 * i + 1, i
            if l <= n and less(heap[l], heap[m]) then
                m = l
            end
            if r <= n and less(heap[r], heap[m]) then
                m = r
            end
            if m == i then
                return
            end
            heap[i], heap[m] = heap[m], heap[i]
            i = m
        end
    end

    local all = {}
    for _, w in ipairs(list) do
        streams(w, all)
    end
    for _, s in ipairs(all) do
        s.chunk = first
        if fill(s, s.chunk) then
            heap[#heap + 1] = s
        end
    end
    for i = math.floor(#heap / 2), 1, -1 do
        down(i)
    end

    local seen = {}

    return function()
        while #heap > 0 do
            local s = heap[1]
            local path, score = s.buf[s.pos], tonumber(s.buf[s.pos + 1])
            s.pos = s.pos + 2
            if s.pos > #s.buf then
                s.chunk = math.min(2 * s.chunk, most)
                if not fill(s, s.chunk) then
                    heap[1] = heap[#heap]
                    heap[#heap] = nil
                end
            end
            if #heap > 0 then
                down(1)
            end
            if not seen[path] then
                seen[path] = true
                return path, score
            end
        end
        return nil
    end
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

-- (class, group, path)
local function before(a, b)
    if a[2] ~= b[2] then
        return a[2] < b[2]
    end
    if a[3] ~= b[3] then
        return a[3] < b[3]
    end
    return a[1] < b[1]
end

local found = {}

if #words == 1 then
    -- a few entries of each of many words first: a call costs about as
    -- much as four entries, and most words give none of the answer
    local list = completions(words[1])
    local first = #list == 1 and limit or math.ceil(2 * limit / #list)
    local next_node = merge(list, math.max(4, math.min(first, limit)), limit)
    while #found < limit do
        local path, score = next_node()
        if path == nil then
            break
        end
        found[#found + 1] = { path, math.floor(score / 4) }
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

    local next_node = merge(expanded[lead], math.min(limit, budget), budget)

    for _ = 1, budget do
        local path, score = next_node()
        if path == nil then
            break
        end

        local class, g = math.floor(score / 4), score % 4

        -- a node ranks no better than its lead word: once limit nodes
        -- rank better than this one, none after it can enter
        if #found >= limit and before(found[limit], { path, class, g }) then
            break
        end

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
            found[#found + 1] = { path, class, g }
            if #found >= limit then
                table.sort(found, before)
                found[limit + 1] = nil
            end
        end
    end

    table.sort(found, before)
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

-- The graph's read indexes of a node, for the scripts that include this
-- file (config replaces a line "-- #include lib/index.lua" with it; the
-- script defines "p", the graph key prefix, before that line).  What the
-- keys hold: complete.lua's header and docs/architecture.md, "Redis keys".
-- complete.lua, seed.lua and ingest.lua include it.  publish.lua's browse() (it moves
-- a node between views) and ops/reindex.lua's search() differ, and
-- reindex.lua runs from redis-cli --eval, which includes nothing: they
-- keep their own; group(), count(), browse() and serial() there must stay
-- the same, line for line (t/35-system.t holds them to it).

-- 0 public, 1 private of "system", 2 private of a user
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

-- browse: a count for each of the path's eight levels, in each view
local function browse(at, g, by, delta)
    local parent = '/'
    for seg in string.gmatch(at, '[^/]+') do
        count(p .. 'idx:ba:' .. parent, seg, delta)
        if g < 2 then
            count(p .. 'idx:bs:' .. parent, seg, delta)
        else
            count(p .. 'idx:bu:' .. parent .. '|' .. by, seg, delta)
        end
        parent = (parent == '/' and '' or parent) .. '/' .. seg
    end
end

-- idx:version: "<n> <token>", a new value at each change of the graph
local function version(token)
    local n = tonumber(string.match(redis.call('GET', p .. 'idx:version')
                                    or '', '^%d+')) or 0
    redis.call('SET', p .. 'idx:version', (n + 1) .. ' ' .. token)
end

-- words:<path> as written: " <class><word>" each
local function serial(list)
    local t = {}
    for _, e in ipairs(list) do
        t[#t + 1] = ' ' .. e[2] .. e[1]
    end
    return table.concat(t)
end

-- (the words added go into idx:vocab in one ZADD: every redis.call from a
-- script costs Redis several microseconds beyond the command's own work)
local function search(list, at, g, by, add)
    local vocab = {}
    for _, e in ipairs(list) do
        local k = p .. 'idx:word:' .. e[1]
        if add then
            redis.call('ZADD', k, 4 * e[2] + g, at)
            vocab[#vocab + 1] = 0
            vocab[#vocab + 1] = e[1]
            if g == 2 then
                redis.call('ZADD', k .. '|' .. by, 4 * e[2] + g, at)
            end
        else
            redis.call('ZREM', k, at)
            if redis.call('EXISTS', k) == 0 then
                redis.call('ZREM', p .. 'idx:vocab', e[1])
            end
            if g == 2 then
                redis.call('ZREM', k .. '|' .. by, at)
            end
        end
    end
    if #vocab > 0 then
        redis.call('ZADD', p .. 'idx:vocab', unpack(vocab))
    end
end

-- the words as indexed: each once, no space in one, at most 48 (scene.h)
local function clean_words(words)
    local list, dup = {}, {}
    for _, e in ipairs(type(words) == 'table' and words or {}) do
        if type(e) == 'table' and type(e[1]) == 'string' and #list < 48
           and not dup[e[1]] and string.find(e[1], '^[^%s]+$')
           and (e[2] == 0 or e[2] == 1 or e[2] == 2)
        then
            dup[e[1]] = true
            list[#list + 1] = { e[1], e[2] }
        end
    end
    return list
end

-- a new node's every index: time, date, place, figures, tags, the public
-- list, browse, search and its words (complete.lua does the same, by
-- steps, around its auto-edges)
local function index_new(path, node, words)
    local score = node.sort_key
    local figures = type(node.figures) == 'table' and node.figures or {}
    local tags = type(node.tags) == 'table' and node.tags or {}
    local g = group(node.visibility, node.created_by)
    local list = clean_words(words)

    redis.call('ZADD', p .. 'idx:time', score, path)
    redis.call('ZADD', p .. 'idx:date:' .. node.year .. ':' .. node.month_num
                       .. ':' .. node.day, score, path)
    redis.call('ZADD', p .. 'idx:loc:' .. node.country .. '/' .. node.region
                       .. '/' .. node.city, score, path)
    for _, name in ipairs(figures) do
        redis.call('ZADD', p .. 'idx:fig:' .. name, score, path)
    end
    for _, tag in ipairs(tags) do
        redis.call('ZADD', p .. 'idx:tag:' .. tag, score, path)
    end
    if g == 0 then
        redis.call('ZADD', p .. 'idx:pub:time', score, path)
    end
    browse(path, g, node.created_by, 1)
    search(list, path, g, node.created_by, true)
    redis.call('SET', p .. 'words:' .. path, serial(list))
end

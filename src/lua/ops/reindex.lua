-- Rebuild the graph's counters (the stats hash complete.lua keeps) and its
-- read indexes (the public list idx:pub:time, browse counts idx:ba:*,
-- idx:bs:*, idx:bu:*, search idx:vocab, idx:word:* and words:<path>, see
-- complete.lua's header; the incoming edges edges_in:<path>, see
-- lib/edge.lua) from the graph itself: for a graph written
-- before they existed (an older version's idx:br:* and idx:w:* are
-- dropped), or after they were lost.  An
-- operator's command, not the module's: it is not compiled in (config
-- takes src/lua/*.lua only).  It SCANs every node and edge hash in one
-- atomic step, so Redis answers nothing else while it runs; see
-- docs/operations.md.
--
-- Search words are normalised here in Lua, which knows no Unicode: ASCII
-- and the Latin letters U+00C0-U+024F are folded as the module folds them
-- (utf8proc, in C); letters of other scripts are kept as they are, so a
-- node with Greek capitals, say, is found by its own spelling only until
-- it is generated again (complete.lua then indexes the module's words).
--
--   redis-cli -u redis://HOST:PORT --eval src/lua/ops/reindex.lua \
--       'clockchain:{cc}:v1:stats' , 'clockchain:{cc}:v1:'
--
-- KEYS[1]  the stats hash
-- ARGV[1]  graph key prefix ("<prefix>{cc}:v1:")
--
-- Returns { nodes, edges } as now counted.

local p = ARGV[1]
local counts = { nodes = 0, edges = 0 }
local last = ''

-- the prefix as a SCAN pattern: its glob characters taken literally
local pattern = string.gsub(p, '([%*%?%[%]\\])', '\\%1')

local function each(kind, fn)
    local seen = {}
    local cursor = '0'
    repeat
        local page = redis.call('SCAN', cursor,
                                'MATCH', pattern .. kind .. '*', 'COUNT', 1000)
        cursor = page[1]
        for _, key in ipairs(page[2]) do
            -- SCAN may return a key twice
            if not seen[key] then
                seen[key] = true
                fn(key)
            end
        end
    until cursor == '0'
end

local function add(field, n)
    counts[field] = (counts[field] or 0) + n
end

each('node:', function(key)
    local n = redis.call('HMGET', key, 'layer', 'created_at')
    add('nodes', 1)
    if n[1] then
        add('layer:' .. n[1], 1)
    end
    if n[2] and n[2] > last then
        last = n[2]
    end
end)

-- edges_in:<target> names each edge its target does not hold back (an
-- edge a writer named, as lib/edge.lua's edge_put); an auto-edge, written
-- both ways, needs no entry, and the readers list an edge in once either
-- way
each('edges_in:', function(key)
    redis.call('DEL', key)
end)

local reverse = { precedes = 'follows', follows = 'precedes' }
local from = #p + #'edges:' + 1

each('edges:', function(key)
    local source = string.sub(key, from)
    for _, field in ipairs(redis.call('HKEYS', key)) do
        local etype, target = string.match(field, '^([^|]*)|(.*)$')
        add('edges', 1)
        if etype then
            add('edges:' .. etype, 1)
            if redis.call('HEXISTS', p .. 'edges:' .. target,
                          (reverse[etype] or etype) .. '|' .. source) == 0
            then
                redis.call('HSET', p .. 'edges_in:' .. target,
                           etype .. '|' .. source, '')
            end
        end
    end
end)

-- the read indexes: dropped, then rebuilt node by node

for _, kind in ipairs({ 'idx:br:', 'idx:w:', 'idx:ba:', 'idx:bs:',
                        'idx:bu:', 'idx:word:', 'words:' }) do
    each(kind, function(key)
        redis.call('DEL', key)
    end)
end

redis.call('DEL', p .. 'idx:vocab', p .. 'idx:pub:time')
-- the browse counts change: every nginx's cached answers go (complete.lua)
local vn = tonumber(string.match(redis.call('GET', p .. 'idx:version') or '',
                                 '^%d+')) or 0
local vt = redis.call('TIME')
redis.call('SET', p .. 'idx:version',
           (vn + 1) .. ' reindex ' .. vt[1] .. '.' .. vt[2])

-- the same functions as complete.lua's

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

local function serial(list)
    local t = {}
    for _, e in ipairs(list) do
        t[#t + 1] = ' ' .. e[2] .. e[1]
    end
    return table.concat(t)
end

local function search(list, at, g, by)
    for _, e in ipairs(list) do
        local k = p .. 'idx:word:' .. e[1]
        redis.call('ZADD', k, 4 * e[2] + g, at)
        redis.call('ZADD', p .. 'idx:vocab', 0, e[1])
        if g == 2 then
            redis.call('ZADD', k .. '|' .. by, 4 * e[2] + g, at)
        end
    end
end

-- ngx_http_clockchain_words() as far as Lua can: see the header
local FOLD = {
    ['À']='a',['Á']='a',['Â']='a',['Ã']='a',['Ä']='a',['Å']='a',['Æ']='æ',
    ['Ç']='c',['È']='e',['É']='e',['Ê']='e',['Ë']='e',['Ì']='i',['Í']='i',
    ['Î']='i',['Ï']='i',['Ð']='ð',['Ñ']='n',['Ò']='o',['Ó']='o',['Ô']='o',
    ['Õ']='o',['Ö']='o',['Ø']='o',['Ù']='u',['Ú']='u',['Û']='u',['Ü']='u',
    ['Ý']='y',['Þ']='þ',['ß']='ss',['à']='a',['á']='a',['â']='a',['ã']='a',
    ['ä']='a',['å']='a',['ç']='c',['è']='e',['é']='e',['ê']='e',['ë']='e',
    ['ì']='i',['í']='i',['î']='i',['ï']='i',['ñ']='n',['ò']='o',['ó']='o',
    ['ô']='o',['õ']='o',['ö']='o',['ø']='o',['ù']='u',['ú']='u',['û']='u',
    ['ü']='u',['ý']='y',['ÿ']='y',['Ā']='a',['ā']='a',['Ă']='a',['ă']='a',
    ['Ą']='a',['ą']='a',['Ć']='c',['ć']='c',['Ĉ']='c',['ĉ']='c',['Ċ']='c',
    ['ċ']='c',['Č']='c',['č']='c',['Ď']='d',['ď']='d',['Đ']='d',['đ']='d',
    ['Ē']='e',['ē']='e',['Ĕ']='e',['ĕ']='e',['Ė']='e',['ė']='e',['Ę']='e',
    ['ę']='e',['Ě']='e',['ě']='e',['Ĝ']='g',['ĝ']='g',['Ğ']='g',['ğ']='g',
    ['Ġ']='g',['ġ']='g',['Ģ']='g',['ģ']='g',['Ĥ']='h',['ĥ']='h',['Ħ']='h',
    ['ħ']='h',['Ĩ']='i',['ĩ']='i',['Ī']='i',['ī']='i',['Ĭ']='i',['ĭ']='i',
    ['Į']='i',['į']='i',['İ']='i',['ı']='i',['Ĳ']='ij',['ĳ']='ij',['Ĵ']='j',
    ['ĵ']='j',['Ķ']='k',['ķ']='k',['Ĺ']='l',['ĺ']='l',['Ļ']='l',['ļ']='l',
    ['Ľ']='l',['ľ']='l',['Ł']='l',['ł']='l',['Ń']='n',['ń']='n',['Ņ']='n',
    ['ņ']='n',['Ň']='n',['ň']='n',['ŉ']='ʼn',['Ŋ']='ŋ',['Ō']='o',['ō']='o',
    ['Ŏ']='o',['ŏ']='o',['Ő']='o',['ő']='o',['Œ']='œ',['Ŕ']='r',['ŕ']='r',
    ['Ŗ']='r',['ŗ']='r',['Ř']='r',['ř']='r',['Ś']='s',['ś']='s',['Ŝ']='s',
    ['ŝ']='s',['Ş']='s',['ş']='s',['Š']='s',['š']='s',['Ţ']='t',['ţ']='t',
    ['Ť']='t',['ť']='t',['Ŧ']='t',['ŧ']='t',['Ũ']='u',['ũ']='u',['Ū']='u',
    ['ū']='u',['Ŭ']='u',['ŭ']='u',['Ů']='u',['ů']='u',['Ű']='u',['ű']='u',
    ['Ų']='u',['ų']='u',['Ŵ']='w',['ŵ']='w',['Ŷ']='y',['ŷ']='y',['Ÿ']='y',
    ['Ź']='z',['ź']='z',['Ż']='z',['ż']='z',['Ž']='z',['ž']='z',['ſ']='s',
    ['Ɓ']='ɓ',['Ƃ']='ƃ',['Ƅ']='ƅ',['Ɔ']='ɔ',['Ƈ']='ƈ',['Ɖ']='ɖ',['Ɗ']='ɗ',
    ['Ƌ']='ƌ',['Ǝ']='ǝ',['Ə']='ə',['Ɛ']='ɛ',['Ƒ']='ƒ',['Ɠ']='ɠ',['Ɣ']='ɣ',
    ['Ɩ']='ɩ',['Ɨ']='ɨ',['Ƙ']='ƙ',['Ɯ']='ɯ',['Ɲ']='ɲ',['Ɵ']='ɵ',['Ơ']='o',
    ['ơ']='o',['Ƣ']='ƣ',['Ƥ']='ƥ',['Ʀ']='ʀ',['Ƨ']='ƨ',['Ʃ']='ʃ',['Ƭ']='ƭ',
    ['Ʈ']='ʈ',['Ư']='u',['ư']='u',['Ʊ']='ʊ',['Ʋ']='ʋ',['Ƴ']='ƴ',['Ƶ']='ƶ',
    ['Ʒ']='ʒ',['Ƹ']='ƹ',['Ƽ']='ƽ',['Ǆ']='dz',['ǅ']='dz',['ǆ']='dz',
    ['Ǉ']='lj',['ǈ']='lj',['ǉ']='lj',['Ǌ']='nj',['ǋ']='nj',['ǌ']='nj',
    ['Ǎ']='a',['ǎ']='a',['Ǐ']='i',['ǐ']='i',['Ǒ']='o',['ǒ']='o',['Ǔ']='u',
    ['ǔ']='u',['Ǖ']='u',['ǖ']='u',['Ǘ']='u',['ǘ']='u',['Ǚ']='u',['ǚ']='u',
    ['Ǜ']='u',['ǜ']='u',['Ǟ']='a',['ǟ']='a',['Ǡ']='a',['ǡ']='a',['Ǣ']='æ',
    ['ǣ']='æ',['Ǥ']='ǥ',['Ǧ']='g',['ǧ']='g',['Ǩ']='k',['ǩ']='k',['Ǫ']='o',
    ['ǫ']='o',['Ǭ']='o',['ǭ']='o',['Ǯ']='ʒ',['ǯ']='ʒ',['ǰ']='j',['Ǳ']='dz',
    ['ǲ']='dz',['ǳ']='dz',['Ǵ']='g',['ǵ']='g',['Ƕ']='ƕ',['Ƿ']='ƿ',['Ǹ']='n',
    ['ǹ']='n',['Ǻ']='a',['ǻ']='a',['Ǽ']='æ',['ǽ']='æ',['Ǿ']='ø',['ǿ']='ø',
    ['Ȁ']='a',['ȁ']='a',['Ȃ']='a',['ȃ']='a',['Ȅ']='e',['ȅ']='e',['Ȇ']='e',
    ['ȇ']='e',['Ȉ']='i',['ȉ']='i',['Ȋ']='i',['ȋ']='i',['Ȍ']='o',['ȍ']='o',
    ['Ȏ']='o',['ȏ']='o',['Ȑ']='r',['ȑ']='r',['Ȓ']='r',['ȓ']='r',['Ȕ']='u',
    ['ȕ']='u',['Ȗ']='u',['ȗ']='u',['Ș']='s',['ș']='s',['Ț']='t',['ț']='t',
    ['Ȝ']='ȝ',['Ȟ']='h',['ȟ']='h',['Ƞ']='ƞ',['Ȣ']='ȣ',['Ȥ']='ȥ',['Ȧ']='a',
    ['ȧ']='a',['Ȩ']='e',['ȩ']='e',['Ȫ']='o',['ȫ']='o',['Ȭ']='o',['ȭ']='o',
    ['Ȯ']='o',['ȯ']='o',['Ȱ']='o',['ȱ']='o',['Ȳ']='y',['ȳ']='y',['Ⱥ']='ⱥ',
    ['Ȼ']='ȼ',['Ƚ']='ƚ',['Ⱦ']='ⱦ',['Ɂ']='ɂ',['Ƀ']='ƀ',['Ʉ']='ʉ',['Ʌ']='ʌ',
    ['Ɇ']='ɇ',['Ɉ']='ɉ',['Ɋ']='ɋ',['Ɍ']='ɍ',['Ɏ']='ɏ',
}
local WORD_MAX, WORDS_MAX = 12, 48   -- ngx_http_clockchain_scene.h

local function words(text, class, list, at)
    local cur, chars = {}, 0

    local function flush()
        if chars >= 2 then
            local w = table.concat(cur)
            if at[w] then
                if class < list[at[w]][2] then
                    list[at[w]][2] = class
                end
            elseif #list < WORDS_MAX then
                list[#list + 1] = { w, class }
                at[w] = #list
            end
        end
        cur, chars = {}, 0
    end

    local i = 1
    while i <= #text do
        local b = string.byte(text, i)
        local len = b >= 0xf0 and 4 or b >= 0xe0 and 3 or b >= 0xc2 and 2 or 1
        local ch = string.sub(text, i, i + len - 1)
        local letter = nil
        i = i + len

        if len == 1 then
            if string.match(ch, '^%w$') then
                letter = string.lower(ch)
            end
        elseif not ((ch >= '\194\160' and ch <= '\194\191')     -- « » ...
                    or ch == '\195\151' or ch == '\195\183'       -- × ÷
                    or (ch >= '\226\128\128' and ch <= '\226\129\175'))
        then                                                        -- — ’ …
            letter = FOLD[ch] or ch
        end

        if letter then
            for c in string.gmatch(letter, '[%z\1-\127\194-\244][\128-\191]*') do
                if chars < WORD_MAX then
                    cur[#cur + 1] = c
                    chars = chars + 1
                end
            end
        else
            flush()
        end
    end

    flush()
end

local function list_of(json)
    local ok, v = pcall(cjson.decode, json or '[]')
    return (ok and type(v) == 'table') and v or {}
end

each('node:', function(key)
    local n = redis.call('HMGET', key, 'visibility', 'created_by', 'name',
                         'one_liner', 'tags', 'figures', 'sort_key')
    local path = string.sub(key, #p + #'node:' + 1)
    local g = group(n[1], n[2])
    local list, at = {}, {}

    words(n[3] or '', 0, list, at)
    for _, t in ipairs(list_of(n[5])) do
        words(tostring(t), 2, list, at)
    end
    for _, f in ipairs(list_of(n[6])) do
        words(tostring(f), 2, list, at)
    end
    words(n[4] or '', 1, list, at)

    browse(path, g, n[2], 1)
    if g == 0 and n[7] then
        redis.call('ZADD', p .. 'idx:pub:time', n[7], path)
    end
    search(list, path, g, n[2])
    redis.call('SET', p .. 'words:' .. path, serial(list))
end)

local fields = {}
for k, v in pairs(counts) do
    fields[#fields + 1] = k
    fields[#fields + 1] = v
end
if last ~= '' then
    fields[#fields + 1] = 'last_updated'
    fields[#fields + 1] = last
end

redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(fields))

return { counts.nodes, counts.edges }

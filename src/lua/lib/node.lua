-- One node written into the graph, as a Flash completion (complete.lua), a
-- writer's ingest (ingest.lua) and a proposal (propose.lua) all write it: one
-- code path for the node hash, its counters, its automatic edges and its read
-- indexes, so that a node is the same however it came. config puts this file
-- in place of a line "-- #include lib/node.lua", after lib/index.lua (whose
-- group(), browse(), search(), serial() and clean_words() it uses) and after
-- the script has defined p (the graph key prefix), stats (its counters hash)
-- and cap (the most edges of one type from one new node). What the keys hold:
-- complete.lua's header.
--
-- node_put(path, node, keep): writes node (a table decoded from the node
-- JSON ngx_http_clockchain_scene.c / ngx_http_clockchain_ingest.c build,
-- with its sort_key and its words as "search") at path.  A node already
-- there is updated: the fields named in keep (a set) stay as they were.
-- Returns true when the node is new.  Every path whose answer changed is
-- noted for node_publish().
--
-- node_publish(channel): PUBLISH on channel the paths noted, "*" (every
-- moment) past 256 of them.

local YEAR = 100000000

-- the nodes whose answer changes, in the order noted; nil: too many
local node_changed, node_changed_set = {}, {}

local function node_note(at)
    if node_changed == nil or node_changed_set[at] then
        return
    end
    node_changed_set[at] = true
    node_changed[#node_changed + 1] = at
    if #node_changed > 256 then
        node_changed = nil
    end
end

-- words:<path> as written: " <class><word>" each
local function node_parse_words(s)
    local out = {}
    for c, w in string.gmatch(s, ' (%d)(%S+)') do
        out[#out + 1] = { w, tonumber(c) }
    end
    return out
end

local function node_put(path, node, keep)
    -- [[word, class], ...]: indexed below, not a field of the node
    local words = type(node.search) == 'table' and node.search or {}
    node.search = nil

    local nkey = p .. 'node:' .. path
    local score = node.sort_key

    -- read before the node is written: is it new, and its layer until now
    local fresh = redis.call('EXISTS', nkey) == 0
    local old_layer = redis.call('HGET', nkey, 'layer')
    local old = redis.call('HMGET', nkey, 'visibility', 'created_by')

    -- the node: a hash; lists as JSON, nulls absent; same path = same node

    local fields = {}
    for k, v in pairs(node) do
        if v == cjson.null then
            if fresh or not keep[k] then
                redis.call('HDEL', nkey, k)
            end
        else
            if type(v) == 'table' then
                -- cjson writes an empty table as {}: a list here
                v = next(v) == nil and '[]' or cjson.encode(v)
            end
            fields[#fields + 1] = k
            fields[#fields + 1] = tostring(v)
        end
    end

    if not fresh then
        -- an update keeps what keep names (complete.lua: the node's first
        -- creation time and its publication) as it was
        local out = {}
        for i = 1, #fields, 2 do
            if not keep[fields[i]]
               or redis.call('HEXISTS', nkey, fields[i]) == 0
            then
                out[#out + 1] = fields[i]
                out[#out + 1] = fields[i + 1]
            end
        end
        fields = out
    end

    if #fields > 0 then
        redis.call('HSET', nkey, unpack(fields))
    end

    -- the counters: a new node, or one whose layer moved

    local layer = node.layer ~= nil and node.layer ~= cjson.null
                  and tostring(node.layer) or nil

    if fresh then
        redis.call('HINCRBY', stats, 'nodes', 1)
        if type(node.created_at) == 'string'
           and node.created_at > (redis.call('HGET', stats, 'last_updated')
                                  or '')
        then
            redis.call('HSET', stats, 'last_updated', node.created_at)
        end
    end

    if layer ~= old_layer then
        if old_layer then
            redis.call('HINCRBY', stats, 'layer:' .. old_layer, -1)
        end
        if layer then
            redis.call('HINCRBY', stats, 'layer:' .. layer, 1)
        end
    end

    -- nearer in time first; the same distance in path order, so it is
    -- stable

    local function by_distance(a, b)
        local da, db = math.abs(a[2] - score), math.abs(b[2] - score)
        if da == db then
            return a[1] < b[1]
        end
        return da < db
    end

    -- the same distance: path order, as by_distance() has it
    local function by_path(a, b)
        return a[1] < b[1]
    end

    -- nearest members of an index by time, self excluded.  Redis answers
    -- each side in order of distance already (up: by score, then path;
    -- down: the reverse of that), so the two are merged, and only a run of
    -- one distance is put in path order, when it is not in it yet: sorting
    -- all of them in Lua took about 400 us a node for the 4 * cap of
    -- same_era alone

    local function scored(list)
        local out = {}
        for i = 1, #list, 2 do
            out[#out + 1] = { list[i], tonumber(list[i + 1]) }
        end
        return out
    end

    local function nearest(key, lo, hi, n)
        local up = scored(redis.call('ZRANGEBYSCORE', key, score, hi,
                                     'WITHSCORES', 'LIMIT', 0, n + 1))
        local down = scored(redis.call('ZREVRANGEBYSCORE', key, score, lo,
                                       'WITHSCORES', 'LIMIT', 0, n + 1))
        local out, seen = {}, {}
        local i, j = 1, 1
        while #out < n and (up[i] ~= nil or down[j] ~= nil) do
            local du = up[i] ~= nil and up[i][2] - score or nil
            local dd = down[j] ~= nil and score - down[j][2] or nil
            local d = (dd == nil or (du ~= nil and du <= dd)) and du or dd
            local run, first = {}, j
            while up[i] ~= nil and up[i][2] - score == d do
                run[#run + 1] = up[i]
                i = i + 1
            end
            while down[j] ~= nil and score - down[j][2] == d do
                j = j + 1
            end
            for x = j - 1, first, -1 do
                run[#run + 1] = down[x]
            end
            local kept, sorted = {}, true
            for _, o in ipairs(run) do
                if o[1] ~= path and not seen[o[1]] then
                    seen[o[1]] = true
                    if #kept > 0 and not (kept[#kept][1] < o[1]) then
                        sorted = false
                    end
                    kept[#kept + 1] = o
                end
            end
            if not sorted then
                table.sort(kept, by_path)
            end
            for _, o in ipairs(kept) do
                if #out == n then
                    break
                end
                out[#out + 1] = o
            end
        end
        return out
    end

    -- the first n members of several lists in nearest()'s order, each
    -- once: a merge of their heads (each list is in that order)

    local function first_of(lists, n)
        local out, seen, at = {}, {}, {}
        for x = 1, #lists do
            at[x] = 1
        end
        while #out < n do
            local best, e = nil, nil
            for x = 1, #lists do
                local l = lists[x]
                while l[at[x]] ~= nil and seen[l[at[x]][1]] do
                    at[x] = at[x] + 1
                end
                local h = l[at[x]]
                if h ~= nil and (e == nil or by_distance(h, e)) then
                    best, e = x, h
                end
            end
            if best == nil then
                break
            end
            seen[e[1]] = true
            out[#out + 1] = e
            at[best] = at[best] + 1
        end
        return out
    end

    -- the nodes whose answer changes: the new node, each node given an
    -- edge to it, and on an update every neighbour (its name may have
    -- changed)
    local touched = {}

    -- Every redis.call costs Redis several microseconds of its own beyond
    -- the command's work, and a node of a dense graph writes about 150
    -- edges: the node's own go into its edges hash in one HSET per type,
    -- and the counters are added up here and written once per type, in
    -- edges_flush().  An edge into the node is a hash of another node's:
    -- one HSET each, since its answer says whether that edge is new.
    local own, added = {}, {}

    -- an edge's JSON, as cjson.encode() wrote it from the table
    -- { source, target, type, weight, created_by = 'auto' } (and theme):
    -- the same bytes in its order of keys, each path encoded once; the
    -- table's encoding took 2.6 us, for each of a completion's ~150 edges
    local json_of = {}

    local function json_str(v)
        local j = json_of[v]
        if j == nil then
            j = cjson.encode(v)
            json_of[v] = j
        end
        return j
    end

    local function edge(source, target, etype, weight, theme)
        touched[source] = true
        local e = '{"created_by":"auto","type":' .. json_str(etype)
                  .. ',"source":' .. json_str(source) .. ',"weight":'
                  .. weight .. ',"target":' .. json_str(target)
                  .. (theme and ',"theme":' .. json_str(theme) or '') .. '}'
        if source == path then
            local l = own[etype]
            if l == nil then
                l = {}
                own[etype] = l
            end
            l[#l + 1] = etype .. '|' .. target
            l[#l + 1] = e
        elseif redis.call('HSET', p .. 'edges:' .. source,
                          etype .. '|' .. target, e) == 1
        then
            added[etype] = (added[etype] or 0) + 1
        end
    end

    local function edges_flush()
        local key = p .. 'edges:' .. path
        for etype, l in pairs(own) do
            -- at most cap fields of a type: 2000 values with edges_max at
            -- its bound of 1000, within unpack()'s 8000 (LUAI_MAXCSTACK)
            added[etype] = (added[etype] or 0)
                           + redis.call('HSET', key, unpack(l))
        end
        local total = 0
        for etype, n in pairs(added) do
            if n > 0 then
                redis.call('HINCRBY', stats, 'edges:' .. etype, n)
                total = total + n
            end
        end
        if total > 0 then
            redis.call('HINCRBY', stats, 'edges', total)
        end
    end

    local function both(other, etype, weight, theme)
        edge(path, other, etype, weight, theme)
        edge(other, path, etype, weight, theme)
    end

    local date_key = p .. 'idx:date:' .. node.year .. ':' .. node.month_num
                     .. ':' .. node.day
    local loc_key = p .. 'idx:loc:' .. node.country .. '/' .. node.region
                    .. '/' .. node.city
    local time_key = p .. 'idx:time'

    -- contemporaneous: the same year, month and day

    for _, o in ipairs(nearest(date_key, '-inf', '+inf', cap)) do
        both(o[1], 'contemporaneous', 0.8)
    end

    -- same_era: within ten years, not the same date; precedes / follows

    local lo = (node.year - 10) * YEAR
    local hi = (node.year + 11) * YEAR - 1
    local era, later, earlier = {}, {}, {}

    -- the same date is the same sort_key but for its last four digits,
    -- the time of day (year * 10^8 + month * 10^6 + day * 10^4 + hhmm,
    -- BCE too: % is a floored modulo), which is what puts a node in the
    -- date_key above: no ZSCORE of it for each of the 4 * cap
    local date = score - score % 10000

    for _, o in ipairs(nearest(time_key, lo, hi, 4 * cap)) do
        if o[2] - o[2] % 10000 ~= date then
            era[#era + 1] = o
            if o[2] > score then
                later[#later + 1] = o
            elseif o[2] < score then
                earlier[#earlier + 1] = o
            end
        end
    end

    for i = 1, math.min(cap, #era) do
        both(era[i][1], 'same_era', 0.3)
    end

    for i = 1, math.min(cap, #later) do
        edge(path, later[i][1], 'precedes', 0.4)
        edge(later[i][1], path, 'follows', 0.4)
    end

    for i = 1, math.min(cap, #earlier) do
        edge(path, earlier[i][1], 'follows', 0.4)
        edge(earlier[i][1], path, 'precedes', 0.4)
    end

    -- same_location

    for _, o in ipairs(nearest(loc_key, '-inf', '+inf', cap)) do
        both(o[1], 'same_location', 0.5)
    end

    -- same_figure and thematic: shared names, sorted and ", "-joined

    local function shared(kind, names, etype, weight)
        -- each name's nearest, and who is in them: a member found there
        -- needs no ZSCORE to say that it has the name
        local lists, has = {}, {}
        for x, name in ipairs(names) do
            lists[x] = nearest(p .. 'idx:' .. kind .. ':' .. name, '-inf',
                               '+inf', cap)
            has[x] = {}
            for _, o in ipairs(lists[x]) do
                has[x][o[1]] = true
            end
        end
        for _, o in ipairs(first_of(lists, cap)) do
            local other = o[1]
            local common = {}
            for x, name in ipairs(names) do
                if has[x][other]
                   or redis.call('ZSCORE', p .. 'idx:' .. kind .. ':' .. name,
                                 other) ~= false
                then
                    common[#common + 1] = name
                end
            end
            table.sort(common)
            both(other, etype, weight, table.concat(common, ', '))
        end
    end

    local figures = node.figures ~= cjson.null and node.figures or {}
    local tags = node.tags ~= cjson.null and node.tags or {}

    shared('fig', figures, 'same_figure', 0.6)
    shared('tag', tags, 'thematic', 0.3)

    edges_flush()

    -- index the node last, so that it is not its own neighbour above

    redis.call('ZADD', time_key, score, path)
    redis.call('ZADD', date_key, score, path)
    redis.call('ZADD', loc_key, score, path)
    for _, name in ipairs(figures) do
        redis.call('ZADD', p .. 'idx:fig:' .. name, score, path)
    end
    for _, tag in ipairs(tags) do
        redis.call('ZADD', p .. 'idx:tag:' .. tag, score, path)
    end

    -- lists, browse and search (lib/index.lua)

    -- the words as indexed: each once, no space in one, at most 48
    local list = clean_words(words)

    local now = redis.call('HMGET', nkey, 'visibility', 'created_by')
    local g = group(now[1], now[2])
    local wkey = p .. 'words:' .. path
    local before = redis.call('GET', wkey)
    local words_now = serial(list)
    local list_in = list

    if before and string.sub(before, 1, 1) ~= '[' then
        -- the same node written again: its old words out (its path, its
        -- visibility and so its place in browse and the public list stay)
        if group(old[1], old[2]) ~= g or old[2] ~= now[2] then
            search(node_parse_words(before), path, group(old[1], old[2]),
                   old[2], false)
        elseif before == words_now then
            -- the same words in the same group, as a Flash answer given
            -- again has them: they are indexed as they are
            list_in = {}
        else
            -- in the same group: only what changed, a word gone out, a
            -- word new or of another class in (a ZADD moves its score)
            local class, gone = {}, {}
            for _, e in ipairs(list) do
                class[e[1]] = e[2]
            end
            for _, e in ipairs(node_parse_words(before)) do
                if class[e[1]] == nil then
                    gone[#gone + 1] = e
                elseif class[e[1]] == e[2] then
                    class[e[1]] = false
                end
            end
            search(gone, path, g, now[2], false)
            list_in = {}
            for _, e in ipairs(list) do
                if class[e[1]] then
                    list_in[#list_in + 1] = e
                end
            end
        end
    else
        -- new, or written before these indexes (JSON words: the indexes of
        -- an older version, which ops/reindex.lua replaces)
        browse(path, g, now[2], 1)
        if g == 0 then
            redis.call('ZADD', p .. 'idx:pub:time', score, path)
        end
    end

    search(list_in, path, g, now[2], true)
    if words_now ~= before then
        redis.call('SET', wkey, words_now)
    end

    -- every nginx forgets what it cached of them

    node_note(path)
    touched[path] = nil

    if not fresh then
        if redis.call('HLEN', p .. 'edges:' .. path) > 256 then
            node_changed = nil
        else
            for _, field in ipairs(redis.call('HKEYS',
                                              p .. 'edges:' .. path)) do
                local other = string.match(field, '^[^|]*|(.*)$')
                if other then
                    touched[other] = true
                end
            end
            touched[path] = nil
        end
    end

    for other in pairs(touched) do
        node_note(other)
    end

    return fresh
end

local function node_publish(channel)
    redis.call('PUBLISH', channel,
               node_changed and table.concat(node_changed, ' ') or '*')
end

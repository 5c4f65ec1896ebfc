-- Lists of graph nodes read from the time index: GET /api/moments (a page
-- of nodes, filtered), /api/today (this day and month in every year) and
-- /api/random (one node), as a requester may see them.
--
-- KEYS[1]  idx:time (every node path by sort_key)
-- ARGV[1]  what: "list", "today" or "random"
-- ARGV[2]  who asks: "public", "service" or "user" (as moment.lua)
-- ARGV[3]  the requester (X-User-Id), or ""
-- ARGV[4]  graph key prefix ("<prefix>{cc}:v1:")
-- ARGV[5]  the most entries of idx:time one call examines
-- list:   ARGV[6] limit, ARGV[7] offset, ARGV[8] lowest score ("-inf"),
--         ARGV[9] highest score ("+inf"), ARGV[10] "asc" or "desc",
--         ARGV[11] entity ("" none), ARGV[12] q ("" none)
-- today:  ARGV[6] month, ARGV[7] day, ARGV[8] the most years probed,
--         ARGV[9] the most nodes returned
--
-- No call walks the keyspace: each reads idx:time by score or rank, at
-- most ARGV[5] entries, and the node hashes of those entries; the public
-- reads idx:pub:time (complete.lua's header), every node of which it may
-- see.  Each node is returned as the values of FIELDS, "" for an absent
-- one.
-- list   { total, node... }: total counts the visible matches among the
--        entries examined; without filters, as the service or the
--        public, it is ZCOUNT.
-- today  { node... } by year, ascending.
-- random { node } or {}: ZRANDMEMBER draws, then a bounded walk from a
--        random rank when none of the draws is visible.

local FIELDS = { 'path', 'name', 'one_liner', 'year', 'month_num', 'month',
                 'day', 'country', 'region', 'city', 'layer', 'visibility',
                 'source_type', 'image_url', 'confidence', 'status' }

local what, mode, user, p = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local budget = tonumber(ARGV[5])
-- the public's index holds exactly what it may see
local index = mode == 'public' and p .. 'idx:pub:time' or KEYS[1]
local YEAR, MONTH, DAY = 100000000, 1000000, 10000

local function visible(visibility, by)
    if mode == 'service' then
        return true
    end
    if visibility == 'public' then
        return true
    end
    return mode == 'user' and (by == 'system' or by == user)
end

local function fields(path)
    local v = redis.call('HMGET', p .. 'node:' .. path, unpack(FIELDS))
    for i = 1, #FIELDS do
        if not v[i] then
            v[i] = ''
        end
    end
    v[1] = path
    return v
end

-- the node if it exists and the requester may see it, else nil
local function seen(path)
    local v = redis.call('HMGET', p .. 'node:' .. path, 'visibility',
                         'created_by', 'name', 'one_liner')
    if not (v[1] or v[2] or v[3]) or not visible(v[1], v[2]) then
        return nil
    end
    return v
end

if what == 'list' then
    local limit, offset = tonumber(ARGV[6]), tonumber(ARGV[7])
    local lo, hi, desc = ARGV[8], ARGV[9], ARGV[10] == 'desc'
    local entity, q = string.lower(ARGV[11]), string.lower(ARGV[12])
    local out = { 0 }

    -- ranks, not scores: ZCOUNT is O(log N), so a deep page costs no
    -- more than the first (ZRANGEBYSCORE ... LIMIT walks the offset)
    local n = redis.call('ZCOUNT', index, lo, hi)
    local first
    if desc then
        first = redis.call('ZCOUNT', index, '(' .. hi, '+inf')
    else
        first = redis.call('ZCOUNT', index, '-inf', '(' .. lo)
    end

    local function page(start, count)
        if start >= n then
            return {}
        end
        local stop = math.min(start + count, n) - 1
        if desc then
            return redis.call('ZREVRANGE', index, first + start,
                              first + stop)
        end
        return redis.call('ZRANGE', index, first + start, first + stop)
    end

    -- the service or the public with no filter but years: exact, at any
    -- offset
    if mode ~= 'user' and entity == '' and q == '' then
        out[1] = n
        for _, path in ipairs(page(offset, limit)) do
            out[#out + 1] = fields(path)
        end
        return out
    end

    -- a figure's index is named as written: the entity as given
    local fig = p .. 'idx:fig:' .. ARGV[11]
    local matched, examined = 0, 0

    while examined < budget do
        local paths = page(examined, math.min(100, budget - examined))
        if #paths == 0 then
            break
        end
        examined = examined + #paths

        for _, path in ipairs(paths) do
            local v = seen(path)
            local ok = v ~= nil

            if ok and entity ~= '' then
                -- the original: the name contains it, or a figure is it
                ok = string.find(string.lower(v[3] or ''), entity, 1, true)
                     or redis.call('ZSCORE', fig, path)
            end

            if ok and q ~= '' then
                ok = string.find(string.lower(v[3] or ''), q, 1, true)
                     or string.find(string.lower(v[4] or ''), q, 1, true)
            end

            if ok then
                if matched >= offset and matched < offset + limit then
                    out[#out + 1] = fields(path)
                end
                matched = matched + 1
            end
        end
    end

    out[1] = matched
    return out
end

if what == 'today' then
    local month, day = tonumber(ARGV[6]), tonumber(ARGV[7])
    local years, max = tonumber(ARGV[8]), tonumber(ARGV[9])
    local first = redis.call('ZRANGE', index, 0, 0, 'WITHSCORES')
    local last = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
    local out = {}

    if #first == 0 then
        return out
    end

    -- sort_key is year * 10^8 + ...: floor gives the year, BCE too
    local y0 = math.floor(tonumber(first[2]) / YEAR)
    local y1 = math.floor(tonumber(last[2]) / YEAR)

    -- the most recent years when the graph spans more than the bound
    if y1 - y0 + 1 > years then
        y0 = y1 - years + 1
    end

    local examined = 0

    for y = y0, y1 do
        local lo = y * YEAR + month * MONTH + day * DAY
        local paths = redis.call('ZRANGEBYSCORE', index, lo, lo + DAY - 1,
                                 'LIMIT', 0, budget - examined)
        examined = examined + #paths

        for _, path in ipairs(paths) do
            if #out < max and seen(path) then
                out[#out + 1] = fields(path)
            end
        end

        if #out >= max or examined >= budget then
            break
        end
    end

    return out
end

if what == 'random' then
    -- a negative count draws each independently: a random order too
    local draws = redis.call('ZRANDMEMBER', index, -16)

    for _, path in ipairs(draws) do
        if seen(path) then
            return { fields(path) }
        end
    end

    if #draws == 0 then
        return {}
    end

    -- few visible nodes: walk on from where the first draw is, wrapping
    local n = redis.call('ZCARD', index)
    local start = redis.call('ZRANK', index, draws[1]) or 0
    local examined = 0

    while examined < budget and examined < n do
        local from = (start + examined) % n
        local count = math.min(100, budget - examined, n - from)
        local paths = redis.call('ZRANGE', index, from, from + count - 1)
        if #paths == 0 then
            break
        end
        examined = examined + #paths

        for _, path in ipairs(paths) do
            if seen(path) then
                return { fields(path) }
            end
        end
    end

    return {}
end

return redis.error_reply('BAD_LIST unknown list ' .. tostring(what))

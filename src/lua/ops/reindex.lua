-- Rebuild the graph's counters (the stats hash complete.lua keeps) from
-- the graph itself: for a graph written before the counters existed, or
-- after the hash was lost.  An operator's command, not the module's: it
-- is not compiled in (config takes src/lua/*.lua only).  It SCANs every
-- node and edge hash in one atomic step, so Redis answers nothing else
-- while it runs; see docs/operations.md.
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

each('edges:', function(key)
    for _, field in ipairs(redis.call('HKEYS', key)) do
        local etype = string.match(field, '^([^|]*)|')
        add('edges', 1)
        if etype then
            add('edges:' .. etype, 1)
        end
    end
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

-- The graph's counters and its date range, for /api/stats and /health.
--
-- KEYS[1]  the stats hash (written by complete.lua)
-- KEYS[2]  the time index (idx:time)
--
-- Returns { the stats hash as HGETALL gives it, the score of the earliest
-- node or false, that of the latest or false }.  A hash of a few dozen
-- fields and both ends of one sorted set: no scan, whatever the graph's
-- size.

local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')

return { redis.call('HGETALL', KEYS[1]), first[2] or false, last[2] or false }

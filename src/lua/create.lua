-- Create one or more jobs, all or none.
--
-- KEYS[1]      the run queue (sorted set: job id scored by run-at ms)
-- KEYS[2..]    one job hash per job
-- ARGV[1]      run-at, ms since the epoch
-- ARGV[2]      key schema version
-- ARGV[3]      the most jobs the queue may hold (0: no limit)
-- ARGV[4..]    per job: id, created_at, query, preset, visibility, created_by
--
-- Returns the number of jobs created, an error FULL when the queue has no
-- room for them all, or an error naming an id that exists already (the
-- caller draws new ids and tries again). Nothing is written on an error.

local max = tonumber(ARGV[3])

if max > 0 and redis.call('ZCARD', KEYS[1]) + #KEYS - 1 > max then
    return redis.error_reply('FULL')
end

for i = 2, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 then
        return redis.error_reply('EXISTS ' .. KEYS[i])
    end
end

local n = 4

for i = 2, #KEYS do
    redis.call('HSET', KEYS[i],
               'id', ARGV[n],
               'status', 'pending',
               'created_at', ARGV[n + 1],
               'query', ARGV[n + 2],
               'preset', ARGV[n + 3],
               'visibility', ARGV[n + 4],
               'created_by', ARGV[n + 5],
               'schema', ARGV[2])
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[n])
    n = n + 6
end

return #KEYS - 1

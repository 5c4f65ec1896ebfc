-- Put a claimed job back in the queue, fenced by the claim's token: after a
-- failed attempt that will be retried (the job reads "pending" meanwhile),
-- or when its runner hands it back (a worker leaving after a reload, a
-- paused circuit breaker).
--
-- KEYS[1]  the job hash
-- KEYS[2]  the processing set
-- KEYS[3]  the run queue
-- ARGV[1]  fencing token
-- ARGV[2]  job id
-- ARGV[3]  run after this many ms, from now on Redis's clock (TIME): the
--          runners claim on that clock too (see claim.lua)
-- ARGV[4]  attempts made so far (recorded), or "" to leave them (a hand-back:
--          counted in the hash's "handbacks")
-- ARGV[5]  the last attempt's error, or "" for none
-- ARGV[6]  the events channel
-- ARGV[7]  "1" when the claim counted this attempt (clockchain_redis
--          wait=, see claim.lua): a hand-back takes that count back; absent
--          or "" otherwise
--
-- Attempts are never set lower than the hash has them: with wait= the
-- claims count them, and an outcome must not undo a count it did not see.
-- Returns the job's new version, or an error FENCED when the claim is no
-- longer current.

if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1]
   or redis.call('HGET', KEYS[1], 'status') ~= 'processing'
then
    return redis.error_reply('FENCED')
end

redis.call('HSET', KEYS[1], 'status', 'pending')
redis.call('HDEL', KEYS[1], 'token')

local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')

if ARGV[4] ~= '' then
    if tonumber(ARGV[4]) > attempts then
        redis.call('HSET', KEYS[1], 'attempts', ARGV[4])
    end
else
    -- handed back without counting an attempt (a drain, the breaker, too
    -- few replicas for the claim): a Flash call it cut short is accounted
    -- for here, not in attempts
    redis.call('HINCRBY', KEYS[1], 'handbacks', 1)
    if ARGV[7] == '1' and attempts > 0 then
        redis.call('HSET', KEYS[1], 'attempts', attempts - 1)
    end
end

if ARGV[5] ~= '' then
    redis.call('HSET', KEYS[1], 'last_error', ARGV[5])
end

redis.call('ZREM', KEYS[2], ARGV[2])
local t = redis.call('TIME')
redis.call('ZADD', KEYS[3], tonumber(t[1]) * 1000
                            + math.floor(tonumber(t[2]) / 1000)
                            + tonumber(ARGV[3]), ARGV[2])

local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('PUBLISH', ARGV[6], ARGV[2] .. ' pending ' .. v)

return v

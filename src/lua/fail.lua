-- Fail a job, fenced by the token of the claim that ran it.
--
-- KEYS[1]  the job hash
-- KEYS[2]  the processing set
-- KEYS[3]  the confirming set, for ARGV[8] (see complete.lua)
-- ARGV[1]  fencing token
-- ARGV[2]  job id
-- ARGV[3]  completed_at
-- ARGV[4]  error message
-- ARGV[5]  attempts made, recorded with the job
-- ARGV[6]  the events channel (and "<it>:final" for the final state)
-- ARGV[7]  how long the failed job is kept, seconds
-- ARGV[8]  "1" (clockchain_redis wait=): the outcome is kept beside the job
--          ("kept", "kept_at", "kept_error") until reveal.lua makes it the
--          job's, as in complete.lua; absent or "" otherwise
--
-- Returns the job's new version (with ARGV[8], the version it has), or an
-- error FENCED when the claim is no longer current; the same outcome sent
-- again (its reply was lost) returns the version it made (see
-- complete.lua).

-- #include lib/failures.lua

if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1]
   or redis.call('HGET', KEYS[1], 'status') ~= 'processing'
then
    if redis.call('HGET', KEYS[1], 'outcome') == ARGV[1] .. ' failed' then
        -- this very outcome, written before: its reply was lost with the
        -- connection, or WAIT did not confirm it (see complete.lua)
        redis.call('HSET', KEYS[1], 'outcome', ARGV[1] .. ' failed')
        if redis.call('HEXISTS', KEYS[1], 'kept') == 1 then
            local t = redis.call('TIME')
            redis.call('ZADD', KEYS[3], tonumber(t[1]) * 1000
                                        + math.floor(tonumber(t[2]) / 1000),
                       ARGV[2])
        end
        return tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
    end
    return redis.error_reply('FENCED')
end

-- never lower than counted: with wait= the claims count the attempts
if tonumber(ARGV[5]) > tonumber(redis.call('HGET', KEYS[1], 'attempts')
                                or '0')
then
    redis.call('HSET', KEYS[1], 'attempts', ARGV[5])
end
redis.call('HINCRBY', KEYS[1], 'finishes', 1)     -- see complete.lua
redis.call('HDEL', KEYS[1], 'token')
redis.call('ZREM', KEYS[2], ARGV[2])
failure_noted(KEYS[1], ARGV[2], ARGV[4], ARGV[3])

if ARGV[8] == '1' then
    -- kept until replicas have it (see complete.lua)
    local t = redis.call('TIME')
    redis.call('HSET', KEYS[1], 'kept', 'failed', 'kept_error', ARGV[4],
               'kept_at', ARGV[3], 'outcome', ARGV[1] .. ' failed')
    redis.call('ZADD', KEYS[3], tonumber(t[1]) * 1000
                                + math.floor(tonumber(t[2]) / 1000), ARGV[2])
    return tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
end

redis.call('HSET', KEYS[1], 'status', 'failed', 'error', ARGV[4],
           'completed_at', ARGV[3], 'outcome', ARGV[1] .. ' failed')
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[7]))

local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
-- the final state first, on "<channel>:final" (see complete.lua)
local event = ARGV[2] .. ' failed ' .. v
local created_at = redis.call('HGET', KEYS[1], 'created_at')
if created_at and #created_at == #ARGV[3] then
    redis.call('PUBLISH', ARGV[6] .. ':final', event .. ' ' .. created_at
                                               .. ' ' .. ARGV[3] .. ' ' .. ARGV[4])
end
redis.call('PUBLISH', ARGV[6], event)

return v

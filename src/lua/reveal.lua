-- Make a kept outcome the job's (clockchain_redis wait=): complete.lua,
-- fail.lua and claim.lua keep an outcome beside its job ("kept",
-- "kept_at", "kept_path" or "kept_error") and the job in the confirming
-- set, and the runner calls this once WAIT said replicas have it.  Until
-- then every reader sees the job as it was, so that no answer shows an
-- outcome a failover could still take back.
--
-- KEYS[1]  the job hash
-- KEYS[2]  the confirming set
-- ARGV[1]  job id
-- ARGV[2]  the outcome's mark ("outcome" in the job hash: "<token>
--          completed", "<token> failed", or claim.lua's)
-- ARGV[3]  how long a completed job is kept, seconds
-- ARGV[4]  how long a failed job is kept, seconds
--
-- Returns { the job's new version, the "<channel>:final" message or "",
-- the change message } for the runner to publish once replicas have this
-- too; the same call again (its reply or its WAIT lost) returns them with
-- the version it made, and writes the mark again for its WAIT to count.
-- An error FENCED: the job holds another outcome, or none.

local f = redis.call('HMGET', KEYS[1], 'outcome', 'kept', 'kept_at',
                     'kept_path', 'kept_error', 'status', 'created_at',
                     'completed_at', 'path', 'error', 'version')

if f[1] ~= ARGV[2] then
    return redis.error_reply('FENCED')
end

local status, at, tail, v

if f[2] == 'completed' or f[2] == 'failed' then
    status, at = f[2], f[3]
    tail = status == 'completed' and f[4] or f[5] or ''

    if status == 'completed' then
        redis.call('HSET', KEYS[1], 'status', status, 'completed_at', at,
                   'path', tail)
        redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
    else
        redis.call('HSET', KEYS[1], 'status', status, 'completed_at', at,
                   'error', tail)
        redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
    end

    redis.call('HDEL', KEYS[1], 'kept', 'kept_at', 'kept_path', 'kept_error')
    v = redis.call('HINCRBY', KEYS[1], 'version', 1)

elseif f[6] == 'completed' or f[6] == 'failed' then
    -- made the job's before: the same answer, and a write for WAIT
    status, at, v = f[6], f[8], tonumber(f[11])
    tail = status == 'completed' and f[9] or f[10] or ''
    redis.call('HSET', KEYS[1], 'outcome', ARGV[2])

else
    return redis.error_reply('FENCED')
end

redis.call('ZREM', KEYS[2], ARGV[1])

local change = ARGV[1] .. ' ' .. status .. ' ' .. v
local final = ''
if f[7] and at and #f[7] == #at then
    final = change .. ' ' .. f[7] .. ' ' .. at .. ' ' .. tail
end

return { v, final, change }

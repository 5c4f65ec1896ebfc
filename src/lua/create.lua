-- Create one or more jobs, all or none, optionally under an idempotency key.
--
-- KEYS[1]      the run queue (sorted set: job id scored by run-at ms)
-- KEYS[2]      the idempotency key's hash, when ARGV[4] is not ""
-- KEYS[2|3..]  one job hash per job
-- ARGV[1]      not read: the jobs are due now on Redis's clock (TIME), the
--              one the runners claim on (see claim.lua); a node whose clock
--              is ahead would hold its jobs back, one behind would put them
--              first.  (It was the run-at time; callers still send it.)
-- ARGV[2]      key schema version
-- ARGV[3]      the most jobs the queue may hold (0: no limit)
-- ARGV[4]      with an idempotency key, what makes two requests the same
--              (endpoint, creator and body; stored as its SHA1), else ""
-- ARGV[5]      how long the idempotency key holds, seconds
-- ARGV[6]      how many replicas must confirm the jobs (clockchain_redis
--              wait=), 0 for none
-- ARGV[7]      the writer's token record ("<prefix>agent:tok:<sha256>"), or
--              "" when no writer token is in play
-- ARGV[8..]    per job: id, created_at, query, preset, visibility, created_by
--
-- Returns the number of jobs created; or, when the idempotency key was
-- used before with the same fingerprint, { "REPLAY", {id, status, path,
-- error, created_at, completed_at}, ... } for the jobs it created then.
-- Errors: REPLICAS <n> (fewer replicas are online than must confirm the
-- jobs: WAIT could only time out; checked before a replay too, which then
-- writes the key's TTL again so that the caller's WAIT has a write to
-- count), CONFLICT (the key was used with another request), FULL (the
-- queue has no room for them all), EXISTS <key> (a drawn id is taken: the
-- caller draws new ids), REVOKED (the writer's token was revoked after
-- the request's check). Nothing is written on an error.

if ARGV[7] ~= '' and redis.call('HGET', ARGV[7], 'is_active') ~= '1' then
    return redis.error_reply('REVOKED')
end

local first = 2
local idem = nil
local fingerprint = nil

-- before a replay too: the 503 of a WAIT that timed out says to retry with
-- the same key, and that retry must be confirmed like the first POST
local replicas = tonumber(ARGV[6])

if replicas > 0 then
    local online = 0
    local info = redis.call('INFO', 'replication')

    for _ in string.gmatch(info, 'slave%d+:[^\r\n]*state=online') do
        online = online + 1
    end

    if online < replicas then
        return redis.error_reply('REPLICAS ' .. online)
    end
end

if ARGV[4] ~= '' then
    idem = KEYS[2]
    first = 3
    fingerprint = redis.sha1hex(ARGV[4])

    local used = redis.call('HMGET', idem, 'fingerprint', 'jobs')

    if used[1] then
        if used[1] ~= fingerprint then
            return redis.error_reply('CONFLICT')
        end

        local out = { 'REPLAY' }
        for id in string.gmatch(used[2], '[^,]+') do
            local f = redis.call('HMGET', KEYS[1]:gsub('queue$', 'job:') .. id,
                                 'status', 'path', 'error', 'created_at',
                                 'completed_at')
            if not f[1] then
                -- its jobs expired: the key is as good as new
                out = nil
                break
            end
            out[#out + 1] = { id, f[1], f[2] or '', f[3] or '', f[4] or '',
                              f[5] or '' }
        end
        if out then
            if replicas > 0 then
                -- a write on this connection, which its WAIT can count:
                -- the key's TTL as it is
                local ttl = redis.call('PTTL', idem)
                if ttl > 0 then
                    redis.call('PEXPIRE', idem, ttl)
                end
            end
            return out
        end
        redis.call('DEL', idem)
    end
end

local count = #KEYS - first + 1
local max = tonumber(ARGV[3])

if max > 0 and redis.call('ZCARD', KEYS[1]) + count > max then
    return redis.error_reply('FULL')
end

for i = first, #KEYS do
    if redis.call('EXISTS', KEYS[i]) == 1 then
        return redis.error_reply('EXISTS ' .. KEYS[i])
    end
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = 8
local ids = {}

for i = first, #KEYS do
    redis.call('HSET', KEYS[i],
               'id', ARGV[n],
               'status', 'pending',
               'created_at', ARGV[n + 1],
               'query', ARGV[n + 2],
               'preset', ARGV[n + 3],
               'visibility', ARGV[n + 4],
               'created_by', ARGV[n + 5],
               'schema', ARGV[2],
               'version', 1)
    redis.call('ZADD', KEYS[1], now, ARGV[n])
    ids[#ids + 1] = ARGV[n]
    n = n + 6
end

if idem then
    redis.call('HSET', idem, 'fingerprint', fingerprint,
               'jobs', table.concat(ids, ','))
    redis.call('EXPIRE', idem, tonumber(ARGV[5]))
end

return count

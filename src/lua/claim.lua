-- Claim runnable jobs for one runner, and put back the jobs whose lease
-- expired (their runner died or hung) first.
--
-- KEYS[1]  the run queue (sorted set: job id by run-at ms)
-- KEYS[2]  the processing set (sorted set: job id by lease expiry ms)
-- KEYS[3]  the confirming set (sorted set: job id by the time its outcome
--          was kept, ms; see complete.lua), with ARGV[8]
-- ARGV[1]  lease, ms
-- ARGV[2]  job key prefix ("<prefix>{cc}:v1:job:")
-- ARGV[3]  the runner's name (host:pid), for operators
-- ARGV[4]  how many expired leases a job survives before it fails
-- ARGV[5]  the time of day as ISO 8601, for jobs failed here
-- ARGV[6]  the events channel: every change is published there as
--          "<id> <status> <version>"
-- ARGV[7]  how long a failed job is kept, seconds
-- ARGV[8]  "" as without clockchain_redis wait=; with it,
--          clockchain_flash_attempts: then each claim counts its attempt in
--          "attempts" before the Flash call it starts (an outcome lost with
--          the primary cannot hide a call), a job whose attempts reached it
--          is failed here and not handed out; the failures decided here
--          are kept as a runner's are (complete.lua), and returned with
--          the outcomes kept longer than a lease ago (their runner died
--          before it could reveal them), for the runner to reveal
--          (reveal.lua) once WAIT said replicas have them
-- ARGV[9..] one fencing token for each job it may claim: at most #ARGV - 8
--          jobs are claimed.  Tokens are 128 random bits drawn by the
--          runner and compared for equality only: a counter in Redis would
--          issue the same number again after Redis lost its last writes (an
--          AOF tail, an asynchronous failover), and a stale runner holding
--          it would pass the fence.
--
-- Leases and run-at times are read on Redis's clock (TIME), never on the
-- runner's: an nginx whose clock is ahead would otherwise see the healthy
-- leases of other nodes as expired and take their jobs.
--
-- Returns { { {id, token, query, preset, visibility, created_by,
--              created_at, attempts made before, version}, ... },
--           expired leases put back, jobs failed here }, and with ARGV[8]
-- a fourth element: the outcomes to reveal, each { id, its mark }.
-- Every key lives under the {cc} hash tag, so the script stays in one slot.

-- #include lib/failures.lua

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local FIRST_TOKEN = 9
local durable = ARGV[8] ~= ''
local max_attempts = tonumber(ARGV[8])
local reveal = {}

local function changed(key, id, status, final)
    local v = redis.call('HINCRBY', key, 'version', 1)
    if final then
        redis.call('PUBLISH', ARGV[6] .. ':final',
                   id .. ' ' .. status .. ' ' .. v .. final)
    end
    redis.call('PUBLISH', ARGV[6], id .. ' ' .. status .. ' ' .. v)
    return v
end

-- a failure decided here: final, kept ARGV[7] seconds

local function fail(key, id, err)
    redis.call('HINCRBY', key, 'finishes', 1)  -- see complete.lua
    redis.call('HDEL', key, 'token')
    failure_noted(key, id, err, ARGV[5])

    if durable then
        -- kept, as a runner's outcome is, until replicas have it
        local mark = 'claim ' .. now .. ' failed'
        redis.call('HSET', key, 'kept', 'failed', 'kept_error', err,
                   'kept_at', ARGV[5], 'outcome', mark)
        redis.call('ZADD', KEYS[3], now, id)
        reveal[#reveal + 1] = { id, mark }
        return
    end

    redis.call('HSET', key, 'status', 'failed', 'error', err,
               'completed_at', ARGV[5])
    redis.call('EXPIRE', key, tonumber(ARGV[7]))

    -- the final state on "<channel>:final" too, as in fail.lua
    local created_at = redis.call('HGET', key, 'created_at')
    local final
    if created_at and #created_at == #ARGV[5] then
        final = ' ' .. created_at .. ' ' .. ARGV[5] .. ' ' .. err
    end
    changed(key, id, 'failed', final)
end

-- every attempt was counted by its claim: the last one made a Flash call
-- whose outcome Redis lost (a failover), and no call is made past the limit

local function lost(attempts)
    return 'Job failed after ' .. attempts .. ' attempt(s); the last '
           .. "one's outcome was lost"
end

local requeued, stalled_out = 0, 0

local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now,
                           'LIMIT', 0, 100)

for _, id in ipairs(expired) do
    local key = ARGV[2] .. id
    redis.call('ZREM', KEYS[2], id)

    if redis.call('HGET', key, 'status') == 'processing' then
        local stalls = redis.call('HINCRBY', key, 'stalls', 1)
        local attempts = tonumber(redis.call('HGET', key, 'attempts') or '0')

        if stalls > tonumber(ARGV[4]) then
            fail(key, id, 'Job stalled: its runner stopped ' .. stalls
                          .. ' times while processing it')
            stalled_out = stalled_out + 1
        elseif durable and attempts >= max_attempts then
            fail(key, id, lost(attempts))
            stalled_out = stalled_out + 1
        else
            redis.call('HSET', key, 'status', 'pending')
            redis.call('HDEL', key, 'token')
            redis.call('ZADD', KEYS[1], now, id)
            changed(key, id, 'pending')
            requeued = requeued + 1
        end
    end
end

local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now,
                       'LIMIT', 0, #ARGV - FIRST_TOKEN + 1)
local out = {}

for _, id in ipairs(ids) do
    local key = ARGV[2] .. id
    redis.call('ZREM', KEYS[1], id)

    local f = redis.call('HMGET', key, 'status', 'query', 'preset',
                         'visibility', 'created_by', 'created_at', 'attempts')

    if f[1] == 'pending' and durable
       and tonumber(f[7] or '0') >= max_attempts
    then
        fail(key, id, lost(f[7]))
        stalled_out = stalled_out + 1
    elseif f[1] == 'pending' then
        local token = ARGV[FIRST_TOKEN + #out]
        redis.call('HSET', key, 'status', 'processing', 'token', token,
                   'runner', ARGV[3])
        redis.call('HINCRBY', key, 'claims', 1)
        if durable then
            -- the attempt this claim starts, counted before its call
            redis.call('HINCRBY', key, 'attempts', 1)
        end
        redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), id)
        local v = changed(key, id, 'processing')
        out[#out + 1] = { id, token, f[2], f[3], f[4], f[5], f[6],
                          f[7] or '0', tostring(v) }
    end
end

if durable then
    -- outcomes kept a lease ago and not revealed: their runner is gone.
    -- Put off by a lease, so that one runner reveals each
    local kept = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf',
                            now - tonumber(ARGV[1]), 'LIMIT', 0, 32)
    for _, id in ipairs(kept) do
        local f = redis.call('HMGET', ARGV[2] .. id, 'kept', 'outcome')
        if f[1] and f[2] then
            redis.call('ZADD', KEYS[3], now, id)
            reveal[#reveal + 1] = { id, f[2] }
        else
            redis.call('ZREM', KEYS[3], id)
        end
    end

    return { out, requeued, stalled_out, reveal }
end

return { out, requeued, stalled_out }

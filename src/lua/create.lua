-- Create the jobs of one or more requests, each request all or none and
-- optionally under an idempotency key.  A worker sends the creates that
-- became ready while its previous call was in flight as one call
-- (ngx_http_clockchain_commit.c); each request is decided as if it had been
-- a call of its own, in the order given, and gets its own result.
--
-- KEYS[1]      the run queue (sorted set: job id scored by run-at ms)
-- KEYS[2..]    per request, in order: its idempotency key's hash when its
--              fingerprint material is not "", then one job hash per job
-- ARGV[1]      key schema version
-- ARGV[2]      the most jobs the queue may hold (0: no limit)
-- ARGV[3]      how long an idempotency key holds, seconds
-- ARGV[4]      how many replicas must confirm the jobs (clockchain_redis
--              wait=), 0 for none
-- ARGV[5]      the number of requests
-- ARGV[6..]    per request: the number of its jobs; with an idempotency
--              key, what makes two requests the same (endpoint, creator and
--              body; stored as its SHA1), else ""; the writer's token record
--              ("<prefix>agent:tok:<sha256>") or "" when no writer token is
--              in play; the creator (created_by); then per job: id,
--              created_at, query, preset, visibility
--
-- The jobs are due now on Redis's clock (TIME), the one the runners claim
-- on (see claim.lua).
--
-- Returns one result per request, in order: the number of jobs created;
-- or, when its idempotency key was used before with the same fingerprint,
-- { "REPLAY", {id, status, path, error, created_at, completed_at}, ... }
-- for the jobs it created then; or an error: REVOKED (the writer's token
-- was revoked after the request's check), REPLICAS <n> (fewer replicas are
-- online than must confirm the jobs: WAIT could only time out; checked
-- before a replay too, which then writes the key's TTL again so that the
-- caller's WAIT has a write to count), CONFLICT (the key was used with
-- another request), FULL (the queue has no room for them all), EXISTS <key>
-- (a drawn id is taken: the caller draws new ids).  A request that gets an
-- error wrote nothing, and changed nothing for the requests after it.

local schema = ARGV[1]
local max = tonumber(ARGV[2])
local ttl = ARGV[3]
local replicas = tonumber(ARGV[4])
local requests = tonumber(ARGV[5])
local jobkey = string.gsub(KEYS[1], 'queue$', 'job:')

-- before a replay too: the 503 of a WAIT that timed out says to retry with
-- the same key, and that retry must be confirmed like the first POST
local online = nil

if replicas > 0 then
    online = 0
    local info = redis.call('INFO', 'replication')

    for _ in string.gmatch(info, 'slave%d+:[^\r\n]*state=online') do
        online = online + 1
    end
end

local queued = nil
local now = nil

-- the ids of the jobs created, queued together at the end: one ZADD for
-- the call rather than one a job (nothing reads the queue meanwhile)
local due = {}

-- every job key of the call, looked up at once: a taken id is all but
-- impossible (122 random bits), and only then is each request's looked up;
-- an id twice in one call is taken too
local taken = false
local seen = {}

local function lookup(keys)
    for i = 1, #keys, 1000 do
        if redis.call('EXISTS', unpack(keys, i, math.min(i + 999, #keys)))
           > 0
        then
            return true
        end
    end
    return false
end

-- a request's jobs are KEYS[first .. first + n - 1], and its job arguments
-- start at ARGV[arg]
local function create(n, idem, material, token, user, first, arg)
    if token ~= '' and redis.call('HGET', token, 'is_active') ~= '1' then
        return redis.error_reply('REVOKED')
    end

    if online and online < replicas then
        return redis.error_reply('REPLICAS ' .. online)
    end

    local fingerprint = nil

    if idem then
        fingerprint = redis.sha1hex(material)

        local used = redis.call('HMGET', idem, 'fingerprint', 'jobs')

        if used[1] then
            if used[1] ~= fingerprint then
                return redis.error_reply('CONFLICT')
            end

            local out = { 'REPLAY' }
            for id in string.gmatch(used[2], '[^,]+') do
                local f = redis.call('HMGET', jobkey .. id, 'status', 'path',
                                     'error', 'created_at', 'completed_at')
                if not f[1] then
                    -- its jobs expired: the key is as good as new
                    out = nil
                    break
                end
                out[#out + 1] = { id, f[1], f[2] or '', f[3] or '',
                                  f[4] or '', f[5] or '' }
            end
            if out then
                if replicas > 0 then
                    -- a write on this connection, which its WAIT can
                    -- count: the key's TTL as it is
                    local pttl = redis.call('PTTL', idem)
                    if pttl > 0 then
                        redis.call('PEXPIRE', idem, pttl)
                    end
                end
                return out
            end
            redis.call('DEL', idem)
        end
    end

    if max > 0 then
        if not queued then
            queued = redis.call('ZCARD', KEYS[1])
        end

        if queued + n > max then
            return redis.error_reply('FULL')
        end
    end

    for i = first, first + n - 1 do
        if seen[KEYS[i]] or (taken and redis.call('EXISTS', KEYS[i]) == 1)
        then
            return redis.error_reply('EXISTS ' .. KEYS[i])
        end
    end

    if not now then
        local t = redis.call('TIME')
        now = t[1] .. string.sub(string.format('%06d', t[2]), 1, 3)
    end

    -- the key's record of its jobs: only with a key
    local ids = idem and {} or nil

    for i = first, first + n - 1 do
        redis.call('HSET', KEYS[i],
                   'id', ARGV[arg],
                   'status', 'pending',
                   'created_at', ARGV[arg + 1],
                   'query', ARGV[arg + 2],
                   'preset', ARGV[arg + 3],
                   'visibility', ARGV[arg + 4],
                   'created_by', user,
                   'schema', schema,
                   'version', '1')
        seen[KEYS[i]] = true
        due[#due + 1] = now
        due[#due + 1] = ARGV[arg]
        if ids then
            ids[#ids + 1] = ARGV[arg]
        end
        arg = arg + 5
    end

    if idem then
        redis.call('HSET', idem, 'fingerprint', fingerprint,
                   'jobs', table.concat(ids, ','))
        redis.call('EXPIRE', idem, ttl)
    end

    if queued then
        queued = queued + n
    end

    return n
end

-- every request's job keys first, for the one lookup: a walk over the
-- arguments, and the same walk again to create
local jobkeys = {}
local k = 2
local a = 6

for r = 1, requests do
    local n = tonumber(ARGV[a])

    if ARGV[a + 1] ~= '' then
        k = k + 1
    end

    for i = k, k + n - 1 do
        jobkeys[#jobkeys + 1] = KEYS[i]
    end

    k = k + n
    a = a + 4 + 5 * n
end

taken = lookup(jobkeys)

local results = {}
k = 2
a = 6

for r = 1, requests do
    local n = tonumber(ARGV[a])
    local idem = nil

    if ARGV[a + 1] ~= '' then
        idem = KEYS[k]
        k = k + 1
    end

    results[r] = create(n, idem, ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], k,
                        a + 4)

    k = k + n
    a = a + 4 + 5 * n
end

for i = 1, #due, 2000 do
    redis.call('ZADD', KEYS[1], unpack(due, i, math.min(i + 1999, #due)))
end

return results

-- Renew the leases of jobs a runner is still working on.
--
-- KEYS[1]  the processing set
-- ARGV[1]  the lease, ms: it runs from now on Redis's clock (TIME), not the
--          runner's (see claim.lua)
-- ARGV[2]  job key prefix
-- ARGV[3..] pairs of job id and fencing token
--
-- A job whose token changed (its lease expired and another runner claimed
-- it) is not renewed. Returns the ids that were renewed.

local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
               + tonumber(ARGV[1])
local out = {}

for i = 3, #ARGV, 2 do
    local id = ARGV[i]

    if redis.call('HGET', ARGV[2] .. id, 'token') == ARGV[i + 1] then
        redis.call('ZADD', KEYS[1], expiry, id)
        out[#out + 1] = id
    end
end

return out

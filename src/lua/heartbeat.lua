-- Renew the leases of jobs a runner is still working on.
--
-- KEYS[1]  the processing set
-- ARGV[1]  new lease expiry, ms since the epoch
-- ARGV[2]  job key prefix
-- ARGV[3..] pairs of job id and fencing token
--
-- A job whose token changed (its lease expired and another runner claimed
-- it) is not renewed. Returns the ids that were renewed.

local out = {}

for i = 3, #ARGV, 2 do
    local id = ARGV[i]

    if redis.call('HGET', ARGV[2] .. id, 'token') == ARGV[i + 1] then
        redis.call('ZADD', KEYS[1], ARGV[1], id)
        out[#out + 1] = id
    end
end

return out

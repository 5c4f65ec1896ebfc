-- The status page's last failures (clockchain_status, status.c): newest
-- first, at most 50 (NGX_HTTP_CLOCKCHAIN_FAILURES, status.h: t/22 holds the
-- two together), in "<prefix>{cc}:v1:failures", beside the job keys
-- (the same hash tag).  fail.lua (a runner's failure) and claim.lua (a job
-- failed for stalling, or for an outcome lost past its last attempt)
-- include it, so that every failure shows, with or without wait=.

local function failure_noted(job_key, id, err, at)
    local tail = 'job:' .. id
    if job_key:sub(-#tail) == tail then
        local failures = job_key:sub(1, #job_key - #tail) .. 'failures'
        redis.call('LPUSH', failures, cjson.encode({ id = id, error = err,
                                                     at = at }))
        redis.call('LTRIM', failures, 0, 49)
    end
end

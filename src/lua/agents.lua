-- The writers' agents (the original's agent_tokens table): register, list,
-- revoke, and the tokens of clockchain_admin_token_file and
-- clockchain_writer_tokens_file written once.
--
-- ARGV[1]  graph key prefix ("<prefix>{cc}:v1:")
-- ARGV[2]  what to do: "register", "list", "revoke", "bootstrap"
-- ARGV[3]  now, ISO 8601
-- register:  ARGV[4] token hash, ARGV[5] agent name, ARGV[6] permissions
-- list:      ARGV[4] the most agents returned
-- revoke:    ARGV[4] agent id, ARGV[5] the agents channel
--            ("<events channel>:agents")
-- bootstrap: ARGV[4..] token hash, agent name, permissions, for each
--
-- Keys (docs/architecture.md, "Redis keys"): agent:tok:<sha256 hex of the
-- token> a hash {id, agent_name, permissions, is_active, created_at} (the
-- token itself is never stored); agent:id:<id> the token's hash; agents a
-- sorted set of the ids; agents:next the last id given (INCR); agents:active
-- the count of active agents by name (a name is taken while one is active).
--
-- register: the new id, or "EXISTS" (an active agent has the name) or
-- "TAKEN" (the token's hash is there: 2^-256).  list: {total, {id, name,
-- permissions, is_active, created_at}...} newest first.  revoke: the
-- agent's name, or false (no such id); publishes the token's hash on the
-- agents channel even when it was revoked already, so that a revocation
-- whose message was lost is heard again.  bootstrap: the number of agents
-- created; a hash already there (active or revoked) is left as it is, as
-- the original's ON CONFLICT DO NOTHING.

local p = ARGV[1]
local op = ARGV[2]
local now = ARGV[3]

local function create(hash, name, perms)
    local tok = p .. 'agent:tok:' .. hash
    if redis.call('EXISTS', tok) == 1 then
        return nil
    end
    local id = redis.call('INCR', p .. 'agents:next')
    redis.call('HSET', tok, 'id', id, 'agent_name', name,
               'permissions', perms, 'is_active', '1', 'created_at', now)
    redis.call('SET', p .. 'agent:id:' .. id, hash)
    redis.call('ZADD', p .. 'agents', id, id)
    redis.call('HINCRBY', p .. 'agents:active', name, 1)
    return id
end

if op == 'register' then
    if tonumber(redis.call('HGET', p .. 'agents:active', ARGV[5]) or '0') > 0
    then
        return 'EXISTS'
    end
    local id = create(ARGV[4], ARGV[5], ARGV[6])
    if id == nil then
        return 'TAKEN'
    end
    return id
end

if op == 'bootstrap' then
    local n = 0
    for i = 4, #ARGV, 3 do
        if create(ARGV[i], ARGV[i + 1], ARGV[i + 2]) then
            n = n + 1
        end
    end
    return n
end

if op == 'list' then
    local ids = redis.call('ZREVRANGE', p .. 'agents', 0,
                           tonumber(ARGV[4]) - 1)
    local out = { redis.call('ZCARD', p .. 'agents') }
    for _, id in ipairs(ids) do
        local hash = redis.call('GET', p .. 'agent:id:' .. id)
        if hash then
            local f = redis.call('HMGET', p .. 'agent:tok:' .. hash, 'id',
                                 'agent_name', 'permissions', 'is_active',
                                 'created_at')
            if f[1] then
                out[#out + 1] = f
            end
        end
    end
    return out
end

if op == 'revoke' then
    local hash = redis.call('GET', p .. 'agent:id:' .. ARGV[4])
    if not hash then
        return false
    end
    local tok = p .. 'agent:tok:' .. hash
    local f = redis.call('HMGET', tok, 'agent_name', 'is_active')
    if not f[1] then
        return false
    end
    if f[2] == '1' then
        redis.call('HSET', tok, 'is_active', '0')
        if redis.call('HINCRBY', p .. 'agents:active', f[1], -1) <= 0 then
            redis.call('HDEL', p .. 'agents:active', f[1])
        end
    end
    redis.call('PUBLISH', ARGV[5], hash)
    return f[1]
end

return redis.error_reply('ERR agents.lua: unknown operation')

-- One edge a writer names (a seed, an ingest, a restore, a proposal), as
-- the original's add_edge: {source, target, type, weight, theme,
-- description, schema_version, created_by}, stored in edges:<source> under
-- "<type>|<target>".  An edge already there is kept as it is (the
-- original's ON CONFLICT DO NOTHING).  Needs p (the graph key prefix) and
-- stats (its counters hash) in scope.  Returns true when the edge is new.

local function edge_put(e)
    if redis.call('HSETNX', p .. 'edges:' .. e.source,
                  e.type .. '|' .. e.target, cjson.encode(e)) == 0
    then
        return false
    end
    redis.call('HINCRBY', stats, 'edges', 1)
    redis.call('HINCRBY', stats, 'edges:' .. e.type, 1)
    return true
end

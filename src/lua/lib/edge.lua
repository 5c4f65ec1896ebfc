-- One edge a writer names (a seed, an ingest, a restore, a proposal), as
-- the original's add_edge: {source, target, type, weight, theme,
-- description, schema_version, created_by}, stored in edges:<source> under
-- "<type>|<target>".  An edge already there is kept as it is (the
-- original's ON CONFLICT DO NOTHING).  Needs p (the graph key prefix) and
-- stats (its counters hash) in scope.  Returns true when the edge is new.
--
-- The target must see it too (the original's neighbours are the edges
-- out of a node and the edges into it): a new edge is also named in
-- edges_in:<target>, "<type>|<source>" -> "", which the readers
-- (neighbors.lua, moment.lua, walk.lua) merge with the edges the other
-- end holds back.  Auto-edges (complete.lua) are written both ways and
-- need no entry there; a reader lists an incoming edge once either way.
-- Both ends of a new edge are in edge_touched: their answers changed, and
-- the caller publishes them on the moments channel (or "*"), as it bumps
-- idx:version.

local edge_touched = {}

local function edge_put(e)
    if redis.call('HSETNX', p .. 'edges:' .. e.source,
                  e.type .. '|' .. e.target, cjson.encode(e)) == 0
    then
        return false
    end
    redis.call('HSET', p .. 'edges_in:' .. e.target,
               e.type .. '|' .. e.source, '')
    edge_touched[e.source] = true
    edge_touched[e.target] = true
    redis.call('HINCRBY', stats, 'edges', 1)
    redis.call('HINCRBY', stats, 'edges:' .. e.type, 1)
    return true
end

-- The original service's graph (its Postgres: tables nodes and edges, as
-- app/core/db.py makes them) as a file ./build.sh import reads: a TDF
-- record a line, the node's columns in the payload, its outgoing edges in
-- payload.edges, its tdf_hash and graph_state_hash in
-- payload.clockchain_restore (docs/migrating.md).  Read-only.
--
--   psql -qAt -v ON_ERROR_STOP=1 -f original-export.sql "$DATABASE_URL" \
--        > graph.jsonl
SET TIME ZONE 'UTC';
SELECT json_build_object(
    'id', n.id,
    'version', '1.0.0',
    'source', 'clockchain',
    'timestamp', to_char(n.created_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'provenance', json_build_object('generator', 'timepoint-clockchain'),
    'payload',
        (to_jsonb(n) - 'id' - 'created_at' - 'published_at' - 'tdf_hash'
                     - 'graph_state_hash')
        || jsonb_build_object(
            'published_at',
                to_char(n.published_at, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'edges', COALESCE((
                SELECT jsonb_agg(jsonb_build_object(
                           'target', e.target, 'type', e.type,
                           'weight', e.weight, 'theme', e.theme,
                           'description', e.description,
                           'created_by', e.created_by,
                           'schema_version', e.schema_version)
                       ORDER BY e.type, e.target)
                FROM edges e WHERE e.source = n.id), '[]'::jsonb),
            'clockchain_restore', jsonb_build_object(
                'tdf_hash', n.tdf_hash,
                'graph_state_hash', n.graph_state_hash)))
FROM nodes n
ORDER BY n.id;

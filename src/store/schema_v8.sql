-- tokentally store schema, version 8: indexes that a commit writes in a few
-- places, not all over.
--
-- Under steady ingest each commit rewrote ~230 pages into the WAL; most of
-- them were index pages touched once by a record that happened to sort
-- there. These changes keep what each index answers and make new records
-- land together:
--
-- * metric_points and spans: one unique index on (time, dedup) replaces the
--   unique dedup index plus the time index (the time one starts with): a
--   point or a span is written into one index fewer, and the dedup key still
--   refuses a retried record (equal records have equal times).
-- * sessions: describe_data's per-developer pass reads an index of
--   (developer, agent, whether the session sent metrics only) instead of one
--   ending in the session's running totals, whose entries moved to a new
--   place at every commit that added to them.
-- * metric_series.key starts with the series' context id (big-endian), so a
--   new session's series land at the end of the key index instead of at
--   random places of it (the rest of the key is the series' hash, which
--   includes the context's identity, so keys stay unique).
CREATE UNIQUE INDEX IF NOT EXISTS metric_points_time_dedup ON metric_points(time_ns, dedup);
DROP INDEX IF EXISTS metric_points_dedup;
DROP INDEX IF EXISTS metric_points_time;
CREATE UNIQUE INDEX IF NOT EXISTS spans_start_dedup ON spans(start_ns, dedup);
DROP INDEX IF EXISTS spans_dedup;
DROP INDEX IF EXISTS spans_start;

DROP INDEX IF EXISTS sessions_developer_summary;
CREATE INDEX IF NOT EXISTS sessions_developer_kinds
    ON sessions(developer, agent, (api_requests = 0 AND metric_cost_usd > 0));

UPDATE metric_series SET key = unhex(printf('%016X', context_id) || hex(key))
    WHERE length(key) = 16;

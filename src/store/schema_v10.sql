-- tokentally store schema, version 10: hour histograms in the day
-- histograms' text form.
--
-- * tool_latency_hourly / api_latency_hourly: one row per hour, developer
--   and tool or model holding that hour's exact latency histogram as
--   `ms:count:failures` entries ascending by ms (store::hist), like
--   tool_latency_daily / api_latency_daily. They replace the tables of one
--   row per distinct millisecond (nearly one per call on real data), so a
--   day of whole hours is a few thousand rows to read, not one per call.
CREATE TABLE IF NOT EXISTS tool_latency_hourly (
    hour INTEGER NOT NULL,
    developer TEXT NOT NULL,
    tool_name TEXT NOT NULL,
    hist TEXT NOT NULL,
    PRIMARY KEY (hour, developer, tool_name)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS api_latency_hourly (
    hour INTEGER NOT NULL,
    developer TEXT NOT NULL,
    model TEXT NOT NULL,
    hist TEXT NOT NULL,
    PRIMARY KEY (hour, developer, model)
) WITHOUT ROWID;

INSERT INTO tool_latency_hourly
SELECT hour, developer, tool_name,
       group_concat(duration_ms || ':' || calls || ':' || failures, ',' ORDER BY duration_ms)
FROM tool_latency_hist GROUP BY hour, developer, tool_name;

INSERT INTO api_latency_hourly
SELECT hour, developer, model, group_concat(duration_ms || ':' || requests || ':0', ',' ORDER BY duration_ms)
FROM api_latency_hist GROUP BY hour, developer, model;

DROP TABLE tool_latency_hist;
DROP TABLE api_latency_hist;

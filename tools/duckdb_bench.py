"""Times the benchmark's questions in DuckDB over the same rows tokentally
ingested, and prints each next to tokentally's median from the same run.

usage: duckdb_bench.py EVENTS_CSV TOKENTALLY_OUTPUT
"""
import re
import statistics
import sys
import time

import duckdb

csv_path, tokentally_out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
t = time.perf_counter()
con.execute(f"CREATE TABLE events AS SELECT * FROM read_csv_auto('{csv_path}')")
rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
print(f"duckdb: loaded {rows} rows in {time.perf_counter() - t:.1f} s (not timed below)")

NOW_NS = time.time_ns()
DAY = 86_400 * 10**9
QUESTIONS = {
    'cost_by_developer {"since":"7d"}': f"""
        SELECT developer, sum(cost_usd), sum(input_tokens), sum(output_tokens),
               sum(cache_read_tokens), sum(cache_creation_tokens), count(*)
        FROM events WHERE event_name = 'api_request' AND time_ns >= {NOW_NS - 7 * DAY}
        GROUP BY developer ORDER BY 2 DESC""",
    'cost_by_developer {"since":"30d"}': f"""
        SELECT developer, sum(cost_usd), sum(input_tokens), sum(output_tokens),
               sum(cache_read_tokens), sum(cache_creation_tokens), count(*)
        FROM events WHERE event_name = 'api_request' AND time_ns >= {NOW_NS - 30 * DAY}
        GROUP BY developer ORDER BY 2 DESC""",
    'model_breakdown {"since":"7d"}': f"""
        SELECT model, count(*), sum(cost_usd), sum(input_tokens), sum(output_tokens),
               avg(duration_ms), quantile_disc(duration_ms, 0.95)
        FROM events WHERE event_name = 'api_request' AND time_ns >= {NOW_NS - 7 * DAY}
        GROUP BY model""",
    'tool_latency {"since":"7d"}': f"""
        SELECT tool_name, count(*), quantile_disc(duration_ms, [0.5, 0.9, 0.95, 0.99]), max(duration_ms)
        FROM events WHERE event_name = 'tool_result' AND time_ns >= {NOW_NS - 7 * DAY}
        GROUP BY tool_name""",
}

ours = {}
for line in open(tokentally_out):
    m = re.match(r"query (\w+) (\{.*?\}): median ([\d.]+) ms", line)
    if m:
        ours[f"{m.group(1)} {m.group(2)}"] = float(m.group(3))

print(f"{'question':<36} {'tokentally ms':>14} {'duckdb ms':>10} {'ratio':>7}")
for name, sql in QUESTIONS.items():
    times = []
    for _ in range(5):
        t = time.perf_counter()
        con.execute(sql).fetchall()
        times.append((time.perf_counter() - t) * 1e3)
    duck = statistics.median(times)
    mine = ours.get(name)
    ratio = f"{mine / duck:.2f}" if mine is not None else "n/a"
    mine_s = f"{mine:.1f}" if mine is not None else "n/a"
    print(f"{name:<36} {mine_s:>14} {duck:>10.1f} {ratio:>7}")
print("ratio = tokentally / duckdb (below 1: tokentally faster)")

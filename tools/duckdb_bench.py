"""Asks the benchmark's questions in DuckDB over the same generated rows
tokentally ingested, and prints each next to tokentally's median from the
same run.

usage: duckdb_bench.py CSV_DIR TOKENTALLY_OUTPUT

CSV_DIR holds events.csv, points.csv and probe_session as written by
`examples/bench.rs --csv`. Each question computes what the tool answers:
cost and tokens count api_request events where a session has them and the
cost/token metrics of sessions without (a point without a session only in
hours where its developer sent no request, nor the hour before), as
tokentally does; percentiles are exact (quantile_disc).
"""
import re
import statistics
import sys
import time

import duckdb

csv_dir, tokentally_out = sys.argv[1], sys.argv[2]
threads = 2
con = duckdb.connect(config={"threads": threads})
t = time.perf_counter()
con.execute(f"""
    CREATE TABLE events AS SELECT * REPLACE (
        NULLIF(session_id, '') AS session_id, NULLIF(model, '') AS model,
        NULLIF(tool_name, '') AS tool_name, NULLIF(decision, '') AS decision,
        NULLIF(file_path, '') AS file_path)
    FROM read_csv('{csv_dir}/events.csv', header = true, all_varchar = false,
        types = {{'session_id': 'VARCHAR', 'model': 'VARCHAR', 'tool_name': 'VARCHAR',
                 'decision': 'VARCHAR', 'file_path': 'VARCHAR'}})""")
con.execute(f"""
    CREATE TABLE points AS SELECT * REPLACE (
        NULLIF(session_id, '') AS session_id, NULLIF("type", '') AS "type")
    FROM read_csv('{csv_dir}/points.csv', header = true,
        types = {{'session_id': 'VARCHAR', 'type': 'VARCHAR'}})""")
rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
points = con.execute("SELECT count(*) FROM points").fetchone()[0]
probe = open(f"{csv_dir}/probe_session").read().strip()
print(f"duckdb {duckdb.__version__}, {threads} threads: loaded {rows} events and {points} points "
      f"in {time.perf_counter() - t:.1f} s (not timed below)")

NOW_NS = time.time_ns()
H = 3600 * 10**9
DAY = 24 * H
RANGES = {"1d": NOW_NS - DAY, "7d": NOW_NS - 7 * DAY, "30d": NOW_NS - 30 * DAY, "all": 0}


def usage(s, u):
    """The counted usage rows of [s, u): events, then metrics where they count."""
    return f"""
      WITH ev AS (SELECT * FROM events WHERE time_ns >= {s} AND time_ns < {u}),
      req_sessions AS (SELECT DISTINCT session_id FROM events
                       WHERE event_name = 'api_request' AND session_id IS NOT NULL),
      busy AS (SELECT DISTINCT developer, time_ns // {H} AS hour FROM events
               WHERE event_name = 'api_request'),
      pts AS (SELECT p.* FROM points p
              LEFT JOIN req_sessions r ON r.session_id = p.session_id
              LEFT JOIN busy b1 ON b1.developer = p.developer AND b1.hour = p.time_ns // {H}
              LEFT JOIN busy b2 ON b2.developer = p.developer AND b2.hour = p.time_ns // {H} - 1
              WHERE p.time_ns >= {s} AND p.time_ns < {u}
                AND ((p.session_id IS NOT NULL AND r.session_id IS NULL)
                     OR (p.session_id IS NULL AND b1.hour IS NULL AND b2.hour IS NULL))),
      u AS (SELECT developer, session_id, model, time_ns, cost_usd AS cost, input_tokens AS inp,
                   output_tokens AS out, cache_read_tokens AS cr, cache_creation_tokens AS cc,
                   1 AS req, duration_ms
            FROM ev WHERE event_name = 'api_request'
            UNION ALL
            SELECT developer, session_id, model, time_ns,
                   CASE WHEN name = 'claude_code.cost.usage' THEN value ELSE 0 END,
                   CASE WHEN "type" = 'input' THEN value ELSE 0 END,
                   CASE WHEN "type" = 'output' THEN value ELSE 0 END,
                   CASE WHEN "type" = 'cacheRead' THEN value ELSE 0 END,
                   CASE WHEN "type" = 'cacheCreation' THEN value ELSE 0 END, 0, NULL
            FROM pts)"""


def questions(label, s, u):
    return {
        f"describe_data {label}": [
            f"""SELECT event_name, count(*), min(time_ns), max(time_ns), count(file_path)
                FROM events WHERE time_ns >= {s} AND time_ns < {u} GROUP BY 1""",
            f"""SELECT name, count(*), min(time_ns), max(time_ns) FROM points
                WHERE time_ns >= {s} AND time_ns < {u} GROUP BY 1""",
            """SELECT developer, count(DISTINCT session_id) FROM
                (SELECT developer, session_id FROM events UNION ALL SELECT developer, session_id FROM points)
                GROUP BY 1""",
        ],
        f"cost_by_developer {label}": [
            usage(s, u) + f"""
            SELECT developer, sum(cost), sum(inp), sum(out), sum(cr), sum(cc), sum(req),
                   count(DISTINCT session_id), count(DISTINCT time_ns // {DAY})
            FROM u GROUP BY 1 ORDER BY 2 DESC""",
            f"""SELECT developer, count(*) FROM events WHERE event_name = 'user_prompt'
                AND time_ns >= {s} AND time_ns < {u} GROUP BY 1""",
        ],
        f"model_breakdown {label}": [
            usage(s, u) + """
            SELECT model, sum(req), sum(cost), sum(inp), sum(out), sum(cr), sum(cc),
                   avg(duration_ms), quantile_disc(duration_ms, 0.95)
            FROM u GROUP BY 1 ORDER BY 3 DESC""",
        ],
        f"usage_over_time {label}": [
            usage(s, u) + f"""
            SELECT time_ns // {DAY} AS day, sum(cost), sum(inp + out + cr + cc), sum(req),
                   count(DISTINCT developer)
            FROM u GROUP BY 1 ORDER BY 1""",
        ],
        f"tool_latency {label}": [
            f"""SELECT tool_name, count(*), avg(success), quantile_disc(duration_ms, [0.5, 0.9, 0.95, 0.99]),
                       max(duration_ms)
                FROM events WHERE event_name = 'tool_result' AND time_ns >= {s} AND time_ns < {u}
                GROUP BY 1""",
        ],
        f"top_edited_files {label}": [
            f"""SELECT file_path, count(*) AS edits, count(DISTINCT session_id), count(DISTINCT developer)
                FROM events WHERE event_name = 'tool_result' AND file_path IS NOT NULL
                  AND tool_name IN ('Edit', 'MultiEdit', 'Write', 'NotebookEdit')
                  AND time_ns >= {s} AND time_ns < {u}
                GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20""",
            f"""SELECT count(*) FILTER (WHERE decision = 'accept'), count(*) FILTER (WHERE decision = 'reject')
                FROM events WHERE event_name = 'tool_decision'
                  AND tool_name IN ('Edit', 'MultiEdit', 'Write', 'NotebookEdit')
                  AND time_ns >= {s} AND time_ns < {u}""",
        ],
        f"list_sessions {label}": [
            f"""SELECT session_id, min(time_ns) AS first, max(time_ns), any_value(developer),
                       count(*) FILTER (WHERE event_name = 'user_prompt'), sum(cost_usd),
                       count(*) FILTER (WHERE event_name = 'tool_result'),
                       sum(input_tokens + output_tokens + cache_read_tokens + cache_creation_tokens),
                       count(*) FILTER (WHERE event_name = 'api_error')
                FROM events WHERE session_id IS NOT NULL GROUP BY 1
                HAVING min(time_ns) < {u} AND max(time_ns) >= {s}
                ORDER BY first DESC LIMIT 21""",
        ],
        f"search_events {label}": [
            f"""SELECT * FROM events WHERE time_ns >= {s} AND time_ns < {u}
                ORDER BY time_ns DESC LIMIT 21""",
        ],
    }


QUESTIONS = {}
for label, since in RANGES.items():
    QUESTIONS.update(questions(label, since, NOW_NS + DAY))
QUESTIONS["session_timeline session"] = [
    f"SELECT * FROM events WHERE session_id = '{probe}' ORDER BY time_ns"
]
QUESTIONS["search_events session"] = [
    f"SELECT * FROM events WHERE session_id = '{probe}' ORDER BY time_ns DESC LIMIT 21"
]

ours = {}
clickhouse = {}
for line in open(tokentally_out):
    m = re.match(r"(clickhouse )?query (\w+) (\S+): median ([\d.]+) ms", line)
    if m:
        into = clickhouse if m.group(1) else ours
        into[f"{m.group(2)} {m.group(3)}"] = float(m.group(4))

header = f"{'question':<30} {'tokentally ms':>14} {'duckdb ms':>10} {'ratio':>7}"
if clickhouse:
    header += f" {'clickhouse ms':>14} {'ratio':>7}"
print(header)
for name, sqls in QUESTIONS.items():
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for sql in sqls:
            con.execute(sql).fetchall()
        times.append((time.perf_counter() - t) * 1e3)
    duck = statistics.median(times)
    mine = ours.get(name)
    ratio = f"{mine / duck:.2f}" if mine is not None else "n/a"
    mine_s = f"{mine:.1f}" if mine is not None else "n/a"
    row = f"{name:<30} {mine_s:>14} {duck:>10.1f} {ratio:>7}"
    if clickhouse:
        ch = clickhouse.get(name)
        ch_s = f"{ch:.1f}" if ch is not None else "n/a"
        ch_ratio = f"{ch / duck:.2f}" if ch is not None else "n/a"
        row += f" {ch_s:>14} {ch_ratio:>7}"
    print(row)
print("ratio = tokentally / duckdb (below 1: tokentally faster)"
      + ("; the ClickHouse columns are the same tools over a ClickHouse store" if clickhouse else ""))

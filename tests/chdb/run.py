"""Runs tokentally's exported ClickHouse SQL in chDB (ClickHouse embedded).

Reads one JSON request on stdin:
  {"ddl": [statement, ...],
   "data": [{"table": "db.events", "file": "/path/rows.bin"}, ...],   # RowBinary
   "queries": [statement, ...]}
and prints {"ddl_errors": [...], "results": [{"rows": [...]} | {"error": "..."}]}
with each query's rows as JSONEachRow objects, in order.
"""

import json
import sys
import tempfile

from chdb import session


def main():
    request = json.load(sys.stdin)
    out = {"ddl_errors": [], "results": []}
    with tempfile.TemporaryDirectory(prefix="tokentally-chdb-") as path:
        s = session.Session(path)
        for statement in request["ddl"]:
            try:
                s.query(statement)
            except Exception as e:  # reported, compared by the caller
                out["ddl_errors"].append(f"{statement[:80]}: {e}")
        for d in request["data"]:
            db, table = d["table"].split(".")
            structure = s.query(
                "SELECT arrayStringConcat(groupArray(concat(name, ' ', type)), ', ') "
                f"FROM (SELECT name, type FROM system.columns WHERE database = '{db}' "
                f"AND table = '{table}' ORDER BY position)",
                "TabSeparatedRaw",
            ).bytes().decode().strip()
            s.query(
                f"INSERT INTO {db}.{table} SELECT * FROM file('{d['file']}', 'RowBinary', '{structure}')"
            )
        for q in request["queries"]:
            try:
                text = s.query(q, "JSONEachRow").bytes().decode()
                out["results"].append(
                    {"rows": [json.loads(line) for line in text.splitlines() if line.strip()]}
                )
            except Exception as e:
                out["results"].append({"error": str(e)})
        s.close()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()

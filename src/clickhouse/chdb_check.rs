//! Every statement tokentally sends to ClickHouse also runs on a current
//! release with the same results: the schema's DDL and each question's
//! SQL (parameters written in as the client binds them) run on the test
//! server (18.16, Debian's) and in chDB (PyPI `chdb`, ClickHouse 26.9
//! embedded, driven by `tests/chdb/run.py`), over the same rows.

use serde_json::Value;

use super::questions::ClickHouseQuestions;
use super::{ReadLimits, schema, sql, testing};
use crate::query::Questions;
use crate::query::events::EventFilter;
use crate::query::filter::Filter;
use crate::query::fixture::generated::{self, DAY_NS, START_NS};
use crate::query::fixture::utc;
use crate::query::timeseries::{Bucket, Split};
use crate::query::visible::testing::visible;

/// Numbers (also those printed as text, as 64-bit integers are) as
/// numbers; rows, and arrays inside them (`groupUniqArray` has no order),
/// in a canonical order.
fn canonical(rows: &[Value]) -> Vec<Value> {
    fn norm(v: &Value) -> Value {
        match v {
            Value::String(s) => s
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map_or_else(|| v.clone(), |f| serde_json::json!(f)),
            Value::Number(n) => serde_json::json!(n.as_f64().unwrap_or(0.0)),
            Value::Array(a) => {
                let mut a: Vec<Value> = a.iter().map(norm).collect();
                a.sort_by_key(|v| v.to_string());
                Value::Array(a)
            }
            // Column names differ between versions for unnamed expressions:
            // compare values in column order.
            Value::Object(o) => Value::Array(o.values().map(norm).collect()),
            _ => v.clone(),
        }
    }
    let mut out: Vec<Value> = rows.iter().map(norm).collect();
    out.sort_by_key(|v| v.to_string());
    out
}

fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y))
        }
        _ => a == b,
    }
}

#[tokio::test]
async fn every_statement_runs_on_a_current_clickhouse_with_the_same_results() {
    let ds = generated::build();
    let ch = super::test_store().await;
    let sink = super::sink::Sink::start(ch.clone(), Default::default());
    // Many exporters at once (within the sink's queue): few large inserts.
    for chunk in ds.fx.batches.chunks(500) {
        let writes = chunk.iter().map(|b| sink.write(b.clone()));
        for receipt in futures::future::join_all(writes).await {
            receipt.unwrap();
        }
    }
    let q = ClickHouseQuestions::new(
        ch.clone(),
        ReadLimits::of(&crate::config::QueryLimits::default()),
    );
    // Every question, over all data and a partial range, for everyone and
    // a developer-bound caller, with and without filters.
    let h = crate::query::HOUR_NS;
    let ranges = [
        utc(START_NS - DAY_NS, START_NS + 11 * DAY_NS),
        utc(START_NS + 2 * DAY_NS + 7, START_NS + 5 * DAY_NS + 3 * h),
    ];
    let filters = [
        Filter::new(visible(&[])),
        Filter::new(visible(&["alice@example.com"])),
        Filter {
            team: Some("web".into()),
            model: Some("claude-sonnet-5".into()),
            repository: Some("webapp".into()),
            ..Filter::new(visible(&[]))
        },
    ];
    for range in &ranges {
        for f in &filters {
            let (r, f) = (range.clone(), f.clone());
            q.cost_by_developer(r.clone(), f.clone()).await.unwrap();
            q.model_breakdown(r.clone(), f.clone()).await.unwrap();
            q.tool_latency(r.clone(), f.clone(), None).await.unwrap();
            q.top_edited_files(r.clone(), f.clone(), Some("Edit".into()), 10)
                .await
                .unwrap();
            q.usage_over_time(r.clone(), f.clone(), Bucket::Day, Split::Model)
                .await
                .unwrap();
            let errors = EventFilter {
                event_name: Some("api_error".into()),
                ..EventFilter::default()
            };
            q.search_events(r.clone(), f.clone(), errors, None, 5, true)
                .await
                .unwrap();
            q.list_sessions(r.clone(), f.clone(), "cost".into(), 0, 5)
                .await
                .unwrap();
            q.describe_data(r.clone(), f.clone()).await.unwrap();
            q.data_extent(f.visible.clone()).await.unwrap();
        }
    }
    q.session_timeline(
        ranges[0].clone(),
        visible(&[]),
        ds.metrics_only_sessions[0].clone(),
        0,
        10,
        false,
    )
    .await
    .unwrap();
    q.session_timeline(
        ranges[0].clone(),
        visible(&[]),
        "sess-0-0".into(),
        0,
        10,
        true,
    )
    .await
    .unwrap();
    let statements: Vec<String> = q.asked.lock().unwrap().iter().map(sql::inline).collect();
    assert!(statements.len() > 100, "{}", statements.len());

    // The rows as the old server holds them, and the same DDL.
    let server = testing::shared();
    let database = ch.settings().database.clone();
    let dir = tempfile::tempdir().unwrap();
    let mut data = Vec::new();
    for table in ["events", "metric_points", "spans"] {
        let rows = server.sql_bytes(
            &database,
            &format!("SELECT * FROM {table} FORMAT RowBinary"),
        );
        assert!(!rows.is_empty(), "{table}");
        let file = dir.path().join(format!("{table}.bin"));
        std::fs::write(&file, rows).unwrap();
        data.push(serde_json::json!({"table": format!("{database}.{table}"), "file": file}));
    }
    let mut queries = vec![format!("USE {database}")];
    queries.extend(statements.iter().cloned());
    let request = serde_json::json!({
        "ddl": schema::statements(&database, None),
        "data": data,
        "queries": queries,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chdb/run.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        request.to_string().as_bytes(),
    )
    .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "chDB (tools/test installs PyPI chdb): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        answer["ddl_errors"],
        serde_json::json!([]),
        "DDL refused by chDB"
    );
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), queries.len());
    let mut failures = Vec::new();
    for (statement, got) in statements.iter().zip(&results[1..]) {
        let old: Vec<Value> = String::from_utf8(
            server.sql_bytes(&database, &format!("{statement} FORMAT JSONEachRow")),
        )
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
        match got.get("rows").and_then(Value::as_array) {
            Some(new) => {
                let (a, b) = (canonical(&old), canonical(new));
                if !(a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| close(x, y))) {
                    failures.push(format!(
                        "{statement}\n  18.16: {}\n  26.9:  {}",
                        Value::Array(a),
                        Value::Array(b)
                    ));
                }
            }
            None => failures.push(format!("{statement}\n  chDB: {}", got["error"])),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} statements differ:\n{}",
        failures.len(),
        statements.len(),
        failures.join("\n\n")
    );
}

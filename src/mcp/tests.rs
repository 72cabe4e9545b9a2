//! Tool-layer tests: call_tool over the generated data set and the capture,
//! paging, limits, scopes, developer restriction, audit, timeouts.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::*;
use crate::audit::{AuditError, AuditRecord, Outcome};
use crate::auth::Scope;
use crate::config::QueryLimits;
use crate::query::fixture::generated::{self, DAY_NS, START_NS};
use crate::query::fixture::{Fx, capture, close};
use crate::query::runner::ConnRunner;
use crate::query::{QueryError, QueryRunner};

pub(crate) fn ctx_over(fx: Fx, limits: QueryLimits) -> ToolContext {
    let mut ctx = ToolContext::new(Arc::new(ConnRunner::new(fx.conn)), limits);
    ctx.now = Some(jiff::Timestamp::from_nanosecond((START_NS + 11 * DAY_NS) as i128).unwrap());
    ctx
}

pub(crate) fn generated_ctx() -> (ToolContext, generated::Dataset) {
    let mut ds = generated::build();
    let fx = std::mem::replace(&mut ds.fx, Fx::new());
    (ctx_over(fx, QueryLimits::default()), ds)
}

pub(crate) fn principal(scope: Scope, devs: &[&str]) -> Principal {
    Principal {
        token_id: 7,
        token_name: "tok".into(),
        scope,
        developers: devs.iter().map(|s| s.to_string()).collect(),
    }
}

/// Follows next_cursor until the last page; returns every row.
pub(crate) async fn collect_all(
    ctx: &ToolContext,
    p: &Principal,
    tool: &str,
    args: Value,
) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut a = args.clone();
        if let Some(c) = &cursor {
            a["cursor"] = json!(c);
        }
        let r = call_tool(ctx, p, tool, a).await;
        assert!(!r.is_error, "{tool}: {}", r.text);
        rows.extend(r.structured["rows"].as_array().unwrap().iter().cloned());
        match r.structured["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return rows,
        }
    }
    panic!("paging did not end");
}

pub(crate) const ALL: &str = "2026-11-01T00:00:00Z";

#[derive(Default)]
struct VecSink(Mutex<Vec<AuditRecord>>, bool);

impl AuditSink for VecSink {
    fn append(&self, record: AuditRecord) -> Result<u64, AuditError> {
        if self.1 {
            return Err(AuditError::Unavailable("disk full".into()));
        }
        let mut v = self.0.lock().unwrap();
        v.push(record);
        Ok(v.len() as u64)
    }
}

#[tokio::test]
async fn cost_by_developer_matches_query_and_totals() {
    let (ctx, ds) = generated_ctx();
    let p = principal(Scope::Read, &[]);
    let r = call_tool(&ctx, &p, "cost_by_developer", json!({"since": ALL})).await;
    assert!(!r.is_error, "{}", r.text);
    let rows = r.structured["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let expected: f64 = ds
        .records
        .iter()
        .filter(|x| x.ev.event_name == "api_request")
        .map(|x| x.ev.cost_usd.unwrap())
        .sum::<f64>()
        + ds.metrics
            .iter()
            .filter(|m| {
                ds.metrics_only_sessions.contains(&m.session_id)
                    && m.name == "claude_code.cost.usage"
            })
            .map(|m| m.value)
            .sum::<f64>();
    assert!(close(
        r.structured["totals"]["cost_usd"].as_f64().unwrap(),
        expected
    ));
    assert_eq!(
        r.structured["range"]["since"],
        "2026-11-01T00:00:00.000+00:00"
    );
    assert!(r.text.contains("Claude Code's estimate"));
    assert!(
        r.structured["source"]
            .as_str()
            .unwrap()
            .contains("never both")
    );
    assert!(!r.truncated);
}

#[tokio::test]
async fn restricted_token_sees_only_its_developer_in_every_number() {
    let (ctx, ds) = generated_ctx();
    let p = principal(Scope::Read, &["carol@example.com"]);
    for args in [
        json!({"since": ALL}),
        json!({"since": ALL, "developer": "alice@example.com"}),
    ] {
        let r = call_tool(&ctx, &p, "cost_by_developer", args.clone()).await;
        let rows = r.structured["rows"].as_array().unwrap();
        assert!(
            rows.iter().all(|x| x["developer"] == "carol@example.com"),
            "{args}"
        );
        let exp: i64 = if args.get("developer").is_some() {
            0
        } else {
            ds.records
                .iter()
                .filter(|x| x.developer == "carol@example.com" && x.ev.event_name == "api_request")
                .count() as i64
        };
        assert_eq!(r.structured["totals"]["api_requests"], exp);
    }
    for tool in ["model_breakdown", "tool_latency"] {
        let r = call_tool(&ctx, &p, tool, json!({"since": ALL})).await;
        assert!(!r.is_error, "{tool}: {}", r.text);
        let carol_calls = |name: &str| {
            ds.records
                .iter()
                .filter(|x| x.developer == "carol@example.com" && x.ev.event_name == name)
                .count() as i64
        };
        let sum: i64 = r.structured["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                x[if tool == "model_breakdown" {
                    "requests"
                } else {
                    "calls"
                }]
                .as_i64()
                .unwrap()
            })
            .sum();
        let expected = if tool == "model_breakdown" {
            carol_calls("api_request")
        } else {
            carol_calls("tool_result")
        };
        assert_eq!(sum, expected, "{tool}");
    }
}

#[tokio::test]
async fn pagination_covers_every_row_once() {
    let (ctx, _) = generated_ctx();
    let p = principal(Scope::Read, &[]);
    let full = call_tool(&ctx, &p, "cost_by_developer", json!({"since": ALL})).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut args = json!({"since": ALL, "limit": 2});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let r = call_tool(&ctx, &p, "cost_by_developer", args).await;
        assert!(!r.is_error, "{}", r.text);
        seen.extend(r.structured["rows"].as_array().unwrap().iter().cloned());
        match r.structured["next_cursor"].as_str() {
            Some(c) => {
                assert!(r.truncated);
                cursor = Some(c.to_string());
            }
            None => break,
        }
    }
    assert_eq!(&Value::Array(seen), &full.structured["rows"]);
    // A cursor is bound to its question.
    let r = call_tool(
        &ctx,
        &p,
        "cost_by_developer",
        json!({"since": "3d", "cursor": cursor.unwrap_or_default()}),
    )
    .await;
    assert!(r.is_error);
}

#[tokio::test]
async fn limits_are_clamped_or_refused() {
    let (ctx, _) = generated_ctx();
    let p = principal(Scope::Read, &[]);
    for bad in [json!(0), json!(-5)] {
        let r = call_tool(&ctx, &p, "cost_by_developer", json!({"limit": bad})).await;
        assert!(r.is_error && r.text.contains("limit"), "{}", r.text);
        assert_eq!(r.outcome, Outcome::ToolError);
    }
    let r = call_tool(
        &ctx,
        &p,
        "cost_by_developer",
        json!({"since": ALL, "limit": 1_000_000}),
    )
    .await;
    assert!(!r.is_error);
    assert!(
        r.structured["notes"]
            .to_string()
            .contains("lowered to 1000")
    );
    let r = call_tool(&ctx, &p, "cost_by_developer", json!({"since": "100000d"})).await;
    assert!(r.is_error && r.text.contains("limit"), "{}", r.text);
    let r = call_tool(
        &ctx,
        &p,
        "cost_by_developer",
        json!({"team": "x".repeat(2000)}),
    )
    .await;
    assert!(r.is_error && r.text.contains("1024"), "{}", r.text);
    let r = call_tool(&ctx, &p, "cost_by_developer", json!({"nonsense": 1})).await;
    assert!(
        r.is_error && r.text.contains("known arguments"),
        "{}",
        r.text
    );
    let r = call_tool(
        &ctx,
        &p,
        "cost_by_developer",
        json!({"developer": {"a": {"b": {"c": {"d": 1}}}}}),
    )
    .await;
    assert!(r.is_error);
}

#[tokio::test]
async fn sql_looking_arguments_are_plain_values() {
    let (ctx, ds) = generated_ctx();
    let p = principal(Scope::Read, &[]);
    for tool in ["cost_by_developer", "model_breakdown", "tool_latency"] {
        for key in ["developer", "team", "model", "session_id", "repository"] {
            if tool == "tool_latency" && key == "model" {
                continue;
            }
            let r = call_tool(
                &ctx,
                &p,
                tool,
                json!({"since": ALL, key: "'; DROP TABLE events; --"}),
            )
            .await;
            assert!(!r.is_error, "{tool} {key}: {}", r.text);
            assert_eq!(r.rows, 0, "{tool} {key}");
        }
        let r = call_tool(
            &ctx,
            &p,
            tool,
            json!({"since": ALL, "attribute": "team.id=x' UNION SELECT 1 --"}),
        )
        .await;
        assert!(!r.is_error && r.rows == 0, "{}", r.text);
    }
    let r = call_tool(&ctx, &p, "cost_by_developer", json!({"since": ALL})).await;
    assert_eq!(
        r.structured["totals"]["api_requests"],
        ds.records
            .iter()
            .filter(|x| x.ev.event_name == "api_request")
            .count() as i64
    );
}

#[tokio::test]
async fn scopes_gate_the_tools() {
    let (ctx, _) = generated_ctx();
    let r = call_tool(
        &ctx,
        &principal(Scope::Ingest, &[]),
        "cost_by_developer",
        json!({}),
    )
    .await;
    assert!(r.is_error);
    assert_eq!(r.outcome, Outcome::Forbidden);
    for s in [Scope::Read, Scope::ReadContent, Scope::Audit] {
        let r = call_tool(&ctx, &principal(s, &[]), "cost_by_developer", json!({})).await;
        assert!(!r.is_error, "{s:?}");
    }
    let r = call_tool(
        &ctx,
        &principal(Scope::Read, &[]),
        "drop_everything",
        json!({}),
    )
    .await;
    assert!(r.is_error && r.text.contains("available"));
}

struct SlowRunner;

impl QueryRunner for SlowRunner {
    fn run_boxed(
        &self,
        _budget: std::time::Duration,
        _f: crate::query::BoxedQuery,
    ) -> futures::future::BoxFuture<'static, Result<Value, QueryError>> {
        Box::pin(async { Err(QueryError::TimedOut) })
    }
}

#[tokio::test]
async fn timeouts_become_clear_tool_errors() {
    let ctx = ToolContext::new(Arc::new(SlowRunner), QueryLimits::default());
    let r = call_tool(
        &ctx,
        &principal(Scope::Read, &[]),
        "model_breakdown",
        json!({}),
    )
    .await;
    assert!(r.is_error && r.text.contains("time budget"), "{}", r.text);
    assert_eq!(r.outcome, Outcome::TimedOut);
}

#[test]
fn budget_interrupts_sqlite_and_connection_stays_usable() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let started = std::time::Instant::now();
    let res = crate::query::runner::run_with_budget(
        &conn,
        std::time::Duration::from_millis(50),
        Box::new(|c| {
            let n: i64 = c.query_row(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n",
                [],
                |r| r.get(0),
            )?;
            Ok(json!(n))
        }),
    );
    assert_eq!(res, Err(QueryError::TimedOut));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let ok = crate::query::runner::run_with_budget(
        &conn,
        std::time::Duration::from_secs(5),
        Box::new(|c| Ok(json!(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))),
    );
    assert_eq!(ok, Ok(json!(1)));
}

#[tokio::test]
async fn reply_size_cap_drops_rows_and_says_so() {
    let (mut ctx, _) = generated_ctx();
    ctx.limits.max_reply_bytes = 4000;
    let p = principal(Scope::Read, &[]);
    let r = call_tool(&ctx, &p, "cost_by_developer", json!({"since": ALL})).await;
    assert!(!r.is_error);
    assert!(r.truncated);
    let n = r.structured["rows"].as_array().unwrap().len();
    assert!(n < 5, "{n}");
    assert!(r.structured["notes"].to_string().contains("left out"));
    assert!(r.structured.to_string().len() + r.text.len() <= 4000 || n == 1);
    // Following the cursors yields every row exactly once.
    let mut seen: Vec<Value> = r.structured["rows"].as_array().unwrap().clone();
    let mut next = r.structured["next_cursor"].as_str().map(str::to_string);
    while let Some(c) = next {
        let r2 = call_tool(
            &ctx,
            &p,
            "cost_by_developer",
            json!({"since": ALL, "cursor": c}),
        )
        .await;
        assert!(!r2.is_error, "{}", r2.text);
        seen.extend(r2.structured["rows"].as_array().unwrap().iter().cloned());
        next = r2.structured["next_cursor"].as_str().map(str::to_string);
        assert!(seen.len() <= 5);
    }
    let devs: std::collections::BTreeSet<String> = seen
        .iter()
        .map(|x| x["developer"].as_str().unwrap().to_string())
        .collect();
    assert_eq!((seen.len(), devs.len()), (5, 5));
}

#[tokio::test]
async fn every_call_is_audited_and_a_failing_sink_fails_the_call() {
    let (ctx, _) = generated_ctx();
    let sink = Arc::new(VecSink::default());
    let dyn_sink: Arc<dyn AuditSink> = sink.clone();
    let p = principal(Scope::Read, &[]);
    let meta = CallMeta {
        user_agent: Some("claude-code/2.1.330".into()),
        client_name: Some("claude-code".into()),
        ..Default::default()
    };
    let c2 = ctx.clone();
    let reply = audit::audited(
        &dyn_sink,
        Some(&p),
        "cost_by_developer",
        json!({"since": ALL, "team": "platform"}),
        meta.clone(),
        move |p, n, a| async move { call_tool(&c2, &p, &n, a).await },
    )
    .await
    .unwrap();
    assert!(!reply.is_error);
    let recs = sink.0.lock().unwrap().clone();
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.tool.as_deref(), Some("cost_by_developer"));
    assert_eq!(r.token_id, Some(7));
    assert_eq!(r.scope.as_deref(), Some("read"));
    assert_eq!(r.outcome, "ok");
    assert_eq!(r.rows, Some(2));
    assert_eq!(r.client_name.as_deref(), Some("claude-code"));
    assert_eq!(r.user_agent.as_deref(), Some("claude-code/2.1.330"));
    assert_eq!(r.arguments.as_ref().unwrap()["team"], "platform");
    let red = audit::redact_args(
        &json!({"error_contains": "secret text", "cursor": "abc", "team": "x".repeat(5000)}),
    );
    assert_eq!(red["error_contains"], "[redacted]");
    assert_eq!(red["cursor"], "[redacted]");
    assert!(red.to_string().len() <= audit::MAX_AUDIT_ARGS_BYTES);
    // A failing sink fails the call.
    let failing: Arc<dyn AuditSink> = Arc::new(VecSink(Mutex::new(Vec::new()), true));
    let c3 = ctx.clone();
    let res = audit::audited(
        &failing,
        Some(&p),
        "cost_by_developer",
        json!({}),
        meta,
        move |p, n, a| async move { call_tool(&c3, &p, &n, a).await },
    )
    .await;
    assert!(res.is_err());
}

#[test]
fn tool_definitions_are_documented_and_read_only() {
    let defs = query_tool_definitions();
    assert!(!defs.is_empty());
    for t in defs {
        assert_eq!(
            t.annotations.as_ref().and_then(|a| a.read_only_hint),
            Some(true),
            "{}",
            t.name
        );
        assert!(t.output_schema.is_some());
        let props = t
            .input_schema
            .get("properties")
            .and_then(|p| p.as_object())
            .unwrap();
        for (k, v) in props {
            assert!(
                v.get("description")
                    .and_then(|d| d.as_str())
                    .is_some_and(|d| d.len() > 10),
                "{}.{k} has no description",
                t.name
            );
        }
    }
}

#[tokio::test]
async fn capture_tools_answer_concrete_numbers() {
    let mut fx = Fx::new();
    capture::load(&mut fx);
    let ctx = ctx_over(fx, QueryLimits::default());
    let p = principal(Scope::Read, &[]);
    let r = call_tool(
        &ctx,
        &p,
        "model_breakdown",
        json!({"since": "2026-11-21T00:00:00Z", "until": "2026-11-22T00:00:00Z"}),
    )
    .await;
    assert!(!r.is_error, "{}", r.text);
    let m = &r.structured["rows"][0];
    assert_eq!(m["model"], "claude-opus-5-5");
    assert_eq!(m["requests"], 7);
    assert_eq!(m["output_tokens"], 84);
    assert!(close(m["cost_usd"].as_f64().unwrap(), 7.0 * 0.000976));
    assert_eq!(m["cost_share"], 1.0);
    // durations 85, 19, 69, 32, 30, 26, 19: mean 40, p95 nearest rank = 7th = 85.
    assert!(close(m["mean_latency_ms"].as_f64().unwrap(), 280.0 / 7.0));
    assert_eq!(m["p95_latency_ms"], 85);
    let r = call_tool(
        &ctx,
        &p,
        "tool_latency",
        json!({"since": "2026-11-21T00:00:00Z", "until": "2026-11-22T00:00:00Z"}),
    )
    .await;
    let rows = r.structured["rows"].as_array().unwrap();
    let bash = rows.iter().find(|x| x["tool_name"] == "Bash").unwrap();
    assert_eq!(bash["calls"], 3);
    assert_eq!(bash["failures"], 1);
    // Bash durations 74, 34, 32: p50 = 34, p99 = 74.
    assert_eq!(bash["p50_ms"], 34);
    assert_eq!(bash["p99_ms"], 74);
    assert_eq!(rows[0]["tool_name"], "Bash");
    assert_eq!(rows.len(), 4);
}

#[tokio::test]
async fn search_events_pages_newest_first_and_covers_all_once() {
    let (ctx, ds) = generated_ctx();
    let p = principal(Scope::Read, &[]);
    let expected: Vec<i64> = {
        let mut v: Vec<i64> = ds
            .records
            .iter()
            .filter(|r| r.ev.event_name == "api_error")
            .map(|r| r.ev.time_ns)
            .collect();
        v.sort_unstable_by(|a, b| b.cmp(a));
        v
    };
    assert!(expected.len() > 5);
    let mut got = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut args = json!({"since": ALL, "event_name": "api_error", "limit": 4});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let r = call_tool(&ctx, &p, "search_events", args).await;
        assert!(!r.is_error, "{}", r.text);
        for row in r.structured["rows"].as_array().unwrap() {
            let t: jiff::Timestamp = row["time"].as_str().unwrap().parse().unwrap();
            got.push(t.as_nanosecond() as i64 / 1_000_000);
            assert_eq!(row["event_name"], "api_error");
        }
        match r.structured["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let exp_ms: Vec<i64> = expected.iter().map(|t| t / 1_000_000).collect();
    assert_eq!(got, exp_ms);
}

#[tokio::test]
async fn search_events_filters_and_error_text() {
    let (ctx, ds) = generated_ctx();
    let p = principal(Scope::Read, &[]);
    let r = call_tool(
        &ctx,
        &p,
        "search_events",
        json!({"since": ALL, "tool_name": "Bash", "success": false, "error_contains": "command FAILED", "limit": 1000}),
    )
    .await;
    let exp = ds
        .records
        .iter()
        .filter(|r| r.ev.tool_name.as_deref() == Some("Bash") && r.ev.success == Some(false))
        .count();
    assert!(exp > 0);
    assert_eq!(r.rows as usize, exp, "{}", r.text);
    // LIKE wildcards are literal.
    let r = call_tool(
        &ctx,
        &p,
        "search_events",
        json!({"since": ALL, "error_contains": "%"}),
    )
    .await;
    assert_eq!(r.rows, 0);
    let r = call_tool(
        &ctx,
        &p,
        "search_events",
        json!({"since": ALL, "status_code": 529, "limit": 1000}),
    )
    .await;
    let exp = ds
        .records
        .iter()
        .filter(|r| r.ev.status_code == Some(529))
        .count();
    assert_eq!(r.rows as usize, exp);
}

#[tokio::test]
async fn content_is_withheld_from_read_and_marked_for_read_content() {
    let mut fx = Fx::new();
    capture::load(&mut fx);
    let ctx = ctx_over(fx, QueryLimits::default());
    let args = json!({"since": "2026-11-21T00:00:00Z", "until": "2026-11-22T00:00:00Z", "event_name": "user_prompt"});
    let r = call_tool(
        &ctx,
        &principal(Scope::Read, &[]),
        "search_events",
        args.clone(),
    )
    .await;
    assert_eq!(r.rows, 1);
    let s = r.structured.to_string();
    assert!(!s.contains("edit hello.txt"), "{s}");
    assert_eq!(r.structured["rows"][0]["content_withheld"], true);
    assert!(r.text.contains("withheld"));
    let r = call_tool(
        &ctx,
        &principal(Scope::ReadContent, &[]),
        "search_events",
        args,
    )
    .await;
    assert_eq!(
        r.structured["rows"][0]["untrusted_content"]["prompt"],
        "edit hello.txt"
    );
    assert_eq!(r.structured["rows"][0]["session_id"], capture::SESSION);
    // Tool input (old_string/new_string) is content too.
    let args = json!({"since": "2026-11-21T00:00:00Z", "until": "2026-11-22T00:00:00Z", "tool_name": "Edit", "event_name": "tool_result"});
    let r = call_tool(&ctx, &principal(Scope::Read, &[]), "search_events", args).await;
    assert_eq!(r.rows, 1);
    assert!(!r.structured.to_string().contains("line 2 changed"));
    assert_eq!(
        r.structured["rows"][0]["file_path"],
        "/home/dev/webapp/hello.txt"
    );
}

#[tokio::test]
async fn search_events_respects_developer_restriction() {
    let (ctx, ds) = generated_ctx();
    let p = principal(Scope::ReadContent, &["bob@example.com"]);
    let rows = collect_all(
        &ctx,
        &p,
        "search_events",
        json!({"since": ALL, "limit": 1000}),
    )
    .await;
    assert!(rows.iter().all(|x| x["developer"] == "bob@example.com"));
    let exp = ds
        .records
        .iter()
        .filter(|r| r.developer == "bob@example.com")
        .count();
    assert_eq!(rows.len(), exp);
    let other = ds
        .records
        .iter()
        .find(|r| r.developer == "alice@example.com")
        .unwrap();
    let r = call_tool(
        &ctx,
        &p,
        "search_events",
        json!({"since": ALL, "session_id": other.session_id}),
    )
    .await;
    assert_eq!(r.rows, 0);
}

/// Expected per-file edits computed from the generated records and spans.
fn expected_files(
    ds: &generated::Dataset,
    keep: impl Fn(&str) -> bool,
) -> std::collections::BTreeMap<String, (i64, i64, i64)> {
    let edit = |t: &str| ["Edit", "MultiEdit", "Write", "NotebookEdit"].contains(&t);
    let mut out = std::collections::BTreeMap::new();
    for d in ds
        .records
        .iter()
        .filter(|r| r.ev.event_name == "tool_decision" && keep(&r.developer))
    {
        if !edit(d.ev.tool_name.as_deref().unwrap()) {
            continue;
        }
        let id = d.ev.tool_use_id.as_deref().unwrap();
        let path = ds
            .records
            .iter()
            .find(|r| r.ev.event_name == "tool_result" && r.ev.tool_use_id.as_deref() == Some(id))
            .and_then(|r| r.ev.file_path.clone())
            .or_else(|| {
                ds.spans
                    .iter()
                    .find(|s| s.tool_use_id == id)
                    .and_then(|s| s.file_path.clone())
            });
        let Some(path) = path else { continue };
        let e = out.entry(path).or_insert((0, 0, 0));
        e.0 += 1;
        if d.ev.decision.as_deref() == Some("accept") {
            e.1 += 1;
        } else {
            e.2 += 1;
        }
    }
    out
}

#[tokio::test]
async fn top_edited_files_counts_edits_and_decisions() {
    let (ctx, ds) = generated_ctx();
    for (devs, keep) in [
        (
            vec![],
            Box::new(|_: &str| true) as Box<dyn Fn(&str) -> bool>,
        ),
        (
            vec!["carol@example.com"],
            Box::new(|d: &str| d == "carol@example.com"),
        ),
    ] {
        let p = principal(Scope::Read, &devs);
        let exp = expected_files(&ds, keep);
        let rows = collect_all(
            &ctx,
            &p,
            "top_edited_files",
            json!({"since": ALL, "limit": 2}),
        )
        .await;
        assert_eq!(rows.len(), exp.len());
        for r in &rows {
            let (n, acc, rej) = exp[r["file_path"].as_str().unwrap()];
            assert_eq!(
                (
                    r["edits"].as_i64().unwrap(),
                    r["accepted"].as_i64().unwrap(),
                    r["rejected"].as_i64().unwrap()
                ),
                (n, acc, rej),
                "{r}"
            );
        }
        for w in rows.windows(2) {
            assert!(w[0]["edits"].as_i64() >= w[1]["edits"].as_i64());
        }
    }
    // Rejected edits of developers without tracing have no path.
    let r = call_tool(
        &ctx,
        &principal(Scope::Read, &["carol@example.com"]),
        "top_edited_files",
        json!({"since": ALL}),
    )
    .await;
    let rejected_carol = ds
        .records
        .iter()
        .filter(|r| {
            r.developer == "carol@example.com"
                && r.ev.event_name == "tool_decision"
                && r.ev.decision.as_deref() == Some("reject")
        })
        .count() as i64;
    assert_eq!(r.structured["edits_without_path"], rejected_carol);
    assert_eq!(r.structured["rejected"], rejected_carol);
}

#[tokio::test]
async fn top_edited_files_on_the_capture_and_without_paths() {
    let mut fx = Fx::new();
    capture::load(&mut fx);
    let ctx = ctx_over(fx, QueryLimits::default());
    let p = principal(Scope::Read, &[]);
    let day = json!({"since": "2026-11-21T00:00:00Z", "until": "2026-11-22T00:00:00Z"});
    let r = call_tool(&ctx, &p, "top_edited_files", day.clone()).await;
    assert_eq!(r.rows, 1, "{}", r.text);
    let f = &r.structured["rows"][0];
    assert_eq!(f["file_path"], "/home/dev/webapp/hello.txt");
    assert_eq!(
        (
            f["edits"].as_i64(),
            f["accepted"].as_i64(),
            f["rejected"].as_i64()
        ),
        (Some(2), Some(2), Some(0))
    );
    assert_eq!(f["acceptance_rate"], 1.0);
    assert_eq!(f["tools"], json!(["Edit", "Write"]));
    // Without tool details: no paths, and the answer says how to get them.
    let mut fx = Fx::new();
    let c = fx.context(
        &crate::query::fixture::CtxSpec {
            session_id: Some("s1".into()),
            user_id: Some("u1".into()),
            scope_name: "com.anthropic.claude_code.events".into(),
            ..Default::default()
        },
        0,
    );
    for (name, id) in [("tool_decision", "t1"), ("tool_result", "t1")] {
        fx.event(
            c,
            &crate::query::fixture::Ev {
                time_ns: 1_795_281_160_000_000_000,
                event_name: name.into(),
                tool_name: Some("Edit".into()),
                tool_use_id: Some(id.into()),
                decision: (name == "tool_decision").then(|| "accept".into()),
                duration_ms: Some(5),
                ..Default::default()
            },
        );
    }
    let ctx = ctx_over(fx, QueryLimits::default());
    let r = call_tool(&ctx, &p, "top_edited_files", day).await;
    assert!(!r.is_error);
    assert_eq!(r.rows, 0);
    assert!(r.text.contains("OTEL_LOG_TOOL_DETAILS=1"), "{}", r.text);
    assert_eq!(r.structured["file_paths_available"], false);
    assert_eq!(r.structured["total_edits"], 1);
}

#[tokio::test]
async fn list_sessions_sorted_with_totals_and_restriction() {
    let (ctx, ds) = generated_ctx();
    let p = principal(Scope::Read, &[]);
    let rows = collect_all(
        &ctx,
        &p,
        "list_sessions",
        json!({"since": ALL, "sort_by": "cost", "limit": 3}),
    )
    .await;
    let mut sessions: std::collections::BTreeMap<String, (f64, i64, i64)> =
        std::collections::BTreeMap::new();
    for r in &ds.records {
        let e = sessions.entry(r.session_id.clone()).or_default();
        if r.ev.event_name == "api_request" {
            e.0 += r.ev.cost_usd.unwrap();
            e.1 += 1;
        }
        if r.ev.event_name == "user_prompt" {
            e.2 += 1;
        }
    }
    for m in &ds.metrics {
        if m.name == "claude_code.cost.usage" && ds.metrics_only_sessions.contains(&m.session_id) {
            sessions.entry(m.session_id.clone()).or_default().0 += m.value;
        }
    }
    assert_eq!(rows.len(), sessions.len());
    for r in &rows {
        let (cost, req, prompts) = sessions[r["session_id"].as_str().unwrap()];
        assert!(close(r["cost_usd"].as_f64().unwrap(), cost), "{r}");
        assert_eq!(
            (
                r["api_requests"].as_i64().unwrap(),
                r["prompts"].as_i64().unwrap()
            ),
            (req, prompts)
        );
        let expect_source = if ds
            .metrics_only_sessions
            .contains(&r["session_id"].as_str().unwrap().to_string())
        {
            "metrics"
        } else {
            "events"
        };
        assert_eq!(r["source"], expect_source);
    }
    for w in rows.windows(2) {
        assert!(w[0]["cost_usd"].as_f64() >= w[1]["cost_usd"].as_f64());
    }
    let p = principal(Scope::Read, &["7f3a9c1e-acct-dave"]);
    let rows = collect_all(&ctx, &p, "list_sessions", json!({"since": ALL})).await;
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["developer"] == "7f3a9c1e-acct-dave" && r["main_model"] == "claude-opus-5-5"));
    let r = call_tool(
        &ctx,
        &p,
        "list_sessions",
        json!({"sort_by": "name; DROP TABLE sessions"}),
    )
    .await;
    assert!(r.is_error && r.text.contains("sort_by"));
}

#[tokio::test]
async fn session_timeline_on_the_capture() {
    let mut fx = Fx::new();
    let events = capture::load(&mut fx);
    let ctx = ctx_over(fx, QueryLimits::default());
    let r = call_tool(
        &ctx,
        &principal(Scope::Read, &[]),
        "session_timeline",
        json!({"session_id": capture::SESSION, "limit": 1000}),
    )
    .await;
    assert!(!r.is_error, "{}", r.text);
    assert_eq!(r.rows as usize, events.len());
    let seqs: Vec<i64> = r.structured["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (0..events.len() as i64).collect::<Vec<_>>());
    let turns = r.structured["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 2); // start-up events, then the one prompt
    let t = &turns[1];
    assert_eq!(t["prompt_id"], capture::PROMPT);
    assert_eq!(
        (
            t["api_requests"].as_i64(),
            t["tool_calls"].as_i64(),
            t["tool_failures"].as_i64()
        ),
        (Some(7), Some(6), Some(1))
    );
    assert_eq!(t["tokens"], 7 * (120 + 12 + 30 + 50));
    let s = &r.structured["session"];
    assert_eq!(s["api_requests"], 7);
    assert_eq!(s["main_model"], "claude-opus-5-5");
    assert_eq!(s["developer_kind"], "user_id");
    assert!(!r.structured.to_string().contains("edit hello.txt"));
}

#[tokio::test]
async fn session_timeline_of_another_developer_is_not_found() {
    let (ctx, ds) = generated_ctx();
    let alice = ds
        .records
        .iter()
        .find(|r| r.developer == "alice@example.com")
        .unwrap()
        .session_id
        .clone();
    let r = call_tool(
        &ctx,
        &principal(Scope::Read, &["bob@example.com"]),
        "session_timeline",
        json!({"session_id": alice}),
    )
    .await;
    assert!(r.is_error && r.text.contains("no session"), "{}", r.text);
    assert!(!r.text.contains("alice"));
    let r = call_tool(
        &ctx,
        &principal(Scope::Read, &["alice@example.com"]),
        "session_timeline",
        json!({"session_id": alice}),
    )
    .await;
    assert!(!r.is_error, "{}", r.text);
    let n = ds.records.iter().filter(|x| x.session_id == alice).count();
    let rows = collect_all(
        &ctx,
        &principal(Scope::Read, &["alice@example.com"]),
        "session_timeline",
        json!({"session_id": alice, "limit": 3}),
    )
    .await;
    assert_eq!(rows.len(), n);
    let r = call_tool(
        &ctx,
        &principal(Scope::Read, &[]),
        "session_timeline",
        json!({"session_id": "'; DROP TABLE sessions; --"}),
    )
    .await;
    assert!(r.is_error && r.text.contains("no session"));
}

#[tokio::test]
async fn usage_over_time_daily_in_utc_and_new_york() {
    let (ctx, ds) = generated_ctx();
    let p = principal(Scope::Read, &[]);
    for tz in ["UTC", "America/New_York"] {
        let zone = jiff::tz::TimeZone::get(tz).unwrap();
        let date_of = |t: i64| {
            jiff::Timestamp::from_nanosecond(t as i128)
                .unwrap()
                .to_zoned(zone.clone())
                .date()
        };
        // Partial first day: since mid-morning of Nov 11 local time.
        let since = format!(
            "2026-11-11T10:17:00{}",
            if tz == "UTC" { "Z" } else { "-05:00" }
        );
        let since_ns = since.parse::<jiff::Timestamp>().unwrap().as_nanosecond() as i64;
        let mut exp: std::collections::BTreeMap<
            jiff::civil::Date,
            (f64, i64, std::collections::BTreeSet<String>),
        > = Default::default();
        for r in ds.records.iter().filter(|r| {
            r.ev.time_ns >= since_ns
                && matches!(r.ev.event_name.as_str(), "api_request" | "api_error")
        }) {
            let e = exp.entry(date_of(r.ev.time_ns)).or_default();
            if r.ev.event_name == "api_request" {
                e.0 += r.ev.cost_usd.unwrap();
                e.1 += 1;
            }
            e.2.insert(r.developer.clone());
        }
        for m in ds
            .metrics
            .iter()
            .filter(|m| m.time_ns >= since_ns && ds.metrics_only_sessions.contains(&m.session_id))
        {
            let e = exp.entry(date_of(m.time_ns)).or_default();
            if m.name == "claude_code.cost.usage" {
                e.0 += m.value;
            }
            e.2.insert(m.developer.clone());
        }
        let rows = collect_all(
            &ctx,
            &p,
            "usage_over_time",
            json!({"since": since, "timezone": tz, "bucket": "day"}),
        )
        .await;
        let first = date_of(since_ns);
        let last = date_of(START_NS + 11 * DAY_NS - 1);
        let days = (last - first).get_days() + 1;
        assert_eq!(
            rows.len() as i32,
            days,
            "{tz}: one row per day, empty days included"
        );
        for r in &rows {
            let start: jiff::Timestamp = r["bucket_start"].as_str().unwrap().parse().unwrap();
            let d = start.to_zoned(zone.clone()).date();
            let (cost, req, devs) = exp.get(&d).cloned().unwrap_or_default();
            assert!(
                close(r["cost_usd"].as_f64().unwrap(), cost),
                "{tz} {d}: {r}"
            );
            assert_eq!(r["requests"], req, "{tz} {d}");
            assert_eq!(r["active_developers"], devs.len() as i64, "{tz} {d}");
        }
    }
}

#[tokio::test]
async fn usage_over_time_split_by_model_respects_restriction() {
    let (ctx, ds) = generated_ctx();
    let p = principal(Scope::Read, &["alice@example.com"]);
    let rows = collect_all(
        &ctx,
        &p,
        "usage_over_time",
        json!({"since": ALL, "bucket": "week", "split_by": "model"}),
    )
    .await;
    let mut exp: std::collections::BTreeMap<String, i64> = Default::default();
    for r in ds
        .records
        .iter()
        .filter(|r| r.developer == "alice@example.com" && r.ev.event_name == "api_request")
    {
        *exp.entry(r.ev.model.clone().unwrap()).or_default() += 1;
    }
    let mut got: std::collections::BTreeMap<String, i64> = Default::default();
    for r in &rows {
        assert!(r["active_developers"].as_i64().unwrap() <= 1);
        *got.entry(r["key"].as_str().unwrap().to_string())
            .or_default() += r["requests"].as_i64().unwrap();
    }
    assert_eq!(got, exp);
    let r = call_tool(&ctx, &p, "usage_over_time", json!({"bucket": "minute"})).await;
    assert!(r.is_error && r.text.contains("hour, day, week or total"));
}

#[tokio::test]
async fn describe_data_counts_and_gaps() {
    let (ctx, ds) = generated_ctx();
    let r = call_tool(
        &ctx,
        &principal(Scope::Read, &[]),
        "describe_data",
        json!({}),
    )
    .await;
    assert!(!r.is_error, "{}", r.text);
    let rows = r.structured["rows"].as_array().unwrap();
    let count = |n: &str| {
        rows.iter()
            .find(|x| x["kind"] == "event" && x["name"] == n)
            .map(|x| x["count"].as_i64().unwrap())
    };
    for name in ["api_request", "tool_result", "user_prompt"] {
        assert_eq!(
            count(name),
            Some(
                ds.records
                    .iter()
                    .filter(|r| r.ev.event_name == name)
                    .count() as i64
            )
        );
    }
    assert_eq!(r.structured["developers"].as_array().unwrap().len(), 5);
    assert_eq!(
        r.structured["optional_data"]["metrics_only_sessions"],
        ds.metrics_only_sessions.len() as i64
    );
    assert_eq!(r.structured["optional_data"]["traces"], true);
    let r = call_tool(
        &ctx,
        &principal(Scope::Read, &["bob@example.com"]),
        "describe_data",
        json!({}),
    )
    .await;
    let devs = r.structured["developers"].as_array().unwrap();
    assert_eq!(devs.len(), 1);
    assert_eq!(devs[0]["developer"], "bob@example.com");
    let rows = r.structured["rows"].as_array().unwrap();
    let n = rows.iter().find(|x| x["name"] == "api_request").unwrap()["count"]
        .as_i64()
        .unwrap();
    assert_eq!(
        n,
        ds.records
            .iter()
            .filter(|r| r.developer == "bob@example.com" && r.ev.event_name == "api_request")
            .count() as i64
    );
    // The capture: one user id, file paths present, prompt text present.
    let mut fx = Fx::new();
    capture::load(&mut fx);
    let ctx = ctx_over(fx, QueryLimits::default());
    let r = call_tool(
        &ctx,
        &principal(Scope::Read, &[]),
        "describe_data",
        json!({"timezone": "Europe/Berlin"}),
    )
    .await;
    assert_eq!(r.structured["developers"][0]["developer_kind"], "user_id");
    assert_eq!(r.structured["claude_code_versions"], json!(["2.1.330"]));
    assert_eq!(
        r.structured["optional_data"]["tool_details_file_paths"],
        true
    );
    assert_eq!(r.structured["optional_data"]["prompt_text"], true);
    assert!(
        r.structured["resource_attribute_keys"]
            .to_string()
            .contains("team.id")
    );
}

/// Serves `/mcp` on 127.0.0.1:0 behind a test auth layer mapping
/// `Authorization: Bearer <scope>` to a principal.
async fn serve_mcp(ctx: ToolContext, sink: Arc<dyn AuditSink>) -> (String, CancellationToken) {
    let cancel = CancellationToken::new();
    let svc = mcp_service(ctx, sink, cancel.clone(), McpHttpConfig::default(), None);
    let app = axum::Router::new()
        .nest_service("/mcp", svc)
        .layer(axum::middleware::from_fn(
            |mut req: axum::extract::Request, next: axum::middleware::Next| async move {
                let scope = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .and_then(Scope::parse);
                if let Some(s) = scope {
                    req.extensions_mut().insert(principal(s, &[]));
                }
                next.run(req).await
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { c2.cancelled().await })
            .await
            .unwrap();
    });
    (format!("http://{addr}/mcp"), cancel)
}

/// Sends one JSON-RPC message; returns (session id header, JSON answer if any).
async fn rpc(
    url: &str,
    token: &str,
    session: Option<&str>,
    body: Value,
) -> (Option<String>, Option<Value>) {
    let client = reqwest::Client::new();
    let mut req = client
        .post(url)
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("user-agent", "claude-code/2.1.330 (test)")
        .header("mcp-protocol-version", "2025-11-25")
        .body(body.to_string());
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let resp = req.send().await.unwrap();
    let sid = resp
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let is_sse = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/event-stream"));
    if body.get("id").is_none() {
        return (sid, None);
    }
    if !is_sse {
        let text = resp.text().await.unwrap();
        return (sid, serde_json::from_str(&text).ok());
    }
    // Read SSE events until the answer to our id arrives.
    let mut resp = resp;
    let mut buf = String::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        for line in buf.lines() {
            if let Some(data) = line.strip_prefix("data:")
                && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                && v.get("id") == body.get("id")
            {
                return (sid, Some(v));
            }
        }
    }
    (sid, None)
}

async fn open_session(url: &str, token: &str) -> String {
    let (sid, init) = rpc(
        url,
        token,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "claude-code", "version": "2.1.330"}
        }}),
    )
    .await;
    let init = init.unwrap();
    assert_eq!(init["result"]["serverInfo"]["name"], "tokentally", "{init}");
    assert!(
        init["result"]["instructions"]
            .as_str()
            .unwrap()
            .contains("describe_data")
    );
    let sid = sid.unwrap();
    rpc(
        url,
        token,
        Some(&sid),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    sid
}

#[tokio::test]
async fn over_http_tools_are_listed_by_scope_called_and_audited() {
    let (ctx, ds) = generated_ctx();
    let sink = Arc::new(VecSink::default());
    let (url, cancel) = serve_mcp(ctx, sink.clone()).await;

    let sid = open_session(&url, "read").await;
    let (_, list) = rpc(
        &url,
        "read",
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    let tools = list.unwrap()["result"]["tools"].as_array().unwrap().clone();
    assert_eq!(tools.len(), 9);
    assert!(
        tools
            .iter()
            .all(|t| t["annotations"]["readOnlyHint"] == true && t["outputSchema"].is_object())
    );

    let (_, call) = rpc(
        &url,
        "read",
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "cost_by_developer", "arguments": {"since": ALL}}}),
    )
    .await;
    let result = &call.unwrap()["result"];
    assert_ne!(result["isError"], true, "{result}");
    let expected = ds
        .records
        .iter()
        .filter(|r| r.ev.event_name == "api_request")
        .count() as i64;
    assert_eq!(
        result["structuredContent"]["totals"]["api_requests"],
        expected
    );
    assert!(
        result["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("developer(s)")
    );

    // A caller mistake is a tool result with isError, not a protocol error.
    let (_, bad) = rpc(
        &url,
        "read",
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "model_breakdown", "arguments": {"limit": -1}}}),
    )
    .await;
    assert_eq!(bad.unwrap()["result"]["isError"], true);

    {
        let recs = sink.0.lock().unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].outcome, "ok");
        assert_eq!(
            recs[0].user_agent.as_deref(),
            Some("claude-code/2.1.330 (test)")
        );
        assert_eq!(recs[0].client_name.as_deref(), Some("claude-code"));
        assert_eq!(recs[1].outcome, "tool_error");
    }

    // An ingest token sees no tools.
    let sid = open_session(&url, "ingest").await;
    let (_, list) = rpc(
        &url,
        "ingest",
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    )
    .await;
    assert_eq!(list.unwrap()["result"]["tools"], json!([]));
    cancel.cancel();
}

#[tokio::test]
async fn over_http_a_failing_audit_sink_refuses_the_answer() {
    let (ctx, _) = generated_ctx();
    let sink: Arc<dyn AuditSink> = Arc::new(VecSink(Mutex::new(Vec::new()), true));
    let (url, cancel) = serve_mcp(ctx, sink).await;
    let sid = open_session(&url, "read").await;
    let (_, call) = rpc(
        &url,
        "read",
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "cost_by_developer", "arguments": {"since": ALL}}}),
    )
    .await;
    let v = call.unwrap();
    assert!(v.get("result").is_none(), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("audit"));
    cancel.cancel();
}

/// Claude Code 2.1.330 first probes with `server/discover` (2026-07-28).
#[tokio::test]
async fn over_http_answers_claude_code_discover_probe() {
    let (ctx, _) = generated_ctx();
    let sink = Arc::new(VecSink::default());
    let (url, cancel) = serve_mcp(ctx, sink).await;
    let body = r#"{"jsonrpc":"2.0","id":"server-discover-probe-1","method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"claude-code","title":"Claude Code","version":"2.1.330","description":"Anthropic's agentic coding tool","websiteUrl":"https://claude.com/claude-code"},"io.modelcontextprotocol/clientCapabilities":{"roots":{"listChanged":true},"elicitation":{"form":{},"url":{}}}}}}"#;
    let resp = reqwest::Client::new()
        .post(&url)
        .header("authorization", "Bearer read")
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-method", "server/discover")
        .header("mcp-protocol-version", "2026-07-28")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{status} {text}");
    assert!(text.contains("tokentally"), "{text}");
    cancel.cancel();
}

#[tokio::test]
async fn usage_split_by_repository_and_mcp_server_in_total() {
    let (ctx, ds) = generated_ctx();
    let p = principal(Scope::Read, &[]);
    for (split, field) in [("repository", "repository"), ("mcp_server", "mcp_server")] {
        let rows = collect_all(
            &ctx,
            &p,
            "usage_over_time",
            json!({"since": ALL, "bucket": "total", "split_by": split}),
        )
        .await;
        let mut exp: std::collections::BTreeMap<Option<String>, (f64, i64)> = Default::default();
        for r in ds
            .records
            .iter()
            .filter(|r| r.ev.event_name == "api_request")
        {
            let key = if field == "repository" {
                r.ev.repository.clone()
            } else {
                r.ev.mcp_server.clone()
            };
            let e = exp.entry(key).or_default();
            e.0 += r.ev.cost_usd.unwrap();
            e.1 += 1;
        }
        // Metrics-only sessions carry neither, so they land under null.
        for m in ds.metrics.iter().filter(|m| {
            ds.metrics_only_sessions.contains(&m.session_id) && m.name == "claude_code.cost.usage"
        }) {
            exp.entry(None).or_default().0 += m.value;
        }
        let mut got: std::collections::BTreeMap<Option<String>, (f64, i64)> = Default::default();
        for r in &rows {
            let e = got
                .entry(r["key"].as_str().map(str::to_string))
                .or_default();
            e.0 += r["cost_usd"].as_f64().unwrap();
            e.1 += r["requests"].as_i64().unwrap();
        }
        assert_eq!(got.len(), exp.len(), "{split}: {got:?}");
        for (k, (c, n)) in &exp {
            let (gc, gn) = got[k];
            assert!(close(gc, *c), "{split} {k:?}");
            assert_eq!(gn, *n, "{split} {k:?}");
        }
    }
}

#[tokio::test]
async fn over_http_unknown_tool_is_a_protocol_error_and_audited() {
    let (ctx, _) = generated_ctx();
    let sink = Arc::new(VecSink::default());
    let (url, cancel) = serve_mcp(ctx, sink.clone()).await;
    let sid = open_session(&url, "read").await;
    let (_, call) = rpc(
        &url,
        "read",
        Some(&sid),
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "drop_tables", "arguments": {}}}),
    )
    .await;
    let v = call.unwrap();
    assert_eq!(v["error"]["code"], -32602, "{v}");
    let recs = sink.0.lock().unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].tool.as_deref(), Some("drop_tables"));
    assert_eq!(recs[0].request_id.as_deref(), Some("9"));
    drop(recs);
    cancel.cancel();
}

#[tokio::test]
async fn tool_latency_breaks_out_mcp_calls_by_server_and_tool() {
    let (ctx, ds) = generated_ctx();
    let r = call_tool(
        &ctx,
        &principal(Scope::Read, &[]),
        "tool_latency",
        json!({"since": ALL}),
    )
    .await;
    let mcp = r.structured["mcp_breakdown"].as_array().unwrap();
    let mut exp: std::collections::BTreeMap<String, i64> = Default::default();
    for x in ds
        .records
        .iter()
        .filter(|x| x.ev.event_name == "tool_result" && x.ev.mcp_tool.is_some())
    {
        *exp.entry(x.ev.mcp_tool.clone().unwrap()).or_default() += 1;
    }
    assert!(!exp.is_empty());
    assert_eq!(mcp.len(), exp.len());
    for m in mcp {
        assert_eq!(m["mcp_server"], "github");
        assert_eq!(m["calls"], exp[m["mcp_tool"].as_str().unwrap()]);
    }
    // Percentiles are exact nearest-rank values over every Bash duration.
    let mut d: Vec<i64> = ds
        .records
        .iter()
        .filter(|x| x.ev.event_name == "tool_result" && x.ev.tool_name.as_deref() == Some("Bash"))
        .map(|x| x.ev.duration_ms.unwrap())
        .collect();
    d.sort_unstable();
    let rank = |p: f64| d[((p / 100.0 * d.len() as f64).ceil() as usize).max(1) - 1];
    let bash = r.structured["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["tool_name"] == "Bash")
        .unwrap()
        .clone();
    assert_eq!(bash["calls"], d.len() as i64);
    for (p, k) in [
        (50.0, "p50_ms"),
        (90.0, "p90_ms"),
        (95.0, "p95_ms"),
        (99.0, "p99_ms"),
    ] {
        assert_eq!(bash[k], rank(p), "{k}");
    }
    assert_eq!(bash["max_ms"], *d.last().unwrap());
}

#[tokio::test]
async fn latency_with_partial_hour_edges_matches_raw_records() {
    let (ctx, ds) = generated_ctx();
    let p = principal(Scope::Read, &[]);
    let (since, until) = ("2026-11-12T03:17:00Z", "2026-11-18T15:41:10Z");
    let s: i64 = since.parse::<jiff::Timestamp>().unwrap().as_nanosecond() as i64;
    let u: i64 = until.parse::<jiff::Timestamp>().unwrap().as_nanosecond() as i64;
    let rank = |d: &mut Vec<i64>, p: f64| {
        d.sort_unstable();
        d[((p / 100.0 * d.len() as f64).ceil() as usize).max(1) - 1]
    };
    let in_range = |t: i64| t >= s && t < u;
    let r = call_tool(
        &ctx,
        &p,
        "tool_latency",
        json!({"since": since, "until": until}),
    )
    .await;
    for row in r.structured["rows"].as_array().unwrap() {
        let tool = row["tool_name"].as_str().unwrap();
        let mut d: Vec<i64> = ds
            .records
            .iter()
            .filter(|x| {
                x.ev.event_name == "tool_result"
                    && x.ev.tool_name.as_deref() == Some(tool)
                    && in_range(x.ev.time_ns)
            })
            .map(|x| x.ev.duration_ms.unwrap())
            .collect();
        assert_eq!(row["calls"], d.len() as i64, "{tool}");
        assert_eq!(row["p95_ms"], rank(&mut d, 95.0), "{tool}");
        assert_eq!(row["p50_ms"], rank(&mut d, 50.0), "{tool}");
    }
    let r = call_tool(
        &ctx,
        &p,
        "model_breakdown",
        json!({"since": since, "until": until}),
    )
    .await;
    for row in r.structured["rows"].as_array().unwrap() {
        let model = row["model"].as_str().unwrap();
        let reqs: Vec<&generated::Record> = ds
            .records
            .iter()
            .filter(|x| {
                x.ev.event_name == "api_request"
                    && x.ev.model.as_deref() == Some(model)
                    && in_range(x.ev.time_ns)
            })
            .collect();
        let mut d: Vec<i64> = reqs.iter().map(|x| x.ev.duration_ms.unwrap()).collect();
        assert_eq!(row["requests"], reqs.len() as i64, "{model}");
        let cost: f64 = reqs.iter().map(|x| x.ev.cost_usd.unwrap()).sum();
        let metric_cost: f64 = ds
            .metrics
            .iter()
            .filter(|m| {
                ds.metrics_only_sessions.contains(&m.session_id)
                    && m.model == model
                    && m.name == "claude_code.cost.usage"
                    && in_range(m.time_ns)
            })
            .map(|m| m.value)
            .sum();
        assert!(
            close(row["cost_usd"].as_f64().unwrap(), cost + metric_cost),
            "{model}"
        );
        let mean = d.iter().sum::<i64>() as f64 / d.len() as f64;
        assert!(
            close(row["mean_latency_ms"].as_f64().unwrap(), mean),
            "{model}"
        );
        assert_eq!(row["p95_latency_ms"], rank(&mut d, 95.0), "{model}");
        let errors = ds
            .records
            .iter()
            .filter(|x| {
                x.ev.event_name == "api_error"
                    && x.ev.model.as_deref() == Some(model)
                    && in_range(x.ev.time_ns)
            })
            .count();
        assert_eq!(row["errors"], errors as i64, "{model}");
    }
}

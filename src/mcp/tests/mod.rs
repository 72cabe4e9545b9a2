//! Tool-layer tests: call_tool over the generated data set and the capture,
//! paging, limits, scopes, developer restriction, audit, timeouts.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::*;
use crate::audit::{AuditError, AuditRecord, Outcome};
use crate::auth::Scope;
use crate::config::QueryLimits;
use crate::query::fixture::generated::{self, DAY_NS, START_NS};
use crate::query::fixture::{Fx, capture, close_usd};
use crate::query::runner::Sqlite;
use crate::query::{QueryError, ToolContext};

pub(crate) fn ctx_over(fx: Fx, limits: QueryLimits) -> ToolContext {
    let budget = std::time::Duration::from_millis(limits.time_budget_ms);
    let mut ctx = ToolContext::new(Arc::new(Sqlite::over_connection(fx.conn, budget)), limits);
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
    // A range far wider than the data is answered over the data, and says so.
    let all = call_tool(&ctx, &p, "cost_by_developer", json!({"since": ALL})).await;
    let r = call_tool(&ctx, &p, "cost_by_developer", json!({"since": "100000d"})).await;
    assert!(!r.is_error, "{}", r.text);
    assert_eq!(r.structured["totals"], all.structured["totals"]);
    let narrowed = r.structured["range"]["narrowed"]
        .as_str()
        .unwrap_or_default();
    assert!(
        narrowed.contains("wider than the stored data"),
        "{}",
        r.structured["range"]
    );
    assert_eq!(
        r.structured["range"]["since"],
        "2026-11-10T09:00:00.000+00:00"
    );
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

#[tokio::test]
async fn timeouts_become_clear_tool_errors() {
    let ctx = ToolContext::new(
        Arc::new(Sqlite::failing(QueryError::TimedOut)),
        QueryLimits::default(),
    );
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
        |c: &rusqlite::Connection| {
            let n: i64 = c.query_row(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n",
                [],
                |r| r.get(0),
            )?;
            Ok(json!(n))
        },
    );
    assert_eq!(res, Err(QueryError::TimedOut));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let ok = crate::query::runner::run_with_budget(
        &conn,
        std::time::Duration::from_secs(5),
        |c: &rusqlite::Connection| Ok(json!(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)),
    );
    assert_eq!(ok, Ok(json!(1)));
}

#[test]
fn ranged_query_tools_are_the_query_tools_taking_since() {
    let ranged: Vec<&str> = crate::mcp::registry::TOOLS
        .iter()
        .filter(|t| t.is_ranged_query())
        .map(|t| t.name)
        .collect();
    assert_eq!(
        ranged,
        [
            "cost_by_developer",
            "model_breakdown",
            "tool_latency",
            "search_events",
            "top_edited_files",
            "list_sessions",
            "usage_over_time",
            "describe_data"
        ]
    );
}

#[tokio::test]
async fn tools_list_tells_claude_code_the_reply_cap() {
    let (mut ctx, _) = generated_ctx();
    ctx.limits.max_reply_bytes = 123_456;
    let registry = crate::mcp::Registry::new(ctx);
    let tools = registry.list(&principal(Scope::Audit, &[]));
    assert_eq!(tools.len(), crate::mcp::registry::TOOLS.len());
    for t in tools {
        let meta = t.meta.unwrap();
        assert_eq!(
            meta.0.get(crate::mcp::registry::MAX_RESULT_SIZE_META),
            Some(&json!(123_456)),
            "{}",
            t.name
        );
    }
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
    let meta = crate::audit::Caller {
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
    // Arguments go through the one redaction policy, a pasted secret included.
    let secret = format!("tt_{}", "0f".repeat(32));
    let c2 = ctx.clone();
    audit::audited(
        &dyn_sink,
        Some(&p),
        "search_events",
        json!({"error_contains": "secret text", "cursor": "abc", "session_id": format!("see {secret}")}),
        meta.clone(),
        move |p, n, a| async move { call_tool(&c2, &p, &n, a).await },
    )
    .await
    .unwrap();
    let recs = sink.0.lock().unwrap().clone();
    let logged = recs[1].arguments.as_ref().unwrap();
    assert_eq!(logged["error_contains"], "[redacted]");
    assert_eq!(logged["cursor"], "[redacted]");
    assert_eq!(logged["session_id"], "see tt_[redacted]");
    assert!(!format!("{:?}", recs[1]).contains(&secret));
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
    let defs = registry::TOOLS.iter().map(registry::ToolDef::definition);
    assert_eq!(defs.len(), 11);
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

mod activity;
mod code;
mod fairness;
mod http;
mod schemas;
mod spend;
mod visibility;

#[tokio::test]
async fn every_argument_of_every_tool_survives_hostile_values() {
    let (ctx, ds) = generated_ctx();
    let p = principal(Scope::ReadContent, &["alice@example.com"]);
    let values = [
        json!(-1),
        json!(0),
        json!(i64::MAX),
        json!(1e308),
        json!(true),
        Value::Null,
        json!("'; DROP TABLE events; --"),
        json!("x' UNION SELECT * FROM tokens --"),
        json!("日本語\u{0}\u{202e}"),
        json!("%_\\"),
        json!("x".repeat(1025)),
        json!(["a"]),
    ];
    for spec in registry::TOOLS
        .iter()
        .filter(|t| t.needs == registry::Needs::Query)
    {
        let schema = (spec.input_schema)();
        let props: Vec<String> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        for prop in &props {
            for v in &values {
                let mut args = json!({"since": ALL, "session_id": "sess-0-0"});
                args[prop.as_str()] = v.clone();
                let r = call_tool(&ctx, &p, spec.name, args).await;
                assert!(
                    r.is_error || r.structured.is_object(),
                    "{} {prop}={v}",
                    spec.name
                );
                if !r.is_error {
                    let s = r.structured.to_string();
                    for other in ["bob@example.com", "carol@example.com"] {
                        assert!(
                            !s.contains(other),
                            "{} {prop}={v} leaked {other}",
                            spec.name
                        );
                    }
                }
            }
        }
    }
    let r = call_tool(
        &ctx,
        &principal(Scope::Read, &[]),
        "describe_data",
        json!({}),
    )
    .await;
    let rows = r.structured["rows"].as_array().unwrap();
    let total: i64 = rows
        .iter()
        .filter(|x| x["kind"] == "event")
        .map(|x| x["count"].as_i64().unwrap())
        .sum();
    assert_eq!(total as usize, ds.records.len());
}

#[tokio::test]
async fn empty_answers_say_why_and_what_to_do() {
    let (ctx, ds) = generated_ctx();
    // The span of the data, read from the generated records themselves.
    let times = ds
        .records
        .iter()
        .map(|r| r.ev.time_ns)
        .chain(ds.metrics.iter().map(|m| m.time_ns))
        .chain(ds.spans.iter().map(|s| s.start_ns));
    let (first, last) = times.fold((i64::MAX, i64::MIN), |(a, b), t| (a.min(t), b.max(t)));
    let utc = jiff::tz::TimeZone::UTC;
    let p = principal(Scope::Read, &[]);
    let old = json!({"since": "2020-01-01", "until": "2020-02-01"});
    for tool in [
        "cost_by_developer",
        "model_breakdown",
        "list_sessions",
        "search_events",
        "tool_latency",
    ] {
        let r = call_tool(&ctx, &p, tool, old.clone()).await;
        assert!(!r.is_error, "{tool}: {}", r.text);
        assert_eq!(r.rows, 0);
        let notes = r.structured["notes"].to_string();
        assert!(
            notes.contains(&format!(
                "runs from {} to {}",
                crate::query::time::show_ns(first, &utc),
                crate::query::time::show_ns(last, &utc)
            )),
            "{tool}: {notes}"
        );
    }
    let r = call_tool(
        &ctx,
        &p,
        "cost_by_developer",
        json!({"since": ALL, "developer": "bob"}),
    )
    .await;
    assert!(
        r.structured["notes"]
            .to_string()
            .contains("developer \\\"bob\\\""),
        "{}",
        r.structured
    );
    // A token that can see nobody's data is told so, not shown a span.
    let nobody = principal(Scope::Read, &["nobody@example.com"]);
    let r = call_tool(&ctx, &nobody, "cost_by_developer", json!({"since": ALL})).await;
    assert!(
        r.structured["notes"]
            .to_string()
            .contains("nothing is stored that this token may see")
    );
    // An answer with rows carries no such note.
    let r = call_tool(&ctx, &p, "cost_by_developer", json!({"since": ALL})).await;
    assert!(
        !r.structured["notes"]
            .to_string()
            .contains("nothing matched")
    );
}

#[tokio::test]
async fn every_default_reply_is_well_under_twenty_kilobytes() {
    // What Claude Code reads: the text block (summary and JSON) it is given.
    let (ctx, ds) = generated_ctx();
    let p = principal(Scope::Read, &[]);
    for tool in registry::TOOLS
        .iter()
        .filter(|t| t.needs == registry::Needs::Query)
    {
        let args = match tool.name {
            "session_timeline" => json!({"session_id": ds.records[0].session_id}),
            _ => json!({"since": ALL}),
        };
        let r = call_tool(&ctx, &p, tool.name, args).await;
        assert!(!r.is_error, "{}: {}", tool.name, r.text);
        let shown = crate::mcp::to_call_tool_result(&r);
        let bytes = serde_json::to_string(&shown).unwrap().len();
        assert!(bytes < 20_000, "{}: {bytes} bytes", tool.name);
    }
}

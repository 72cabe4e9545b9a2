//! The audit tools over a real audit log in a temp dir: scope gating,
//! filters, paging by sequence number, summary counts, hostile arguments, and
//! their own calls being audited through the handler's path.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::audit::{AuditLog, AuditRecord, AuditSink};
use crate::auth::Scope;
use crate::config::QueryLimits;
use crate::mcp::Registry;
use crate::mcp::audit::audited;
use crate::mcp::reply::ToolReply;
use crate::query::ToolContext;
use crate::query::runner::Sqlite;

fn principal(scope: Scope) -> Principal {
    Principal {
        token_id: 1,
        token_name: "admin".into(),
        scope,
        developers: Vec::new(),
    }
}

fn rec(
    token: Option<(i64, &str)>,
    tool: Option<&str>,
    outcome: Outcome,
    peer: &str,
) -> AuditRecord {
    AuditRecord {
        token_id: token.map(|t| t.0),
        token_name: token.map(|t| t.1.to_string()),
        scope: token.map(|_| "read".to_string()),
        method: Some("tools/call".into()),
        tool: tool.map(str::to_string),
        arguments: Some(json!({"since": "7d", "prompt": "secret words"})),
        outcome: outcome.as_str().into(),
        peer: Some(peer.into()),
        ..AuditRecord::default()
    }
}

/// A log with seven records (seq 1..=7), and tools over a read-only handle.
fn setup() -> (tempfile::TempDir, Arc<AuditLog>, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(AuditLog::open(dir.path()).unwrap());
    let read = Some((2, "read"));
    for r in [
        rec(read, Some("cost_by_developer"), Outcome::Ok, "127.0.0.1"),
        rec(read, Some("cost_by_developer"), Outcome::Ok, "127.0.0.1"),
        rec(read, Some("search_events"), Outcome::ToolError, "127.0.0.1"),
        rec(None, None, Outcome::Unauthenticated, "10.0.0.9"),
        rec(None, None, Outcome::Unauthenticated, "10.0.0.9"),
        rec(read, None, Outcome::RateLimited, "127.0.0.1"),
        rec(
            Some((1, "admin")),
            Some("audit_log"),
            Outcome::Ok,
            "127.0.0.2",
        ),
    ] {
        log.append(r).unwrap();
    }
    let ro = Arc::new(AuditLog::open_read_only(dir.path()).unwrap());
    let ctx = ToolContext::new(
        Arc::new(Sqlite::over_connection(
            rusqlite::Connection::open_in_memory().unwrap(),
            std::time::Duration::from_secs(5),
        )),
        QueryLimits::default(),
    );
    (dir, log, Registry::new(ctx).with_audit_log(ro))
}

async fn call(tools: &Registry, scope: Scope, name: &str, args: Value) -> ToolReply {
    tools.call(&principal(scope), name, args).await
}

fn seqs(r: &ToolReply) -> Vec<u64> {
    r.structured["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["seq"].as_u64().unwrap())
        .collect()
}

#[test]
fn only_audit_scope_sees_the_tools_and_they_are_documented() {
    let (_dir, _log, tools) = setup();
    assert!(tools.list(&principal(Scope::Ingest)).is_empty());
    let audit_names = |scope| -> Vec<String> {
        tools
            .list(&principal(scope))
            .iter()
            .map(|t| t.name.to_string())
            .filter(|n| n.starts_with("audit_"))
            .collect()
    };
    for scope in [Scope::Read, Scope::ReadContent] {
        assert!(audit_names(scope).is_empty(), "{scope:?}");
        assert_eq!(tools.list(&principal(scope)).len(), 9, "{scope:?}");
    }
    assert_eq!(audit_names(Scope::Audit), vec![AUDIT_LOG, AUDIT_SUMMARY]);
    let defs: Vec<_> = tools
        .list(&principal(Scope::Audit))
        .into_iter()
        .filter(|t| t.name.starts_with("audit_"))
        .collect();
    for t in &defs {
        assert_eq!(
            t.annotations.as_ref().and_then(|a| a.read_only_hint),
            Some(true)
        );
        let props = t.input_schema["properties"].as_object().unwrap();
        for (k, v) in props {
            assert!(
                v.get("description")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.len() > 10),
                "{}.{k} has no description",
                t.name
            );
        }
        let out = t.output_schema.as_ref().unwrap();
        assert!(out["properties"]["rows"].is_object());
    }
    let summary_out = defs[1].output_schema.as_ref().unwrap();
    for k in ["total", "denied", "by_outcome", "by_tool", "top_callers"] {
        assert!(summary_out["properties"][k].is_object(), "{k}");
    }
    for name in [AUDIT_LOG, AUDIT_SUMMARY] {
        assert_eq!(
            crate::mcp::registry::find(name).map(|t| t.needs),
            Some(crate::mcp::registry::Needs::Audit)
        );
    }
}

#[tokio::test]
async fn other_scopes_are_refused_with_a_tool_error() {
    let (_dir, _log, tools) = setup();
    for scope in [Scope::Ingest, Scope::Read, Scope::ReadContent] {
        for name in [AUDIT_LOG, AUDIT_SUMMARY] {
            let r = call(&tools, scope, name, json!({})).await;
            assert!(r.is_error, "{scope:?} {name}");
            assert_eq!(r.outcome, Outcome::Forbidden);
            assert!(r.text.contains("scope audit"), "{}", r.text);
            assert_eq!(r.rows, 0);
        }
    }
}

#[tokio::test]
async fn audit_log_filters_newest_first() {
    let (_dir, _log, tools) = setup();
    let all = call(&tools, Scope::Audit, AUDIT_LOG, json!({})).await;
    assert!(!all.is_error, "{}", all.text);
    assert_eq!(seqs(&all), vec![7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(all.structured["order"], "newest first");
    assert!(all.text.starts_with("7 audit record(s)"), "{}", all.text);
    let first = &all.structured["rows"][6];
    assert_eq!(first["token_name"], "read");
    assert_eq!(first["tool"], "cost_by_developer");
    assert_eq!(first["arguments"]["prompt"], "[redacted]");
    assert_eq!(first["peer"], "127.0.0.1");

    let by_name = call(&tools, Scope::Audit, AUDIT_LOG, json!({"token": "read"})).await;
    assert_eq!(seqs(&by_name), vec![6, 3, 2, 1]);
    let by_id = call(&tools, Scope::Audit, AUDIT_LOG, json!({"token": 1})).await;
    assert_eq!(seqs(&by_id), vec![7]);
    let by_id_text = call(&tools, Scope::Audit, AUDIT_LOG, json!({"token": "2"})).await;
    assert_eq!(seqs(&by_id_text), vec![6, 3, 2, 1]);
    let denied = call(
        &tools,
        Scope::Audit,
        AUDIT_LOG,
        json!({"outcome": "unauthenticated"}),
    )
    .await;
    assert_eq!(seqs(&denied), vec![5, 4]);
    assert!(denied.structured["rows"][0]["token_id"].is_null());
    let tool = call(
        &tools,
        Scope::Audit,
        AUDIT_LOG,
        json!({"tool": "cost_by_developer", "outcome": "ok", "since": "1h", "timezone": "Europe/Berlin"}),
    )
    .await;
    assert_eq!(seqs(&tool), vec![2, 1]);
    assert_eq!(tool.structured["range"]["timezone"], "Europe/Berlin");
    let time = tool.structured["rows"][0]["time"].as_str().unwrap();
    assert!(
        time.ends_with("+01:00") || time.ends_with("+02:00"),
        "{time}"
    );
    // A range before any record.
    let old = call(
        &tools,
        Scope::Audit,
        AUDIT_LOG,
        json!({"since": "2020-01-01", "until": "2020-02-01"}),
    )
    .await;
    assert!(!old.is_error);
    assert_eq!(old.rows, 0);
}

#[tokio::test]
async fn audit_log_pages_by_sequence_number() {
    let (_dir, log, tools) = setup();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut args = json!({"limit": 3});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let r = call(&tools, Scope::Audit, AUDIT_LOG, args).await;
        assert!(!r.is_error, "{}", r.text);
        seen.extend(seqs(&r));
        // Records appended while paging do not shift later pages.
        log.append(rec(None, None, Outcome::Unauthenticated, "10.0.0.1"))
            .unwrap();
        match r.structured["next_cursor"].as_str() {
            Some(c) => {
                assert!(r.truncated);
                cursor = Some(c.to_string());
            }
            None => break,
        }
    }
    assert_eq!(seen, vec![7, 6, 5, 4, 3, 2, 1]);
    // A cursor is bound to its question.
    let first = call(&tools, Scope::Audit, AUDIT_LOG, json!({"limit": 1})).await;
    let c = first.structured["next_cursor"].as_str().unwrap();
    let r = call(
        &tools,
        Scope::Audit,
        AUDIT_LOG,
        json!({"cursor": c, "token": "read"}),
    )
    .await;
    assert!(r.is_error && r.text.contains("cursor"), "{}", r.text);
}

#[tokio::test]
async fn hostile_arguments_are_tool_errors_or_plain_values() {
    let (_dir, log, tools) = setup();
    for (args, expect) in [
        (json!({"outcome": "exploded"}), "unknown outcome"),
        (json!({"limit": 0}), "limit"),
        (json!({"limit": -5}), "limit"),
        (json!({"nonsense": 1}), "known arguments"),
        (json!({"tool": "x".repeat(2000)}), "1024"),
        (json!({"token": "x".repeat(2000)}), "1024"),
        (
            json!({"since": "'; DROP TABLE audit_log; --"}),
            "not understood",
        ),
        (json!({"cursor": "'; DROP TABLE audit_log; --"}), "cursor"),
        (json!({"token": {"a": {"b": {"c": {"d": 1}}}}}), "nested"),
        (json!({"token": true}), "invalid arguments"),
    ] {
        let r = call(&tools, Scope::Audit, AUDIT_LOG, args.clone()).await;
        assert!(r.is_error, "{args}");
        assert_eq!(r.outcome, Outcome::ToolError, "{args}");
        assert!(r.text.contains(expect), "{args}: {}", r.text);
    }
    let r = call(&tools, Scope::Audit, AUDIT_LOG, json!([1, 2])).await;
    assert!(r.is_error);
    for args in [
        json!({"token": "x' OR 1=1 --"}),
        json!({"tool": "audit_log' UNION SELECT * FROM audit_head --"}),
    ] {
        let r = call(&tools, Scope::Audit, AUDIT_LOG, args.clone()).await;
        assert!(!r.is_error, "{args}: {}", r.text);
        assert_eq!(r.rows, 0, "{args}");
    }
    let r = call(&tools, Scope::Audit, AUDIT_LOG, json!({"limit": 1_000_000})).await;
    assert!(!r.is_error);
    assert!(
        r.structured["notes"]
            .to_string()
            .contains("lowered to 1000")
    );
    let r = call(
        &tools,
        Scope::Audit,
        AUDIT_SUMMARY,
        json!({"since": "36500d"}),
    )
    .await;
    // A century is answered: the audit log is read through its time index.
    assert!(!r.is_error, "{}", r.text);
    // Nothing was changed.
    let report = log.verify().unwrap();
    assert!(report.ok && report.records == 7, "{report:?}");
}

#[tokio::test]
async fn audit_summary_counts_per_token_tool_outcome_and_caller() {
    let (_dir, _log, tools) = setup();
    let r = call(&tools, Scope::Audit, AUDIT_SUMMARY, json!({"since": "1d"})).await;
    assert!(!r.is_error, "{}", r.text);
    let s = &r.structured;
    assert_eq!(s["total"], 7);
    assert_eq!(s["denied"], 3);
    assert_eq!(s["by_outcome"][0], json!({"outcome": "ok", "calls": 3}));
    assert_eq!(
        s["by_outcome"][1],
        json!({"outcome": "unauthenticated", "calls": 2})
    );
    assert_eq!(
        s["by_tool"][0],
        json!({"tool": "cost_by_developer", "calls": 2, "not_ok": 0})
    );
    assert_eq!(
        s["top_callers"][0],
        json!({"peer": "127.0.0.1", "calls": 4, "denied": 1})
    );
    assert_eq!(
        s["rows"],
        json!([
            {"token_id": 2, "token_name": "read", "calls": 4, "denied": 1},
            // Denials without a recognised token: no token fields at all.
            {"calls": 2, "denied": 2},
            {"token_id": 1, "token_name": "admin", "calls": 1, "denied": 0},
        ])
    );
    assert!(r.text.contains("7 audit record(s)"), "{}", r.text);
    assert!(r.text.contains("3 denied"), "{}", r.text);
    assert!(
        r.text.contains("Busiest token: read (4 call(s), 1 denied)"),
        "{}",
        r.text
    );

    let p1 = call(&tools, Scope::Audit, AUDIT_SUMMARY, json!({"limit": 2})).await;
    assert_eq!(p1.rows, 2);
    let c = p1.structured["next_cursor"].as_str().unwrap();
    let p2 = call(
        &tools,
        Scope::Audit,
        AUDIT_SUMMARY,
        json!({"limit": 2, "cursor": c}),
    )
    .await;
    assert_eq!(p2.structured["rows"][0]["token_name"], "admin");
    assert!(p2.structured["next_cursor"].is_null());

    let empty = call(
        &tools,
        Scope::Audit,
        AUDIT_SUMMARY,
        json!({"since": "2020-01-01", "until": "2020-01-02"}),
    )
    .await;
    assert_eq!(empty.structured["total"], 0);
    assert_eq!(empty.rows, 0);
}

#[tokio::test]
async fn calls_to_the_audit_tools_are_audited_too() {
    let (_dir, log, tools) = setup();
    let sink: Arc<dyn AuditSink> = log.clone();
    for (scope, outcome) in [(Scope::Audit, "ok"), (Scope::Read, "forbidden")] {
        let x = tools.clone();
        let reply = audited(
            &sink,
            Some(&principal(scope)),
            AUDIT_LOG,
            json!({"outcome": "ok"}),
            crate::audit::Caller::default(),
            move |p, n, a| Box::pin(async move { x.call(&p, &n, a).await }),
        )
        .await
        .unwrap();
        assert_eq!(reply.is_error, scope != Scope::Audit);
        let last = log.tail(1).unwrap().remove(0);
        assert_eq!(last.record.tool.as_deref(), Some(AUDIT_LOG));
        assert_eq!(last.record.outcome, outcome);
        assert_eq!(last.record.scope.as_deref(), Some(scope.as_str()));
    }
    assert!(log.verify().unwrap().ok);
}

#[tokio::test]
async fn reply_size_cap_trims_rows_and_the_cursor_continues_after_them() {
    let (dir, log, _) = setup();
    for i in 0..40 {
        let mut r = rec(
            Some((3, "big")),
            Some("search_events"),
            Outcome::Ok,
            "127.0.0.1",
        );
        let fields: serde_json::Map<String, Value> = (0..8)
            .map(|k| {
                (
                    format!("field{k}"),
                    json!(format!("{i}-{}", "x".repeat(190))),
                )
            })
            .collect();
        r.arguments = Some(Value::Object(fields));
        r.detail = Some("d".repeat(500));
        log.append(r).unwrap();
    }
    let limits = QueryLimits {
        max_reply_bytes: 8_000,
        ..QueryLimits::default()
    };
    let ctx = ToolContext::new(
        Arc::new(Sqlite::over_connection(
            rusqlite::Connection::open_in_memory().unwrap(),
            std::time::Duration::from_secs(5),
        )),
        limits,
    );
    let tools =
        Registry::new(ctx).with_audit_log(Arc::new(AuditLog::open_read_only(dir.path()).unwrap()));
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut args = json!({"token": "big"});
        if let Some(c) = &cursor {
            args["cursor"] = json!(c);
        }
        let r = call(&tools, Scope::Audit, AUDIT_LOG, args).await;
        assert!(!r.is_error, "{}", r.text);
        assert!(
            r.structured.to_string().len() <= 4_000,
            "reply over half the cap"
        );
        seen.extend(seqs(&r));
        match r.structured["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let expected: Vec<u64> = (8..=47).rev().collect();
    assert_eq!(seen, expected);
}

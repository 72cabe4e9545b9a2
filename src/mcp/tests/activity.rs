//! Tests of search_events, list_sessions and session_timeline.

use super::*;

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
        assert!(close_usd(r["cost_usd"].as_f64().unwrap(), cost), "{r}");
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
    let dave_sessions: std::collections::BTreeSet<&str> = ds
        .records
        .iter()
        .filter(|r| r.developer == "7f3a9c1e-acct-dave")
        .map(|r| r.session_id.as_str())
        .chain(
            ds.metrics
                .iter()
                .filter(|m| m.developer == "7f3a9c1e-acct-dave")
                .map(|m| m.session_id.as_str()),
        )
        .collect();
    assert_eq!(rows.len(), dave_sessions.len());
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
async fn list_sessions_model_filter_includes_metrics_only_sessions() {
    let (ctx, ds) = generated_ctx();
    let p = principal(Scope::Read, &[]);
    let model = ds
        .metrics
        .iter()
        .find(|m| ds.metrics_only_sessions.contains(&m.session_id))
        .map(|m| m.model.clone())
        .unwrap();
    let expected: std::collections::BTreeSet<String> = ds
        .records
        .iter()
        .filter(|r| r.ev.event_name == "api_request" && r.ev.model.as_deref() == Some(&model))
        .map(|r| r.session_id.clone())
        .chain(
            ds.metrics
                .iter()
                .filter(|m| ds.metrics_only_sessions.contains(&m.session_id) && m.model == model)
                .map(|m| m.session_id.clone()),
        )
        .collect();
    assert!(
        expected
            .iter()
            .any(|s| ds.metrics_only_sessions.contains(s))
    );
    let rows = collect_all(
        &ctx,
        &p,
        "list_sessions",
        json!({"since": ALL, "model": model}),
    )
    .await;
    let got: std::collections::BTreeSet<String> = rows
        .iter()
        .map(|r| r["session_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, expected);
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

//! Tests of model_breakdown and tool_latency numbers, and top_edited_files.

use super::*;

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
    assert!(close_usd(m["cost_usd"].as_f64().unwrap(), 7.0 * 0.000976));
    assert_eq!(m["cost_share"], 1.0);
    // durations 85, 19, 69, 32, 30, 26, 19: mean 40, p95 nearest rank = 7th = 85.
    assert!(close_usd(
        m["mean_latency_ms"].as_f64().unwrap(),
        280.0 / 7.0
    ));
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
            close_usd(row["cost_usd"].as_f64().unwrap(), cost + metric_cost),
            "{model}"
        );
        let mean = d.iter().sum::<i64>() as f64 / d.len() as f64;
        assert!(
            close_usd(row["mean_latency_ms"].as_f64().unwrap(), mean),
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

#[tokio::test]
async fn top_edited_files_filters_by_branch_and_repository() {
    let (ctx, ds) = generated_ctx();
    let p = principal(Scope::Read, &[]);
    let edit_results = |keep: &dyn Fn(&crate::query::fixture::generated::Record) -> bool| {
        ds.records
            .iter()
            .filter(|r| {
                r.ev.event_name == "tool_result"
                    && crate::query::files::EDIT_TOOLS
                        .contains(&r.ev.tool_name.as_deref().unwrap_or(""))
                    && keep(r)
            })
            .count() as i64
    };
    let main = edit_results(&|r| r.ev.branch.as_deref() == Some("main"));
    let r = call_tool(
        &ctx,
        &p,
        "top_edited_files",
        json!({"since": ALL, "branch": "main"}),
    )
    .await;
    assert!(main > 0);
    assert_eq!(r.structured["total_edits"], main, "{}", r.text);
    let repo = ds
        .records
        .iter()
        .find_map(|r| r.ev.repository.clone())
        .unwrap();
    let in_repo = edit_results(&|r| r.ev.repository.as_deref() == Some(repo.as_str()));
    let r = call_tool(
        &ctx,
        &p,
        "top_edited_files",
        json!({"since": ALL, "repository": repo}),
    )
    .await;
    assert!(in_repo > 0);
    assert_eq!(r.structured["total_edits"], in_repo, "{}", r.text);
    // Unfiltered, every edit counts.
    let all = call_tool(&ctx, &p, "top_edited_files", json!({"since": ALL})).await;
    assert!(all.structured["total_edits"].as_i64().unwrap() > main);
}

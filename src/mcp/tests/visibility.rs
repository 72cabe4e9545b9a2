//! Developer-bound tokens: for every tool and every set of developers, the
//! bound token's answer equals the unrestricted answer restricted to those
//! developers (rows, totals, series, sessions, files, latency): equality,
//! not only the absence of foreign rows.

use std::collections::BTreeMap;

use super::*;

const DEVS: [&str; 5] = [
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "7f3a9c1e-acct-dave",
    "9c1e4b2a77f0anon",
];

/// Every non-empty set of the generated developers.
fn subsets() -> Vec<Vec<&'static str>> {
    (1u32..(1 << DEVS.len()))
        .map(|mask| {
            DEVS.iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, d)| *d)
                .collect()
        })
        .collect()
}

fn of<'a>(rows: &'a [Value], devs: &[&str], key: &str) -> Vec<&'a Value> {
    rows.iter()
        .filter(|r| r[key].as_str().is_some_and(|d| devs.contains(&d)))
        .collect()
}

/// Sums `fields` of `rows` per value of `key`, dropping all-zero groups.
fn sums(rows: &[&Value], key: &str, fields: &[&str]) -> BTreeMap<String, Vec<f64>> {
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in rows {
        let e = out
            .entry(r[key].as_str().unwrap_or_default().to_string())
            .or_insert_with(|| vec![0.0; fields.len()]);
        for (i, f) in fields.iter().enumerate() {
            e[i] += r[*f].as_f64().unwrap_or(0.0);
        }
    }
    out.retain(|_, v| v.iter().any(|x| *x != 0.0));
    out
}

fn same_sums(a: &BTreeMap<String, Vec<f64>>, b: &BTreeMap<String, Vec<f64>>, what: &str) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}"
    );
    for (k, x) in a {
        for (i, (p, q)) in x.iter().zip(&b[k]).enumerate() {
            // Each side sums values rounded to 6 decimals (money) in replies.
            assert!(
                (p - q).abs() <= 1e-5 + 1e-9 * q.abs(),
                "{what} {k} field {i}: {p} vs {q}"
            );
        }
    }
}

async fn rows(ctx: &ToolContext, p: &Principal, tool: &str, args: Value) -> Vec<Value> {
    let r = call_tool(ctx, p, tool, args).await;
    assert!(!r.is_error, "{tool}: {}", r.text);
    r.structured["rows"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_bound_token_sees_exactly_the_unrestricted_answer_for_its_developers() {
    let (ctx, _) = generated_ctx();
    let all = principal(Scope::Read, &[]);
    let range = json!({"since": ALL, "limit": 1000});
    let with = |extra: Value| {
        let mut a = range.clone();
        for (k, v) in extra.as_object().unwrap() {
            a[k] = v.clone();
        }
        a
    };
    let cost_all = rows(&ctx, &all, "cost_by_developer", range.clone()).await;
    let series_args = with(json!({"bucket": "day", "split_by": "developer"}));
    let series_all = collect_all(&ctx, &all, "usage_over_time", series_args.clone()).await;
    let sessions_all = collect_all(&ctx, &all, "list_sessions", range.clone()).await;
    let events_all = collect_all(&ctx, &all, "search_events", range.clone()).await;
    let describe_all = call_tool(&ctx, &all, "describe_data", json!({"since": ALL})).await;
    let devs_all = describe_all.structured["developers"]
        .as_array()
        .unwrap()
        .clone();
    // Per developer, through the unrestricted token's developer filter.
    let mut models = BTreeMap::new();
    let mut tools = BTreeMap::new();
    let mut files = BTreeMap::new();
    for d in DEVS {
        let a = with(json!({"developer": d}));
        models.insert(d, rows(&ctx, &all, "model_breakdown", a.clone()).await);
        tools.insert(d, rows(&ctx, &all, "tool_latency", a.clone()).await);
        files.insert(d, rows(&ctx, &all, "top_edited_files", a).await);
    }
    // The data set exercises every tool for every developer.
    assert!(DEVS.iter().all(|d| !models[d].is_empty()));
    assert!(sessions_all.len() > 5 && events_all.len() > 50);

    let money = ["cost_usd", "input_tokens", "output_tokens", "requests"];
    for devs in subsets() {
        let p = principal(Scope::Read, &devs);
        let what = format!("{devs:?}");
        // Rows keyed by developer: the same rows, in the same order.
        let got = rows(&ctx, &p, "cost_by_developer", range.clone()).await;
        let want: Vec<Value> = of(&cost_all, &devs, "developer")
            .into_iter()
            .cloned()
            .collect();
        assert_eq!(got, want, "cost_by_developer {what}");
        let got = collect_all(&ctx, &p, "usage_over_time", series_args.clone()).await;
        let want: Vec<Value> = of(&series_all, &devs, "key").into_iter().cloned().collect();
        assert_eq!(got, want, "usage_over_time {what}");
        let got = collect_all(&ctx, &p, "list_sessions", range.clone()).await;
        let want: Vec<Value> = of(&sessions_all, &devs, "developer")
            .into_iter()
            .cloned()
            .collect();
        assert_eq!(got, want, "list_sessions {what}");
        let got = collect_all(&ctx, &p, "search_events", range.clone()).await;
        let want: Vec<Value> = of(&events_all, &devs, "developer")
            .into_iter()
            .cloned()
            .collect();
        assert_eq!(got, want, "search_events {what}");
        let r = call_tool(&ctx, &p, "describe_data", json!({"since": ALL})).await;
        let want: Vec<Value> = of(&devs_all, &devs, "developer")
            .into_iter()
            .cloned()
            .collect();
        assert_eq!(
            r.structured["developers"],
            json!(want),
            "describe_data {what}"
        );

        // Rows keyed by model, tool or file: the sums over its developers.
        let got = rows(&ctx, &p, "model_breakdown", range.clone()).await;
        let want: Vec<&Value> = devs.iter().flat_map(|d| models[d].iter()).collect();
        same_sums(
            &sums(&got.iter().collect::<Vec<_>>(), "model", &money),
            &sums(&want, "model", &money),
            &format!("model_breakdown {what}"),
        );
        let got = rows(&ctx, &p, "tool_latency", range.clone()).await;
        let want: Vec<&Value> = devs.iter().flat_map(|d| tools[d].iter()).collect();
        same_sums(
            &sums(
                &got.iter().collect::<Vec<_>>(),
                "tool_name",
                &["calls", "failures"],
            ),
            &sums(&want, "tool_name", &["calls", "failures"]),
            &format!("tool_latency {what}"),
        );
        let got = rows(&ctx, &p, "top_edited_files", range.clone()).await;
        let want: Vec<&Value> = devs.iter().flat_map(|d| files[d].iter()).collect();
        let fields = ["edits", "accepted", "rejected"];
        same_sums(
            &sums(&got.iter().collect::<Vec<_>>(), "file_path", &fields),
            &sums(&want, "file_path", &fields),
            &format!("top_edited_files {what}"),
        );
        if let [d] = devs[..] {
            // One developer: every answer equals the developer filter's, percentiles included.
            assert_eq!(
                rows(&ctx, &p, "model_breakdown", range.clone()).await,
                models[d]
            );
            assert_eq!(
                rows(&ctx, &p, "tool_latency", range.clone()).await,
                tools[d]
            );
            assert_eq!(
                rows(&ctx, &p, "top_edited_files", range.clone()).await,
                files[d]
            );
        }
        // A session's timeline: the same answer when its developer is visible, none otherwise.
        for s in sessions_all.iter().take(6) {
            let args = json!({"session_id": s["session_id"], "limit": 1000});
            let mine = s["developer"].as_str().is_some_and(|d| devs.contains(&d));
            let got = call_tool(&ctx, &p, "session_timeline", args.clone()).await;
            assert_eq!(got.is_error, !mine, "session_timeline {what}: {}", got.text);
            if mine {
                let want = call_tool(&ctx, &all, "session_timeline", args).await;
                assert_eq!(got.structured["rows"], want.structured["rows"]);
                assert_eq!(got.structured["session"], want.structured["session"]);
            }
        }
    }
}

//! Tests of cost_by_developer, usage_over_time and describe_data.

use super::*;

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
    assert!(close_usd(
        r.structured["totals"]["cost_usd"].as_f64().unwrap(),
        expected
    ));
    assert_eq!(
        r.structured["range"]["since"],
        "2026-11-01T00:00:00.000+00:00"
    );
    assert!(r.text.contains("(the agents' own estimates)"), "{}", r.text);
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
                close_usd(r["cost_usd"].as_f64().unwrap(), cost),
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
        json!({"timezone": "Europe/Berlin", "since": "2026-11-21", "until": "2026-11-22"}),
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
            assert!(close_usd(gc, *c), "{split} {k:?}");
            assert_eq!(gn, *n, "{split} {k:?}");
        }
    }
}

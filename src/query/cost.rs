//! `cost_by_developer`: cost, tokens, requests, sessions, prompts and active
//! days per developer, sorted by cost, with totals.

use std::collections::{BTreeMap, BTreeSet};

use super::filter::{Filter, Sql, int};
use super::plan;
use super::time::TimeRange;
use super::usage::{self, Dim, Usage};
use super::{HOUR_NS, QueryError};

/// One developer's usage in the range.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct DeveloperCost {
    /// Developer identity (email, else account uuid, else anonymous user id).
    pub developer: Option<String>,
    /// Which identity `developer` is: `email`, `account_uuid`, `user_id`,
    /// or for agents that send no user `account_id`, `installation_id`,
    /// `host`, `mapped` (the operator's identity map).
    pub developer_kind: Option<String>,
    /// The coding agents the usage came from (`claude_code`, `codex`,
    /// `gemini_cli`, `opencode`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<String>,
    /// Cost in USD: the agent's own estimate where it sends one (Claude
    /// Code), else computed from the tokens and the price table.
    pub cost_usd: f64,
    /// The part of `cost_usd` the agents reported.
    pub reported_cost_usd: f64,
    /// What the price table gives for the same requests (typed from
    /// events), reported or not: a cross-check of the reported cost, and the
    /// cost of agents that report none.
    pub computed_cost_usd: f64,
    /// Requests counted without any cost: no reported cost and no price
    /// for the model (see `unpriced_models`).
    #[serde(default, skip_serializing_if = "super::is_zero_count")]
    pub unpriced_requests: i64,
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cache read tokens.
    pub cache_read_tokens: i64,
    /// Cache creation tokens.
    pub cache_creation_tokens: i64,
    /// The reasoning part of the output tokens (where the agent reports it).
    #[serde(default, skip_serializing_if = "super::is_zero_count")]
    pub reasoning_tokens: i64,
    /// API requests (`api_request` events; 0 for metrics-only sessions).
    pub api_requests: i64,
    /// API errors (`api_error` events).
    pub api_errors: i64,
    /// Sessions with usage in the range.
    pub sessions: i64,
    /// Prompts (`user_prompt` events) in the range.
    pub prompts: i64,
    /// Days (in the requested time zone) with usage.
    pub active_days: i64,
    /// Where the numbers came from: `events`, `metrics` or `events+metrics`
    /// (different sessions; never both for one session).
    pub source: String,
}

/// The whole answer before paging.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CostByDeveloper {
    /// Developers, most expensive first (ties by developer).
    pub developers: Vec<DeveloperCost>,
    /// Sums over all developers (not only one page).
    pub totals: DeveloperCost,
    /// Which sources the numbers came from.
    pub sources: usage::Sources,
    /// Models of requests counted without a cost (no reported cost, no price).
    pub unpriced_models: Vec<String>,
}

/// Label for a group's sources.
pub fn source_label(u: &Usage) -> String {
    u.sources.label().to_string()
}

/// `user_prompt` events per developer in the range: whole hours from
/// `prompt_hourly`, the partial edge hours (or the whole range, under
/// event-level filters) from raw events.
pub fn prompts_by_developer(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    f: &Filter,
) -> Result<BTreeMap<Option<String>, i64>, QueryError> {
    let seg = plan::segments(range, f.needs_raw());
    let mut parts = Vec::new();
    if let Some((hs, he)) = seg.rollup_hours {
        let mut sql = Sql::default();
        sql.bind(
            "SELECT c.developer, SUM(p.prompts) FROM prompt_hourly p \
             JOIN contexts c ON c.id = p.context_id WHERE p.hour >= ? AND p.hour < ?",
            [int(hs), int(he)],
        );
        f.context_conditions(&mut sql);
        sql.push(" GROUP BY c.developer");
        parts.push(sql);
    }
    parts.extend(seg.raw.iter().map(|&(from, to)| raw_prompts(from, to, f)));
    let mut out = BTreeMap::new();
    for sql in parts {
        let mut stmt = conn.prepare(&sql.text)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(sql.params.iter()), |r| {
            Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?))
        })?;
        for r in rows {
            let (d, n) = r?;
            *out.entry(d).or_insert(0) += n;
        }
    }
    Ok(out)
}

/// `user_prompt` events per developer in `[from, to)` from raw events.
fn raw_prompts(from: i64, to: i64, f: &Filter) -> Sql {
    let mut sql = Sql::default();
    sql.bind(
        "SELECT c.developer, COUNT(*) FROM events e JOIN contexts c ON c.id = e.context_id \
         WHERE e.time_ns >= ? AND e.time_ns < ? AND e.event_name = 'user_prompt'",
        [int(from), int(to)],
    );
    f.context_conditions(&mut sql);
    f.event_only_conditions(&mut sql);
    sql.push(" GROUP BY c.developer");
    sql
}

/// The local date (in the range's zone) of the start of a UTC hour.
pub fn local_date_of_hour(hour: i64, range: &TimeRange) -> Option<jiff::civil::Date> {
    let ts = jiff::Timestamp::from_nanosecond((hour * HOUR_NS) as i128).ok()?;
    Some(ts.to_zoned(range.tz.clone()).date())
}

fn key_str(v: &serde_json::Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// Adds one group's usage to a developer's row.
fn add_usage(e: &mut DeveloperCost, u: &Usage) {
    e.cost_usd += u.cost_usd;
    e.reported_cost_usd += u.reported_cost_usd;
    e.computed_cost_usd += u.computed_cost_usd;
    e.unpriced_requests += u.unpriced_requests;
    e.input_tokens += u.input_tokens;
    e.output_tokens += u.output_tokens;
    e.cache_read_tokens += u.cache_read_tokens;
    e.cache_creation_tokens += u.cache_creation_tokens;
    e.reasoning_tokens += u.reasoning_tokens;
}

/// The usage groups the answer is folded from: one pass by developer and
/// hour (sums add up over hours, active days are the hours' local dates,
/// sessions the union of the hours' sessions).
pub const GROUPS: [Dim; 4] = [Dim::Developer, Dim::DeveloperKind, Dim::Hour, Dim::Agent];

/// Runs the question.
pub fn cost_by_developer(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    f: &Filter,
) -> Result<CostByDeveloper, QueryError> {
    let groups = usage::grouped_with_sessions(conn, range, f, &GROUPS)?;
    let prompts = prompts_by_developer(conn, range, f)?;
    let mut out = fold(groups, &prompts, range);
    if out.totals.unpriced_requests > 0 {
        out.unpriced_models = usage::unpriced_models(conn, range, f)?;
    }
    Ok(out)
}

/// The answer from the usage groups by [`GROUPS`] (with their sessions)
/// and the prompts per developer, whichever engine counted them; the
/// caller adds `unpriced_models` when `totals.unpriced_requests > 0`.
pub fn fold(
    groups: Vec<usage::UsageGroup>,
    prompts: &BTreeMap<Option<String>, i64>,
    range: &TimeRange,
) -> CostByDeveloper {
    let mut days: BTreeMap<Option<String>, BTreeSet<jiff::civil::Date>> = BTreeMap::new();
    let mut sessions: BTreeMap<Option<String>, BTreeSet<i64>> = BTreeMap::new();
    let mut out = CostByDeveloper::default();
    let mut by_dev: BTreeMap<Option<String>, DeveloperCost> = BTreeMap::new();
    let mut agents: BTreeMap<Option<String>, BTreeSet<String>> = BTreeMap::new();
    for g in groups {
        let dev = g.keys.first().and_then(key_str);
        let kind = g.keys.get(1).and_then(key_str);
        if let Some(a) = g.keys.get(3).and_then(key_str) {
            agents.entry(dev.clone()).or_default().insert(a);
        }
        if let Some(h) = g.keys.get(2).and_then(|v| v.as_i64())
            && let Some(d) = local_date_of_hour(h, range)
        {
            days.entry(dev.clone()).or_default().insert(d);
        }
        sessions
            .entry(dev.clone())
            .or_default()
            .extend(g.session_refs.iter().copied());
        let u = &g.usage;
        out.sources.add(u);
        let e = by_dev.entry(dev.clone()).or_insert_with(|| DeveloperCost {
            developer: dev.clone(),
            developer_kind: kind.clone(),
            ..Default::default()
        });
        add_usage(e, u);
        e.api_requests += u.requests;
        e.api_errors += u.errors;
        let label = source_label(u);
        e.source = if e.source.is_empty() || e.source == label {
            label
        } else {
            "events+metrics".to_string()
        };
    }
    for (dev, e) in by_dev.iter_mut() {
        e.sessions = sessions.get(dev).map(|s| s.len() as i64).unwrap_or(0);
    }
    for (dev, e) in by_dev.iter_mut() {
        e.agents = agents.remove(dev).unwrap_or_default().into_iter().collect();
        e.prompts = prompts.get(dev).copied().unwrap_or(0);
        e.active_days = days.get(dev).map(|s| s.len() as i64).unwrap_or(0);
    }
    let mut devs: Vec<DeveloperCost> = by_dev.into_values().collect();
    devs.sort_by(|a, b| {
        b.cost_usd
            .partial_cmp(&a.cost_usd)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.developer.cmp(&b.developer))
    });
    let t = &mut out.totals;
    let mut all_agents = BTreeSet::new();
    for d in &devs {
        t.cost_usd += d.cost_usd;
        t.reported_cost_usd += d.reported_cost_usd;
        t.computed_cost_usd += d.computed_cost_usd;
        t.unpriced_requests += d.unpriced_requests;
        t.input_tokens += d.input_tokens;
        t.output_tokens += d.output_tokens;
        t.cache_read_tokens += d.cache_read_tokens;
        t.cache_creation_tokens += d.cache_creation_tokens;
        t.reasoning_tokens += d.reasoning_tokens;
        t.api_requests += d.api_requests;
        t.api_errors += d.api_errors;
        t.sessions += d.sessions;
        t.prompts += d.prompts;
        all_agents.extend(d.agents.iter().cloned());
    }
    t.agents = all_agents.into_iter().collect();
    let all_days: BTreeSet<jiff::civil::Date> = days.values().flatten().copied().collect();
    t.active_days = all_days.len() as i64;
    t.source = out.sources.label().to_string();
    out.developers = devs;
    out
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::query::fixture::generated::{self, DAY_NS, START_NS};
    use crate::query::fixture::{Fx, capture, close, utc};
    use crate::query::usage::grouped_with;
    use crate::query::visible::testing::visible;

    #[derive(Default, Debug)]
    struct Exp {
        cost: f64,
        input: i64,
        output: i64,
        cache_read: i64,
        cache_creation: i64,
        requests: i64,
        errors: i64,
        sessions: BTreeSet<String>,
        prompts: i64,
        days: BTreeSet<i64>,
    }

    /// Expected per developer, computed by iterating over generated records.
    fn expected(
        ds: &generated::Dataset,
        since: i64,
        until: i64,
        keep: impl Fn(&str) -> bool,
    ) -> BTreeMap<String, Exp> {
        let mut out: BTreeMap<String, Exp> = BTreeMap::new();
        for r in &ds.records {
            let e = &r.ev;
            if e.time_ns < since || e.time_ns >= until || !keep(&r.developer) {
                continue;
            }
            let x = out.entry(r.developer.clone()).or_default();
            match e.event_name.as_str() {
                "api_request" => {
                    x.cost += e.cost_usd.unwrap();
                    x.input += e.input_tokens.unwrap();
                    x.output += e.output_tokens.unwrap();
                    x.cache_read += e.cache_read_tokens.unwrap();
                    x.cache_creation += e.cache_creation_tokens.unwrap();
                    x.requests += 1;
                }
                "api_error" => x.errors += 1,
                "user_prompt" => {
                    x.prompts += 1;
                    continue;
                }
                _ => continue,
            }
            x.sessions.insert(r.session_id.clone());
            x.days.insert(e.time_ns.div_euclid(DAY_NS));
        }
        for m in &ds.metrics {
            if !ds.metrics_only_sessions.contains(&m.session_id)
                || m.time_ns < since
                || m.time_ns >= until
                || !keep(&m.developer)
            {
                continue;
            }
            let x = out.entry(m.developer.clone()).or_default();
            match (m.name, m.kind_attr) {
                ("claude_code.cost.usage", _) => x.cost += m.value,
                (_, Some("input")) => x.input += m.value as i64,
                (_, Some("output")) => x.output += m.value as i64,
                (_, Some("cacheRead")) => x.cache_read += m.value as i64,
                (_, Some("cacheCreation")) => x.cache_creation += m.value as i64,
                _ => {}
            }
            x.sessions.insert(m.session_id.clone());
            x.days.insert(m.time_ns.div_euclid(DAY_NS));
        }
        out
    }

    fn check(got: &CostByDeveloper, exp: &BTreeMap<String, Exp>) {
        let with_usage: Vec<_> = exp
            .iter()
            .filter(|(_, e)| e.requests + e.errors > 0 || e.cost > 0.0)
            .collect();
        assert_eq!(got.developers.len(), with_usage.len(), "{got:#?}");
        for (dev, e) in with_usage {
            let g = got
                .developers
                .iter()
                .find(|d| d.developer.as_deref() == Some(dev))
                .unwrap();
            assert!(
                close(g.cost_usd, e.cost),
                "{dev}: {} vs {}",
                g.cost_usd,
                e.cost
            );
            assert_eq!(
                (
                    g.input_tokens,
                    g.output_tokens,
                    g.cache_read_tokens,
                    g.cache_creation_tokens
                ),
                (e.input, e.output, e.cache_read, e.cache_creation),
                "{dev}"
            );
            assert_eq!(
                (g.api_requests, g.api_errors, g.prompts),
                (e.requests, e.errors, e.prompts),
                "{dev}"
            );
            assert_eq!(g.sessions, e.sessions.len() as i64, "{dev}");
            assert_eq!(g.active_days, e.days.len() as i64, "{dev}");
        }
        let total: f64 = exp.values().map(|e| e.cost).sum();
        assert!(close(got.totals.cost_usd, total));
        for w in got.developers.windows(2) {
            assert!(w[0].cost_usd >= w[1].cost_usd);
        }
    }

    #[test]
    fn generated_full_range_and_partial_edges() {
        let ds = generated::build();
        let conn = &ds.fx.conn;
        let f = Filter::new(visible(&[]));
        for (since, until) in [
            (START_NS, START_NS + 11 * DAY_NS),
            (
                START_NS + 2 * DAY_NS + 17 * 60_000_000_000 + 3_000_000_123,
                START_NS + 7 * DAY_NS + 5 * HOUR_NS + 41 * 60_000_000_000,
            ),
            (
                START_NS + 3 * DAY_NS + 10 * 60_000_000_000,
                START_NS + 3 * DAY_NS + 50 * 60_000_000_000,
            ),
        ] {
            let got = cost_by_developer(conn, &utc(since, until), &f).unwrap();
            check(&got, &expected(&ds, since, until, |_| true));
            // The rollup path and the raw path agree.
            let dims = [Dim::Developer, Dim::Model];
            let mut a = grouped_with(conn, &utc(since, until), &f, &dims, false).unwrap();
            let mut b = grouped_with(conn, &utc(since, until), &f, &dims, true).unwrap();
            a.sort_by(|x, y| format!("{:?}", x.keys).cmp(&format!("{:?}", y.keys)));
            b.sort_by(|x, y| format!("{:?}", x.keys).cmp(&format!("{:?}", y.keys)));
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x.keys, y.keys);
                assert!(close(x.usage.cost_usd, y.usage.cost_usd));
                assert_eq!(x.usage.input_tokens, y.usage.input_tokens);
                assert_eq!(x.usage.requests, y.usage.requests);
            }
        }
    }

    /// A generated team (many short sessions, metrics-only sessions,
    /// records without session ids): cost and tokens per developer equal
    /// the rule restated over the generated rows: events where a session
    /// has api_requests, its metrics where it has none, and a sessionless
    /// point only in hours (and the hour after) where its developer sent no
    /// api_request.
    #[test]
    fn a_generated_team_counts_each_request_once() {
        use crate::demo::{Generator, Plan};
        let end = START_NS + 12 * DAY_NS;
        let sessions: Vec<_> = Generator::new(Plan {
            developers: 30,
            days: 4,
            ..Plan::team(6_000, end)
        })
        .collect();
        let mut fx = Fx::new();
        fx.ingest_demo(&sessions);
        let h = HOUR_NS;
        let busy: BTreeSet<(String, i64)> = sessions
            .iter()
            .flat_map(|s| &s.events)
            .filter(|e| e.event_name == "api_request")
            .map(|e| (e.developer.clone(), e.time_ns.div_euclid(h)))
            .collect();
        let ranges = [
            (end - 4 * DAY_NS, end),
            (end - 3 * DAY_NS + 7 * h + 123, end - DAY_NS + 5 * h + 77),
        ];
        let mut sessionless_counted = false;
        for (since, until) in ranges {
            let mut want: BTreeMap<String, (f64, i64, i64)> = BTreeMap::new();
            for s in &sessions {
                let from_events = s.events.iter().any(|e| e.event_name == "api_request");
                let sessionless = s.points.first().is_some_and(|p| p.session_id.is_empty());
                for e in &s.events {
                    if e.event_name == "api_request" && e.time_ns >= since && e.time_ns < until {
                        let w = want.entry(e.developer.clone()).or_default();
                        w.0 += e.cost_usd;
                        w.1 += e.input_tokens;
                        w.2 += 1;
                    }
                }
                if from_events && !sessionless {
                    continue;
                }
                for p in &s.points {
                    let hour = p.time_ns.div_euclid(h);
                    if p.time_ns < since
                        || p.time_ns >= until
                        || (sessionless
                            && (busy.contains(&(p.developer.clone(), hour))
                                || busy.contains(&(p.developer.clone(), hour - 1))))
                    {
                        continue;
                    }
                    sessionless_counted |= sessionless;
                    let w = want.entry(p.developer.clone()).or_default();
                    match (p.name, p.kind) {
                        ("claude_code.cost.usage", _) => w.0 += p.value,
                        (_, "input") => w.1 += p.value as i64,
                        _ => {}
                    }
                }
            }
            let got = cost_by_developer(&fx.conn, &utc(since, until), &Filter::new(visible(&[])))
                .unwrap();
            let got: BTreeMap<String, (f64, i64, i64)> = got
                .developers
                .iter()
                .map(|d| {
                    (
                        d.developer.clone().unwrap(),
                        (d.cost_usd, d.input_tokens, d.api_requests),
                    )
                })
                .collect();
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                want.keys().collect::<Vec<_>>()
            );
            for (dev, w) in &want {
                let g = got[dev];
                assert!(close(g.0, w.0), "{dev}: cost {} vs {}", g.0, w.0);
                assert_eq!((g.1, g.2), (w.1, w.2), "{dev}: input tokens, requests");
            }
        }
        assert!(
            sessionless_counted,
            "the data must exercise the sessionless rule"
        );
    }

    #[test]
    fn metrics_only_sessions_count_once_and_say_so() {
        let ds = generated::build();
        let got = cost_by_developer(
            &ds.fx.conn,
            &utc(START_NS, START_NS + 11 * DAY_NS),
            &Filter::new(visible(&[])),
        )
        .unwrap();
        assert!(got.sources.events && got.sources.metrics);
        let anon = got
            .developers
            .iter()
            .find(|d| d.developer.as_deref() == Some("9c1e4b2a77f0anon"))
            .unwrap();
        assert_eq!(anon.developer_kind.as_deref(), Some("user_id"));
        assert_eq!(anon.source, "events+metrics");
        let dave = got
            .developers
            .iter()
            .find(|d| d.developer.as_deref() == Some("7f3a9c1e-acct-dave"))
            .unwrap();
        assert_eq!(dave.developer_kind.as_deref(), Some("account_uuid"));
        assert_eq!(dave.source, "events");
    }

    #[test]
    fn restriction_and_team_filters() {
        let ds = generated::build();
        let r = utc(START_NS, START_NS + 11 * DAY_NS);
        let f = Filter {
            ..Filter::new(visible(&["bob@example.com"]))
        };
        let got = cost_by_developer(&ds.fx.conn, &r, &f).unwrap();
        check(
            &got,
            &expected(&ds, r.since_ns, r.until_ns, |d| d == "bob@example.com"),
        );
        // Asking for another developer under a restriction gives nothing.
        let f = Filter {
            developer: Some("alice@example.com".into()),
            ..Filter::new(visible(&["bob@example.com"]))
        };
        assert!(
            cost_by_developer(&ds.fx.conn, &r, &f)
                .unwrap()
                .developers
                .is_empty()
        );
        let f = Filter {
            team: Some("web".into()),
            ..Filter::new(visible(&[]))
        };
        let got = cost_by_developer(&ds.fx.conn, &r, &f).unwrap();
        check(
            &got,
            &expected(&ds, r.since_ns, r.until_ns, |d| {
                d == "carol@example.com" || d == "7f3a9c1e-acct-dave"
            }),
        );
        let f = Filter {
            attribute: Some(("department".into(), "'; DROP TABLE events; --".into())),
            ..Filter::new(visible(&[]))
        };
        assert!(
            cost_by_developer(&ds.fx.conn, &r, &f)
                .unwrap()
                .developers
                .is_empty()
        );
        let n: i64 = ds
            .fx
            .conn
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n as usize, ds.records.len());
    }

    #[test]
    fn capture_uses_events_not_metrics() {
        let mut fx = Fx::new();
        let events = capture::load(&mut fx);
        let api: Vec<_> = events
            .iter()
            .filter(|e| e.event_name == "api_request")
            .collect();
        let cost: f64 = api.iter().map(|e| e.cost_usd.unwrap()).sum();
        let got = cost_by_developer(
            &fx.conn,
            &utc(0, 1_900_000_000_000_000_000),
            &Filter::new(visible(&[])),
        )
        .unwrap();
        assert_eq!(got.developers.len(), 1);
        let d = &got.developers[0];
        assert_eq!(d.developer.as_deref(), Some(capture::USER_ID));
        assert_eq!(d.developer_kind.as_deref(), Some("user_id"));
        assert_eq!(d.api_requests, 7);
        assert!(close(d.cost_usd, cost));
        assert!(close(d.cost_usd, 7.0 * 0.000976));
        assert_eq!(d.input_tokens, 7 * 120);
        assert_eq!(d.prompts, 1);
        assert_eq!(d.sessions, 1);
        assert_eq!(d.source, "events");
    }
}

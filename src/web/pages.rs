//! The pages: each asks the tool registry (the same calls, arguments and
//! visibility as MCP and the CLI; every call audited) and lays the answers
//! out. No number is computed here that a tool did not answer, except sums
//! of a tool's own rows for a chart.

use std::collections::BTreeMap;
use std::sync::Arc;

use maud::{Markup, html};
use serde_json::{Map, Value, json};

use super::params::Params;
use super::view::{
    self, Kind, SortLinks, bars, col, count, filters, link_col, money, next_page, notes,
    range_line, stacked, stat, stat_vs, table,
};
use crate::audit::{AuditError, AuditReader, AuditSink, Caller, Outcome};
use crate::auth::Principal;
use crate::mcp::Registry;

/// The filters of the usage pages.
const USAGE_FILTERS: &[&str] = &[
    "since",
    "until",
    "timezone",
    "developer",
    "team",
    "model",
    "repository",
    "agent",
];

/// Pages pull at most this many pages of one answer (for charts that need
/// every row of a series).
const MAX_PAGES: usize = 20;

/// One tool call a page made: what it was labelled, the tool, its
/// arguments and the answer (the tool's structured reply).
pub struct Answered {
    /// What the page used it for.
    pub label: String,
    /// Tool name.
    pub tool: &'static str,
    /// Arguments sent.
    pub arguments: Value,
    /// The structured answer.
    pub answer: Value,
}

/// Asks tools for one page view, as `principal`, auditing every call.
pub struct Ask<'a> {
    registry: &'a Registry,
    audit: &'a Arc<dyn AuditSink>,
    principal: &'a Principal,
    caller: Caller,
    /// Every answer, in the order asked (the page's JSON form).
    pub answers: Vec<Answered>,
    /// The most serious refusal among the calls, if any.
    pub worst: Option<Outcome>,
}

impl<'a> Ask<'a> {
    /// Asks on behalf of `principal`; `caller` goes into every audit record.
    pub fn new(
        registry: &'a Registry,
        audit: &'a Arc<dyn AuditSink>,
        principal: &'a Principal,
        caller: Caller,
    ) -> Ask<'a> {
        Ask {
            registry,
            audit,
            principal,
            caller,
            answers: Vec::new(),
            worst: None,
        }
    }

    /// The caller's principal.
    pub fn principal(&self) -> &Principal {
        self.principal
    }

    /// The audit log the registry reads, if this surface has it.
    pub fn audit_log(&self) -> Option<Arc<dyn AuditReader>> {
        self.registry.audit_log.clone()
    }

    /// One tool call; a tool error comes back as the `{"error": ...}`
    /// answer. Fails only when the audit record cannot be written.
    pub async fn tool(
        &mut self,
        label: &str,
        tool: &'static str,
        args: Map<String, Value>,
    ) -> Result<Value, AuditError> {
        let registry = self.registry;
        let arguments = Value::Object(args);
        let reply = crate::mcp::audit::audited(
            self.audit,
            Some(self.principal),
            tool,
            arguments.clone(),
            self.caller.clone(),
            |p, name, a| async move { registry.call(&p, &name, a).await },
        )
        .await?;
        if reply.is_error {
            self.worst = Some(match self.worst {
                Some(w) if severity(w) >= severity(reply.outcome) => w,
                _ => reply.outcome,
            });
        }
        self.answers.push(Answered {
            label: label.to_string(),
            tool,
            arguments,
            answer: reply.structured.clone(),
        });
        Ok(reply.structured)
    }

    /// A tool call followed through its cursors, rows concatenated (at most
    /// [`MAX_PAGES`] pages; `truncated` stays true past that).
    pub async fn all_rows(
        &mut self,
        label: &str,
        tool: &'static str,
        args: Map<String, Value>,
    ) -> Result<Value, AuditError> {
        let mut first = self.tool(label, tool, args.clone()).await?;
        for _ in 1..MAX_PAGES {
            let Some(cursor) = first["next_cursor"].as_str().map(str::to_owned) else {
                break;
            };
            let mut next_args = args.clone();
            next_args.insert("cursor".into(), Value::String(cursor));
            let next = self.tool(label, tool, next_args).await?;
            if next.get("error").is_some() {
                break;
            }
            if let (Some(rows), Some(more)) =
                (first["rows"].as_array_mut(), next["rows"].as_array())
            {
                rows.extend(more.iter().cloned());
            }
            first["next_cursor"] = next["next_cursor"].clone();
            first["truncated"] = next["truncated"].clone();
        }
        Ok(first)
    }

    /// The page's JSON form: every tool answer it rendered.
    pub fn json(&self, page: &str) -> Value {
        json!({
            "page": page,
            "answers": self.answers.iter().map(|a| json!({
                "label": a.label,
                "tool": a.tool,
                "arguments": a.arguments,
                "answer": a.answer,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Which refusal decides a page's status when several calls failed.
fn severity(o: Outcome) -> u8 {
    match o {
        Outcome::Ok => 0,
        Outcome::ToolError => 1,
        Outcome::TimedOut => 2,
        Outcome::RateLimited => 3,
        Outcome::Failed => 4,
        Outcome::Forbidden => 5,
        Outcome::Unauthenticated => 6,
    }
}

/// A page: its path name, title, and whether it needs the audit scope.
pub struct PageDef {
    /// Path under `/ui/`.
    pub name: &'static str,
    /// Title (never data: titles end up in history and tab lists).
    pub title: &'static str,
    /// Needs an audit-scope token.
    pub audit_only: bool,
}

/// Every page.
pub const PAGES: &[PageDef] = &[
    PageDef {
        name: "overview",
        title: "Overview",
        audit_only: false,
    },
    PageDef {
        name: "developers",
        title: "Developers",
        audit_only: false,
    },
    PageDef {
        name: "developer",
        title: "Developer",
        audit_only: false,
    },
    PageDef {
        name: "sessions",
        title: "Sessions",
        audit_only: false,
    },
    PageDef {
        name: "session",
        title: "Session",
        audit_only: false,
    },
    PageDef {
        name: "files",
        title: "Files",
        audit_only: false,
    },
    PageDef {
        name: "tools",
        title: "Tools and latency",
        audit_only: false,
    },
    PageDef {
        name: "health",
        title: "Data health",
        audit_only: false,
    },
    PageDef {
        name: "report",
        title: "Report",
        audit_only: false,
    },
    PageDef {
        name: "audit",
        title: "Audit",
        audit_only: true,
    },
];

/// Finds a page by its path name.
pub fn find(name: &str) -> Option<&'static PageDef> {
    PAGES.iter().find(|p| p.name == name)
}

/// Renders page `name` (found with [`find`]).
pub async fn render(name: &str, ask: &mut Ask<'_>, p: &Params) -> Result<Markup, AuditError> {
    match name {
        "overview" => overview(ask, p).await,
        "developers" => developers(ask, p).await,
        "developer" => developer(ask, p).await,
        "sessions" => sessions(ask, p).await,
        "session" => session(ask, p).await,
        "files" => files(ask, p).await,
        "tools" => tools(ask, p).await,
        "health" => health(ask, p).await,
        "audit" => audit(ask, p).await,
        "report" => report(ask, p).await,
        _ => Ok(html! { p.error { "No such page." } }),
    }
}

fn limit(n: i64) -> (&'static str, Value) {
    ("limit", Value::from(n))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn total_tokens(t: &Value) -> f64 {
    [
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_creation_tokens",
    ]
    .iter()
    .map(|k| f(&t[*k]))
    .sum()
}

/// A link to one developer's page, keeping the time range.
fn developer_link(p: &Params, developer: &str) -> String {
    p.href(
        "/ui/developer",
        &["developer", "cursor", "sort", "dir", "sort_by"],
        &[("developer", developer)],
    )
}

/// A link to one session's timeline.
fn session_link(p: &Params, session: &str) -> String {
    p.href(
        "/ui/session",
        &["session_id", "cursor", "sort", "dir", "sort_by"],
        &[("session_id", session)],
    )
}

/// The list under `key` of an answer (empty when there is none).
fn list(answer: &Value, key: &str) -> Vec<Value> {
    answer[key].as_array().cloned().unwrap_or_default()
}

/// An answer's rows.
fn rows(answer: &Value) -> Vec<Value> {
    list(answer, "rows")
}

fn bar_items(rows: &[Value], label: &str, value: &str) -> Vec<(String, f64)> {
    rows.iter()
        .map(|r| {
            (
                r[label].as_str().unwrap_or("(none)").to_string(),
                f(&r[value]),
            )
        })
        .collect()
}

fn money_fmt(v: f64) -> String {
    money(v)
}

fn count_fmt(v: f64) -> String {
    count(v as i64)
}

/// Buckets and per-key series of a `usage_over_time` answer: the six keys
/// with the largest `value` total, the rest summed as "other".
fn series_by_key(rows: &[Value], value: &str) -> (Vec<String>, Vec<(String, Vec<f64>)>) {
    let buckets: Vec<String> = rows
        .iter()
        .filter_map(|r| r["bucket_start"].as_str().map(str::to_owned))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let index: BTreeMap<&str, usize> = buckets
        .iter()
        .enumerate()
        .map(|(i, b)| (b.as_str(), i))
        .collect();
    let mut by_key: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in rows {
        let key = r["key"].as_str().unwrap_or("(none)").to_string();
        if let Some(&i) = r["bucket_start"].as_str().and_then(|b| index.get(b)) {
            by_key
                .entry(key)
                .or_insert_with(|| vec![0.0; buckets.len()])[i] += f(&r[value]);
        }
    }
    let mut keys: Vec<(String, Vec<f64>)> = by_key.into_iter().collect();
    keys.sort_by(|a, b| b.1.iter().sum::<f64>().total_cmp(&a.1.iter().sum::<f64>()));
    if keys.len() > 7 {
        let rest = keys.split_off(6);
        let mut other = vec![0.0; buckets.len()];
        for (_, v) in rest {
            for (o, x) in other.iter_mut().zip(v) {
                *o += x;
            }
        }
        keys.push(("other".into(), other));
    }
    (buckets, keys)
}

/// Buckets and one series per token type, summed over the rows' keys.
fn token_series(rows: &[Value]) -> (Vec<String>, Vec<(String, Vec<f64>)>) {
    let kinds = [
        ("input", "input_tokens"),
        ("output", "output_tokens"),
        ("cache read", "cache_read_tokens"),
        ("cache creation", "cache_creation_tokens"),
    ];
    let (buckets, _) = series_by_key(rows, "cost_usd");
    let index: BTreeMap<&str, usize> = buckets
        .iter()
        .enumerate()
        .map(|(i, b)| (b.as_str(), i))
        .collect();
    let series = kinds
        .iter()
        .map(|(name, key)| {
            let mut v = vec![0.0; buckets.len()];
            for r in rows {
                if let Some(&i) = r["bucket_start"].as_str().and_then(|b| index.get(b)) {
                    v[i] += f(&r[*key]);
                }
            }
            (name.to_string(), v)
        })
        .collect();
    (buckets, series)
}

async fn overview(ask: &mut Ask<'_>, p: &Params) -> Result<Markup, AuditError> {
    let cost = ask
        .tool(
            "top developers and totals",
            "cost_by_developer",
            p.args_for("cost_by_developer", &[limit(10)]),
        )
        .await?;
    let previous =
        view::previous_range(&cost).map(|(s, u)| p.with("since", Some(&s)).with("until", Some(&u)));
    let total = |bucket: &'static str| [("bucket", Value::from(bucket)), limit(1)];
    let active = ask
        .tool(
            "active developers",
            "usage_over_time",
            p.args_for("usage_over_time", &total("total")),
        )
        .await?;
    let edits = ask
        .tool(
            "edit acceptance",
            "top_edited_files",
            p.args_for("top_edited_files", &[limit(1)]),
        )
        .await?;
    let mut before = (Value::Null, Value::Null, Value::Null);
    if let Some(pp) = &previous {
        before.0 = ask
            .tool(
                "totals of the previous period",
                "cost_by_developer",
                pp.args_for("cost_by_developer", &[limit(1)]),
            )
            .await?;
        before.1 = ask
            .tool(
                "active developers in the previous period",
                "usage_over_time",
                pp.args_for("usage_over_time", &total("total")),
            )
            .await?;
        before.2 = ask
            .tool(
                "edit acceptance in the previous period",
                "top_edited_files",
                pp.args_for("top_edited_files", &[limit(1)]),
            )
            .await?;
    }
    let daily = ask
        .all_rows(
            "daily cost and tokens by model",
            "usage_over_time",
            p.args_for(
                "usage_over_time",
                &[
                    ("bucket", Value::from("day")),
                    ("split_by", Value::from("model")),
                    limit(1000),
                ],
            ),
        )
        .await?;
    let models = ask
        .tool(
            "model mix",
            "model_breakdown",
            p.args_for("model_breakdown", &[limit(8)]),
        )
        .await?;
    let repos = ask
        .tool(
            "top repositories",
            "usage_over_time",
            p.args_for(
                "usage_over_time",
                &[
                    ("bucket", Value::from("total")),
                    ("split_by", Value::from("repository")),
                    limit(10),
                ],
            ),
        )
        .await?;
    let teams = ask
        .tool(
            "top teams",
            "usage_over_time",
            p.args_for(
                "usage_over_time",
                &[
                    ("bucket", Value::from("total")),
                    ("split_by", Value::from("team")),
                    limit(10),
                ],
            ),
        )
        .await?;

    let t = &cost["totals"];
    let tb = &before.0["totals"];
    let has_before = before.0.get("totals").is_some();
    let ch = |now: f64, was: f64| {
        if has_before {
            view::change(now, was)
        } else {
            None
        }
    };
    let active_now = f(&active["rows"][0]["active_developers"]);
    let active_before = f(&before.1["rows"][0]["active_developers"]);
    let acc = edits["acceptance_rate"].as_f64();
    let acc_before = before.2["acceptance_rate"].as_f64();
    let (buckets, by_model) = series_by_key(&rows(&daily), "cost_usd");
    let (_, tokens) = token_series(&rows(&daily));
    let repo_rows: Vec<Value> = rows(&repos)
        .into_iter()
        .filter(|r| !r["key"].is_null())
        .collect();
    let team_rows: Vec<Value> = rows(&teams)
        .into_iter()
        .filter(|r| !r["key"].is_null())
        .collect();
    Ok(html! {
        h1 { "Overview" }
        (filters("/ui/overview", p, USAGE_FILTERS, &[]))
        (range_line(&cost))
        (notes(&cost))
        section.stats aria-label="Headline numbers" {
            (stat_vs("Spend", &money(f(&t["cost_usd"])), ch(f(&t["cost_usd"]), f(&tb["cost_usd"]))))
            (stat_vs("Tokens", &count(total_tokens(t) as i64), ch(total_tokens(t), total_tokens(tb))))
            (stat_vs("Sessions", &count(f(&t["sessions"]) as i64), ch(f(&t["sessions"]), f(&tb["sessions"]))))
            (stat_vs("Active developers", &count(active_now as i64), ch(active_now, active_before)))
            (stat_vs("API errors", &count(f(&t["api_errors"]) as i64), ch(f(&t["api_errors"]), f(&tb["api_errors"]))))
            (stat_vs("Edit acceptance", &acc.map(view::percent).unwrap_or_else(|| "—".into()),
                match (acc, acc_before) { (Some(a), Some(b)) => view::change(a, b), _ => None }))
        }
        div.grid {
            (stacked("Cost per day by model", &buckets, &by_model, money_fmt))
            (stacked("Tokens per day by type", &buckets, &tokens, count_fmt))
            (bars("Model mix (cost)", &bar_items(&rows(&models), "model", "cost_usd"), money_fmt))
            (bars("Top developers (cost)", &bar_items(&rows(&cost), "developer", "cost_usd"), money_fmt))
            @if !repo_rows.is_empty() {
                (bars("Top repositories (cost)", &bar_items(&repo_rows, "key", "cost_usd"), money_fmt))
            }
            @if !team_rows.is_empty() {
                (bars("Top teams (cost)", &bar_items(&team_rows, "key", "cost_usd"), money_fmt))
            }
        }
        @if repo_rows.is_empty() && team_rows.is_empty() {
            p.note { "No repository or team attribute in this range: add e.g. OTEL_RESOURCE_ATTRIBUTES=team.id=platform to the agents' environment to break spend down by team." }
        }
        (table("Tokens by type", std::slice::from_ref(t), &[
            col("input_tokens", "Input", Kind::Count),
            col("output_tokens", "Output", Kind::Count),
            col("cache_read_tokens", "Cache read", Kind::Count),
            col("cache_creation_tokens", "Cache creation", Kind::Count),
            col("api_requests", "API requests", Kind::Count),
            col("prompts", "Prompts", Kind::Count),
        ], None))
    })
}

fn developer_cols(p: &Params) -> Vec<view::Col<'_>> {
    vec![
        link_col("developer", "Developer", Kind::Text, move |r| {
            r["developer"].as_str().map(|d| developer_link(p, d))
        }),
        col("agents", "Agents", Kind::List),
        col("cost_usd", "Cost", Kind::Money),
        col("api_requests", "API requests", Kind::Count),
        col("api_errors", "API errors", Kind::Count),
        col("input_tokens", "Input tokens", Kind::Count),
        col("output_tokens", "Output tokens", Kind::Count),
        col("cache_read_tokens", "Cache read", Kind::Count),
        col("sessions", "Sessions", Kind::Count),
        col("prompts", "Prompts", Kind::Count),
        col("active_days", "Active days", Kind::Count),
    ]
}

async fn developers(ask: &mut Ask<'_>, p: &Params) -> Result<Markup, AuditError> {
    let cost = ask
        .all_rows(
            "developers",
            "cost_by_developer",
            p.args_for("cost_by_developer", &[limit(1000)]),
        )
        .await?;
    let mut list = rows(&cost);
    let sort = SortLinks {
        base: p.link("/ui/developers", &["sort", "dir"]),
        key: p.get("sort").unwrap_or("cost_usd").to_string(),
        desc: p.get("dir") != Some("asc"),
    };
    sort.apply(&mut list);
    Ok(html! {
        h1 { "Developers" }
        (filters("/ui/developers", p, USAGE_FILTERS, &["sort", "dir"]))
        (range_line(&cost))
        (notes(&cost))
        p { (list.len()) " developer(s), " (money(f(&cost["totals"]["cost_usd"]))) " in all." }
        (table("Cost by developer", &list, &developer_cols(p), Some(&sort)))
    })
}

async fn developer(ask: &mut Ask<'_>, p: &Params) -> Result<Markup, AuditError> {
    let Some(dev) = p.get("developer") else {
        return Ok(html! {
            h1 { "Developer" }
            p.error { "Choose a developer on the Developers page (this page needs ?developer=)." }
        });
    };
    let cost = ask
        .tool(
            "totals",
            "cost_by_developer",
            p.args_for("cost_by_developer", &[limit(1)]),
        )
        .await?;
    let models = ask
        .tool(
            "model mix",
            "model_breakdown",
            p.args_for("model_breakdown", &[limit(10)]),
        )
        .await?;
    let edits = ask
        .tool(
            "edit acceptance",
            "top_edited_files",
            p.args_for("top_edited_files", &[limit(10)]),
        )
        .await?;
    let trend = ask
        .all_rows(
            "daily cost",
            "usage_over_time",
            p.args_for(
                "usage_over_time",
                &[("bucket", Value::from("day")), limit(1000)],
            ),
        )
        .await?;
    let sessions = ask
        .tool(
            "sessions",
            "list_sessions",
            p.args_for("list_sessions", &[limit(25)]),
        )
        .await?;
    let row = cost["rows"][0].clone();
    let trend_rows: Vec<Value> = rows(&trend)
        .into_iter()
        .map(|mut r| {
            r["key"] = Value::from("cost");
            r
        })
        .collect();
    let (buckets, series) = series_by_key(&trend_rows, "cost_usd");
    Ok(html! {
        h1 { "Developer " (dev) }
        (filters("/ui/developer", p, USAGE_FILTERS, &[]))
        (range_line(&cost))
        (notes(&cost))
        @if row.is_null() {
            p.note { "No usage of this developer in this range." }
        } @else {
            section.stats aria-label="Headline numbers" {
                (stat("Spend", &money(f(&row["cost_usd"]))))
                (stat("Sessions", &count(f(&row["sessions"]) as i64)))
                (stat("API requests", &count(f(&row["api_requests"]) as i64)))
                (stat("Edit acceptance", &edits["acceptance_rate"].as_f64().map(view::percent).unwrap_or_else(|| "—".into())))
            }
        }
        div.grid {
            (stacked("Cost per day", &buckets, &series, money_fmt))
            (bars("Model mix (cost)", &bar_items(&rows(&models), "model", "cost_usd"), money_fmt))
        }
        (table("Models", &rows(&models), &model_cols(), None))
        h2 { "Sessions" }
        (table("Latest sessions", &rows(&sessions), &session_cols(p), None))
    })
}

fn model_cols() -> Vec<view::Col<'static>> {
    vec![
        col("model", "Model", Kind::Text),
        col("requests", "Requests", Kind::Count),
        col("cost_usd", "Cost", Kind::Money),
        col("cost_share", "Share", Kind::Ratio),
        col("output_tokens", "Output tokens", Kind::Count),
        col("mean_latency_ms", "Mean latency", Kind::Millis),
        col("p95_latency_ms", "p95 latency", Kind::Millis),
        col("errors", "Errors", Kind::Count),
    ]
}

fn session_cols(p: &Params) -> Vec<view::Col<'_>> {
    vec![
        link_col("start", "Start", Kind::Time, move |r| {
            r["session_id"].as_str().map(|s| session_link(p, s))
        }),
        col("developer", "Developer", Kind::Text),
        col("agent", "Agent", Kind::Text),
        col("main_model", "Main model", Kind::Text),
        col("prompts", "Prompts", Kind::Count),
        col("duration_s", "Duration", Kind::Seconds),
        col("cost_usd", "Cost", Kind::Money),
        col("tool_calls", "Tool calls", Kind::Count),
        col("output_tokens", "Output tokens", Kind::Count),
        col("api_errors", "Errors", Kind::Count),
    ]
}

async fn sessions(ask: &mut Ask<'_>, p: &Params) -> Result<Markup, AuditError> {
    let list = ask
        .tool(
            "sessions",
            "list_sessions",
            p.args_for("list_sessions", &[limit(25)]),
        )
        .await?;
    let current = list["sort_by"].as_str().unwrap_or("start").to_string();
    Ok(html! {
        h1 { "Sessions" }
        (filters("/ui/sessions", p, USAGE_FILTERS, &["sort_by"]))
        (range_line(&list))
        (notes(&list))
        p.sorts { "Sort by: "
            @for s in crate::query::sessions::SORT_KEYS {
                @if *s == current { b { (s) } " " } @else {
                    a href=(p.href("/ui/sessions", &["sort_by", "cursor"], &[("sort_by", s)])) { (s) } " "
                }
            }
        }
        (table("Sessions", &rows(&list), &session_cols(p), None))
        (next_page(&list, &p.link("/ui/sessions", &["cursor"])))
    })
}

async fn session(ask: &mut Ask<'_>, p: &Params) -> Result<Markup, AuditError> {
    if p.get("session_id").is_none() {
        return Ok(html! {
            h1 { "Session" }
            p.error { "Choose a session on the Sessions page (this page needs ?session_id=)." }
        });
    }
    let tl = ask
        .tool(
            "timeline",
            "session_timeline",
            p.args_for("session_timeline", &[limit(500)]),
        )
        .await?;
    let s = &tl["session"];
    let events = rows(&tl);
    let mut groups: Vec<(Option<String>, Vec<&Value>)> = Vec::new();
    for e in &events {
        let id = e["prompt_id"].as_str().map(str::to_owned);
        match groups.last_mut() {
            Some((g, list)) if *g == id => list.push(e),
            _ => groups.push((id, vec![e])),
        }
    }
    let turns: BTreeMap<String, &Value> = tl["turns"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| Some((t["prompt_id"].as_str()?.to_string(), t)))
                .collect()
        })
        .unwrap_or_default();
    Ok(html! {
        h1 { "Session" }
        p.mono { (p.get("session_id").unwrap_or("")) }
        (notes(&tl))
        @if !s.is_null() {
            section.stats aria-label="Session totals" {
                (stat("Cost", &money(f(&s["cost_usd"]))))
                (stat("Prompts", &count(f(&s["prompts"]) as i64)))
                (stat("API requests", &count(f(&s["api_requests"]) as i64)))
                (stat("Tool calls", &count(f(&s["tool_calls"]) as i64)))
                (stat("Duration", &view::cell(&s["duration_s"], Kind::Seconds)))
            }
            p { "Developer " b { (s["developer"].as_str().unwrap_or("")) } ", agent " (s["agent"].as_str().unwrap_or("")) ", main model " (s["main_model"].as_str().unwrap_or("—"))
                ", from " (view::cell(&s["start"], Kind::Time)) " to " (view::cell(&s["end"], Kind::Time)) "." }
        }
        h2 { "Turn by turn" }
        @for (i, (prompt, list)) in groups.iter().enumerate() {
            section.turn {
                @let turn = prompt.as_ref().and_then(|id| turns.get(id));
                h3 {
                    @match prompt { Some(id) => { "Prompt " (id) }, None => { "Outside any prompt" } }
                    @if let Some(t) = turn {
                        span.sub { " · " (view::cell(&t["start"], Kind::Time)) " · " (money(f(&t["cost_usd"]))) " · "
                            (count(f(&t["api_requests"]) as i64)) " API requests · " (count(f(&t["tool_calls"]) as i64)) " tool calls" }
                    }
                }
                ol.events data-group=(i) {
                    @for e in list { li { (event(e)) } }
                }
            }
        }
        (next_page(&tl, &p.link("/ui/session", &["cursor"])))
    })
}

/// One event of a timeline: a summary line that opens to its stored
/// attributes, and its content (read:content tokens only) as untrusted text.
fn event(e: &Value) -> Markup {
    let name = e["event_name"].as_str().unwrap_or("");
    let class = match name {
        "api_error" => "ev error",
        "user_prompt" => "ev prompt",
        _ => "ev",
    };
    let mut facts = Vec::new();
    for (key, kind) in [
        ("tool_name", Kind::Text),
        ("model", Kind::Text),
        ("decision", Kind::Text),
        ("cost_usd", Kind::Money),
        ("duration_ms", Kind::Millis),
        ("status_code", Kind::Text),
        ("error", Kind::Text),
    ] {
        if !e[key].is_null() {
            facts.push(view::cell(&e[key], kind));
        }
    }
    if let Some(n) = e["output_tokens"].as_i64() {
        facts.push(format!("{} output tokens", count(n)));
    }
    if e["success"] == Value::Bool(false) {
        facts.push("failed".into());
    }
    html! {
        details class=(class) {
            summary {
                time datetime=(e["time"].as_str().unwrap_or("")) { (view::cell(&e["time"], Kind::Time)) }
                " " b { (name) } " " (facts.join(" · "))
            }
            @if let Some(attrs) = e["attrs"].as_object() {
                table.attrs {
                    caption { "Stored attributes" }
                    tbody {
                        @for (k, v) in attrs {
                            tr { th scope="row" { (k) } td { (view::cell(v, Kind::Text)) } }
                        }
                    }
                }
            }
            @if let Some(content) = e["untrusted_content"].as_object() {
                div.untrusted {
                    p.warn { "Content from the session: data, not instructions." }
                    @for (k, v) in content {
                        h4 { (k) }
                        pre { (v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())) }
                    }
                }
            } @else if e["content_withheld"] == Value::Bool(true) {
                p.note { "Content withheld: it is shown only to read:content tokens." }
            }
        }
    }
}

async fn files(ask: &mut Ask<'_>, p: &Params) -> Result<Markup, AuditError> {
    let edits = ask
        .tool(
            "files",
            "top_edited_files",
            p.args_for("top_edited_files", &[limit(50)]),
        )
        .await?;
    let no_paths = edits["file_paths_available"] == Value::Bool(false);
    Ok(html! {
        h1 { "Files" }
        (filters("/ui/files", p, USAGE_FILTERS, &[]))
        (range_line(&edits))
        @if no_paths {
            p.hint role="note" { "No file paths are stored for this range. Claude Code sends them only with "
                code { "OTEL_LOG_TOOL_DETAILS=1" } " in its environment; the edit counts below come from tool decisions alone." }
        }
        (notes(&edits))
        section.stats aria-label="Edit totals" {
            (stat("Edits", &count(f(&edits["total_edits"]) as i64)))
            (stat("Accepted", &count(f(&edits["accepted"]) as i64)))
            (stat("Rejected", &count(f(&edits["rejected"]) as i64)))
            (stat("Acceptance rate", &edits["acceptance_rate"].as_f64().map(view::percent).unwrap_or_else(|| "—".into())))
        }
        (table("Most edited files", &rows(&edits), &[
            col("file_path", "File", Kind::Text),
            col("edits", "Edits", Kind::Count),
            col("accepted", "Accepted", Kind::Count),
            col("rejected", "Rejected", Kind::Count),
            col("acceptance_rate", "Acceptance", Kind::Ratio),
            col("sessions", "Sessions", Kind::Count),
            col("developers", "Developers", Kind::Count),
            col("tools", "Tools", Kind::List),
        ], None))
        (next_page(&edits, &p.link("/ui/files", &["cursor"])))
    })
}

async fn tools(ask: &mut Ask<'_>, p: &Params) -> Result<Markup, AuditError> {
    let lat = ask
        .tool(
            "latency",
            "tool_latency",
            p.args_for("tool_latency", &[limit(100)]),
        )
        .await?;
    let mcp = list(&lat, "mcp_breakdown");
    let pct = |key: &'static str, label: &'static str| col(key, label, Kind::Millis);
    Ok(html! {
        h1 { "Tools and latency" }
        (filters("/ui/tools", p, USAGE_FILTERS, &[]))
        (range_line(&lat))
        (notes(&lat))
        (bars("p95 duration by tool", &bar_items(&rows(&lat), "tool_name", "p95_ms"), view::millis))
        (table("Tool latency", &rows(&lat), &[
            col("tool_name", "Tool", Kind::Text),
            col("calls", "Calls", Kind::Count),
            col("failures", "Failures", Kind::Count),
            col("success_rate", "Success", Kind::Ratio),
            col("mean_ms", "Mean", Kind::Millis),
            pct("p50_ms", "p50"), pct("p90_ms", "p90"), pct("p95_ms", "p95"), pct("p99_ms", "p99"), pct("max_ms", "Max"),
        ], None))
        h2 { "MCP servers and tools" }
        (table("MCP calls by server and tool", &mcp, &[
            col("mcp_server", "Server", Kind::Text),
            col("mcp_tool", "Tool", Kind::Text),
            col("calls", "Calls", Kind::Count),
            col("success_rate", "Success", Kind::Ratio),
            pct("p50_ms", "p50"), pct("p95_ms", "p95"), pct("p99_ms", "p99"), pct("max_ms", "Max"),
        ], None))
        p.note { (lat["percentile_definition"].as_str().unwrap_or("")) }
    })
}

async fn health(ask: &mut Ask<'_>, p: &Params) -> Result<Markup, AuditError> {
    let d = ask
        .tool(
            "inventory",
            "describe_data",
            p.args_for("describe_data", &[]),
        )
        .await?;
    let optional: Vec<Value> = d["optional_data"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| json!({"what": k.replace('_', " "), "present": v}))
                .collect()
        })
        .unwrap_or_default();
    let gaps: Vec<&str> = d["gaps"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Ok(html! {
        h1 { "Data health" }
        (filters("/ui/health", p, &["since", "until", "timezone", "developer", "agent"], &[]))
        (range_line(&d))
        (notes(&d))
        section.stats aria-label="Inventory" {
            (stat("Sessions", &count(f(&d["sessions"]) as i64)))
            (stat("First event", &view::cell(&d["first_event"], Kind::Time)))
            (stat("Last event", &view::cell(&d["last_event"], Kind::Time)))
        }
        @if !gaps.is_empty() {
            section.hint aria-label="What is missing" {
                h2 { "What is missing and how to enable it" }
                ul { @for g in &gaps { li { (g) } } }
            }
        }
        (table("Coding agents", &list(&d, "agents"), &[
            col("agent", "Agent", Kind::Text),
            col("versions", "Versions", Kind::List),
            col("sessions", "Sessions", Kind::Count),
        ], None))
        (table("Signals", &rows(&d), &[
            col("name", "Name", Kind::Text),
            col("kind", "Kind", Kind::Text),
            col("count", "Records", Kind::Count),
            col("first", "First", Kind::Time),
            col("last", "Last seen", Kind::Time),
        ], None))
        (table("Optional data", &optional, &[
            col("what", "Data", Kind::Text),
            col("present", "Present", Kind::Text),
        ], None))
        (table("Developers", &list(&d, "developers"), &[
            col("developer", "Developer", Kind::Text),
            col("developer_kind", "Identity", Kind::Text),
            col("sessions", "Sessions", Kind::Count),
        ], None))
        p { "Resource attribute keys: " (view::cell(&d["resource_attribute_keys"], Kind::List)) }
    })
}

async fn audit(ask: &mut Ask<'_>, p: &Params) -> Result<Markup, AuditError> {
    let summary = ask
        .tool(
            "summary",
            "audit_summary",
            p.args_for("audit_summary", &[limit(20)]),
        )
        .await?;
    let log = ask
        .tool(
            "records",
            "audit_log",
            p.args_for("audit_log", &[limit(50)]),
        )
        .await?;
    let verify = match (p.get("verify"), ask.audit_log()) {
        (Some(_), Some(l)) => Some(
            tokio::task::spawn_blocking(move || l.verify_with(&Default::default()))
                .await
                .map_err(|e| AuditError::Internal(e.to_string()))?,
        ),
        _ => None,
    };
    let records = rows(&log);
    // The node column where the store keeps a chain per node.
    let mut record_cols = Vec::new();
    if records.iter().any(|r| r.get("node").is_some()) {
        record_cols.push(col("node", "Node", Kind::Text));
    }
    record_cols.extend([
        col("seq", "#", Kind::Count),
        col("time", "Time", Kind::Time),
        col("token_name", "Token", Kind::Text),
        col("tool", "Tool", Kind::Text),
        col("outcome", "Outcome", Kind::Text),
        col("rows", "Rows", Kind::Count),
        col("duration_ms", "Duration", Kind::Millis),
        col("client_name", "Client", Kind::Text),
        col("peer", "Peer", Kind::Text),
        col("detail", "Detail", Kind::Text),
    ]);
    Ok(html! {
        h1 { "Audit" }
        form.filters method="get" action="/ui/audit" role="search" {
            @for (name, label) in [("since", "Since"), ("until", "Until"), ("timezone", "Time zone"), ("token", "Token"), ("tool", "Tool"), ("outcome", "Outcome")] {
                label { span { (label) } input type="text" name=(name) value=(p.get(name).unwrap_or("")); }
            }
            button type="submit" { "Apply" }
        }
        (range_line(&summary))
        (notes(&summary))
        section.stats aria-label="Audit totals" {
            (stat("Requests", &count(f(&summary["total"]) as i64)))
            (stat("Denied", &count(f(&summary["denied"]) as i64)))
        }
        div.grid {
            (table("Calls per tool", &list(&summary, "by_tool"), &[
                col("tool", "Tool", Kind::Text),
                col("calls", "Calls", Kind::Count),
                col("not_ok", "Not ok", Kind::Count),
            ], None))
            (table("Outcomes", &list(&summary, "by_outcome"), &[
                col("outcome", "Outcome", Kind::Text),
                col("calls", "Calls", Kind::Count),
            ], None))
            (table("Top caller addresses", &list(&summary, "top_callers"), &[
                col("peer", "Address", Kind::Text),
                col("calls", "Calls", Kind::Count),
                col("denied", "Denied", Kind::Count),
            ], None))
            (table("Per token", &rows(&summary), &[
                col("token_name", "Token", Kind::Text),
                col("calls", "Calls", Kind::Count),
                col("denied", "Denied", Kind::Count),
            ], None))
        }
        section aria-label="Chain" {
            h2 { "Hash chain" }
            @match &verify {
                None => {
                    form method="get" action="/ui/audit" {
                        input type="hidden" name="verify" value="1";
                        button type="submit" { "Verify the whole chain" }
                    }
                }
                Some(Ok(r)) => {
                    @if r.ok { p.ok data-verify="ok" { "The chain verifies: " (r.records) " record(s), intact." } }
                    @else { p.error data-verify="broken" { "The chain does not verify: " (r.problems.len()) " problem(s)." } }
                    @if r.chains.is_empty() {
                        p { "Head hash: " code { (r.head_hash.as_deref().unwrap_or("—")) } " (keep it elsewhere; " code { "tokentally audit verify --head HASH" } " proves later that the log was not cut back)" }
                    } @else {
                        p { (r.chains.len()) " chain(s), one per node run; each node's head hash goes to its server log (" code { "tokentally audit verify --head HASH" } " proves later that a chain was not cut back)." }
                        ul { @for c in &r.chains { li { code { (c.node.as_deref().unwrap_or("—")) } ": " (c.records) " record(s), head " code { (c.head_hash.as_deref().unwrap_or("—")) } } } }
                    }
                    ul { @for pr in &r.problems { li { "record " (pr.seq) @if let Some(n) = &pr.node { " of " code { (n) } } ": " (pr.detail) } } }
                }
                Some(Err(e)) => { p.error { "Verification failed: " (e.to_string()) } }
            }
        }
        h2 { "Records" }
        (table("Audit records, newest first", &records, &record_cols, None))
        (next_page(&log, &p.link("/ui/audit", &["cursor", "verify"])))
    })
}

/// The usage report `tokentally report` writes, for the period of the
/// page's filters (default last week), every call audited.
async fn report(ask: &mut Ask<'_>, p: &Params) -> Result<Markup, AuditError> {
    let mut base = Map::new();
    base.insert(
        "since".into(),
        Value::from(p.get("since").unwrap_or("last_week")),
    );
    for k in ["until", "timezone"] {
        if let Some(v) = p.get(k) {
            base.insert(k.into(), Value::from(v));
        }
    }
    let mut asker = ReportAsk { ask, failure: None };
    let report = crate::report::build(&base, &mut asker).await;
    if let Some(e) = asker.failure {
        return Err(e);
    }
    Ok(html! {
        (filters("/ui/report", p, &["since", "until", "timezone"], &[]))
        (super::report::body(&report))
        p.note { "The same report: " code { "tokentally report --format markdown|html|json" } ", or the weekly_report prompt over MCP." }
    })
}

/// The report's questions asked through the page's audited [`Ask`]; the
/// first audit failure fails the page.
struct ReportAsk<'p, 'a> {
    ask: &'p mut Ask<'a>,
    failure: Option<AuditError>,
}

impl crate::report::Ask for ReportAsk<'_, '_> {
    fn ask<'s>(
        &'s mut self,
        tool: &'static str,
        args: Map<String, Value>,
    ) -> futures::future::BoxFuture<'s, Value> {
        Box::pin(async move {
            match self.ask.tool(tool, tool, args).await {
                Ok(v) => v,
                Err(e) => {
                    self.failure.get_or_insert(e);
                    Value::Null
                }
            }
        })
    }
}

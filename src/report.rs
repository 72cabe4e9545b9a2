//! The usage report (`tokentally report`): spend by developer, team and
//! model against the period before, the most edited files and their
//! acceptance, the slowest tools, error rates and data gaps. Every number
//! is a tool's answer: the report asks the tools (through whatever the
//! caller passes: the registry for the CLI, the audited asker of the web
//! view) and only lays the answers side by side.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::format::{self as view, Kind, money};

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Markdown tables.
    Markdown,
    /// One self-contained HTML page.
    Html,
    /// The report and every tool answer it used, as JSON.
    Json,
}

/// One row of a spend table: this period and the one before.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Spend {
    /// Developer, team or model.
    pub key: String,
    /// Cost in the period, USD.
    pub cost_usd: f64,
    /// Cost in the period before, USD.
    pub previous_cost_usd: f64,
    /// Relative change (`None` when the period before had none).
    pub change: Option<f64>,
    /// API requests in the period.
    pub requests: i64,
    /// API errors in the period.
    pub errors: i64,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The period: `since`, `until`, `timezone`, as the tools resolved it.
    pub range: Value,
    /// The period before, of the same length.
    pub previous_range: Value,
    /// Total cost in the period and the one before.
    pub total: Spend,
    /// Per developer, most expensive first.
    pub developers: Vec<Spend>,
    /// Per team (the `team.id` resource attribute).
    pub teams: Vec<Spend>,
    /// Per model.
    pub models: Vec<Spend>,
    /// The most edited files, as `top_edited_files` answered.
    pub files: Value,
    /// The five tools with the highest p95 duration, as `tool_latency` answered.
    pub slowest_tools: Vec<Value>,
    /// What is missing from the data, and how to enable it.
    pub gaps: Vec<String>,
    /// The notes of the answers (how the numbers were counted).
    pub notes: Vec<String>,
    /// Every tool call the report made, with its answer.
    pub answers: Vec<Value>,
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn i(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// Rows of two answers side by side, keyed by `key`, this period's order.
fn spend(now: &Value, before: &Value, key: &str, requests: &str, errors: &str) -> Vec<Spend> {
    let prev: BTreeMap<String, f64> = before["rows"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| (r[key].as_str().unwrap_or("").to_string(), f(&r["cost_usd"])))
                .collect()
        })
        .unwrap_or_default();
    now["rows"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let k = r[key].as_str().unwrap_or("(none)").to_string();
                    let was = prev.get(&k).copied().unwrap_or(0.0);
                    Spend {
                        cost_usd: f(&r["cost_usd"]),
                        previous_cost_usd: was,
                        change: view::change(f(&r["cost_usd"]), was),
                        requests: i(&r[requests]),
                        errors: i(&r[errors]),
                        key: k,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// How the report asks a tool: the surface's own way (the registry for the
/// command line, the audited asker of the web view), as the caller.
pub trait Ask: Send {
    /// The structured answer of `tool` for `args` (a tool error is the
    /// answer's `error`).
    fn ask<'a>(&'a mut self, tool: &'static str, args: Map<String, Value>) -> BoxFuture<'a, Value>;
}

/// Builds the report for the period `base` names (`since`, `until`,
/// `timezone`), asking each tool through `asker`.
pub async fn build(base: &Map<String, Value>, asker: &mut dyn Ask) -> Report {
    let mut answers = Vec::new();
    let mut call = async |tool: &'static str, extra: Value, range: &Map<String, Value>| {
        let mut args = range.clone();
        if let Value::Object(m) = extra {
            args.extend(m);
        }
        let answer = asker.ask(tool, args.clone()).await;
        answers.push(json!({"tool": tool, "arguments": args, "answer": answer.clone()}));
        answer
    };
    let cost = call("cost_by_developer", json!({"limit": 1000}), base).await;
    let mut before = base.clone();
    if let Some((s, u)) = view::previous_range(&cost) {
        before.insert("since".into(), Value::String(s));
        before.insert("until".into(), Value::String(u));
    }
    let cost_before = call("cost_by_developer", json!({"limit": 1000}), &before).await;
    let by_team = json!({"bucket": "total", "split_by": "team", "limit": 1000});
    let teams = call("usage_over_time", by_team.clone(), base).await;
    let teams_before = call("usage_over_time", by_team, &before).await;
    let models = call("model_breakdown", json!({"limit": 1000}), base).await;
    let models_before = call("model_breakdown", json!({"limit": 1000}), &before).await;
    let files = call("top_edited_files", json!({"limit": 10}), base).await;
    let latency = call("tool_latency", json!({"limit": 1000}), base).await;
    let described = call("describe_data", json!({}), base).await;

    let mut slowest: Vec<Value> = latency["rows"].as_array().cloned().unwrap_or_default();
    slowest.sort_by(|a, b| f(&b["p95_ms"]).total_cmp(&f(&a["p95_ms"])));
    slowest.truncate(5);
    let t = &cost["totals"];
    let now_total = f(&t["cost_usd"]);
    let was_total = f(&cost_before["totals"]["cost_usd"]);
    let mut notes: Vec<String> = Vec::new();
    for a in [&cost, &models, &files, &latency] {
        for n in a["notes"].as_array().into_iter().flatten() {
            if let Some(s) = n.as_str()
                && !notes.iter().any(|x| x == s)
            {
                notes.push(s.to_string());
            }
        }
        if let Some(e) = a["error"].as_str() {
            notes.push(format!("error: {e}"));
        }
    }
    Report {
        range: cost["range"].clone(),
        previous_range: cost_before["range"].clone(),
        total: Spend {
            key: "total".into(),
            cost_usd: now_total,
            previous_cost_usd: was_total,
            change: view::change(now_total, was_total),
            requests: i(&t["api_requests"]),
            errors: i(&t["api_errors"]),
        },
        developers: spend(
            &cost,
            &cost_before,
            "developer",
            "api_requests",
            "api_errors",
        ),
        teams: spend(&teams, &teams_before, "key", "requests", "errors"),
        models: spend(&models, &models_before, "model", "requests", "errors"),
        files,
        slowest_tools: slowest,
        gaps: described["gaps"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|g| g.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        notes,
        answers,
    }
}

pub fn change_text(c: Option<f64>) -> String {
    match c {
        Some(c) => format!("{:+.1}%", c * 100.0),
        None => "new".into(),
    }
}

pub fn error_rate(s: &Spend) -> String {
    if s.requests > 0 {
        view::percent(s.errors as f64 / s.requests as f64)
    } else {
        "—".into()
    }
}

/// A Markdown table cell: pipes and line breaks would break the table.
fn md(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

pub fn period(r: &Value) -> String {
    format!(
        "{} to {} ({})",
        view::short_time(r["since"].as_str().unwrap_or("")),
        view::short_time(r["until"].as_str().unwrap_or("")),
        r["timezone"].as_str().unwrap_or("UTC")
    )
}

impl Report {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let mut line = |s: String| {
            out.push_str(&s);
            out.push('\n');
        };
        line("# Coding-agent usage report".into());
        line(String::new());
        line(format!(
            "{}; compared with {}.",
            period(&self.range),
            period(&self.previous_range)
        ));
        line(String::new());
        line(format!(
            "**Spend {}** ({} the period before, {}); {} API requests, error rate {}.",
            money(self.total.cost_usd),
            money(self.total.previous_cost_usd),
            change_text(self.total.change),
            view::count(self.total.requests),
            error_rate(&self.total)
        ));
        for (title, what, rows) in [
            ("Spend by developer", "developer", &self.developers),
            ("Spend by team", "team", &self.teams),
            ("Spend by model", "model", &self.models),
        ] {
            line(String::new());
            line(format!("## {title}"));
            line(String::new());
            if rows.is_empty() {
                line("No data in this period.".into());
                continue;
            }
            line(format!(
                "| {what} | cost | before | change | requests | error rate |"
            ));
            line("|---|---:|---:|---:|---:|---:|".into());
            for s in rows {
                line(format!(
                    "| {} | {} | {} | {} | {} | {} |",
                    md(&s.key),
                    money(s.cost_usd),
                    money(s.previous_cost_usd),
                    change_text(s.change),
                    view::count(s.requests),
                    error_rate(s)
                ));
            }
        }
        line(String::new());
        line("## Most edited files".into());
        line(String::new());
        let files = self.files["rows"].as_array().cloned().unwrap_or_default();
        if files.is_empty() {
            line("No file edits with paths in this period.".into());
        } else {
            line(format!(
                "{} edits, acceptance rate {}.",
                view::count(i(&self.files["total_edits"])),
                self.files["acceptance_rate"]
                    .as_f64()
                    .map(view::percent)
                    .unwrap_or_else(|| "—".into())
            ));
            line(String::new());
            line("| file | edits | accepted | rejected |".into());
            line("|---|---:|---:|---:|".into());
            for r in &files {
                line(format!(
                    "| {} | {} | {} | {} |",
                    md(r["file_path"].as_str().unwrap_or("")),
                    i(&r["edits"]),
                    i(&r["accepted"]),
                    i(&r["rejected"])
                ));
            }
        }
        line(String::new());
        line("## Slowest tools".into());
        line(String::new());
        if self.slowest_tools.is_empty() {
            line("No tool calls in this period.".into());
        } else {
            line("| tool | calls | success | p50 | p95 | p99 |".into());
            line("|---|---:|---:|---:|---:|---:|".into());
            for r in &self.slowest_tools {
                line(format!(
                    "| {} | {} | {} | {} | {} | {} |",
                    md(r["tool_name"].as_str().unwrap_or("")),
                    i(&r["calls"]),
                    view::cell(&r["success_rate"], Kind::Ratio),
                    view::cell(&r["p50_ms"], Kind::Millis),
                    view::cell(&r["p95_ms"], Kind::Millis),
                    view::cell(&r["p99_ms"], Kind::Millis)
                ));
            }
        }
        if !self.gaps.is_empty() {
            line(String::new());
            line("## Data gaps".into());
            line(String::new());
            for g in &self.gaps {
                line(format!("- {}", md(g)));
            }
        }
        if !self.notes.is_empty() {
            line(String::new());
            line("## Notes".into());
            line(String::new());
            for n in &self.notes {
                line(format!("- {}", md(n)));
            }
        }
        out
    }

    /// The report as JSON, with every answer it used.
    pub fn json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The report as Markdown or JSON (HTML is the web view's:
    /// `web::report::page`).
    pub fn render_text(&self, json: bool) -> String {
        if json {
            serde_json::to_string_pretty(&self.json()).unwrap_or_default()
        } else {
            self.markdown()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_rows_pair_each_key_with_its_previous_cost() {
        let now = json!({"rows": [{"developer": "a|b", "cost_usd": 3.0, "api_requests": 4, "api_errors": 1},
                                   {"developer": "c", "cost_usd": 1.0, "api_requests": 0, "api_errors": 0}]});
        let before = json!({"rows": [{"developer": "a|b", "cost_usd": 2.0}]});
        let rows = spend(&now, &before, "developer", "api_requests", "api_errors");
        assert_eq!(rows[0].previous_cost_usd, 2.0);
        assert_eq!(rows[0].change, Some(0.5));
        assert_eq!(rows[1].change, None);
        assert_eq!(error_rate(&rows[0]), "25.0%");
        assert_eq!(md(&rows[0].key), "a\\|b");
    }

    #[test]
    fn the_previous_period_has_the_same_length() {
        let a =
            json!({"range": {"since": "2026-11-23T00:00:00Z", "until": "2026-11-30T00:00:00Z"}});
        assert_eq!(
            view::previous_range(&a),
            Some(("2026-11-16T00:00:00Z".into(), "2026-11-23T00:00:00Z".into()))
        );
    }
}

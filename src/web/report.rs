//! The usage report as HTML: the web view's Report page and the
//! self-contained file `tokentally report --format html` writes.

use maud::{DOCTYPE, Markup, html};
use serde_json::{Value, json};

use super::view::{self, Kind, col, money, table};
use crate::report::{Report, Spend, change_text, error_rate, period};

/// The report's content as HTML (headings, headline numbers, tables),
/// for a page of its own or the web view's frame.
pub fn body(r: &Report) -> Markup {
    let spend_rows = |rows: &[Spend]| -> Vec<Value> {
        rows.iter()
            .map(|s| {
                json!({
                    "key": s.key, "cost_usd": s.cost_usd, "previous_cost_usd": s.previous_cost_usd,
                    "change": change_text(s.change), "requests": s.requests, "error_rate": error_rate(s),
                })
            })
            .collect()
    };
    let spend_cols = |label: &'static str| {
        vec![
            col("key", label, Kind::Text),
            col("cost_usd", "Cost", Kind::Money),
            col("previous_cost_usd", "Before", Kind::Money),
            col("change", "Change", Kind::Text),
            col("requests", "Requests", Kind::Count),
            col("error_rate", "Error rate", Kind::Text),
        ]
    };
    html! {
        h1 { "Coding-agent usage report" }
        p.range { (period(&r.range)) "; compared with " (period(&r.previous_range)) "." }
        section.stats {
            (view::stat_vs("Spend", &money(r.total.cost_usd), r.total.change))
            (view::stat("API requests", &view::count(r.total.requests)))
            (view::stat("Error rate", &error_rate(&r.total)))
        }
        (table("Spend by developer", &spend_rows(&r.developers), &spend_cols("Developer"), None))
        (table("Spend by team", &spend_rows(&r.teams), &spend_cols("Team"), None))
        (table("Spend by model", &spend_rows(&r.models), &spend_cols("Model"), None))
        (table("Most edited files", r.files["rows"].as_array().map(Vec::as_slice).unwrap_or(&[]), &[
            col("file_path", "File", Kind::Text),
            col("edits", "Edits", Kind::Count),
            col("accepted", "Accepted", Kind::Count),
            col("rejected", "Rejected", Kind::Count),
            col("acceptance_rate", "Acceptance", Kind::Ratio),
        ], None))
        (table("Slowest tools", &r.slowest_tools, &[
            col("tool_name", "Tool", Kind::Text),
            col("calls", "Calls", Kind::Count),
            col("success_rate", "Success", Kind::Ratio),
            col("p50_ms", "p50", Kind::Millis),
            col("p95_ms", "p95", Kind::Millis),
            col("p99_ms", "p99", Kind::Millis),
        ], None))
        @if !r.gaps.is_empty() {
            h2 { "Data gaps" }
            ul { @for g in &r.gaps { li { (g) } } }
        }
        @if !r.notes.is_empty() {
            h2 { "Notes" }
            ul { @for n in &r.notes { li.note { (n) } } }
        }
    }
}

/// The report as one self-contained HTML page (its style inline in
/// the file; no script).
pub fn page(r: &Report) -> String {
    let page: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Coding-agent usage report" }
                style { (maud::PreEscaped(super::STYLE)) }
            }
            body { main { (body(r)) } }
        }
    };
    page.into_string()
}

//! HTML building blocks of the web view: the page frame, the filter form,
//! tables read from tool answers, numbers as people read them, and charts
//! as server-rendered SVG. Everything goes through maud, which escapes
//! every value, so stored text can never become markup.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::params::{FILTERS, Params};
pub use crate::format::{
    Kind, cell, change, count, millis, money, percent, previous_range, seconds, short_time,
};

/// The pages in the navigation, with their paths (audit only for audit
/// tokens).
pub const NAV: &[(&str, &str, bool)] = &[
    ("overview", "Overview", false),
    ("developers", "Developers", false),
    ("sessions", "Sessions", false),
    ("files", "Files", false),
    ("tools", "Tools and latency", false),
    ("health", "Data health", false),
    ("report", "Report", false),
    ("audit", "Audit", true),
];

/// What the frame shows of the caller.
pub struct Viewer<'a> {
    /// Token name.
    pub token: &'a str,
    /// Scope name.
    pub scope: &'a str,
    /// Developers the token is bound to (empty: all).
    pub developers: &'a [String],
    /// Whether the audit pages are offered.
    pub can_audit: bool,
}

/// The whole page: head, navigation, the caller, and `body`.
pub fn frame(title: &str, current: &str, viewer: Option<&Viewer<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tokentally" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body {
                header {
                    a.brand href="/ui/overview" { "tokentally" }
                    @if let Some(v) = viewer {
                        nav aria-label="Pages" {
                            ul {
                                @for (page, label, audit_only) in NAV {
                                    @if !*audit_only || v.can_audit {
                                        li {
                                            @if *page == current {
                                                a href={ "/ui/" (page) } aria-current="page" { (label) }
                                            } @else {
                                                a href={ "/ui/" (page) } { (label) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        div.who {
                            span { "token " b { (v.token) } " (" (v.scope) ")" }
                            @if !v.developers.is_empty() {
                                span { " · sees " (v.developers.join(", ")) }
                            }
                            form method="post" action="/ui/logout" {
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The filter form of a page: time range, time zone and the filters the
/// page's tools take, with the current values; `hidden` keeps page
/// parameters (a session id, a sort) across a change.
pub fn filters(path: &str, params: &Params, shown: &[&str], hidden: &[&str]) -> Markup {
    html! {
        form.filters method="get" action=(path) role="search" {
            @for (name, label, hint) in FILTERS {
                @if shown.contains(name) {
                    label {
                        span { (label) }
                        input type="text" name=(name) value=(params.get(name).unwrap_or(""))
                            placeholder=(hint);
                    }
                }
            }
            @for name in hidden {
                @if let Some(v) = params.get(name) {
                    input type="hidden" name=(name) value=(v);
                }
            }
            button type="submit" { "Apply" }
        }
    }
}

/// The answer's resolved range, in words.
pub fn range_line(answer: &Value) -> Markup {
    let r = &answer["range"];
    html! {
        @if let (Some(s), Some(u)) = (r["since"].as_str(), r["until"].as_str()) {
            p.range { "From " time datetime=(s) { (short_time(s)) } " to " time datetime=(u) { (short_time(u)) }
                " (" (r["timezone"].as_str().unwrap_or("UTC")) ")" }
        }
    }
}

/// The answer's notes and error, if any.
pub fn notes(answer: &Value) -> Markup {
    html! {
        @if let Some(e) = answer["error"].as_str() {
            p.error role="alert" { (e) }
        }
        @if let Some(list) = answer["notes"].as_array() {
            @for n in list {
                @if let Some(t) = n.as_str() { p.note { (t) } }
            }
        }
    }
}

/// Where a cell links to, from its row.
type LinkFn<'a> = Box<dyn Fn(&Value) -> Option<String> + 'a>;

/// One column of a table: the answer field, its header, how it shows, and
/// an optional link for the cell.
pub struct Col<'a> {
    /// Field of the row.
    pub key: &'static str,
    /// Header text.
    pub label: &'static str,
    /// How values show.
    pub kind: Kind,
    link: Option<LinkFn<'a>>,
}

/// A column without a link.
pub fn col(key: &'static str, label: &'static str, kind: Kind) -> Col<'static> {
    Col {
        key,
        label,
        kind,
        link: None,
    }
}

/// A column whose cells link to `link(row)`.
pub fn link_col<'a>(
    key: &'static str,
    label: &'static str,
    kind: Kind,
    link: impl Fn(&Value) -> Option<String> + 'a,
) -> Col<'a> {
    Col {
        key,
        label,
        kind,
        link: Some(Box::new(link)),
    }
}

fn numeric(kind: Kind) -> bool {
    !matches!(kind, Kind::Text | Kind::Time | Kind::List)
}

/// A table of `rows` with `cols`; header links re-sort when `sort` names
/// the page's base link (`?...&sort=` is appended).
pub fn table(caption: &str, rows: &[Value], cols: &[Col<'_>], sort: Option<&SortLinks>) -> Markup {
    html! {
        div.scroll {
            table {
                caption { (caption) }
                thead { tr {
                    @for c in cols {
                        @let class = if numeric(c.kind) { "num" } else { "" };
                        th scope="col" class=(class) {
                            @match sort {
                                Some(s) => {
                                    a href=(s.href(c.key)) aria-sort=(s.aria(c.key)) { (c.label) }
                                }
                                None => { (c.label) }
                            }
                        }
                    }
                } }
                tbody {
                    @if rows.is_empty() {
                        tr { td colspan=(cols.len()) { "No rows." } }
                    }
                    @for row in rows {
                        tr {
                            @for (i, c) in cols.iter().enumerate() {
                                @let text = cell(&row[c.key], c.kind);
                                @let class = if numeric(c.kind) { "num" } else { "" };
                                @let target = c.link.as_ref().and_then(|f| f(row));
                                @if i == 0 {
                                    th scope="row" class=(class) { (linked(&text, target)) }
                                } @else {
                                    td class=(class) { (linked(&text, target)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn linked(text: &str, target: Option<String>) -> Markup {
    html! {
        @match target {
            Some(href) => a href=(href) { (text) },
            None => (text),
        }
    }
}

/// Header links that sort a table by a column, toggling the direction.
pub struct SortLinks {
    /// The page's link with its other parameters, ending in `&` or `?`.
    pub base: String,
    /// Current sort column.
    pub key: String,
    /// Current direction: true = descending.
    pub desc: bool,
}

impl SortLinks {
    fn href(&self, key: &str) -> String {
        let dir = if key == self.key && self.desc {
            "asc"
        } else {
            "desc"
        };
        format!("{}sort={key}&dir={dir}", self.base)
    }

    fn aria(&self, key: &str) -> &'static str {
        match (key == self.key, self.desc) {
            (false, _) => "none",
            (true, true) => "descending",
            (true, false) => "ascending",
        }
    }

    /// Sorts `rows` by the current column (numbers as numbers).
    pub fn apply(&self, rows: &mut [Value]) {
        let key = self.key.as_str();
        rows.sort_by(|a, b| {
            let ord = match (a[key].as_f64(), b[key].as_f64()) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                _ => cell(&a[key], Kind::Text).cmp(&cell(&b[key], Kind::Text)),
            };
            if self.desc { ord.reverse() } else { ord }
        });
    }
}

/// One headline number.
pub fn stat(label: &str, now: &str) -> Markup {
    html! {
        div.stat {
            div.label { (label) }
            div.value data-stat=(label) { (now) }
        }
    }
}

/// One headline number, with its change against the previous period.
pub fn stat_vs(label: &str, now: &str, change: Option<f64>) -> Markup {
    html! {
        div.stat {
            div.label { (label) }
            div.value data-stat=(label) { (now) }
            @if let Some(c) = change {
                @let (class, arrow) = if c > 0.0 { ("up", "▲") } else if c < 0.0 { ("down", "▼") } else { ("same", "=") };
                div.change class=(class) { (arrow) " " (format!("{:+.1}%", c * 100.0)) " vs previous period" }
            } @else {
                div.change.same { "no data in the previous period" }
            }
        }
    }
}

/// Fill colours of chart series (and their legend).
const PALETTE: &[&str] = &[
    "#3b6fd6", "#e07b39", "#3aa675", "#c24b78", "#8a63c9", "#b5a12c", "#4aa8c2", "#8c6d4f",
];

fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// Horizontal bars, one per `(label, value)`, values shown with `fmt`.
pub fn bars(title: &str, items: &[(String, f64)], fmt: fn(f64) -> String) -> Markup {
    let max = items.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max);
    let row_h = 26.0;
    let height = (items.len() as f64 * row_h).max(row_h);
    html! {
        figure.chart {
            figcaption { (title) }
            @if items.is_empty() {
                p.note { "No data in this range." }
            } @else {
                svg viewBox={ "0 0 640 " (height) } role="img" aria-label=(title) preserveAspectRatio="xMinYMin meet" {
                    title { (title) }
                    @for (i, (label, v)) in items.iter().enumerate() {
                        @let y = i as f64 * row_h;
                        @let w = if max > 0.0 { v / max * 360.0 } else { 0.0 };
                        text x="0" y=(y + 17.0) class="axis" { (truncate(label, 30)) }
                        rect x="220" y=(y + 4.0) width=(format!("{w:.1}")) height="18" fill=(colour(i)) {
                            title { (label) ": " (fmt(*v)) }
                        }
                        text x=(format!("{:.1}", 226.0 + w)) y=(y + 17.0) class="value" { (fmt(*v)) }
                    }
                }
            }
        }
    }
}

/// Stacked columns: one column per bucket, one colour per series.
pub fn stacked(
    title: &str,
    buckets: &[String],
    series: &[(String, Vec<f64>)],
    fmt: fn(f64) -> String,
) -> Markup {
    let totals: Vec<f64> = (0..buckets.len())
        .map(|b| series.iter().map(|(_, v)| v[b]).sum())
        .collect();
    let max = totals.iter().copied().fold(0.0_f64, f64::max);
    let (w, h, left, bottom) = (640.0, 220.0, 70.0, 24.0);
    let plot_h = h - bottom - 10.0;
    let slot = if buckets.is_empty() {
        0.0
    } else {
        (w - left) / buckets.len() as f64
    };
    let bar_w = (slot * 0.8).max(1.0);
    let label_every = (buckets.len() / 8).max(1);
    let mut rects = Vec::new();
    for (b, bucket) in buckets.iter().enumerate() {
        let x = left + b as f64 * slot + (slot - bar_w) / 2.0;
        let mut y = 10.0 + plot_h;
        for (i, (name, values)) in series.iter().enumerate() {
            let bh = values[b] / max * plot_h;
            if bh > 0.0 {
                y -= bh;
                rects.push(Segment {
                    x,
                    y,
                    h: bh,
                    series: i,
                    title: format!("{} · {name}: {}", short_time(bucket), fmt(values[b])),
                });
            }
        }
    }
    html! {
        figure.chart {
            figcaption { (title) }
            @if buckets.is_empty() || max <= 0.0 {
                p.note { "No data in this range." }
            } @else {
                svg viewBox={ "0 0 " (w) " " (h) } role="img" aria-label=(title) preserveAspectRatio="xMinYMin meet" {
                    title { (title) }
                    line x1=(left) y1=(10.0 + plot_h) x2=(w) y2=(10.0 + plot_h) class="baseline" {}
                    text x="0" y="18" class="axis" { (fmt(max)) }
                    text x="0" y=(10.0 + plot_h) class="axis" { (fmt(0.0)) }
                    @for r in &rects {
                        rect x=(format!("{:.1}", r.x)) y=(format!("{:.1}", r.y)) width=(format!("{bar_w:.1}"))
                            height=(format!("{:.1}", r.h)) fill=(colour(r.series)) {
                            title { (r.title) }
                        }
                    }
                    @for (b, bucket) in buckets.iter().enumerate() {
                        @if b % label_every == 0 {
                            text x=(format!("{:.1}", left + b as f64 * slot)) y=(h - 6.0) class="axis" { (bucket.get(5..10).unwrap_or(bucket)) }
                        }
                    }
                }
                ul.legend {
                    @for (i, (name, _)) in series.iter().enumerate() {
                        li { svg.swatch viewBox="0 0 10 10" aria-hidden="true" { rect width="10" height="10" fill=(colour(i)) {} } (name) }
                    }
                }
            }
        }
    }
}

/// One coloured piece of a stacked column.
struct Segment {
    x: f64,
    y: f64,
    h: f64,
    series: usize,
    title: String,
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let head: String = s.chars().take(n - 1).collect();
        format!("{head}…")
    }
}

/// A link to the next page of an answer, when it has one.
pub fn next_page(answer: &Value, base: &str) -> Markup {
    html! {
        @if let Some(c) = answer["next_cursor"].as_str() {
            p.pager { a rel="next" href={ (base) "cursor=" (c) } { "Next page →" } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_is_escaped_in_tables() {
        let rows = vec![serde_json::json!({"name": "<script>alert(1)</script>"})];
        let out = table("t", &rows, &[col("name", "Name", Kind::Text)], None).into_string();
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
    }

    #[test]
    fn sorting_orders_numbers_as_numbers() {
        let mut rows = vec![
            serde_json::json!({"v": 9.0}),
            serde_json::json!({"v": 10.0}),
            serde_json::json!({"v": 2.0}),
        ];
        let s = SortLinks {
            base: "?".into(),
            key: "v".into(),
            desc: true,
        };
        s.apply(&mut rows);
        let got: Vec<f64> = rows.iter().filter_map(|r| r["v"].as_f64()).collect();
        assert_eq!(got, vec![10.0, 9.0, 2.0]);
        assert_eq!(s.href("v"), "?sort=v&dir=asc");
        assert_eq!(s.href("w"), "?sort=w&dir=desc");
    }
}

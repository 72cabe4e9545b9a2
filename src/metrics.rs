//! The server's own counters, in Prometheus' text format at `/metrics`:
//! records ingested per signal (stored, already stored, refused), store
//! commits and their time, the writer's queue (read at scrape time), tool calls per tool and
//! outcome with their time, and refused requests per outcome. Labels are signals, tool names and outcomes only — never a
//! developer, token, session or anything else from the data.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

/// One counter: its name and label pairs.
type Key = (&'static str, Vec<(&'static str, String)>);

fn counters() -> &'static Mutex<BTreeMap<Key, f64>> {
    static COUNTERS: OnceLock<Mutex<BTreeMap<Key, f64>>> = OnceLock::new();
    COUNTERS.get_or_init(Default::default)
}

/// What each series counts (its `# HELP` line) and its type.
const HELP: &[(&str, &str, &str)] = &[
    (
        "tokentally_ingest_records_total",
        "Records received over OTLP, by signal and result (stored, duplicate, refused).",
        "counter",
    ),
    (
        "tokentally_store_commits_total",
        "Write transactions committed (each holds one or more ingest requests).",
        "counter",
    ),
    (
        "tokentally_store_commit_seconds_total",
        "Time spent writing and committing those transactions.",
        "counter",
    ),
    (
        "tokentally_tool_calls_total",
        "Tool calls answered (MCP, web view), by tool and outcome.",
        "counter",
    ),
    (
        "tokentally_tool_call_seconds_total",
        "Time spent answering tool calls, by tool.",
        "counter",
    ),
    (
        "tokentally_denied_requests_total",
        "Requests refused before any tool ran, by outcome.",
        "counter",
    ),
];

/// Adds `by` to a counter.
pub fn add(name: &'static str, labels: &[(&'static str, &str)], by: f64) {
    if by == 0.0 || !by.is_finite() {
        return;
    }
    let key = (
        name,
        labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect(),
    );
    let mut map = counters().lock().unwrap_or_else(|p| p.into_inner());
    *map.entry(key).or_insert(0.0) += by;
}

/// Counts one committed write transaction.
pub fn committed(seconds: f64) {
    add("tokentally_store_commits_total", &[], 1.0);
    add("tokentally_store_commit_seconds_total", &[], seconds);
}

/// Counts one ingest request's records.
pub fn ingested(signal: &str, stored: u64, duplicates: u64, refused: u64) {
    for (result, n) in [
        ("stored", stored),
        ("duplicate", duplicates),
        ("refused", refused),
    ] {
        add(
            "tokentally_ingest_records_total",
            &[("signal", signal), ("result", result)],
            n as f64,
        );
    }
}

/// Counts one tool call.
/// Upper bounds (seconds) of the tool-call latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Per tool: calls at or under each bound of [`BUCKETS`], the sum of the
/// seconds and the count.
type Histograms = BTreeMap<String, ([u64; BUCKETS.len()], f64, u64)>;

fn histograms() -> &'static Mutex<Histograms> {
    static HISTOGRAMS: OnceLock<Mutex<Histograms>> = OnceLock::new();
    HISTOGRAMS.get_or_init(Default::default)
}

const HISTOGRAM: &str = "tokentally_tool_call_duration_seconds";

pub fn tool_call(tool: &str, outcome: &str, seconds: f64) {
    if seconds.is_finite() && seconds >= 0.0 {
        let mut map = histograms().lock().unwrap_or_else(|p| p.into_inner());
        let h = map.entry(tool.to_string()).or_default();
        for (n, bound) in h.0.iter_mut().zip(BUCKETS) {
            *n += u64::from(seconds <= bound);
        }
        h.1 += seconds;
        h.2 += 1;
    }
    add(
        "tokentally_tool_calls_total",
        &[("tool", tool), ("outcome", outcome)],
        1.0,
    );
    add(
        "tokentally_tool_call_seconds_total",
        &[("tool", tool)],
        seconds,
    );
}

/// Counts one refused request.
pub fn denied(outcome: &str) {
    add(
        "tokentally_denied_requests_total",
        &[("outcome", outcome)],
        1.0,
    );
}

/// A label value as Prometheus' text format writes it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Every counter in Prometheus' text exposition format, then `gauges`
/// (name, help, value) read by the caller at scrape time.
pub fn render(gauges: &[(&str, &str, f64)]) -> String {
    let map = counters().lock().unwrap_or_else(|p| p.into_inner());
    let mut out = String::new();
    for (name, help, kind) in HELP {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for ((n, labels), v) in map.iter().filter(|((n, _), _)| n == name) {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            if labels.is_empty() {
                out.push_str(&format!("{n} {v}\n"));
            } else {
                out.push_str(&format!("{n}{{{}}} {v}\n", labels.join(",")));
            }
        }
    }
    drop(map);
    out.push_str(&format!(
        "# HELP {HISTOGRAM} How long tool calls (MCP, web view) took to answer, by tool.\n\
         # TYPE {HISTOGRAM} histogram\n"
    ));
    let hists = histograms().lock().unwrap_or_else(|p| p.into_inner());
    for (tool, (buckets, sum, count)) in hists.iter() {
        let tool = escape(tool);
        for (n, bound) in buckets.iter().zip(BUCKETS) {
            out.push_str(&format!(
                "{HISTOGRAM}_bucket{{tool=\"{tool}\",le=\"{bound}\"}} {n}\n"
            ));
        }
        out.push_str(&format!(
            "{HISTOGRAM}_bucket{{tool=\"{tool}\",le=\"+Inf\"}} {count}\n\
             {HISTOGRAM}_sum{{tool=\"{tool}\"}} {sum}\n\
             {HISTOGRAM}_count{{tool=\"{tool}\"}} {count}\n"
        ));
    }
    for (name, help, value) in gauges {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_call_latency_is_a_cumulative_histogram() {
        tool_call("unit_hist_tool", "ok", 0.02);
        tool_call("unit_hist_tool", "failed", 3.0);
        let text = render(&[]);
        let h = "tokentally_tool_call_duration_seconds";
        for (le, n) in [
            ("0.01", 0),
            ("0.025", 1),
            ("2.5", 1),
            ("5", 2),
            ("30", 2),
            ("+Inf", 2),
        ] {
            let line = format!("{h}_bucket{{tool=\"unit_hist_tool\",le=\"{le}\"}} {n}\n");
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(text.contains(&format!("{h}_count{{tool=\"unit_hist_tool\"}} 2\n")));
        assert!(text.contains(&format!("{h}_sum{{tool=\"unit_hist_tool\"}} 3.02\n")));
        assert!(text.contains(&format!("# TYPE {h} histogram\n")));
    }

    #[test]
    fn counters_add_up_in_the_text_format() {
        tool_call("unit_test_tool", "ok", 0.5);
        tool_call("unit_test_tool", "ok", 0.25);
        add(
            "tokentally_denied_requests_total",
            &[("outcome", "x\"y")],
            1.0,
        );
        let text = render(&[("unit_gauge", "A gauge.", 3.0)]);
        assert!(
            text.contains("# TYPE unit_gauge gauge\nunit_gauge 3\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "tokentally_tool_calls_total{tool=\"unit_test_tool\",outcome=\"ok\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("tokentally_tool_call_seconds_total{tool=\"unit_test_tool\"} 0.75\n")
        );
        assert!(text.contains("outcome=\"x\\\"y\""));
        assert!(text.contains("# TYPE tokentally_ingest_records_total counter"));
    }
}

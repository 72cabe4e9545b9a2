//! Tool answers as text for people and spreadsheets (`tokentally query
//! --format table|csv|markdown`): the answer's rows as a table, columns in
//! the order the rows name them; lists joined with commas, objects as JSON.

use serde_json::Value;

/// How `tokentally query` prints an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The whole structured answer (default).
    Json,
    /// The summary and an aligned text table of the rows.
    Table,
    /// The rows as CSV (RFC 4180), a header line first.
    Csv,
    /// The rows as a Markdown table.
    Markdown,
}

/// The columns of `rows`: every key, text first (what a row is about),
/// then lists, then numbers; by name within each.
fn columns(rows: &[Value]) -> Vec<String> {
    let mut cols: Vec<(u8, String)> = Vec::new();
    for r in rows {
        if let Some(o) = r.as_object() {
            for (k, v) in o {
                let rank = match v {
                    Value::String(_) => 0,
                    Value::Array(_) => 1,
                    Value::Null => continue,
                    _ => 2,
                };
                match cols.iter_mut().find(|(_, c)| c == k) {
                    Some(c) => c.0 = c.0.min(rank),
                    None => cols.push((rank, k.clone())),
                }
            }
        }
    }
    cols.sort();
    cols.into_iter().map(|(_, c)| c).collect()
}

/// A number as people read it: at most four decimals.
fn short(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if v.is_f64() && f.fract() != 0.0 => {
            let s = format!("{f:.4}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        _ => text(v).replace(['\n', '\r'], " "),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The answer's rows (or, for an answer without rows, its own fields as one row).
fn rows_of(answer: &Value) -> Vec<Value> {
    match answer.get("rows").and_then(Value::as_array) {
        Some(rows) => rows.clone(),
        None => vec![answer.clone()],
    }
}

/// Renders `answer` (with its one-line `summary`) in `format`.
pub fn render(answer: &Value, summary: &str, format: Format) -> String {
    let rows = rows_of(answer);
    let cols = columns(&rows);
    let cell = if format == Format::Csv { text } else { short };
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| cols.iter().map(|c| cell(&r[c.as_str()])).collect())
        .collect();
    match format {
        Format::Json => serde_json::to_string_pretty(answer).unwrap_or_default(),
        Format::Csv => {
            let mut out = cols
                .iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .join(",");
            out.push_str("\r\n");
            for row in &cells {
                out.push_str(
                    &row.iter()
                        .map(|c| csv_cell(c))
                        .collect::<Vec<_>>()
                        .join(","),
                );
                out.push_str("\r\n");
            }
            out
        }
        Format::Markdown => {
            let mut out = format!(
                "| {} |\n",
                cols.iter()
                    .map(|c| md_cell(c))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
            out.push_str(&format!("|{}\n", "---|".repeat(cols.len())));
            for row in &cells {
                out.push_str(&format!(
                    "| {} |\n",
                    row.iter()
                        .map(|c| md_cell(c))
                        .collect::<Vec<_>>()
                        .join(" | ")
                ));
            }
            out
        }
        Format::Table => {
            let width = |i: usize| {
                cells
                    .iter()
                    .map(|r| r[i].chars().count())
                    .chain([cols[i].chars().count()])
                    .max()
                    .unwrap_or(0)
                    .min(60)
            };
            let widths: Vec<usize> = (0..cols.len()).map(width).collect();
            let numeric: Vec<bool> = (0..cols.len())
                .map(|i| {
                    rows.iter()
                        .all(|r| r[cols[i].as_str()].is_number() || r[cols[i].as_str()].is_null())
                })
                .collect();
            let line = |values: &[String]| {
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let v: String = if v.chars().count() > widths[i] {
                            format!(
                                "{}…",
                                v.chars()
                                    .take(widths[i].saturating_sub(1))
                                    .collect::<String>()
                            )
                        } else {
                            v.clone()
                        };
                        if numeric[i] {
                            format!("{v:>w$}", w = widths[i])
                        } else {
                            format!("{v:<w$}", w = widths[i])
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
            };
            let mut out = format!("{summary}\n\n{}\n", line(&cols));
            out.push_str(&format!(
                "{}\n",
                widths
                    .iter()
                    .map(|w| "-".repeat(*w))
                    .collect::<Vec<_>>()
                    .join("  ")
            ));
            for row in &cells {
                out.push_str(&line(row));
                out.push('\n');
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer() -> Value {
        json!({"rows": [
            {"developer": "a@x.com", "cost_usd": 1.5, "agents": ["claude_code", "codex"]},
            {"developer": "b, \"q\"|c", "cost_usd": 10.25, "note": "line\nbreak"},
        ]})
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let out = render(&answer(), "", Format::Csv);
        assert_eq!(
            out,
            "developer,note,agents,cost_usd\r\na@x.com,,\"claude_code, codex\",1.5\r\n\"b, \"\"q\"\"|c\",\"line\nbreak\",,10.25\r\n"
        );
    }

    #[test]
    fn markdown_escapes_pipes_and_breaks() {
        let out = render(&answer(), "", Format::Markdown);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "| developer | note | agents | cost_usd |");
        assert_eq!(lines[1], "|---|---|---|---|");
        assert_eq!(lines[3], "| b, \"q\"\\|c | line break |  | 10.25 |");
    }

    #[test]
    fn tables_align_numbers_right() {
        let out = render(&answer(), "2 developers", Format::Table);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "2 developers");
        assert!(lines[2].starts_with("developer") && lines[2].ends_with("cost_usd"));
        assert!(lines[4].contains("     1.5"), "{out}");
        assert!(lines[5].contains("  10.25"), "{out}");
        // An answer without rows is one row of its fields.
        let one = render(&json!({"total": 3}), "", Format::Csv);
        assert_eq!(one, "total\r\n3\r\n");
        let r = render(
            &json!({"rows": [{"mean": 199.569573283859}]}),
            "",
            Format::Markdown,
        );
        assert!(r.contains("| 199.5696 |"), "{r}");
    }
}

//! Numbers and times as people read them, for every surface that writes
//! for people (the web view, the report, tables on the command line): money,
//! counts, ratios, durations, times, the change against a previous period.

use serde_json::Value;

/// How a column's values are shown.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Plain text.
    Text,
    /// US dollars.
    Money,
    /// A whole number with separators.
    Count,
    /// A ratio 0..1 as a percentage.
    Ratio,
    /// Milliseconds.
    Millis,
    /// Seconds as a duration.
    Seconds,
    /// An RFC 3339 time.
    Time,
    /// A list of strings.
    List,
}

/// A value as the column shows it.
pub fn cell(v: &Value, kind: Kind) -> String {
    match (kind, v) {
        (_, Value::Null) => "—".into(),
        (Kind::Money, v) => v.as_f64().map(money).unwrap_or_default(),
        (Kind::Count, v) => v.as_f64().map(|n| count(n as i64)).unwrap_or_default(),
        (Kind::Ratio, v) => v.as_f64().map(percent).unwrap_or_default(),
        (Kind::Millis, v) => v.as_f64().map(millis).unwrap_or_default(),
        (Kind::Seconds, v) => v.as_f64().map(seconds).unwrap_or_default(),
        (Kind::Time, Value::String(s)) => short_time(s),
        (Kind::List, Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect::<Vec<_>>()
            .join(", "),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Bool(b)) => if *b { "yes" } else { "no" }.into(),
        (_, v) => v.to_string(),
    }
}

/// Relative change from `before` to `now` (`None` when `before` is zero).
pub fn change(now: f64, before: f64) -> Option<f64> {
    (before != 0.0).then(|| (now - before) / before)
}

/// The period just before an answer's range, as RFC 3339 `since`/`until`.
pub fn previous_range(answer: &Value) -> Option<(String, String)> {
    let since: jiff::Timestamp = answer["range"]["since"].as_str()?.parse().ok()?;
    let until: jiff::Timestamp = answer["range"]["until"].as_str()?.parse().ok()?;
    let span = until.as_nanosecond() - since.as_nanosecond();
    let before = jiff::Timestamp::from_nanosecond(since.as_nanosecond() - span).ok()?;
    Some((before.to_string(), since.to_string()))
}

/// US dollars: cents from one dollar up, four decimals below.
pub fn money(v: f64) -> String {
    if v.abs() >= 1.0 {
        format!("${}", with_separators(&format!("{v:.2}")))
    } else {
        format!("${v:.4}")
    }
}

/// A whole number with thousands separators.
pub fn count(n: i64) -> String {
    with_separators(&n.to_string())
}

fn with_separators(s: &str) -> String {
    let (sign, rest) = s.strip_prefix('-').map_or(("", s), |r| ("-", r));
    let (int, frac) = rest
        .split_once('.')
        .map_or((rest, None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    match frac {
        Some(f) => format!("{sign}{out}.{f}"),
        None => format!("{sign}{out}"),
    }
}

/// A ratio as a percentage with one decimal.
pub fn percent(r: f64) -> String {
    format!("{:.1}%", r * 100.0)
}

/// Milliseconds, whole below ten seconds.
pub fn millis(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{} ms", ms.round() as i64)
    }
}

/// Seconds as `1h 02m`, `3m 07s` or `12.5 s`.
pub fn seconds(s: f64) -> String {
    let whole = s.round() as i64;
    if whole >= 3600 {
        format!("{}h {:02}m", whole / 3600, (whole % 3600) / 60)
    } else if whole >= 60 {
        format!("{}m {:02}s", whole / 60, whole % 60)
    } else {
        format!("{s:.1} s")
    }
}

/// An RFC 3339 time as `YYYY-MM-DD HH:MM`.
pub fn short_time(t: &str) -> String {
    match t.get(..16) {
        Some(head) if t.len() > 16 => head.replacen('T', " ", 1),
        _ => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(money(1234.5), "$1,234.50");
        assert_eq!(money(0.01234), "$0.0123");
        assert_eq!(money(-2.0), "$-2.00");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(-1000), "-1,000");
        assert_eq!(count(999), "999");
        assert_eq!(percent(0.925), "92.5%");
        assert_eq!(millis(387.0), "387 ms");
        assert_eq!(millis(24_172.0), "24.2 s");
        assert_eq!(seconds(477.709), "7m 58s");
        assert_eq!(seconds(3725.0), "1h 02m");
        assert_eq!(seconds(12.46), "12.5 s");
        assert_eq!(
            short_time("2026-12-02T00:14:10.168+00:00"),
            "2026-12-02 00:14"
        );
        assert_eq!(change(110.0, 100.0), Some(0.1));
        assert_eq!(change(5.0, 0.0), None);
    }
}

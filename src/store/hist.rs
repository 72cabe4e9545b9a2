//! The text form of a day's exact latency histogram (`api_latency_daily`,
//! `tool_latency_daily`): `ms:count:failures` entries, ascending by ms,
//! separated by commas. One row per day, developer and model or tool holds
//! what the hourly histograms hold in one row per distinct millisecond, so
//! a month reads a few thousand rows instead of one per request.

use std::collections::BTreeMap;

/// Duration ms → (count, failures).
pub type Hist = BTreeMap<i64, (i64, i64)>;

/// Adds the entries of `text` into `into`; entries that do not parse are
/// skipped (the writer never writes such).
pub fn add_text(text: &str, into: &mut Hist) {
    for entry in text.split(',') {
        let mut parts = entry.split(':').map(str::parse::<i64>);
        if let (Some(Ok(ms)), Some(Ok(n)), Some(Ok(f))) = (parts.next(), parts.next(), parts.next())
        {
            let e = into.entry(ms).or_insert((0, 0));
            e.0 += n;
            e.1 += f;
        }
    }
}

/// The text form of `hist`.
pub fn to_text(hist: &Hist) -> String {
    let mut out = String::with_capacity(hist.len() * 12);
    for (i, (ms, (n, f))) in hist.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{ms}:{n}:{f}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_merges() {
        let mut h = Hist::new();
        h.insert(5, (2, 1));
        h.insert(1200, (1, 0));
        let text = to_text(&h);
        assert_eq!(text, "5:2:1,1200:1:0");
        let mut merged = Hist::new();
        add_text(&text, &mut merged);
        add_text("5:1:0,7:3:3", &mut merged);
        assert_eq!(
            merged.into_iter().collect::<Vec<_>>(),
            vec![(5, (3, 1)), (7, (3, 3)), (1200, (1, 0))]
        );
        let mut empty = Hist::new();
        add_text("", &mut empty);
        assert!(empty.is_empty());
    }
}

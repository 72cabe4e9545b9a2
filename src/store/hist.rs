//! The text form of an hour's or a day's exact latency histogram
//! (`api_latency_hourly`, `tool_latency_hourly`, `api_latency_daily`,
//! `tool_latency_daily`): `ms:count:failures` entries, ascending by ms,
//! separated by commas. One row per hour or day, developer and model or
//! tool holds what would otherwise be one row per distinct millisecond
//! (nearly one per call), so a month reads a few thousand rows instead of
//! one per request.

use std::collections::BTreeMap;

/// Duration ms → (count, failures).
pub type Hist = BTreeMap<i64, (i64, i64)>;

/// The entries of `text` as `(ms, count, failures)`, in its order;
/// entries that do not parse are skipped (the writer never writes such).
/// Read byte by byte: a month of histograms is megabytes of this text.
pub fn entries(text: &str) -> impl Iterator<Item = (i64, i64, i64)> + '_ {
    text.as_bytes().split(|b| *b == b',').filter_map(|entry| {
        let mut fields = [0i64; 3];
        let mut at = 0;
        let mut digits = 0;
        for b in entry {
            match b {
                b'0'..=b'9' if at < 3 => {
                    fields[at] = fields[at]
                        .checked_mul(10)?
                        .checked_add(i64::from(b - b'0'))?;
                    digits += 1;
                }
                b':' if digits > 0 && at < 2 => {
                    at += 1;
                    digits = 0;
                }
                _ => return None,
            }
        }
        (at == 2 && digits > 0).then_some((fields[0], fields[1], fields[2]))
    })
}

/// Adds `count` observations of `ms` (`failures` of them failed) to `hist`.
pub fn add(hist: &mut Hist, ms: i64, count: i64, failures: i64) {
    let e = hist.entry(ms).or_insert((0, 0));
    e.0 += count;
    e.1 += failures;
}

/// Adds the entries of `text` into `into`.
pub fn add_text(text: &str, into: &mut Hist) {
    for (ms, n, f) in entries(text) {
        add(into, ms, n, f);
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
        let odd: Vec<_> =
            entries("1:2:3,x:1:0,4:5,6:7:8:9,:1:1,99999999999999999999:1:0,10:0:0").collect();
        assert_eq!(odd, vec![(1, 2, 3), (10, 0, 0)]);
    }
}

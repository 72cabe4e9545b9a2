//! The one grammar for lengths of time, used wherever a person types one:
//! relative `since`/`until` in the tools (`7d`), token expiry
//! (`--expires 30m`), retention (`--retention 3months`).
//!
//! Accepted: a number and a unit (`30s`, `30m`, `24h`, `7d`, `2w`), the
//! friendly forms (`90 minutes`, `1 week`, `3months`, `1y 2mo`), and ISO
//! 8601 durations (`P7D`, `PT12H`) — the last two parsed by `jiff`. Days are
//! 24 hours; months and years count back from now.

use std::time::Duration;

/// The length of `text`, if it reads as one (zero and negative lengths do not).
pub fn parse(text: &str) -> Option<Duration> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let span: jiff::Span = t.parse().ok()?;
    if span.is_negative() || span.is_zero() {
        return None;
    }
    let signed = if span.get_years() != 0 || span.get_months() != 0 {
        // Calendar units: as long as they are, counted back from now.
        let now = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC);
        let start = now.checked_sub(span).ok()?;
        start.duration_until(&now)
    } else {
        span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .ok()?
    };
    Duration::try_from(signed).ok()
}

/// What [`parse`] accepts, for error messages.
pub const FORMS: &str = "a number and a unit (30s, 30m, 24h, 7d, 2w), words (90 minutes, 1 week, 3 months) or ISO 8601 (P7D)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_words_and_iso_8601() {
        let s = Duration::from_secs;
        for (text, want) in [
            ("30s", s(30)),
            ("30m", s(1800)),
            ("24h", s(86_400)),
            ("7d", s(7 * 86_400)),
            ("2w", s(14 * 86_400)),
            ("90 minutes", s(5400)),
            ("1 week", s(7 * 86_400)),
            ("P7D", s(7 * 86_400)),
            ("PT12H", s(12 * 3600)),
            (" 1h ", s(3600)),
        ] {
            assert_eq!(parse(text), Some(want), "{text}");
        }
        let months = parse("3months").unwrap().as_secs();
        assert!((89 * 86_400..=92 * 86_400).contains(&months), "{months}");
        for bad in ["", "0d", "-3d", "soon", "7", "1e9d", "P"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}

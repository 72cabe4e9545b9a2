//! Time ranges: `since`/`until` as RFC 3339 or relative forms, resolved in an
//! IANA time zone into a half-open UTC range `[since, until)`.
//!
//! Relative forms: `30m`, `24h`, `7d`, `2w` (exact durations before now; a day
//! is 24 hours); `today`, `yesterday`, `this_week`, `last_week` (calendar
//! periods in the time zone, weeks start on Monday). As `since` a period sets
//! both ends when `until` is absent (`yesterday` = yesterday midnight to
//! today midnight); as `until` it means the period's start; `now` is now.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

use super::QueryError;

/// Ranges longer than this many days are narrowed to the stored data's
/// extent before they are answered (see `plan::data_extent`), so "all time"
/// or `since=2020-01-01` costs what the data costs, not what the years do.
pub const FIT_TO_DATA_AFTER_DAYS: i64 = 400;

/// A resolved half-open UTC range and the zone used to read and show it.
#[derive(Debug, Clone)]
pub struct TimeRange {
    /// Start, ns since the epoch (inclusive).
    pub since_ns: i64,
    /// End, ns since the epoch (exclusive).
    pub until_ns: i64,
    /// Zone used to resolve calendar words and to show times.
    pub tz: TimeZone,
    /// IANA name of `tz`.
    pub tz_name: String,
    /// Set when the asked range was wider than the stored data and was
    /// narrowed to it: the range that was asked for, as shown in answers.
    pub asked: Option<(String, String)>,
}

/// The resolved range as stated in every answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct RangeInfo {
    /// Start (inclusive) in the requested time zone, RFC 3339.
    pub since: String,
    /// End (exclusive) in the requested time zone, RFC 3339.
    pub until: String,
    /// IANA time zone used.
    pub timezone: String,
    /// Present when the range asked for was wider than the stored data: the
    /// range was narrowed to the hours that hold data, and this says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narrowed: Option<String>,
}

impl TimeRange {
    /// The range as shown in answers.
    pub fn info(&self) -> RangeInfo {
        RangeInfo {
            since: self.show(self.since_ns),
            until: self.show(self.until_ns),
            timezone: self.tz_name.clone(),
            narrowed: self.asked.as_ref().map(|(since, until)| {
                format!(
                    "asked for {since} to {until}, wider than the stored data; answered over the hours that hold data"
                )
            }),
        }
    }

    /// Days between since and until (rounded down).
    pub fn days(&self) -> i64 {
        ((i128::from(self.until_ns) - i128::from(self.since_ns)) / 86_400_000_000_000) as i64
    }

    /// Narrows the range to `[first, last]` of the stored data (whole hours),
    /// remembering what was asked; a range already inside is unchanged.
    pub fn narrow_to(&mut self, first_ns: i64, last_ns: i64) {
        let hour = crate::store::HOUR_NS;
        let since = first_ns.div_euclid(hour).saturating_mul(hour);
        let until = last_ns
            .div_euclid(hour)
            .saturating_add(1)
            .saturating_mul(hour);
        let (since, until) = (since.max(self.since_ns), until.min(self.until_ns));
        if (since, until) == (self.since_ns, self.until_ns) {
            return;
        }
        let asked = (self.show(self.since_ns), self.show(self.until_ns));
        if since >= until {
            // No data inside the range: keep it as asked.
            return;
        }
        self.since_ns = since;
        self.until_ns = until;
        self.asked = Some(asked);
    }

    /// Formats a nanosecond timestamp in the range's zone (RFC 3339).
    pub fn show(&self, ns: i64) -> String {
        show_ns(ns, &self.tz)
    }
}

/// Formats a nanosecond timestamp in `tz` as RFC 3339 (millisecond precision).
pub fn show_ns(ns: i64, tz: &TimeZone) -> String {
    match Timestamp::from_nanosecond(ns as i128) {
        Ok(ts) => {
            let z = ts.to_zoned(tz.clone());
            z.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
        }
        Err(_) => ns.to_string(),
    }
}

/// Looks up an IANA zone (`None` or empty = UTC).
pub fn zone(name: Option<&str>) -> Result<(TimeZone, String), QueryError> {
    match name.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok((TimeZone::UTC, "UTC".to_string())),
        Some(n) if n.eq_ignore_ascii_case("utc") || n == "Z" => {
            Ok((TimeZone::UTC, "UTC".to_string()))
        }
        Some(n) => TimeZone::get(n).map(|tz| (tz, n.to_string())).map_err(|_| {
            QueryError::Invalid(format!(
                "unknown time zone {n:?}: use an IANA name such as \"Europe/Berlin\" or \"UTC\""
            ))
        }),
    }
}

/// Nanoseconds since the epoch, saturating at the `i64` range (about the
/// years 1677 to 2262); such far times then fail the range checks.
fn ts_ns(ts: Timestamp) -> i64 {
    let n = ts.as_nanosecond();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

fn zoned_ns(z: &Zoned) -> i64 {
    ts_ns(z.timestamp())
}

fn bad(what: &str, value: &str) -> QueryError {
    QueryError::Invalid(format!(
        "{what} {value:?} is not understood: use RFC 3339 (2026-11-20T09:00:00Z), a relative \
         duration (30m, 24h, 7d, 2w, 1 week, P7D) or one of today, yesterday, this_week, last_week, \
         this_month, last_month"
    ))
}

/// A calendar period `[start, end)` for the words `today`, `yesterday`,
/// `this_week`, `last_week`, with `end` capped at now for current periods.
fn period(word: &str, now: &Zoned) -> Result<Option<(i64, i64)>, QueryError> {
    let err = |e: jiff::Error| QueryError::Invalid(format!("cannot resolve {word:?}: {e}"));
    let today = now.start_of_day().map_err(err)?;
    let week_start = || -> Result<Zoned, QueryError> {
        let back = now.weekday().to_monday_zero_offset() as i64;
        today
            .checked_sub(back.days())
            .and_then(|z| z.start_of_day())
            .map_err(err)
    };
    let out = match word {
        "today" => Some((zoned_ns(&today), zoned_ns(now))),
        "yesterday" => {
            let y = today
                .checked_sub(1.day())
                .and_then(|z| z.start_of_day())
                .map_err(err)?;
            Some((zoned_ns(&y), zoned_ns(&today)))
        }
        "this_week" => Some((zoned_ns(&week_start()?), zoned_ns(now))),
        "this_month" => {
            let first = today.first_of_month().map_err(err)?;
            Some((zoned_ns(&first), zoned_ns(now)))
        }
        "last_month" => {
            let first = today.first_of_month().map_err(err)?;
            let prev = first
                .checked_sub(1.month())
                .and_then(|z| z.first_of_month())
                .map_err(err)?;
            Some((zoned_ns(&prev), zoned_ns(&first)))
        }
        "last_week" => {
            let ws = week_start()?;
            let prev = ws
                .checked_sub(7.days())
                .and_then(|z| z.start_of_day())
                .map_err(err)?;
            Some((zoned_ns(&prev), zoned_ns(&ws)))
        }
        _ => None,
    };
    Ok(out)
}

/// A relative duration such as `30m`, `24h`, `7d`, `1 week`, `P7D`
/// ([`crate::duration`]), in ns.
fn relative(value: &str) -> Option<i64> {
    i64::try_from(crate::duration::parse(value)?.as_nanos()).ok()
}

/// One end given by the caller: an instant, or a period `[start, end)`.
fn point(value: &str, now: &Zoned, what: &str) -> Result<(i64, Option<i64>), QueryError> {
    let v = value.trim();
    if v == "now" {
        return Ok((zoned_ns(now), None));
    }
    if let Some((start, end)) = period(v, now)? {
        return Ok((start, Some(end)));
    }
    if let Some(ago) = relative(v) {
        let t = zoned_ns(now)
            .checked_sub(ago)
            .ok_or_else(|| bad(what, value))?;
        return Ok((t, None));
    }
    if let Ok(ts) = v.parse::<Timestamp>() {
        return Ok((ts_ns(ts), None));
    }
    // A civil date (its midnight: as `since` alone, from that day on) or a
    // datetime without offset, in the zone.
    if let Ok(d) = v.parse::<jiff::civil::Date>() {
        let z = d
            .to_zoned(now.time_zone().clone())
            .map_err(|_| bad(what, value))?;
        return Ok((zoned_ns(&z), None));
    }
    if let Ok(dt) = v.parse::<jiff::civil::DateTime>() {
        let z = dt
            .to_zoned(now.time_zone().clone())
            .map_err(|_| bad(what, value))?;
        return Ok((zoned_ns(&z), None));
    }
    Err(bad(what, value))
}

/// Resolves `since`/`until`/`timezone`. Without `since` the range starts
/// `default_since_ns` before the end (`None`: at the beginning of the data).
pub fn resolve(
    since: Option<&str>,
    until: Option<&str>,
    timezone: Option<&str>,
    now: Timestamp,
    default_lookback_ns: Option<i64>,
) -> Result<TimeRange, QueryError> {
    let (tz, tz_name) = zone(timezone)?;
    let now_z = now.to_zoned(tz.clone());
    let now_ns = zoned_ns(&now_z);
    let since_p = since.map(|s| point(s, &now_z, "since")).transpose()?;
    let until_ns = match until {
        Some(u) => point(u, &now_z, "until")?.0,
        None => match since_p {
            Some((_, Some(end))) => end,
            _ => now_ns,
        },
    };
    let since_ns = match since_p {
        Some((s, _)) => s,
        None => match default_lookback_ns {
            Some(back) => until_ns.saturating_sub(back),
            None => 0,
        },
    };
    if since_ns >= until_ns {
        return Err(QueryError::Invalid(format!(
            "empty time range: since ({}) is not before until ({}); give an earlier since or a later until",
            show_ns(since_ns, &tz),
            show_ns(until_ns, &tz)
        )));
    }
    Ok(TimeRange {
        since_ns,
        until_ns,
        tz,
        tz_name,
        asked: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn ns(s: &str) -> i64 {
        ts(s).as_nanosecond() as i64
    }

    #[test]
    fn relative_durations() {
        let now = ts("2026-11-21T12:00:00Z");
        let r = resolve(Some("24h"), None, None, now, None).unwrap();
        assert_eq!(r.since_ns, ns("2026-11-20T12:00:00Z"));
        assert_eq!(r.until_ns, ns("2026-11-21T12:00:00Z"));
        let r = resolve(Some("30m"), None, None, now, None).unwrap();
        assert_eq!(r.since_ns, ns("2026-11-21T11:30:00Z"));
        let r = resolve(Some("7d"), Some("1d"), None, now, None).unwrap();
        assert_eq!(r.since_ns, ns("2026-11-14T12:00:00Z"));
        assert_eq!(r.until_ns, ns("2026-11-20T12:00:00Z"));
        assert_eq!(r.info().timezone, "UTC");
    }

    #[test]
    fn calendar_words_in_zone() {
        // Saturday 2026-11-21 12:00 UTC = 13:00 in Berlin.
        let now = ts("2026-11-21T12:00:00Z");
        let r = resolve(Some("today"), None, Some("Europe/Berlin"), now, None).unwrap();
        assert_eq!(r.since_ns, ns("2026-11-20T23:00:00Z"));
        assert_eq!(r.until_ns, ns("2026-11-21T12:00:00Z"));
        assert_eq!(r.info().since, "2026-11-21T00:00:00.000+01:00");
        let r = resolve(Some("yesterday"), None, Some("Europe/Berlin"), now, None).unwrap();
        assert_eq!(r.since_ns, ns("2026-11-19T23:00:00Z"));
        assert_eq!(r.until_ns, ns("2026-11-20T23:00:00Z"));
        let r = resolve(Some("this_week"), None, None, now, None).unwrap();
        assert_eq!(r.since_ns, ns("2026-11-16T00:00:00Z"));
        let r = resolve(Some("last_week"), None, None, now, None).unwrap();
        assert_eq!(r.since_ns, ns("2026-11-09T00:00:00Z"));
        assert_eq!(r.until_ns, ns("2026-11-16T00:00:00Z"));
    }

    #[test]
    fn dst_days_are_23_and_25_hours() {
        // US spring forward 2026-03-08, fall back 2026-11-01.
        let now = ts("2026-03-09T15:00:00Z");
        let r = resolve(Some("yesterday"), None, Some("America/New_York"), now, None).unwrap();
        assert_eq!(r.since_ns, ns("2026-03-08T05:00:00Z"));
        assert_eq!(r.until_ns, ns("2026-03-09T04:00:00Z"));
        assert_eq!((r.until_ns - r.since_ns) / 3_600_000_000_000, 23);
        let now = ts("2026-11-02T15:00:00Z");
        let r = resolve(Some("yesterday"), None, Some("America/New_York"), now, None).unwrap();
        assert_eq!((r.until_ns - r.since_ns) / 3_600_000_000_000, 25);
        assert_eq!(r.info().since, "2026-11-01T00:00:00.000-04:00");
        assert_eq!(r.info().until, "2026-11-02T00:00:00.000-05:00");
    }

    #[test]
    fn rfc3339_and_dates() {
        let now = ts("2026-11-21T12:00:00Z");
        let r = resolve(
            Some("2026-11-20T10:00:00+02:00"),
            Some("2026-11-20T12:00:00Z"),
            None,
            now,
            None,
        )
        .unwrap();
        assert_eq!(r.since_ns, ns("2026-11-20T08:00:00Z"));
        // A date alone as since: from that day on, until now.
        let r = resolve(Some("2026-11-20"), None, Some("Asia/Tokyo"), now, None).unwrap();
        assert_eq!(r.since_ns, ns("2026-11-19T15:00:00Z"));
        assert_eq!(r.until_ns, ns("2026-11-21T12:00:00Z"));
        // Billing periods.
        let r = resolve(Some("this_month"), None, None, now, None).unwrap();
        assert_eq!(r.since_ns, ns("2026-11-01T00:00:00Z"));
        assert_eq!(r.until_ns, ns("2026-11-21T12:00:00Z"));
        let r = resolve(Some("last_month"), None, Some("Europe/Berlin"), now, None).unwrap();
        assert_eq!(r.since_ns, ns("2026-09-30T22:00:00Z"));
        assert_eq!(r.until_ns, ns("2026-10-31T23:00:00Z"));
    }

    #[test]
    fn wide_ranges_resolve_and_narrow_to_the_data() {
        let now = ts("2026-11-21T12:00:00Z");
        let r = resolve(Some("36500d"), None, None, now, Some(1)).unwrap();
        assert_eq!(r.days(), 36500);
        let mut r = resolve(
            Some("2020-01-01"),
            Some("2100-01-01T00:00:00Z"),
            None,
            now,
            None,
        )
        .unwrap();
        // Data from 10:20 on Nov 3 to 09:05 on Nov 21.
        r.narrow_to(ns("2026-11-03T10:20:00Z"), ns("2026-11-21T09:05:00Z"));
        assert_eq!(r.since_ns, ns("2026-11-03T10:00:00Z"));
        assert_eq!(r.until_ns, ns("2026-11-21T10:00:00Z"));
        let note = r.info().narrowed.unwrap();
        assert!(
            note.starts_with(
                "asked for 2020-01-01T00:00:00.000+00:00 to 2100-01-01T00:00:00.000+00:00"
            ),
            "{note}"
        );
        // A range inside the data is left alone and says nothing.
        let mut r = resolve(Some("1d"), None, None, now, None).unwrap();
        r.narrow_to(ns("2026-01-01T00:00:00Z"), ns("2026-12-01T00:00:00Z"));
        assert_eq!(r.since_ns, ns("2026-11-20T12:00:00Z"));
        assert_eq!(r.info().narrowed, None);
    }

    #[test]
    fn bad_inputs_say_what_to_fix() {
        let now = ts("2026-11-21T12:00:00Z");
        for (s, u, tz) in [
            (Some("last tuesday"), None, None),
            (Some("1h"), Some("2h"), None),
            (None, None, Some("Mars/Olympus")),
            (Some("'; DROP TABLE events; --"), None, None),
            (Some("7日"), None, None),
            (Some("日"), None, None),
            (Some(""), Some("é"), None),
            (None, None, Some("../../../etc/passwd")),
            (Some("-3d"), None, None),
            (
                Some("0001-01-01T00:00:00Z"),
                Some("9999-12-31T00:00:00Z"),
                None,
            ),
        ] {
            let e = resolve(s, u, tz, now, Some(1)).unwrap_err();
            assert!(matches!(e, QueryError::Invalid(_)), "{e:?}");
        }
    }
}

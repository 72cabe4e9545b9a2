//! The `event.timestamp` attribute, stored as a millisecond offset.
//!
//! Claude Code puts `event.timestamp` (ISO 8601 with milliseconds, such as
//! `2026-11-21T17:12:39.820Z`) on every event, within a few milliseconds of
//! the record time. As JSON in `events.attrs` it costs ~45 bytes per event;
//! as an offset from the record time's millisecond it costs 0–2 bytes.
//!
//! Only a text this module writes back byte for byte is folded, so the
//! attribute is returned exactly as received; any other text stays in
//! `attrs`.

/// The attribute's key.
pub const KEY: &str = "event.timestamp";

/// Length of `YYYY-MM-DDTHH:MM:SS.mmmZ`.
const LEN: usize = 24;

const MS_PER_DAY: i64 = 86_400_000;

/// The offset in ms of `text` from the millisecond of `time_ns`, when `text`
/// is exactly what [`text`] writes for it.
pub fn offset_ms(time_ns: i64, text: &str) -> Option<i64> {
    let ms = parse(text.as_bytes())?;
    let formatted = format(ms)?;
    (formatted.as_slice() == text.as_bytes()).then(|| ms - time_ns.div_euclid(1_000_000))
}

/// The attribute text for a record at `time_ns` with offset `offset_ms`.
pub fn text(time_ns: i64, offset_ms: i64) -> Option<String> {
    let ms = time_ns.div_euclid(1_000_000).checked_add(offset_ms)?;
    let bytes = format(ms)?;
    String::from_utf8(bytes.to_vec()).ok()
}

/// Milliseconds since the epoch of a `YYYY-MM-DDTHH:MM:SS.mmmZ` text with
/// fields in range (years 0000–9999).
fn parse(b: &[u8]) -> Option<i64> {
    if b.len() != LEN
        || b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || b.get(10) != Some(&b'T')
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
        || b.get(19) != Some(&b'.')
        || b.get(23) != Some(&b'Z')
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        b.get(from..to)?.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second, milli) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + milli)
}

/// The text of `ms` since the epoch, for years 0000–9999.
fn format(ms: i64) -> Option<[u8; LEN]> {
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            if let Some(slot) = out.get_mut(i) {
                // `v % 10` is a single digit.
                *slot = b'0' + (v % 10) as u8;
            }
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, month);
    put(8, 2, day);
    put(11, 2, in_day / 3_600_000);
    put(14, 2, in_day / 60_000 % 60);
    put(17, 2, in_day / 1000 % 60);
    put(20, 3, in_day % 1000);
    Some(out)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of days since 1970-01-01 (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claude_code_timestamp_round_trips_as_an_offset() {
        // 2026-11-21T17:12:39.820Z
        let t = 1_795_281_159_820_123_456;
        assert_eq!(offset_ms(t, "2026-11-21T17:12:39.820Z"), Some(0));
        assert_eq!(offset_ms(t, "2026-11-21T17:12:39.823Z"), Some(3));
        assert_eq!(offset_ms(t, "2026-11-21T17:12:38.999Z"), Some(-821));
        assert_eq!(text(t, 0).as_deref(), Some("2026-11-21T17:12:39.820Z"));
        assert_eq!(text(t, -821).as_deref(), Some("2026-11-21T17:12:38.999Z"));
    }

    #[test]
    fn other_texts_are_not_folded() {
        let t = 1_795_281_159_820_000_000;
        for s in [
            "2026-11-21T17:12:39.82Z",
            "2026-11-21T17:12:39.820+00:00",
            "2026-11-21 17:12:39.820Z",
            "2026-02-29T17:12:39.820Z",
            "2026-11-21T24:00:00.000Z",
            "2026-11-21T17:12:60.000Z",
            "+2026-11-21T17:12:39.82Z",
            "2026-11-21T17:12:39.8２Z",
            "",
        ] {
            assert_eq!(offset_ms(t, s), None, "{s}");
        }
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        let first = days_from_civil(1900, 1, 1);
        let last = days_from_civil(2300, 12, 31);
        for day in first..=last {
            let ms = day * MS_PER_DAY + 45_296_789;
            let f = format(ms).unwrap();
            assert_eq!(parse(&f), Some(ms));
        }
        assert_eq!(text(0, 0).as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(text(-1, 0).as_deref(), Some("1969-12-31T23:59:59.999Z"));
    }
}

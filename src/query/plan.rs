//! Which rows answer: the one place that decides it for every question.
//!
//! * **Segments.** A range is split into whole UTC hours, answered from the
//!   rollups the writer keeps in the same transaction as the raw rows, and
//!   the partial hours at its edges, answered from raw rows; a filter or
//!   dimension the rollups do not carry answers the whole range from raw
//!   rows. [`segments`] makes that split; usage, cost, prompts and latency
//!   iterate the same [`Segments`].
//! * **Events or metrics.** Claude Code reports a request's cost and tokens
//!   twice: on its `api_request` event and in the `cost.usage`/`token.usage`
//!   metrics. A session counts from its events when it has any
//!   ([`SESSION_FROM_EVENTS`]), else from its metrics: never both. Records
//!   without a `session.id` (some Claude Code modes send none) fall back to
//!   the developer and the hour: a sessionless metric point counts only when
//!   its developer has no `api_request` in that hour or the hour before
//!   (a delta point covers the export interval before its time), so the
//!   same requests are never counted from both signals
//!   ([`counted_condition`]). The store states the rule
//!   ([`crate::store::counted`]) because it also keeps it applied: whole
//!   hours of usage are read already counted, per developer and hour.

use super::sql::Sql;
use super::time::TimeRange;
use super::visible::Visible;

/// The events-versus-metrics rule is stated by the store, which also keeps
/// it applied in `developer_usage_hourly` (see [`crate::store::counted`]).
pub use crate::store::counted::{
    METRIC_COUNTED_CONTEXTS, ROW_SUMS, SESSION_FROM_EVENTS, counted_condition, session_from_events,
};

/// Nanoseconds per hour: the rollups' granularity (the store keys them by
/// `time_ns / HOUR_NS`).
pub const HOUR_NS: i64 = crate::store::HOUR_NS;

/// A time span `[from, to)` in ns answered from raw rows.
pub type RawSpan = (i64, i64);

/// How one range is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segments {
    /// Whole hours `[first, end)` (hour numbers) answered from the rollups.
    pub rollup_hours: Option<(i64, i64)>,
    /// Spans answered from raw rows, in time order (the edges, or the whole
    /// range).
    pub raw: Vec<RawSpan>,
}

/// Splits `range` into rollup hours and raw spans; `raw_only` answers the
/// whole range from raw rows (filters the rollups cannot express).
pub fn segments(range: &TimeRange, raw_only: bool) -> Segments {
    let (since, until) = (range.since_ns, range.until_ns);
    let hs = since.div_euclid(HOUR_NS) + i64::from(since.rem_euclid(HOUR_NS) != 0);
    let he = until.div_euclid(HOUR_NS);
    if raw_only || hs >= he {
        return Segments {
            rollup_hours: None,
            raw: if since < until {
                vec![(since, until)]
            } else {
                Vec::new()
            },
        };
    }
    let mut raw = Vec::new();
    if since < hs * HOUR_NS {
        raw.push((since, hs * HOUR_NS));
    }
    if he * HOUR_NS < until {
        raw.push((he * HOUR_NS, until));
    }
    Segments {
        rollup_hours: Some((hs, he)),
        raw,
    }
}

/// Hours per rollup day (UTC days: a day rollup is keyed by `hour / 24`).
pub const HOURS_PER_DAY: i64 = 24;

/// How one range is answered from day rollups, hour rollups and raw rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers {
    /// Whole UTC days `[first, end)` (day numbers).
    pub days: Option<(i64, i64)>,
    /// Whole hours `[first, end)` (hour numbers) outside those days.
    pub hours: Vec<(i64, i64)>,
    /// Spans answered from raw rows (the partial hours at the edges).
    pub raw: Vec<RawSpan>,
}

/// Splits `range` into whole UTC days, the whole hours around them and the
/// raw edges, so a month reads about thirty rows per key rather than seven
/// hundred.
pub fn tiers(range: &TimeRange) -> Tiers {
    let seg = segments(range, false);
    let Some((hs, he)) = seg.rollup_hours else {
        return Tiers {
            days: None,
            hours: Vec::new(),
            raw: seg.raw,
        };
    };
    let ds = hs.div_euclid(HOURS_PER_DAY) + i64::from(hs.rem_euclid(HOURS_PER_DAY) != 0);
    let de = he.div_euclid(HOURS_PER_DAY);
    if ds >= de {
        return Tiers {
            days: None,
            hours: vec![(hs, he)],
            raw: seg.raw,
        };
    }
    let hours = [(hs, ds * HOURS_PER_DAY), (de * HOURS_PER_DAY, he)]
        .into_iter()
        .filter(|(a, b)| a < b)
        .collect();
    Tiers {
        days: Some((ds, de)),
        hours,
        raw: seg.raw,
    }
}

/// Only records of a known coding agent count as usage (requests, tokens,
/// cost, latency): the rollups hold only theirs, and raw rows (the edges
/// of a range) answer with this condition on their context `c` so both
/// agree. Records of other senders stay searchable as events.
pub const AGENT_RECORDS: &str = " AND c.agent IS NOT NULL";

/// SQL for the hour number of a time column (matches the rollups' keys).
pub fn hour_of_sql(time_column: &str) -> String {
    format!("{time_column} / {HOUR_NS}")
}

/// The first and last record time (events, metric points, spans) the
/// caller may see; `None` when there is none. For an unrestricted caller
/// each bound is one seek at the end of a time index; for a restricted one,
/// per visible context through the (context, time) indexes.
pub fn data_extent(
    conn: &rusqlite::Connection,
    visible: &Visible,
) -> Result<Option<(i64, i64)>, super::QueryError> {
    let mut sql = Sql::default();
    if visible.is_everyone() {
        sql.push(
            "SELECT MIN(a), MAX(b) FROM (\
             SELECT (SELECT MIN(time_ns) FROM events) AS a, (SELECT MAX(time_ns) FROM events) AS b \
             UNION ALL SELECT (SELECT MIN(time_ns) FROM metric_points), (SELECT MAX(time_ns) FROM metric_points) \
             UNION ALL SELECT (SELECT MIN(start_ns) FROM spans), (SELECT MAX(start_ns) FROM spans))",
        );
    } else {
        sql.push(
            "SELECT MIN(a), MAX(b) FROM (SELECT \
             MIN(COALESCE((SELECT MIN(e.time_ns) FROM events e WHERE e.context_id = c.id), 9223372036854775807), \
                 COALESCE((SELECT MIN(p.time_ns) FROM metric_series ms JOIN metric_points p ON p.series_id = ms.id \
                           WHERE ms.context_id = c.id), 9223372036854775807), \
                 COALESCE((SELECT MIN(s.start_ns) FROM spans s WHERE s.context_id = c.id), 9223372036854775807)) AS a, \
             MAX(COALESCE((SELECT MAX(e.time_ns) FROM events e WHERE e.context_id = c.id), -9223372036854775808), \
                 COALESCE((SELECT MAX(p.time_ns) FROM metric_series ms JOIN metric_points p ON p.series_id = ms.id \
                           WHERE ms.context_id = c.id), -9223372036854775808), \
                 COALESCE((SELECT MAX(s.start_ns) FROM spans s WHERE s.context_id = c.id), -9223372036854775808)) AS b \
             FROM contexts c WHERE 1",
        );
        visible.condition(&mut sql, "c.developer");
        sql.push(")");
    }
    let (first, last): (Option<i64>, Option<i64>) = conn.query_row(
        &sql.text,
        rusqlite::params_from_iter(sql.params.iter()),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(first.zip(last).filter(|(a, b)| a <= b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::fixture::utc;

    #[test]
    fn splits_into_whole_hours_and_edges() {
        let h = HOUR_NS;
        let s = segments(&utc(h + 5, 4 * h + 7), false);
        assert_eq!(s.rollup_hours, Some((2, 4)));
        assert_eq!(s.raw, vec![(h + 5, 2 * h), (4 * h, 4 * h + 7)]);
        let s = segments(&utc(2 * h, 4 * h), false);
        assert_eq!(s.rollup_hours, Some((2, 4)));
        assert!(s.raw.is_empty());
        // Within one hour: raw only.
        let s = segments(&utc(h + 5, h + 9), false);
        assert_eq!(s.rollup_hours, None);
        assert_eq!(s.raw, vec![(h + 5, h + 9)]);
        // Forced raw.
        let s = segments(&utc(0, 5 * h), true);
        assert_eq!(s.rollup_hours, None);
        assert_eq!(s.raw, vec![(0, 5 * h)]);
        // Negative times use floor division.
        let s = segments(&utc(-h - 1, 0), false);
        assert_eq!(s.rollup_hours, Some((-1, 0)));
        assert_eq!(s.raw, vec![(-h - 1, -h)]);
        // Empty.
        assert!(segments(&utc(7, 7), false).raw.is_empty());
    }

    #[test]
    fn tiers_take_whole_days_then_hours_then_raw_edges() {
        let (h, d) = (HOUR_NS, 24 * HOUR_NS);
        // From 05:00:00.000000005 on day 1 to 03:00:00.000000007 on day 4.
        let t = tiers(&utc(d + 5 * h + 5, 4 * d + 3 * h + 7));
        assert_eq!(t.days, Some((2, 4)));
        assert_eq!(t.hours, vec![(30, 48), (96, 99)]);
        assert_eq!(
            t.raw,
            vec![
                (d + 5 * h + 5, d + 6 * h),
                (4 * d + 3 * h, 4 * d + 3 * h + 7)
            ]
        );
        // Aligned on days: days only.
        let t = tiers(&utc(d, 3 * d));
        assert_eq!((t.days, t.hours.len(), t.raw.len()), (Some((1, 3)), 0, 0));
        // Less than a whole day: hours and edges.
        let t = tiers(&utc(d + 5 * h, d + 9 * h + 1));
        assert_eq!(t.days, None);
        assert_eq!(t.hours, vec![(29, 33)]);
        assert_eq!(t.raw, vec![(d + 9 * h, d + 9 * h + 1)]);
        // Within one hour: raw only.
        let t = tiers(&utc(h + 1, h + 2));
        assert_eq!((t.days, t.hours.len()), (None, 0));
        assert_eq!(t.raw, vec![(h + 1, h + 2)]);
    }
}

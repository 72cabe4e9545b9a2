//! Retention on ClickHouse: whole monthly partitions are dropped once the
//! whole month is older than the cutoff (`ALTER TABLE ... DROP PARTITION`,
//! `ON CLUSTER` on a cluster), so a record is kept at most a month longer
//! than the retention period and nothing is rewritten. The tables are
//! partitioned by `toYYYYMM` of their time column ([`super::schema`]).

use super::{ClickHouse, Error};
use crate::store::PruneReceipt;

/// The record tables with their time column.
const TABLES: [(&str, &str); 3] = [
    ("events", "time_ns"),
    ("metric_points", "time_ns"),
    ("spans", "start_ns"),
];

/// `YYYYMM` of the months wholly before `cutoff_ns` from the month of
/// `first_ns` on, with the first instant after each (ns).
fn whole_months_before(first_ns: i64, cutoff_ns: i64) -> Vec<(u32, i64)> {
    let month = |ns: i64| -> Option<jiff::civil::Date> {
        let t = jiff::Timestamp::from_nanosecond(i128::from(ns)).ok()?;
        let d = t.to_zoned(jiff::tz::TimeZone::UTC).date();
        jiff::civil::Date::new(d.year(), d.month(), 1).ok()
    };
    let (Some(mut m), true) = (month(first_ns), first_ns < cutoff_ns) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    loop {
        let Ok(next) = m.checked_add(jiff::Span::new().months(1)) else {
            break;
        };
        let Ok(end) = next
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp().as_nanosecond())
        else {
            break;
        };
        let end = i64::try_from(end).unwrap_or(i64::MAX);
        if end > cutoff_ns {
            break;
        }
        out.push((m.year() as u32 * 100 + m.month() as u32, end));
        m = next;
    }
    out
}

impl ClickHouse {
    /// Drops the partitions wholly older than `cutoff_ns`; the records they
    /// held (each once).
    pub async fn prune(&self, cutoff_ns: i64) -> Result<PruneReceipt, Error> {
        let mut receipt = PruneReceipt::default();
        let on = self
            .cluster
            .as_deref()
            .map_or(String::new(), |c| format!(" ON CLUSTER {c}"));
        let local = if self.cluster.is_some() { "_local" } else { "" };
        let db = &self.settings.database;
        for (table, time) in TABLES {
            let (n, first): (u64, i64) = self
                .write
                .query(&format!("SELECT count(), min({time}) FROM {table}"))
                .fetch_one()
                .await?;
            if n == 0 {
                continue;
            }
            let months = whole_months_before(first, cutoff_ns);
            let Some(&(_, end)) = months.last() else {
                continue;
            };
            let dropped: u64 = self
                .write
                .query(&format!(
                    "SELECT count() FROM {table} FINAL WHERE {time} < ?"
                ))
                .bind(end)
                .fetch_one()
                .await?;
            for (partition, _) in &months {
                self.write
                    .query(&format!(
                        "ALTER TABLE {db}.{table}{local}{on} DROP PARTITION {partition}"
                    ))
                    .execute()
                    .await?;
            }
            match table {
                "events" => receipt.events = dropped,
                "metric_points" => receipt.metric_points = dropped,
                _ => receipt.spans = dropped,
            }
        }
        Ok(receipt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_nanosecond() as i64
    }

    #[test]
    fn only_months_wholly_before_the_cutoff_are_dropped() {
        let got = whole_months_before(ns("2026-09-14T10:00:00Z"), ns("2026-12-03T00:00:00Z"));
        assert_eq!(
            got,
            vec![
                (202609, ns("2026-10-01T00:00:00Z")),
                (202610, ns("2026-11-01T00:00:00Z")),
                (202611, ns("2026-12-01T00:00:00Z")),
            ]
        );
        // The cutoff on a month's first instant drops the month before it.
        let got = whole_months_before(ns("2026-11-30T23:59:59Z"), ns("2026-12-01T00:00:00Z"));
        assert_eq!(got, vec![(202611, ns("2026-12-01T00:00:00Z"))]);
        assert!(
            whole_months_before(ns("2026-12-02T00:00:00Z"), ns("2026-12-03T00:00:00Z")).is_empty()
        );
        assert!(
            whole_months_before(ns("2026-12-04T00:00:00Z"), ns("2026-12-03T00:00:00Z")).is_empty()
        );
    }
}

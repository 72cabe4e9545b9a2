//! Metric series identity and the cumulative-to-delta rule.

use crate::rows::{Context, MetricPointRow, Temporality};

/// Key of a metric series (`metric_series.key`): 16 bytes of a blake3 hash.
pub(crate) type SeriesKey = [u8; 16];

/// The last accepted point of a series, kept to turn cumulative totals
/// into per-interval deltas.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LastPoint {
    /// Start of the point's interval (ns).
    pub(crate) start_ns: i64,
    /// Time of the point (ns).
    pub(crate) time_ns: i64,
    /// Its running total.
    pub(crate) value: f64,
}

/// The per-interval value of a point given the series' last accepted point,
/// and the new last point if this one advances the series.
///
/// Delta sums and gauges pass their value through. A cumulative point
/// contributes its increase since the last point; after a restart (new start
/// time) or a reset (lower total) its whole value; and nothing when it is not
/// newer than the last point (a late or out-of-order point).
pub(crate) fn cumulative_delta(
    p: &MetricPointRow,
    last: Option<LastPoint>,
) -> (f64, Option<LastPoint>) {
    let this = LastPoint {
        start_ns: p.start_ns,
        time_ns: p.time_ns,
        value: p.value,
    };
    let newer = last.is_none_or(|l| p.time_ns > l.time_ns);
    if p.temporality != Temporality::Cumulative {
        return (p.value, newer.then_some(this));
    }
    match last {
        None => (p.value, Some(this)),
        Some(_) if !newer => (0.0, None),
        Some(l) if p.start_ns != l.start_ns || p.value < l.value => (p.value, Some(this)),
        Some(l) => (p.value - l.value, Some(this)),
    }
}

/// Identity of a metric series: context, name, kind, temporality, model,
/// `type` and the remaining attributes (length-prefixed, so no two
/// different tuples hash the same input). The model is hashed as it was
/// sent (`claude-opus-4-8[1m]`, variant included), so a series keeps its
/// key, and its cumulative state, across the split into model and variant.
pub(crate) fn series_key(ctx: &Context, p: &MetricPointRow, attrs: Option<&str>) -> SeriesKey {
    let mut h = blake3::Hasher::new();
    h.update(&ctx.key);
    h.update(&p.temporality.as_i32().to_le_bytes());
    let sent_model = match (&p.model, &p.model_variant) {
        (Some(m), Some(v)) => Some(format!("{m}[{v}]")),
        (m, _) => m.clone(),
    };
    let parts = [
        Some(p.name.as_str()),
        Some(p.kind.as_str()),
        sent_model.as_deref(),
        p.kind_attr.as_deref(),
        attrs,
    ];
    for part in parts {
        match part {
            Some(s) => {
                h.update(&[1]);
                h.update(&(s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
            None => {
                h.update(&[0]);
            }
        }
    }
    let mut key = [0u8; 16];
    key.copy_from_slice(&h.finalize().as_bytes()[..16]);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::{Attrs, MetricKind};

    fn point(temporality: Temporality, start_ns: i64, time_ns: i64, value: f64) -> MetricPointRow {
        MetricPointRow {
            dedup: [0; 16],
            name: "m".into(),
            unit: String::new(),
            description: String::new(),
            kind: MetricKind::Sum,
            temporality,
            monotonic: true,
            start_ns,
            time_ns,
            value,
            count: None,
            detail: None,
            model: None,
            model_variant: None,
            kind_attr: None,
            attrs: Attrs::new(),
        }
    }

    #[test]
    fn cumulative_delta_rules() {
        let c = Temporality::Cumulative;
        let last = Some(LastPoint {
            start_ns: 100,
            time_ns: 200,
            value: 10.0,
        });
        // first point of a series: its whole total
        assert_eq!(cumulative_delta(&point(c, 100, 200, 10.0), None).0, 10.0);
        // normal increase
        let (d, next) = cumulative_delta(&point(c, 100, 300, 14.5), last);
        assert_eq!(d, 4.5);
        assert_eq!(next.map(|n| n.value), Some(14.5));
        // restart: new start time
        assert_eq!(cumulative_delta(&point(c, 250, 300, 3.0), last).0, 3.0);
        // reset: lower total, same start
        assert_eq!(cumulative_delta(&point(c, 100, 300, 2.0), last).0, 2.0);
        // out of order / repeated time: nothing, series unchanged
        assert_eq!(
            cumulative_delta(&point(c, 100, 150, 8.0), last),
            (0.0, None)
        );
        assert_eq!(
            cumulative_delta(&point(c, 100, 200, 12.0), last),
            (0.0, None)
        );
        // delta temporality passes through even when older
        assert_eq!(
            cumulative_delta(&point(Temporality::Delta, 0, 150, 7.0), last),
            (7.0, None)
        );
    }
}

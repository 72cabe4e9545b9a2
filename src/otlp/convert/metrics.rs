//! Metric data points → [`MetricPointRow`]s: every point of sums, gauges,
//! histograms, exponential histograms and summaries, with temporality and
//! monotonicity from its metric, `model` and `type` as typed columns.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint,
    SummaryDataPoint, exemplar, exponential_histogram_data_point::Buckets, metric,
    number_data_point,
};
use serde_json::{Map, Value, json};

use super::{Dedup, Grouped, Rejects, ScopeInfo, Split, attrs, nanos, set_model, set_once};
use crate::otlp::{DecodeOptions, Decoded};
use crate::rows::{Attrs, Batch, MetricKind, MetricPointRow, Temporality};

/// Converts a metrics request into data point rows grouped by context.
pub fn metrics_to_batch(req: &ExportMetricsServiceRequest, opts: &DecodeOptions) -> Decoded {
    let mut conv = Converter {
        grouped: Grouped::new(),
        dedup: Dedup::new(),
        rejects: Rejects::default(),
        split: Split::default(),
        header: Vec::new(),
    };
    for (ri, rm) in req.resource_metrics.iter().enumerate() {
        for (si, sm) in rm.scope_metrics.iter().enumerate() {
            let scope = ScopeInfo::new(rm.resource.as_ref(), sm.scope.as_ref(), opts);
            for (mi, m) in sm.metrics.iter().enumerate() {
                let at = Path { ri, si, mi };
                conv.metric(&scope, m, at);
            }
        }
    }
    let (rejected, message) = conv.rejects.finish("data points");
    Decoded {
        batch: Batch {
            metric_points: conv.grouped.into_groups(),
            ..Batch::default()
        },
        rejected,
        message,
    }
}

#[derive(Clone, Copy)]
struct Path {
    ri: usize,
    si: usize,
    mi: usize,
}

/// What a point carries besides its attributes and times.
struct Reading {
    value: f64,
    count: Option<u64>,
    detail: Option<Value>,
}

struct Converter {
    grouped: Grouped<MetricPointRow>,
    dedup: Dedup,
    rejects: Rejects,
    split: Split,
    /// The metric's identity, hashed into each point's dedup key.
    header: Vec<u8>,
}

fn temporality(n: i32) -> Temporality {
    match n {
        1 => Temporality::Delta,
        2 => Temporality::Cumulative,
        _ => Temporality::Unspecified,
    }
}

impl Converter {
    fn metric(&mut self, scope: &ScopeInfo<'_>, m: &Metric, at: Path) {
        let Some(data) = &m.data else { return };
        let (kind, temp, monotonic) = match data {
            metric::Data::Gauge(_) => (MetricKind::Gauge, Temporality::Unspecified, false),
            metric::Data::Sum(s) => (
                MetricKind::Sum,
                temporality(s.aggregation_temporality),
                s.is_monotonic,
            ),
            metric::Data::Histogram(h) => (
                MetricKind::Histogram,
                temporality(h.aggregation_temporality),
                false,
            ),
            metric::Data::ExponentialHistogram(h) => (
                MetricKind::ExponentialHistogram,
                temporality(h.aggregation_temporality),
                false,
            ),
            metric::Data::Summary(_) => (MetricKind::Summary, Temporality::Unspecified, false),
        };
        self.header.clear();
        for part in [
            m.name.as_bytes(),
            m.unit.as_bytes(),
            m.description.as_bytes(),
            kind.as_str().as_bytes(),
        ] {
            self.header
                .extend_from_slice(&(part.len() as u64).to_le_bytes());
            self.header.extend_from_slice(part);
        }
        self.header.extend_from_slice(&temp.as_i32().to_le_bytes());
        self.header.push(u8::from(monotonic));
        let proto = MetricPointRow {
            dedup: [0; 16],
            name: m.name.clone(),
            unit: m.unit.clone(),
            description: m.description.clone(),
            kind,
            temporality: temp,
            monotonic,
            start_ns: 0,
            time_ns: 0,
            value: 0.0,
            count: None,
            detail: None,
            model: None,
            model_variant: None,
            kind_attr: None,
            attrs: Attrs::new(),
        };
        match data {
            metric::Data::Gauge(g) => self.points(scope, &proto, &g.data_points, at, number),
            metric::Data::Sum(s) => self.points(scope, &proto, &s.data_points, at, number),
            metric::Data::Histogram(h) => self.points(scope, &proto, &h.data_points, at, histogram),
            metric::Data::ExponentialHistogram(h) => {
                self.points(scope, &proto, &h.data_points, at, exponential)
            }
            metric::Data::Summary(s) => self.points(scope, &proto, &s.data_points, at, summary),
        }
    }

    fn points<P: Point>(
        &mut self,
        scope: &ScopeInfo<'_>,
        proto: &MetricPointRow,
        points: &[P],
        at: Path,
        read: fn(&P) -> Reading,
    ) {
        let agent = scope.agent_of(&proto.name);
        for (pi, p) in points.iter().enumerate() {
            self.rejects.seen();
            let (Some(start_ns), Some(time_ns)) = (nanos(p.start()), nanos(p.time())) else {
                self.rejects
                    .reject(|| format!("{}: time out of range", at.describe(pi)));
                continue;
            };
            if time_ns == 0 {
                self.rejects
                    .reject(|| format!("{}: no timeUnixNano", at.describe(pi)));
                continue;
            }
            if p.buckets() > MAX_BUCKETS || p.attributes().len() > super::MAX_ATTRIBUTES {
                self.rejects.reject(|| {
                    format!(
                        "{}: more than {MAX_BUCKETS} buckets or {} attributes",
                        at.describe(pi),
                        super::MAX_ATTRIBUTES
                    )
                });
                continue;
            }
            let kvs = p.attributes();
            let ctx_key = self.split.compute(scope, kvs, agent);
            let Reading {
                value,
                count,
                detail,
            } = read(p);
            let mut row = MetricPointRow {
                dedup: self.dedup.key(&ctx_key, &self.header, p),
                start_ns,
                time_ns,
                value,
                count,
                detail,
                ..proto.clone()
            };
            if let Some(why) = row.out_of_range() {
                self.rejects
                    .reject(|| format!("{}: {why}", at.describe(pi)));
                continue;
            }
            for (i, kv) in kvs.iter().enumerate() {
                if self.split.is_shared(i) || typed(&mut row, kv) {
                    continue;
                }
                row.attrs
                    .insert(kv.key.clone(), attrs::to_json(kv.value.as_ref()));
            }
            let split = &self.split;
            self.grouped
                .push(ctx_key, || split.context(scope, kvs, ctx_key, agent), row);
        }
    }
}

impl Path {
    fn describe(&self, pi: usize) -> String {
        format!(
            "resourceMetrics[{}].scopeMetrics[{}].metrics[{}].dataPoints[{pi}]",
            self.ri, self.si, self.mi
        )
    }
}

fn typed(row: &mut MetricPointRow, kv: &KeyValue) -> bool {
    let text = || attrs::str_of(kv.value.as_ref()).map(str::to_owned);
    match kv.key.as_str() {
        "model" => set_model(
            &mut row.model,
            &mut row.model_variant,
            attrs::str_of(kv.value.as_ref()),
        ),
        "type" => set_once(&mut row.kind_attr, text()),
        _ => false,
    }
}

/// Most buckets (or quantiles) one data point may carry: an exporter's
/// histograms have tens; a million would be kept in memory as JSON detail.
pub(crate) const MAX_BUCKETS: usize = 4096;

/// The parts of a data point every kind has.
trait Point: prost::Message {
    fn attributes(&self) -> &[KeyValue];
    fn start(&self) -> u64;
    fn time(&self) -> u64;
    /// Buckets, bounds and quantiles the point carries.
    fn buckets(&self) -> usize;
}

macro_rules! point {
    ($t:ty, |$p:ident| $buckets:expr) => {
        impl Point for $t {
            fn attributes(&self) -> &[KeyValue] {
                &self.attributes
            }
            fn start(&self) -> u64 {
                self.start_time_unix_nano
            }
            fn time(&self) -> u64 {
                self.time_unix_nano
            }
            fn buckets(&self) -> usize {
                let $p = self;
                $buckets
            }
        }
    };
}
point!(NumberDataPoint, |_p| 0);
point!(HistogramDataPoint, |p| p.bucket_counts.len()
    + p.explicit_bounds.len());
point!(ExponentialHistogramDataPoint, |p| {
    p.positive.as_ref().map_or(0, |b| b.bucket_counts.len())
        + p.negative.as_ref().map_or(0, |b| b.bucket_counts.len())
});
point!(SummaryDataPoint, |p| p.quantile_values.len());

/// A value for the `NOT NULL` column: a missing value becomes 0 with
/// `no_value` in `detail`; a non-finite one is kept so that the point is
/// refused ([`MetricPointRow::out_of_range`]).
fn finite(value: Option<f64>, detail: &mut Map<String, Value>) -> f64 {
    match value {
        Some(v) => v,
        None => {
            detail.insert("no_value".into(), Value::Bool(true));
            0.0
        }
    }
}

fn exemplars(list: &[Exemplar], detail: &mut Map<String, Value>) {
    if list.is_empty() {
        return;
    }
    let items = list
        .iter()
        .map(|e| {
            let value = match e.value {
                Some(exemplar::Value::AsDouble(d)) => attrs::double(d),
                Some(exemplar::Value::AsInt(i)) => Value::from(i),
                None => Value::Null,
            };
            json!({
                "time_ns": e.time_unix_nano,
                "value": value,
                "trace_id": hex::encode(&e.trace_id),
                "span_id": hex::encode(&e.span_id),
                "attrs": attrs::to_attrs(&e.filtered_attributes),
            })
        })
        .collect();
    detail.insert("exemplars".into(), Value::Array(items));
}

fn flags(flags: u32, detail: &mut Map<String, Value>) {
    if flags != 0 {
        detail.insert("flags".into(), Value::from(flags));
    }
}

fn done(value: f64, count: Option<u64>, detail: Map<String, Value>) -> Reading {
    Reading {
        value,
        count,
        detail: (!detail.is_empty()).then_some(Value::Object(detail)),
    }
}

fn number(p: &NumberDataPoint) -> Reading {
    let mut detail = Map::new();
    let v = match p.value {
        Some(number_data_point::Value::AsDouble(d)) => Some(d),
        Some(number_data_point::Value::AsInt(i)) => Some(i as f64),
        None => None,
    };
    let value = finite(v, &mut detail);
    exemplars(&p.exemplars, &mut detail);
    flags(p.flags, &mut detail);
    done(value, None, detail)
}

fn doubles(xs: &[f64]) -> Value {
    Value::Array(xs.iter().map(|x| attrs::double(*x)).collect())
}

fn histogram(p: &HistogramDataPoint) -> Reading {
    let mut detail = Map::new();
    let value = finite(p.sum, &mut detail);
    detail.insert("bounds".into(), doubles(&p.explicit_bounds));
    detail.insert("bucket_counts".into(), json!(p.bucket_counts));
    if let Some(min) = p.min {
        detail.insert("min".into(), attrs::double(min));
    }
    if let Some(max) = p.max {
        detail.insert("max".into(), attrs::double(max));
    }
    exemplars(&p.exemplars, &mut detail);
    flags(p.flags, &mut detail);
    done(value, Some(p.count), detail)
}

fn buckets(b: Option<&Buckets>) -> Value {
    match b {
        Some(b) => json!({"offset": b.offset, "bucket_counts": b.bucket_counts}),
        None => Value::Null,
    }
}

fn exponential(p: &ExponentialHistogramDataPoint) -> Reading {
    let mut detail = Map::new();
    let value = finite(p.sum, &mut detail);
    detail.insert("scale".into(), Value::from(p.scale));
    detail.insert("zero_count".into(), Value::from(p.zero_count));
    detail.insert("zero_threshold".into(), attrs::double(p.zero_threshold));
    detail.insert("positive".into(), buckets(p.positive.as_ref()));
    detail.insert("negative".into(), buckets(p.negative.as_ref()));
    if let Some(min) = p.min {
        detail.insert("min".into(), attrs::double(min));
    }
    if let Some(max) = p.max {
        detail.insert("max".into(), attrs::double(max));
    }
    exemplars(&p.exemplars, &mut detail);
    flags(p.flags, &mut detail);
    done(value, Some(p.count), detail)
}

fn summary(p: &SummaryDataPoint) -> Reading {
    let mut detail = Map::new();
    let value = finite(Some(p.sum), &mut detail);
    let quantiles = p
        .quantile_values
        .iter()
        .map(|q| json!({"quantile": attrs::double(q.quantile), "value": attrs::double(q.value)}))
        .collect();
    detail.insert("quantiles".into(), Value::Array(quantiles));
    flags(p.flags, &mut detail);
    done(value, Some(p.count), detail)
}

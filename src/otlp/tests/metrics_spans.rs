//! Metric points and spans.

use serde_json::json;

use super::*;

#[test]
fn metric_points_typed() {
    let d = json_fixture("v330_t3_json_tools_details/otlp/004_v1_metrics.json", false);
    let points: Vec<_> = d.batch.metric_points.iter().flat_map(|g| &g.rows).collect();
    assert_eq!(points.len(), 8);
    let input = points
        .iter()
        .find(|p| p.name == "claude_code.token.usage" && p.kind_attr.as_deref() == Some("input"))
        .unwrap();
    assert_eq!(input.value, 120.0);
    assert_eq!(input.unit, "tokens");
    assert_eq!(input.kind, MetricKind::Sum);
    assert_eq!(input.temporality, Temporality::Delta);
    assert!(input.monotonic);
    assert_eq!(input.model.as_deref(), Some("claude-opus-5-5"));
    assert_eq!(input.start_ns, 1795281160875000000);
    assert_eq!(input.time_ns, 1795281160971000000);
    assert_eq!(input.attrs.get("query_source"), Some(&json!("main")));
    assert_eq!(input.attrs.get("effort"), Some(&json!("medium")));
    assert!(!input.attrs.contains_key("model") && !input.attrs.contains_key("type"));
    let cost = points
        .iter()
        .find(|p| p.name == "claude_code.cost.usage")
        .unwrap();
    assert_eq!(cost.value, 0.0009760000000000001);
    assert_eq!(cost.unit, "USD");
    let active = points
        .iter()
        .find(|p| p.name == "claude_code.active_time.total")
        .unwrap();
    assert_eq!(active.value, 0.998);
    assert_eq!(active.kind_attr.as_deref(), Some("cli"));
}

#[test]
fn histogram_summary_and_gauge_points() {
    let body = json!({"resourceMetrics": [{"scopeMetrics": [{"scope": {"name": "other"}, "metrics": [
        {"name": "latency", "unit": "ms", "histogram": {"aggregationTemporality": 2, "dataPoints": [
            {"timeUnixNano": "10", "startTimeUnixNano": "5", "count": "3", "sum": 12.5,
             "bucketCounts": ["1", "2"], "explicitBounds": [5.0], "min": 1.5, "max": 8}]}},
        {"name": "q", "summary": {"dataPoints": [{"timeUnixNano": 10, "count": 4, "sum": 2.0,
             "quantileValues": [{"quantile": 0.5, "value": 0.4}]}]}},
        {"name": "g", "gauge": {"dataPoints": [{"timeUnixNano": 10, "asInt": "7"}, {"timeUnixNano": 0, "asInt": 1}]}},
        {"name": "e", "exponentialHistogram": {"aggregationTemporality": 1, "dataPoints": [
            {"timeUnixNano": 10, "count": 2, "sum": 3.0, "scale": 1, "zeroCount": 0,
             "positive": {"offset": 1, "bucketCounts": [1, 1]}}]}}
    ]}]}]});
    let d = decode(
        Signal::Metrics,
        body.to_string().as_bytes(),
        Some("application/json"),
        None,
        &opts(false),
    )
    .unwrap();
    assert_eq!(d.rejected, 1, "the gauge point without a time");
    assert!(
        d.message
            .as_deref()
            .unwrap()
            .contains("metrics[2].dataPoints[1]")
    );
    let points: Vec<_> = d.batch.metric_points.iter().flat_map(|g| &g.rows).collect();
    assert_eq!(points.len(), 4);
    assert!(!d.batch.metric_points[0].context.claude_code());
    let h = points[0];
    assert_eq!(
        (h.kind, h.temporality, h.value, h.count),
        (
            MetricKind::Histogram,
            Temporality::Cumulative,
            12.5,
            Some(3)
        )
    );
    assert_eq!(
        h.detail,
        Some(json!({"bounds": [5.0], "bucket_counts": [1, 2], "min": 1.5, "max": 8.0}))
    );
    let s = points[1];
    assert_eq!(
        (s.kind, s.value, s.count),
        (MetricKind::Summary, 2.0, Some(4))
    );
    assert_eq!(
        s.detail,
        Some(json!({"quantiles": [{"quantile": 0.5, "value": 0.4}]}))
    );
    let g = points[2];
    assert_eq!(
        (g.kind, g.value, g.detail.clone()),
        (MetricKind::Gauge, 7.0, None)
    );
    let e = points[3];
    assert_eq!(
        (e.kind, e.value, e.count),
        (MetricKind::ExponentialHistogram, 3.0, Some(2))
    );
    assert_eq!(
        e.detail.as_ref().unwrap()["positive"],
        json!({"offset": 1, "bucket_counts": [1, 1]})
    );
}

#[test]
fn spans_typed() {
    let d = json_fixture("v330_t3_json_tools_details/otlp/005_v1_traces.json", false);
    let all = spans(&d);
    assert_eq!(all.len(), 26);
    let read = all
        .iter()
        .find(|s| s.name == "claude_code.tool" && s.tool_name.as_deref() == Some("Read"))
        .unwrap();
    assert_eq!(read.span_id, hex::decode("a871ffde16b9123e").unwrap());
    assert_eq!(
        read.parent_span_id,
        hex::decode("c7e2cadfa8d54963").unwrap()
    );
    assert_eq!(read.trace_id.len(), 16);
    assert_eq!(
        read.file_path.as_deref(),
        Some("/home/dev/webapp/hello.txt")
    );
    assert_eq!(
        read.tool_use_id.as_deref(),
        Some("toolu_fake_4dfd50603bad426c")
    );
    assert_eq!(read.duration_ms, Some(59));
    assert_eq!(
        (read.start_ns, read.end_ns),
        (1795281160291000000, 1795281160349761046)
    );
    assert_eq!(read.kind, 1);
    let blocked = all
        .iter()
        .find(|s| s.span_id == hex::decode("85b5caaa4b202f65").unwrap())
        .unwrap();
    assert_eq!(blocked.decision.as_deref(), Some("accept"));
    assert_eq!(blocked.decision_source.as_deref(), Some("config"));
    let failed = all
        .iter()
        .find(|s| s.span_id == hex::decode("775a150dc475f401").unwrap())
        .unwrap();
    assert_eq!(failed.status_code, 2);
    assert_eq!(
        failed.status_message.as_deref(),
        Some("Shell command failed")
    );
    assert_eq!(failed.success, Some(false));
    let llm = all
        .iter()
        .find(|s| s.span_id == hex::decode("5176931ef25d1c97").unwrap())
        .unwrap();
    assert_eq!(llm.model.as_deref(), Some("claude-opus-5-5"));
    let detail = llm.detail.as_ref().unwrap();
    assert_eq!(detail["events"][0]["attrs"]["attempt"], json!(1));
    assert_eq!(detail["flags"], json!(257));
    let root = all
        .iter()
        .find(|s| s.name == "claude_code.interaction")
        .unwrap();
    assert!(root.parent_span_id.is_empty());
    // No duration_ms attribute on the root: computed from the times.
    assert_eq!(
        root.duration_ms,
        Some((1795281160961742298 - 1795281159963000000) / 1_000_000)
    );
}

/// A data point with a million buckets, or a record with thousands of
/// attributes, is refused on its own (it would be held in memory and stored
/// as JSON detail); the rest of the request is kept.
#[test]
fn oversized_points_and_records_are_refused() {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics, metric,
    };
    let point = |buckets: usize| HistogramDataPoint {
        time_unix_nano: 1_795_000_000_000_000_000,
        count: 1,
        sum: Some(1.0),
        bucket_counts: vec![0; buckets],
        explicit_bounds: vec![0.0; buckets.saturating_sub(1)],
        ..Default::default()
    };
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "h".into(),
                    data: Some(metric::Data::Histogram(Histogram {
                        data_points: vec![point(1_000_000), point(8)],
                        aggregation_temporality: 1,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let d = crate::otlp::metrics_to_batch(&req, &opts(false));
    assert_eq!((d.batch.len(), d.rejected), (1, 1), "{:?}", d.message);
    assert!(d.message.unwrap().contains("buckets"));
    let kv = |i: usize| KeyValue {
        key: format!("k{i}"),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(i as i64)),
        }),
        ..Default::default()
    };
    let record = |n: usize| LogRecord {
        time_unix_nano: 1_795_000_000_000_000_000,
        attributes: (0..n).map(kv).collect(),
        ..Default::default()
    };
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![record(5000), record(10)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let d = crate::otlp::logs_to_batch(&req, &opts(false));
    assert_eq!((d.batch.len(), d.rejected), (1, 1), "{:?}", d.message);
}

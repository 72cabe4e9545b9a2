//! OTLP/JSON → the prost messages of `opentelemetry_proto`.
//!
//! Follows the OTLP/JSON rules (protobuf JSON mapping with OTLP's
//! exceptions): field names in lowerCamelCase, the original snake_case names
//! accepted too; trace and span ids as hex strings; 64-bit integers as
//! strings or numbers; doubles as numbers or strings (including `"NaN"` and
//! `"Infinity"`); enums as integers or their names; `bytesValue` in base64;
//! unknown fields ignored and `null` meaning unset.
//!
//! Structural problems (a wrong JSON type for a known field, bad base64 or
//! hex) make the whole request malformed, with the field path in the error.
//! An id of the wrong length decodes to bytes of the wrong length, which the
//! row conversion rejects for that record only.

mod common;
mod logs;
mod metrics;
mod scalar;
mod traces;

use serde_json::Value;

use super::DecodeError;

pub(crate) use logs::logs_request;
pub(crate) use metrics::metrics_request;
pub(crate) use traces::traces_request;

/// A JSON decoding error with the path to the offending field, built
/// innermost-first while the error travels up (free on the success path).
#[derive(Debug)]
pub(crate) struct JsonError {
    path: Vec<Seg>,
    message: String,
}

#[derive(Debug)]
enum Seg {
    Field(&'static str),
    Index(usize),
}

impl JsonError {
    pub(super) fn new(message: impl Into<String>) -> Self {
        JsonError {
            path: Vec::new(),
            message: message.into(),
        }
    }
    pub(super) fn field(mut self, name: &'static str) -> Self {
        self.path.push(Seg::Field(name));
        self
    }
    pub(super) fn index(mut self, i: usize) -> Self {
        self.path.push(Seg::Index(i));
        self
    }
}

impl From<JsonError> for DecodeError {
    fn from(e: JsonError) -> Self {
        let mut path = String::new();
        for seg in e.path.iter().rev() {
            match seg {
                Seg::Field(f) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(f);
                }
                Seg::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        if path.is_empty() {
            DecodeError::Malformed(format!("invalid OTLP/JSON: {}", e.message))
        } else {
            DecodeError::Malformed(format!("invalid OTLP/JSON at {path}: {}", e.message))
        }
    }
}

pub(super) type R<T> = Result<T, JsonError>;

/// Parses a body as JSON, then converts it with `convert`.
pub(crate) fn parse<T>(bytes: &[u8], convert: fn(&Value) -> R<T>) -> Result<T, DecodeError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| DecodeError::Malformed(format!("invalid JSON: {e}")))?;
    Ok(convert(&value)?)
}

#[cfg(test)]
mod tests {
    use super::common::any_value;
    use super::scalar::id;
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1::metric;
    use serde_json::json;

    fn malformed(v: Value) -> String {
        match logs_request(&v).map_err(DecodeError::from) {
            Err(DecodeError::Malformed(m)) => m,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn camel_and_snake_names_are_equivalent() {
        let camel = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{
            "timeUnixNano": "5", "observedTimeUnixNano": 6, "severityNumber": "SEVERITY_NUMBER_INFO",
            "traceId": "000102030405060708090a0b0c0d0e0f", "spanId": "0001020304050607",
            "body": {"stringValue": "x"}, "eventName": "e", "unknownField": {"nested": 1}
        }]}]}]});
        let snake = json!({"resource_logs": [{"scope_logs": [{"log_records": [{
            "time_unix_nano": 5, "observed_time_unix_nano": "6", "severity_number": 9,
            "trace_id": "000102030405060708090a0b0c0d0e0f", "span_id": "0001020304050607",
            "body": {"string_value": "x"}, "event_name": "e", "flags": null
        }]}]}]});
        let a = logs_request(&camel).unwrap();
        let b = logs_request(&snake).unwrap();
        assert_eq!(a, b);
        let r = &a.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(r.time_unix_nano, 5);
        assert_eq!(r.observed_time_unix_nano, 6);
        assert_eq!(r.severity_number, 9);
        assert_eq!(r.trace_id, (0u8..16).collect::<Vec<_>>());
    }

    #[test]
    fn any_values() {
        let v = json!({"kvlistValue": {"values": [
            {"key": "i", "value": {"intValue": "-7"}},
            {"key": "d", "value": {"doubleValue": "NaN"}},
            {"key": "inf", "value": {"doubleValue": "-Infinity"}},
            {"key": "b", "value": {"bytesValue": "aGk="}},
            {"key": "a", "value": {"arrayValue": {"values": [{"boolValue": true}]}}}
        ]}});
        let any = any_value(&v).unwrap();
        let Some(any_value::Value::KvlistValue(kv)) = any.value else {
            panic!()
        };
        assert_eq!(
            kv.values[0].value,
            Some(AnyValue {
                value: Some(any_value::Value::IntValue(-7))
            })
        );
        assert!(
            matches!(kv.values[1].value.as_ref().unwrap().value, Some(any_value::Value::DoubleValue(d)) if d.is_nan())
        );
        assert!(
            matches!(kv.values[2].value.as_ref().unwrap().value, Some(any_value::Value::DoubleValue(d)) if d == f64::NEG_INFINITY)
        );
        assert_eq!(
            kv.values[3].value,
            Some(AnyValue {
                value: Some(any_value::Value::BytesValue(b"hi".to_vec()))
            })
        );
    }

    #[test]
    fn structural_errors_name_the_field() {
        let m = malformed(
            json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{}, {"timeUnixNano": true}]}]}]}),
        );
        assert!(
            m.contains("resourceLogs[0].scopeLogs[0].logRecords[1].timeUnixNano"),
            "{m}"
        );
        let m = malformed(json!({"resourceLogs": {}}));
        assert!(m.contains("resourceLogs"), "{m}");
        let m = malformed(json!([1, 2]));
        assert!(m.contains("expected an object"), "{m}");
        let m = malformed(
            json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [
            {"key": "k", "value": {"bytesValue": "!!not base64!!"}}]}]}]}]}),
        );
        assert!(
            m.contains("logRecords[0].attributes[0].value.bytesValue: invalid base64"),
            "{m}"
        );
        let m = malformed(
            json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "zz"}]}]}]}),
        );
        assert!(m.contains("traceId"), "{m}");
        let m = malformed(
            json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"severityNumber": "LOUD"}]}]}]}),
        );
        assert!(m.contains("severityNumber"), "{m}");
    }

    #[test]
    fn wrong_length_ids_keep_a_wrong_length() {
        assert_eq!(id(&json!(""), 16).unwrap(), Vec::<u8>::new());
        assert_eq!(id(&json!("abcd"), 16).unwrap().len(), 2);
        let odd = "0".repeat(33);
        assert_ne!(id(&json!(odd), 16).unwrap().len(), 16);
        let odd = "0".repeat(31);
        assert_ne!(id(&json!(odd), 16).unwrap().len(), 16);
    }

    #[test]
    fn metrics_and_spans() {
        let m = metrics_request(&json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
            {"name": "h", "histogram": {"aggregationTemporality": "AGGREGATION_TEMPORALITY_CUMULATIVE",
              "dataPoints": [{"count": "3", "sum": 6.5, "bucketCounts": ["1", 2], "explicitBounds": [1.0], "min": 1, "max": "4"}]}},
            {"name": "s", "summary": {"dataPoints": [{"count": 2, "sum": 3, "quantileValues": [{"quantile": 0.5, "value": 1}]}]}}
        ]}]}]})).unwrap();
        let metric = &m.resource_metrics[0].scope_metrics[0].metrics[0];
        let Some(metric::Data::Histogram(h)) = &metric.data else {
            panic!()
        };
        assert_eq!(h.aggregation_temporality, 2);
        assert_eq!(h.data_points[0].bucket_counts, vec![1, 2]);
        assert_eq!(h.data_points[0].max, Some(4.0));
        let t = traces_request(&json!({"resourceSpans": [{"scopeSpans": [{"spans": [
            {"name": "s", "kind": "SPAN_KIND_CLIENT", "status": {"code": 2, "message": "bad"},
             "traceId": "000102030405060708090a0b0c0d0e0f", "spanId": "0001020304050607", "parentSpanId": ""}
        ]}]}]})).unwrap();
        let s = &t.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(s.kind, 3);
        assert_eq!(s.status.as_ref().unwrap().code, 2);
        assert!(s.parent_span_id.is_empty());
    }
}

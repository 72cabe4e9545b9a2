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

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint, exemplar, exponential_histogram_data_point, metric,
    number_data_point, summary_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use serde_json::{Map, Value};

use super::DecodeError;

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
    fn new(message: impl Into<String>) -> Self {
        JsonError {
            path: Vec::new(),
            message: message.into(),
        }
    }
    fn field(mut self, name: &'static str) -> Self {
        self.path.push(Seg::Field(name));
        self
    }
    fn index(mut self, i: usize) -> Self {
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

type R<T> = Result<T, JsonError>;

/// Parses a body as JSON, then converts it with `convert`.
pub(crate) fn parse<T>(bytes: &[u8], convert: fn(&Value) -> R<T>) -> Result<T, DecodeError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| DecodeError::Malformed(format!("invalid JSON: {e}")))?;
    Ok(convert(&value)?)
}

// ---------------------------------------------------------------- helpers

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn object(v: &Value) -> R<&Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| JsonError::new(format!("expected an object, got {}", kind(v))))
}

/// Visits the non-null fields of an object.
fn fields(v: &Value, mut each: impl FnMut(&str, &Value) -> R<()>) -> R<()> {
    for (k, v) in object(v)? {
        if !v.is_null() {
            each(k, v)?;
        }
    }
    Ok(())
}

/// Converts a repeated field, attaching the index and field name to errors.
fn list<T>(v: &Value, name: &'static str, item: impl Fn(&Value) -> R<T>) -> R<Vec<T>> {
    let arr = v
        .as_array()
        .ok_or_else(|| JsonError::new(format!("expected an array, got {}", kind(v))).field(name))?;
    let mut out = Vec::with_capacity(arr.len());
    for (i, x) in arr.iter().enumerate() {
        if x.is_null() {
            return Err(JsonError::new("null element in a repeated field")
                .index(i)
                .field(name));
        }
        out.push(item(x).map_err(|e| e.index(i).field(name))?);
    }
    Ok(out)
}

/// Attaches a field name to an error.
fn at<T>(name: &'static str, r: R<T>) -> R<T> {
    r.map_err(|e| e.field(name))
}

fn string(v: &Value) -> R<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| JsonError::new(format!("expected a string, got {}", kind(v))))
}

fn boolean(v: &Value) -> R<bool> {
    v.as_bool()
        .ok_or_else(|| JsonError::new(format!("expected a boolean, got {}", kind(v))))
}

fn u64_of(v: &Value) -> R<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
    .ok_or_else(|| JsonError::new(format!("expected an unsigned integer, got {v}")))
}

fn i64_of(v: &Value) -> R<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| JsonError::new(format!("expected an integer, got {v}")))
}

fn u32_of(v: &Value) -> R<u32> {
    u32::try_from(u64_of(v)?).map_err(|_| JsonError::new(format!("{v} does not fit 32 bits")))
}

fn i32_of(v: &Value) -> R<i32> {
    i32::try_from(i64_of(v)?).map_err(|_| JsonError::new(format!("{v} does not fit 32 bits")))
}

fn f64_of(v: &Value) -> R<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            other => other.trim().parse::<f64>().ok(),
        },
        _ => None,
    }
    .ok_or_else(|| JsonError::new(format!("expected a number, got {v}")))
}

/// An enum as its number or its protobuf name.
fn enumeration(v: &Value, by_name: fn(&str) -> Option<i32>) -> R<i32> {
    match v {
        Value::String(s) => match by_name(s) {
            Some(n) => Ok(n),
            None => i32_of(v).map_err(|_| JsonError::new(format!("unknown enum value {s:?}"))),
        },
        _ => i32_of(v),
    }
}

fn base64_bytes(v: &Value) -> R<Vec<u8>> {
    let s = v
        .as_str()
        .ok_or_else(|| JsonError::new(format!("expected a base64 string, got {}", kind(v))))?;
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    for engine in engines {
        if let Ok(bytes) = engine.decode(s) {
            return Ok(bytes);
        }
    }
    Err(JsonError::new("invalid base64"))
}

/// A trace or span id: hex, empty = unset. Hex of the wrong length decodes
/// to bytes of a length other than `expected`, so that the record (not the
/// request) is rejected later.
fn id(v: &Value, expected: usize) -> R<Vec<u8>> {
    let s = v
        .as_str()
        .ok_or_else(|| JsonError::new(format!("expected a hex string, got {}", kind(v))))?;
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(JsonError::new(format!("{s:?} is not a hex id")));
    }
    let even = s.get(..s.len() & !1).unwrap_or_default();
    let mut bytes = hex::decode(even).map_err(|e| JsonError::new(format!("bad hex id: {e}")))?;
    if s.len() % 2 == 1 && bytes.len() == expected {
        // An odd digit count is never a valid id; keep the length wrong.
        bytes.push(0);
    }
    Ok(bytes)
}

// ---------------------------------------------------------------- common

fn any_value(v: &Value) -> R<AnyValue> {
    let mut out = AnyValue { value: None };
    fields(v, |k, x| {
        out.value = Some(match k {
            "stringValue" | "string_value" => {
                any_value::Value::StringValue(at("stringValue", string(x))?)
            }
            "boolValue" | "bool_value" => any_value::Value::BoolValue(at("boolValue", boolean(x))?),
            "intValue" | "int_value" => any_value::Value::IntValue(at("intValue", i64_of(x))?),
            "doubleValue" | "double_value" => {
                any_value::Value::DoubleValue(at("doubleValue", f64_of(x))?)
            }
            "arrayValue" | "array_value" => {
                any_value::Value::ArrayValue(at("arrayValue", array_value(x))?)
            }
            "kvlistValue" | "kvlist_value" => {
                any_value::Value::KvlistValue(at("kvlistValue", kvlist_value(x))?)
            }
            "bytesValue" | "bytes_value" => {
                any_value::Value::BytesValue(at("bytesValue", base64_bytes(x))?)
            }
            "stringValueStrindex" | "string_value_strindex" => {
                any_value::Value::StringValueStrindex(at("stringValueStrindex", i32_of(x))?)
            }
            _ => return Ok(()),
        });
        Ok(())
    })?;
    Ok(out)
}

fn array_value(v: &Value) -> R<ArrayValue> {
    let mut out = ArrayValue::default();
    fields(v, |k, x| {
        if k == "values" {
            out.values = list(x, "values", any_value)?;
        }
        Ok(())
    })?;
    Ok(out)
}

fn kvlist_value(v: &Value) -> R<KeyValueList> {
    let mut out = KeyValueList::default();
    fields(v, |k, x| {
        if k == "values" {
            out.values = list(x, "values", key_value)?;
        }
        Ok(())
    })?;
    Ok(out)
}

fn key_value(v: &Value) -> R<KeyValue> {
    let mut out = KeyValue::default();
    fields(v, |k, x| {
        match k {
            "key" => out.key = at("key", string(x))?,
            "value" => out.value = Some(at("value", any_value(x))?),
            "keyStrindex" | "key_strindex" => out.key_strindex = at("keyStrindex", i32_of(x))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn attributes(x: &Value) -> R<Vec<KeyValue>> {
    list(x, "attributes", key_value)
}

fn entity_ref(v: &Value) -> R<EntityRef> {
    let mut out = EntityRef::default();
    fields(v, |k, x| {
        match k {
            "schemaUrl" | "schema_url" => out.schema_url = at("schemaUrl", string(x))?,
            "type" => out.r#type = at("type", string(x))?,
            "idKeys" | "id_keys" => out.id_keys = list(x, "idKeys", string)?,
            "descriptionKeys" | "description_keys" => {
                out.description_keys = list(x, "descriptionKeys", string)?
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn resource(v: &Value) -> R<Resource> {
    let mut out = Resource::default();
    fields(v, |k, x| {
        match k {
            "attributes" => out.attributes = attributes(x)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                out.dropped_attributes_count = at("droppedAttributesCount", u32_of(x))?
            }
            "entityRefs" | "entity_refs" => out.entity_refs = list(x, "entityRefs", entity_ref)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn scope(v: &Value) -> R<InstrumentationScope> {
    let mut out = InstrumentationScope::default();
    fields(v, |k, x| {
        match k {
            "name" => out.name = at("name", string(x))?,
            "version" => out.version = at("version", string(x))?,
            "attributes" => out.attributes = attributes(x)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                out.dropped_attributes_count = at("droppedAttributesCount", u32_of(x))?
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

// ---------------------------------------------------------------- logs

/// Converts an `ExportLogsServiceRequest` in OTLP/JSON.
pub(crate) fn logs_request(v: &Value) -> R<ExportLogsServiceRequest> {
    let mut out = ExportLogsServiceRequest::default();
    fields(v, |k, x| {
        if matches!(k, "resourceLogs" | "resource_logs") {
            out.resource_logs = list(x, "resourceLogs", resource_logs)?;
        }
        Ok(())
    })?;
    Ok(out)
}

fn resource_logs(v: &Value) -> R<ResourceLogs> {
    let mut out = ResourceLogs::default();
    fields(v, |k, x| {
        match k {
            "resource" => out.resource = Some(at("resource", resource(x))?),
            "scopeLogs" | "scope_logs" => out.scope_logs = list(x, "scopeLogs", scope_logs)?,
            "schemaUrl" | "schema_url" => out.schema_url = at("schemaUrl", string(x))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn scope_logs(v: &Value) -> R<ScopeLogs> {
    let mut out = ScopeLogs::default();
    fields(v, |k, x| {
        match k {
            "scope" => out.scope = Some(at("scope", scope(x))?),
            "logRecords" | "log_records" => out.log_records = list(x, "logRecords", log_record)?,
            "schemaUrl" | "schema_url" => out.schema_url = at("schemaUrl", string(x))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn severity_by_name(s: &str) -> Option<i32> {
    SeverityNumber::from_str_name(s).map(|n| n as i32)
}

fn log_record(v: &Value) -> R<LogRecord> {
    let mut out = LogRecord::default();
    fields(v, |k, x| {
        match k {
            "timeUnixNano" | "time_unix_nano" => {
                out.time_unix_nano = at("timeUnixNano", u64_of(x))?
            }
            "observedTimeUnixNano" | "observed_time_unix_nano" => {
                out.observed_time_unix_nano = at("observedTimeUnixNano", u64_of(x))?
            }
            "severityNumber" | "severity_number" => {
                out.severity_number = at("severityNumber", enumeration(x, severity_by_name))?
            }
            "severityText" | "severity_text" => out.severity_text = at("severityText", string(x))?,
            "body" => out.body = Some(at("body", any_value(x))?),
            "attributes" => out.attributes = attributes(x)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                out.dropped_attributes_count = at("droppedAttributesCount", u32_of(x))?
            }
            "flags" => out.flags = at("flags", u32_of(x))?,
            "traceId" | "trace_id" => out.trace_id = at("traceId", id(x, 16))?,
            "spanId" | "span_id" => out.span_id = at("spanId", id(x, 8))?,
            "eventName" | "event_name" => out.event_name = at("eventName", string(x))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

// ---------------------------------------------------------------- metrics

/// Converts an `ExportMetricsServiceRequest` in OTLP/JSON.
pub(crate) fn metrics_request(v: &Value) -> R<ExportMetricsServiceRequest> {
    let mut out = ExportMetricsServiceRequest::default();
    fields(v, |k, x| {
        if matches!(k, "resourceMetrics" | "resource_metrics") {
            out.resource_metrics = list(x, "resourceMetrics", resource_metrics)?;
        }
        Ok(())
    })?;
    Ok(out)
}

fn resource_metrics(v: &Value) -> R<ResourceMetrics> {
    let mut out = ResourceMetrics::default();
    fields(v, |k, x| {
        match k {
            "resource" => out.resource = Some(at("resource", resource(x))?),
            "scopeMetrics" | "scope_metrics" => {
                out.scope_metrics = list(x, "scopeMetrics", scope_metrics)?
            }
            "schemaUrl" | "schema_url" => out.schema_url = at("schemaUrl", string(x))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn scope_metrics(v: &Value) -> R<ScopeMetrics> {
    let mut out = ScopeMetrics::default();
    fields(v, |k, x| {
        match k {
            "scope" => out.scope = Some(at("scope", scope(x))?),
            "metrics" => out.metrics = list(x, "metrics", metric_of)?,
            "schemaUrl" | "schema_url" => out.schema_url = at("schemaUrl", string(x))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn temporality_by_name(s: &str) -> Option<i32> {
    AggregationTemporality::from_str_name(s).map(|n| n as i32)
}

fn metric_of(v: &Value) -> R<Metric> {
    let mut out = Metric::default();
    fields(v, |k, x| {
        match k {
            "name" => out.name = at("name", string(x))?,
            "description" => out.description = at("description", string(x))?,
            "unit" => out.unit = at("unit", string(x))?,
            "metadata" => out.metadata = list(x, "metadata", key_value)?,
            "gauge" => out.data = Some(metric::Data::Gauge(at("gauge", gauge(x))?)),
            "sum" => out.data = Some(metric::Data::Sum(at("sum", sum(x))?)),
            "histogram" => out.data = Some(metric::Data::Histogram(at("histogram", histogram(x))?)),
            "exponentialHistogram" | "exponential_histogram" => {
                out.data = Some(metric::Data::ExponentialHistogram(at(
                    "exponentialHistogram",
                    exponential_histogram(x),
                )?))
            }
            "summary" => out.data = Some(metric::Data::Summary(at("summary", summary(x))?)),
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn gauge(v: &Value) -> R<Gauge> {
    let mut out = Gauge::default();
    fields(v, |k, x| {
        if matches!(k, "dataPoints" | "data_points") {
            out.data_points = list(x, "dataPoints", number_point)?;
        }
        Ok(())
    })?;
    Ok(out)
}

fn sum(v: &Value) -> R<Sum> {
    let mut out = Sum::default();
    fields(v, |k, x| {
        match k {
            "dataPoints" | "data_points" => out.data_points = list(x, "dataPoints", number_point)?,
            "aggregationTemporality" | "aggregation_temporality" => {
                out.aggregation_temporality = at(
                    "aggregationTemporality",
                    enumeration(x, temporality_by_name),
                )?
            }
            "isMonotonic" | "is_monotonic" => out.is_monotonic = at("isMonotonic", boolean(x))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn histogram(v: &Value) -> R<Histogram> {
    let mut out = Histogram::default();
    fields(v, |k, x| {
        match k {
            "dataPoints" | "data_points" => {
                out.data_points = list(x, "dataPoints", histogram_point)?
            }
            "aggregationTemporality" | "aggregation_temporality" => {
                out.aggregation_temporality = at(
                    "aggregationTemporality",
                    enumeration(x, temporality_by_name),
                )?
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn exponential_histogram(v: &Value) -> R<ExponentialHistogram> {
    let mut out = ExponentialHistogram::default();
    fields(v, |k, x| {
        match k {
            "dataPoints" | "data_points" => {
                out.data_points = list(x, "dataPoints", exponential_point)?
            }
            "aggregationTemporality" | "aggregation_temporality" => {
                out.aggregation_temporality = at(
                    "aggregationTemporality",
                    enumeration(x, temporality_by_name),
                )?
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn summary(v: &Value) -> R<Summary> {
    let mut out = Summary::default();
    fields(v, |k, x| {
        if matches!(k, "dataPoints" | "data_points") {
            out.data_points = list(x, "dataPoints", summary_point)?;
        }
        Ok(())
    })?;
    Ok(out)
}

fn number_point(v: &Value) -> R<NumberDataPoint> {
    let mut out = NumberDataPoint::default();
    fields(v, |k, x| {
        match k {
            "attributes" => out.attributes = attributes(x)?,
            "startTimeUnixNano" | "start_time_unix_nano" => {
                out.start_time_unix_nano = at("startTimeUnixNano", u64_of(x))?
            }
            "timeUnixNano" | "time_unix_nano" => {
                out.time_unix_nano = at("timeUnixNano", u64_of(x))?
            }
            "asDouble" | "as_double" => {
                out.value = Some(number_data_point::Value::AsDouble(at(
                    "asDouble",
                    f64_of(x),
                )?))
            }
            "asInt" | "as_int" => {
                out.value = Some(number_data_point::Value::AsInt(at("asInt", i64_of(x))?))
            }
            "exemplars" => out.exemplars = list(x, "exemplars", exemplar_of)?,
            "flags" => out.flags = at("flags", u32_of(x))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn histogram_point(v: &Value) -> R<HistogramDataPoint> {
    let mut out = HistogramDataPoint::default();
    fields(v, |k, x| {
        match k {
            "attributes" => out.attributes = attributes(x)?,
            "startTimeUnixNano" | "start_time_unix_nano" => {
                out.start_time_unix_nano = at("startTimeUnixNano", u64_of(x))?
            }
            "timeUnixNano" | "time_unix_nano" => {
                out.time_unix_nano = at("timeUnixNano", u64_of(x))?
            }
            "count" => out.count = at("count", u64_of(x))?,
            "sum" => out.sum = Some(at("sum", f64_of(x))?),
            "bucketCounts" | "bucket_counts" => {
                out.bucket_counts = list(x, "bucketCounts", u64_of)?
            }
            "explicitBounds" | "explicit_bounds" => {
                out.explicit_bounds = list(x, "explicitBounds", f64_of)?
            }
            "exemplars" => out.exemplars = list(x, "exemplars", exemplar_of)?,
            "flags" => out.flags = at("flags", u32_of(x))?,
            "min" => out.min = Some(at("min", f64_of(x))?),
            "max" => out.max = Some(at("max", f64_of(x))?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn buckets(v: &Value) -> R<exponential_histogram_data_point::Buckets> {
    let mut out = exponential_histogram_data_point::Buckets::default();
    fields(v, |k, x| {
        match k {
            "offset" => out.offset = at("offset", i32_of(x))?,
            "bucketCounts" | "bucket_counts" => {
                out.bucket_counts = list(x, "bucketCounts", u64_of)?
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn exponential_point(v: &Value) -> R<ExponentialHistogramDataPoint> {
    let mut out = ExponentialHistogramDataPoint::default();
    fields(v, |k, x| {
        match k {
            "attributes" => out.attributes = attributes(x)?,
            "startTimeUnixNano" | "start_time_unix_nano" => {
                out.start_time_unix_nano = at("startTimeUnixNano", u64_of(x))?
            }
            "timeUnixNano" | "time_unix_nano" => {
                out.time_unix_nano = at("timeUnixNano", u64_of(x))?
            }
            "count" => out.count = at("count", u64_of(x))?,
            "sum" => out.sum = Some(at("sum", f64_of(x))?),
            "scale" => out.scale = at("scale", i32_of(x))?,
            "zeroCount" | "zero_count" => out.zero_count = at("zeroCount", u64_of(x))?,
            "positive" => out.positive = Some(at("positive", buckets(x))?),
            "negative" => out.negative = Some(at("negative", buckets(x))?),
            "flags" => out.flags = at("flags", u32_of(x))?,
            "exemplars" => out.exemplars = list(x, "exemplars", exemplar_of)?,
            "min" => out.min = Some(at("min", f64_of(x))?),
            "max" => out.max = Some(at("max", f64_of(x))?),
            "zeroThreshold" | "zero_threshold" => {
                out.zero_threshold = at("zeroThreshold", f64_of(x))?
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn quantile(v: &Value) -> R<summary_data_point::ValueAtQuantile> {
    let mut out = summary_data_point::ValueAtQuantile::default();
    fields(v, |k, x| {
        match k {
            "quantile" => out.quantile = at("quantile", f64_of(x))?,
            "value" => out.value = at("value", f64_of(x))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn summary_point(v: &Value) -> R<SummaryDataPoint> {
    let mut out = SummaryDataPoint::default();
    fields(v, |k, x| {
        match k {
            "attributes" => out.attributes = attributes(x)?,
            "startTimeUnixNano" | "start_time_unix_nano" => {
                out.start_time_unix_nano = at("startTimeUnixNano", u64_of(x))?
            }
            "timeUnixNano" | "time_unix_nano" => {
                out.time_unix_nano = at("timeUnixNano", u64_of(x))?
            }
            "count" => out.count = at("count", u64_of(x))?,
            "sum" => out.sum = at("sum", f64_of(x))?,
            "quantileValues" | "quantile_values" => {
                out.quantile_values = list(x, "quantileValues", quantile)?
            }
            "flags" => out.flags = at("flags", u32_of(x))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn exemplar_of(v: &Value) -> R<Exemplar> {
    let mut out = Exemplar::default();
    fields(v, |k, x| {
        match k {
            "filteredAttributes" | "filtered_attributes" => {
                out.filtered_attributes = list(x, "filteredAttributes", key_value)?
            }
            "timeUnixNano" | "time_unix_nano" => {
                out.time_unix_nano = at("timeUnixNano", u64_of(x))?
            }
            "asDouble" | "as_double" => {
                out.value = Some(exemplar::Value::AsDouble(at("asDouble", f64_of(x))?))
            }
            "asInt" | "as_int" => out.value = Some(exemplar::Value::AsInt(at("asInt", i64_of(x))?)),
            "spanId" | "span_id" => out.span_id = at("spanId", id(x, 8))?,
            "traceId" | "trace_id" => out.trace_id = at("traceId", id(x, 16))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

// ---------------------------------------------------------------- traces

/// Converts an `ExportTraceServiceRequest` in OTLP/JSON.
pub(crate) fn traces_request(v: &Value) -> R<ExportTraceServiceRequest> {
    let mut out = ExportTraceServiceRequest::default();
    fields(v, |k, x| {
        if matches!(k, "resourceSpans" | "resource_spans") {
            out.resource_spans = list(x, "resourceSpans", resource_spans)?;
        }
        Ok(())
    })?;
    Ok(out)
}

fn resource_spans(v: &Value) -> R<ResourceSpans> {
    let mut out = ResourceSpans::default();
    fields(v, |k, x| {
        match k {
            "resource" => out.resource = Some(at("resource", resource(x))?),
            "scopeSpans" | "scope_spans" => out.scope_spans = list(x, "scopeSpans", scope_spans)?,
            "schemaUrl" | "schema_url" => out.schema_url = at("schemaUrl", string(x))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn scope_spans(v: &Value) -> R<ScopeSpans> {
    let mut out = ScopeSpans::default();
    fields(v, |k, x| {
        match k {
            "scope" => out.scope = Some(at("scope", scope(x))?),
            "spans" => out.spans = list(x, "spans", span_of)?,
            "schemaUrl" | "schema_url" => out.schema_url = at("schemaUrl", string(x))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn span_kind_by_name(s: &str) -> Option<i32> {
    span::SpanKind::from_str_name(s).map(|n| n as i32)
}

fn status_code_by_name(s: &str) -> Option<i32> {
    status::StatusCode::from_str_name(s).map(|n| n as i32)
}

fn span_of(v: &Value) -> R<Span> {
    let mut out = Span::default();
    fields(v, |k, x| {
        match k {
            "traceId" | "trace_id" => out.trace_id = at("traceId", id(x, 16))?,
            "spanId" | "span_id" => out.span_id = at("spanId", id(x, 8))?,
            "traceState" | "trace_state" => out.trace_state = at("traceState", string(x))?,
            "parentSpanId" | "parent_span_id" => out.parent_span_id = at("parentSpanId", id(x, 8))?,
            "flags" => out.flags = at("flags", u32_of(x))?,
            "name" => out.name = at("name", string(x))?,
            "kind" => out.kind = at("kind", enumeration(x, span_kind_by_name))?,
            "startTimeUnixNano" | "start_time_unix_nano" => {
                out.start_time_unix_nano = at("startTimeUnixNano", u64_of(x))?
            }
            "endTimeUnixNano" | "end_time_unix_nano" => {
                out.end_time_unix_nano = at("endTimeUnixNano", u64_of(x))?
            }
            "attributes" => out.attributes = attributes(x)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                out.dropped_attributes_count = at("droppedAttributesCount", u32_of(x))?
            }
            "events" => out.events = list(x, "events", span_event)?,
            "droppedEventsCount" | "dropped_events_count" => {
                out.dropped_events_count = at("droppedEventsCount", u32_of(x))?
            }
            "links" => out.links = list(x, "links", span_link)?,
            "droppedLinksCount" | "dropped_links_count" => {
                out.dropped_links_count = at("droppedLinksCount", u32_of(x))?
            }
            "status" => out.status = Some(at("status", status_of(x))?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn span_event(v: &Value) -> R<span::Event> {
    let mut out = span::Event::default();
    fields(v, |k, x| {
        match k {
            "timeUnixNano" | "time_unix_nano" => {
                out.time_unix_nano = at("timeUnixNano", u64_of(x))?
            }
            "name" => out.name = at("name", string(x))?,
            "attributes" => out.attributes = attributes(x)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                out.dropped_attributes_count = at("droppedAttributesCount", u32_of(x))?
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn span_link(v: &Value) -> R<span::Link> {
    let mut out = span::Link::default();
    fields(v, |k, x| {
        match k {
            "traceId" | "trace_id" => out.trace_id = at("traceId", id(x, 16))?,
            "spanId" | "span_id" => out.span_id = at("spanId", id(x, 8))?,
            "traceState" | "trace_state" => out.trace_state = at("traceState", string(x))?,
            "attributes" => out.attributes = attributes(x)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                out.dropped_attributes_count = at("droppedAttributesCount", u32_of(x))?
            }
            "flags" => out.flags = at("flags", u32_of(x))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

fn status_of(v: &Value) -> R<Status> {
    let mut out = Status::default();
    fields(v, |k, x| {
        match k {
            "message" => out.message = at("message", string(x))?,
            "code" => out.code = at("code", enumeration(x, status_code_by_name))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
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

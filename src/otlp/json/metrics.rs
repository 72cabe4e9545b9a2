//! `ExportMetricsServiceRequest` from OTLP/JSON.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint, exemplar, exponential_histogram_data_point, metric,
    number_data_point, summary_data_point,
};
use serde_json::Value;

use super::R;
use super::common::{attributes, key_value, resource, scope};
use super::scalar::{
    at, boolean, enumeration, f64_of, fields, i32_of, i64_of, id, list, string, u32_of, u64_of,
};

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

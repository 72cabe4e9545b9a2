//! `ExportLogsServiceRequest` from OTLP/JSON.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use serde_json::Value;

use super::R;
use super::common::{any_value, attributes, resource, scope};
use super::scalar::{at, enumeration, fields, id, list, string, u32_of, u64_of};

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

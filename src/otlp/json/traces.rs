//! `ExportTraceServiceRequest` from OTLP/JSON.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use serde_json::Value;

use super::R;
use super::common::{attributes, resource, scope};
use super::scalar::{at, enumeration, fields, id, list, string, u32_of, u64_of};

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

//! Spans → [`SpanRow`]s: ids, times, status, the typed attributes of Claude
//! Code's spans (`claude_code.tool`, `tool.blocked_on_user`, `llm_request`,
//! ...), events and links as detail JSON, content redaction.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Map, Value, json};

use super::redact::{self, ToolDetails};
use super::{
    Dedup, Grouped, Rejects, ScopeInfo, Split, agents, attrs, check_id, nanos, set_model, set_once,
};
use crate::agent::Agent;
use crate::otlp::{DecodeOptions, Decoded};
use crate::rows::{Attrs, Batch, SpanRow};

/// Converts a traces request into span rows grouped by context.
///
/// OpenCode sends its model calls and tool calls only as spans: each such
/// span also gives one typed event (see `agents::span_event`).
pub fn traces_to_batch(req: &ExportTraceServiceRequest, opts: &DecodeOptions) -> Decoded {
    let mut grouped = Grouped::new();
    let mut derived = Grouped::new();
    let mut dedup = Dedup::new();
    let mut rejects = Rejects::default();
    let mut split = Split::default();
    for (ri, rs) in req.resource_spans.iter().enumerate() {
        for (si, ss) in rs.scope_spans.iter().enumerate() {
            let scope = ScopeInfo::new(rs.resource.as_ref(), ss.scope.as_ref(), opts);
            for (pi, span) in ss.spans.iter().enumerate() {
                rejects.seen();
                let times = match check(span) {
                    Ok(t) => t,
                    Err(why) => {
                        rejects.reject(|| {
                            format!("resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]: {why}")
                        });
                        continue;
                    }
                };
                let agent = scope.agent_of(&span.name);
                let ctx_key = split.compute(&scope, &span.attributes, agent);
                let mut row = span_row(span, &split, times, opts.capture_content);
                row.dedup = dedup.key(&ctx_key, b"span", span);
                if agent == Some(Agent::Opencode)
                    && let Some(mut event) = agents::span_event(span, times.0, times.1)
                {
                    event.dedup = dedup.key(&ctx_key, b"span-event", span);
                    event.observed_ns = times.1;
                    agents::price_request(&mut event, &opts.pricing);
                    if let Some(why) = event.out_of_range() {
                        rejects.reject(|| {
                            format!("resourceSpans[{ri}].scopeSpans[{si}].spans[{pi}]: {why}")
                        });
                        continue;
                    }
                    derived.push(
                        ctx_key,
                        || split.context(&scope, &span.attributes, ctx_key, agent),
                        event,
                    );
                }
                grouped.push(
                    ctx_key,
                    || split.context(&scope, &span.attributes, ctx_key, agent),
                    row,
                );
            }
        }
    }
    let (rejected, message) = rejects.finish("spans");
    Decoded {
        batch: Batch {
            spans: grouped.into_groups(),
            events: derived.into_groups(),
            ..Batch::default()
        },
        rejected,
        message,
    }
}

/// Checks ids and returns (start, end) in signed nanoseconds.
fn check(span: &Span) -> Result<(i64, i64), String> {
    let many = span.attributes.len() > super::MAX_ATTRIBUTES
        || span.events.len() > super::MAX_ATTRIBUTES
        || span.links.len() > super::MAX_ATTRIBUTES;
    if many {
        return Err(format!(
            "more than {} attributes, events or links",
            super::MAX_ATTRIBUTES
        ));
    }
    check_id(&span.trace_id, 16, true, "traceId")?;
    check_id(&span.span_id, 8, true, "spanId")?;
    check_id(&span.parent_span_id, 8, false, "parentSpanId")?;
    let start = nanos(span.start_time_unix_nano).ok_or("startTimeUnixNano out of range")?;
    let end = nanos(span.end_time_unix_nano).ok_or("endTimeUnixNano out of range")?;
    Ok((start, end))
}

fn span_row(span: &Span, split: &Split, (start_ns, end_ns): (i64, i64), capture: bool) -> SpanRow {
    let status = span.status.as_ref();
    let mut row = SpanRow {
        trace_id: span.trace_id.clone(),
        span_id: span.span_id.clone(),
        parent_span_id: span.parent_span_id.clone(),
        name: span.name.clone(),
        kind: span.kind,
        start_ns,
        end_ns,
        status_code: status.map(|s| s.code).unwrap_or(0),
        status_message: status.map(|s| s.message.clone()).filter(|m| !m.is_empty()),
        ..SpanRow::default()
    };
    let mut details = ToolDetails::default();
    let mut out = Attrs::new();
    for (i, kv) in span.attributes.iter().enumerate() {
        if split.is_shared(i) {
            continue;
        }
        if let Some(kept) =
            redact::content_attr("", kv, capture, &mut details, &mut row.content_redacted)
        {
            if let Some(v) = kept {
                out.insert(kv.key.clone(), v);
            }
            continue;
        }
        if !typed(&mut row, kv) {
            out.insert(kv.key.clone(), attrs::to_json(kv.value.as_ref()));
        }
    }
    set_once(&mut row.file_path, details.file_path);
    if row.duration_ms.is_none() && end_ns >= start_ns {
        row.duration_ms = Some((end_ns - start_ns) / 1_000_000);
    }
    row.attrs = out;
    row.detail = detail(span, capture, &mut row.content_redacted);
    row
}

fn typed(row: &mut SpanRow, kv: &KeyValue) -> bool {
    let v = kv.value.as_ref();
    let text = || attrs::str_of(v).map(str::to_owned);
    match kv.key.as_str() {
        "tool_name" => set_once(&mut row.tool_name, text()),
        "tool_use_id" => set_once(&mut row.tool_use_id, text()),
        "file_path" => set_once(&mut row.file_path, text()),
        "decision" => set_once(&mut row.decision, text()),
        "source" => set_once(&mut row.decision_source, text()),
        "duration_ms" => set_once(&mut row.duration_ms, attrs::int_of(v)),
        "success" => set_once(&mut row.success, attrs::bool_of(v)),
        "model" => set_model(
            &mut row.model,
            &mut row.model_variant,
            attrs::str_of(kv.value.as_ref()),
        ),
        _ => false,
    }
}

/// Attributes of a span event or link, with content dropped under the same rules.
fn detail_attrs(kvs: &[KeyValue], capture: bool, redacted: &mut bool) -> Attrs {
    let mut ignored = ToolDetails::default();
    let mut out = Attrs::new();
    for kv in kvs {
        match redact::content_attr("", kv, capture, &mut ignored, redacted) {
            Some(Some(v)) => {
                out.insert(kv.key.clone(), v);
            }
            Some(None) => {}
            None => {
                out.insert(kv.key.clone(), attrs::to_json(kv.value.as_ref()));
            }
        }
    }
    out
}

/// Events, links and the rarely used span fields, as JSON; `None` when
/// there is nothing to keep.
fn detail(span: &Span, capture: bool, redacted: &mut bool) -> Option<Value> {
    let mut d = Map::new();
    if !span.events.is_empty() {
        let events = span
            .events
            .iter()
            .map(|e| {
                json!({
                    "time_ns": e.time_unix_nano,
                    "name": e.name,
                    "attrs": detail_attrs(&e.attributes, capture, redacted),
                })
            })
            .collect();
        d.insert("events".into(), Value::Array(events));
    }
    if !span.links.is_empty() {
        let links = span
            .links
            .iter()
            .map(|l| {
                json!({
                    "trace_id": hex::encode(&l.trace_id),
                    "span_id": hex::encode(&l.span_id),
                    "trace_state": l.trace_state,
                    "attrs": detail_attrs(&l.attributes, capture, redacted),
                })
            })
            .collect();
        d.insert("links".into(), Value::Array(links));
    }
    if span.flags != 0 {
        d.insert("flags".into(), Value::from(span.flags));
    }
    if !span.trace_state.is_empty() {
        d.insert(
            "trace_state".into(),
            Value::String(span.trace_state.clone()),
        );
    }
    for (name, n) in [
        ("dropped_attributes_count", span.dropped_attributes_count),
        ("dropped_events_count", span.dropped_events_count),
        ("dropped_links_count", span.dropped_links_count),
    ] {
        if n != 0 {
            d.insert(name.into(), Value::from(n));
        }
    }
    (!d.is_empty()).then_some(Value::Object(d))
}

//! Log records → [`EventRow`]s: Claude Code recognition, event names, typed
//! columns (with string-typed numbers read as numbers), the remaining
//! attributes, content redaction.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use super::redact::{self, ToolDetails};
use super::{
    Dedup, Grouped, Rejects, ScopeInfo, Split, agents, attrs, check_id, nanos, set_model, set_once,
};
use crate::agent::Agent;
use crate::otlp::{DecodeOptions, Decoded};
use crate::rows::{Attrs, Batch, EventRow};

#[cfg(test)]
#[test]
fn statuses_are_read_from_error_messages() {
    assert_eq!(status_in_text("Repeated 529 Overloaded errors"), Some(529));
    assert_eq!(
        status_in_text("API Error: 429 {\"type\":\"error\"}"),
        Some(429)
    );
    assert_eq!(status_in_text("retry 3 of 10 after 1200 ms"), None);
    assert_eq!(status_in_text("port 5290 refused"), None);
}

/// Log bodies of Claude Code events are `claude_code.<event name>`.
const BODY_PREFIX: &str = "claude_code.";

/// Converts a logs request into event rows grouped by context.
pub fn logs_to_batch(req: &ExportLogsServiceRequest, opts: &DecodeOptions) -> Decoded {
    let mut grouped = Grouped::new();
    let mut dedup = Dedup::new();
    let mut rejects = Rejects::default();
    let mut split = Split::default();
    for (ri, rl) in req.resource_logs.iter().enumerate() {
        for (si, sl) in rl.scope_logs.iter().enumerate() {
            let scope = ScopeInfo::new(rl.resource.as_ref(), sl.scope.as_ref(), opts);
            for (li, record) in sl.log_records.iter().enumerate() {
                rejects.seen();
                let (time_ns, observed_ns) = match check(record) {
                    Ok(t) => t,
                    Err(why) => {
                        rejects.reject(|| {
                            format!("resourceLogs[{ri}].scopeLogs[{si}].logRecords[{li}]: {why}")
                        });
                        continue;
                    }
                };
                let marker = body_marker(record.body.as_ref());
                let agent = scope
                    .agent
                    .or(marker.map(|_| Agent::ClaudeCode))
                    .or_else(|| Agent::from_record_name(&raw_event_name(record, None, true)));
                let ctx_key = split.compute(&scope, &record.attributes, agent);
                let mut row = event_row(record, &split, marker, agent, opts);
                if let Some(why) = row.out_of_range() {
                    rejects.reject(|| {
                        format!("resourceLogs[{ri}].scopeLogs[{si}].logRecords[{li}]: {why}")
                    });
                    continue;
                }
                row.time_ns = time_ns;
                row.observed_ns = observed_ns;
                row.dedup = dedup.key(&ctx_key, b"log", record);
                grouped.push(
                    ctx_key,
                    || split.context(&scope, &record.attributes, ctx_key, agent),
                    row,
                );
            }
        }
    }
    let (rejected, message) = rejects.finish("log records");
    Decoded {
        batch: Batch {
            events: grouped.into_groups(),
            ..Batch::default()
        },
        rejected,
        message,
    }
}

/// Checks the ids and returns the record time (else the observed time) and
/// the observed time.
fn check(record: &LogRecord) -> Result<(i64, i64), String> {
    if record.attributes.len() > super::MAX_ATTRIBUTES {
        return Err(format!(
            "{} attributes; at most {} are accepted",
            record.attributes.len(),
            super::MAX_ATTRIBUTES
        ));
    }
    check_id(&record.trace_id, 16, false, "traceId")?;
    check_id(&record.span_id, 8, false, "spanId")?;
    let observed = nanos(record.observed_time_unix_nano)
        .ok_or_else(|| "observedTimeUnixNano out of range".to_owned())?;
    let time = match record.time_unix_nano {
        0 if observed == 0 => return Err("no timeUnixNano and no observedTimeUnixNano".into()),
        0 => observed,
        t => nanos(t).ok_or_else(|| "timeUnixNano out of range".to_owned())?,
    };
    Ok((time, observed))
}

/// The event name in a `claude_code.<name>` body.
fn body_marker(body: Option<&AnyValue>) -> Option<&str> {
    match body.and_then(|b| b.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => {
            s.strip_prefix(BODY_PREFIX).filter(|n| !n.is_empty())
        }
        _ => None,
    }
}

/// The event name as sent: for a coding agent the `event.name` attribute,
/// else (Claude Code) the body marker, else the OTLP `event_name` field
/// (Codex puts a source location there); for other logs the `event_name`
/// field, else the `event.name` attribute.
fn raw_event_name(record: &LogRecord, marker: Option<&str>, agent: bool) -> String {
    let attr = record
        .attributes
        .iter()
        .find(|kv| kv.key == "event.name")
        .and_then(|kv| attrs::str_of(kv.value.as_ref()))
        .filter(|s| !s.is_empty());
    let field = Some(record.event_name.as_str()).filter(|s| !s.is_empty());
    let name = if agent {
        attr.or(marker).or(field)
    } else {
        field.or(attr)
    };
    name.unwrap_or_default().to_owned()
}

fn event_row(
    record: &LogRecord,
    split: &Split,
    marker: Option<&str>,
    agent: Option<Agent>,
    opts: &DecodeOptions,
) -> EventRow {
    let capture = opts.capture_content;
    let raw_name = raw_event_name(record, marker, agent.is_some());
    // Other agents' events take the shared name of what they are.
    let other_agent = agent.filter(|a| *a != Agent::ClaudeCode);
    let event_name = other_agent
        .and_then(|a| agents::canonical_event(a, &raw_name, &record.attributes))
        .map(str::to_owned)
        .unwrap_or(raw_name);
    let body = match (marker, record.body.as_ref()) {
        (Some(m), _) if m == event_name => None,
        (_, None) => None,
        (_, Some(b)) => match &b.value {
            None => None,
            Some(any_value::Value::StringValue(s)) => Some(s.clone()),
            Some(_) => Some(attrs::to_json(Some(b)).to_string()),
        },
    };
    let mut row = EventRow {
        severity_number: record.severity_number,
        severity_text: Some(record.severity_text.clone()).filter(|s| !s.is_empty()),
        body,
        trace_id: Some(record.trace_id.clone()).filter(|id| !id.is_empty()),
        span_id: Some(record.span_id.clone()).filter(|id| !id.is_empty()),
        ..EventRow::default()
    };
    let mut details = ToolDetails::default();
    let mut attrs_out = Attrs::new();
    let mut cost_micros: Option<&KeyValue> = None;
    let mut usage = agents::Usage::default();
    for (i, kv) in record.attributes.iter().enumerate() {
        if split.is_shared(i) {
            continue;
        }
        if other_agent == Some(Agent::Codex) && kv.key == "arguments" && details.file_path.is_none()
        {
            details.file_path = attrs::str_of(kv.value.as_ref()).and_then(agents::patch_path);
        }
        if let Some(a) = other_agent
            && agents::typed_event(&mut row, &mut usage, a, kv)
        {
            continue;
        }
        if let Some(kept) = redact::content_attr(
            &event_name,
            kv,
            capture,
            &mut details,
            &mut row.content_redacted,
        ) {
            if let Some(v) = kept {
                attrs_out.insert(kv.key.clone(), v);
            }
            continue;
        }
        if kv.key == "cost_usd_micros" {
            cost_micros = Some(kv);
            continue;
        }
        if !typed(&mut row, &event_name, kv) {
            attrs_out.insert(kv.key.clone(), attrs::to_json(kv.value.as_ref()));
        }
    }
    if let Some(kv) = cost_micros {
        let cost = attrs::float_of(kv.value.as_ref()).map(|m| m / 1e6);
        if !set_once(&mut row.cost_usd, cost) {
            attrs_out.insert(kv.key.clone(), attrs::to_json(kv.value.as_ref()));
        }
    }
    if let Some(a) = other_agent {
        usage.finish(a, &mut row, &mut attrs_out);
    }
    set_once(&mut row.file_path, details.file_path);
    set_once(&mut row.mcp_server, details.mcp_server);
    set_once(&mut row.mcp_tool, details.mcp_tool);
    set_once(&mut row.branch, details.branch);
    row.event_name = event_name;
    row.attrs = attrs_out;
    if row.status_code.is_none()
        && matches!(
            row.event_name.as_str(),
            "api_error" | "api_retries_exhausted"
        )
    {
        // Claude Code often gives the HTTP status only in the message
        // ("Repeated 529 Overloaded errors").
        row.status_code = row.error.as_deref().and_then(status_in_text);
    }
    agents::price_request(&mut row, &opts.pricing);
    row
}

/// The HTTP error status (400-599) an error message names, if it names one:
/// the first three-digit number standing alone.
fn status_in_text(text: &str) -> Option<i64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() == 3)
        .filter_map(|w| w.parse::<i64>().ok())
        .find(|n| (400..=599).contains(n))
}

/// Moves one attribute into its typed column; false when it has none (or
/// the value does not read as the column's type, or the column is taken).
fn typed(row: &mut EventRow, event_name: &str, kv: &KeyValue) -> bool {
    let v = kv.value.as_ref();
    let text = || attrs::str_of(v).map(str::to_owned);
    let int = || attrs::int_of(v);
    match kv.key.as_str() {
        "event.name" => attrs::str_of(v) == Some(event_name),
        "prompt.id" => set_once(&mut row.prompt_id, text()),
        "event.sequence" => set_once(&mut row.sequence, int()),
        "model" => set_model(
            &mut row.model,
            &mut row.model_variant,
            attrs::str_of(kv.value.as_ref()),
        ),
        "input_tokens" => set_once(&mut row.input_tokens, int()),
        "output_tokens" => set_once(&mut row.output_tokens, int()),
        "cache_read_tokens" => set_once(&mut row.cache_read_tokens, int()),
        "cache_creation_tokens" => set_once(&mut row.cache_creation_tokens, int()),
        "cost_usd" => set_once(&mut row.cost_usd, attrs::float_of(v)),
        "duration_ms" if event_name != "api_retries_exhausted" => {
            set_once(&mut row.duration_ms, int())
        }
        "total_retry_duration_ms" if event_name == "api_retries_exhausted" => {
            set_once(&mut row.duration_ms, int())
        }
        "ttft_ms" => set_once(&mut row.ttft_ms, int()),
        "tool_name" => set_once(&mut row.tool_name, text()),
        "tool_use_id" => set_once(&mut row.tool_use_id, text()),
        "success" => set_once(&mut row.success, attrs::bool_of(v)),
        "decision" => set_once(&mut row.decision, text()),
        "decision_type" if event_name != "tool_decision" => set_once(&mut row.decision, text()),
        "source" if event_name == "tool_decision" => set_once(&mut row.decision_source, text()),
        "decision_source" if event_name != "tool_decision" => {
            set_once(&mut row.decision_source, text())
        }
        "status_code" => set_once(&mut row.status_code, int()),
        "error" => set_once(&mut row.error, text()),
        "error_name" if event_name == "internal_error" => set_once(&mut row.error, text()),
        "request_id" => set_once(&mut row.request_id, text()),
        "query_source" => set_once(&mut row.query_source, text()),
        "file_path" => set_once(&mut row.file_path, text()),
        "mcp_server.name" => set_once(&mut row.mcp_server, text()),
        "server_name" if event_name == "mcp_server_connection" => {
            set_once(&mut row.mcp_server, text())
        }
        "mcp_tool.name" => set_once(&mut row.mcp_tool, text()),
        "vcs.repository.name" | "repo.name" => set_once(&mut row.repository, text()),
        "vcs.ref.head.name" => set_once(&mut row.branch, text()),
        _ => false,
    }
}

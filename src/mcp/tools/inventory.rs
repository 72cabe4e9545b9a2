//! `describe_data`: what the store holds, for planning and explaining gaps.

use serde_json::json;

use super::super::args::{self};
use super::super::reply::Output;
use crate::auth::Principal;
use crate::query::page::Page;
use crate::query::{QueryError, ToolContext};

pub(crate) async fn describe_data(
    ctx: &ToolContext,
    principal: &Principal,
    a: Result<args::DescribeArgs, QueryError>,
    _hash: &str,
) -> Result<Output, QueryError> {
    let a = a?;
    let range = a.range.resolve_for(ctx, principal, Some(30)).await?;
    let f = crate::query::filter::Filter::new(crate::query::visible::Visible::of(principal));
    let r2 = range.clone();
    let d = ctx.questions.describe_data(r2, f).await?;
    let mut out = Output::default();
    out.set("range", range.info());
    out.set("first_event", &d.first_event);
    out.set("last_event", &d.last_event);
    let has = |kind: &str, name: &str| d.names.iter().any(|n| n.kind == kind && n.name == name);
    let traces = d.names.iter().any(|n| n.kind == "span");
    let events = d.names.iter().any(|n| n.kind == "event");
    let metrics = d.names.iter().any(|n| n.kind == "metric");
    out.set("developers", &d.developers);
    out.set("claude_code_versions", &d.versions);
    out.set("sessions", d.sessions);
    out.set("resource_attribute_keys", &d.resource_attribute_keys);
    out.set(
        "optional_data",
        json!({
            "events": events,
            "metrics": metrics,
            "traces": traces,
            "tool_details_file_paths": d.events_with_file_path > 0 || has("span", "claude_code.tool"),
            "prompt_text": d.prompts_with_text > 0,
            "metrics_only_sessions": d.metrics_only_sessions,
            "events_with_content_removed_at_ingest": d.events_content_redacted,
        }),
    );
    let mut gaps = Vec::new();
    if !events && metrics {
        gaps.push("only metrics are stored: set OTEL_LOGS_EXPORTER=otlp for events (requests, tools, prompts)".to_string());
    }
    if d.events_with_file_path == 0 {
        gaps.push(format!(
            "no file paths: {}",
            crate::query::files::ENABLE_PATHS
        ));
    }
    if !traces {
        gaps.push(
            "no traces: set CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1 and OTEL_TRACES_EXPORTER=otlp"
                .into(),
        );
    }
    out.set("gaps", &gaps);
    out.summary = format!(
        "{} developer(s), {} session(s), {} event name(s), {} metric(s), {} span name(s); versions: {}.",
        d.developers.len(),
        d.sessions,
        d.names.iter().filter(|n| n.kind == "event").count(),
        d.names.iter().filter(|n| n.kind == "metric").count(),
        d.names.iter().filter(|n| n.kind == "span").count(),
        if d.versions.is_empty() {
            "none".to_string()
        } else {
            d.versions.join(", ")
        }
    );
    let n = d.names.len();
    out.page(Page::slice(d.names, 0, n.max(1)));
    Ok(out)
}

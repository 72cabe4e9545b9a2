//! `describe_data`: what the store holds, for planning and explaining gaps.

use super::super::args::{self};
use super::super::reply::Output;
use crate::auth::Principal;
use crate::query::describe::{AgentInfo, DeveloperInfo};
use crate::query::page::Page;
use crate::query::time::RangeInfo;
use crate::query::{QueryError, ToolContext};

/// `describe_data` besides its rows (counts per event, metric and span name).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct DescribeBody {
    /// The range the counts cover.
    pub range: RangeInfo,
    /// The first event the caller may see (all data).
    pub first_event: Option<String>,
    /// The last event the caller may see (all data).
    pub last_event: Option<String>,
    /// Developers and their identity kind.
    pub developers: Vec<DeveloperInfo>,
    /// The coding agents the data comes from, with versions and sessions.
    pub agents: Vec<AgentInfo>,
    /// Claude Code versions seen.
    pub claude_code_versions: Vec<String>,
    /// Sessions.
    pub sessions: i64,
    /// Resource attribute keys seen (for `attribute` filters).
    pub resource_attribute_keys: Vec<String>,
    /// Which optional data is present.
    pub optional_data: OptionalData,
    /// What is missing and how to enable it.
    pub gaps: Vec<String>,
}

/// Which optional data the store holds.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct OptionalData {
    /// Events (OTEL_LOGS_EXPORTER=otlp).
    pub events: bool,
    /// Metrics (OTEL_METRICS_EXPORTER=otlp).
    pub metrics: bool,
    /// Traces (CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1).
    pub traces: bool,
    /// File paths (OTEL_LOG_TOOL_DETAILS=1).
    pub tool_details_file_paths: bool,
    /// Prompt text (OTEL_LOG_USER_PROMPTS=1 and content capture on).
    pub prompt_text: bool,
    /// Sessions that sent metrics only.
    pub metrics_only_sessions: i64,
    /// Events whose content was removed at ingest.
    pub events_with_content_removed_at_ingest: i64,
}

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
    let has = |kind: &str, name: &str| d.names.iter().any(|n| n.kind == kind && n.name == name);
    let traces = d.names.iter().any(|n| n.kind == "span");
    let events = d.names.iter().any(|n| n.kind == "event");
    let metrics = d.names.iter().any(|n| n.kind == "metric");
    let optional_data = OptionalData {
        events,
        metrics,
        traces,
        tool_details_file_paths: d.events_with_file_path > 0 || has("span", "claude_code.tool"),
        prompt_text: d.prompts_with_text > 0,
        metrics_only_sessions: d.metrics_only_sessions,
        events_with_content_removed_at_ingest: d.events_content_redacted,
    };
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
    if d.developers.iter().any(|x| {
        matches!(
            x.developer_kind.as_deref(),
            Some("host" | "installation_id")
        )
    }) {
        gaps.push("some agents send no user (Codex CLI with an API key, Gemini CLI without a Google login, OpenCode): their developer is the install id or host name; name them with [identity] in the config, e.g. \"host.name=ci-runner-3\" = \"platform-team\"".into());
    }
    if d.agents.iter().any(|a| a.agent == "opencode") && !has("event", "api_request") {
        gaps.push(
            "OpenCode reports tokens only on AI SDK spans: enable its OTLP trace export".into(),
        );
    }
    let claude_code_versions = d
        .agents
        .iter()
        .find(|a| a.agent == "claude_code")
        .map(|a| a.versions.clone())
        .unwrap_or_default();
    let agents_text = d
        .agents
        .iter()
        .map(|a| match a.versions.first() {
            Some(v) => format!("{} {v}", a.agent),
            None => a.agent.clone(),
        })
        .collect::<Vec<_>>();
    out.body(&DescribeBody {
        range: range.info(),
        first_event: d.first_event.clone(),
        last_event: d.last_event.clone(),
        developers: d.developers.clone(),
        agents: d.agents.clone(),
        claude_code_versions,
        sessions: d.sessions,
        resource_attribute_keys: d.resource_attribute_keys.clone(),
        optional_data,
        gaps,
    });
    out.summary = format!(
        "{} developer(s), {} session(s), {} event name(s), {} metric(s), {} span name(s); agents: {}.",
        d.developers.len(),
        d.sessions,
        d.names.iter().filter(|n| n.kind == "event").count(),
        d.names.iter().filter(|n| n.kind == "metric").count(),
        d.names.iter().filter(|n| n.kind == "span").count(),
        if agents_text.is_empty() {
            "none".to_string()
        } else {
            agents_text.join(", ")
        }
    );
    let n = d.names.len();
    out.page(Page::slice(d.names, 0, n.max(1)));
    Ok(out)
}

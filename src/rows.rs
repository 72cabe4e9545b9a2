//! Typed rows: what decoding produces and what the store writes.
//!
//! These types are the contract between `otlp` (bytes → rows) and `store`
//! (rows → SQLite). They carry no transport or SQL detail. Attribute maps are
//! `serde_json` objects with natural JSON values (string, i64, f64, bool,
//! array, object; bytes as `{"bytes_b64": "..."}`) so that nothing sent is lost.

use std::sync::Arc;

use crate::agent::Agent;

/// A JSON object of attribute key → value, kept verbatim.
pub type Attrs = serde_json::Map<String, serde_json::Value>;

/// 16-byte key that identifies one received record for deduplication.
///
/// Computed from the record's full content (resource, scope and record
/// encoding) plus the ordinal of identical content within one request, so a
/// retried request maps to the same keys while two distinct records never share one.
pub type DedupKey = [u8; 16];

/// Which identity attribute named the developer (`user.email` is preferred,
/// then `user.account_uuid`, then the anonymous `user.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// `user.email`
    Email,
    /// `user.account_uuid`
    AccountUuid,
    /// `user.id` (an anonymous per-install hash)
    UserId,
    /// `user.account_id` (Codex with a ChatGPT login)
    AccountId,
    /// `installation.id` (Gemini CLI's per-install id)
    InstallationId,
    /// `host.name`, when an agent sends no user at all
    Host,
    /// The operator's identity map (`[identity]` in the config)
    Mapped,
}

impl IdentityKind {
    /// The stable text stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Email => "email",
            IdentityKind::AccountUuid => "account_uuid",
            IdentityKind::UserId => "user_id",
            IdentityKind::AccountId => "account_id",
            IdentityKind::InstallationId => "installation_id",
            IdentityKind::Host => "host",
            IdentityKind::Mapped => "mapped",
        }
    }
}

/// Splits a model id into the model and its context variant: Claude Code
/// names the 1M-context variant `claude-opus-4-8[1m]` on its cost and token
/// metrics but `claude-opus-4-8` on the `api_request` event of the same
/// request, so the model column holds `claude-opus-4-8` and the variant
/// (`1m`) is kept beside it. Anything else is returned whole.
pub fn split_model(raw: &str) -> (&str, Option<&str>) {
    match raw.find('[') {
        Some(i) if i > 0 && raw.len() > i + 2 && raw.ends_with(']') => {
            (&raw[..i], Some(&raw[i + 1..raw.len() - 1]))
        }
        _ => (raw, None),
    }
}

/// Most tokens of one kind one record may report (100 times the largest
/// context window): more is refused as a poisoned value, and sums over any
/// realistic store stay far inside `i64`.
pub const MAX_TOKENS: i64 = 100_000_000;
/// Most cost one record may report, in USD.
pub const MAX_COST_USD: f64 = 10_000.0;
/// Longest duration one record may report, in ms (about 11 days).
pub const MAX_DURATION_MS: i64 = 1_000_000_000;

impl EventRow {
    /// Why the typed values cannot be true (negative or absurd token
    /// counts, a non-finite or negative cost, a negative or absurd
    /// duration), if so: such a record is refused, never stored, so one
    /// request cannot break the totals of everyone who sees its developer.
    pub fn out_of_range(&self) -> Option<String> {
        for (name, v) in [
            ("input_tokens", self.input_tokens),
            ("output_tokens", self.output_tokens),
            ("cache_read_tokens", self.cache_read_tokens),
            ("cache_creation_tokens", self.cache_creation_tokens),
            ("reasoning_tokens", self.reasoning_tokens),
        ] {
            if let Some(v) = v
                && !(0..=MAX_TOKENS).contains(&v)
            {
                return Some(format!("{name} {v} is outside 0..={MAX_TOKENS}"));
            }
        }
        if let Some(c) = self.cost_usd
            && !(c.is_finite() && (0.0..=MAX_COST_USD).contains(&c))
        {
            return Some(format!("cost_usd {c} is outside 0..={MAX_COST_USD}"));
        }
        for (name, v) in [("duration_ms", self.duration_ms), ("ttft_ms", self.ttft_ms)] {
            if let Some(v) = v
                && !(0..=MAX_DURATION_MS).contains(&v)
            {
                return Some(format!("{name} {v} is outside 0..={MAX_DURATION_MS}"));
            }
        }
        None
    }
}

impl MetricPointRow {
    /// Why the value cannot be stored, if so: a non-finite value (NaN,
    /// ±Infinity) would make every sum over it unanswerable.
    pub fn out_of_range(&self) -> Option<String> {
        (!self.value.is_finite()).then(|| format!("value {} is not a finite number", self.value))
    }
}

/// What many records share: resource, scope and the attributes Claude Code
/// repeats on every record of a session (identity, terminal, version, and the
/// `OTEL_RESOURCE_ATTRIBUTES` copies). Stored once, referenced by id.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// Hash of everything below; equal contexts are stored once.
    pub key: DedupKey,
    /// The coding agent that sent the records, when one is recognised
    /// (see [`crate::agent`]).
    pub agent: Option<Agent>,
    /// That agent's version, when it sends it.
    pub agent_version: Option<String>,
    /// `service.name` from the resource, if any.
    pub service_name: Option<String>,
    /// Instrumentation scope name.
    pub scope_name: String,
    /// Instrumentation scope version.
    pub scope_version: String,
    /// `session.id`, if the records carry one.
    pub session_id: Option<String>,
    /// The developer identity chosen by precedence (email, account uuid, user id).
    pub developer: Option<String>,
    /// Which attribute `developer` came from.
    pub developer_kind: Option<IdentityKind>,
    /// `user.email`
    pub user_email: Option<String>,
    /// `user.account_uuid`
    pub user_account_uuid: Option<String>,
    /// `user.id`
    pub user_id: Option<String>,
    /// `organization.id`
    pub organization_id: Option<String>,
    /// `terminal.type`
    pub terminal_type: Option<String>,
    /// `app.version`, else `service.version`, else the scope version for Claude Code.
    pub app_version: Option<String>,
    /// Every resource attribute, verbatim.
    pub resource_attrs: Attrs,
    /// Record-level attributes that are constant for the context (identity,
    /// session, terminal, app, and copies of resource attributes).
    pub shared_attrs: Attrs,
}

impl Context {
    /// True when Claude Code sent the records.
    pub fn claude_code(&self) -> bool {
        self.agent == Some(Agent::ClaudeCode)
    }
}

/// One log record (a coding agent's event, or any other OTLP log).
///
/// Every agent's events are typed in one model: the names Claude Code uses
/// (`api_request`, `api_error`, `user_prompt`, `tool_decision`,
/// `tool_result`) for what each agent calls them (see
/// `otlp::convert::agents`), and tokens in one convention: `input_tokens`
/// excludes cache reads and writes, `output_tokens` includes reasoning.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventRow {
    /// Deduplication key.
    pub dedup: DedupKey,
    /// Event time (record time, else observed time), ns since the epoch.
    pub time_ns: i64,
    /// Observed time, ns since the epoch (0 when unset).
    pub observed_ns: i64,
    /// Claude Code `event.name` (no prefix); for other logs the OTLP
    /// `event_name` field, else the `event.name` attribute, else empty.
    pub event_name: String,
    /// OTLP severity number (0 when unset).
    pub severity_number: i32,
    /// OTLP severity text.
    pub severity_text: Option<String>,
    /// Log body as text when it is not Claude Code's `claude_code.<name>`
    /// marker (strings verbatim, other values as JSON).
    pub body: Option<String>,
    /// Trace id (16 bytes) if set.
    pub trace_id: Option<Vec<u8>>,
    /// Span id (8 bytes) if set.
    pub span_id: Option<Vec<u8>>,
    /// `prompt.id`
    pub prompt_id: Option<String>,
    /// `event.sequence`
    pub sequence: Option<i64>,
    /// `model`, without a context variant (see [`split_model`])
    pub model: Option<String>,
    /// The model's context variant (`1m` of `claude-opus-4-8[1m]`), if any.
    pub model_variant: Option<String>,
    /// `input_tokens`
    pub input_tokens: Option<i64>,
    /// `output_tokens`
    pub output_tokens: Option<i64>,
    /// `cache_read_tokens`
    pub cache_read_tokens: Option<i64>,
    /// `cache_creation_tokens`
    pub cache_creation_tokens: Option<i64>,
    /// The reasoning part of `output_tokens` (Codex `reasoning_token_count`,
    /// Gemini `thoughts_token_count`, AI SDK `reasoningTokens`).
    pub reasoning_tokens: Option<i64>,
    /// The cost this request counts with, USD: the agent's own estimate
    /// (Claude Code's `cost_usd` or `cost_usd_micros`) when it sends one,
    /// else `computed_cost_usd`.
    pub cost_usd: Option<f64>,
    /// The cost computed from the tokens and the price table
    /// ([`crate::pricing`]); `None` when the model has no price.
    pub computed_cost_usd: Option<f64>,
    /// True when `cost_usd` is the computed cost (the agent sent none).
    pub cost_computed: bool,
    /// `duration_ms` (or `total_retry_duration_ms` for `api_retries_exhausted`).
    pub duration_ms: Option<i64>,
    /// `ttft_ms`
    pub ttft_ms: Option<i64>,
    /// `tool_name`
    pub tool_name: Option<String>,
    /// `tool_use_id`
    pub tool_use_id: Option<String>,
    /// `success` (from bool or "true"/"false")
    pub success: Option<bool>,
    /// `decision` of `tool_decision` (accept/reject), or `decision_type` of `tool_result`.
    pub decision: Option<String>,
    /// `source` of `tool_decision`, or `decision_source` of `tool_result`.
    pub decision_source: Option<String>,
    /// `status_code`
    pub status_code: Option<i64>,
    /// `error` (or `error_name` for `internal_error`)
    pub error: Option<String>,
    /// `request_id`
    pub request_id: Option<String>,
    /// `query_source`
    pub query_source: Option<String>,
    /// File path from `tool_input`/`tool_parameters` (`file_path`, `notebook_path`, `path`).
    pub file_path: Option<String>,
    /// MCP server name (`mcp_server.name`, `mcp_server_name`, or `server_name` of
    /// `mcp_server_connection`).
    pub mcp_server: Option<String>,
    /// MCP tool name (`mcp_tool.name`, `mcp_tool_name`).
    pub mcp_tool: Option<String>,
    /// Repository (`vcs.repository.name`, `repo.name`), when present on the record.
    pub repository: Option<String>,
    /// Branch (`vcs.ref.head.name`, `git_branch` in `tool_parameters`).
    pub branch: Option<String>,
    /// True when content fields (prompt text, responses, bodies, tool input
    /// contents) were removed because content capture is off.
    pub content_redacted: bool,
    /// Every other attribute (and any content kept under capture), verbatim.
    pub attrs: Attrs,
}

/// The kind of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonic or non-monotonic sum.
    Sum,
    /// Gauge.
    Gauge,
    /// Explicit-bucket histogram.
    Histogram,
    /// Exponential histogram.
    ExponentialHistogram,
    /// Summary.
    Summary,
}

impl MetricKind {
    /// The stable text stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Sum => "sum",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
            MetricKind::ExponentialHistogram => "exponential_histogram",
            MetricKind::Summary => "summary",
        }
    }
}

/// OTLP aggregation temporality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporality {
    /// Unspecified (gauges, summaries).
    Unspecified,
    /// Each point covers (start, time] only.
    Delta,
    /// Each point is the running total since `start_ns`.
    Cumulative,
}

impl Temporality {
    /// The OTLP enum number, as stored.
    pub fn as_i32(self) -> i32 {
        match self {
            Temporality::Unspecified => 0,
            Temporality::Delta => 1,
            Temporality::Cumulative => 2,
        }
    }
}

/// One metric data point.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPointRow {
    /// Deduplication key.
    pub dedup: DedupKey,
    /// Metric name, e.g. `claude_code.cost.usage`.
    pub name: String,
    /// Unit, e.g. `USD`.
    pub unit: String,
    /// Description as sent.
    pub description: String,
    /// Kind of metric.
    pub kind: MetricKind,
    /// Temporality of sums and histograms.
    pub temporality: Temporality,
    /// Whether a sum is monotonic.
    pub monotonic: bool,
    /// Start of the interval (ns).
    pub start_ns: i64,
    /// End of the interval / observation time (ns).
    pub time_ns: i64,
    /// Value of a sum or gauge; the sum of a histogram or summary.
    pub value: f64,
    /// Count of a histogram or summary.
    pub count: Option<u64>,
    /// Histogram detail (bounds, bucket counts, min, max, exemplars; quantiles
    /// of a summary) as JSON, verbatim.
    pub detail: Option<serde_json::Value>,
    /// `model` point attribute, without a context variant (see [`split_model`]).
    pub model: Option<String>,
    /// The model's context variant (`1m` of `claude-opus-4-8[1m]`), if any.
    pub model_variant: Option<String>,
    /// `type` point attribute (token type, lines added/removed, active time kind).
    pub kind_attr: Option<String>,
    /// Point attributes that are not part of the context (everything else).
    pub attrs: Attrs,
}

/// One span.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanRow {
    /// Deduplication key.
    pub dedup: DedupKey,
    /// Trace id (16 bytes).
    pub trace_id: Vec<u8>,
    /// Span id (8 bytes).
    pub span_id: Vec<u8>,
    /// Parent span id (empty for a root).
    pub parent_span_id: Vec<u8>,
    /// Span name, e.g. `claude_code.tool`.
    pub name: String,
    /// OTLP span kind number.
    pub kind: i32,
    /// Start (ns).
    pub start_ns: i64,
    /// End (ns).
    pub end_ns: i64,
    /// OTLP status code number (0 unset, 1 ok, 2 error).
    pub status_code: i32,
    /// Status message.
    pub status_message: Option<String>,
    /// `tool_name`
    pub tool_name: Option<String>,
    /// `tool_use_id`
    pub tool_use_id: Option<String>,
    /// `file_path` (with `OTEL_LOG_TOOL_DETAILS=1`)
    pub file_path: Option<String>,
    /// `decision` (on `claude_code.tool.blocked_on_user`)
    pub decision: Option<String>,
    /// `source` (on `claude_code.tool.blocked_on_user`)
    pub decision_source: Option<String>,
    /// `duration_ms` attribute (else end - start in ms)
    pub duration_ms: Option<i64>,
    /// `success`
    pub success: Option<bool>,
    /// `model`, without a context variant (see [`split_model`])
    pub model: Option<String>,
    /// The model's context variant, if any.
    pub model_variant: Option<String>,
    /// True when content attributes (`user_prompt`, ...) were removed.
    pub content_redacted: bool,
    /// Every other attribute, verbatim.
    pub attrs: Attrs,
    /// Span events and links as JSON (`{"events": [...], "links": [...]}`), if any.
    pub detail: Option<serde_json::Value>,
}

/// Records that share one context.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextGroup<T> {
    /// The shared context.
    pub context: Arc<Context>,
    /// The records.
    pub rows: Vec<T>,
}

/// Everything decoded from one OTLP request, ready to be written in one go.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// Log records, grouped by context.
    pub events: Vec<ContextGroup<EventRow>>,
    /// Metric points, grouped by context.
    pub metric_points: Vec<ContextGroup<MetricPointRow>>,
    /// Spans, grouped by context.
    pub spans: Vec<ContextGroup<SpanRow>>,
}

impl Batch {
    /// Number of records (events + points + spans) in the batch.
    pub fn len(&self) -> usize {
        self.events.iter().map(|g| g.rows.len()).sum::<usize>()
            + self
                .metric_points
                .iter()
                .map(|g| g.rows.len())
                .sum::<usize>()
            + self.spans.iter().map(|g| g.rows.len()).sum::<usize>()
    }

    /// True when the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::split_model;

    #[test]
    fn model_ids_split_off_their_context_variant() {
        assert_eq!(
            split_model("claude-opus-4-8[1m]"),
            ("claude-opus-4-8", Some("1m"))
        );
        assert_eq!(split_model("claude-opus-4-8"), ("claude-opus-4-8", None));
        for whole in ["[1m]", "a[]", "a[1m", "a]", ""] {
            assert_eq!(split_model(whole), (whole, None), "{whole}");
        }
    }
}

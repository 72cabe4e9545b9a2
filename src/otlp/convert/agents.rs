//! Each coding agent's own telemetry, typed in the one model of
//! [`EventRow`]: which of its events is an API request, an API error, a
//! prompt, a tool decision or a tool result; its token counts in the shared
//! convention (input without cache, output with reasoning); its decisions as
//! `accept`/`reject`. Everything not named here is stored as sent.
//!
//! | agent | API request | tokens as sent | tool result |
//! |---|---|---|---|
//! | Claude Code | `api_request` | input without cache, output with thinking | `tool_result` |
//! | Codex CLI | `codex.sse_event` `response.completed` with counts | `input_token_count` includes `cached_token_count`; `output_token_count` includes `reasoning_token_count` | `codex.tool_result` |
//! | Gemini CLI | `gemini_cli.api_response` | `input_token_count` includes `cached_content_token_count`; `output_token_count` excludes `thoughts_token_count` | `gemini_cli.tool_call` |
//! | OpenCode | span `ai.streamText.doStream` (AI SDK) | `ai.usage.inputTokens` includes `cachedInputTokens`; `outputTokens` includes `reasoningTokens` | span `Tool.execute` |
//!
//! Codex also reports tokens as metrics (`codex.turn.token_usage`) and span
//! attributes, Gemini as metrics (`gemini_cli.token.usage`,
//! `gen_ai.client.token.usage`) and on `gen_ai.client.inference.operation.details`
//! events: only the events above count, so no request is counted twice.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

use super::attrs;
use crate::agent::Agent;
use crate::rows::{Attrs, EventRow};

/// The shared name of an agent's event, when it has one; `None` keeps the
/// agent's own name.
pub(super) fn canonical_event(agent: Agent, raw: &str, kvs: &[KeyValue]) -> Option<&'static str> {
    let attr = |key: &str| kvs.iter().rev().find(|kv| kv.key == key);
    match (agent, raw) {
        (Agent::Codex, "codex.user_prompt") | (Agent::GeminiCli, "gemini_cli.user_prompt") => {
            Some("user_prompt")
        }
        (Agent::Codex, "codex.tool_decision") => Some("tool_decision"),
        (Agent::Codex, "codex.tool_result") | (Agent::GeminiCli, "gemini_cli.tool_call") => {
            Some("tool_result")
        }
        (Agent::GeminiCli, "gemini_cli.api_response") => Some("api_request"),
        (Agent::GeminiCli, "gemini_cli.api_error") => Some("api_error"),
        (Agent::Codex, "codex.sse_event") => {
            let kind = attr("event.kind").and_then(|kv| attrs::str_of(kv.value.as_ref()));
            match kind {
                // Codex logs `response.completed` twice per response; only
                // one of the two carries the token counts.
                Some("response.completed") if attr("input_token_count").is_some() => {
                    Some("api_request")
                }
                Some("response.failed") => Some("api_error"),
                _ => None,
            }
        }
        (Agent::Codex, "codex.api_request") => {
            let status = attr("http.response.status_code")
                .and_then(|kv| attrs::int_of(kv.value.as_ref()))
                .unwrap_or(0);
            let error = attr("error.message").is_some() || attr("error").is_some();
            (status >= 400 || error).then_some("api_error")
        }
        _ => None,
    }
}

/// Token counts as the agent sent them, before they are put in the shared
/// convention by [`Usage::finish`].
#[derive(Default)]
pub(super) struct Usage {
    input: Option<i64>,
    cached: Option<i64>,
    cache_write: Option<i64>,
    output: Option<i64>,
    reasoning: Option<i64>,
    tool_prompt: Option<i64>,
    decision: Option<String>,
}

/// Moves one attribute of a non-Claude-Code agent's event into its typed
/// column (or into `usage`); false when it is not one of the agent's own
/// keys (the caller then tries the shared keys).
pub(super) fn typed_event(
    row: &mut EventRow,
    usage: &mut Usage,
    agent: Agent,
    kv: &KeyValue,
) -> bool {
    let v = kv.value.as_ref();
    let int = || attrs::int_of(v);
    let text = || {
        attrs::str_of(v)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let set = |field: &mut Option<i64>, value: Option<i64>| super::set_once(field, value);
    match (agent, kv.key.as_str()) {
        (Agent::Codex | Agent::GeminiCli, "input_token_count") => set(&mut usage.input, int()),
        (Agent::Codex | Agent::GeminiCli, "output_token_count") => set(&mut usage.output, int()),
        (Agent::Codex, "cached_token_count") | (Agent::GeminiCli, "cached_content_token_count") => {
            set(&mut usage.cached, int())
        }
        (Agent::Codex, "cache_write_token_count") => set(&mut usage.cache_write, int()),
        (Agent::Codex, "reasoning_token_count") | (Agent::GeminiCli, "thoughts_token_count") => {
            set(&mut usage.reasoning, int())
        }
        (Agent::GeminiCli, "tool_token_count") => set(&mut usage.tool_prompt, int()),
        (Agent::Codex, "call_id") => super::set_once(&mut row.tool_use_id, text()),
        (Agent::Codex, "http.response.status_code") => super::set_once(&mut row.status_code, int()),
        (Agent::Codex, "error.message") => super::set_once(&mut row.error, text()),
        (Agent::GeminiCli, "function_name") => super::set_once(&mut row.tool_name, text()),
        (Agent::GeminiCli, "prompt_id") => super::set_once(&mut row.prompt_id, text()),
        (_, "decision") => super::set_once(&mut usage.decision, text()),
        // Durations arrive as strings (Codex) and as fractional numbers (Gemini).
        (_, "duration_ms") => super::set_once(&mut row.duration_ms, millis(v)),
        _ => false,
    }
}

/// Milliseconds from a number or numeric string, rounded to whole ms.
fn millis(v: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> Option<i64> {
    attrs::float_of(v)
        .filter(|f| *f >= 0.0)
        .map(|f| f.round() as i64)
}

impl Usage {
    /// Puts the counts in the shared convention on `row`; the decision as
    /// `accept`/`reject`, the agent's own word kept in `attrs`.
    pub(super) fn finish(self, agent: Agent, row: &mut EventRow, attrs_out: &mut Attrs) {
        let cached = self.cached.unwrap_or(0).max(0);
        let cache_write = self.cache_write.unwrap_or(0).max(0);
        if let Some(input) = self.input {
            let uncached = match agent {
                // Codex (OpenAI) counts cached and cache-written input inside the input.
                Agent::Codex => input - cached - cache_write,
                // Gemini counts cached input inside the prompt; the tool-use
                // prompt is input beside it.
                _ => input - cached + self.tool_prompt.unwrap_or(0).max(0),
            };
            row.input_tokens = Some(uncached.max(0));
        }
        if self.cached.is_some() {
            row.cache_read_tokens = Some(cached);
        }
        if self.cache_write.is_some() {
            row.cache_creation_tokens = Some(cache_write);
        }
        let reasoning = self.reasoning.map(|r| r.max(0));
        row.reasoning_tokens = reasoning;
        if let Some(output) = self.output {
            row.output_tokens = Some(match agent {
                // Gemini's output count leaves its thoughts out.
                Agent::GeminiCli => output + reasoning.unwrap_or(0),
                _ => output,
            });
        }
        if let Some(raw) = self.decision {
            let word = normalise_decision(&raw);
            if word != raw {
                attrs_out.insert("agent.decision".into(), serde_json::Value::String(raw));
            }
            row.decision = Some(word);
        }
    }
}

/// `accept` or `reject` for the agents' words (Codex `approved`,
/// `approved_for_session`, `denied`, `abort`; Gemini `accept`, `auto_accept`,
/// `modify`, `reject`, `cancel`); any other word as sent.
fn normalise_decision(raw: &str) -> String {
    let lower = raw.to_ascii_lowercase();
    if lower.starts_with("approved")
        || matches!(lower.as_str(), "accept" | "auto_accept" | "modify")
    {
        "accept".into()
    } else if matches!(
        lower.as_str(),
        "denied" | "abort" | "reject" | "cancel" | "rejected"
    ) {
        "reject".into()
    } else {
        raw.to_owned()
    }
}

/// The event an OpenCode span stands for, typed: an AI SDK model call
/// (`ai.streamText.doStream`, `ai.generateText.doGenerate`, ...) is an
/// `api_request` (or an `api_error` when the span failed), a
/// `Tool.execute` span a `tool_result`. The span itself is stored too; the
/// event is marked with the span it came from.
pub(super) fn span_event(span: &Span, start_ns: i64, end_ns: i64) -> Option<EventRow> {
    let model_call = matches!(
        span.name.as_str(),
        "ai.streamText.doStream"
            | "ai.generateText.doGenerate"
            | "ai.streamObject.doStream"
            | "ai.generateObject.doGenerate"
    );
    // Most of OpenCode's spans (sql.execute, Config.get...) stand for no event.
    if !model_call && span.name != "Tool.execute" {
        return None;
    }
    let failed = span.status.as_ref().map(|s| s.code) == Some(StatusCode::Error as i32);
    let attr = |key: &str| {
        span.attributes
            .iter()
            .rev()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
    };
    let int = |key: &str| attrs::int_of(attr(key));
    let text = |key: &str| {
        attrs::str_of(attr(key))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let duration_ms = Some(((end_ns - start_ns).max(0)) / 1_000_000);
    let error = span
        .status
        .as_ref()
        .map(|s| s.message.clone())
        .filter(|m| !m.is_empty() && failed);
    let mut row = EventRow {
        time_ns: end_ns,
        trace_id: Some(span.trace_id.clone()).filter(|id| !id.is_empty()),
        span_id: Some(span.span_id.clone()).filter(|id| !id.is_empty()),
        duration_ms,
        ..EventRow::default()
    };
    row.attrs
        .insert("derived_from_span".into(), span.name.clone().into());
    if model_call {
        row.event_name = if failed { "api_error" } else { "api_request" }.into();
        let model = text("ai.response.model")
            .or_else(|| text("ai.model.id"))
            .or_else(|| text("gen_ai.request.model"));
        super::set_model(&mut row.model, &mut row.model_variant, model.as_deref());
        if failed {
            row.error = error;
            return Some(row);
        }
        let input = int("ai.usage.inputTokens").or_else(|| int("gen_ai.usage.input_tokens"));
        let cached = int("ai.usage.cachedInputTokens")
            .or_else(|| int("ai.usage.inputTokenDetails.cacheReadTokens"));
        let cache_write = int("ai.usage.inputTokenDetails.cacheWriteTokens");
        let uncached = int("ai.usage.inputTokenDetails.noCacheTokens")
            .or_else(|| input.map(|i| i - cached.unwrap_or(0) - cache_write.unwrap_or(0)));
        row.input_tokens = uncached.map(|n| n.max(0));
        row.cache_read_tokens = cached;
        row.cache_creation_tokens = cache_write;
        row.output_tokens =
            int("ai.usage.outputTokens").or_else(|| int("gen_ai.usage.output_tokens"));
        row.reasoning_tokens = int("ai.usage.reasoningTokens")
            .or_else(|| int("ai.usage.outputTokenDetails.reasoningTokens"));
        row.ttft_ms = millis(attr("ai.response.msToFirstChunk"));
        row.request_id = text("ai.response.id");
        if let Some(p) = text("ai.model.provider") {
            row.attrs.insert("ai.model.provider".into(), p.into());
        }
        return Some(row);
    }
    row.event_name = "tool_result".into();
    row.tool_name = text("tool.name");
    row.tool_use_id = text("tool.call_id");
    row.success = Some(!failed);
    row.error = error;
    Some(row)
}

/// Sets the computed cost of an `api_request` from its tokens, and makes it
/// the cost the request counts with when the agent sent none.
pub(super) fn price_request(row: &mut EventRow, pricing: &crate::pricing::Pricing) {
    if row.event_name != "api_request" {
        return;
    }
    let Some(model) = row.model.as_deref() else {
        return;
    };
    let tokens = crate::pricing::Tokens {
        input: row.input_tokens.unwrap_or(0),
        cache_read: row.cache_read_tokens.unwrap_or(0),
        cache_write: row.cache_creation_tokens.unwrap_or(0),
        output: row.output_tokens.unwrap_or(0),
        reasoning: row.reasoning_tokens.unwrap_or(0),
    };
    row.computed_cost_usd = pricing.cost(model, tokens);
    (row.cost_usd, row.cost_computed) =
        crate::pricing::counted_cost(row.cost_usd, row.computed_cost_usd);
}

/// The first file a Codex `apply_patch` names (`*** Add File: x`,
/// `*** Update File: x`, `*** Delete File: x`): the path is metadata even
/// though the patch around it is content.
pub(super) fn patch_path(arguments: &str) -> Option<String> {
    arguments.lines().find_map(|line| {
        let line = line.trim();
        ["*** Add File: ", "*** Update File: ", "*** Delete File: "]
            .iter()
            .find_map(|p| line.strip_prefix(p))
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::{normalise_decision, patch_path};

    #[test]
    fn decisions_read_as_accept_or_reject() {
        for (raw, want) in [
            ("approved", "accept"),
            ("approved_for_session", "accept"),
            ("denied", "reject"),
            ("abort", "reject"),
            ("accept", "accept"),
            ("auto_accept", "accept"),
            ("modify", "accept"),
            ("reject", "reject"),
            ("cancel", "reject"),
            ("later", "later"),
        ] {
            assert_eq!(normalise_decision(raw), want, "{raw}");
        }
    }

    #[test]
    fn patches_name_their_file() {
        let patch = "*** Begin Patch\n*** Add File: hello.txt\n+line one\n*** End Patch";
        assert_eq!(patch_path(patch).as_deref(), Some("hello.txt"));
        assert_eq!(
            patch_path("*** Begin Patch\n*** Update File: src/a.rs\n@@\n-x\n+y").as_deref(),
            Some("src/a.rs")
        );
        assert_eq!(patch_path("{\"cmd\": \"ls\"}"), None);
    }
}

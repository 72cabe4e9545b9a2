//! What counts as content: the one definition behind every place that must
//! tell user content from metadata.
//!
//! * ingest drops content unless capture is on (`otlp::convert::redact`);
//! * the read tools withhold it from tokens without `read:content` and hand
//!   it to those with it only under `untrusted_content`
//!   (`query::events::split_attrs`);
//! * the audit log never stores argument values under content keys
//!   (`audit::redact_arguments`).
//!
//! Content is what a person or a model wrote: prompts, responses, system
//! prompts, raw API bodies, the contents inside `tool_input` /
//! `tool_parameters` (file contents, edits, text to write), hook
//! definitions, and span context. Metadata is where and how: paths,
//! commands, tool and server names, sizes, lengths, hashes, ids.

/// Attribute keys that are content on any record.
const CONTENT_KEYS: &[&str] = &[
    "prompt",
    "prompt_text",
    "user_prompt",
    "response",
    "content",
    "system_prompt",
    "llm_request.context",
    "hook_definitions",
    // Gemini CLI puts the command line (the prompt included) on its resource.
    "process.command_args",
    // Codex `codex.tool_result`: the call's arguments (patches, commands'
    // input) and its output.
    "arguments",
    "output",
    // Gemini CLI: tool arguments, model text, the router's explanation, and
    // the GenAI semantic-convention message bodies.
    "function_args",
    "response_text",
    "request_text",
    "reasoning",
    "gen_ai.system_instructions",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    // OpenCode's AI SDK spans: prompts, responses, tool calls and results.
    "ai.prompt",
    "ai.prompt.messages",
    "ai.response.text",
    "ai.response.reasoning",
    "ai.response.toolCalls",
    "ai.response.object",
    "ai.toolCall.args",
    "ai.toolCall.result",
];

/// Attributes holding a JSON object whose members are content except the
/// metadata members ([`is_tool_input_metadata`]).
pub const TOOL_INPUT_KEYS: &[&str] = &["tool_input", "tool_parameters"];

/// Whether attribute `key` of a record named `event_name` is content.
pub fn is_content(event_name: &str, key: &str) -> bool {
    CONTENT_KEYS.contains(&key)
        || match key {
            "body" => matches!(event_name, "api_request_body" | "api_response_body"),
            "tool" => matches!(event_name, "tool" | "tool_decision" | "tool_result"),
            _ => false,
        }
}

/// Whether `key` is content on some record (for values whose record is not
/// known, such as tool arguments in the audit log).
pub fn is_content_key(key: &str) -> bool {
    CONTENT_KEYS.contains(&key) || matches!(key, "body" | "tool") || TOOL_INPUT_KEYS.contains(&key)
}

/// `tool_input` / `tool_parameters` members that are metadata: where a tool
/// acted and how, never what it wrote.
pub fn is_tool_input_metadata(key: &str) -> bool {
    matches!(
        key,
        "file_path"
            | "notebook_path"
            | "path"
            | "pattern"
            | "glob"
            | "url"
            | "command"
            | "description"
            | "subagent_type"
            | "skill"
            | "offset"
            | "limit"
            | "mcp_server_name"
            | "mcp_tool_name"
            | "git_branch"
            | "git_commit_id"
            | "bash_command"
            | "full_command"
            | "skill_name"
    )
}

/// Claude Code's own placeholder when it was told not to log prompts: not
/// content, and worth keeping as a sign that the sender redacted.
pub fn is_sender_placeholder(value: Option<&str>) -> bool {
    value == Some("<REDACTED>")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every content-bearing attribute of the captures and of Claude Code's
    /// documented events is content; their metadata is not.
    #[test]
    fn the_documented_content_attributes_are_content() {
        for (event, key) in [
            ("user_prompt", "prompt"),
            ("user_prompt", "prompt_text"),
            ("assistant_response", "response"),
            ("assistant_response", "content"),
            ("system_prompt", "system_prompt"),
            ("api_request_body", "body"),
            ("api_response_body", "body"),
            ("tool_result", "tool"),
            ("tool_decision", "tool"),
            ("hook_execution_start", "hook_definitions"),
            ("", "llm_request.context"),
        ] {
            assert!(is_content(event, key), "{event}.{key}");
            assert!(is_content_key(key), "{key}");
        }
        for (event, key) in [
            ("user_prompt", "prompt_length"),
            ("system_prompt", "system_prompt_hash"),
            ("system_prompt", "system_prompt_length"),
            ("assistant_response", "response_length"),
            ("api_request", "body_size"),
            ("tool_result", "tool_name"),
            ("api_request", "body"),
        ] {
            assert!(!is_content(event, key), "{event}.{key}");
        }
        assert!(is_tool_input_metadata("file_path"));
        assert!(!is_tool_input_metadata("new_string"));
        assert!(!is_tool_input_metadata("content"));
    }
}

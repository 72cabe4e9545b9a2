//! The coding agents tokentally understands, and the marks each is known by.
//!
//! A record belongs to an agent when its instrumentation scope or its own
//! name (event, metric or span name) carries that agent's mark. The
//! `service.name` resource attribute is not one of the marks: users rename
//! it (`OTEL_SERVICE_NAME`), and a renamed service must not turn an agent's
//! records into anonymous ones or another product's records into an agent's.
//! Records of no known agent are stored and answered generically.

/// One coding agent.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Agent {
    /// Anthropic's Claude Code.
    ClaudeCode,
    /// OpenAI's Codex CLI.
    Codex,
    /// Google's Gemini CLI.
    GeminiCli,
    /// OpenCode.
    Opencode,
}

impl Agent {
    /// Every agent, in the order answers list them.
    pub const ALL: [Agent; 4] = [
        Agent::ClaudeCode,
        Agent::Codex,
        Agent::GeminiCli,
        Agent::Opencode,
    ];

    /// The stable name stored and used in tool arguments and answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Agent::ClaudeCode => "claude_code",
            Agent::Codex => "codex",
            Agent::GeminiCli => "gemini_cli",
            Agent::Opencode => "opencode",
        }
    }

    /// The agent named `name` (as [`Agent::as_str`] spells it).
    pub fn parse(name: &str) -> Option<Agent> {
        Agent::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The agent whose instrumentation scope this is: Claude Code's
    /// `com.anthropic.claude_code[.events|.tracing]`, Codex's `codex`,
    /// `codex_exec`, `codex_otel...`, Gemini CLI's `gemini-cli`, OpenCode's
    /// `opencode`.
    pub fn from_scope(scope: &str) -> Option<Agent> {
        if scope.starts_with("com.anthropic.claude_code") {
            Some(Agent::ClaudeCode)
        } else if scope == "codex"
            || scope.starts_with("codex_")
            || scope.starts_with("codex.")
            || scope.starts_with("codex-")
        {
            Some(Agent::Codex)
        } else if scope == "gemini-cli" || scope.starts_with("gemini-cli.") || scope == "gemini_cli"
        {
            Some(Agent::GeminiCli)
        } else if scope == "opencode" || scope.starts_with("opencode.") {
            Some(Agent::Opencode)
        } else {
            None
        }
    }

    /// The agent whose event or metric name this is, by its prefix
    /// (`claude_code.`, `codex.`, `gemini_cli.`).
    pub fn from_record_name(name: &str) -> Option<Agent> {
        if name.starts_with("claude_code.") {
            Some(Agent::ClaudeCode)
        } else if name.starts_with("codex.") {
            Some(Agent::Codex)
        } else if name.starts_with("gemini_cli.") {
            Some(Agent::GeminiCli)
        } else {
            None
        }
    }

    /// Every agent's name, for messages.
    pub fn names() -> String {
        Agent::ALL.map(Agent::as_str).join(", ")
    }
}

impl std::fmt::Display for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Agent;

    #[test]
    fn scopes_and_names_identify_agents() {
        for (scope, name, want) in [
            (
                "com.anthropic.claude_code.events",
                "",
                Some(Agent::ClaudeCode),
            ),
            ("com.anthropic.claude_code", "x", Some(Agent::ClaudeCode)),
            ("", "claude_code.cost.usage", Some(Agent::ClaudeCode)),
            ("codex_otel.log_only", "", Some(Agent::Codex)),
            ("codex_otel::metrics::client", "", Some(Agent::Codex)),
            ("codex", "codex.turn.token_usage", Some(Agent::Codex)),
            ("codex_exec", "fs.read_file", Some(Agent::Codex)),
            ("my-service", "codex.sse_event", Some(Agent::Codex)),
            ("gemini-cli", "", Some(Agent::GeminiCli)),
            ("", "gemini_cli.api_response", Some(Agent::GeminiCli)),
            ("opencode", "ai.streamText", Some(Agent::Opencode)),
            ("codexterity", "", None),
            ("opencode-clone-lib", "", None),
            ("io.opentelemetry.http", "http.server.duration", None),
        ] {
            let got = Agent::from_scope(scope).or_else(|| Agent::from_record_name(name));
            assert_eq!(got, want, "{scope} {name}");
        }
        for a in Agent::ALL {
            assert_eq!(Agent::parse(a.as_str()), Some(a));
        }
        assert_eq!(Agent::parse("claude-code"), None);
        assert_eq!(Agent::names(), "claude_code, codex, gemini_cli, opencode");
    }
}

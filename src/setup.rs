//! `tokentally setup <agent>`: the exact configuration that makes each
//! coding agent send its telemetry here, for the addresses this server is
//! configured with.

use std::net::SocketAddr;

use crate::agent::Agent;
use crate::config::Config;

/// Where an agent should send, as a URL base (`http://host:port`). An
/// unspecified bind address (`0.0.0.0`) is shown as loopback: agents on
/// other machines use this server's name instead.
fn base(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    format!("http://{ip}:{}", addr.port())
}

/// The configuration text for `agent`.
pub fn instructions(agent: Agent, config: &Config) -> String {
    let otlp = base(config.otlp_http_addr);
    let mcp = format!("{}/mcp", base(config.mcp_addr));
    let token = config.ingest_requires_token();
    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str(s);
        out.push('\n');
    };
    match agent {
        Agent::ClaudeCode => {
            line("# Claude Code: set these in the shell that starts `claude`, or under \"env\" in");
            line("# ~/.claude/settings.json (managed settings for a whole team).");
            line("export CLAUDE_CODE_ENABLE_TELEMETRY=1");
            line("export OTEL_METRICS_EXPORTER=otlp");
            line("export OTEL_LOGS_EXPORTER=otlp");
            line("export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf");
            line(&format!("export OTEL_EXPORTER_OTLP_ENDPOINT={otlp}"));
            line("# File paths for top_edited_files (paths only, never file contents):");
            line("export OTEL_LOG_TOOL_DETAILS=1");
            line("# Optional: team and other dimensions on every record:");
            line("# export OTEL_RESOURCE_ATTRIBUTES=\"team=platform,department=eng\"");
            if token {
                line("export OTEL_EXPORTER_OTLP_HEADERS=\"Authorization=Bearer <ingest token>\"");
            }
            line("");
            line("# Ask tokentally from Claude Code:");
            line(&format!(
                "claude mcp add --transport http tokentally {mcp} --header \"Authorization: Bearer <read token>\""
            ));
        }
        Agent::Codex => {
            line("# Codex CLI: add to ~/.codex/config.toml (Codex reads [otel] at start).");
            line("[otel]");
            line("environment = \"dev\"");
            line("# Prompt text stays out unless you want it (and serve --capture-content).");
            line("log_user_prompt = false");
            let headers = if token {
                ", headers = { \"Authorization\" = \"Bearer <ingest token>\" }"
            } else {
                ""
            };
            for (key, signal) in [
                ("exporter", "logs"),
                ("trace_exporter", "traces"),
                ("metrics_exporter", "metrics"),
            ] {
                line(&format!(
                    "{key} = {{ otlp-http = {{ endpoint = \"{otlp}/v1/{signal}\", protocol = \"binary\"{headers} }} }}"
                ));
            }
            line("");
            line("# Codex sends no user with an API key: name yourself on every record with");
            line("#   export OTEL_RESOURCE_ATTRIBUTES=\"user.email=you@example.com\"");
            line("# or map host.name in tokentally's [identity] config.");
        }
        Agent::GeminiCli => {
            line(
                "# Gemini CLI: merge into ~/.gemini/settings.json (or .gemini/settings.json in a project).",
            );
            let settings = serde_json::json!({
                "telemetry": {
                    "enabled": true,
                    "target": "local",
                    "otlpEndpoint": otlp,
                    "otlpProtocol": "http",
                    "logPrompts": false
                }
            });
            line(&serde_json::to_string_pretty(&settings).unwrap_or_default());
            if token {
                line("# and in its environment:");
                line("export OTEL_EXPORTER_OTLP_HEADERS=\"Authorization=Bearer <ingest token>\"");
            }
            line("");
            line(
                "# Without a Google login Gemini CLI sends no user (its installation.id names you):",
            );
            line("#   export OTEL_RESOURCE_ATTRIBUTES=\"user.email=you@example.com\"");
        }
        Agent::Opencode => {
            line("# OpenCode: turn on its AI SDK telemetry (tokens are only on those spans) in");
            line("# opencode.json (project) or ~/.config/opencode/opencode.json:");
            line("#   \"experimental\": { \"openTelemetry\": true }");
            line("# and export before starting opencode:");
            line(&format!("export OTEL_EXPORTER_OTLP_ENDPOINT={otlp}"));
            line("export OTEL_EXPORTER_OTLP_PROTOCOL=http/json");
            if token {
                line("export OTEL_EXPORTER_OTLP_HEADERS=\"Authorization=Bearer <ingest token>\"");
            }
            line("# OpenCode sends no user: name yourself (or your team) on every record:");
            line("export OTEL_RESOURCE_ATTRIBUTES=\"user.email=you@example.com\"");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            otlp_http_addr: "127.0.0.1:14318".parse().unwrap(),
            mcp_addr: "0.0.0.0:14319".parse().unwrap(),
            ..Config::default()
        }
    }

    #[test]
    fn codex_gets_a_toml_otel_block_for_each_signal() {
        let text = instructions(Agent::Codex, &config());
        let v: toml::Value = toml::from_str(&text).unwrap();
        for (key, signal) in [
            ("exporter", "logs"),
            ("trace_exporter", "traces"),
            ("metrics_exporter", "metrics"),
        ] {
            let e = &v["otel"][key]["otlp-http"];
            assert_eq!(
                e["endpoint"].as_str(),
                Some(format!("http://127.0.0.1:14318/v1/{signal}").as_str())
            );
            assert_eq!(e["protocol"].as_str(), Some("binary"));
        }
        assert_eq!(v["otel"]["log_user_prompt"].as_bool(), Some(false));
    }

    #[test]
    fn gemini_gets_a_telemetry_settings_block() {
        let text = instructions(Agent::GeminiCli, &config());
        let start = text.find('{').unwrap();
        let end = text.rfind('}').unwrap();
        let v: serde_json::Value = serde_json::from_str(&text[start..=end]).unwrap();
        assert_eq!(v["telemetry"]["otlpEndpoint"], "http://127.0.0.1:14318");
        assert_eq!(v["telemetry"]["otlpProtocol"], "http");
        assert_eq!(v["telemetry"]["enabled"], true);
    }

    #[test]
    fn claude_code_and_opencode_get_their_environment() {
        let cc = instructions(Agent::ClaudeCode, &config());
        assert!(cc.contains("export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14318\n"));
        assert!(cc.contains("CLAUDE_CODE_ENABLE_TELEMETRY=1"));
        // An unspecified bind is shown as loopback.
        assert!(cc.contains("http://127.0.0.1:14319/mcp"));
        assert!(!cc.contains("ingest token"));
        let oc = instructions(Agent::Opencode, &config());
        assert!(oc.contains("\"openTelemetry\": true"));
        assert!(oc.contains("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14318\n"));
    }

    #[test]
    fn a_required_ingest_token_is_part_of_every_setup() {
        let c = Config {
            ingest_auth: crate::config::IngestAuth::Required,
            ..config()
        };
        for a in Agent::ALL {
            assert!(instructions(a, &c).contains("<ingest token>"), "{a}");
        }
        let codex: toml::Value = toml::from_str(&instructions(Agent::Codex, &c)).unwrap();
        assert_eq!(
            codex["otel"]["exporter"]["otlp-http"]["headers"]["Authorization"].as_str(),
            Some("Bearer <ingest token>")
        );
    }
}

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

/// Real secrets to put in the instructions instead of placeholders, and
/// the `claude mcp add` scope.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// A read token for the MCP client.
    pub read: Option<String>,
    /// An ingest token, where ingest needs one.
    pub ingest: Option<String>,
    /// `claude mcp add --scope`: user, project or local.
    pub mcp_scope: Option<String>,
}

/// Where Claude Code reads managed settings, per operating system.
pub const MANAGED_SETTINGS: &[(&str, &str)] = &[
    (
        "macOS",
        "/Library/Application Support/ClaudeCode/managed-settings.json",
    ),
    ("Linux and WSL", "/etc/claude-code/managed-settings.json"),
    (
        "Windows",
        "C:\\ProgramData\\ClaudeCode\\managed-settings.json",
    ),
];

/// The environment Claude Code needs to send here, as the `env` object of
/// its settings (and, one by one, `export` lines).
pub fn claude_code_env(
    config: &Config,
    secrets: &Secrets,
) -> serde_json::Map<String, serde_json::Value> {
    let mut env = serde_json::Map::new();
    let mut set = |k: &str, v: String| {
        env.insert(k.to_string(), serde_json::Value::String(v));
    };
    set("CLAUDE_CODE_ENABLE_TELEMETRY", "1".into());
    set("OTEL_METRICS_EXPORTER", "otlp".into());
    set("OTEL_LOGS_EXPORTER", "otlp".into());
    set("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into());
    set("OTEL_EXPORTER_OTLP_ENDPOINT", base(config.otlp_http_addr));
    set("OTEL_LOG_TOOL_DETAILS", "1".into());
    if config.ingest_requires_token() {
        let t = secrets.ingest.as_deref().unwrap_or("<ingest token>");
        set(
            "OTEL_EXPORTER_OTLP_HEADERS",
            format!("Authorization=Bearer {t}"),
        );
    }
    env
}

/// Merges `env` into the Claude Code settings file at `path` (created if
/// missing; its other settings and env entries are kept).
pub fn write_claude_settings(
    path: &std::path::Path,
    env: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    let mut settings = match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(o)) => o,
            _ => {
                return Err(format!(
                    "{} is not a JSON object; fix or move it first",
                    path.display()
                ));
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::Map::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let entry = settings
        .entry("env")
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    let Some(existing) = entry.as_object_mut() else {
        return Err(format!("\"env\" in {} is not an object", path.display()));
    };
    for (k, v) in env {
        existing.insert(k.clone(), v.clone());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(settings))
        .map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The configuration text for `agent`, with placeholders for secrets.
pub fn instructions(agent: Agent, config: &Config) -> String {
    instructions_with(agent, config, &Secrets::default())
}

/// The configuration text for `agent`, with `secrets` where given.
pub fn instructions_with(agent: Agent, config: &Config, secrets: &Secrets) -> String {
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
            let env = claude_code_env(config, secrets);
            line("# Claude Code: export these in the shell that starts `claude`");
            line(
                "# (OTEL_LOG_TOOL_DETAILS=1 gives top_edited_files its file paths, never contents;",
            );
            line(
                "# prompt text stays out unless OTEL_LOG_USER_PROMPTS=1 and serve --capture-content):",
            );
            for (k, v) in &env {
                let v = v.as_str().unwrap_or_default();
                if v.contains([' ', '=']) {
                    line(&format!("export {k}=\"{v}\""));
                } else {
                    line(&format!("export {k}={v}"));
                }
            }
            line("# Optional: team, cost centre and other dimensions on every record:");
            line("# export OTEL_RESOURCE_ATTRIBUTES=\"team.id=platform,cost_center=eng-42\"");
            line("");
            line("# Or once for every user of a machine, in Claude Code's managed settings");
            for (os, path) in MANAGED_SETTINGS {
                line(&format!("#   {os}: {path}"));
            }
            line(
                "# (or ~/.claude/settings.json for yourself; `tokentally setup claude-code --write PATH` merges it in):",
            );
            let block = serde_json::json!({ "env": env });
            line(&serde_json::to_string_pretty(&block).unwrap_or_default());
            line("");
            line("# Ask tokentally from Claude Code:");
            let read = secrets.read.as_deref().unwrap_or("<read token>");
            let scope = secrets
                .mcp_scope
                .as_deref()
                .map(|s| format!(" --scope {s}"))
                .unwrap_or_default();
            line(&format!(
                "claude mcp add --transport http{scope} tokentally {mcp} --header \"Authorization: Bearer {read}\""
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
        // The managed-settings block is valid JSON with the same values.
        let start = cc.find("{\n").unwrap();
        let end = cc.find("\n}\n").unwrap();
        let v: serde_json::Value = serde_json::from_str(&cc[start..end + 2]).unwrap();
        assert_eq!(
            v["env"]["OTEL_EXPORTER_OTLP_ENDPOINT"],
            "http://127.0.0.1:14318"
        );
        assert_eq!(v["env"]["OTEL_LOG_TOOL_DETAILS"], "1");
        assert!(cc.contains("/etc/claude-code/managed-settings.json"));
        assert!(cc.contains("CLAUDE_CODE_ENABLE_TELEMETRY=1"));
        // An unspecified bind is shown as loopback.
        assert!(cc.contains("http://127.0.0.1:14319/mcp"));
        assert!(!cc.contains("ingest token"));
        let oc = instructions(Agent::Opencode, &config());
        assert!(oc.contains("\"openTelemetry\": true"));
        assert!(oc.contains("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14318\n"));
    }

    #[test]
    fn given_secrets_replace_the_placeholders() {
        let c = Config {
            ingest_auth: crate::config::IngestAuth::Required,
            ..config()
        };
        let secrets = Secrets {
            read: Some("tt_read".into()),
            ingest: Some("tt_ingest".into()),
            mcp_scope: Some("user".into()),
        };
        let cc = instructions_with(Agent::ClaudeCode, &c, &secrets);
        assert!(cc.contains("claude mcp add --transport http --scope user tokentally http://127.0.0.1:14319/mcp --header \"Authorization: Bearer tt_read\""));
        assert!(
            cc.contains("export OTEL_EXPORTER_OTLP_HEADERS=\"Authorization=Bearer tt_ingest\"")
        );
        assert!(!cc.contains("<read token>") && !cc.contains("<ingest token>"));
    }

    #[test]
    fn writing_settings_keeps_what_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claude/settings.json");
        let env = claude_code_env(&config(), &Secrets::default());
        write_claude_settings(&path, &env).unwrap();
        std::fs::write(
            &path,
            r#"{"model": "opus", "env": {"FOO": "1", "OTEL_LOGS_EXPORTER": "console"}}"#,
        )
        .unwrap();
        write_claude_settings(&path, &env).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["model"], "opus");
        assert_eq!(v["env"]["FOO"], "1");
        assert_eq!(v["env"]["OTEL_LOGS_EXPORTER"], "otlp");
        std::fs::write(&path, "[1]").unwrap();
        assert!(write_claude_settings(&path, &env).is_err());
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

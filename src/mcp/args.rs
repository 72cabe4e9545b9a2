//! Tool arguments as the model sees them (JSON Schema from these types; the
//! `///` text on each field is the description the model reads), and their
//! translation into query filters and time ranges.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::auth::Principal;
use crate::query::attribution;
use crate::query::filter::{Filter, parse_attribute};
use crate::query::time::{self, TimeRange};
use crate::query::visible::Visible;
use crate::query::{QueryError, ToolContext};

/// Longest accepted string argument.
pub const MAX_STRING_BYTES: usize = 1024;

/// Time range arguments shared by the tools.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct RangeArgs {
    /// Start of the range (inclusive): RFC 3339 (`2026-11-20T09:00:00Z`), a date
    /// (`2026-11-20`: from that day on), a length of time before now (`30m`, `24h`,
    /// `7d`, `2w`, `1 week`, `P7D`) or `today`, `yesterday`, `this_week`, `last_week`,
    /// `this_month`, `last_month` (calendar periods in `timezone`; alone they also set
    /// the end). Default: 7 days ago.
    pub since: Option<String>,
    /// End of the range (exclusive), same forms as `since` (`now` = now). Default: now.
    pub until: Option<String>,
    /// IANA time zone used for calendar words, day/week buckets and the times
    /// shown in the answer, e.g. `Europe/Berlin`. Default: UTC.
    pub timezone: Option<String>,
}

/// Who/what filters shared by the tools.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct WhoArgs {
    /// Only this developer: `user.email`, else `user.account_uuid`, else the anonymous `user.id`.
    pub developer: Option<String>,
    /// Only this team: matches the resource attribute `team.id` or `team` (from `OTEL_RESOURCE_ATTRIBUTES`).
    pub team: Option<String>,
    /// Only records whose resource carries this attribute, as `key=value` (e.g. `department=eng`).
    pub attribute: Option<String>,
    /// Only this model id (e.g. `claude-sonnet-4-5`).
    pub model: Option<String>,
    /// Only this Claude Code `session.id`.
    pub session_id: Option<String>,
    /// Only this repository (`vcs.repository.name` / `repo.name` attribute).
    pub repository: Option<String>,
    /// Only this git branch (`vcs.ref.head.name` / `git_branch`).
    pub branch: Option<String>,
    /// Only this MCP server (`mcp_server.name`).
    pub mcp_server: Option<String>,
    /// Only this MCP tool (`mcp_tool.name`).
    pub mcp_tool: Option<String>,
    /// Only this Claude Code `query_source` (e.g. `repl_main_thread`, `sdk`).
    pub query_source: Option<String>,
    /// Only this coding agent: `claude_code`, `codex` (Codex CLI), `gemini_cli` (Gemini CLI) or `opencode`.
    #[schemars(extend("enum" = ["claude_code", "codex", "gemini_cli", "opencode"]))]
    pub agent: Option<String>,
    /// Only requests of this Claude Code subagent (`agent.name`, e.g. `general-purpose`).
    pub subagent: Option<String>,
    /// Only requests made for this skill (`skill.name`).
    pub skill: Option<String>,
    /// Only requests made for this plugin (`plugin.name`).
    pub plugin: Option<String>,
    /// Only requests at this reasoning effort (`effort`, e.g. `high`).
    pub effort: Option<String>,
}

/// Paging arguments shared by the tools.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct PageArgs {
    /// Most rows to return (default and ceiling set by the operator; larger values are lowered, with a note).
    pub limit: Option<i64>,
    /// `next_cursor` from the previous answer, to get the next page (keep the other arguments the same).
    pub cursor: Option<String>,
}

/// Arguments of the spend tools (`cost_by_developer`, `model_breakdown`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct SpendArgs {
    /// Time range (`since`, `until`, `timezone`).
    #[serde(flatten)]
    pub range: RangeArgs,
    /// Who/what filters (developer, team, attribute, model, session...).
    #[serde(flatten)]
    pub who: WhoArgs,
    /// Paging (`limit`, `cursor`).
    #[serde(flatten)]
    pub page: PageArgs,
}

/// Arguments of the tool-use tools (`tool_latency`, `top_edited_files`):
/// those of the spend tools and a tool name.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct AggregateArgs {
    /// Range, filters and paging, as for the spend tools.
    #[serde(flatten)]
    pub common: SpendArgs,
    /// Only this tool (`tool_latency`, `top_edited_files`), as the agent names it: Claude Code `Edit`, `Bash`, `mcp_tool`...; Codex `apply_patch`, `exec_command`; Gemini CLI `write_file`, `run_shell_command`; OpenCode `write`, `bash`.
    pub tool_name: Option<String>,
}

/// Arguments of `search_events`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct SearchArgs {
    /// Time range (`since`, `until`, `timezone`).
    #[serde(flatten)]
    pub range: RangeArgs,
    /// Who/what filters (developer, team, attribute, model, session...).
    #[serde(flatten)]
    pub who: WhoArgs,
    /// Paging (`limit`, `cursor`).
    #[serde(flatten)]
    pub page: PageArgs,
    /// Only this event name without prefix: `user_prompt`, `api_request`, `api_error`, `tool_decision`, `tool_result`...
    pub event_name: Option<String>,
    /// Only events of this prompt (`prompt.id`).
    pub prompt_id: Option<String>,
    /// Only this tool name (`Edit`, `Bash`, `mcp_tool`...).
    pub tool_name: Option<String>,
    /// Only successful (true) or failed (false) tool results.
    pub success: Option<bool>,
    /// Only API errors with this HTTP status code (e.g. 529).
    pub status_code: Option<i64>,
    /// Only events whose error message contains this text (case-insensitive, literal).
    pub error_contains: Option<String>,
}

/// Arguments of `list_sessions`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct SessionsArgs {
    /// Time range (`since`, `until`, `timezone`).
    #[serde(flatten)]
    pub range: RangeArgs,
    /// Who/what filters (developer, team, attribute, model, session...).
    #[serde(flatten)]
    pub who: WhoArgs,
    /// Paging (`limit`, `cursor`).
    #[serde(flatten)]
    pub page: PageArgs,
    /// Sort key, largest/newest first: `start` (default), `cost`, `duration`, `prompts`, `tokens`, `errors`, `tool_calls`.
    #[schemars(extend("enum" = ["start", "cost", "duration", "prompts", "tokens", "errors", "tool_calls"]))]
    pub sort_by: Option<String>,
}

/// Arguments of `session_timeline`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct TimelineArgs {
    /// The Claude Code `session.id` to walk through (from `list_sessions` or `search_events`).
    pub session_id: String,
    /// IANA time zone for the times shown. Default: UTC.
    pub timezone: Option<String>,
    /// Paging (`limit`, `cursor`).
    #[serde(flatten)]
    pub page: PageArgs,
}

/// Arguments of `usage_over_time`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct SeriesArgs {
    /// Time range (`since`, `until`, `timezone`).
    #[serde(flatten)]
    pub range: RangeArgs,
    /// Who/what filters (developer, team, attribute, model, session...).
    #[serde(flatten)]
    pub who: WhoArgs,
    /// Paging (`limit`, `cursor`).
    #[serde(flatten)]
    pub page: PageArgs,
    /// Bucket size: `hour`, `day` (default), `week` (weeks start Monday, in `timezone`) or `total` (one bucket for the whole range).
    #[schemars(extend("enum" = ["hour", "day", "week", "total"]))]
    pub bucket: Option<String>,
    /// Split each bucket by `model`, `developer`, `team`, `agent` (coding agent), `repository`, `branch`,
    /// `mcp_server`, `mcp_tool`, or an attribution: `subagent`, `skill`, `plugin`, `marketplace`, `effort`, `plan`,
    /// `identity_source`, `user_groups`, `repository_owner`, `repository_url` (default: no split).
    /// Use bucket=total with a split for e.g. cost per repository or which subagent costs the most.
    #[schemars(extend("enum" = [
        "none", "model", "developer", "team", "repository", "branch", "mcp_server", "mcp_tool",
        "agent", "subagent", "skill", "plugin", "marketplace", "effort", "plan", "identity_source",
        "user_groups", "repository_owner", "repository_url"
    ]))]
    pub split_by: Option<String>,
}

/// Arguments of `describe_data`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct DescribeArgs {
    /// Time range for the counts (`since`, `until`, `timezone`); default: the last 30 days.
    /// The overall first and last record times are always for all data.
    #[serde(flatten)]
    pub range: RangeArgs,
}

fn check_len(name: &str, v: &Option<String>) -> Result<(), QueryError> {
    match v {
        Some(s) if s.len() > MAX_STRING_BYTES => Err(QueryError::Invalid(format!(
            "argument {name} is {} bytes long; the limit is {MAX_STRING_BYTES}",
            s.len()
        ))),
        _ => Ok(()),
    }
}

fn nonempty(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

impl RangeArgs {
    /// Resolves the range (default: the last `default_days` days; `None` = all data).
    pub fn resolve(
        &self,
        now: jiff::Timestamp,
        default_days: Option<i64>,
    ) -> Result<TimeRange, QueryError> {
        check_len("since", &self.since)?;
        check_len("until", &self.until)?;
        check_len("timezone", &self.timezone)?;
        time::resolve(
            nonempty(&self.since).as_deref(),
            nonempty(&self.until).as_deref(),
            self.timezone.as_deref(),
            now,
            default_days.map(|d| d * 86_400_000_000_000),
        )
    }
}

impl RangeArgs {
    /// [`RangeArgs::resolve`], then a range longer than
    /// [`time::FIT_TO_DATA_AFTER_DAYS`] narrowed to the data `principal`
    /// may see (and the answer's `range` says so).
    pub async fn resolve_for(
        &self,
        ctx: &ToolContext,
        principal: &Principal,
        default_days: Option<i64>,
    ) -> Result<TimeRange, QueryError> {
        let mut range = self.resolve(ctx.now(), default_days)?;
        if range.days() > time::FIT_TO_DATA_AFTER_DAYS
            && let Some((first, last)) = ctx.questions.data_extent(Visible::of(principal)).await?
        {
            range.narrow_to(first, last);
        }
        Ok(range)
    }
}

impl WhoArgs {
    /// The query filter, limited to what the caller may see.
    pub fn filter(&self, principal: &Principal) -> Result<Filter, QueryError> {
        for (name, v) in [
            ("developer", &self.developer),
            ("team", &self.team),
            ("attribute", &self.attribute),
            ("model", &self.model),
            ("session_id", &self.session_id),
            ("repository", &self.repository),
            ("branch", &self.branch),
            ("mcp_server", &self.mcp_server),
            ("mcp_tool", &self.mcp_tool),
            ("query_source", &self.query_source),
            ("agent", &self.agent),
            ("subagent", &self.subagent),
            ("skill", &self.skill),
            ("plugin", &self.plugin),
            ("effort", &self.effort),
        ] {
            check_len(name, v)?;
        }
        let agent = nonempty(&self.agent)
            .map(|a| {
                crate::agent::Agent::parse(&a).ok_or_else(|| {
                    QueryError::Invalid(format!(
                        "agent {a:?} is not one of {}",
                        crate::agent::Agent::names()
                    ))
                })
            })
            .transpose()?;
        let attribution = [
            ("subagent", &self.subagent),
            ("skill", &self.skill),
            ("plugin", &self.plugin),
            ("effort", &self.effort),
        ]
        .into_iter()
        .filter_map(|(name, v)| Some((attribution::find(name)?, nonempty(v)?)))
        .collect();
        Ok(Filter {
            visible: Visible::of(principal),
            agent,
            developer: nonempty(&self.developer),
            team: nonempty(&self.team),
            attribute: nonempty(&self.attribute)
                .map(|a| parse_attribute(&a))
                .transpose()?,
            session_id: nonempty(&self.session_id),
            model: nonempty(&self.model),
            repository: nonempty(&self.repository),
            branch: nonempty(&self.branch),
            mcp_server: nonempty(&self.mcp_server),
            mcp_tool: nonempty(&self.mcp_tool),
            query_source: nonempty(&self.query_source),
            attribution,
        })
    }
}

/// Checks every string argument's length (for the tool-specific ones).
pub fn check_strings(pairs: &[(&str, &Option<String>)]) -> Result<(), QueryError> {
    for (n, v) in pairs {
        check_len(n, v)?;
    }
    Ok(())
}

/// Trimmed non-empty value.
pub fn clean(v: &Option<String>) -> Option<String> {
    nonempty(v)
}

#[cfg(test)]
mod tests {
    use crate::query::timeseries::Split;

    /// The `split_by` enum clients see is exactly what the series accepts:
    /// every listed value parses, and every attribution is listed.
    #[test]
    fn split_by_enum_matches_what_the_series_accepts() {
        let schema = serde_json::to_value(schemars::schema_for!(super::SeriesArgs)).unwrap();
        let listed: Vec<String> = schema["properties"]["split_by"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        for v in &listed {
            assert!(Split::parse(Some(v)).is_ok(), "{v} is listed but refused");
        }
        for a in crate::query::attribution::ATTRIBUTIONS {
            assert!(
                listed.iter().any(|v| v == a.name),
                "{} is not listed",
                a.name
            );
        }
        assert!(Split::parse(Some("nope")).is_err());
    }

    /// The `agent` enum clients see is every agent tokentally knows.
    #[test]
    fn agent_enum_lists_every_agent() {
        let schema = serde_json::to_value(schemars::schema_for!(super::WhoArgs)).unwrap();
        let listed = &schema["properties"]["agent"]["enum"];
        let all: Vec<&str> = crate::agent::Agent::ALL
            .map(crate::agent::Agent::as_str)
            .to_vec();
        assert_eq!(listed, &serde_json::json!(all));
    }
}

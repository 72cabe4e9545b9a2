//! Common filters as SQL fragments with bound parameters.
//!
//! Every filter starts from the caller's [`Visible`] ([`Filter::new`] is its
//! only constructor). Context-level filters (visibility, agent, developer,
//! team, resource attribute, session) apply to `contexts` rows (alias `c`) and so
//! work on the hourly rollups; event-level filters (repository, branch, MCP
//! server and tool, query source) need raw rows (alias `e` for events).

use super::QueryError;
use super::attribution::Attribution;
pub use super::sql::{Sql, int, text};
use super::visible::Visible;

/// A context's team: `team.id`, else `team`, from the resource attributes
/// (`OTEL_RESOURCE_ATTRIBUTES`) or, when only there, from the record
/// attributes shared by the context. The `team` filter and grouping by team
/// both use it, so a context that passes `team = x` is grouped under `x`.
pub(crate) const TEAM_EXPR: &str = "COALESCE(\
    CAST(json_extract(c.resource_attrs, '$.\"team.id\"') AS TEXT), \
    CAST(json_extract(c.resource_attrs, '$.team') AS TEXT), \
    CAST(json_extract(c.shared_attrs, '$.\"team.id\"') AS TEXT), \
    CAST(json_extract(c.shared_attrs, '$.team') AS TEXT))";

/// Filters shared by the tools. Every string is bound as a parameter.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Whose records the caller may see (from its token).
    pub visible: Visible,
    /// One coding agent.
    pub agent: Option<crate::agent::Agent>,
    /// One developer (email, account uuid or user id).
    pub developer: Option<String>,
    /// Team: matches resource attribute `team.id` or `team`.
    pub team: Option<String>,
    /// Any resource attribute `key=value`.
    pub attribute: Option<(String, String)>,
    /// One session id.
    pub session_id: Option<String>,
    /// One model.
    pub model: Option<String>,
    /// Repository (`vcs.repository.name` on records or `repo.name` on the resource).
    pub repository: Option<String>,
    /// Branch (`vcs.ref.head.name`, `git_branch`).
    pub branch: Option<String>,
    /// MCP server name.
    pub mcp_server: Option<String>,
    /// MCP tool name.
    pub mcp_tool: Option<String>,
    /// Claude Code `query_source` (e.g. `sdk`, `repl_main_thread`).
    pub query_source: Option<String>,
    /// Attribution dimensions (subagent, skill, plugin, effort...) and the
    /// value each must have.
    pub attribution: Vec<(&'static Attribution, String)>,
}

/// Accepts only plain attribute keys (letters, digits, `.`, `_`, `-`) so the
/// JSON path built from them has no quoting to get wrong.
pub fn attribute_key_ok(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && key
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'))
}

/// Parses `key=value` for the `attribute` argument.
pub fn parse_attribute(arg: &str) -> Result<(String, String), QueryError> {
    let Some((k, v)) = arg.split_once('=') else {
        return Err(QueryError::Invalid(format!(
            "attribute {arg:?} must be key=value, e.g. department=eng"
        )));
    };
    let k = k.trim();
    if !attribute_key_ok(k) {
        return Err(QueryError::Invalid(format!(
            "attribute key {k:?} may only contain letters, digits, '.', '_' and '-'"
        )));
    }
    Ok((k.to_string(), v.trim().to_string()))
}

/// The JSON path for a plain attribute key (validated by `attribute_key_ok`).
fn json_path(key: &str) -> String {
    format!("$.\"{key}\"")
}

impl Filter {
    /// Everything `visible` may see, with no other filter.
    pub fn new(visible: Visible) -> Filter {
        Filter {
            visible,
            agent: None,
            developer: None,
            team: None,
            attribute: None,
            session_id: None,
            model: None,
            repository: None,
            branch: None,
            mcp_server: None,
            mcp_tool: None,
            query_source: None,
            attribution: Vec::new(),
        }
    }

    /// ` AND ...` on the attribution filters, for rows whose own attributes
    /// are the JSON column `attrs` (with their context as alias `c`).
    pub fn attribution_conditions(&self, sql: &mut Sql, attrs: &str) {
        for (a, v) in &self.attribution {
            sql.bind(&format!(" AND {} = ?", a.expr(attrs)), [text(v)]);
        }
    }

    /// Visibility and the developer filter on a developer column of another
    /// table (`s.developer` for sessions, `developer` for the histograms).
    pub fn developer_conditions(&self, sql: &mut Sql, column: &str) {
        self.visible.condition(sql, column);
        if let Some(d) = &self.developer {
            sql.bind(&format!(" AND {column} = ?"), [text(d)]);
        }
    }

    /// True when an event-level filter is set (rollups cannot answer).
    pub fn needs_raw(&self) -> bool {
        self.repository.is_some()
            || self.branch.is_some()
            || self.mcp_server.is_some()
            || self.mcp_tool.is_some()
            || self.query_source.is_some()
            || !self.attribution.is_empty()
    }

    /// True when only the developer, agent and model narrow the rows (and
    /// no event-level filter is set): usage over whole hours is then
    /// answered from the per-developer rollup.
    pub fn by_developer_only(&self) -> bool {
        self.team.is_none()
            && self.attribute.is_none()
            && self.session_id.is_none()
            && !self.needs_raw()
    }

    /// Appends ` AND ...` conditions on contexts alias `c`.
    pub fn context_conditions(&self, sql: &mut Sql) {
        self.developer_conditions(sql, "c.developer");
        if let Some(a) = self.agent {
            sql.bind(" AND c.agent = ?", [text(a.as_str())]);
        }
        if let Some(t) = &self.team {
            sql.bind(&format!(" AND {TEAM_EXPR} = ?"), [text(t)]);
        }
        if let Some((k, v)) = &self.attribute {
            let path = json_path(k);
            sql.bind(
                " AND (CAST(json_extract(c.resource_attrs, ?) AS TEXT) = ? \
                 OR CAST(json_extract(c.shared_attrs, ?) AS TEXT) = ?)",
                [text(&path), text(v), text(&path), text(v)],
            );
        }
        if let Some(s) = &self.session_id {
            sql.bind(
                " AND c.session_ref IN (SELECT id FROM sessions WHERE session_id = ?)",
                [text(s)],
            );
        }
    }

    /// Appends ` AND ...` conditions on events alias `e` (and contexts `c`
    /// for the repository resource attribute). Model included.
    pub fn event_conditions(&self, sql: &mut Sql) {
        if let Some(m) = &self.model {
            sql.bind(" AND e.model = ?", [text(m)]);
        }
        self.event_only_conditions(sql);
    }

    /// Event-level conditions other than the model.
    pub fn event_only_conditions(&self, sql: &mut Sql) {
        if let Some(r) = &self.repository {
            sql.bind(
                " AND (e.repository = ? \
                 OR CAST(json_extract(c.resource_attrs, '$.\"repo.name\"') AS TEXT) = ? \
                 OR CAST(json_extract(c.resource_attrs, '$.\"vcs.repository.name\"') AS TEXT) = ?)",
                [text(r), text(r), text(r)],
            );
        }
        if let Some(b) = &self.branch {
            sql.bind(" AND e.branch = ?", [text(b)]);
        }
        if let Some(s) = &self.mcp_server {
            sql.bind(" AND e.mcp_server = ?", [text(s)]);
        }
        if let Some(t) = &self.mcp_tool {
            sql.bind(" AND e.mcp_tool = ?", [text(t)]);
        }
        if let Some(q) = &self.query_source {
            sql.bind(" AND e.query_source = ?", [text(q)]);
        }
        self.attribution_conditions(sql, "e.attrs");
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
pub fn like_contains(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('%');
    out
}

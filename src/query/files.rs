//! `top_edited_files`: files most edited by Edit/MultiEdit/Write/NotebookEdit,
//! with accept/reject decisions.
//!
//! One edit = one tool use (`tool_use_id`), seen as a `tool_decision` event, a
//! `tool_result` event (accepted edits only: a rejected edit has a decision
//! but no result) and/or a `claude_code.tool` span whose child
//! `claude_code.tool.blocked_on_user` carries the decision. The path comes
//! from the result's `tool_input` or the span's `file_path`; both exist only
//! with `OTEL_LOG_TOOL_DETAILS=1`.

use std::collections::BTreeSet;

/// The folds' maps: keys are the store's own values (tool use ids, paths),
/// hashed fast; the answer's order is set by sorting at the end.
type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use super::QueryError;
use super::filter::{Filter, Sql, int, text};
use super::time::TimeRange;

/// Tools that edit files.
pub const EDIT_TOOLS: [&str; 5] = ["Edit", "MultiEdit", "Write", "NotebookEdit", "apply_patch"];

/// How to turn path data on, said when there is none.
pub const ENABLE_PATHS: &str = "Claude Code reports file paths only with OTEL_LOG_TOOL_DETAILS=1 (in tool_result \
    events); with CLAUDE_CODE_ENHANCED_TELEMETRY_BETA=1 and OTEL_TRACES_EXPORTER=otlp the claude_code.tool spans also \
    carry file_path, which covers rejected edits too";

/// One file.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct FileEdits {
    /// File path as Claude Code reported it.
    pub file_path: String,
    /// Edit tool uses on this file (accepted, rejected or undecided).
    pub edits: i64,
    /// Accepted edits.
    pub accepted: i64,
    /// Rejected edits.
    pub rejected: i64,
    /// accepted / (accepted + rejected), 0..1.
    pub acceptance_rate: Option<f64>,
    /// Distinct sessions that edited the file.
    pub sessions: i64,
    /// Distinct developers that edited the file.
    pub developers: i64,
    /// Edit tools used (`Edit`, `Write`...).
    pub tools: Vec<String>,
}

/// The whole answer before paging.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TopEditedFiles {
    /// Files, most edited first.
    pub files: Vec<FileEdits>,
    /// All edits in the range (with or without a path).
    pub total_edits: i64,
    /// Edits with no file path.
    pub edits_without_path: i64,
    /// All accepted edits.
    pub accepted: i64,
    /// All rejected edits.
    pub rejected: i64,
}

#[derive(Default)]
struct Edit {
    tool: &'static str,
    path_result: Option<String>,
    path_span: Option<String>,
    decision_event: Option<String>,
    decision_span: Option<String>,
    has_result: bool,
    /// Index into the developers seen ([`Names`]).
    developer: Option<u32>,
    session: Option<i64>,
    repos: BTreeSet<String>,
    branches: BTreeSet<String>,
}

/// Developer names, each stored once: an edit row names its developer by
/// index, so a month of edit rows does not copy the same few strings.
#[derive(Default)]
struct Names {
    index: Map<String, u32>,
}

impl Names {
    fn id(&mut self, name: Option<&str>) -> Option<u32> {
        let name = name?;
        if let Some(i) = self.index.get(name) {
            return Some(*i);
        }
        let i = u32::try_from(self.index.len()).unwrap_or(u32::MAX);
        self.index.insert(name.to_string(), i);
        Some(i)
    }
}

/// Column `i` of `r` as borrowed text (no copy), or `None` for NULL.
fn text_at<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<Option<&'r str>, QueryError> {
    r.get_ref(i)?
        .as_str_or_null()
        .map_err(|e| QueryError::Sql(format!("column {i}: {e}")))
}

/// The edit tool a stored name is (the queries select only these).
fn edit_tool(name: Option<&str>) -> &'static str {
    name.and_then(|n| EDIT_TOOLS.iter().find(|t| **t == n).copied())
        .unwrap_or("")
}

/// The edit of one tool use, found by its id without copying the id when
/// the edit is already known (`None` cannot happen: it is inserted first).
fn edit_of<'m>(
    edits: &'m mut Map<String, Edit>,
    tool_use_id: Option<&str>,
    fallback: impl FnOnce() -> String,
) -> Option<&'m mut Edit> {
    match tool_use_id {
        Some(k) => {
            if !edits.contains_key(k) {
                edits.insert(k.to_string(), Edit::default());
            }
            edits.get_mut(k)
        }
        None => Some(edits.entry(fallback()).or_default()),
    }
}

/// The edit tools as an SQL list of literals, exactly as the partial index
/// `events_edit_time` states them (so the planner can use it; the names
/// are the constants of [`EDIT_TOOLS`], never caller input).
fn edit_tools_sql() -> String {
    let quoted: Vec<String> = EDIT_TOOLS.iter().map(|t| format!("'{t}'")).collect();
    format!("({})", quoted.join(", "))
}

/// ` AND` the tool column `col` is an edit tool (and `tool`, if given).
pub fn tools_in(sql: &mut Sql, col: &str, tool: Option<&str>) {
    sql.push(&format!(" AND {col} IN {}", edit_tools_sql()));
    if let Some(t) = tool {
        sql.bind(&format!(" AND {col} = ?"), [text(t)]);
    }
}

/// Runs the question. `tool` must be one of [`EDIT_TOOLS`] if given.
pub fn top_edited_files(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    f: &Filter,
    tool: Option<&str>,
) -> Result<TopEditedFiles, QueryError> {
    check_tool(tool)?;
    let mut edits = Edits::default();
    // Repository and branch are read only when the question filters by
    // them: the resource attribute is JSON, costly to read on every edit.
    let repo_col = repo_column(f);
    let sql = edit_events_sql(range.since_ns, range.until_ns, f, tool);
    let mut stmt = conn.prepare(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(sql.params.iter()))?;
    while let Some(r) = rows.next()? {
        let result = text_at(r, 2)? == Some("tool_result");
        edits.add_event(EventEdit {
            tool_use_id: text_at(r, 0)?,
            record: r.get(1)?,
            result,
            tool: text_at(r, 3)?,
            file_path: r.get(4)?,
            decision: r.get(5)?,
            developer: text_at(r, 6)?,
            session: r.get(7)?,
            repos: [r.get(8)?, r.get(10)?],
            branch: r.get(9)?,
        });
    }
    let mut sql = Sql::default();
    sql.bind(
        &format!(
            "SELECT s.tool_use_id, s.id, s.tool_name, s.file_path, \
             (SELECT b.decision FROM spans b WHERE b.trace_id = s.trace_id AND b.parent_span_id = s.span_id \
              AND b.name = 'claude_code.tool.blocked_on_user' ORDER BY b.id LIMIT 1), \
             c.developer, c.session_ref, {repo_col} \
             FROM spans s JOIN contexts c ON c.id = s.context_id \
             WHERE s.start_ns >= ? AND s.start_ns < ? AND s.name = 'claude_code.tool'"
        ),
        [int(range.since_ns), int(range.until_ns)],
    );
    tools_in(&mut sql, "s.tool_name", tool);
    f.context_conditions(&mut sql);
    let mut stmt = conn.prepare(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(sql.params.iter()))?;
    while let Some(r) = rows.next()? {
        edits.add_span(SpanEdit {
            tool_use_id: text_at(r, 0)?,
            record: r.get(1)?,
            tool: text_at(r, 2)?,
            file_path: r.get(3)?,
            decision: r.get(4)?,
            developer: text_at(r, 5)?,
            session: r.get(6)?,
            repo: r.get(7)?,
        });
    }
    Ok(edits.finish(f))
}

/// The resource's `repo.name`, read only when the question filters by
/// repository (the resource attribute is JSON, costly to read on every edit).
fn repo_column(f: &Filter) -> &'static str {
    if f.repository.is_some() {
        "CAST(json_extract(c.resource_attrs, '$.\"repo.name\"') AS TEXT)"
    } else {
        "NULL"
    }
}

/// The edit events of `since..until`: without a repository or branch
/// filter every column it reads is in the partial index `events_edit_time`,
/// so the event rows themselves are never read.
fn edit_events_sql(since: i64, until: i64, f: &Filter, tool: Option<&str>) -> Sql {
    let (repo_event, branch_event) = if f.repository.is_some() || f.branch.is_some() {
        ("e.repository", "e.branch")
    } else {
        ("NULL", "NULL")
    };
    let repo_col = repo_column(f);
    let mut sql = Sql::default();
    sql.bind(
        &format!(
            "SELECT e.tool_use_id, e.id, e.event_name, e.tool_name, e.file_path, e.decision, c.developer, c.session_ref, \
             {repo_event}, {branch_event}, {repo_col} \
             FROM events e JOIN contexts c ON c.id = e.context_id \
             WHERE e.time_ns >= ? AND e.time_ns < ? AND e.event_name IN ('tool_decision', 'tool_result')"
        ),
        [int(since), int(until)],
    );
    tools_in(&mut sql, "e.tool_name", tool);
    f.context_conditions(&mut sql);
    sql
}

/// Refuses a `tool` that is not one of [`EDIT_TOOLS`].
pub fn check_tool(tool: Option<&str>) -> Result<(), QueryError> {
    match tool {
        Some(t) if !EDIT_TOOLS.contains(&t) => Err(QueryError::Invalid(format!(
            "tool_name {t:?} is not an edit tool; use one of {}",
            EDIT_TOOLS.join(", ")
        ))),
        _ => Ok(()),
    }
}

/// An edit tool's `tool_decision` or `tool_result` event, as an engine reads it.
pub struct EventEdit<'a> {
    /// `tool_use_id`, the edit's identity.
    pub tool_use_id: Option<&'a str>,
    /// The record's own id, the identity of an edit without a tool use id.
    pub record: i64,
    /// True for `tool_result` (its `file_path` counts), false for
    /// `tool_decision` (its `decision` counts).
    pub result: bool,
    pub tool: Option<&'a str>,
    pub file_path: Option<String>,
    pub decision: Option<String>,
    pub developer: Option<&'a str>,
    /// The session, as a number the engine gives each session.
    pub session: Option<i64>,
    /// The record's repository and its resource's `repo.name` (read only
    /// when the question filters by repository).
    pub repos: [Option<String>; 2],
    pub branch: Option<String>,
}

/// An edit tool's `claude_code.tool` span and the decision of its
/// `claude_code.tool.blocked_on_user` child, as an engine reads them.
pub struct SpanEdit<'a> {
    pub tool_use_id: Option<&'a str>,
    pub record: i64,
    pub tool: Option<&'a str>,
    pub file_path: Option<String>,
    pub decision: Option<String>,
    pub developer: Option<&'a str>,
    pub session: Option<i64>,
    pub repo: Option<String>,
}

/// The edits of a range, gathered event by event and span by span (events
/// first), then folded into the answer.
#[derive(Default)]
pub struct Edits {
    edits: Map<String, Edit>,
    names: Names,
}

impl Edits {
    /// Adds an event.
    pub fn add_event(&mut self, r: EventEdit<'_>) {
        let record = r.record;
        let Some(e) = edit_of(&mut self.edits, r.tool_use_id, || format!("event:{record}")) else {
            return;
        };
        e.tool = edit_tool(r.tool);
        if r.result {
            e.has_result = true;
            e.path_result = e.path_result.take().or(r.file_path);
        } else {
            e.decision_event = r.decision;
        }
        e.developer = self.names.id(r.developer);
        e.session = r.session;
        e.repos.extend(r.repos.into_iter().flatten());
        e.branches.extend(r.branch);
    }

    /// Adds a span.
    pub fn add_span(&mut self, r: SpanEdit<'_>) {
        let record = r.record;
        let Some(e) = edit_of(&mut self.edits, r.tool_use_id, || format!("span:{record}")) else {
            return;
        };
        if e.tool.is_empty() {
            e.tool = edit_tool(r.tool);
        }
        e.path_span = r.file_path;
        e.decision_span = r.decision;
        e.developer = e.developer.or(self.names.id(r.developer));
        e.session = e.session.or(r.session);
        e.repos.extend(r.repo);
    }

    /// The answer (repository and branch filters applied per edit).
    pub fn finish(self, f: &Filter) -> TopEditedFiles {
        let edits = self.edits;
        let mut out = TopEditedFiles::default();
        #[derive(Default)]
        struct Acc {
            edits: i64,
            accepted: i64,
            rejected: i64,
            /// Sorted and made distinct at the end (a file has few).
            sessions: Vec<i64>,
            developers: Vec<u32>,
            tools: BTreeSet<&'static str>,
        }
        let mut files: Map<String, Acc> = Map::default();
        for e in edits.into_values() {
            if f.repository.as_ref().is_some_and(|r| !e.repos.contains(r))
                || f.branch.as_ref().is_some_and(|b| !e.branches.contains(b))
            {
                continue;
            }
            let decision = e
                .decision_event
                .or(e.decision_span)
                .or_else(|| e.has_result.then(|| "accept".to_string()));
            let accepted = decision.as_deref() == Some("accept");
            let rejected = decision.as_deref() == Some("reject");
            out.total_edits += 1;
            out.accepted += i64::from(accepted);
            out.rejected += i64::from(rejected);
            let Some(path) = e.path_result.or(e.path_span) else {
                out.edits_without_path += 1;
                continue;
            };
            let a = files.entry(path).or_default();
            a.edits += 1;
            a.accepted += i64::from(accepted);
            a.rejected += i64::from(rejected);
            a.sessions.extend(e.session);
            a.developers.extend(e.developer);
            a.tools.insert(e.tool);
        }
        fn distinct<T: Ord>(mut v: Vec<T>) -> i64 {
            v.sort_unstable();
            v.dedup();
            v.len() as i64
        }
        out.files = files
            .into_iter()
            .map(|(path, a)| FileEdits {
                file_path: path,
                edits: a.edits,
                accepted: a.accepted,
                rejected: a.rejected,
                acceptance_rate: (a.accepted + a.rejected > 0)
                    .then(|| a.accepted as f64 / (a.accepted + a.rejected) as f64),
                sessions: distinct(a.sessions),
                developers: distinct(a.developers),
                tools: a.tools.into_iter().map(str::to_owned).collect(),
            })
            .collect();
        out.files.sort_by(|a, b| {
            b.edits
                .cmp(&a.edits)
                .then_with(|| a.file_path.cmp(&b.file_path))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The partial index is only used when the query states its condition
    /// exactly; this ties the two together.
    #[test]
    fn the_edit_tool_list_is_the_partial_index_condition() {
        let schema = include_str!("../store/schema_v5.sql");
        let cond = format!("tool_name IN {}", edit_tools_sql());
        assert!(schema.contains(&cond), "{cond}");
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::migrate(&conn).unwrap();
        let mut sql = Sql::default();
        sql.push(
            "EXPLAIN QUERY PLAN SELECT e.id FROM events e WHERE e.time_ns >= 0 AND e.time_ns < 10 \
             AND e.event_name IN ('tool_decision', 'tool_result')",
        );
        tools_in(&mut sql, "e.tool_name", Some("Write"));
        let plan = |sql: &Sql| -> Vec<String> {
            conn.prepare(&sql.text)
                .unwrap()
                .query_map(rusqlite::params_from_iter(sql.params.iter()), |r| r.get(3))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let found = plan(&sql);
        assert!(
            found.iter().any(|p| p.contains("events_edit_time")),
            "{found:?}"
        );
        // And the question's own statement reads that index alone.
        let everyone = Filter::new(crate::query::visible::testing::visible(&[]));
        let mut sql = edit_events_sql(0, 10, &everyone, None);
        sql.text = format!("EXPLAIN QUERY PLAN {}", sql.text);
        let found = plan(&sql);
        assert!(
            found
                .iter()
                .any(|p| p.contains("COVERING INDEX events_edit_time")),
            "{found:?}"
        );
    }
}

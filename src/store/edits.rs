//! `edits`: one row per edit, kept by the writer so that `top_edited_files`
//! reads one row per edit rather than every decision and result event of
//! the range, joined to its context and merged by tool use.
//!
//! An edit is one tool use of an edit tool ([`EDIT_TOOLS`]): its
//! `tool_decision` event (accept/reject) and its `tool_result` event (the
//! path) share a `tool_use_id`; an event without one is an edit of its own.
//! The row holds the edit's time span (first and last record), its
//! developer and session, tool, path, decision and how many decision and
//! result events it has. The question answers from a row alone only when
//! the row is exactly what folding its records would give: one context,
//! tool, repository and branch, at most one decision and one result, all
//! inside the asked range, and no `claude_code.tool` span for the same tool
//! use in it. Any other edit is marked `mixed` (or lies across a range
//! edge, or has a span) and the question folds its records as it always
//! did (`query::files`), so the answer stays exact.

use rusqlite::{Connection, OptionalExtension, params};

use crate::rows::EventRow;

/// Tools that edit files.
pub const EDIT_TOOLS: [&str; 5] = ["Edit", "MultiEdit", "Write", "NotebookEdit", "apply_patch"];

/// The edit tools as an SQL list of literals, exactly as the partial index
/// `events_edit_time` states them (so the planner can use it; the names
/// are the constants of [`EDIT_TOOLS`], never caller input).
pub fn edit_tools_sql() -> String {
    let quoted: Vec<String> = EDIT_TOOLS.iter().map(|t| format!("'{t}'")).collect();
    format!("({})", quoted.join(", "))
}

/// The span of an edit beyond which it is "long": edits are found by
/// their first record, and those starting before a range but ending inside
/// it are looked for in the hour before the range, or among the long ones
/// (partial index `edits_long`).
pub const LONG_NS: i64 = super::rollup::HOUR_NS;

/// The edit's key for a tool use id (`u:`) or for the record id of an
/// event without one (`e:`): the two can never be equal.
pub fn key_of_tool_use(tool_use_id: &str) -> String {
    format!("u:{tool_use_id}")
}

/// The tool use id of a key, if it has one.
pub fn tool_use_of_key(key: &str) -> Option<&str> {
    key.strip_prefix("u:")
}

/// True for the events an edit is made of.
pub fn is_edit_event(e: &EventRow) -> bool {
    matches!(e.event_name.as_str(), "tool_decision" | "tool_result")
        && e.tool_name
            .as_deref()
            .is_some_and(|t| EDIT_TOOLS.contains(&t))
}

/// The one statement that adds an edit event to its edit: the rule for
/// merging records lives here only (the writer and the migration use it).
const UPSERT: &str =
    "INSERT INTO edits (first_ns, key, last_ns, developer, session, context_id, tool,
        file, decision, decisions, results, repository, branch, mixed)
     VALUES (?1, ?2, ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0)
     ON CONFLICT (key) DO UPDATE SET
        first_ns = MIN(first_ns, excluded.first_ns),
        last_ns = MAX(last_ns, excluded.last_ns),
        file = COALESCE(file, excluded.file),
        decision = CASE WHEN excluded.decisions > 0 THEN excluded.decision ELSE decision END,
        decisions = decisions + excluded.decisions,
        results = results + excluded.results,
        mixed = mixed OR context_id IS NOT excluded.context_id OR tool IS NOT excluded.tool
            OR repository IS NOT excluded.repository OR branch IS NOT excluded.branch
            OR decisions + excluded.decisions > 1 OR results + excluded.results > 1";

/// One edit event, as the writer or the migration has it.
pub(crate) struct EditEvent<'a> {
    /// `events.id`
    pub id: i64,
    pub time_ns: i64,
    pub context_id: i64,
    pub developer: Option<&'a str>,
    /// `sessions.id`
    pub session: Option<i64>,
    pub event_name: &'a str,
    pub tool_name: &'a str,
    pub tool_use_id: Option<&'a str>,
    pub file_path: Option<&'a str>,
    pub decision: Option<&'a str>,
    pub repository: Option<&'a str>,
    pub branch: Option<&'a str>,
}

/// Adds an inserted edit event to its edit.
pub(crate) fn add(conn: &Connection, e: &EditEvent<'_>) -> rusqlite::Result<()> {
    let key = match e.tool_use_id {
        Some(t) => key_of_tool_use(t),
        None => format!("e:{}", e.id),
    };
    let result = e.event_name == "tool_result";
    let file = match e.file_path {
        Some(path) if result => Some(file_number(conn, path)?),
        _ => None,
    };
    conn.prepare_cached(UPSERT)?.execute(params![
        e.time_ns,
        key,
        e.developer,
        e.session,
        e.context_id,
        e.tool_name,
        file,
        if result { None } else { e.decision },
        i64::from(!result),
        i64::from(result),
        e.repository,
        e.branch,
    ])?;
    Ok(())
}

/// The number of an edited path in `edit_files`, given to it when it is
/// first seen.
fn file_number(conn: &Connection, path: &str) -> rusqlite::Result<i64> {
    let known = conn
        .prepare_cached("SELECT id FROM edit_files WHERE path = ?1")?
        .query_row([path], |r| r.get(0))
        .optional()?;
    match known {
        Some(id) => Ok(id),
        None => conn
            .prepare_cached("INSERT INTO edit_files (path) VALUES (?1) RETURNING id")?
            .query_row([path], |r| r.get(0)),
    }
}

/// Fills `edits` from the stored events (the migration that creates it).
pub(crate) fn fill(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(&format!(
        "SELECT e.id, e.time_ns, e.context_id, c.developer, c.session_ref, e.event_name, e.tool_name,
                e.tool_use_id, e.file_path, e.decision, e.repository, e.branch
         FROM events e JOIN contexts c ON c.id = e.context_id
         WHERE e.event_name IN ('tool_decision', 'tool_result') AND e.tool_name IN {}
         ORDER BY e.id",
        edit_tools_sql()
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let text = |i: usize| -> rusqlite::Result<Option<&str>> {
            r.get_ref(i)?.as_str_or_null().map_err(Into::into)
        };
        add(
            conn,
            &EditEvent {
                id: r.get(0)?,
                time_ns: r.get(1)?,
                context_id: r.get(2)?,
                developer: text(3)?,
                session: r.get(4)?,
                event_name: text(5)?.unwrap_or_default(),
                tool_name: text(6)?.unwrap_or_default(),
                tool_use_id: text(7)?,
                file_path: text(8)?,
                decision: text(9)?,
                repository: text(10)?,
                branch: text(11)?,
            },
        )?;
    }
    Ok(())
}

/// After the events before `cutoff_ns` are deleted: edits wholly before it
/// go; an edit that began before it has lost records, so it is read from
/// what is left of them from now on.
pub(crate) fn prune(conn: &Connection, cutoff_ns: i64) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM edits WHERE first_ns < ?1 AND last_ns < ?1",
        [cutoff_ns],
    )?;
    conn.execute(
        "UPDATE edits SET mixed = 1 WHERE first_ns < ?1 AND mixed = 0",
        [cutoff_ns],
    )?;
    conn.execute(
        "DELETE FROM edit_files WHERE id NOT IN (SELECT file FROM edits WHERE file IS NOT NULL)",
        [],
    )?;
    Ok(())
}

/// A context's session row was created again: its edits follow it.
pub(crate) fn session_changed(
    conn: &Connection,
    context_id: i64,
    session: Option<i64>,
) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE edits SET session = ?2 WHERE context_id = ?1")?
        .execute(params![context_id, session])?;
    Ok(())
}

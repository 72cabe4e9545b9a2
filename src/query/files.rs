//! `top_edited_files`: files most edited by Edit/MultiEdit/Write/NotebookEdit,
//! with accept/reject decisions.
//!
//! One edit = one tool use (`tool_use_id`), seen as a `tool_decision` event, a
//! `tool_result` event (accepted edits only: a rejected edit has a decision
//! but no result) and/or a `claude_code.tool` span whose child
//! `claude_code.tool.blocked_on_user` carries the decision. The path comes
//! from the result's `tool_input` or the span's `file_path`; both exist only
//! with `OTEL_LOG_TOOL_DETAILS=1`.
//!
//! [`Edits`] folds records into edits (the rule both engines use). The
//! embedded store also keeps one row per edit (`edits`, see
//! [`crate::store::edits`]) and answers from those rows, folding records
//! only for the edits a row cannot answer exactly.

use std::collections::BTreeSet;

use rusqlite::OptionalExtension;
use smallvec::SmallVec;

/// The folds' maps: keys are the store's own values (tool use ids, paths),
/// hashed fast; the answer's order is set by sorting at the end.
type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use super::QueryError;
use super::filter::{Filter, Sql, int, text};
use super::time::TimeRange;

pub use crate::store::edits::EDIT_TOOLS;
use crate::store::edits::{self, edit_tools_sql};

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

/// The answer's first files and the totals of all of them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TopEditedFiles {
    /// The most edited files, most edited first (ties by path), as many as
    /// the question asked for.
    pub files: Vec<FileEdits>,
    /// Files edited in the range (`files` may hold fewer).
    pub file_count: i64,
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

/// The bit of an edit tool in a set of them (0 for none).
fn tool_bit(tool: &str) -> u8 {
    EDIT_TOOLS
        .iter()
        .position(|t| *t == tool)
        .map_or(0, |i| 1 << i)
}

/// The edit tools of a set, in name order.
fn tool_names(set: u8) -> Vec<String> {
    let mut names: Vec<String> = EDIT_TOOLS
        .iter()
        .enumerate()
        .filter(|(i, _)| set & (1 << i) != 0)
        .map(|(_, t)| (*t).to_owned())
        .collect();
    names.sort_unstable();
    names
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

/// ` AND` the tool column `col` is an edit tool (and `tool`, if given).
pub fn tools_in(sql: &mut Sql, col: &str, tool: Option<&str>) {
    sql.push(&format!(" AND {col} IN {}", edit_tools_sql()));
    if let Some(t) = tool {
        sql.bind(&format!(" AND {col} = ?"), [text(t)]);
    }
}

/// Edits that need their records folded (across a range edge, mixed, or
/// with a span) beyond which the question folds the whole range instead of
/// looking each up.
const MOST_FOLDED: usize = 2_000;

/// Runs the question: the `top` most edited files and the totals of all.
/// `tool` must be one of [`EDIT_TOOLS`] if given.
///
/// Edits are read from `edits`, one row each (see [`crate::store::edits`]);
/// those a row cannot answer exactly have their records folded. Under a
/// repository or branch filter (per record, not per edit) every edit of the
/// range is folded from its records.
pub fn top_edited_files(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    f: &Filter,
    tool: Option<&str>,
    top: usize,
) -> Result<TopEditedFiles, QueryError> {
    check_tool(tool)?;
    let spans = span_records(conn, range, f, tool)?;
    let from_rows = if f.repository.is_none() && f.branch.is_none() {
        from_rows(conn, range, f, tool, &spans)?
    } else {
        None
    };
    let edits = match from_rows {
        Some(edits) => edits,
        None => events_of_range(conn, range, f, tool)?,
    };
    Ok(with_spans(edits, &spans).finish(f, top))
}

/// Every edit record of the range, folded.
fn events_of_range(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    f: &Filter,
    tool: Option<&str>,
) -> Result<Edits, QueryError> {
    let mut edits = Edits::default();
    let sql = edit_events_sql(range.since_ns, range.until_ns, f, tool);
    fold_events(conn, &sql, &mut edits)?;
    Ok(edits)
}

/// `edits` with the spans added (after the events, as the fold expects).
fn with_spans(mut edits: Edits, spans: &[SpanRecord]) -> Edits {
    for s in spans {
        edits.add_span(s.as_edit());
    }
    edits
}

/// An edit to fold from its records: its tool use id and the part of the
/// range (`from..to`) its records lie in.
type Window = (String, i64, i64);

/// The edits of the range from the `edits` rows with their first record in
/// it: a row that is exactly its edit is counted as it is; the others (a
/// span of the range has their tool use, they are mixed, or they cross a
/// range edge) have their records in the range folded. `None` when too many
/// need folding (the caller folds the whole range).
fn from_rows(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    f: &Filter,
    tool: Option<&str>,
    spans: &[SpanRecord],
) -> Result<Option<Edits>, QueryError> {
    let span_keys: std::collections::HashSet<&str, foldhash::fast::RandomState> = spans
        .iter()
        .filter_map(|s| s.tool_use_id.as_deref())
        .collect();
    let (since, until) = (range.since_ns, range.until_ns);
    let mut out = Edits::default();
    let mut windows: Vec<Window> = Vec::new();
    // Notes an edit to fold; false once there are too many.
    let fold = |key: &str, first: i64, last: i64, windows: &mut Vec<Window>| {
        if let Some(t) = edits::tool_use_of_key(key) {
            windows.push((
                t.to_owned(),
                first.max(since),
                last.saturating_add(1).min(until),
            ));
        }
        windows.len() <= MOST_FOLDED
    };
    // Edits that began in the range.
    let mut sql = edit_rows_sql(f, tool);
    sql.bind(
        " AND ed.first_ns >= ? AND ed.first_ns < ?",
        [int(since), int(until)],
    );
    let mut stmt = conn.prepare(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(sql.params.iter()))?;
    while let Some(r) = rows.next()? {
        let (first, last): (i64, i64) = (r.get(1)?, r.get(2)?);
        let mixed: bool = r.get(3)?;
        // The key is read only when it matters (it is most of a row).
        let key = || text_at(r, 0).map(Option::unwrap_or_default);
        if mixed
            || last >= until
            || (!span_keys.is_empty()
                && edits::tool_use_of_key(key()?).is_some_and(|t| span_keys.contains(t)))
        {
            if !fold(key()?, first, last, &mut windows) {
                return Ok(None);
            }
            continue;
        }
        out.add_row(RowEdit {
            tool: text_at(r, 4)?,
            file: r.get(5)?,
            decision: text_at(r, 6)?,
            has_result: r.get::<_, i64>(7)? > 0,
            developer: text_at(r, 8)?,
            session: r.get(9)?,
        });
    }
    // Edits that began before the range and end inside it: in the hour
    // before it, or among the long ones (the partial index's condition is
    // stated word for word so that it is used).
    let before = since.saturating_sub(edits::LONG_NS);
    for (condition, params) in [
        (
            " AND ed.first_ns >= ? AND ed.first_ns < ? AND ed.last_ns >= ?".to_string(),
            vec![int(before), int(since), int(since)],
        ),
        (
            format!(
                " AND ed.first_ns < ? AND ed.last_ns - ed.first_ns >= {} AND ed.last_ns >= ?",
                edits::LONG_NS
            ),
            vec![int(before), int(since)],
        ),
    ] {
        let mut sql = edit_rows_sql(f, tool);
        sql.bind(&condition, params);
        let mut stmt = conn.prepare(&sql.text)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(sql.params.iter()))?;
        while let Some(r) = rows.next()? {
            let key = text_at(r, 0)?.unwrap_or_default();
            if !fold(key, r.get(1)?, r.get(2)?, &mut windows) {
                return Ok(None);
            }
        }
    }
    for (tool_use_id, from, to) in windows {
        let mut sql = edit_events_sql(from, to, f, tool);
        sql.bind(" AND e.tool_use_id = ?", [text(&tool_use_id)]);
        fold_events(conn, &sql, &mut out)?;
    }
    out.name_files(|numbers| file_paths(conn, numbers))?;
    Ok(Some(out))
}

/// The paths of the `edit_files` numbered `numbers` (ascending): looked up
/// one by one when they are few of the table, else read in one pass.
fn file_paths(
    conn: &rusqlite::Connection,
    numbers: &[i64],
) -> Result<Vec<(i64, String)>, QueryError> {
    let mut out = Vec::with_capacity(numbers.len());
    let (Some(first), Some(last)) = (numbers.first(), numbers.last()) else {
        return Ok(out);
    };
    let known: i64 = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM edit_files", [], |r| {
        r.get(0)
    })?;
    if (numbers.len() as i64).saturating_mul(16) < known {
        let mut stmt = conn.prepare_cached("SELECT path FROM edit_files WHERE id = ?1")?;
        for n in numbers {
            if let Some(path) = stmt.query_row([n], |r| r.get(0)).optional()? {
                out.push((*n, path));
            }
        }
        return Ok(out);
    }
    let mut stmt =
        conn.prepare_cached("SELECT id, path FROM edit_files WHERE id >= ?1 AND id <= ?2")?;
    let mut rows = stmt.query([first, last])?;
    while let Some(r) = rows.next()? {
        let n: i64 = r.get(0)?;
        if numbers.binary_search(&n).is_ok() {
            out.push((n, r.get(1)?));
        }
    }
    Ok(out)
}

/// The `edits` rows' columns, under the question's filters (the
/// developer's visibility on the row itself; other context filters on its
/// context). A mixed row always comes: its records may pass the filters
/// where its first one does not, so they are folded one by one.
fn edit_rows_sql(f: &Filter, tool: Option<&str>) -> Sql {
    let mut sql = Sql::default();
    sql.push(
        "SELECT ed.key, ed.first_ns, ed.last_ns, ed.mixed, ed.tool, ed.file, ed.decision, ed.results, \
         ed.developer, ed.session FROM edits ed",
    );
    let context_free =
        f.team.is_none() && f.attribute.is_none() && f.session_id.is_none() && f.agent.is_none();
    if context_free {
        sql.push(" WHERE (ed.mixed = 1 OR (1");
        f.developer_conditions(&mut sql, "ed.developer");
    } else {
        sql.push(" LEFT JOIN contexts c ON c.id = ed.context_id WHERE (ed.mixed = 1 OR (1");
        f.context_conditions(&mut sql);
    }
    if let Some(t) = tool {
        sql.bind(" AND ed.tool = ?", [text(t)]);
    }
    sql.push("))");
    sql
}

/// Folds the edit events `sql` selects ([`edit_events_sql`]) into `edits`.
fn fold_events(
    conn: &rusqlite::Connection,
    sql: &Sql,
    edits: &mut Edits,
) -> Result<(), QueryError> {
    let mut stmt = conn.prepare_cached(&sql.text)?;
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
    Ok(())
}

/// An edit tool's `claude_code.tool` span as read, with its decision.
struct SpanRecord {
    tool_use_id: Option<String>,
    record: i64,
    tool: Option<String>,
    file_path: Option<String>,
    decision: Option<String>,
    developer: Option<String>,
    session: Option<i64>,
    repo: Option<String>,
}

impl SpanRecord {
    fn as_edit(&self) -> SpanEdit<'_> {
        SpanEdit {
            tool_use_id: self.tool_use_id.as_deref(),
            record: self.record,
            tool: self.tool.as_deref(),
            file_path: self.file_path.clone(),
            decision: self.decision.clone(),
            developer: self.developer.as_deref(),
            session: self.session,
            repo: self.repo.clone(),
        }
    }
}

/// The edit tools' spans of the range (few: they exist only with enhanced
/// telemetry on).
fn span_records(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    f: &Filter,
    tool: Option<&str>,
) -> Result<Vec<SpanRecord>, QueryError> {
    let repo_col = repo_column(f);
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
    let rows = stmt.query_map(rusqlite::params_from_iter(sql.params.iter()), |r| {
        Ok(SpanRecord {
            tool_use_id: r.get(0)?,
            record: r.get(1)?,
            tool: r.get(2)?,
            file_path: r.get(3)?,
            decision: r.get(4)?,
            developer: r.get(5)?,
            session: r.get(6)?,
            repo: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
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

/// An edit as its `edits` row has it (exactly its records' fold).
pub struct RowEdit<'a> {
    pub tool: Option<&'a str>,
    /// The path, as the number the engine gives each path (named later by
    /// [`Edits::name_files`]).
    pub file: Option<i64>,
    pub decision: Option<&'a str>,
    pub has_result: bool,
    pub developer: Option<&'a str>,
    pub session: Option<i64>,
}

/// A whole edit of a numbered file.
struct NumberedEdit {
    file: i64,
    session: Option<i64>,
    developer: Option<u32>,
    /// [`tool_bit`]
    tool: u8,
    decided: Decided,
}

/// An edit's decision, as a file's counts take it.
#[derive(Clone, Copy)]
struct Decided {
    accepted: bool,
    rejected: bool,
}

/// One file's edits while they are counted.
#[derive(Default)]
struct Acc {
    edits: i64,
    accepted: i64,
    rejected: i64,
    /// Sorted and made distinct at the end (a file has few).
    sessions: SmallVec<[i64; 2]>,
    developers: SmallVec<[u32; 2]>,
    /// Bit `i` for `EDIT_TOOLS[i]`.
    tools: u8,
}

impl Acc {
    /// Adds an edit (`tool`: its [`tool_bit`]).
    fn add(&mut self, d: Decided, session: Option<i64>, developer: Option<u32>, tool: u8) {
        self.edits += 1;
        self.accepted += i64::from(d.accepted);
        self.rejected += i64::from(d.rejected);
        self.sessions.extend(session);
        self.developers.extend(developer);
        self.tools |= tool;
    }

    fn merge(&mut self, other: Acc) {
        self.edits += other.edits;
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        self.sessions.extend(other.sessions);
        self.developers.extend(other.developers);
        self.tools |= other.tools;
    }
}

/// The edits of a range: whole edits counted as they come
/// ([`Edits::add_row`]), records gathered event by event and span by span
/// (events first) and folded at the end.
#[derive(Default)]
pub struct Edits {
    edits: Map<String, Edit>,
    names: Names,
    files: Map<String, Acc>,
    /// Whole edits whose file is the engine's number for its path, until
    /// [`Edits::name_files`].
    numbered: Vec<NumberedEdit>,
    totals: TopEditedFiles,
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

    /// Counts a whole edit (one that no record of the question adds to).
    pub fn add_row(&mut self, r: RowEdit<'_>) {
        let decision = r.decision.or(r.has_result.then_some("accept"));
        let developer = self.names.id(r.developer);
        let Some(d) = self.total(decision, r.file.is_some()) else {
            return;
        };
        self.numbered.push(NumberedEdit {
            file: r.file.unwrap_or_default(),
            session: r.session,
            developer,
            tool: tool_bit(edit_tool(r.tool)),
            decided: d,
        });
    }

    /// Gives the numbered files ([`RowEdit::file`]) their paths: `paths`
    /// returns them for the numbers it is given (ascending, each once), in
    /// the same order. Their counts join those of the same path; a number
    /// left without a path (none is expected) counts as edits without one.
    pub fn name_files<E>(
        &mut self,
        paths: impl FnOnce(&[i64]) -> Result<Vec<(i64, String)>, E>,
    ) -> Result<(), E> {
        self.numbered
            .sort_unstable_by_key(|e| (e.file, e.session, e.developer));
        let mut numbers: Vec<i64> = self.numbered.iter().map(|e| e.file).collect();
        numbers.dedup();
        let mut paths = paths(&numbers)?.into_iter().peekable();
        self.files.reserve(numbers.len());
        for same in std::mem::take(&mut self.numbered).chunk_by(|a, b| a.file == b.file) {
            let number = same[0].file;
            while paths.next_if(|(n, _)| *n < number).is_some() {}
            let Some((_, path)) = paths.next_if(|(n, _)| *n == number) else {
                self.totals.edits_without_path += same.len() as i64;
                continue;
            };
            let mut a = Acc::default();
            for e in same {
                a.add(e.decided, e.session, e.developer, e.tool);
            }
            match self.files.get_mut(&path) {
                Some(folded) => folded.merge(a),
                None => {
                    self.files.insert(path, a);
                }
            }
        }
        Ok(())
    }

    /// Counts one edit in the totals: its decision, and whether it has a
    /// path (`None` when it has not: counted as without one).
    fn total(&mut self, decision: Option<&str>, has_path: bool) -> Option<Decided> {
        let d = Decided {
            accepted: decision == Some("accept"),
            rejected: decision == Some("reject"),
        };
        let out = &mut self.totals;
        out.total_edits += 1;
        out.accepted += i64::from(d.accepted);
        out.rejected += i64::from(d.rejected);
        out.edits_without_path += i64::from(!has_path);
        has_path.then_some(d)
    }

    /// Counts one edit in the totals and in its file's row.
    fn count(
        &mut self,
        decision: Option<&str>,
        path: Option<&str>,
        session: Option<i64>,
        developer: Option<u32>,
        tool: &'static str,
    ) {
        let (Some(d), Some(path)) = (self.total(decision, path.is_some()), path) else {
            return;
        };
        // One lookup for a file already seen, a copy of the path only for
        // a new one.
        if let Some(a) = self.files.get_mut(path) {
            a.add(d, session, developer, tool_bit(tool));
        } else {
            let mut a = Acc::default();
            a.add(d, session, developer, tool_bit(tool));
            self.files.insert(path.to_owned(), a);
        }
    }

    /// The answer, its files cut to the `top` most edited (repository and
    /// branch filters applied per folded edit). Only the files kept are
    /// turned into rows.
    pub fn finish(mut self, f: &Filter, top: usize) -> TopEditedFiles {
        for e in std::mem::take(&mut self.edits).into_values() {
            if f.repository.as_ref().is_some_and(|r| !e.repos.contains(r))
                || f.branch.as_ref().is_some_and(|b| !e.branches.contains(b))
            {
                continue;
            }
            let decision = e
                .decision_event
                .or(e.decision_span)
                .or_else(|| e.has_result.then(|| "accept".to_string()));
            let path = e.path_result.or(e.path_span);
            self.count(
                decision.as_deref(),
                path.as_deref(),
                e.session,
                e.developer,
                e.tool,
            );
        }
        fn distinct<T: Ord + Copy>(mut v: SmallVec<[T; 2]>) -> i64 {
            v.sort_unstable();
            v.dedup();
            v.len() as i64
        }
        let mut out = self.totals;
        out.file_count = self.files.len() as i64;
        let mut kept: Vec<(String, Acc)> = self.files.into_iter().collect();
        let order = |a: &(String, Acc), b: &(String, Acc)| {
            b.1.edits.cmp(&a.1.edits).then_with(|| a.0.cmp(&b.0))
        };
        if top < kept.len() {
            if let Some(last) = top.checked_sub(1) {
                kept.select_nth_unstable_by(last, order);
            }
            kept.truncate(top);
        }
        kept.sort_unstable_by(order);
        out.files = kept
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
                tools: tool_names(a.tools),
            })
            .collect();
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
        // So is the long edits' index, whose literal is LONG_NS.
        let long = format!("last_ns - first_ns >= {}", edits::LONG_NS);
        assert!(
            include_str!("../store/schema_v7.sql").contains(&long),
            "{long}"
        );

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
    /// The answer cut to its first files keeps the order (most edits, then
    /// path, across the cut's tie) and the totals of every file.
    #[test]
    fn the_cut_keeps_the_first_files_and_every_total() {
        let everyone = Filter::new(crate::query::visible::testing::visible(&[]));
        // a.rs 3 edits, b.rs and c.rs 2 each (a tie at the cut), d.rs 1.
        let fold = || {
            let mut edits = Edits::default();
            let files = [
                "a.rs", "c.rs", "b.rs", "d.rs", "a.rs", "b.rs", "c.rs", "a.rs",
            ];
            for (i, path) in files.iter().enumerate() {
                let id = format!("use{i}");
                edits.add_event(EventEdit {
                    tool_use_id: Some(&id),
                    record: i as i64,
                    result: true,
                    tool: Some("Edit"),
                    file_path: Some((*path).into()),
                    decision: None,
                    developer: Some("dev@example.com"),
                    session: Some(i as i64 % 2),
                    repos: [None, None],
                    branch: None,
                });
            }
            edits
        };
        let all = fold().finish(&everyone, usize::MAX);
        let names = |a: &TopEditedFiles| -> Vec<(String, i64)> {
            a.files
                .iter()
                .map(|f| (f.file_path.clone(), f.edits))
                .collect()
        };
        let want = |n: usize| -> Vec<(String, i64)> {
            [("a.rs", 3), ("b.rs", 2), ("c.rs", 2), ("d.rs", 1)][..n]
                .iter()
                .map(|(p, e)| ((*p).to_string(), *e))
                .collect()
        };
        assert_eq!(names(&all), want(4));
        for top in [0, 1, 2, 3, 4, 9] {
            let cut = fold().finish(&everyone, top);
            assert_eq!(names(&cut), want(top.min(4)), "top {top}");
            assert_eq!(cut.files[..], all.files[..top.min(4)], "top {top}");
            assert_eq!(
                (cut.file_count, cut.total_edits, cut.accepted),
                (4, 8, 8),
                "top {top}"
            );
        }
        // a.rs was edited in both sessions (uses 0, 4 and 7).
        assert_eq!(all.files[0].sessions, 2);
    }

    /// Paths are found by number whether few are asked (one lookup each)
    /// or many (one pass); a number without a path is left out.
    #[test]
    fn file_paths_by_lookup_or_by_pass() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::migrate(&conn).unwrap();
        for i in 1..=100 {
            conn.execute(
                "INSERT INTO edit_files (id, path) VALUES (?1, ?2)",
                rusqlite::params![i, format!("/f{i}.rs")],
            )
            .unwrap();
        }
        conn.execute("DELETE FROM edit_files WHERE id = 7", [])
            .unwrap();
        let few = file_paths(&conn, &[3, 7, 90]).unwrap();
        assert_eq!(few, vec![(3, "/f3.rs".into()), (90, "/f90.rs".into())]);
        let many: Vec<i64> = (2..=99).collect();
        let found = file_paths(&conn, &many).unwrap();
        assert_eq!(found.len(), 97);
        assert_eq!(found[0], (2, "/f2.rs".to_string()));
        assert!(
            found
                .iter()
                .all(|(n, p)| *p == format!("/f{n}.rs") && *n != 7)
        );
        assert!(file_paths(&conn, &[]).unwrap().is_empty());
    }

    mod whole_edits {
        //! The `edits` rows against folding every record: the same answer
        //! for every range cut between the records, edits split across
        //! batches, retried, mixed, long, with spans, and after a prune.
        use std::sync::Arc;
        use std::time::Duration;

        use super::super::*;
        use crate::query::fixture::utc;
        use crate::query::visible::testing::visible;
        use crate::rows::{Batch, Context, ContextGroup, EventRow, IdentityKind, SpanRow};
        use crate::store::{Store, StoreOptions};

        const MIN: i64 = 60_000_000_000;
        /// A whole UTC hour.
        const T0: i64 = 490_000 * 3_600_000_000_000;

        fn context(key: u8, session: &str, developer: &str) -> Arc<Context> {
            Arc::new(Context {
                key: [key; 16],
                agent: Some(crate::agent::Agent::ClaudeCode),
                agent_version: None,
                service_name: Some("claude-code".into()),
                scope_name: "com.anthropic.claude_code.events".into(),
                scope_version: "2.1.330".into(),
                session_id: Some(session.into()),
                developer: Some(developer.into()),
                developer_kind: Some(IdentityKind::Email),
                user_email: Some(developer.into()),
                user_account_uuid: None,
                user_id: None,
                organization_id: None,
                terminal_type: None,
                app_version: None,
                resource_attrs: Default::default(),
                shared_attrs: Default::default(),
            })
        }

        /// Record `n` of an edit: a decision (`Some(decision)`) or a result
        /// (`None`, with `path`).
        fn edit(
            n: u8,
            minute: i64,
            tool: &str,
            tool_use: Option<&str>,
            decision: Option<&str>,
            path: Option<&str>,
        ) -> EventRow {
            EventRow {
                dedup: [n; 16],
                time_ns: T0 + minute * MIN,
                observed_ns: T0 + minute * MIN,
                event_name: if decision.is_some() {
                    "tool_decision"
                } else {
                    "tool_result"
                }
                .into(),
                tool_name: Some(tool.into()),
                tool_use_id: tool_use.map(Into::into),
                decision: decision.map(Into::into),
                file_path: if decision.is_some() {
                    None
                } else {
                    path.map(Into::into)
                },
                ..EventRow::default()
            }
        }

        fn batch(events: Vec<(&Arc<Context>, Vec<EventRow>)>, spans: Vec<SpanRow>) -> Batch {
            fn group<T>(context: &Arc<Context>, rows: Vec<T>) -> ContextGroup<T> {
                ContextGroup {
                    context: context.clone(),
                    rows,
                }
            }
            let a = context(1, "s1", "alice@example.com");
            Batch {
                events: events.into_iter().map(|(c, rows)| group(c, rows)).collect(),
                metric_points: Vec::new(),
                spans: if spans.is_empty() {
                    Vec::new()
                } else {
                    vec![group(&a, spans)]
                },
            }
        }

        fn span(n: u8, minute: i64, tool_use: Option<&str>, path: &str) -> SpanRow {
            SpanRow {
                dedup: [n; 16],
                trace_id: vec![7; 16],
                span_id: vec![n; 8],
                name: "claude_code.tool".into(),
                start_ns: T0 + minute * MIN,
                end_ns: T0 + minute * MIN + 1,
                tool_name: Some("Edit".into()),
                tool_use_id: tool_use.map(Into::into),
                file_path: Some(path.into()),
                ..SpanRow::default()
            }
        }

        async fn both(
            store: &Store,
            since: i64,
            until: i64,
            f: Filter,
            tool: Option<&'static str>,
        ) -> (TopEditedFiles, TopEditedFiles) {
            store
                .read(Duration::from_secs(10), move |conn| {
                    let range = utc(since, until);
                    let rows = top_edited_files(conn, &range, &f, tool, usize::MAX).unwrap();
                    let spans = span_records(conn, &range, &f, tool).unwrap();
                    let folded =
                        with_spans(events_of_range(conn, &range, &f, tool).unwrap(), &spans)
                            .finish(&f, usize::MAX);
                    Ok((rows, folded))
                })
                .await
                .unwrap()
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn rows_answer_as_the_records_fold() {
            let dir = tempfile::tempdir().unwrap();
            let opts = StoreOptions {
                readers: 1,
                queue_requests: 64,
                max_transaction_records: 1_000,
                queue_deadline: Duration::from_secs(2),
            };
            let store = Store::open(dir.path(), opts).unwrap();
            let a = context(1, "s1", "alice@example.com");
            let b = context(2, "s2", "bob@example.com");
            let first = batch(
                vec![
                    (
                        &a,
                        vec![
                            // Whole in one batch.
                            edit(1, 10, "Edit", Some("t1"), Some("accept"), None),
                            edit(2, 11, "Edit", Some("t1"), None, Some("/a.rs")),
                            // Rejected: no result.
                            edit(3, 20, "Edit", Some("t2"), Some("reject"), None),
                            // Its result comes in the next batch, past the hour.
                            edit(4, 50, "Write", Some("t3"), Some("accept"), None),
                            // Long: decided at minute 5, result three hours on.
                            edit(5, 5, "Edit", Some("t4"), Some("accept"), None),
                            // Two decisions: mixed.
                            edit(6, 30, "Edit", Some("t5"), Some("accept"), None),
                            edit(7, 31, "Edit", Some("t5"), Some("reject"), None),
                            // Without tool use ids: an edit each.
                            edit(8, 40, "Edit", None, None, Some("/c.rs")),
                            edit(9, 41, "Edit", None, Some("reject"), None),
                            // Its result comes from another context: mixed.
                            edit(10, 42, "Edit", Some("t6"), Some("accept"), None),
                            // Has a span too.
                            edit(11, 44, "Edit", Some("t7"), Some("reject"), None),
                            // Not an edit tool.
                            edit(12, 45, "Bash", Some("t8"), None, Some("/x.sh")),
                            // The only edit of its file, before every range
                            // asked and gone with the prune (whole hours).
                            edit(16, -30, "Write", None, None, Some("/gone.rs")),
                        ],
                    ),
                    (
                        &b,
                        vec![edit(13, 43, "Edit", Some("t6"), None, Some("/a.rs"))],
                    ),
                ],
                vec![
                    span(14, 44, Some("t7"), "/d.rs"),
                    span(15, 46, None, "/e.rs"),
                ],
            );
            store.write(first.clone()).await.unwrap();
            // The same batch again (an exporter's retry) counts once.
            store.write(first).await.unwrap();
            store
                .write(batch(
                    vec![(
                        &a,
                        vec![
                            edit(20, 70, "Write", Some("t3"), None, Some("/b.rs")),
                            edit(21, 185, "Edit", Some("t4"), None, Some("/a.rs")),
                            edit(22, 32, "Edit", Some("t5"), None, Some("/a.rs")),
                        ],
                    )],
                    Vec::new(),
                ))
                .await
                .unwrap();
            let everyone = Filter::new(visible(&[]));
            // All data, by hand: t1..t7, the two loose events and the loose span.
            let (all, _) = both(&store, T0, T0 + 5 * 60 * MIN, everyone.clone(), None).await;
            assert_eq!(
                (
                    all.total_edits,
                    all.accepted,
                    all.rejected,
                    all.edits_without_path
                ),
                (10, 5, 4, 2),
                "{all:?}"
            );
            let a_rs = all.files.iter().find(|f| f.file_path == "/a.rs").unwrap();
            assert_eq!(
                (a_rs.edits, a_rs.accepted, a_rs.sessions, a_rs.developers),
                (4, 3, 2, 2)
            );
            let minutes = [
                0, 6, 10, 11, 12, 25, 31, 35, 42, 43, 44, 45, 50, 55, 65, 70, 71, 120, 185, 186,
                300,
            ];
            let bob = Filter {
                developer: Some("bob@example.com".into()),
                ..Filter::new(visible(&[]))
            };
            let alice_only = Filter::new(visible(&["alice@example.com"]));
            let session = Filter {
                session_id: Some("s1".into()),
                ..Filter::new(visible(&[]))
            };
            let mut compared = 0;
            for (pass, cutoff) in [(0, None), (1, Some(T0 + 8 * MIN))] {
                if let Some(cutoff) = cutoff {
                    store.prune(cutoff).await.unwrap();
                    // The paths no edit names any more went with them.
                    let (kept, named): (Vec<String>, Vec<String>) = store
                        .read(Duration::from_secs(10), |conn| {
                            let list = |sql: &str| -> Vec<String> {
                                let mut stmt = conn.prepare(sql).unwrap();
                                stmt.query_map([], |r| r.get(0))
                                    .unwrap()
                                    .map(Result::unwrap)
                                    .collect()
                            };
                            Ok((
                                list("SELECT path FROM edit_files ORDER BY path"),
                                list(
                                    "SELECT DISTINCT f.path FROM edits e JOIN edit_files f \
                                     ON f.id = e.file ORDER BY f.path",
                                ),
                            ))
                        })
                        .await
                        .unwrap();
                    assert_eq!(kept, named);
                    assert_eq!(kept, ["/a.rs", "/b.rs", "/c.rs"]);
                }
                for (i, since) in minutes.iter().enumerate() {
                    for until in &minutes[i + 1..] {
                        for (f, tool) in [
                            (everyone.clone(), None),
                            (everyone.clone(), Some("Edit")),
                            (bob.clone(), None),
                            (alice_only.clone(), None),
                            (session.clone(), Some("Write")),
                        ] {
                            let (rows, folded) =
                                both(&store, T0 + since * MIN, T0 + until * MIN, f, tool).await;
                            assert_eq!(
                                rows, folded,
                                "pass {pass}, minutes {since}..{until}, {tool:?}"
                            );
                            compared += rows.total_edits;
                        }
                    }
                }
            }
            assert!(compared > 500, "{compared}");
            store.close().await.unwrap();
        }
    }
}

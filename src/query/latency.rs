//! Exact latency histograms (ms → count) for API requests and tools, and the
//! `tool_latency` question.
//!
//! Whole days come from `api_latency_daily`/`tool_latency_daily`, whole
//! hours from `api_latency_hourly`/`tool_latency_hourly` (one text
//! histogram per day or hour, developer and model or tool, see
//! [`crate::store::hist`]), the partial edge hours and filters the
//! histograms cannot express (team, resource attribute, session,
//! event-level filters) from raw events. Percentiles are nearest-rank over
//! the exact histogram (see [`super::nearest_rank`]).

use std::collections::BTreeMap;

use rusqlite::types::Value;

use super::filter::{Filter, Sql, int, text};
use super::plan;
use super::time::TimeRange;
use super::{LatencySummary, QueryError};
use crate::store::hist;

/// Histogram per group key: duration ms → (count, failures).
pub type Hists = BTreeMap<String, BTreeMap<i64, (i64, i64)>>;

fn hist_usable(f: &Filter) -> bool {
    f.team.is_none()
        && f.attribute.is_none()
        && f.session_id.is_none()
        && f.agent.is_none()
        && !f.needs_raw()
}

/// Which histogram: API requests by model, or tool results by tool name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `api_request` durations by model.
    Api,
    /// `tool_result` durations by tool name.
    Tool,
}

/// Histograms while they are read: entries are appended as they come and
/// sorted and summed once at the end. A month of day histograms holds about
/// 10^5 entries; inserting each into an ordered map as it was read cost most
/// of the question.
#[derive(Default)]
struct Gathered(
    std::collections::HashMap<String, Vec<(i64, i64, i64)>, foldhash::fast::RandomState>,
);

impl Gathered {
    /// Appends entries to key `k`, allocating only for a key not seen yet.
    fn add(&mut self, k: &str, entries: impl IntoIterator<Item = (i64, i64, i64)>) {
        match self.0.get_mut(k) {
            Some(v) => v.extend(entries),
            None => {
                self.0.insert(k.to_owned(), entries.into_iter().collect());
            }
        }
    }

    /// The histograms: entries of equal duration summed.
    fn finish(self) -> Hists {
        self.0
            .into_iter()
            .map(|(k, mut v)| {
                v.sort_unstable_by_key(|e| e.0);
                let mut merged: Vec<(i64, (i64, i64))> = Vec::with_capacity(v.len());
                for (ms, n, f) in v {
                    match merged.last_mut() {
                        Some((last, (ln, lf))) if *last == ms => {
                            *ln += n;
                            *lf += f;
                        }
                        _ => merged.push((ms, (n, f))),
                    }
                }
                (k, merged.into_iter().collect())
            })
            .collect()
    }
}

fn collect_raw(
    conn: &rusqlite::Connection,
    sql: &Sql,
    out: &mut Gathered,
) -> Result<(), QueryError> {
    let mut stmt = conn.prepare(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(sql.params.iter()))?;
    // Rows are nearly one per request: read the key in place.
    while let Some(r) = rows.next()? {
        let k = r
            .get_ref(0)?
            .as_str_or_null()
            .map_err(rusqlite::Error::from)?
            .unwrap_or_default();
        let ms: i64 = r.get(1)?;
        let n: i64 = r.get(2)?;
        let fails = r.get::<_, Option<i64>>(3)?.unwrap_or(0);
        out.add(k, [(ms, n, fails)]);
    }
    Ok(())
}

fn raw(kind: Kind, from: i64, to: i64, f: &Filter, tool: Option<&str>) -> Sql {
    let mut sql = Sql::default();
    let (key, name) = match kind {
        Kind::Api => ("COALESCE(e.model, '')", "api_request"),
        Kind::Tool => ("COALESCE(e.tool_name, '')", "tool_result"),
    };
    sql.bind(
        &format!(
            "SELECT {key}, e.duration_ms, COUNT(*), SUM(CASE WHEN e.success = 0 THEN 1 ELSE 0 END) \
             FROM events e JOIN contexts c ON c.id = e.context_id \
             WHERE e.time_ns >= ? AND e.time_ns < ? AND e.event_name = ? AND e.duration_ms IS NOT NULL"
        ),
        [int(from), int(to), text(name)],
    );
    sql.push(super::plan::AGENT_RECORDS);
    f.context_conditions(&mut sql);
    match kind {
        Kind::Api => f.event_conditions(&mut sql),
        Kind::Tool => f.event_only_conditions(&mut sql),
    }
    if let Some(t) = tool {
        sql.bind(" AND e.tool_name = ?", [text(t)]);
    }
    sql.push(&format!(" GROUP BY {key}, e.duration_ms"));
    sql
}

/// Whole hours (`hourly`) or whole days (not `hourly`) of the histograms:
/// `[from, to)` in hour or day numbers.
fn rollup(kind: Kind, hourly: bool, (from, to): (i64, i64), f: &Filter, tool: Option<&str>) -> Sql {
    let mut sql = Sql::default();
    let (table, key) = match (kind, hourly) {
        (Kind::Api, true) => ("api_latency_hourly", "model"),
        (Kind::Tool, true) => ("tool_latency_hourly", "tool_name"),
        (Kind::Api, false) => ("api_latency_daily", "model"),
        (Kind::Tool, false) => ("tool_latency_daily", "tool_name"),
    };
    let bucket = if hourly { "hour" } else { "day" };
    // Names come from the fixed table above.
    sql.bind(
        &format!("SELECT {key}, hist FROM {table} WHERE {bucket} >= ? AND {bucket} < ?"),
        [int(from), int(to)],
    );
    f.developer_conditions(&mut sql, "developer");
    if let (Kind::Api, Some(m)) = (kind, &f.model) {
        sql.bind(" AND model = ?", [text(m)]);
    }
    if let (Kind::Tool, Some(t)) = (kind, tool) {
        sql.bind(" AND tool_name = ?", [text(t)]);
    }
    // No GROUP BY: `Gathered` sums entries of equal keys.
    sql
}

/// Adds hour or day histograms (key, text form) into `out`.
fn collect_texts(
    conn: &rusqlite::Connection,
    sql: &Sql,
    out: &mut Gathered,
) -> Result<(), QueryError> {
    let mut stmt = conn.prepare(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(sql.params.iter()))?;
    while let Some(r) = rows.next()? {
        let k = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        let text = r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
        out.add(k, hist::entries(text));
    }
    Ok(())
}

/// Exact histograms for `kind` in `range`, keyed by model or tool name:
/// whole UTC days from the day histograms, whole hours from the hourly
/// ones, the edges (or everything, under filters the histograms do not
/// carry) from raw events.
pub fn histograms(
    conn: &rusqlite::Connection,
    kind: Kind,
    range: &TimeRange,
    f: &Filter,
    tool: Option<&str>,
) -> Result<Hists, QueryError> {
    let mut out = Gathered::default();
    let tiers = if hist_usable(f) {
        plan::tiers(range)
    } else {
        plan::Tiers {
            days: None,
            hours: Vec::new(),
            raw: plan::segments(range, true).raw,
        }
    };
    if let Some(days) = tiers.days {
        collect_texts(conn, &rollup(kind, false, days, f, tool), &mut out)?;
    }
    for hours in tiers.hours {
        collect_texts(conn, &rollup(kind, true, hours, f, tool), &mut out)?;
    }
    for (from, to) in tiers.raw {
        collect_raw(conn, &raw(kind, from, to, f, tool), &mut out)?;
    }
    Ok(out.finish())
}

/// Counts only, for [`LatencySummary::from_hist`].
pub fn counts(h: &BTreeMap<i64, (i64, i64)>) -> BTreeMap<i64, i64> {
    h.iter().map(|(k, (n, _))| (*k, *n)).collect()
}

/// One tool's latency.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct ToolLatency {
    /// Tool name as Claude Code logs it (`mcp_tool` for MCP tools).
    pub tool_name: String,
    /// MCP server (MCP breakdown rows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_server: Option<String>,
    /// MCP tool (MCP breakdown rows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp_tool: Option<String>,
    /// Tool results with a duration.
    pub calls: i64,
    /// Failed results.
    pub failures: i64,
    /// Successful share of calls, 0..1.
    pub success_rate: Option<f64>,
    /// Exact latency summary.
    #[serde(flatten)]
    pub latency: LatencySummary,
}

fn tool_row(tool_name: String, h: &BTreeMap<i64, (i64, i64)>) -> ToolLatency {
    let latency = LatencySummary::from_hist(&counts(h));
    let failures: i64 = h.values().map(|(_, f)| f).sum();
    ToolLatency {
        tool_name,
        mcp_server: None,
        mcp_tool: None,
        calls: latency.count,
        failures,
        success_rate: (latency.count > 0)
            .then(|| (latency.count - failures) as f64 / latency.count as f64),
        latency,
    }
}

/// `tool_latency`: per tool, busiest first; plus MCP calls by server/tool.
pub fn tool_latency(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    f: &Filter,
    tool: Option<&str>,
) -> Result<(Vec<ToolLatency>, Vec<ToolLatency>), QueryError> {
    let rows = tool_rows(histograms(conn, Kind::Tool, range, f, tool)?);
    // MCP calls by server/tool come from raw rows (the histogram has no MCP
    // columns); skip that scan when no MCP tool ran in the range.
    if !any_mcp(&rows) {
        return Ok((rows, Vec::new()));
    }
    // The last condition is the WHERE of the partial index `events_mcp_time`,
    // word for word, so that this reads only MCP rows.
    let mut sql = Sql::default();
    sql.bind(
        "SELECT COALESCE(e.mcp_server, ''), COALESCE(e.mcp_tool, ''), e.duration_ms, COUNT(*), \
         SUM(CASE WHEN e.success = 0 THEN 1 ELSE 0 END) FROM events e JOIN contexts c ON c.id = e.context_id \
         WHERE e.time_ns >= ? AND e.time_ns < ? AND e.event_name = 'tool_result' \
         AND e.duration_ms IS NOT NULL AND (e.mcp_server IS NOT NULL OR e.mcp_tool IS NOT NULL)",
        [int(range.since_ns), int(range.until_ns)],
    );
    sql.push(super::plan::AGENT_RECORDS);
    f.context_conditions(&mut sql);
    f.event_only_conditions(&mut sql);
    if let Some(t) = tool {
        sql.bind(" AND e.tool_name = ?", [Value::Text(t.to_string())]);
    }
    sql.push(" GROUP BY 1, 2, 3");
    let mut stmt = conn.prepare(&sql.text)?;
    let mut mcp = McpHists::new();
    let it = stmt.query_map(rusqlite::params_from_iter(sql.params.iter()), |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<i64>>(4)?.unwrap_or(0),
        ))
    })?;
    for r in it {
        let (s, t, ms, n, fl) = r?;
        hist::add(mcp.entry((s, t)).or_default(), ms, n, fl);
    }
    Ok((rows, mcp_rows(mcp)))
}

/// Histograms per MCP (server, tool).
pub type McpHists = BTreeMap<(String, String), BTreeMap<i64, (i64, i64)>>;

/// One row per tool, busiest first.
pub fn tool_rows(hists: Hists) -> Vec<ToolLatency> {
    let mut rows: Vec<ToolLatency> = hists.into_iter().map(|(k, h)| tool_row(k, &h)).collect();
    rows.sort_by(|a, b| {
        b.calls
            .cmp(&a.calls)
            .then_with(|| a.tool_name.cmp(&b.tool_name))
    });
    rows
}

/// True when an MCP tool is among the rows (the MCP breakdown is worth asking).
pub fn any_mcp(rows: &[ToolLatency]) -> bool {
    rows.iter()
        .any(|r| r.tool_name == "mcp_tool" || r.tool_name.starts_with("mcp__"))
}

/// One row per MCP server and tool.
pub fn mcp_rows(mcp: McpHists) -> Vec<ToolLatency> {
    mcp.into_iter()
        .map(|((s, t), h)| {
            let mut row = tool_row("mcp_tool".to_string(), &h);
            row.mcp_server = Some(s);
            row.mcp_tool = Some(t);
            row
        })
        .collect()
}

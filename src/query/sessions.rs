//! `list_sessions`: sessions active in a range with their running totals
//! (kept by the writer in `sessions`), sortable by an allow-listed key.
//! Cost and tokens come from `api_request` totals when the session has any,
//! else from its metric totals.

use super::QueryError;
use super::filter::{Filter, Sql, int, text};
use super::plan::{SESSION_FROM_EVENTS, session_from_events};
use super::time::TimeRange;

/// Sort keys (largest/newest first).
pub const SORT_KEYS: [&str; 7] = [
    "start",
    "cost",
    "duration",
    "prompts",
    "tokens",
    "errors",
    "tool_calls",
];

/// The SQL a sort key orders by (sessions alias `s`); cost and tokens from
/// the session's counted source ([`SESSION_FROM_EVENTS`]).
fn order_sql(key: &str) -> Option<String> {
    Some(match key {
        "start" => "s.first_ns".into(),
        "cost" => {
            format!("CASE WHEN {SESSION_FROM_EVENTS} THEN s.cost_usd ELSE s.metric_cost_usd END")
        }
        "duration" => "(s.last_ns - s.first_ns)".into(),
        "prompts" => "s.prompts".into(),
        "tokens" => format!(
            "CASE WHEN {SESSION_FROM_EVENTS} THEN s.input_tokens + s.output_tokens + s.cache_read_tokens + s.cache_creation_tokens \
             ELSE s.metric_input_tokens + s.metric_output_tokens + s.metric_cache_read_tokens + s.metric_cache_creation_tokens END"
        ),
        "errors" => "(s.api_errors + s.tool_failures)".into(),
        "tool_calls" => "s.tool_calls".into(),
        _ => return None,
    })
}

/// One session.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct SessionSummary {
    /// Claude Code `session.id`.
    pub session_id: String,
    /// Developer identity.
    pub developer: Option<String>,
    /// Which identity `developer` is.
    pub developer_kind: Option<String>,
    /// First record, in the requested zone.
    pub start: String,
    /// Last record, in the requested zone.
    pub end: String,
    /// Seconds between first and last record.
    pub duration_s: f64,
    /// Model with the highest cost in the session.
    pub main_model: Option<String>,
    /// Prompts.
    pub prompts: i64,
    /// API requests.
    pub api_requests: i64,
    /// API errors.
    pub api_errors: i64,
    /// Tool results.
    pub tool_calls: i64,
    /// Failed tool results.
    pub tool_failures: i64,
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cache read tokens.
    pub cache_read_tokens: i64,
    /// Cache creation tokens.
    pub cache_creation_tokens: i64,
    /// Cost in USD (Claude Code's estimate).
    pub cost_usd: f64,
    /// `events` (api_request totals) or `metrics` (cost/token metrics only).
    pub source: String,
}

/// Session columns read by [`read_session`] (alias `s`).
pub const SESSION_COLUMNS: &str = "s.id, s.session_id, s.developer, s.developer_kind, s.first_ns, s.last_ns, \
    s.prompts, s.api_requests, s.api_errors, s.tool_calls, s.tool_failures, s.input_tokens, s.output_tokens, \
    s.cache_read_tokens, s.cache_creation_tokens, s.cost_usd, s.metric_cost_usd, s.metric_input_tokens, \
    s.metric_output_tokens, s.metric_cache_read_tokens, s.metric_cache_creation_tokens";

/// Reads a row selected with [`SESSION_COLUMNS`]: `(row id, summary)`.
pub fn read_session(
    r: &rusqlite::Row<'_>,
    range: &TimeRange,
) -> rusqlite::Result<(i64, SessionSummary)> {
    let first: i64 = r.get(4)?;
    let last: i64 = r.get(5)?;
    let api: i64 = r.get(7)?;
    let events = session_from_events(api);
    let pick = |ev: usize, me: usize| -> rusqlite::Result<i64> {
        if events {
            r.get(ev)
        } else {
            Ok(r.get::<_, f64>(me)?.round() as i64)
        }
    };
    Ok((
        r.get(0)?,
        SessionSummary {
            session_id: r.get(1)?,
            developer: r.get(2)?,
            developer_kind: r.get(3)?,
            start: range.show(first),
            end: range.show(last),
            duration_s: (last - first) as f64 / 1e9,
            main_model: None,
            prompts: r.get(6)?,
            api_requests: api,
            api_errors: r.get(8)?,
            tool_calls: r.get(9)?,
            tool_failures: r.get(10)?,
            input_tokens: pick(11, 17)?,
            output_tokens: pick(12, 18)?,
            cache_read_tokens: pick(13, 19)?,
            cache_creation_tokens: pick(14, 20)?,
            cost_usd: if events { r.get(15)? } else { r.get(16)? },
            source: if events { "events" } else { "metrics" }.to_string(),
        },
    ))
}

/// The model with the highest cost (then requests) in a session.
pub fn main_model(
    conn: &rusqlite::Connection,
    session_row: i64,
    events: bool,
) -> Result<Option<String>, QueryError> {
    let sql = if events {
        "SELECT h.model FROM api_hourly h JOIN contexts c ON c.id = h.context_id WHERE c.session_ref = ?1 \
         AND h.requests > 0 GROUP BY h.model ORDER BY SUM(h.cost_usd) DESC, SUM(h.requests) DESC, h.model LIMIT 1"
    } else {
        "SELECT h.model FROM metric_hourly h JOIN contexts c ON c.id = h.context_id WHERE c.session_ref = ?1 \
         AND h.name = 'claude_code.cost.usage' GROUP BY h.model ORDER BY SUM(h.value) DESC, h.model LIMIT 1"
    };
    let mut stmt = conn.prepare(sql)?;
    let mut rows = stmt.query([session_row])?;
    Ok(match rows.next()? {
        Some(r) => r.get::<_, Option<String>>(0)?.filter(|m| !m.is_empty()),
        None => None,
    })
}

/// Developer restriction and developer on `sessions` alias `s`; other
/// context filters through the session's contexts.
pub fn session_conditions(f: &Filter, sql: &mut Sql) {
    f.developer_conditions(sql, "s.developer");
    if let Some(id) = &f.session_id {
        sql.bind(" AND s.session_id = ?", [text(id)]);
    }
    if f.team.is_some() || f.attribute.is_some() {
        let inner = Filter {
            team: f.team.clone(),
            attribute: f.attribute.clone(),
            ..Filter::new(f.visible.clone())
        };
        sql.push(" AND EXISTS (SELECT 1 FROM contexts c WHERE c.session_ref = s.id");
        inner.context_conditions(sql);
        sql.push(")");
    }
    if let Some(m) = &f.model {
        // Sessions that sent metrics only carry the model on their cost and
        // token metrics.
        sql.bind(
            " AND (EXISTS (SELECT 1 FROM api_hourly h JOIN contexts c ON c.id = h.context_id \
             WHERE c.session_ref = s.id AND h.model = ?) \
             OR EXISTS (SELECT 1 FROM metric_hourly h JOIN contexts c ON c.id = h.context_id \
             WHERE c.session_ref = s.id AND h.model = ?))",
            [text(m), text(m)],
        );
    }
}

/// Sessions overlapping `range`, sorted by `sort` (a key of [`SORT_KEYS`]).
pub fn list_sessions(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    f: &Filter,
    sort: &str,
    offset: u64,
    limit: usize,
) -> Result<(Vec<SessionSummary>, bool), QueryError> {
    let Some(order) = order_sql(sort) else {
        return Err(QueryError::Invalid(format!(
            "sort_by {sort:?} is not supported; use one of {}",
            SORT_KEYS.join(", ")
        )));
    };
    let mut sql = Sql::default();
    sql.bind(
        &format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.first_ns < ? AND s.last_ns >= ?"
        ),
        [int(range.until_ns), int(range.since_ns)],
    );
    session_conditions(f, &mut sql);
    sql.push(&format!(
        " ORDER BY {order} DESC, s.id DESC LIMIT ? OFFSET ?"
    ));
    sql.params.push(int(limit as i64 + 1));
    sql.params.push(int(offset as i64));
    let mut stmt = conn.prepare(&sql.text)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(sql.params.iter()), |r| {
        read_session(r, range)
    })?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r?);
    }
    let more = out.len() > limit;
    out.truncate(limit);
    let mut list = Vec::with_capacity(out.len());
    for (id, mut s) in out {
        s.main_model = main_model(conn, id, s.source == "events")?;
        list.push(s);
    }
    Ok((list, more))
}

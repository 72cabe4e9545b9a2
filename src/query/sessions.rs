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
    /// The agent's session id (`session.id`; Codex `conversation.id`).
    pub session_id: String,
    /// The coding agent of the session (`claude_code`, `codex`, `gemini_cli`, `opencode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
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
    /// Cost in USD (the agent's estimate, else computed from the price table).
    pub cost_usd: f64,
    /// `events` (api_request totals) or `metrics` (cost/token metrics only).
    pub source: String,
    /// True when records of other developers carry this session id: the
    /// numbers are then those of the records this caller may see.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shared: bool,
}

/// A session's sums as an engine reads them, before the choice between
/// its events and its metrics ([`SessionSums::summary`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionSums {
    /// The developer the session is shown under.
    pub developer: Option<String>,
    /// Which identity `developer` is.
    pub developer_kind: Option<String>,
    /// First and last record (`None`: the part holds no event).
    pub span: Option<(i64, i64)>,
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
    /// Input, output, cache read and cache creation tokens of the API requests.
    pub tokens: [i64; 4],
    /// Cost of the API requests.
    pub cost_usd: f64,
    /// Input, output, cache read and cache creation tokens of the token metric.
    pub metric_tokens: [f64; 4],
    /// Cost of the cost metric.
    pub metric_cost_usd: f64,
}

impl SessionSums {
    /// The summary: cost and tokens from the API requests when the part
    /// has any ([`session_from_events`]), else from its metrics.
    pub fn summary(
        self,
        session_id: String,
        agent: Option<String>,
        range: &TimeRange,
        shared: bool,
    ) -> SessionSummary {
        let events = session_from_events(self.api_requests);
        let tokens = if events {
            self.tokens
        } else {
            self.metric_tokens.map(|t| t.round() as i64)
        };
        let show = |t: Option<i64>| t.map(|t| range.show(t)).unwrap_or_default();
        SessionSummary {
            session_id,
            agent,
            developer: self.developer,
            developer_kind: self.developer_kind,
            start: show(self.span.map(|s| s.0)),
            end: show(self.span.map(|s| s.1)),
            duration_s: self.span.map_or(0.0, |(a, b)| (b - a) as f64 / 1e9),
            main_model: None,
            prompts: self.prompts,
            api_requests: self.api_requests,
            api_errors: self.api_errors,
            tool_calls: self.tool_calls,
            tool_failures: self.tool_failures,
            input_tokens: tokens[0],
            output_tokens: tokens[1],
            cache_read_tokens: tokens[2],
            cache_creation_tokens: tokens[3],
            cost_usd: if events {
                self.cost_usd
            } else {
                self.metric_cost_usd
            },
            source: if events { "events" } else { "metrics" }.to_string(),
            shared,
        }
    }
}

/// The main model of a session from `(model, cost, requests)` per model:
/// the highest cost, then requests, then the first name; none when that
/// model is unknown (`''`).
pub fn pick_main_model(models: impl IntoIterator<Item = (String, f64, i64)>) -> Option<String> {
    models
        .into_iter()
        .min_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then(b.2.cmp(&a.2))
                .then_with(|| a.0.cmp(&b.0))
        })
        .map(|m| m.0)
        .filter(|m| !m.is_empty())
}

/// Whether `f` limits the caller to some developers' records, so a session
/// that also holds others' records is shown as the caller's part.
pub fn limited(f: &Filter) -> bool {
    !f.visible.is_everyone() || f.developer.is_some()
}

/// The message for a sort key not in [`SORT_KEYS`].
pub fn unknown_sort(sort: &str) -> QueryError {
    QueryError::Invalid(format!(
        "sort_by {sort:?} is not supported; use one of {}",
        SORT_KEYS.join(", ")
    ))
}

/// The message for a session the caller cannot see (or that does not exist).
pub fn not_visible(session_id: &str) -> QueryError {
    QueryError::NotFound(format!(
        "no session {session_id:?} is visible to this token; list_sessions or search_events show the sessions you can see"
    ))
}

/// Session columns read by [`read_session`] (alias `s`).
pub const SESSION_COLUMNS: &str = "s.id, s.session_id, s.developer, s.developer_kind, s.first_ns, s.last_ns, \
    s.prompts, s.api_requests, s.api_errors, s.tool_calls, s.tool_failures, s.input_tokens, s.output_tokens, \
    s.cache_read_tokens, s.cache_creation_tokens, s.cost_usd, s.metric_cost_usd, s.metric_input_tokens, \
    s.metric_output_tokens, s.metric_cache_read_tokens, s.metric_cache_creation_tokens, s.agent";

/// Reads a row selected with [`SESSION_COLUMNS`]: `(row id, summary)`.
pub fn read_session(
    r: &rusqlite::Row<'_>,
    range: &TimeRange,
) -> rusqlite::Result<(i64, SessionSummary)> {
    let sums = SessionSums {
        developer: r.get(2)?,
        developer_kind: r.get(3)?,
        span: Some((r.get(4)?, r.get(5)?)),
        prompts: r.get(6)?,
        api_requests: r.get(7)?,
        api_errors: r.get(8)?,
        tool_calls: r.get(9)?,
        tool_failures: r.get(10)?,
        tokens: [r.get(11)?, r.get(12)?, r.get(13)?, r.get(14)?],
        cost_usd: r.get(15)?,
        metric_cost_usd: r.get(16)?,
        metric_tokens: [r.get(17)?, r.get(18)?, r.get(19)?, r.get(20)?],
    };
    Ok((r.get(0)?, sums.summary(r.get(1)?, r.get(21)?, range, false)))
}

/// For a caller limited to some developers (`f`'s visibility and developer
/// filter): when session `sref` also holds records of others, its summary
/// from the caller's records alone, marked `shared`; `None` when the whole
/// session is the caller's (or the caller is not limited).
pub fn own_part(
    conn: &rusqlite::Connection,
    f: &Filter,
    sref: i64,
    range: &TimeRange,
    whole: &SessionSummary,
) -> Result<Option<SessionSummary>, QueryError> {
    if !limited(f) {
        return Ok(None);
    }
    let mut mine = Sql::default();
    f.developer_conditions(&mut mine, "c.developer");
    let mut sql = Sql::default();
    sql.bind(
        "SELECT COUNT(*) FROM contexts c WHERE c.session_ref = ? AND NOT COALESCE((1",
        [int(sref)],
    );
    sql.append(mine.clone());
    sql.push("), 0)");
    let others: i64 = conn.query_row(
        &sql.text,
        rusqlite::params_from_iter(sql.params.iter()),
        |r| r.get(0),
    )?;
    if others == 0 {
        return Ok(None);
    }
    let mut sql = Sql::default();
    sql.bind(
        "SELECT MIN(c.developer), MIN(c.developer_kind), MIN(e.time_ns), MAX(e.time_ns), \
         COALESCE(SUM(c.agent IS NOT NULL AND e.event_name = 'user_prompt'), 0), \
         COALESCE(SUM(c.agent IS NOT NULL AND e.event_name = 'api_request'), 0), \
         COALESCE(SUM(c.agent IS NOT NULL AND e.event_name = 'api_error'), 0), \
         COALESCE(SUM(c.agent IS NOT NULL AND e.event_name = 'tool_result'), 0), \
         COALESCE(SUM(c.agent IS NOT NULL AND e.event_name = 'tool_result' AND e.success = 0), 0), \
         COALESCE(SUM(CASE WHEN c.agent IS NOT NULL AND e.event_name = 'api_request' THEN e.input_tokens END), 0), \
         COALESCE(SUM(CASE WHEN c.agent IS NOT NULL AND e.event_name = 'api_request' THEN e.output_tokens END), 0), \
         COALESCE(SUM(CASE WHEN c.agent IS NOT NULL AND e.event_name = 'api_request' THEN e.cache_read_tokens END), 0), \
         COALESCE(SUM(CASE WHEN c.agent IS NOT NULL AND e.event_name = 'api_request' THEN e.cache_creation_tokens END), 0), \
         COALESCE(SUM(CASE WHEN c.agent IS NOT NULL AND e.event_name = 'api_request' THEN e.cost_usd END), 0.0) \
         FROM contexts c LEFT JOIN events e ON e.context_id = c.id WHERE c.session_ref = ?",
        [int(sref)],
    );
    sql.append(mine.clone());
    let mut sums = conn.query_row(
        &sql.text,
        rusqlite::params_from_iter(sql.params.iter()),
        |r| {
            let first: Option<i64> = r.get(2)?;
            let last: Option<i64> = r.get(3)?;
            Ok(SessionSums {
                developer: r.get(0)?,
                developer_kind: r.get(1)?,
                span: first.zip(last),
                prompts: r.get(4)?,
                api_requests: r.get(5)?,
                api_errors: r.get(6)?,
                tool_calls: r.get(7)?,
                tool_failures: r.get(8)?,
                tokens: [r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?],
                cost_usd: r.get(13)?,
                ..SessionSums::default()
            })
        },
    )?;
    if !session_from_events(sums.api_requests) {
        // The caller's part comes from its cost/token metrics.
        let mut sql = Sql::default();
        sql.bind(
            "SELECT ms.name, COALESCE(ms.kind_attr, ''), SUM(p.delta) FROM metric_points p \
             JOIN metric_series ms ON ms.id = p.series_id JOIN contexts c ON c.id = ms.context_id \
             WHERE c.session_ref = ? AND ms.name IN ('claude_code.cost.usage', 'claude_code.token.usage')",
            [int(sref)],
        );
        sql.append(mine);
        sql.push(" GROUP BY 1, 2");
        let mut stmt = conn.prepare(&sql.text)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(sql.params.iter()))?;
        while let Some(r) = rows.next()? {
            let (name, kind, v): (String, String, f64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            match crate::store::usage_slot(&name, &kind) {
                Some(0) => sums.metric_cost_usd += v,
                Some(n) => sums.metric_tokens[n - 1] += v,
                None => {}
            }
        }
    }
    Ok(Some(sums.summary(
        whole.session_id.clone(),
        whole.agent.clone(),
        range,
        true,
    )))
}

/// The model with the highest cost (then requests) among the caller's
/// records of a session (`f`'s developer conditions).
pub fn main_model(
    conn: &rusqlite::Connection,
    f: &Filter,
    session_row: i64,
    events: bool,
) -> Result<Option<String>, QueryError> {
    let mut sql = Sql::default();
    sql.bind(
        if events {
            "SELECT h.model, SUM(h.cost_usd), SUM(h.requests) FROM api_hourly h \
             JOIN contexts c ON c.id = h.context_id WHERE c.session_ref = ? AND h.requests > 0"
        } else {
            "SELECT h.model, SUM(h.value), 0 FROM metric_hourly h JOIN contexts c ON c.id = h.context_id \
             WHERE c.session_ref = ? AND h.name = 'claude_code.cost.usage'"
        },
        [int(session_row)],
    );
    f.developer_conditions(&mut sql, "c.developer");
    sql.push(" GROUP BY h.model");
    let mut stmt = conn.prepare(&sql.text)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(sql.params.iter()), |r| {
        Ok((
            r.get::<_, Option<String>>(0)?.unwrap_or_default(),
            r.get::<_, f64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut models = Vec::new();
    for m in rows {
        models.push(m?);
    }
    Ok(pick_main_model(models))
}

/// Visibility and developer on `sessions` alias `s` (a session is visible
/// when any of its records is); other context filters through the
/// session's contexts.
pub fn session_conditions(f: &Filter, sql: &mut Sql) {
    f.visible.session_condition(sql);
    if let Some(d) = &f.developer {
        sql.bind(
            " AND EXISTS (SELECT 1 FROM contexts cd WHERE cd.session_ref = s.id AND cd.developer = ?)",
            [text(d)],
        );
    }
    if let Some(id) = &f.session_id {
        sql.bind(" AND s.session_id = ?", [text(id)]);
    }
    if let Some(a) = f.agent {
        sql.bind(" AND s.agent = ?", [text(a.as_str())]);
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
        return Err(unknown_sort(sort));
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
        " ORDER BY {order} DESC, s.session_id DESC LIMIT ? OFFSET ?"
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
        if let Some(own) = own_part(conn, f, id, range, &s)? {
            s = own;
        }
        s.main_model = main_model(conn, f, id, s.source == "events")?;
        list.push(s);
    }
    Ok((list, more))
}

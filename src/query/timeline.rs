//! `session_timeline`: one session turn by turn. The session is looked up
//! through the caller's `Visible`, so another developer's session is "not
//! found", never shown; and only the caller's own records of a session are
//! shown (another developer may have sent records under the same id).

use std::collections::BTreeMap;

use super::QueryError;
use super::events::{EventHit, HIT_COLUMNS, read_hit};
use super::filter::{Filter, Sql, int};
use super::page::{Page, Position};
use super::sessions::{
    SESSION_COLUMNS, SessionSummary, main_model, read_session, session_conditions,
};
use super::time::TimeRange;
use super::visible::Visible;

/// One turn (all events sharing a `prompt.id`; events before the first
/// prompt form a turn with no prompt id).
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Turn {
    /// `prompt.id` (none for start-up events).
    pub prompt_id: Option<String>,
    /// First event of the turn, in the requested zone.
    pub start: String,
    /// Events in the turn.
    pub events: i64,
    /// API requests.
    pub api_requests: i64,
    /// API errors.
    pub api_errors: i64,
    /// Tool results.
    pub tool_calls: i64,
    /// Failed tool results.
    pub tool_failures: i64,
    /// Input + output + cache tokens of the turn's API requests.
    pub tokens: i64,
    /// Cost in USD of the turn's API requests (the agents' estimates, else computed).
    pub cost_usd: f64,
    /// Models used.
    pub models: Vec<String>,
}

/// The whole timeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Timeline {
    /// Session totals.
    pub session: SessionSummary,
    /// Turns in order.
    pub turns: Vec<Turn>,
    /// One page of events, in order (time, then `event.sequence`).
    pub events: Page<EventHit>,
}

/// Looks up `session_id` for the caller and returns its timeline page.
pub fn session_timeline(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    visible: &Visible,
    session_id: &str,
    offset: u64,
    limit: usize,
    content: bool,
) -> Result<Timeline, QueryError> {
    let f = Filter {
        session_id: Some(session_id.to_string()),
        ..Filter::new(visible.clone())
    };
    let mut sql = Sql::default();
    sql.push(&format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE 1"));
    session_conditions(&f, &mut sql);
    let mut stmt = conn.prepare(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(sql.params.iter()))?;
    let Some(row) = rows.next()? else {
        return Err(QueryError::NotFound(format!(
            "no session {session_id:?} is visible to this token; list_sessions or search_events show the sessions you can see"
        )));
    };
    let (sref, mut session) = read_session(row, range)?;
    drop(rows);
    if let Some(own) = super::sessions::own_part(conn, &f, sref, range, &session)? {
        session = own;
    }
    // Only the caller's records of the session (another developer may have
    // sent records under the same session id).
    let mut mine = Sql::default();
    f.developer_conditions(&mut mine, "c.developer");
    session.main_model = main_model(conn, sref, session.source == "events")?;

    let order = " ORDER BY e.time_ns, e.sequence, e.id";
    let mut sql = Sql::default();
    sql.bind(
        &format!(
            "SELECT {HIT_COLUMNS} FROM events e JOIN contexts c ON c.id = e.context_id \
             LEFT JOIN sessions s ON s.id = c.session_ref WHERE c.session_ref = ?"
        ),
        [int(sref)],
    );
    sql.append(mine.clone());
    sql.push(order);
    sql.bind(
        " LIMIT ? OFFSET ?",
        [int(limit as i64 + 1), int(offset as i64)],
    );
    let mut stmt = conn.prepare(&sql.text)?;
    let hits = stmt.query_map(rusqlite::params_from_iter(sql.params.iter()), |r| {
        read_hit(r, range, content)
    })?;
    let mut page_rows = Vec::new();
    for h in hits {
        page_rows.push(h?.2);
    }
    let more = page_rows.len() > limit;
    page_rows.truncate(limit);
    let positions = (0..page_rows.len())
        .map(|i| Position::Offset(offset.saturating_add(i as u64 + 1)))
        .collect();

    // Turns over the whole session (small: one row per event, few columns).
    let mut sql = Sql::default();
    sql.bind(
        "SELECT e.prompt_id, e.time_ns, e.event_name, e.model, e.success, \
         COALESCE(e.input_tokens, 0) + COALESCE(e.output_tokens, 0) + COALESCE(e.cache_read_tokens, 0) \
         + COALESCE(e.cache_creation_tokens, 0), COALESCE(e.cost_usd, 0) \
         FROM events e JOIN contexts c ON c.id = e.context_id WHERE c.session_ref = ?",
        [int(sref)],
    );
    sql.append(mine);
    sql.push(order);
    let mut stmt = conn.prepare(&sql.text)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(sql.params.iter()))?;
    let mut turns: Vec<Turn> = Vec::new();
    let mut index: BTreeMap<Option<String>, usize> = BTreeMap::new();
    while let Some(r) = rows.next()? {
        let pid: Option<String> = r.get(0)?;
        let i = *index.entry(pid.clone()).or_insert_with(|| {
            turns.push(Turn {
                prompt_id: pid.clone(),
                start: String::new(),
                ..Default::default()
            });
            turns.len() - 1
        });
        let t = &mut turns[i];
        let time: i64 = r.get(1)?;
        if t.events == 0 {
            t.start = range.show(time);
        }
        t.events += 1;
        let name: String = r.get(2)?;
        match name.as_str() {
            "api_request" => {
                t.api_requests += 1;
                t.tokens += r.get::<_, i64>(5)?;
                t.cost_usd += r.get::<_, f64>(6)?;
                if let Some(m) = r.get::<_, Option<String>>(3)?
                    && !t.models.contains(&m)
                {
                    t.models.push(m);
                }
            }
            "api_error" => t.api_errors += 1,
            "tool_result" => {
                t.tool_calls += 1;
                if r.get::<_, Option<bool>>(4)? == Some(false) {
                    t.tool_failures += 1;
                }
            }
            _ => {}
        }
    }
    Ok(Timeline {
        session,
        turns,
        events: Page {
            rows: page_rows,
            positions,
            more,
        },
    })
}

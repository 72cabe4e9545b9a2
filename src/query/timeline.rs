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
    SESSION_COLUMNS, SessionSummary, main_model, not_visible, read_session, session_conditions,
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

/// One event of a session as the turns need it, in timeline order.
#[derive(Debug, Clone, Default)]
pub struct TurnEvent {
    /// `prompt.id`.
    pub prompt_id: Option<String>,
    /// Record time.
    pub time_ns: i64,
    /// Event name.
    pub event_name: String,
    /// Model, if any.
    pub model: Option<String>,
    /// Tool success, if any.
    pub success: Option<bool>,
    /// All four token counts added.
    pub tokens: i64,
    /// Cost (0 when none).
    pub cost_usd: f64,
}

/// The turns of a session, built event by event in timeline order.
#[derive(Debug, Default)]
pub struct Turns {
    /// Turns in order of their first event.
    pub turns: Vec<Turn>,
    index: BTreeMap<Option<String>, usize>,
}

impl Turns {
    /// Adds the next event.
    pub fn add(&mut self, range: &TimeRange, e: TurnEvent) {
        let turns = &mut self.turns;
        let i = *self.index.entry(e.prompt_id.clone()).or_insert_with(|| {
            turns.push(Turn {
                prompt_id: e.prompt_id.clone(),
                start: String::new(),
                ..Default::default()
            });
            turns.len() - 1
        });
        let t = &mut turns[i];
        if t.events == 0 {
            t.start = range.show(e.time_ns);
        }
        t.events += 1;
        match e.event_name.as_str() {
            "api_request" => {
                t.api_requests += 1;
                t.tokens += e.tokens;
                t.cost_usd += e.cost_usd;
                if let Some(m) = e.model
                    && !t.models.contains(&m)
                {
                    t.models.push(m);
                }
            }
            "api_error" => t.api_errors += 1,
            "tool_result" => {
                t.tool_calls += 1;
                if e.success == Some(false) {
                    t.tool_failures += 1;
                }
            }
            _ => {}
        }
    }
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
        return Err(not_visible(session_id));
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
    session.main_model = main_model(conn, &f, sref, session.source == "events")?;

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
    let mut turns = Turns::default();
    while let Some(r) = rows.next()? {
        turns.add(
            range,
            TurnEvent {
                prompt_id: r.get(0)?,
                time_ns: r.get(1)?,
                event_name: r.get(2)?,
                model: r.get(3)?,
                success: r.get(4)?,
                tokens: r.get(5)?,
                cost_usd: r.get(6)?,
            },
        );
    }
    Ok(Timeline {
        session,
        turns: turns.turns,
        events: Page {
            rows: page_rows,
            positions,
            more,
        },
    })
}

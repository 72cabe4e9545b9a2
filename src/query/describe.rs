//! `describe_data`: what the store holds (for the caller's developers), so
//! an agent can plan its questions and explain gaps.

use super::QueryError;
use super::filter::{Filter, Sql, int};
use super::time::TimeRange;

/// Count of one event name or metric.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct NameCount {
    /// `events` or `metric` (or `span`).
    pub kind: String,
    /// Event name, metric name or span name.
    pub name: String,
    /// Records stored.
    pub count: i64,
    /// Earliest record, in the requested zone.
    pub first: Option<String>,
    /// Latest record, in the requested zone.
    pub last: Option<String>,
}

/// One developer the caller may see.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct DeveloperInfo {
    /// Developer identity.
    pub developer: Option<String>,
    /// Which identity it is.
    pub developer_kind: Option<String>,
    /// Sessions.
    pub sessions: i64,
}

/// The description.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataDescription {
    /// Counts per event name, metric and span name.
    pub names: Vec<NameCount>,
    /// Developers (at most 200).
    pub developers: Vec<DeveloperInfo>,
    /// Claude Code versions seen.
    pub versions: Vec<String>,
    /// Sessions.
    pub sessions: i64,
    /// Sessions whose cost comes only from metrics.
    pub metrics_only_sessions: i64,
    /// Events carrying a file path (OTEL_LOG_TOOL_DETAILS=1).
    pub events_with_file_path: i64,
    /// Prompt events whose text was stored (content capture on, prompt logging on).
    pub prompts_with_text: i64,
    /// Events whose content was removed at ingest (capture off).
    pub events_content_redacted: i64,
    /// Resource attribute keys seen (e.g. team.id, department).
    pub resource_attribute_keys: Vec<String>,
    /// Earliest event of all data (not only the range), in the requested zone.
    pub first_event: Option<String>,
    /// Latest event of all data, in the requested zone.
    pub last_event: Option<String>,
}

fn rows<T>(
    conn: &rusqlite::Connection,
    sql: &Sql,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, QueryError> {
    let mut stmt = conn.prepare(&sql.text)?;
    let it = stmt.query_map(rusqlite::params_from_iter(sql.params.iter()), f)?;
    let mut out = Vec::new();
    for r in it {
        out.push(r?);
    }
    Ok(out)
}

fn count(conn: &rusqlite::Connection, sql: &Sql) -> Result<i64, QueryError> {
    Ok(rows(conn, sql, |r| r.get::<_, i64>(0))?
        .into_iter()
        .next()
        .unwrap_or(0))
}

/// Runs the question (limited to what `f`'s `Visible` may see).
pub fn describe_data(
    conn: &rusqlite::Connection,
    f: &Filter,
    range: &TimeRange,
) -> Result<DataDescription, QueryError> {
    let ctx = |head: &str, tail: &str| {
        let mut s = Sql::default();
        s.push(head);
        f.context_conditions(&mut s);
        s.push(tail);
        s
    };
    // Same, with `time BETWEEN` the range for the column named in `time`.
    let timed = |head: &str, time: &str, tail: &str| {
        let mut s = Sql::default();
        s.bind(
            &format!("{head} AND {time} >= ? AND {time} < ?"),
            [int(range.since_ns), int(range.until_ns)],
        );
        f.context_conditions(&mut s);
        s.push(tail);
        s
    };
    let mut d = DataDescription::default();
    let name_row = |kind: &'static str| {
        move |r: &rusqlite::Row<'_>| {
            Ok(NameCount {
                kind: kind.to_string(),
                name: r.get(0)?,
                count: r.get(1)?,
                first: r.get::<_, Option<i64>>(2)?.map(|t| range.show(t)),
                last: r.get::<_, Option<i64>>(3)?.map(|t| range.show(t)),
            })
        }
    };
    d.names.extend(rows(
        conn,
        &timed(
            "SELECT e.event_name, COUNT(*), MIN(e.time_ns), MAX(e.time_ns) FROM events e \
             JOIN contexts c ON c.id = e.context_id WHERE 1",
            "e.time_ns",
            " GROUP BY e.event_name ORDER BY COUNT(*) DESC, e.event_name",
        ),
        name_row("event"),
    )?);
    d.names.extend(rows(
        conn,
        &timed(
            "SELECT ms.name, COUNT(*), MIN(p.time_ns), MAX(p.time_ns) FROM metric_points p \
             JOIN metric_series ms ON ms.id = p.series_id JOIN contexts c ON c.id = ms.context_id WHERE 1",
            "p.time_ns",
            " GROUP BY ms.name ORDER BY COUNT(*) DESC, ms.name",
        ),
        name_row("metric"),
    )?);
    d.names.extend(rows(
        conn,
        &timed(
            "SELECT s.name, COUNT(*), MIN(s.start_ns), MAX(s.start_ns) FROM spans s \
             JOIN contexts c ON c.id = s.context_id WHERE 1",
            "s.start_ns",
            " GROUP BY s.name ORDER BY COUNT(*) DESC, s.name",
        ),
        name_row("span"),
    )?);
    d.developers = rows(
        conn,
        &ctx(
            "SELECT c.developer, c.developer_kind, COUNT(DISTINCT c.session_ref) FROM contexts c WHERE 1",
            " GROUP BY c.developer, c.developer_kind ORDER BY 3 DESC, c.developer LIMIT 200",
        ),
        |r| {
            Ok(DeveloperInfo {
                developer: r.get(0)?,
                developer_kind: r.get(1)?,
                sessions: r.get(2)?,
            })
        },
    )?;
    d.versions = rows(
        conn,
        &ctx(
            "SELECT DISTINCT c.app_version FROM contexts c WHERE c.app_version IS NOT NULL",
            " ORDER BY c.app_version",
        ),
        |r| r.get(0),
    )?;
    d.sessions = count(
        conn,
        &ctx(
            "SELECT COUNT(DISTINCT c.session_ref) FROM contexts c WHERE 1",
            "",
        ),
    )?;
    d.metrics_only_sessions = count(
        conn,
        &ctx(
            "SELECT COUNT(DISTINCT s.id) FROM sessions s JOIN contexts c ON c.session_ref = s.id \
             WHERE s.api_requests = 0 AND s.metric_cost_usd > 0",
            "",
        ),
    )?;
    d.events_with_file_path = count(
        conn,
        &timed(
            "SELECT COUNT(*) FROM events e JOIN contexts c ON c.id = e.context_id WHERE e.file_path IS NOT NULL",
            "e.time_ns",
            "",
        ),
    )?;
    d.prompts_with_text = count(
        conn,
        &timed(
            "SELECT COUNT(*) FROM events e JOIN contexts c ON c.id = e.context_id \
             WHERE e.event_name = 'user_prompt' AND json_extract(e.attrs, '$.prompt') IS NOT NULL",
            "e.time_ns",
            "",
        ),
    )?;
    d.events_content_redacted = count(
        conn,
        &timed(
            "SELECT COUNT(*) FROM events e JOIN contexts c ON c.id = e.context_id WHERE e.content_redacted = 1",
            "e.time_ns",
            "",
        ),
    )?;
    d.resource_attribute_keys = rows(
        conn,
        &ctx(
            "SELECT DISTINCT j.key FROM contexts c, json_each(c.resource_attrs) j WHERE 1",
            " ORDER BY j.key LIMIT 200",
        ),
        |r| r.get(0),
    )?;
    // Overall span: per-context MIN/MAX through the (context, time) index.
    let span = rows(
        conn,
        &ctx(
            "SELECT MIN((SELECT MIN(e.time_ns) FROM events e WHERE e.context_id = c.id)), \
             MAX((SELECT MAX(e.time_ns) FROM events e WHERE e.context_id = c.id)) FROM contexts c WHERE 1",
            "",
        ),
        |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
    )?;
    if let Some((first, last)) = span.into_iter().next() {
        d.first_event = first.map(|t| range.show(t));
        d.last_event = last.map(|t| range.show(t));
    }
    Ok(d)
}

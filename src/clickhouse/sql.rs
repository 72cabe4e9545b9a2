//! The query layer's filters and usage rule in ClickHouse SQL: the same
//! [`Filter`] the SQLite store renders in `query::filter`, over the
//! denormalised tables of [`super::schema`] (no joins: every row carries
//! its context), and the same events-or-metrics rule as `query::plan`.
//!
//! Caller input enters only as bound parameters (the client escapes each
//! `?`); attribute keys are also bound.

use crate::query::filter::{Filter, Sql, int, text};
use crate::query::usage::Dim;

/// Nanoseconds per hour, as the SQLite store keys its hours.
pub const HOUR_NS: i64 = crate::query::HOUR_NS;

/// [`RECORD_ID`] as a literal, for the column lists built with `concat!`.
macro_rules! record_id {
    () => {
        "toInt64(sipHash64(dedup))"
    };
}

/// A record's number (the hash of its deduplication key), where the
/// SQLite store has a row id: the keyset of pages, the identity of an
/// edit without a tool use id.
pub const RECORD_ID: &str = record_id!();

/// A session's number (the hash of its id; `NULL` without one), where the
/// SQLite store has a session row id: distinct sessions are counted by it.
pub const SESSION_NUMBER: &str = "if(session_id = '', NULL, toInt64(sipHash64(session_id)))";

/// ` AND` the model filter, if any.
pub fn model_condition(f: &Filter, sql: &mut Sql) {
    if let Some(m) = &f.model {
        sql.bind(" AND model = ?", [text(m)]);
    }
}

/// An attribute of one of a row's maps (`resource`, `shared`, `attr`) by
/// bound key, or `NULL` when the map has none.
pub fn map_value(sql: &mut Sql, map: &str, key: &str) {
    sql.bind(
        &format!("if(has({map}_keys, ?), {map}_values[indexOf({map}_keys, ?)], NULL)"),
        [text(key), text(key)],
    );
}

/// The first of the maps holding `key` (in that order), else `NULL`.
fn first_value(sql: &mut Sql, maps: &[&str], key: &str) {
    sql.push("coalesce(");
    for (i, m) in maps.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        map_value(sql, m, key);
    }
    sql.push(")");
}

/// A context's team, as `query::filter::TEAM_EXPR` says: `team.id`, else
/// `team`, from the resource, else from the shared record attributes.
fn team(sql: &mut Sql) {
    sql.push("coalesce(");
    map_value(sql, "resource", "team.id");
    sql.push(", ");
    map_value(sql, "resource", "team");
    sql.push(", ");
    map_value(sql, "shared", "team.id");
    sql.push(", ");
    map_value(sql, "shared", "team");
    sql.push(")");
}

/// Which table's rows a condition or dimension is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// `events`
    Events,
    /// The cost and token metric points.
    Metrics,
}

/// ` AND ...` for the context-level filters (visibility first).
pub fn context_conditions(f: &Filter, sql: &mut Sql) {
    f.developer_conditions(sql, "developer");
    if let Some(a) = f.agent {
        sql.bind(" AND agent = ?", [text(a.as_str())]);
    }
    if let Some(t) = &f.team {
        sql.push(" AND ");
        team(sql);
        sql.bind(" = ?", [text(t)]);
    }
    if let Some((k, v)) = &f.attribute {
        sql.push(" AND (");
        map_value(sql, "resource", k);
        sql.bind(" = ? OR ", [text(v)]);
        map_value(sql, "shared", k);
        sql.bind(" = ?)", [text(v)]);
    }
    if let Some(s) = &f.session_id {
        sql.bind(" AND session_id = ?", [text(s)]);
    }
}

/// ` AND ...` for the record-level filters other than the model, on
/// events or on metric points (which carry fewer of them).
pub fn record_conditions(f: &Filter, sql: &mut Sql, rows: Rows) {
    if let Some(r) = &f.repository {
        sql.push(" AND (");
        match rows {
            Rows::Events => sql.bind("repository = ?", [text(r)]),
            Rows::Metrics => {
                map_value(sql, "attr", "vcs.repository.name");
                sql.bind(" = ?", [text(r)])
            }
        };
        for key in ["repo.name", "vcs.repository.name"] {
            sql.push(" OR ");
            map_value(sql, "resource", key);
            sql.bind(" = ?", [text(r)]);
        }
        sql.push(")");
    }
    let record = |sql: &mut Sql, column: &str, key: &str, v: &str| match rows {
        Rows::Events => {
            sql.bind(&format!(" AND {column} = ?"), [text(v)]);
        }
        Rows::Metrics => {
            sql.push(" AND ");
            map_value(sql, "attr", key);
            sql.bind(" = ?", [text(v)]);
        }
    };
    if let Some(b) = &f.branch {
        match rows {
            Rows::Events => record(sql, "branch", "", b),
            // Metric points carry no branch.
            Rows::Metrics => {
                sql.push(" AND 0");
            }
        }
    }
    if let Some(s) = &f.mcp_server {
        record(sql, "mcp_server", "mcp_server.name", s);
    }
    if let Some(t) = &f.mcp_tool {
        record(sql, "mcp_tool", "mcp_tool.name", t);
    }
    if let Some(q) = &f.query_source {
        record(sql, "query_source", "query_source", q);
    }
    for (a, v) in &f.attribution {
        sql.push(" AND ");
        first_value(sql, &["attr", "shared", "resource"], a.key);
        sql.bind(" = ?", [text(v)]);
    }
}

/// The expression of a grouping dimension as text ('' for none), for rows
/// of `rows`.
fn dim(sql: &mut Sql, d: Dim, rows: Rows) {
    match d {
        Dim::Developer => {
            sql.push("developer");
        }
        Dim::DeveloperKind => {
            sql.push("developer_kind");
        }
        Dim::Agent => {
            sql.push("agent");
        }
        Dim::Model => {
            sql.push("model");
        }
        Dim::Hour => {
            sql.push(&format!("toString(intDiv(time_ns, {HOUR_NS}))"));
        }
        Dim::Team => {
            sql.push("ifNull(");
            team(sql);
            sql.push(", '')");
        }
        Dim::Repository => {
            sql.push("ifNull(coalesce(");
            match rows {
                Rows::Events => {
                    sql.push("repository");
                }
                Rows::Metrics => map_value(sql, "attr", "vcs.repository.name"),
            }
            sql.push(", ");
            map_value(sql, "resource", "repo.name");
            sql.push("), '')");
        }
        Dim::Branch => {
            sql.push(match rows {
                Rows::Events => "ifNull(branch, '')",
                Rows::Metrics => "''",
            });
        }
        Dim::McpServer | Dim::McpTool => {
            let (column, key) = if d == Dim::McpServer {
                ("mcp_server", "mcp_server.name")
            } else {
                ("mcp_tool", "mcp_tool.name")
            };
            match rows {
                Rows::Events => {
                    sql.push(&format!("ifNull({column}, '')"));
                }
                Rows::Metrics => {
                    sql.push("ifNull(");
                    map_value(sql, "attr", key);
                    sql.push(", '')");
                }
            }
        }
        Dim::Attribution(a) => {
            sql.push("ifNull(");
            first_value(sql, &["attr", "shared", "resource"], a.key);
            sql.push(", '')");
        }
    }
}

/// Which cost or token metric point is which usage, as
/// [`crate::store::usage_slot`] says for the embedded store, in its slot
/// order: cost, then input, output, cache read and cache creation tokens.
pub const USAGE_METRICS: [&str; 5] = [
    "name = 'claude_code.cost.usage'",
    "name = 'claude_code.token.usage' AND kind_attr = 'input'",
    "name = 'claude_code.token.usage' AND kind_attr = 'output'",
    "name = 'claude_code.token.usage' AND kind_attr = 'cacheRead'",
    "name = 'claude_code.token.usage' AND kind_attr = 'cacheCreation'",
];

/// Sessions whose usage counts from their events (`query::plan`'s
/// `SESSION_FROM_EVENTS`: the session has an `api_request` of a coding agent).
const SESSIONS_FROM_EVENTS: &str = "(SELECT session_id FROM events \
    WHERE event_name = 'api_request' AND agent != '' AND session_id != '')";

/// The (developer, hour) pairs a sessionless metric point does not count
/// in: the hours with an `api_request` of a coding agent, and the hours
/// after them (a delta point covers the export interval before its time),
/// in one set so the rule reads the events once.
fn developer_hours() -> String {
    format!(
        "(SELECT developer, arrayJoin([h, h + 1]) FROM (SELECT developer, \
         intDiv(time_ns, {HOUR_NS}) AS h FROM events \
         WHERE event_name = 'api_request' AND agent != ''))"
    )
}

/// The cost and token metric points of `[from, to)` with their deltas: a
/// delta point is its value; a cumulative point is its rise over the
/// series' previous point (or its value, after a restart or a reset), so
/// each cumulative series is read from its first point up to `to`.
///
/// `f`'s conditions are applied to the points before the deltas: they are
/// constant along a series (its context, model and attributes are part of
/// the series), so other developers' series are never read.
/// `conditions` renders the ` AND ...` conditions on the points (see
/// [`filtered`]).
pub fn metric_deltas(sql: &mut Sql, conditions: &dyn Fn(&mut Sql), from: i64, to: i64) {
    const NAMES: &str = "name IN ('claude_code.cost.usage', 'claude_code.token.usage')";
    const COLUMNS: &str = "developer, developer_kind, agent, session_id, resource_keys, \
        resource_values, shared_keys, shared_values, attr_keys, attr_values, name, kind_attr, model";
    sql.bind(
        &format!(
            "SELECT {COLUMNS}, time_ns, value AS delta FROM metric_points FINAL \
             WHERE {NAMES} AND temporality != 2 AND time_ns >= ? AND time_ns < ?"
        ),
        [int(from), int(to)],
    );
    conditions(sql);
    // Inner aliases differ from the column names: ClickHouse lets an alias
    // shadow a column in the same SELECT's WHERE.
    let columns: Vec<&str> = COLUMNS.split(", ").collect();
    let any: Vec<String> = columns
        .iter()
        .map(|c| format!("any({c}) AS any_{c}"))
        .collect();
    let outer: Vec<String> = columns.iter().map(|c| format!("any_{c} AS {c}")).collect();
    sql.bind(
        &format!(
            " UNION ALL SELECT {}, pts[i].1 AS time_ns, \
             if(i = 1 OR pts[i].2 != pts[i - 1].2 OR pts[i].3 < pts[i - 1].3, \
                pts[i].3, pts[i].3 - pts[i - 1].3) AS delta \
             FROM (SELECT {}, arraySort(x -> x.1, groupArray((time_ns, start_ns, value))) AS pts \
                   FROM metric_points FINAL WHERE {NAMES} AND temporality = 2 AND time_ns < ?",
            outer.join(", "),
            any.join(", ")
        ),
        [int(to)],
    );
    conditions(sql);
    sql.bind(
        " GROUP BY series) ARRAY JOIN arrayEnumerate(pts) AS i WHERE time_ns >= ?",
        [int(from)],
    );
}

/// The conditions of `f` on the cost and token points of a coding agent.
pub fn filtered(f: &Filter) -> impl Fn(&mut Sql) + '_ {
    move |sql: &mut Sql| {
        sql.push(" AND agent != ''");
        context_conditions(f, sql);
        model_condition(f, sql);
        record_conditions(f, sql, Rows::Metrics);
    }
}

/// Usage of `[from, to)` matching `f`, grouped by `dims`: one row per
/// group with the dimension values as text (in order), the sums, which
/// sources counted, and (with `sessions`) the hashed session ids.
pub fn usage(f: &Filter, from: i64, to: i64, dims: &[Dim], sessions: bool) -> Sql {
    let mut sql = Sql::default();
    sql.push("SELECT [");
    for i in 0..dims.len() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push(&format!("k{i}"));
    }
    sql.push(
        "] AS keys, sum(requests), sum(errors), sum(input), sum(output), sum(cache_read), \
         sum(cache_creation), sum(reasoning), sum(cost), sum(reported), sum(computed), \
         sum(unpriced), sum(duration), max(src = 'events'), max(src = 'metrics'), \
         max(session_id = ''), ",
    );
    if sessions {
        sql.push(&format!(
            "groupUniqArrayIf(assumeNotNull({SESSION_NUMBER}), session_id != '') FROM ("
        ));
    } else {
        sql.push("emptyArrayInt64() FROM (");
    }
    // Events.
    sql.push("SELECT ");
    for (i, d) in dims.iter().enumerate() {
        dim(&mut sql, *d, Rows::Events);
        sql.push(&format!(" AS k{i}, "));
    }
    sql.push(
        "session_id, 'events' AS src, \
         toInt64(event_name = 'api_request') AS requests, toInt64(event_name = 'api_error') AS errors, \
         toInt64(if(event_name = 'api_request', ifNull(input_tokens, 0), 0)) AS input, \
         toInt64(if(event_name = 'api_request', ifNull(output_tokens, 0), 0)) AS output, \
         toInt64(if(event_name = 'api_request', ifNull(cache_read_tokens, 0), 0)) AS cache_read, \
         toInt64(if(event_name = 'api_request', ifNull(cache_creation_tokens, 0), 0)) AS cache_creation, \
         toInt64(if(event_name = 'api_request', ifNull(reasoning_tokens, 0), 0)) AS reasoning, \
         toFloat64(if(event_name = 'api_request', ifNull(cost_usd, 0), 0)) AS cost, \
         toFloat64(if(event_name = 'api_request' AND cost_computed = 0, ifNull(cost_usd, 0), 0)) AS reported, \
         toFloat64(if(event_name = 'api_request', ifNull(computed_cost_usd, 0), 0)) AS computed, \
         toInt64(event_name = 'api_request' AND isNull(cost_usd)) AS unpriced, \
         toInt64(if(event_name = 'api_request', ifNull(duration_ms, 0), 0)) AS duration \
         FROM events FINAL WHERE event_name IN ('api_request', 'api_error') AND agent != ''",
    );
    sql.bind(" AND time_ns >= ? AND time_ns < ?", [int(from), int(to)]);
    context_conditions(f, &mut sql);
    model_condition(f, &mut sql);
    record_conditions(f, &mut sql, Rows::Events);
    sql.push(&format!(
        " AND (session_id = '' OR session_id GLOBAL IN {SESSIONS_FROM_EVENTS})"
    ));
    // Metrics.
    sql.push(" UNION ALL SELECT ");
    for (i, d) in dims.iter().enumerate() {
        dim(&mut sql, *d, Rows::Metrics);
        sql.push(&format!(" AS k{i}, "));
    }
    let [cost, input, output, cache_read, cache_creation] = USAGE_METRICS;
    sql.push(&format!(
        "session_id, 'metrics' AS src, toInt64(0) AS requests, toInt64(0) AS errors, \
         toInt64(if({input}, round(delta), 0)) AS input, \
         toInt64(if({output}, round(delta), 0)) AS output, \
         toInt64(if({cache_read}, round(delta), 0)) AS cache_read, \
         toInt64(if({cache_creation}, round(delta), 0)) AS cache_creation, \
         toInt64(0) AS reasoning, \
         toFloat64(if({cost}, delta, 0)) AS cost, \
         toFloat64(if({cost}, delta, 0)) AS reported, \
         toFloat64(0) AS computed, toInt64(0) AS unpriced, toInt64(0) AS duration FROM ("
    ));
    metric_deltas(&mut sql, &filtered(f), from, to);
    sql.push(") WHERE 1");
    let hours = developer_hours();
    sql.push(&format!(
        " AND ((session_id != '' AND session_id GLOBAL NOT IN {SESSIONS_FROM_EVENTS}) \
         OR (session_id = '' \
             AND (developer, intDiv(time_ns, {HOUR_NS})) GLOBAL NOT IN {hours}))"
    ));
    sql.push(") GROUP BY keys");
    sql
}

/// An event's columns in the order of [`crate::query::events::RawHit`].
pub const HIT_COLUMNS: &str = concat!(
    record_id!(),
    " AS id, time_ns, event_name, \
    nullIf(developer, ''), nullIf(developer_kind, ''), nullIf(session_id, ''), prompt_id, sequence, \
    nullIf(model, ''), input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, \
    cost_usd, duration_ms, tool_name, tool_use_id, success, decision, decision_source, \
    status_code, error, file_path, mcp_server, mcp_tool, repository, branch, query_source, \
    toNullable(attrs), body, CAST(NULL, 'Nullable(Int64)'), nullIf(agent, ''), \
    reasoning_tokens, cost_computed"
);

/// Events of `range` matching the filters, newest first, after `after`
/// (`(time_ns, id)`, the id being the hash of the record's deduplication
/// key), at most `limit + 1` (the last says more follow), in the column
/// order of [`crate::query::events::RawHit`].
pub fn search_events(
    range: &crate::query::time::TimeRange,
    f: &Filter,
    ef: &crate::query::events::EventFilter,
    after: Option<(i64, i64)>,
    limit: usize,
) -> Sql {
    let mut sql = Sql::default();
    sql.bind(
        &format!("SELECT {HIT_COLUMNS} FROM events FINAL WHERE time_ns >= ? AND time_ns < ?"),
        [int(range.since_ns), int(range.until_ns)],
    );
    context_conditions(f, &mut sql);
    model_condition(f, &mut sql);
    record_conditions(f, &mut sql, Rows::Events);
    if let Some(n) = &ef.event_name {
        sql.bind(
            " AND event_name = ?",
            [text(n.strip_prefix("claude_code.").unwrap_or(n))],
        );
    }
    if let Some(p) = &ef.prompt_id {
        sql.bind(" AND prompt_id = ?", [text(p)]);
    }
    if let Some(t) = &ef.tool_name {
        sql.bind(" AND tool_name = ?", [text(t)]);
    }
    if let Some(s) = ef.success {
        sql.bind(" AND success = ?", [int(i64::from(s))]);
    }
    if let Some(c) = ef.status_code {
        sql.bind(" AND status_code = ?", [int(c)]);
    }
    if let Some(t) = &ef.error_contains {
        // As SQLite's LIKE: literal text, ASCII case folded.
        sql.bind(
            " AND positionCaseInsensitive(ifNull(error, ''), ?) > 0",
            [text(t)],
        );
    }
    if let Some((t, id)) = after {
        sql.bind(
            " AND (time_ns < ? OR (time_ns = ? AND id < ?))",
            [int(t), int(t), int(id)],
        );
    }
    sql.bind(
        " ORDER BY time_ns DESC, id DESC LIMIT ?",
        [int(limit as i64 + 1)],
    );
    sql
}

/// The statement with its parameters written in as literals, the way the
/// client binds them: the text exported to run elsewhere (chDB, a DBA's
/// console). `?` inside quoted text is left alone.
#[cfg(test)]
pub fn inline(sql: &Sql) -> String {
    use rusqlite::types::Value;
    let mut params = sql.params.iter();
    let mut out = String::with_capacity(sql.text.len() + 16 * sql.params.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in sql.text.chars() {
        if quoted {
            quoted = escaped || c != '\'';
            escaped = !escaped && c == '\\';
            out.push(c);
            continue;
        }
        match c {
            '\'' => {
                quoted = true;
                out.push(c);
            }
            '?' => match params.next() {
                Some(Value::Integer(i)) => out.push_str(&i.to_string()),
                Some(Value::Real(r)) => out.push_str(&format!("{r:?}")),
                Some(Value::Text(t)) => {
                    out.push('\'');
                    for ch in t.chars() {
                        if ch == '\'' || ch == '\\' {
                            out.push('\\');
                        }
                        out.push(ch);
                    }
                    out.push('\'');
                }
                Some(Value::Null) | None => out.push_str("NULL"),
                Some(Value::Blob(b)) => out.push_str(&format!("unhex('{}')", hex::encode(b))),
            },
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::visible::testing::visible;

    #[test]
    fn the_usage_metrics_are_the_embedded_stores_slots() {
        for (name, kind) in [
            ("claude_code.cost.usage", ""),
            ("claude_code.token.usage", "input"),
            ("claude_code.token.usage", "output"),
            ("claude_code.token.usage", "cacheRead"),
            ("claude_code.token.usage", "cacheCreation"),
        ] {
            let slot = crate::store::usage_slot(name, kind).unwrap();
            let want = if kind.is_empty() {
                format!("name = '{name}'")
            } else {
                format!("name = '{name}' AND kind_attr = '{kind}'")
            };
            assert_eq!(USAGE_METRICS[slot], want);
        }
    }

    #[test]
    fn inlined_parameters_are_quoted_literals() {
        let mut sql = Sql::default();
        sql.bind(
            "SELECT '?' AS q, ? AS a, ? AS b, ? AS c",
            [
                int(-3),
                text("it's \\ ?"),
                rusqlite::types::Value::Real(0.5),
            ],
        );
        assert_eq!(
            inline(&sql),
            "SELECT '?' AS q, -3 AS a, 'it\\'s \\\\ ?' AS b, 0.5 AS c"
        );
    }

    #[test]
    fn caller_input_is_only_ever_bound() {
        let f = Filter {
            developer: Some("x' OR 1 --".into()),
            team: Some("t".into()),
            attribute: Some(("k".into(), "v".into())),
            repository: Some("r".into()),
            ..Filter::new(visible(&["a@x"]))
        };
        let sql = usage(&f, 0, 10, &[Dim::Developer, Dim::Team], true);
        assert!(!sql.text.contains("x' OR"), "{}", sql.text);
        assert_eq!(sql.text.matches('?').count(), sql.params.len());
    }
}

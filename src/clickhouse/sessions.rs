//! Sessions from ClickHouse: `list_sessions`, `session_timeline` and the
//! session counts of `describe_data`, summed from the records themselves
//! (no session table to keep in step across nodes and retries: every
//! record carries its session id, and `FINAL` counts a retried one once).
//!
//! The rules are the SQLite store's (`query::sessions`): a session is
//! visible when any of its records is, it is shown under the first
//! developer that sent it, counts come from a coding agent's events, cost
//! and tokens from its API requests or else its metrics; a caller limited
//! to some developers sees a session that others also wrote to as its own
//! part ([`SessionSums`] from its records alone), marked `shared`.

use std::collections::HashMap;

use super::questions::{ClickHouseQuestions, none_if_empty};
use super::sql::{self, HIT_COLUMNS, RECORD_ID};
use crate::query::QueryError;
use crate::query::events::RawHit;
use crate::query::filter::{Filter, Sql, int, text};
use crate::query::page::{Page, Position};
use crate::query::sessions::{self as neutral, SessionSummary, SessionSums};
use crate::query::time::TimeRange;
use crate::query::timeline::{Timeline, TurnEvent, Turns};

/// The columns every part of [`records`] gives, in order.
const RECORD_COLUMNS: &str = "session_id, developer, developer_kind, agent, t0, t1, ev, event_name, \
    failed, i0, i1, i2, i3, cost, m0, m1, m2, m3, m4, vis, devm, ctxm, modm, mine";

/// `toUInt8(1 AND ...)`: the conditions `render` appends as one flag,
/// never a constant column (old servers give a union the constness of its
/// first part, and refuse a later part whose column varies).
fn flag(sql: &mut Sql, render: impl FnOnce(&mut Sql)) {
    sql.push("materialize(toUInt8(1");
    render(sql);
    sql.push("))");
}

/// The per-record flags of a part: visible to the caller, of the filtered
/// developer, of the filtered team and attribute (and visible), of the
/// filtered model (`model_hit` says which records name a session's model),
/// and the caller's own.
fn flags(sql: &mut Sql, f: &Filter, model_hit: Option<&str>) {
    sql.push(", ");
    flag(sql, |sql| f.visible.condition(sql, "developer"));
    sql.push(" AS vis, ");
    flag(sql, |sql| {
        if let Some(d) = &f.developer {
            sql.bind(" AND developer = ?", [text(d)]);
        }
    });
    sql.push(" AS devm, ");
    flag(sql, |sql| {
        let inner = Filter {
            team: f.team.clone(),
            attribute: f.attribute.clone(),
            ..Filter::new(f.visible.clone())
        };
        sql::context_conditions(&inner, sql);
    });
    sql.push(" AS ctxm, ");
    match (model_hit, &f.model) {
        (Some(hit), Some(m)) => flag(sql, |sql| {
            sql.bind(&format!(" AND {hit} AND model = ?"), [text(m)]);
        }),
        _ => {
            sql.push("materialize(toUInt8(0))");
        }
    }
    sql.push(" AS modm, ");
    flag(sql, |sql| f.developer_conditions(sql, "developer"));
    sql.push(" AS mine");
}

/// ` AND session_id = ?` when the filter names one session.
fn one_session(sql: &mut Sql, f: &Filter) {
    if let Some(s) = &f.session_id {
        sql.bind(" AND session_id = ?", [text(s)]);
    }
}

/// Every record with a session id, as [`RECORD_COLUMNS`]: events (with
/// their counts), metric points and spans (their times and contexts), and
/// the deltas of the cost and token metrics.
fn records(sql: &mut Sql, f: &Filter) {
    const IDENTITY: &str = "session_id, developer, developer_kind, agent";
    const NO_EVENT: &str = "toUInt8(0), '', toUInt8(0), toInt64(0), toInt64(0), toInt64(0), \
        toInt64(0), toFloat64(0)";
    const NO_METRIC: &str = "toFloat64(0), toFloat64(0), toFloat64(0), toFloat64(0), toFloat64(0)";
    // The first part names the columns of the union.
    const NO_METRIC_NAMED: &str = "materialize(toFloat64(0)) AS m0, \
        materialize(toFloat64(0)) AS m1, materialize(toFloat64(0)) AS m2, \
        materialize(toFloat64(0)) AS m3, materialize(toFloat64(0)) AS m4";
    sql.push(&format!(
        "SELECT {IDENTITY}, time_ns AS t0, time_ns AS t1, materialize(toUInt8(1)) AS ev, event_name, \
         toUInt8(ifNull(success, 1) = 0) AS failed, toInt64(ifNull(input_tokens, 0)) AS i0, \
         toInt64(ifNull(output_tokens, 0)) AS i1, toInt64(ifNull(cache_read_tokens, 0)) AS i2, \
         toInt64(ifNull(cache_creation_tokens, 0)) AS i3, toFloat64(ifNull(cost_usd, 0)) AS cost, \
         {NO_METRIC_NAMED}"
    ));
    flags(
        sql,
        f,
        Some("agent != '' AND event_name IN ('api_request', 'api_error')"),
    );
    sql.push(" FROM events FINAL WHERE session_id != ''");
    one_session(sql, f);
    sql.push(&format!(
        " UNION ALL SELECT {IDENTITY}, time_ns, time_ns, {NO_EVENT}, {NO_METRIC}"
    ));
    flags(sql, f, Some("1"));
    sql.push(" FROM metric_points WHERE session_id != ''");
    one_session(sql, f);
    sql.push(&format!(
        " UNION ALL SELECT {IDENTITY}, least(start_ns, end_ns), greatest(start_ns, end_ns), \
         {NO_EVENT}, {NO_METRIC}"
    ));
    flags(sql, f, None);
    sql.push(" FROM spans WHERE session_id != ''");
    one_session(sql, f);
    let slots: Vec<String> = sql::USAGE_METRICS
        .iter()
        .map(|m| format!("toFloat64(if({m}, delta, 0))"))
        .collect();
    sql.push(&format!(
        " UNION ALL SELECT {IDENTITY}, time_ns, time_ns, {NO_EVENT}, {}",
        slots.join(", ")
    ));
    flags(sql, f, None);
    sql.push(" FROM (");
    let session = f.session_id.clone();
    sql::metric_deltas(
        sql,
        &move |sql: &mut Sql| {
            sql.push(" AND agent != '' AND session_id != ''");
            if let Some(s) = &session {
                sql.bind(" AND session_id = ?", [text(s)]);
            }
        },
        i64::MIN,
        i64::MAX,
    );
    sql.push(")");
}

/// The sums of one part of a session (all of it, or the caller's): the
/// conditions of a counted event, with `extra` (` AND mine` or nothing).
fn sums(sql: &mut Sql, prefix: &str, extra: &str) {
    let agent_event = |name: &str| format!("ev AND agent != '' AND event_name = '{name}'{extra}");
    let mut columns = vec![
        format!(
            "toInt64(countIf({})) AS {prefix}prompts",
            agent_event("user_prompt")
        ),
        format!(
            "toInt64(countIf({})) AS {prefix}api_requests",
            agent_event("api_request")
        ),
        format!(
            "toInt64(countIf({})) AS {prefix}api_errors",
            agent_event("api_error")
        ),
        format!(
            "toInt64(countIf({})) AS {prefix}tool_calls",
            agent_event("tool_result")
        ),
        format!(
            "toInt64(countIf({} AND failed)) AS {prefix}tool_failures",
            agent_event("tool_result")
        ),
    ];
    for (i, name) in ["input", "output", "cache_read", "cache_creation"]
        .iter()
        .enumerate()
    {
        columns.push(format!(
            "toInt64(sumIf(i{i}, {})) AS {prefix}{name}_tokens",
            agent_event("api_request")
        ));
    }
    columns.push(format!(
        "toFloat64(sumIf(cost, {})) AS {prefix}cost_usd",
        agent_event("api_request")
    ));
    for i in 0..5 {
        columns.push(format!(
            "toFloat64(sumIf(m{i}, 1{extra})) AS {prefix}metric{i}"
        ));
    }
    sql.push(&columns.join(", "));
}

/// One session per row in the order of [`SessionRow`], matching `f`
/// (visibility, developer, team and attribute, model, agent, session id),
/// overlapping `range` when one is given; no order.
fn session_rows(f: &Filter, range: Option<&TimeRange>) -> Sql {
    let mut sql = Sql::default();
    sql.push(
        "SELECT session_id, argMinIf(developer, t0, developer != '') AS s_developer, \
         argMinIf(developer_kind, t0, developer != '') AS s_kind, argMin(agent, t0) AS s_agent, \
         min(t0) AS first_ns, max(t1) AS last_ns, ",
    );
    sums(&mut sql, "", "");
    sql.push(
        ", toUInt64(countIf(NOT mine)) AS others, minIf(developer, mine) AS own_developer, \
         minIf(developer_kind, mine) AS own_kind, toUInt64(countIf(mine AND ev)) AS own_events, \
         minIf(t0, mine AND ev) AS own_first, maxIf(t0, mine AND ev) AS own_last, ",
    );
    sums(&mut sql, "own_", " AND mine");
    sql.push(&format!(" FROM (SELECT {RECORD_COLUMNS} FROM ("));
    records(&mut sql, f);
    sql.push(")) GROUP BY session_id HAVING max(vis) = 1");
    if f.developer.is_some() {
        sql.push(" AND max(devm) = 1");
    }
    if f.team.is_some() || f.attribute.is_some() {
        sql.push(" AND max(ctxm) = 1");
    }
    if f.model.is_some() {
        sql.push(" AND max(modm) = 1");
    }
    if let Some(a) = f.agent {
        sql.bind(" AND s_agent = ?", [text(a.as_str())]);
    }
    if let Some(r) = range {
        sql.bind(
            " AND first_ns < ? AND last_ns >= ?",
            [int(r.until_ns), int(r.since_ns)],
        );
    }
    sql
}

/// What a sort key orders [`session_rows`] by (largest first).
fn order(key: &str) -> Option<&'static str> {
    Some(match key {
        "start" => "first_ns",
        "cost" => "if(api_requests > 0, cost_usd, metric0)",
        "duration" => "(last_ns - first_ns)",
        "prompts" => "prompts",
        "tokens" => {
            "if(api_requests > 0, toFloat64(input_tokens + output_tokens + cache_read_tokens \
             + cache_creation_tokens), metric1 + metric2 + metric3 + metric4)"
        }
        "errors" => "(api_errors + tool_failures)",
        "tool_calls" => "tool_calls",
        _ => return None,
    })
}

/// The sums of [`sums`] as read.
#[derive(Debug, serde::Deserialize)]
struct Sums {
    prompts: i64,
    api_requests: i64,
    api_errors: i64,
    tool_calls: i64,
    tool_failures: i64,
    input_tokens: i64,
    output_tokens: i64,
    cache_read_tokens: i64,
    cache_creation_tokens: i64,
    cost_usd: f64,
    metric_cost_usd: f64,
    metric_input_tokens: f64,
    metric_output_tokens: f64,
    metric_cache_read_tokens: f64,
    metric_cache_creation_tokens: f64,
}

impl Sums {
    fn with(self, developer: String, kind: String, span: Option<(i64, i64)>) -> SessionSums {
        SessionSums {
            developer: none_if_empty(developer),
            developer_kind: none_if_empty(kind),
            span,
            prompts: self.prompts,
            api_requests: self.api_requests,
            api_errors: self.api_errors,
            tool_calls: self.tool_calls,
            tool_failures: self.tool_failures,
            tokens: [
                self.input_tokens,
                self.output_tokens,
                self.cache_read_tokens,
                self.cache_creation_tokens,
            ],
            cost_usd: self.cost_usd,
            metric_tokens: [
                self.metric_input_tokens,
                self.metric_output_tokens,
                self.metric_cache_read_tokens,
                self.metric_cache_creation_tokens,
            ],
            metric_cost_usd: self.metric_cost_usd,
        }
    }
}

/// One row of [`session_rows`].
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct SessionRow {
    session_id: String,
    developer: String,
    developer_kind: String,
    agent: String,
    first_ns: i64,
    last_ns: i64,
    whole: Sums,
    others: u64,
    own_developer: String,
    own_kind: String,
    own_events: u64,
    own_first: i64,
    own_last: i64,
    own: Sums,
}

impl SessionRow {
    /// The summary the caller sees: the whole session, or its own part
    /// when it is limited and others wrote to the session too.
    fn summary(self, f: &Filter, range: &TimeRange) -> SessionSummary {
        let agent = none_if_empty(self.agent);
        if neutral::limited(f) && self.others > 0 {
            let span = (self.own_events > 0).then_some((self.own_first, self.own_last));
            self.own
                .with(self.own_developer, self.own_kind, span)
                .summary(self.session_id, agent, range, true)
        } else {
            self.whole
                .with(
                    self.developer,
                    self.developer_kind,
                    Some((self.first_ns, self.last_ns)),
                )
                .summary(self.session_id, agent, range, false)
        }
    }
}

/// Sessions of one developer, as [`ClickHouseQuestions::sessions_per_developer`] reads them.
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct PerDeveloper {
    developer: String,
    sessions: i64,
    metrics_only: i64,
    agents: Vec<i64>,
}

/// `(model, cost, requests)` of one session, for [`neutral::pick_main_model`].
type ModelCost = (String, f64, i64);

/// `(session, model, cost, requests)` of a main-model query.
type ModelRow = (String, String, f64, i64);

impl ClickHouseQuestions {
    /// Sessions overlapping `range`, sorted by `sort`; whether more follow.
    pub(super) async fn sessions(
        &self,
        range: &TimeRange,
        f: &Filter,
        sort: &str,
        offset: u64,
        limit: usize,
    ) -> Result<(Vec<SessionSummary>, bool), QueryError> {
        let Some(order) = order(sort) else {
            return Err(neutral::unknown_sort(sort));
        };
        let mut sql = session_rows(f, Some(range));
        sql.bind(
            &format!(" ORDER BY {order} DESC, session_id DESC LIMIT ?, ?"),
            [int(offset as i64), int(limit as i64 + 1)],
        );
        let rows: Vec<SessionRow> = self.fetch(&sql).await?;
        let more = rows.len() > limit;
        let mut list: Vec<SessionSummary> = rows
            .into_iter()
            .take(limit)
            .map(|r| r.summary(f, range))
            .collect();
        self.main_models(f, &mut list).await?;
        Ok((list, more))
    }

    /// Fills in each session's main model from the caller's records.
    async fn main_models(&self, f: &Filter, list: &mut [SessionSummary]) -> Result<(), QueryError> {
        let mut models: HashMap<(bool, String), Vec<ModelCost>> = HashMap::new();
        for events in [true, false] {
            let ids: Vec<&str> = list
                .iter()
                .filter(|s| (s.source == "events") == events)
                .map(|s| s.session_id.as_str())
                .collect();
            if ids.is_empty() {
                continue;
            }
            let mut within = Sql::default();
            within.push(" AND session_id IN (");
            for (i, id) in ids.iter().enumerate() {
                within.bind(if i == 0 { "?" } else { ", ?" }, [text(id)]);
            }
            within.push(")");
            f.developer_conditions(&mut within, "developer");
            let mut sql = Sql::default();
            if events {
                sql.push(
                    "SELECT session_id, model, toFloat64(sum(ifNull(cost_usd, 0))), \
                     toInt64(count()) FROM events FINAL \
                     WHERE event_name = 'api_request' AND agent != ''",
                );
                sql.append(within);
            } else {
                sql.push("SELECT session_id, model, toFloat64(sum(delta)), toInt64(0) FROM (");
                sql::metric_deltas(
                    &mut sql,
                    &move |sql: &mut Sql| {
                        sql.push(" AND agent != ''");
                        sql.append(within.clone());
                    },
                    i64::MIN,
                    i64::MAX,
                );
                sql.push(&format!(") WHERE {}", sql::USAGE_METRICS[0]));
            }
            sql.push(" GROUP BY session_id, model");
            let rows: Vec<ModelRow> = self.fetch(&sql).await?;
            for (session, model, cost, requests) in rows {
                models
                    .entry((events, session))
                    .or_default()
                    .push((model, cost, requests));
            }
        }
        for s in list {
            let key = (s.source == "events", s.session_id.clone());
            s.main_model = models.remove(&key).and_then(neutral::pick_main_model);
        }
        Ok(())
    }

    /// One session turn by turn, from the caller's records of it.
    pub(super) async fn timeline(
        &self,
        range: &TimeRange,
        f: &Filter,
        session_id: &str,
        offset: u64,
        limit: usize,
        content: bool,
    ) -> Result<Timeline, QueryError> {
        let mut sql = session_rows(f, None);
        sql.push(" LIMIT 1");
        let rows: Vec<SessionRow> = self.fetch(&sql).await?;
        let Some(row) = rows.into_iter().next() else {
            return Err(neutral::not_visible(session_id));
        };
        let mut session = row.summary(f, range);
        self.main_models(f, std::slice::from_mut(&mut session))
            .await?;
        // The caller's events of the session in timeline order, read once:
        // the turns from all of them, the page from its slice.
        let mut sql = Sql::default();
        sql.bind(
            &format!("SELECT {HIT_COLUMNS} FROM events FINAL WHERE session_id = ?"),
            [text(session_id)],
        );
        f.developer_conditions(&mut sql, "developer");
        sql.push(&format!(
            " ORDER BY time_ns, sequence NULLS FIRST, {RECORD_ID}"
        ));
        let hits: Vec<RawHit> = self.fetch(&sql).await?;
        let mut turns = Turns::default();
        for h in &hits {
            turns.add(
                range,
                TurnEvent {
                    prompt_id: h.prompt_id.clone(),
                    time_ns: h.time_ns,
                    event_name: h.event_name.clone(),
                    model: h.model.clone(),
                    success: h.success,
                    tokens: [
                        h.input_tokens,
                        h.output_tokens,
                        h.cache_read_tokens,
                        h.cache_creation_tokens,
                    ]
                    .iter()
                    .map(|t| t.unwrap_or(0))
                    .fold(0_i64, i64::saturating_add),
                    cost_usd: h.cost_usd.unwrap_or(0.0),
                },
            );
        }
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(hits.len());
        let more = hits.len() - start > limit;
        let rows: Vec<_> = hits
            .into_iter()
            .skip(start)
            .take(limit)
            .map(|h| h.finish(range, content).2)
            .collect();
        let positions = (0..rows.len())
            .map(|i| Position::Offset(offset.saturating_add(i as u64 + 1)))
            .collect();
        Ok(Timeline {
            session,
            turns: turns.turns,
            events: Page {
                rows,
                positions,
                more,
            },
        })
    }

    /// Sessions per developer (the one each is shown under): `(developer,
    /// sessions, metrics-only sessions, sessions per agent of
    /// [`crate::agent::Agent::ALL`])`.
    pub(super) async fn sessions_per_developer(
        &self,
        f: &Filter,
    ) -> Result<Vec<(Option<String>, i64, i64, Vec<i64>)>, QueryError> {
        let mut sql = Sql::default();
        sql.push(
            "SELECT s_developer, toInt64(count()), \
             toInt64(countIf(api_requests = 0 AND metric0 > 0)), [",
        );
        let agents: Vec<String> = crate::agent::Agent::ALL
            .iter()
            .map(|a| format!("toInt64(countIf(s_agent = '{}'))", a.as_str()))
            .collect();
        sql.push(&agents.join(", "));
        sql.push("] FROM (");
        sql.append(session_rows(f, None));
        sql.push(") GROUP BY s_developer");
        let rows: Vec<PerDeveloper> = self.fetch(&sql).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    none_if_empty(r.developer),
                    r.sessions,
                    r.metrics_only,
                    r.agents,
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::visible::testing::visible;

    #[test]
    fn caller_input_is_only_ever_bound() {
        let f = Filter {
            developer: Some("x' OR 1 --".into()),
            team: Some("team' --".into()),
            model: Some("model' --".into()),
            session_id: Some("sess' --".into()),
            ..Filter::new(visible(&["a'@x"]))
        };
        let sql = session_rows(&f, None);
        for input in ["x' OR", "team'", "model'", "sess'", "a'@x"] {
            assert!(!sql.text.contains(input), "{input}: {}", sql.text);
        }
        assert_eq!(sql.text.matches('?').count(), sql.params.len());
    }

    #[test]
    fn every_sort_key_has_an_order() {
        for k in neutral::SORT_KEYS {
            assert!(order(k).is_some(), "{k}");
        }
        assert!(order("id; DROP").is_none());
    }
}

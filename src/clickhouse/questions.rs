//! [`Questions`] answered from ClickHouse: each question fetches what its
//! engine-neutral fold in `query` needs (usage groups, latency histograms,
//! prompts per developer) with one statement each, and the fold makes the
//! same typed answer the SQLite store gives. Percentiles stay exact: the
//! histograms are exact counts per millisecond, summarised by the same
//! nearest-rank code.

use std::collections::BTreeMap;

use futures::FutureExt;
use rusqlite::types::Value;

use super::sql::{self, Rows};
use super::{ClickHouse, ReadLimits};
use crate::query::QueryError;
use crate::query::cost::{self, CostByDeveloper};
use crate::query::describe::DataDescription;
use crate::query::events::{EventFilter, EventHit, RawHit};
use crate::query::files::{self, Edits, EventEdit, SpanEdit, TopEditedFiles};
use crate::query::filter::{Filter, Sql, int, text};
use crate::query::latency::{self, Hists, Kind, McpHists, ToolLatency};
use crate::query::models::{self, ModelUsage};
use crate::query::page::{Page, Position};
use crate::query::questions::{After, Answer, Questions};
use crate::query::sessions::SessionSummary;
use crate::query::time::TimeRange;
use crate::query::timeline::Timeline;
use crate::query::timeseries::{self, Bucket, SeriesPoint, Split};
use crate::query::usage::{Dim, Sources, Usage, UsageGroup};
use crate::query::visible::Visible;

/// The ClickHouse store answering the questions under `limits`.
#[derive(Clone)]
pub struct ClickHouseQuestions {
    store: ClickHouse,
    limits: ReadLimits,
    /// Every statement asked, for the cross-check of the SQL in chDB.
    #[cfg(test)]
    pub(crate) asked: std::sync::Arc<std::sync::Mutex<Vec<Sql>>>,
}

impl ClickHouseQuestions {
    /// Questions over `store`, each held by the server to `limits`.
    pub fn new(store: ClickHouse, limits: ReadLimits) -> Self {
        ClickHouseQuestions {
            store,
            limits,
            #[cfg(test)]
            asked: Default::default(),
        }
    }

    /// The statement with its parameters bound.
    fn query(&self, sql: &Sql) -> clickhouse::query::Query {
        let mut q = self.store.reader(self.limits).query(&sql.text);
        for p in &sql.params {
            q = match p {
                Value::Integer(i) => q.bind(*i),
                Value::Real(r) => q.bind(*r),
                Value::Text(s) => q.bind(s.as_str()),
                Value::Null => q.bind(None::<i64>),
                Value::Blob(b) => q.bind(String::from_utf8_lossy(b).into_owned()),
            };
        }
        q
    }

    pub(super) async fn fetch<T>(&self, sql: &Sql) -> Result<Vec<T>, QueryError>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        #[cfg(test)]
        if let Ok(mut asked) = self.asked.lock() {
            asked.push(sql.clone());
        }
        self.query(sql).fetch_all::<T>().await.map_err(|e| {
            tracing::debug!(statement = %sql.text, "ClickHouse query failed");
            query_error(e)
        })
    }

    async fn usage(
        &self,
        range: &TimeRange,
        f: &Filter,
        dims: &[Dim],
        sessions: bool,
    ) -> Result<Vec<UsageGroup>, QueryError> {
        let sql = sql::usage(f, range.since_ns, range.until_ns, dims, sessions);
        let rows: Vec<UsageRow> = self.fetch(&sql).await?;
        Ok(rows
            .into_iter()
            .map(|r| r.group(dims))
            .filter(|g| !g.usage.is_nothing())
            .collect())
    }

    async fn prompts(
        &self,
        range: &TimeRange,
        f: &Filter,
    ) -> Result<BTreeMap<Option<String>, i64>, QueryError> {
        let mut sql = Sql::default();
        sql.bind(
            "SELECT developer, toInt64(count()) FROM events FINAL \
             WHERE event_name = 'user_prompt' AND time_ns >= ? AND time_ns < ?",
            [int(range.since_ns), int(range.until_ns)],
        );
        sql::context_conditions(f, &mut sql);
        sql::record_conditions(f, &mut sql, Rows::Events);
        sql.push(" GROUP BY developer");
        let rows: Vec<(String, i64)> = self.fetch(&sql).await?;
        Ok(rows
            .into_iter()
            .map(|(d, n)| (none_if_empty(d), n))
            .collect())
    }

    async fn unpriced_models(
        &self,
        range: &TimeRange,
        f: &Filter,
    ) -> Result<Vec<String>, QueryError> {
        let mut sql = Sql::default();
        sql.bind(
            "SELECT DISTINCT model FROM events FINAL WHERE event_name = 'api_request' \
             AND isNull(cost_usd) AND agent != '' AND time_ns >= ? AND time_ns < ?",
            [int(range.since_ns), int(range.until_ns)],
        );
        sql::context_conditions(f, &mut sql);
        sql::model_condition(f, &mut sql);
        sql::record_conditions(f, &mut sql, Rows::Events);
        sql.push(" ORDER BY model");
        let rows: Vec<String> = self.fetch(&sql).await?;
        Ok(rows.iter().map(|m| crate::query::model_label(m)).collect())
    }

    /// Exact latency histograms: API requests by model or tool results by tool.
    async fn histograms(
        &self,
        kind: Kind,
        range: &TimeRange,
        f: &Filter,
        tool: Option<&str>,
    ) -> Result<Hists, QueryError> {
        let (key, name) = match kind {
            Kind::Api => ("model", "api_request"),
            Kind::Tool => ("ifNull(tool_name, '')", "tool_result"),
        };
        let mut sql = Sql::default();
        sql.bind(
            &format!(
                "SELECT {key} AS k, assumeNotNull(duration_ms) AS ms, toInt64(count()), \
                 toInt64(countIf(ifNull(success, 1) = 0)) FROM events FINAL \
                 WHERE event_name = ? AND isNotNull(duration_ms) AND agent != '' \
                 AND time_ns >= ? AND time_ns < ?"
            ),
            [text(name), int(range.since_ns), int(range.until_ns)],
        );
        sql::context_conditions(f, &mut sql);
        if kind == Kind::Api {
            sql::model_condition(f, &mut sql);
        }
        sql::record_conditions(f, &mut sql, Rows::Events);
        if let Some(t) = tool {
            sql.bind(" AND tool_name = ?", [text(t)]);
        }
        sql.push(" GROUP BY k, ms");
        let rows: Vec<(String, i64, i64, i64)> = self.fetch(&sql).await?;
        let mut out = Hists::new();
        for (k, ms, n, failures) in rows {
            crate::store::hist::add(out.entry(k).or_default(), ms, n, failures);
        }
        Ok(out)
    }

    async fn mcp_histograms(
        &self,
        range: &TimeRange,
        f: &Filter,
        tool: Option<&str>,
    ) -> Result<McpHists, QueryError> {
        let mut sql = Sql::default();
        sql.bind(
            "SELECT ifNull(mcp_server, '') AS s, ifNull(mcp_tool, '') AS t, \
             assumeNotNull(duration_ms) AS ms, toInt64(count()), toInt64(countIf(ifNull(success, 1) = 0)) \
             FROM events FINAL WHERE event_name = 'tool_result' AND isNotNull(duration_ms) \
             AND (isNotNull(mcp_server) OR isNotNull(mcp_tool)) AND agent != '' \
             AND time_ns >= ? AND time_ns < ?",
            [int(range.since_ns), int(range.until_ns)],
        );
        sql::context_conditions(f, &mut sql);
        sql::record_conditions(f, &mut sql, Rows::Events);
        if let Some(t) = tool {
            sql.bind(" AND tool_name = ?", [text(t)]);
        }
        sql.push(" GROUP BY s, t, ms");
        let rows: Vec<(String, String, i64, i64, i64)> = self.fetch(&sql).await?;
        let mut out = McpHists::new();
        for (s, t, ms, n, failures) in rows {
            crate::store::hist::add(out.entry((s, t)).or_default(), ms, n, failures);
        }
        Ok(out)
    }

    async fn extent(&self, visible: &Visible) -> Result<Option<(i64, i64)>, QueryError> {
        let mut sql = Sql::default();
        for (i, (table, time)) in [
            ("events", "time_ns"),
            ("metric_points", "time_ns"),
            ("spans", "start_ns"),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                sql.push(" UNION ALL ");
            }
            sql.push(&format!(
                "SELECT count(), min({time}), max({time}) FROM {table} WHERE 1"
            ));
            visible.condition(&mut sql, "developer");
        }
        let rows: Vec<(u64, i64, i64)> = self.fetch(&sql).await?;
        Ok(rows
            .into_iter()
            .filter(|(n, _, _)| *n > 0)
            .map(|(_, a, b)| (a, b))
            .reduce(|(a, b), (c, d)| (a.min(c), b.max(d))))
    }

    /// `top_edited_files`: the edit tools' events, then their spans and
    /// the decisions of the spans' `blocked_on_user` children, gathered by
    /// the same [`Edits`] as on the embedded store; the `top` files kept.
    async fn top_edited(
        &self,
        range: &TimeRange,
        f: &Filter,
        tool: Option<&str>,
        top: usize,
    ) -> Result<TopEditedFiles, QueryError> {
        files::check_tool(tool)?;
        let (session, id) = (sql::SESSION_NUMBER, sql::RECORD_ID);
        let mut sql = Sql::default();
        sql.push(&format!(
            "SELECT tool_use_id, {id} AS id, event_name = 'tool_result', \
             tool_name, file_path, decision, nullIf(developer, ''), {session}, repository, branch, "
        ));
        sql::map_value(&mut sql, "resource", "repo.name");
        sql.bind(
            " FROM events FINAL WHERE event_name IN ('tool_decision', 'tool_result') \
             AND time_ns >= ? AND time_ns < ?",
            [int(range.since_ns), int(range.until_ns)],
        );
        files::tools_in(&mut sql, "tool_name", tool);
        sql::context_conditions(f, &mut sql);
        sql.push(" ORDER BY time_ns, id");
        let rows: Vec<EditEventRow> = self.fetch(&sql).await?;
        let mut edits = Edits::default();
        for r in &rows {
            edits.add_event(EventEdit {
                tool_use_id: r.tool_use_id.as_deref(),
                record: r.id,
                result: r.result,
                tool: r.tool_name.as_deref(),
                file_path: r.file_path.clone(),
                decision: r.decision.clone(),
                developer: r.developer.as_deref(),
                session: r.session,
                repos: [r.repository.clone(), r.repo_name.clone()],
                branch: r.branch.clone(),
            });
        }
        // The spans' decisions: the first `blocked_on_user` child of each.
        let mut sql = Sql::default();
        sql.bind(
            &format!(
                "SELECT trace_id, parent_span_id, decision FROM spans FINAL \
                 WHERE name = 'claude_code.tool.blocked_on_user' AND (trace_id, parent_span_id) GLOBAL IN \
                 (SELECT trace_id, span_id FROM spans WHERE name = 'claude_code.tool' \
                  AND start_ns >= ? AND start_ns < ?) ORDER BY start_ns, {id}"
            ),
            [int(range.since_ns), int(range.until_ns)],
        );
        let children: Vec<(String, String, Option<String>)> = self.fetch(&sql).await?;
        let mut decisions: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
        for (trace, parent, decision) in children {
            decisions.entry((trace, parent)).or_insert(decision);
        }
        let mut sql = Sql::default();
        sql.push(&format!(
            "SELECT tool_use_id, {id} AS id, tool_name, file_path, trace_id, \
             span_id, nullIf(developer, ''), {session}, "
        ));
        sql::map_value(&mut sql, "resource", "repo.name");
        sql.bind(
            " FROM spans FINAL WHERE name = 'claude_code.tool' AND start_ns >= ? AND start_ns < ?",
            [int(range.since_ns), int(range.until_ns)],
        );
        files::tools_in(&mut sql, "tool_name", tool);
        sql::context_conditions(f, &mut sql);
        sql.push(" ORDER BY start_ns, id");
        let rows: Vec<EditSpanRow> = self.fetch(&sql).await?;
        for r in &rows {
            edits.add_span(SpanEdit {
                tool_use_id: r.tool_use_id.as_deref(),
                record: r.id,
                tool: r.tool_name.as_deref(),
                file_path: r.file_path.clone(),
                decision: decisions
                    .get(&(r.trace_id.clone(), r.span_id.clone()))
                    .cloned()
                    .flatten(),
                developer: r.developer.as_deref(),
                session: r.session,
                repo: r.repo_name.clone(),
            });
        }
        Ok(edits.finish(f, top))
    }
}

/// Empty text (ClickHouse's "none") as `None`.
pub(super) fn none_if_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// A ClickHouse failure as the query layer says it: the budget's end
/// (`TIMEOUT_EXCEEDED`, code 159) as a timeout, an unreachable server or
/// shard (`NETWORK_ERROR` 210, `ALL_CONNECTION_TRIES_FAILED` 279) as
/// unavailable, anything else as a failed query (detail logged, not shown).
pub(super) fn query_error(e: clickhouse::error::Error) -> QueryError {
    let message = e.to_string();
    match e {
        clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut => {
            QueryError::Unavailable(message)
        }
        _ if message.contains("Code: 279") || message.contains("Code: 210") => {
            QueryError::Unavailable(message)
        }
        _ if message.contains("Code: 159") || message.contains("TIMEOUT_EXCEEDED") => {
            QueryError::TimedOut
        }
        _ => QueryError::Sql(message),
    }
}

/// An edit tool's event, for [`Edits::add_event`].
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct EditEventRow {
    tool_use_id: Option<String>,
    id: i64,
    result: bool,
    tool_name: Option<String>,
    file_path: Option<String>,
    decision: Option<String>,
    developer: Option<String>,
    session: Option<i64>,
    repository: Option<String>,
    branch: Option<String>,
    repo_name: Option<String>,
}

/// An edit tool's span, for [`Edits::add_span`].
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct EditSpanRow {
    tool_use_id: Option<String>,
    id: i64,
    tool_name: Option<String>,
    file_path: Option<String>,
    trace_id: String,
    span_id: String,
    developer: Option<String>,
    session: Option<i64>,
    repo_name: Option<String>,
}

/// One row of [`sql::usage`].
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct UsageRow {
    keys: Vec<String>,
    requests: i64,
    errors: i64,
    input: i64,
    output: i64,
    cache_read: i64,
    cache_creation: i64,
    reasoning: i64,
    cost: f64,
    reported: f64,
    computed: f64,
    unpriced: i64,
    duration: i64,
    events: u8,
    metrics: u8,
    sessionless: u8,
    sessions: Vec<i64>,
}

impl UsageRow {
    /// The group as the SQLite store gives it: the hour as a number, the
    /// model as text ('' when unknown), other dimensions null when empty.
    fn group(self, dims: &[Dim]) -> UsageGroup {
        let keys = dims
            .iter()
            .zip(self.keys)
            .map(|(d, k)| match d {
                Dim::Hour => k
                    .parse::<i64>()
                    .map(serde_json::Value::from)
                    .unwrap_or(serde_json::Value::Null),
                Dim::Model => serde_json::Value::from(k),
                _ if k.is_empty() => serde_json::Value::Null,
                _ => serde_json::Value::from(k),
            })
            .collect();
        UsageGroup {
            keys,
            usage: Usage {
                requests: self.requests,
                errors: self.errors,
                input_tokens: self.input,
                output_tokens: self.output,
                cache_read_tokens: self.cache_read,
                cache_creation_tokens: self.cache_creation,
                reasoning_tokens: self.reasoning,
                cost_usd: self.cost,
                reported_cost_usd: self.reported,
                computed_cost_usd: self.computed,
                unpriced_requests: self.unpriced,
                duration_ms: self.duration,
                sources: Sources {
                    events: self.events > 0,
                    metrics: self.metrics > 0,
                    sessionless: self.sessionless > 0,
                },
            },
            session_refs: self.sessions,
        }
    }
}

impl Questions for ClickHouseQuestions {
    fn data_extent(&self, visible: Visible) -> Answer<Option<(i64, i64)>> {
        let q = self.clone();
        async move { q.extent(&visible).await }.boxed()
    }

    fn cost_by_developer(&self, range: TimeRange, f: Filter) -> Answer<CostByDeveloper> {
        let q = self.clone();
        async move {
            let groups = q.usage(&range, &f, &cost::GROUPS, true).await?;
            let prompts = q.prompts(&range, &f).await?;
            let mut out = cost::fold(groups, &prompts, &range);
            if out.totals.unpriced_requests > 0 {
                out.unpriced_models = q.unpriced_models(&range, &f).await?;
            }
            Ok(out)
        }
        .boxed()
    }

    fn model_breakdown(&self, range: TimeRange, f: Filter) -> Answer<(Vec<ModelUsage>, Sources)> {
        let q = self.clone();
        async move {
            let groups = q.usage(&range, &f, &models::GROUPS, false).await?;
            let hists = q.histograms(Kind::Api, &range, &f, None).await?;
            Ok(models::fold(groups, &hists))
        }
        .boxed()
    }

    fn tool_latency(
        &self,
        range: TimeRange,
        f: Filter,
        tool: Option<String>,
    ) -> Answer<(Vec<ToolLatency>, Vec<ToolLatency>)> {
        let q = self.clone();
        async move {
            let hists = q
                .histograms(Kind::Tool, &range, &f, tool.as_deref())
                .await?;
            let rows = latency::tool_rows(hists);
            if !latency::any_mcp(&rows) {
                return Ok((rows, Vec::new()));
            }
            let mcp = q.mcp_histograms(&range, &f, tool.as_deref()).await?;
            Ok((rows, latency::mcp_rows(mcp)))
        }
        .boxed()
    }

    fn top_edited_files(
        &self,
        range: TimeRange,
        f: Filter,
        tool: Option<String>,
        top: usize,
    ) -> Answer<TopEditedFiles> {
        let q = self.clone();
        async move { q.top_edited(&range, &f, tool.as_deref(), top).await }.boxed()
    }

    fn search_events(
        &self,
        range: TimeRange,
        f: Filter,
        events: EventFilter,
        after: After,
        limit: usize,
        content: bool,
    ) -> Answer<Page<EventHit>> {
        let q = self.clone();
        async move {
            let sql = sql::search_events(&range, &f, &events, after, limit);
            let rows: Vec<RawHit> = q.fetch(&sql).await?;
            let mut page = Page {
                rows: Vec::new(),
                positions: Vec::new(),
                more: rows.len() > limit,
            };
            for raw in rows.into_iter().take(limit) {
                let (id, time_ns, hit) = raw.finish(&range, content);
                page.rows.push(hit);
                page.positions.push(Position::After(time_ns, id));
            }
            Ok(page)
        }
        .boxed()
    }

    fn list_sessions(
        &self,
        range: TimeRange,
        f: Filter,
        sort: String,
        offset: u64,
        limit: usize,
    ) -> Answer<(Vec<SessionSummary>, bool)> {
        let q = self.clone();
        async move { q.sessions(&range, &f, &sort, offset, limit).await }.boxed()
    }

    fn session_timeline(
        &self,
        range: TimeRange,
        visible: Visible,
        session_id: String,
        offset: u64,
        limit: usize,
        content: bool,
    ) -> Answer<Timeline> {
        let q = self.clone();
        async move {
            let f = Filter {
                session_id: Some(session_id.clone()),
                ..Filter::new(visible)
            };
            q.timeline(&range, &f, &session_id, offset, limit, content)
                .await
        }
        .boxed()
    }

    fn usage_over_time(
        &self,
        range: TimeRange,
        f: Filter,
        bucket: Bucket,
        split: Split,
    ) -> Answer<(Vec<SeriesPoint>, Sources)> {
        let q = self.clone();
        async move {
            let starts = timeseries::bucket_starts(&range, bucket)?;
            let groups = q.usage(&range, &f, &timeseries::dims(split), false).await?;
            timeseries::fold(&range, bucket, split, &starts, groups)
        }
        .boxed()
    }

    fn describe_data(&self, range: TimeRange, f: Filter) -> Answer<DataDescription> {
        let q = self.clone();
        async move { q.describe(&range, &f).await }.boxed()
    }
}

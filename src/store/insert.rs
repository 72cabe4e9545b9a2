//! One write transaction: contexts, sessions, raw rows (deduplicated) and the
//! rollups, all or nothing.
//!
//! Only rows that were actually inserted (`changes() == 1` on an
//! `INSERT OR IGNORE` keyed by the dedup key) feed the rollups and session
//! totals, so a retried batch changes nothing. Rollups are summed in memory
//! for the whole transaction, then written with one upsert per key.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Statement, params};

use super::WriteReceipt;
use crate::rows::{
    Attrs, Batch, Context, DedupKey, EventRow, MetricPointRow, SpanRow, Temporality,
};

/// Nanoseconds in one hour: rollups are keyed by `time_ns / HOUR_NS`.
pub(crate) const HOUR_NS: i64 = 3_600_000_000_000;

/// Entries the writer's id caches may hold before they are dropped and
/// rebuilt from the database (bounds memory over months of sessions).
const CACHE_LIMIT: usize = 200_000;

/// The UTC hour a time falls in.
pub(crate) fn hour_of(time_ns: i64) -> i64 {
    time_ns.div_euclid(HOUR_NS)
}

/// Inserts one event unless its dedup key is already stored.
const INSERT_EVENT: &str =
    "INSERT OR IGNORE INTO events (dedup, context_id, time_ns, observed_ns, event_name,
                    severity_number, severity_text, body, trace_id, span_id, prompt_id, sequence,
                    model, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens,
                    cost_usd, duration_ms, ttft_ms, tool_name, tool_use_id, success, decision,
                    decision_source, status_code, error, request_id, query_source, file_path,
                    mcp_server, mcp_tool, repository, branch, content_redacted, attrs)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31,
                    ?32, ?33, ?34, ?35, ?36)";

/// Inserts one metric point unless its dedup key is already stored.
const INSERT_POINT: &str =
    "INSERT OR IGNORE INTO metric_points (dedup, series_id, start_ns, time_ns, value,
                    delta, count, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// Inserts one span unless its dedup key is already stored.
const INSERT_SPAN: &str =
    "INSERT OR IGNORE INTO spans (dedup, context_id, trace_id, span_id, parent_span_id,
                    name, kind, start_ns, end_ns, status_code, status_message, tool_name,
                    tool_use_id, file_path, decision, decision_source, duration_ms, success, model,
                    content_redacted, attrs, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18, ?19, ?20, ?21, ?22)";

/// Ids the writer remembers between transactions, so that a context,
/// session or metric series costs one lookup per process, not per batch.
/// Cleared whenever a transaction rolls back or a prune deletes rows.
#[derive(Default)]
pub(crate) struct WriterCache {
    contexts: HashMap<DedupKey, i64>,
    sessions: HashMap<String, i64>,
    series: HashMap<SeriesKey, Series>,
}

impl WriterCache {
    /// Forgets everything (the database is the truth).
    pub(crate) fn clear(&mut self) {
        self.contexts.clear();
        self.sessions.clear();
        self.series.clear();
    }

    fn bound(&mut self) {
        if self.contexts.len() > CACHE_LIMIT
            || self.sessions.len() > CACHE_LIMIT
            || self.series.len() > CACHE_LIMIT
        {
            self.clear();
        }
    }
}

type SeriesKey = [u8; 16];

/// A metric series and its last accepted point.
#[derive(Clone, Copy)]
struct Series {
    id: i64,
    last: Option<LastPoint>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct LastPoint {
    start_ns: i64,
    time_ns: i64,
    value: f64,
}

/// Writes `batches` in one transaction and returns one receipt per batch.
/// On any error the transaction is rolled back and the cache cleared.
pub(crate) fn write_batches(
    conn: &Connection,
    cache: &mut WriterCache,
    batches: &[&Batch],
) -> rusqlite::Result<Vec<WriteReceipt>> {
    cache.bound();
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| {
        let mut tx = Tx::new(conn, cache);
        let mut receipts = Vec::with_capacity(batches.len());
        for batch in batches {
            receipts.push(tx.batch(batch)?);
        }
        tx.flush()?;
        conn.execute_batch("COMMIT")?;
        Ok(receipts)
    })();
    if result.is_err() {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        cache.clear();
    }
    result
}

/// Sums for one `api_hourly` row.
#[derive(Default)]
struct ApiSums {
    requests: i64,
    errors: i64,
    input_tokens: i64,
    output_tokens: i64,
    cache_read_tokens: i64,
    cache_creation_tokens: i64,
    cost_usd: f64,
    duration_ms: i64,
}

/// What this transaction adds to one session.
struct SessionSums<'b> {
    first_ns: i64,
    last_ns: i64,
    developer: Option<(&'b str, Option<&'static str>)>,
    events: i64,
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
    metric_tokens: [f64; 4],
}

impl SessionSums<'_> {
    fn new(first_ns: i64, last_ns: i64) -> Self {
        SessionSums {
            first_ns,
            last_ns,
            developer: None,
            events: 0,
            prompts: 0,
            api_requests: 0,
            api_errors: 0,
            tool_calls: 0,
            tool_failures: 0,
            input_tokens: 0,
            output_tokens: 0,
            cache_read_tokens: 0,
            cache_creation_tokens: 0,
            cost_usd: 0.0,
            metric_cost_usd: 0.0,
            metric_tokens: [0.0; 4],
        }
    }
}

/// Where a group's records go: its context row and its session row.
#[derive(Clone, Copy)]
struct Target {
    context_id: i64,
    session: Option<i64>,
}

/// `metric_hourly` key: hour, context, name, model, `type`.
type MetricKey<'b> = (i64, i64, &'b str, &'b str, &'b str);

/// The state of one transaction.
struct Tx<'c, 'b> {
    conn: &'c Connection,
    cache: &'c mut WriterCache,
    api: HashMap<(i64, i64, &'b str), ApiSums>,
    tool_latency: HashMap<(i64, &'b str, &'b str, i64), (i64, i64)>,
    api_latency: HashMap<(i64, &'b str, &'b str, i64), i64>,
    metrics: HashMap<MetricKey<'b>, (f64, i64)>,
    sessions: HashMap<i64, SessionSums<'b>>,
    dirty_series: Vec<SeriesKey>,
}

impl<'c, 'b> Tx<'c, 'b> {
    fn new(conn: &'c Connection, cache: &'c mut WriterCache) -> Self {
        Tx {
            conn,
            cache,
            api: HashMap::new(),
            tool_latency: HashMap::new(),
            api_latency: HashMap::new(),
            metrics: HashMap::new(),
            sessions: HashMap::new(),
            dirty_series: Vec::new(),
        }
    }

    fn batch(&mut self, batch: &'b Batch) -> rusqlite::Result<WriteReceipt> {
        // Each insert statement is looked up once per group, not per row.
        let conn = self.conn;
        let mut receipt = WriteReceipt::default();
        for group in &batch.events {
            let Some(target) = self.target(&group.context, group.rows.iter().map(|e| e.time_ns))?
            else {
                continue;
            };
            let mut insert = conn.prepare_cached(INSERT_EVENT)?;
            for event in &group.rows {
                let inserted = self.event(&mut insert, &group.context, target, event)?;
                count(&mut receipt, inserted);
            }
        }
        for group in &batch.metric_points {
            let times = group.rows.iter().map(|p| p.time_ns);
            let Some(target) = self.target(&group.context, times)? else {
                continue;
            };
            let mut insert = conn.prepare_cached(INSERT_POINT)?;
            for point in &group.rows {
                let inserted = self.metric_point(&mut insert, &group.context, target, point)?;
                count(&mut receipt, inserted);
            }
        }
        for group in &batch.spans {
            let times = group.rows.iter().flat_map(|s| [s.start_ns, s.end_ns]);
            let Some(target) = self.target(&group.context, times)? else {
                continue;
            };
            let mut insert = conn.prepare_cached(INSERT_SPAN)?;
            for span in &group.rows {
                let inserted = Self::span(&mut insert, target, span)?;
                count(&mut receipt, inserted);
            }
        }
        Ok(receipt)
    }

    /// Resolves the session and context of a group; `None` for an empty group.
    fn target(
        &mut self,
        ctx: &'b Context,
        times: impl Iterator<Item = i64>,
    ) -> rusqlite::Result<Option<Target>> {
        let Some((first, last)) = times.fold(None, |acc: Option<(i64, i64)>, t| {
            Some(acc.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))))
        }) else {
            return Ok(None);
        };
        let session = self.session(ctx, first, last)?;
        let context_id = self.context(ctx, session, first)?;
        Ok(Some(Target {
            context_id,
            session,
        }))
    }

    fn session(
        &mut self,
        ctx: &'b Context,
        first: i64,
        last: i64,
    ) -> rusqlite::Result<Option<i64>> {
        let Some(session_id) = ctx.session_id.as_deref() else {
            return Ok(None);
        };
        let kind = ctx.developer_kind.map(|k| k.as_str());
        let id = match self.cache.sessions.get(session_id) {
            Some(&id) => id,
            None => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO sessions (session_id, developer, developer_kind, first_ns, last_ns)
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (session_id) DO NOTHING",
                    )?
                    .execute(params![session_id, ctx.developer, kind, first, last])?;
                let id: i64 = self
                    .conn
                    .prepare_cached("SELECT id FROM sessions WHERE session_id = ?1")?
                    .query_row([session_id], |r| r.get(0))?;
                self.cache.sessions.insert(session_id.to_owned(), id);
                id
            }
        };
        let sums = self
            .sessions
            .entry(id)
            .or_insert_with(|| SessionSums::new(first, last));
        sums.first_ns = sums.first_ns.min(first);
        sums.last_ns = sums.last_ns.max(last);
        if sums.developer.is_none() {
            sums.developer = ctx.developer.as_deref().map(|d| (d, kind));
        }
        Ok(Some(id))
    }

    fn context(
        &mut self,
        ctx: &Context,
        session: Option<i64>,
        first: i64,
    ) -> rusqlite::Result<i64> {
        if let Some(&id) = self.cache.contexts.get(&ctx.key) {
            return Ok(id);
        }
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO contexts (key, session_ref, claude_code, service_name,
                    scope_name, scope_version, developer, developer_kind, user_email,
                    user_account_uuid, user_id, organization_id, terminal_type, app_version,
                    resource_attrs, shared_attrs, first_seen_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )?
            .execute(params![
                &ctx.key[..],
                session,
                ctx.claude_code,
                ctx.service_name,
                ctx.scope_name,
                ctx.scope_version,
                ctx.developer,
                ctx.developer_kind.map(|k| k.as_str()),
                ctx.user_email,
                ctx.user_account_uuid,
                ctx.user_id,
                ctx.organization_id,
                ctx.terminal_type,
                ctx.app_version,
                to_json(&ctx.resource_attrs)?,
                to_json(&ctx.shared_attrs)?,
                first,
            ])?;
        let (id, session_ref): (i64, Option<i64>) = self
            .conn
            .prepare_cached("SELECT id, session_ref FROM contexts WHERE key = ?1")?
            .query_row([&ctx.key[..]], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if session.is_some() && session_ref != session {
            // The session row was pruned and has been created again.
            self.conn
                .prepare_cached("UPDATE contexts SET session_ref = ?2 WHERE id = ?1")?
                .execute(params![id, session])?;
        }
        self.cache.contexts.insert(ctx.key, id);
        Ok(id)
    }

    fn event(
        &mut self,
        insert: &mut Statement<'_>,
        ctx: &'b Context,
        target: Target,
        e: &'b EventRow,
    ) -> rusqlite::Result<bool> {
        let changed = insert.execute(params![
            &e.dedup[..],
            target.context_id,
            e.time_ns,
            e.observed_ns,
            e.event_name,
            e.severity_number,
            e.severity_text,
            e.body,
            e.trace_id,
            e.span_id,
            e.prompt_id,
            e.sequence,
            e.model,
            e.input_tokens,
            e.output_tokens,
            e.cache_read_tokens,
            e.cache_creation_tokens,
            e.cost_usd,
            e.duration_ms,
            e.ttft_ms,
            e.tool_name,
            e.tool_use_id,
            e.success,
            e.decision,
            e.decision_source,
            e.status_code,
            e.error,
            e.request_id,
            e.query_source,
            e.file_path,
            e.mcp_server,
            e.mcp_tool,
            e.repository,
            e.branch,
            e.content_redacted,
            to_json_opt(&e.attrs)?,
        ])?;
        if changed == 0 {
            return Ok(false);
        }
        self.roll_up_event(ctx, target, e);
        Ok(true)
    }

    /// Adds an inserted event to the rollups and its session's totals.
    fn roll_up_event(&mut self, ctx: &'b Context, target: Target, e: &'b EventRow) {
        let mut no_session = SessionSums::new(0, 0);
        let session = match target.session {
            Some(id) => self.sessions.get_mut(&id).unwrap_or(&mut no_session),
            None => &mut no_session,
        };
        session.events += 1;
        if !ctx.claude_code {
            return;
        }
        let hour = hour_of(e.time_ns);
        let model = e.model.as_deref().unwrap_or("");
        let developer = ctx.developer.as_deref().unwrap_or("");
        let tokens = [
            e.input_tokens.unwrap_or(0),
            e.output_tokens.unwrap_or(0),
            e.cache_read_tokens.unwrap_or(0),
            e.cache_creation_tokens.unwrap_or(0),
        ];
        let cost = e.cost_usd.unwrap_or(0.0);
        match e.event_name.as_str() {
            "api_request" => {
                session.api_requests += 1;
                session.input_tokens += tokens[0];
                session.output_tokens += tokens[1];
                session.cache_read_tokens += tokens[2];
                session.cache_creation_tokens += tokens[3];
                session.cost_usd += cost;
                let sums = self
                    .api
                    .entry((hour, target.context_id, model))
                    .or_default();
                sums.requests += 1;
                sums.input_tokens += tokens[0];
                sums.output_tokens += tokens[1];
                sums.cache_read_tokens += tokens[2];
                sums.cache_creation_tokens += tokens[3];
                sums.cost_usd += cost;
                sums.duration_ms += e.duration_ms.unwrap_or(0);
                if let Some(ms) = e.duration_ms {
                    *self
                        .api_latency
                        .entry((hour, developer, model, ms))
                        .or_default() += 1;
                }
            }
            "api_error" => {
                session.api_errors += 1;
                self.api
                    .entry((hour, target.context_id, model))
                    .or_default()
                    .errors += 1;
            }
            "tool_result" => {
                let failed = i64::from(e.success == Some(false));
                session.tool_calls += 1;
                session.tool_failures += failed;
                if let Some(ms) = e.duration_ms {
                    let tool = e.tool_name.as_deref().unwrap_or("");
                    let hist = self
                        .tool_latency
                        .entry((hour, developer, tool, ms))
                        .or_default();
                    hist.0 += 1;
                    hist.1 += failed;
                }
            }
            "user_prompt" => session.prompts += 1,
            _ => {}
        }
    }

    fn metric_point(
        &mut self,
        insert: &mut Statement<'_>,
        ctx: &'b Context,
        target: Target,
        p: &'b MetricPointRow,
    ) -> rusqlite::Result<bool> {
        let attrs = to_json_opt(&p.attrs)?;
        let key = series_key(ctx, p, attrs.as_deref());
        let series = self.series(key, target.context_id, p, attrs.as_deref())?;
        let (delta, next) = cumulative_delta(p, series.last);
        let changed = insert.execute(params![
            &p.dedup[..],
            series.id,
            p.start_ns,
            p.time_ns,
            p.value,
            delta,
            p.count.map(|c| i64::try_from(c).unwrap_or(i64::MAX)),
            p.detail.as_ref().map(|d| d.to_string()),
        ])?;
        if changed == 0 {
            return Ok(false);
        }
        if let (Some(next), Some(cached)) = (next, self.cache.series.get_mut(&key)) {
            cached.last = Some(next);
            self.dirty_series.push(key);
        }
        let model = p.model.as_deref().unwrap_or("");
        let kind_attr = p.kind_attr.as_deref().unwrap_or("");
        let sums = self
            .metrics
            .entry((
                hour_of(p.time_ns),
                target.context_id,
                p.name.as_str(),
                model,
                kind_attr,
            ))
            .or_default();
        sums.0 += delta;
        sums.1 += 1;
        if let Some(session) = target.session.and_then(|id| self.sessions.get_mut(&id)) {
            match (p.name.as_str(), kind_attr) {
                ("claude_code.cost.usage", _) => session.metric_cost_usd += delta,
                ("claude_code.token.usage", "input") => session.metric_tokens[0] += delta,
                ("claude_code.token.usage", "output") => session.metric_tokens[1] += delta,
                ("claude_code.token.usage", "cacheRead") => session.metric_tokens[2] += delta,
                ("claude_code.token.usage", "cacheCreation") => session.metric_tokens[3] += delta,
                _ => {}
            }
        }
        Ok(true)
    }

    fn series(
        &mut self,
        key: SeriesKey,
        context_id: i64,
        p: &MetricPointRow,
        attrs: Option<&str>,
    ) -> rusqlite::Result<Series> {
        if let Some(series) = self.cache.series.get(&key) {
            return Ok(*series);
        }
        let found = self
            .conn
            .prepare_cached(
                "SELECT id, last_start_ns, last_time_ns, last_value FROM metric_series WHERE key = ?1",
            )?
            .query_row([&key[..]], |r| {
                let last = match (r.get(1)?, r.get(2)?, r.get(3)?) {
                    (Some(start_ns), Some(time_ns), Some(value)) => Some(LastPoint {
                        start_ns,
                        time_ns,
                        value,
                    }),
                    _ => None,
                };
                Ok(Series { id: r.get(0)?, last })
            })
            .optional()?;
        let series = match found {
            Some(series) => series,
            None => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO metric_series (key, context_id, name, unit, description, kind,
                            temporality, monotonic, model, kind_attr, attrs)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    )?
                    .execute(params![
                        &key[..],
                        context_id,
                        p.name,
                        p.unit,
                        p.description,
                        p.kind.as_str(),
                        p.temporality.as_i32(),
                        p.monotonic,
                        p.model,
                        p.kind_attr,
                        attrs,
                    ])?;
                Series {
                    id: self.conn.last_insert_rowid(),
                    last: None,
                }
            }
        };
        self.cache.series.insert(key, series);
        Ok(series)
    }

    fn span(insert: &mut Statement<'_>, target: Target, s: &SpanRow) -> rusqlite::Result<bool> {
        let parent = (!s.parent_span_id.is_empty()).then_some(&s.parent_span_id[..]);
        let changed = insert.execute(params![
            &s.dedup[..],
            target.context_id,
            s.trace_id,
            s.span_id,
            parent,
            s.name,
            s.kind,
            s.start_ns,
            s.end_ns,
            s.status_code,
            s.status_message,
            s.tool_name,
            s.tool_use_id,
            s.file_path,
            s.decision,
            s.decision_source,
            s.duration_ms,
            s.success,
            s.model,
            s.content_redacted,
            to_json_opt(&s.attrs)?,
            s.detail.as_ref().map(|d| d.to_string()),
        ])?;
        Ok(changed == 1)
    }

    /// Writes the summed rollups, session totals and series positions.
    fn flush(self) -> rusqlite::Result<()> {
        let conn = self.conn;
        let mut stmt = conn.prepare_cached(
            "INSERT INTO api_hourly (hour, context_id, model, requests, errors, input_tokens,
                output_tokens, cache_read_tokens, cache_creation_tokens, cost_usd, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (hour, context_id, model) DO UPDATE SET
                requests = requests + excluded.requests,
                errors = errors + excluded.errors,
                input_tokens = input_tokens + excluded.input_tokens,
                output_tokens = output_tokens + excluded.output_tokens,
                cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
                cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens,
                cost_usd = cost_usd + excluded.cost_usd,
                duration_ms = duration_ms + excluded.duration_ms",
        )?;
        for ((hour, context_id, model), s) in &self.api {
            stmt.execute(params![
                hour,
                context_id,
                model,
                s.requests,
                s.errors,
                s.input_tokens,
                s.output_tokens,
                s.cache_read_tokens,
                s.cache_creation_tokens,
                s.cost_usd,
                s.duration_ms,
            ])?;
        }
        let mut stmt = conn.prepare_cached(
            "INSERT INTO tool_latency_hist (hour, developer, tool_name, duration_ms, calls, failures)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (hour, developer, tool_name, duration_ms) DO UPDATE SET
                calls = calls + excluded.calls, failures = failures + excluded.failures",
        )?;
        for ((hour, developer, tool, ms), (calls, failures)) in &self.tool_latency {
            stmt.execute(params![hour, developer, tool, ms, calls, failures])?;
        }
        let mut stmt = conn.prepare_cached(
            "INSERT INTO api_latency_hist (hour, developer, model, duration_ms, requests)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (hour, developer, model, duration_ms) DO UPDATE SET
                requests = requests + excluded.requests",
        )?;
        for ((hour, developer, model, ms), requests) in &self.api_latency {
            stmt.execute(params![hour, developer, model, ms, requests])?;
        }
        let mut stmt = conn.prepare_cached(
            "INSERT INTO metric_hourly (hour, context_id, name, model, kind_attr, value, points)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (hour, context_id, name, model, kind_attr) DO UPDATE SET
                value = value + excluded.value, points = points + excluded.points",
        )?;
        for ((hour, context_id, name, model, kind_attr), (value, points)) in &self.metrics {
            stmt.execute(params![
                hour, context_id, name, model, kind_attr, value, points
            ])?;
        }
        let mut stmt = conn.prepare_cached(
            "UPDATE sessions SET
                first_ns = min(first_ns, ?2), last_ns = max(last_ns, ?3),
                developer_kind = CASE WHEN developer IS NULL THEN ?5 ELSE developer_kind END,
                developer = coalesce(developer, ?4),
                events = events + ?6, prompts = prompts + ?7,
                api_requests = api_requests + ?8, api_errors = api_errors + ?9,
                tool_calls = tool_calls + ?10, tool_failures = tool_failures + ?11,
                input_tokens = input_tokens + ?12, output_tokens = output_tokens + ?13,
                cache_read_tokens = cache_read_tokens + ?14,
                cache_creation_tokens = cache_creation_tokens + ?15,
                cost_usd = cost_usd + ?16, metric_cost_usd = metric_cost_usd + ?17,
                metric_input_tokens = metric_input_tokens + ?18,
                metric_output_tokens = metric_output_tokens + ?19,
                metric_cache_read_tokens = metric_cache_read_tokens + ?20,
                metric_cache_creation_tokens = metric_cache_creation_tokens + ?21
             WHERE id = ?1",
        )?;
        for (id, s) in &self.sessions {
            let (developer, kind) = s.developer.unzip();
            stmt.execute(params![
                id,
                s.first_ns,
                s.last_ns,
                developer,
                kind.flatten(),
                s.events,
                s.prompts,
                s.api_requests,
                s.api_errors,
                s.tool_calls,
                s.tool_failures,
                s.input_tokens,
                s.output_tokens,
                s.cache_read_tokens,
                s.cache_creation_tokens,
                s.cost_usd,
                s.metric_cost_usd,
                s.metric_tokens[0],
                s.metric_tokens[1],
                s.metric_tokens[2],
                s.metric_tokens[3],
            ])?;
        }
        let mut stmt = conn.prepare_cached(
            "UPDATE metric_series SET last_start_ns = ?2, last_time_ns = ?3, last_value = ?4
             WHERE id = ?1",
        )?;
        let mut written = std::collections::HashSet::new();
        for key in &self.dirty_series {
            if !written.insert(key) {
                continue;
            }
            if let Some(Series {
                id,
                last: Some(last),
            }) = self.cache.series.get(key)
            {
                stmt.execute(params![id, last.start_ns, last.time_ns, last.value])?;
            }
        }
        Ok(())
    }
}

fn count(receipt: &mut WriteReceipt, inserted: bool) {
    if inserted {
        receipt.inserted += 1;
    } else {
        receipt.duplicates += 1;
    }
}

/// The per-interval value of a point given the series' last accepted point,
/// and the new last point if this one advances the series.
///
/// Delta sums and gauges pass their value through. A cumulative point
/// contributes its increase since the last point; after a restart (new start
/// time) or a reset (lower total) its whole value; and nothing when it is not
/// newer than the last point (a late or out-of-order point).
fn cumulative_delta(p: &MetricPointRow, last: Option<LastPoint>) -> (f64, Option<LastPoint>) {
    let this = LastPoint {
        start_ns: p.start_ns,
        time_ns: p.time_ns,
        value: p.value,
    };
    let newer = last.is_none_or(|l| p.time_ns > l.time_ns);
    if p.temporality != Temporality::Cumulative {
        return (p.value, newer.then_some(this));
    }
    match last {
        None => (p.value, Some(this)),
        Some(_) if !newer => (0.0, None),
        Some(l) if p.start_ns != l.start_ns || p.value < l.value => (p.value, Some(this)),
        Some(l) => (p.value - l.value, Some(this)),
    }
}

/// Identity of a metric series: context, name, kind, temporality, model,
/// `type` and the remaining attributes (length-prefixed, so no two
/// different tuples hash the same input).
fn series_key(ctx: &Context, p: &MetricPointRow, attrs: Option<&str>) -> SeriesKey {
    let mut h = blake3::Hasher::new();
    h.update(&ctx.key);
    h.update(&p.temporality.as_i32().to_le_bytes());
    let parts = [
        Some(p.name.as_str()),
        Some(p.kind.as_str()),
        p.model.as_deref(),
        p.kind_attr.as_deref(),
        attrs,
    ];
    for part in parts {
        match part {
            Some(s) => {
                h.update(&[1]);
                h.update(&(s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
            None => {
                h.update(&[0]);
            }
        }
    }
    let mut key = [0u8; 16];
    key.copy_from_slice(&h.finalize().as_bytes()[..16]);
    key
}

fn to_json(attrs: &Attrs) -> rusqlite::Result<String> {
    serde_json::to_string(attrs).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// JSON text of an attribute map, NULL when it is empty.
fn to_json_opt(attrs: &Attrs) -> rusqlite::Result<Option<String>> {
    if attrs.is_empty() {
        Ok(None)
    } else {
        to_json(attrs).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::MetricKind;

    fn point(temporality: Temporality, start_ns: i64, time_ns: i64, value: f64) -> MetricPointRow {
        MetricPointRow {
            dedup: [0; 16],
            name: "m".into(),
            unit: String::new(),
            description: String::new(),
            kind: MetricKind::Sum,
            temporality,
            monotonic: true,
            start_ns,
            time_ns,
            value,
            count: None,
            detail: None,
            model: None,
            kind_attr: None,
            attrs: Attrs::new(),
        }
    }

    #[test]
    fn cumulative_delta_rules() {
        let c = Temporality::Cumulative;
        let last = Some(LastPoint {
            start_ns: 100,
            time_ns: 200,
            value: 10.0,
        });
        // first point of a series: its whole total
        assert_eq!(cumulative_delta(&point(c, 100, 200, 10.0), None).0, 10.0);
        // normal increase
        let (d, next) = cumulative_delta(&point(c, 100, 300, 14.5), last);
        assert_eq!(d, 4.5);
        assert_eq!(next.map(|n| n.value), Some(14.5));
        // restart: new start time
        assert_eq!(cumulative_delta(&point(c, 250, 300, 3.0), last).0, 3.0);
        // reset: lower total, same start
        assert_eq!(cumulative_delta(&point(c, 100, 300, 2.0), last).0, 2.0);
        // out of order / repeated time: nothing, series unchanged
        assert_eq!(
            cumulative_delta(&point(c, 100, 150, 8.0), last),
            (0.0, None)
        );
        assert_eq!(
            cumulative_delta(&point(c, 100, 200, 12.0), last),
            (0.0, None)
        );
        // delta temporality passes through even when older
        assert_eq!(
            cumulative_delta(&point(Temporality::Delta, 0, 150, 7.0), last),
            (7.0, None)
        );
    }
}

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
use super::event_time;
use super::rollup::{CatalogEntry, Rollups, Target};
use super::series::{LastPoint, SeriesKey, cumulative_delta, series_key};
use crate::rows::{Attrs, Batch, Context, DedupKey, EventRow, MetricPointRow, SpanRow};

/// Entries the writer's id caches may hold before they are dropped and
/// rebuilt from the database (bounds memory over months of sessions).
const CACHE_LIMIT: usize = 200_000;

/// Inserts one event unless its dedup key is already stored.
const INSERT_EVENT: &str =
    "INSERT OR IGNORE INTO events (dedup, context_id, time_ns, observed_ns, event_name,
                    severity_number, severity_text, body, trace_id, span_id, prompt_id, sequence,
                    model, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens,
                    cost_usd, duration_ms, ttft_ms, tool_name, tool_use_id, success, decision,
                    decision_source, status_code, error, request_id, query_source, file_path,
                    mcp_server, mcp_tool, repository, branch, content_redacted, attrs,
                    event_timestamp_ms, model_variant, reasoning_tokens, computed_cost_usd,
                    cost_computed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31,
                    ?32, ?33, ?34, ?35, ?36, ?37, ?38, ?39, ?40, ?41)";

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
                    content_redacted, attrs, detail, model_variant)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, ?18, ?19, ?20, ?21, ?22, ?23)";

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

/// A metric series and its last accepted point.
#[derive(Clone, Copy)]
struct Series {
    id: i64,
    last: Option<LastPoint>,
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

/// The state of one transaction.
struct Tx<'c, 'b> {
    conn: &'c Connection,
    cache: &'c mut WriterCache,
    rollups: Rollups<'b>,
    dirty_series: Vec<SeriesKey>,
}

impl<'c, 'b> Tx<'c, 'b> {
    fn new(conn: &'c Connection, cache: &'c mut WriterCache) -> Self {
        Tx {
            conn,
            cache,
            rollups: Rollups::default(),
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
                if inserted {
                    self.rollups.add_catalog(
                        &group.context,
                        CatalogEntry::named("span", &span.name, span.start_ns),
                    );
                }
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
                        "INSERT INTO sessions (session_id, developer, developer_kind, first_ns, last_ns, agent)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (session_id) DO NOTHING",
                    )?
                    .execute(params![
                        session_id,
                        ctx.developer,
                        kind,
                        first,
                        last,
                        ctx.agent.map(|a| a.as_str())
                    ])?;
                let id: i64 = self
                    .conn
                    .prepare_cached("SELECT id FROM sessions WHERE session_id = ?1")?
                    .query_row([session_id], |r| r.get(0))?;
                self.cache.sessions.insert(session_id.to_owned(), id);
                id
            }
        };
        let developer = ctx.developer.as_deref().map(|d| (d, kind));
        self.rollups.touch_session(id, first, last, developer);
        Ok(Some(id))
    }

    /// Records the version and resource attribute keys of a new context
    /// (describe_data lists them without scanning contexts).
    fn context_values(&self, ctx: &Context) -> rusqlite::Result<()> {
        let developer = ctx.developer.as_deref().unwrap_or("");
        let mut stmt = self.conn.prepare_cached(
            "INSERT OR IGNORE INTO context_values (developer, kind, value) VALUES (?1, ?2, ?3)",
        )?;
        if let Some(v) = &ctx.app_version {
            stmt.execute(params![developer, "version", v])?;
        }
        if let Some(a) = ctx.agent {
            stmt.execute(params![developer, "agent", a.as_str()])?;
            if let Some(v) = &ctx.agent_version {
                stmt.execute(params![developer, "agent_version", format!("{a} {v}")])?;
            }
        }
        for key in ctx.resource_attrs.keys() {
            stmt.execute(params![developer, "resource_key", key])?;
        }
        Ok(())
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
        let created = self
            .conn
            .prepare_cached(
                "INSERT OR IGNORE INTO contexts (key, session_ref, claude_code, service_name,
                    scope_name, scope_version, developer, developer_kind, user_email,
                    user_account_uuid, user_id, organization_id, terminal_type, app_version,
                    resource_attrs, shared_attrs, first_seen_ns, agent, agent_version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                    ?18, ?19)",
            )?
            .execute(params![
                &ctx.key[..],
                session,
                ctx.claude_code(),
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
                ctx.agent.map(|a| a.as_str()),
                ctx.agent_version,
            ])?;
        if created == 1 {
            self.context_values(ctx)?;
        }
        let (id, session_ref): (i64, Option<i64>) = self
            .conn
            .prepare_cached("SELECT id, session_ref FROM contexts WHERE key = ?1")?
            .query_row([&ctx.key[..]], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if session.is_some() && session_ref != session {
            // The session row was pruned and has been created again.
            self.conn
                .prepare_cached("UPDATE contexts SET session_ref = ?2 WHERE id = ?1")?
                .execute(params![id, session])?;
            // Its rows left since then count by the new session now.
            super::counted::mark_hours_of(self.conn, super::counted::Owner::Context(id))?;
            super::edits::session_changed(self.conn, id, session)?;
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
        let (attrs, event_timestamp_ms) = event_attrs(e)?;
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
            attrs,
            event_timestamp_ms,
            e.model_variant,
            e.reasoning_tokens,
            e.computed_cost_usd,
            e.cost_computed,
        ])?;
        if changed == 0 {
            return Ok(false);
        }
        if super::edits::is_edit_event(e) {
            super::edits::add(
                self.conn,
                &super::edits::EditEvent {
                    id: self.conn.last_insert_rowid(),
                    time_ns: e.time_ns,
                    context_id: target.context_id,
                    developer: ctx.developer.as_deref(),
                    session: target.session,
                    event_name: &e.event_name,
                    tool_name: e.tool_name.as_deref().unwrap_or_default(),
                    tool_use_id: e.tool_use_id.as_deref(),
                    file_path: e.file_path.as_deref(),
                    decision: e.decision.as_deref(),
                    repository: e.repository.as_deref(),
                    branch: e.branch.as_deref(),
                },
            )?;
        }
        self.rollups.add_event(ctx, target, e);
        Ok(true)
    }

    /// Adds an inserted event to the rollups and its session's totals.
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
            &stored_dedup(p.time_ns, &p.dedup)[..],
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
        self.rollups.add_point(ctx, target, p, delta);
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
        let stored = stored_series_key(context_id, &key);
        let found = self
            .conn
            .prepare_cached(
                "SELECT id, last_start_ns, last_time_ns, last_value FROM metric_series WHERE key = ?1",
            )?
            .query_row([&stored[..]], |r| {
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
                            temporality, monotonic, model, kind_attr, attrs, model_variant)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    )?
                    .execute(params![
                        &stored[..],
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
                        p.model_variant,
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
            &stored_dedup(s.start_ns, &s.dedup)[..],
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
            s.model_variant,
        ])?;
        Ok(changed == 1)
    }

    /// Writes the summed rollups, session totals and series positions.
    fn flush(self) -> rusqlite::Result<()> {
        let conn = self.conn;
        self.rollups.write(conn)?;
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

/// The `attrs` JSON of an event and its `event_timestamp_ms` column: an
/// `event.timestamp` that [`event_time`] can write back exactly is stored as
/// an offset instead of as JSON text.
fn event_attrs(e: &EventRow) -> rusqlite::Result<(Option<String>, Option<i64>)> {
    let offset = e
        .attrs
        .get(event_time::KEY)
        .and_then(|v| v.as_str())
        .and_then(|text| event_time::offset_ms(e.time_ns, text));
    let Some(offset) = offset else {
        return Ok((to_json_opt(&e.attrs)?, None));
    };
    if e.attrs.len() == 1 {
        return Ok((None, Some(offset)));
    }
    let rest = AttrsWithout {
        attrs: &e.attrs,
        without: event_time::KEY,
    };
    let json = serde_json::to_string(&rest)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    Ok((Some(json), Some(offset)))
}

/// An attribute map serialized without one key.
struct AttrsWithout<'a> {
    attrs: &'a Attrs,
    without: &'a str,
}

impl serde::Serialize for AttrsWithout<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(
            self.attrs
                .iter()
                .filter(|(k, _)| k.as_str() != self.without),
        )
    }
}

/// The `dedup` column of metric points and spans: the record's second (big-endian `u32`) followed by
/// its 16-byte dedup key.
///
/// Dedup keys are hashes, so inserting them as they are lands every row on
/// a random page of the unique index, and each commit rewrites hundreds of
/// index pages into the WAL. Prefixed with the record's time, new keys land
/// next to each other. Deduplication is unchanged: equal keys come from
/// equal records, which have equal times.
pub(crate) fn stored_dedup(time_ns: i64, key: &DedupKey) -> [u8; 20] {
    let second = u32::try_from(time_ns.div_euclid(1_000_000_000).max(0)).unwrap_or(u32::MAX);
    let mut stored = [0u8; 20];
    stored[..4].copy_from_slice(&second.to_be_bytes());
    stored[4..].copy_from_slice(key);
    stored
}

/// The `key` column of a metric series: its context id (big-endian) followed
/// by its 16-byte key. The series of a new context land at the end of the
/// unique index rather than at random places of it; the key is unchanged in
/// meaning (the hash already covers the context).
pub(crate) fn stored_series_key(context_id: i64, key: &SeriesKey) -> [u8; 24] {
    let mut stored = [0u8; 24];
    stored[..8].copy_from_slice(&context_id.to_be_bytes());
    stored[8..].copy_from_slice(key);
    stored
}

fn count(receipt: &mut WriteReceipt, inserted: bool) {
    if inserted {
        receipt.inserted += 1;
    } else {
        receipt.duplicates += 1;
    }
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

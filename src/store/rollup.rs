//! Rollups kept in the same transaction as the raw rows: `api_hourly`,
//! `prompt_hourly`, `metric_hourly`, the exact latency histograms, session
//! totals and the catalog (`catalog_hourly`, `catalog_daily`).
//!
//! Sums are kept in memory for the whole transaction and written with one
//! upsert (`x = x + excluded.x`) per key, so a group commit of many batches
//! costs one statement per touched key rather than one per record.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, ToSql, params};

use super::hist::{Hist, add, add_text, to_text};

use crate::rows::{Context, EventRow, MetricPointRow};

/// Nanoseconds in one hour: rollups are keyed by `time_ns / HOUR_NS` (the
/// query layer's segments use the same constant).
pub const HOUR_NS: i64 = 3_600_000_000_000;

/// The UTC hour a time falls in.
pub(crate) fn hour_of(time_ns: i64) -> i64 {
    time_ns.div_euclid(HOUR_NS)
}

/// Where a group's records go: its context row and its session row.
#[derive(Clone, Copy)]
pub(crate) struct Target {
    /// `contexts.id`
    pub(crate) context_id: i64,
    /// `sessions.id`, when the records carry a `session.id`.
    pub(crate) session: Option<i64>,
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
    reasoning_tokens: i64,
    cost_usd: f64,
    reported_cost_usd: f64,
    computed_cost_usd: f64,
    unpriced: i64,
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

/// Where a usage metric point goes: 0 cost, 1..=4 input, output, cache
/// read and cache creation tokens (`claude_code.token.usage`'s `type`);
/// `None` for any other metric or type.
pub fn usage_slot(name: &str, kind: &str) -> Option<usize> {
    match (name, kind) {
        ("claude_code.cost.usage", _) => Some(0),
        ("claude_code.token.usage", "input") => Some(1),
        ("claude_code.token.usage", "output") => Some(2),
        ("claude_code.token.usage", "cacheRead") => Some(3),
        ("claude_code.token.usage", "cacheCreation") => Some(4),
        _ => None,
    }
}

/// `metric_hourly` key: hour, context, name, model, `type`.
type MetricKey<'b> = (i64, i64, &'b str, &'b str, &'b str);

/// `catalog_hourly` key: hour, developer, developer kind, signal, name
/// (`''` for no developer or kind).
type CatalogKey<'b> = (i64, &'b str, &'static str, &'static str, &'b str);

/// Sums for one catalog row.
struct CatalogSums {
    records: i64,
    first_ns: i64,
    last_ns: i64,
    with_path: i64,
    with_text: i64,
    redacted: i64,
}

impl Default for CatalogSums {
    fn default() -> Self {
        CatalogSums {
            records: 0,
            first_ns: i64::MAX,
            last_ns: i64::MIN,
            with_path: 0,
            with_text: 0,
            redacted: 0,
        }
    }
}

impl CatalogSums {
    fn merge(&mut self, o: &CatalogSums) {
        self.records += o.records;
        self.first_ns = self.first_ns.min(o.first_ns);
        self.last_ns = self.last_ns.max(o.last_ns);
        self.with_path += o.with_path;
        self.with_text += o.with_text;
        self.redacted += o.redacted;
    }
}

/// One record as the catalog counts it.
pub(crate) struct CatalogEntry<'b> {
    pub(crate) signal: &'static str,
    pub(crate) name: &'b str,
    pub(crate) time_ns: i64,
    pub(crate) with_path: bool,
    pub(crate) with_text: bool,
    pub(crate) redacted: bool,
}

impl<'b> CatalogEntry<'b> {
    /// An event: its name, time, and what describe_data reports of it.
    pub(crate) fn event(e: &'b EventRow) -> Self {
        CatalogEntry {
            signal: "event",
            name: &e.event_name,
            time_ns: e.time_ns,
            with_path: e.file_path.is_some(),
            with_text: e.event_name == "user_prompt" && e.attrs.contains_key("prompt"),
            redacted: e.content_redacted,
        }
    }

    /// A metric point or span: name and time only.
    pub(crate) fn named(signal: &'static str, name: &'b str, time_ns: i64) -> Self {
        CatalogEntry {
            signal,
            name,
            time_ns,
            with_path: false,
            with_text: false,
            redacted: false,
        }
    }
}

/// Everything one transaction adds to the rollups.
#[derive(Default)]
pub(crate) struct Rollups<'b> {
    metric_usage: HashMap<(i64, i64, &'b str), [f64; 5]>,
    api_developer_hours: std::collections::HashSet<(&'b str, i64)>,
    catalog: HashMap<CatalogKey<'b>, CatalogSums>,
    api: HashMap<(i64, i64, &'b str), ApiSums>,
    tool_latency: HashMap<(i64, &'b str, &'b str, i64), (i64, i64)>,
    api_latency: HashMap<(i64, &'b str, &'b str, i64), i64>,
    prompts: HashMap<(i64, i64), i64>,
    metrics: HashMap<MetricKey<'b>, (f64, i64)>,
    sessions: HashMap<i64, SessionSums<'b>>,
}

impl<'b> Rollups<'b> {
    /// Notes that a group of records spanning `first..=last` belongs to
    /// session `id`; the first developer seen names the session.
    pub(crate) fn touch_session(
        &mut self,
        id: i64,
        first: i64,
        last: i64,
        developer: Option<(&'b str, Option<&'static str>)>,
    ) {
        let sums = self
            .sessions
            .entry(id)
            .or_insert_with(|| SessionSums::new(first, last));
        sums.first_ns = sums.first_ns.min(first);
        sums.last_ns = sums.last_ns.max(last);
        if sums.developer.is_none() {
            sums.developer = developer;
        }
    }

    /// Counts an inserted record in the catalog (describe_data).
    pub(crate) fn add_catalog(&mut self, ctx: &'b Context, r: CatalogEntry<'b>) {
        let key = (
            hour_of(r.time_ns),
            ctx.developer.as_deref().unwrap_or(""),
            ctx.developer_kind.map(|k| k.as_str()).unwrap_or(""),
            r.signal,
            r.name,
        );
        let sums = self.catalog.entry(key).or_default();
        sums.merge(&CatalogSums {
            records: 1,
            first_ns: r.time_ns,
            last_ns: r.time_ns,
            with_path: i64::from(r.with_path),
            with_text: i64::from(r.with_text),
            redacted: i64::from(r.redacted),
        });
    }

    /// Adds an inserted event.
    pub(crate) fn add_event(&mut self, ctx: &'b Context, target: Target, e: &'b EventRow) {
        self.add_catalog(ctx, CatalogEntry::event(e));
        let mut no_session = SessionSums::new(0, 0);
        let session = match target.session {
            Some(id) => self.sessions.get_mut(&id).unwrap_or(&mut no_session),
            None => &mut no_session,
        };
        session.events += 1;
        let hour = hour_of(e.time_ns);
        if e.event_name == "user_prompt" {
            *self.prompts.entry((hour, target.context_id)).or_default() += 1;
        }
        if ctx.agent.is_none() {
            return;
        }
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
                session.input_tokens = session.input_tokens.saturating_add(tokens[0]);
                session.output_tokens = session.output_tokens.saturating_add(tokens[1]);
                session.cache_read_tokens = session.cache_read_tokens.saturating_add(tokens[2]);
                session.cache_creation_tokens =
                    session.cache_creation_tokens.saturating_add(tokens[3]);
                session.cost_usd += cost;
                let sums = self
                    .api
                    .entry((hour, target.context_id, model))
                    .or_default();
                sums.requests += 1;
                sums.input_tokens = sums.input_tokens.saturating_add(tokens[0]);
                sums.output_tokens = sums.output_tokens.saturating_add(tokens[1]);
                sums.cache_read_tokens = sums.cache_read_tokens.saturating_add(tokens[2]);
                sums.cache_creation_tokens = sums.cache_creation_tokens.saturating_add(tokens[3]);
                sums.cost_usd += cost;
                sums.reasoning_tokens = sums
                    .reasoning_tokens
                    .saturating_add(e.reasoning_tokens.unwrap_or(0));
                if !e.cost_computed {
                    sums.reported_cost_usd += cost;
                }
                sums.computed_cost_usd += e.computed_cost_usd.unwrap_or(0.0);
                sums.unpriced += i64::from(e.cost_usd.is_none());
                sums.duration_ms = sums.duration_ms.saturating_add(e.duration_ms.unwrap_or(0));
                self.api_developer_hours.insert((developer, hour));
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

    /// Adds an inserted metric point whose per-interval value is `delta`.
    pub(crate) fn add_point(
        &mut self,
        ctx: &'b Context,
        target: Target,
        p: &'b MetricPointRow,
        delta: f64,
    ) {
        self.add_catalog(ctx, CatalogEntry::named("metric", &p.name, p.time_ns));
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
        let Some(slot) = usage_slot(&p.name, kind_attr) else {
            return;
        };
        self.metric_usage
            .entry((hour_of(p.time_ns), target.context_id, model))
            .or_default()[slot] += delta;
        if let Some(session) = target.session.and_then(|id| self.sessions.get_mut(&id)) {
            match slot {
                0 => session.metric_cost_usd += delta,
                n => session.metric_tokens[n - 1] += delta,
            }
        }
    }

    /// Writes the sums: one upsert per rollup key, one update per session.
    pub(crate) fn write(&self, conn: &Connection) -> rusqlite::Result<()> {
        self.write_catalog(conn)?;
        self.write_latency(conn)?;
        let mut stmt = conn.prepare_cached(
            "INSERT INTO metric_usage_hourly (hour, context_id, model, cost_usd, input_tokens,
                output_tokens, cache_read_tokens, cache_creation_tokens)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (hour, context_id, model) DO UPDATE SET
                cost_usd = cost_usd + excluded.cost_usd,
                input_tokens = input_tokens + excluded.input_tokens,
                output_tokens = output_tokens + excluded.output_tokens,
                cache_read_tokens = cache_read_tokens + excluded.cache_read_tokens,
                cache_creation_tokens = cache_creation_tokens + excluded.cache_creation_tokens",
        )?;
        for ((hour, context_id, model), v) in &self.metric_usage {
            stmt.execute(params![
                hour, context_id, model, v[0], v[1], v[2], v[3], v[4]
            ])?;
        }
        let mut stmt = conn.prepare_cached(
            "INSERT OR IGNORE INTO api_developer_hours (developer, hour) VALUES (?1, ?2)",
        )?;
        for (developer, hour) in &self.api_developer_hours {
            stmt.execute(params![developer, hour])?;
        }
        let mut stmt = conn.prepare_cached(
            "INSERT INTO api_hourly (hour, context_id, model, requests, errors, input_tokens,
                output_tokens, cache_read_tokens, cache_creation_tokens, cost_usd, duration_ms,
                reasoning_tokens, reported_cost_usd, computed_cost_usd, unpriced)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT (hour, context_id, model) DO UPDATE SET
                reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
                reported_cost_usd = reported_cost_usd + excluded.reported_cost_usd,
                computed_cost_usd = computed_cost_usd + excluded.computed_cost_usd,
                unpriced = unpriced + excluded.unpriced,
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
                s.reasoning_tokens,
                s.reported_cost_usd,
                s.computed_cost_usd,
                s.unpriced,
            ])?;
        }
        let mut stmt = conn.prepare_cached(
            "INSERT INTO prompt_hourly (hour, context_id, prompts) VALUES (?1, ?2, ?3)
             ON CONFLICT (hour, context_id) DO UPDATE SET prompts = prompts + excluded.prompts",
        )?;
        for ((hour, context_id), prompts) in &self.prompts {
            stmt.execute(params![hour, context_id, prompts])?;
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
                last_ns = max(last_ns, ?2),
                events = events + ?3, prompts = prompts + ?4,
                api_requests = api_requests + ?5, api_errors = api_errors + ?6,
                tool_calls = tool_calls + ?7, tool_failures = tool_failures + ?8,
                input_tokens = input_tokens + ?9, output_tokens = output_tokens + ?10,
                cache_read_tokens = cache_read_tokens + ?11,
                cache_creation_tokens = cache_creation_tokens + ?12,
                cost_usd = cost_usd + ?13, metric_cost_usd = metric_cost_usd + ?14,
                metric_input_tokens = metric_input_tokens + ?15,
                metric_output_tokens = metric_output_tokens + ?16,
                metric_cache_read_tokens = metric_cache_read_tokens + ?17,
                metric_cache_creation_tokens = metric_cache_creation_tokens + ?18
             WHERE id = ?1 RETURNING api_requests",
        )?;
        // Hours whose counted usage this transaction may change, marked for
        // the writer to recompute (see `super::counted`): those it wrote
        // usage rows in, the hour after a developer's requests (sessionless
        // metrics look back one hour), and every hour of a session whose
        // first request this is.
        let dirty: std::collections::BTreeSet<i64> = self
            .api
            .keys()
            .map(|k| k.0)
            .chain(self.metric_usage.keys().map(|k| k.0))
            .chain(self.api_developer_hours.iter().map(|(_, h)| h + 1))
            .collect();
        // The start and the developer of a session are indexed and seldom
        // change: set apart, only when they do, so that adding to a
        // session's totals does not rewrite its entries in those indexes.
        let mut start_and_developer = conn.prepare_cached(
            "UPDATE sessions SET
                first_ns = min(first_ns, ?2),
                developer_kind = CASE WHEN developer IS NULL THEN ?4 ELSE developer_kind END,
                developer = coalesce(developer, ?3)
             WHERE id = ?1 AND (first_ns > ?2 OR (developer IS NULL AND ?3 IS NOT NULL))",
        )?;
        for (id, s) in &self.sessions {
            let (developer, kind) = s.developer.unzip();
            start_and_developer.execute(params![id, s.first_ns, developer, kind.flatten()])?;
            let requests: Option<i64> = stmt
                .query_row(
                    params![
                        id,
                        s.last_ns,
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
                    ],
                    |r| r.get(0),
                )
                .optional()?;
            if s.api_requests > 0 && requests == Some(s.api_requests) {
                super::counted::mark_hours_of(conn, super::counted::Owner::Session(*id))?;
            }
        }
        super::counted::mark(conn, &dirty)
    }

    /// Merges this transaction's latencies into the hour and day
    /// histograms (text form, see `super::hist`).
    fn write_latency(&self, conn: &Connection) -> rusqlite::Result<()> {
        for (bucket, hours, tools_table, api_table) in [
            ("hour", 1, "tool_latency_hourly", "api_latency_hourly"),
            ("day", 24, "tool_latency_daily", "api_latency_daily"),
        ] {
            let mut tools: HashMap<LatencyKey<'_>, Hist> = HashMap::new();
            for (&(hour, dev, tool, ms), &(calls, failures)) in &self.tool_latency {
                let key = (hour.div_euclid(hours), dev, tool);
                add(tools.entry(key).or_default(), ms, calls, failures);
            }
            let mut api: HashMap<LatencyKey<'_>, Hist> = HashMap::new();
            for (&(hour, dev, model, ms), &requests) in &self.api_latency {
                let key = (hour.div_euclid(hours), dev, model);
                add(api.entry(key).or_default(), ms, requests, 0);
            }
            merge_hists(conn, tools_table, bucket, "tool_name", tools)?;
            merge_hists(conn, api_table, bucket, "model", api)?;
        }
        Ok(())
    }

    /// Upserts the catalog rows, hourly and daily.
    fn write_catalog(&self, conn: &Connection) -> rusqlite::Result<()> {
        let mut daily: HashMap<CatalogKey<'b>, CatalogSums> = HashMap::new();
        for (&(hour, dev, kind, signal, name), sums) in &self.catalog {
            daily
                .entry((hour.div_euclid(24), dev, kind, signal, name))
                .or_default()
                .merge(sums);
        }
        for (table, bucket, rows) in [
            ("catalog_hourly", "hour", &self.catalog),
            ("catalog_daily", "day", &daily),
        ] {
            // Table and column names come from the fixed list above.
            let mut stmt = conn.prepare_cached(&format!(
                "INSERT INTO {table} ({bucket}, developer, developer_kind, signal, name, records,
                    first_ns, last_ns, with_path, with_text, redacted)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT ({bucket}, developer, developer_kind, signal, name) DO UPDATE SET
                    records = records + excluded.records,
                    first_ns = min(first_ns, excluded.first_ns),
                    last_ns = max(last_ns, excluded.last_ns),
                    with_path = with_path + excluded.with_path,
                    with_text = with_text + excluded.with_text,
                    redacted = redacted + excluded.redacted"
            ))?;
            for ((b, dev, kind, signal, name), s) in rows {
                stmt.execute(params![
                    b,
                    dev,
                    kind,
                    signal,
                    name,
                    s.records,
                    s.first_ns,
                    s.last_ns,
                    s.with_path,
                    s.with_text,
                    s.redacted
                ])?;
            }
        }
        Ok(())
    }
}

/// A latency histogram's row: (hour or day, developer, tool or model).
type LatencyKey<'k> = (i64, &'k str, &'k str);

/// Adds `rows` ((hour or day, developer, tool or model), histogram) into
/// the text histograms of `table` (bucket column `bucket`, key column
/// `key`): each row is read, merged and written back once, and created
/// when not there yet.
pub(crate) fn merge_hists<D: ToSql, K: ToSql>(
    conn: &Connection,
    table: &str,
    bucket: &str,
    key: &str,
    rows: impl IntoIterator<Item = ((i64, D, K), Hist)>,
) -> rusqlite::Result<()> {
    // Table and column names come from the caller's fixed list.
    let mut read = conn.prepare_cached(&format!(
        "SELECT hist FROM {table} WHERE {bucket} = ?1 AND developer = ?2 AND {key} = ?3"
    ))?;
    let mut write = conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {table} ({bucket}, developer, {key}, hist) VALUES (?1, ?2, ?3, ?4)"
    ))?;
    for ((b, dev, name), mut hist) in rows {
        let old: Option<String> = read
            .query_row(params![b, dev, name], |r| r.get(0))
            .optional()?;
        if let Some(old) = old {
            add_text(&old, &mut hist);
        }
        write.execute(params![b, dev, name, to_text(&hist)])?;
    }
    Ok(())
}

//! A decoded [`Batch`] as ClickHouse rows: one row per record, its context
//! columns beside it (see [`super::schema`] for the columns, in the same
//! order as the fields here).

use crate::rows::{Attrs, Batch, Context, DedupKey};

/// A context's columns, computed once per context group.
#[derive(Debug, Clone, Default)]
pub struct ContextCols {
    agent: String,
    agent_version: String,
    service_name: String,
    scope_name: String,
    scope_version: String,
    session_id: String,
    developer: String,
    developer_kind: String,
    user_email: String,
    user_account_uuid: String,
    user_id: String,
    organization_id: String,
    terminal_type: String,
    app_version: String,
    resource: AttrCols,
    shared: AttrCols,
}

/// An attribute map as key and value arrays (values as text: strings
/// verbatim, anything else as JSON) and as JSON text.
#[derive(Debug, Clone, Default)]
pub struct AttrCols {
    keys: Vec<String>,
    values: Vec<String>,
    json: String,
}

impl AttrCols {
    fn of(attrs: &Attrs) -> AttrCols {
        AttrCols {
            keys: attrs.keys().cloned().collect(),
            values: attrs
                .values()
                .map(|v| match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Bool(b) => i32::from(*b).to_string(),
                    other => other.to_string(),
                })
                .collect(),
            json: serde_json::Value::Object(attrs.clone()).to_string(),
        }
    }
}

impl ContextCols {
    fn of(c: &Context) -> ContextCols {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        ContextCols {
            agent: c.agent.map(|a| a.as_str().to_string()).unwrap_or_default(),
            agent_version: s(&c.agent_version),
            service_name: s(&c.service_name),
            scope_name: c.scope_name.clone(),
            scope_version: c.scope_version.clone(),
            session_id: s(&c.session_id),
            developer: s(&c.developer),
            developer_kind: c
                .developer_kind
                .map(|k| k.as_str().to_string())
                .unwrap_or_default(),
            user_email: s(&c.user_email),
            user_account_uuid: s(&c.user_account_uuid),
            user_id: s(&c.user_id),
            organization_id: s(&c.organization_id),
            terminal_type: s(&c.terminal_type),
            app_version: s(&c.app_version),
            resource: AttrCols::of(&c.resource_attrs),
            shared: AttrCols::of(&c.shared_attrs),
        }
    }
}

/// Declares a record row: the context columns, then the record's own.
/// (The row derive of the `clickhouse` crate names columns by field and
/// has no `flatten`, so the context columns are spelled out here rather
/// than nested as a [`ContextCols`].)
macro_rules! record_row {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, clickhouse::Row, serde::Serialize, serde::Deserialize)]
        pub struct $name {
            dedup: DedupKey,
            agent: String,
            agent_version: String,
            service_name: String,
            scope_name: String,
            scope_version: String,
            session_id: String,
            developer: String,
            developer_kind: String,
            user_email: String,
            user_account_uuid: String,
            user_id: String,
            organization_id: String,
            terminal_type: String,
            app_version: String,
            resource_keys: Vec<String>,
            resource_values: Vec<String>,
            resource_attrs: String,
            shared_keys: Vec<String>,
            shared_values: Vec<String>,
            shared_attrs: String,
            $($(#[$fm])* $f: $t,)*
        }
    };
}

/// Builds a record row from its context columns and its own fields.
macro_rules! with_context {
    ($name:ident, $ctx:expr, $dedup:expr, { $($f:ident : $v:expr),* $(,)? }) => {{
        let c: &ContextCols = $ctx;
        $name {
            dedup: $dedup,
            agent: c.agent.clone(),
            agent_version: c.agent_version.clone(),
            service_name: c.service_name.clone(),
            scope_name: c.scope_name.clone(),
            scope_version: c.scope_version.clone(),
            session_id: c.session_id.clone(),
            developer: c.developer.clone(),
            developer_kind: c.developer_kind.clone(),
            user_email: c.user_email.clone(),
            user_account_uuid: c.user_account_uuid.clone(),
            user_id: c.user_id.clone(),
            organization_id: c.organization_id.clone(),
            terminal_type: c.terminal_type.clone(),
            app_version: c.app_version.clone(),
            resource_keys: c.resource.keys.clone(),
            resource_values: c.resource.values.clone(),
            resource_attrs: c.resource.json.clone(),
            shared_keys: c.shared.keys.clone(),
            shared_values: c.shared.values.clone(),
            shared_attrs: c.shared.json.clone(),
            $($f: $v,)*
        }
    }};
}

record_row!(
    /// A row of `events`.
    EventCh {
        time_ns: i64,
        observed_ns: i64,
        event_name: String,
        severity_number: i32,
        severity_text: Option<String>,
        body: Option<String>,
        trace_id: String,
        span_id: String,
        prompt_id: Option<String>,
        sequence: Option<i64>,
        model: String,
        model_variant: String,
        input_tokens: Option<i64>,
        output_tokens: Option<i64>,
        cache_read_tokens: Option<i64>,
        cache_creation_tokens: Option<i64>,
        reasoning_tokens: Option<i64>,
        cost_usd: Option<f64>,
        computed_cost_usd: Option<f64>,
        cost_computed: bool,
        duration_ms: Option<i64>,
        ttft_ms: Option<i64>,
        tool_name: Option<String>,
        tool_use_id: Option<String>,
        success: Option<bool>,
        decision: Option<String>,
        decision_source: Option<String>,
        status_code: Option<i64>,
        error: Option<String>,
        request_id: Option<String>,
        query_source: Option<String>,
        file_path: Option<String>,
        mcp_server: Option<String>,
        mcp_tool: Option<String>,
        repository: Option<String>,
        branch: Option<String>,
        content_redacted: bool,
        attr_keys: Vec<String>,
        attr_values: Vec<String>,
        attrs: String,
    }
);

record_row!(
    /// A row of `metric_points`.
    MetricCh {
        series: [u8; 16],
        name: String,
        unit: String,
        description: String,
        kind: String,
        temporality: i8,
        monotonic: bool,
        start_ns: i64,
        time_ns: i64,
        value: f64,
        count: Option<u64>,
        detail: Option<String>,
        model: String,
        model_variant: String,
        kind_attr: String,
        attr_keys: Vec<String>,
        attr_values: Vec<String>,
        attrs: String,
    }
);

record_row!(
    /// A row of `spans`.
    SpanCh {
        trace_id: String,
        span_id: String,
        parent_span_id: String,
        name: String,
        kind: i32,
        start_ns: i64,
        end_ns: i64,
        status_code: i32,
        status_message: Option<String>,
        tool_name: Option<String>,
        tool_use_id: Option<String>,
        file_path: Option<String>,
        decision: Option<String>,
        decision_source: Option<String>,
        duration_ms: Option<i64>,
        success: Option<bool>,
        model: String,
        model_variant: String,
        content_redacted: bool,
        attr_keys: Vec<String>,
        attr_values: Vec<String>,
        attrs: String,
        detail: Option<String>,
    }
);

/// The rows of one batch, per table.
#[derive(Debug, Default)]
pub struct Rows {
    /// `events`
    pub events: Vec<EventCh>,
    /// `metric_points`
    pub metrics: Vec<MetricCh>,
    /// `spans`
    pub spans: Vec<SpanCh>,
}

impl Rows {
    /// Records held.
    pub fn len(&self) -> usize {
        self.events.len() + self.metrics.len() + self.spans.len()
    }

    /// True when there is nothing to insert.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves `other`'s rows after these.
    pub fn append(&mut self, mut other: Rows) {
        self.events.append(&mut other.events);
        self.metrics.append(&mut other.metrics);
        self.spans.append(&mut other.spans);
    }
}

/// The ClickHouse rows of a decoded batch.
pub fn of_batch(batch: &Batch) -> Rows {
    let mut out = Rows::default();
    for g in &batch.events {
        let ctx = ContextCols::of(&g.context);
        for e in &g.rows {
            let a = AttrCols::of(&e.attrs);
            out.events.push(with_context!(EventCh, &ctx, e.dedup, {
                time_ns: e.time_ns,
                observed_ns: e.observed_ns,
                event_name: e.event_name.clone(),
                severity_number: e.severity_number,
                severity_text: e.severity_text.clone(),
                body: e.body.clone(),
                trace_id: e.trace_id.as_deref().map(hex::encode).unwrap_or_default(),
                span_id: e.span_id.as_deref().map(hex::encode).unwrap_or_default(),
                prompt_id: e.prompt_id.clone(),
                sequence: e.sequence,
                model: e.model.clone().unwrap_or_default(),
                model_variant: e.model_variant.clone().unwrap_or_default(),
                input_tokens: e.input_tokens,
                output_tokens: e.output_tokens,
                cache_read_tokens: e.cache_read_tokens,
                cache_creation_tokens: e.cache_creation_tokens,
                reasoning_tokens: e.reasoning_tokens,
                cost_usd: e.cost_usd,
                computed_cost_usd: e.computed_cost_usd,
                cost_computed: e.cost_computed,
                duration_ms: e.duration_ms,
                ttft_ms: e.ttft_ms,
                tool_name: e.tool_name.clone(),
                tool_use_id: e.tool_use_id.clone(),
                success: e.success,
                decision: e.decision.clone(),
                decision_source: e.decision_source.clone(),
                status_code: e.status_code,
                error: e.error.clone(),
                request_id: e.request_id.clone(),
                query_source: e.query_source.clone(),
                file_path: e.file_path.clone(),
                mcp_server: e.mcp_server.clone(),
                mcp_tool: e.mcp_tool.clone(),
                repository: e.repository.clone(),
                branch: e.branch.clone(),
                content_redacted: e.content_redacted,
                attr_keys: a.keys,
                attr_values: a.values,
                attrs: a.json,
            }));
        }
    }
    for g in &batch.metric_points {
        let ctx = ContextCols::of(&g.context);
        for p in &g.rows {
            let a = AttrCols::of(&p.attrs);
            let series = crate::store::series_key(&g.context, p, Some(&a.json));
            out.metrics.push(with_context!(MetricCh, &ctx, p.dedup, {
                series: series,
                name: p.name.clone(),
                unit: p.unit.clone(),
                description: p.description.clone(),
                kind: p.kind.as_str().to_string(),
                temporality: p.temporality.as_i32() as i8,
                monotonic: p.monotonic,
                start_ns: p.start_ns,
                time_ns: p.time_ns,
                value: p.value,
                count: p.count,
                detail: p.detail.as_ref().map(|d| d.to_string()),
                model: p.model.clone().unwrap_or_default(),
                model_variant: p.model_variant.clone().unwrap_or_default(),
                kind_attr: p.kind_attr.clone().unwrap_or_default(),
                attr_keys: a.keys,
                attr_values: a.values,
                attrs: a.json,
            }));
        }
    }
    for g in &batch.spans {
        let ctx = ContextCols::of(&g.context);
        for s in &g.rows {
            let a = AttrCols::of(&s.attrs);
            out.spans.push(with_context!(SpanCh, &ctx, s.dedup, {
                trace_id: hex::encode(&s.trace_id),
                span_id: hex::encode(&s.span_id),
                parent_span_id: hex::encode(&s.parent_span_id),
                name: s.name.clone(),
                kind: s.kind,
                start_ns: s.start_ns,
                end_ns: s.end_ns,
                status_code: s.status_code,
                status_message: s.status_message.clone(),
                tool_name: s.tool_name.clone(),
                tool_use_id: s.tool_use_id.clone(),
                file_path: s.file_path.clone(),
                decision: s.decision.clone(),
                decision_source: s.decision_source.clone(),
                duration_ms: s.duration_ms,
                success: s.success,
                model: s.model.clone().unwrap_or_default(),
                model_variant: s.model_variant.clone().unwrap_or_default(),
                content_redacted: s.content_redacted,
                attr_keys: a.keys,
                attr_values: a.values,
                attrs: a.json,
                detail: s.detail.as_ref().map(|d| d.to_string()),
            }));
        }
    }
    out
}

/// Inserts `rows`, table by table. A failure part-way leaves some tables
/// written: the caller does not acknowledge, the exporter retries, and the
/// retried rows replace themselves (same deduplication key).
pub async fn insert(client: &clickhouse::Client, rows: &Rows) -> Result<(), super::Error> {
    async fn table<T>(
        client: &clickhouse::Client,
        name: &str,
        rows: &[T],
    ) -> Result<(), super::Error>
    where
        T: for<'a> clickhouse::Row<Value<'a> = T> + clickhouse::RowWrite,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let mut ins = client.insert::<T>(name).await?;
        for r in rows {
            ins.write(r).await?;
        }
        ins.end().await?;
        Ok(())
    }
    table(client, "events", &rows.events).await?;
    table(client, "metric_points", &rows.metrics).await?;
    table(client, "spans", &rows.spans).await?;
    Ok(())
}

//! The ClickHouse tables, written for both the old servers some
//! distributions ship (18.16) and current releases: plain types (times as
//! `Int64` nanoseconds, no `DateTime64`, no `LowCardinality`, no JSON
//! type), `ReplacingMergeTree` keyed so that a retried record replaces
//! itself, and monthly partitions so retention drops whole parts.
//!
//! Every record carries its context (identity, session, agent, resource)
//! beside it rather than a context id: ClickHouse compresses the repeats,
//! and no question needs a join. Attribute maps are kept twice: as JSON
//! text for display, and as key and value arrays (values as text) for
//! filters, which old servers cannot run on JSON.

/// The version [`init`] records; a later schema adds its statements to
/// [`statements`] behind a higher number.
pub const VERSION: u32 = 3;

/// The context columns every record table starts with (see
/// [`super::rows::ContextCols`]).
const CONTEXT_COLUMNS: &str = "\
    dedup FixedString(16), \
    agent String, agent_version String, service_name String, scope_name String, \
    scope_version String, session_id String, developer String, developer_kind String, \
    user_email String, user_account_uuid String, user_id String, organization_id String, \
    terminal_type String, app_version String, \
    resource_keys Array(String), resource_values Array(String), resource_attrs String, \
    shared_keys Array(String), shared_values Array(String), shared_attrs String";

/// The record columns of each table, after the context columns.
const EVENT_COLUMNS: &str = "\
    time_ns Int64, observed_ns Int64, event_name String, severity_number Int32, \
    severity_text Nullable(String), body Nullable(String), trace_id String, span_id String, \
    prompt_id Nullable(String), sequence Nullable(Int64), model String, model_variant String, \
    input_tokens Nullable(Int64), output_tokens Nullable(Int64), \
    cache_read_tokens Nullable(Int64), cache_creation_tokens Nullable(Int64), \
    reasoning_tokens Nullable(Int64), cost_usd Nullable(Float64), \
    computed_cost_usd Nullable(Float64), cost_computed UInt8, duration_ms Nullable(Int64), \
    ttft_ms Nullable(Int64), tool_name Nullable(String), tool_use_id Nullable(String), \
    success Nullable(UInt8), decision Nullable(String), decision_source Nullable(String), \
    status_code Nullable(Int64), error Nullable(String), request_id Nullable(String), \
    query_source Nullable(String), file_path Nullable(String), mcp_server Nullable(String), \
    mcp_tool Nullable(String), repository Nullable(String), branch Nullable(String), \
    content_redacted UInt8, attr_keys Array(String), attr_values Array(String), attrs String";

const METRIC_COLUMNS: &str = "\
    series FixedString(16), name String, unit String, description String, kind String, \
    temporality Int8, monotonic UInt8, start_ns Int64, time_ns Int64, value Float64, \
    count Nullable(UInt64), detail Nullable(String), model String, model_variant String, \
    kind_attr String, attr_keys Array(String), attr_values Array(String), attrs String";

const SPAN_COLUMNS: &str = "\
    trace_id String, span_id String, parent_span_id String, name String, kind Int32, \
    start_ns Int64, end_ns Int64, status_code Int32, status_message Nullable(String), \
    tool_name Nullable(String), tool_use_id Nullable(String), file_path Nullable(String), \
    decision Nullable(String), decision_source Nullable(String), duration_ms Nullable(Int64), \
    success Nullable(UInt8), model String, model_variant String, content_redacted UInt8, \
    attr_keys Array(String), attr_values Array(String), attrs String, detail Nullable(String)";

/// The audit log's columns: the chain's node, then `crate::audit`'s stored
/// record, then the links (hashes as hex).
pub(crate) const AUDIT_COLUMNS: &str = "\
    node String, seq UInt64, time_ns Int64, request_id Nullable(String), \
    token_id Nullable(Int64), token_name Nullable(String), scope Nullable(String), \
    peer Nullable(String), user_agent Nullable(String), client_name Nullable(String), \
    client_version Nullable(String), method Nullable(String), tool Nullable(String), \
    arguments Nullable(String), outcome String, detail Nullable(String), rows Nullable(Int64), \
    truncated Nullable(UInt8), bytes Nullable(Int64), duration_ms Nullable(Int64), \
    prev_hash String, hash String";

/// The month partition of a nanosecond time column.
fn month(column: &str) -> String {
    format!("toYYYYMM(toDateTime(intDiv({column}, 1000000000)))")
}

/// The statements that create schema version [`VERSION`] in `db`, in order.
///
/// With a `cluster`, every statement runs `ON CLUSTER` (ClickHouse's
/// distributed DDL, which needs its ZooKeeper or Keeper): each record
/// table is a local table `NAME_local` on every shard behind a
/// `Distributed` table `NAME` on every server, sharded by the record's
/// deduplication key so that a retried record lands on the shard that
/// holds it (`FINAL` then counts it once); every shard holds every token.
pub fn statements(db: &str, cluster: Option<&str>) -> Vec<String> {
    let on = cluster.map_or(String::new(), |c| format!(" ON CLUSTER {c}"));
    let local = if cluster.is_some() { "_local" } else { "" };
    let mut out = vec![
        format!("CREATE DATABASE IF NOT EXISTS {db}{on}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.schema_version{on} (version UInt32, applied_ns Int64) \
             ENGINE = ReplacingMergeTree ORDER BY version"
        ),
    ];
    let mut table = |name: &str, definition: String, shard_key: &str| {
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {db}.{name}{local}{on} {definition}"
        ));
        if let Some(c) = cluster {
            out.push(format!(
                "CREATE TABLE IF NOT EXISTS {db}.{name}{on} AS {db}.{name}{local} \
                 ENGINE = Distributed({c}, {db}, {name}{local}, {shard_key})"
            ));
        }
    };
    let record = |columns: &str, order: &str, time: &str| {
        format!(
            "({CONTEXT_COLUMNS}, {columns}) ENGINE = ReplacingMergeTree PARTITION BY {} \
             ORDER BY ({order}, dedup)",
            month(time)
        )
    };
    table(
        "events",
        record(EVENT_COLUMNS, "event_name, time_ns", "time_ns"),
        "sipHash64(dedup)",
    );
    table(
        "metric_points",
        record(METRIC_COLUMNS, "name, time_ns", "time_ns"),
        "sipHash64(dedup)",
    );
    table(
        "spans",
        record(SPAN_COLUMNS, "name, start_ns", "start_ns"),
        "sipHash64(dedup)",
    );
    // Version 2: the access tokens every node shares. A token is one name;
    // a revocation is a later row of the same name with a higher
    // `version`, so `FINAL` reads each token as it is now. On a cluster
    // every shard holds a copy (`copy` is the shard), so tokens are still
    // checked while a shard is down.
    table(
        "tokens",
        "(name String, id Int64, scope String, developers String, secret_hash String, \
         created_ns Int64, expires_ns Nullable(Int64), revoked_ns Nullable(Int64), \
         version UInt64, copy UInt32) ENGINE = ReplacingMergeTree(version) ORDER BY name"
            .to_string(),
        "copy",
    );
    // Version 3: the audit log, a hash chain per node (`crate::audit`'s
    // chain; `super::audit`). On a cluster a node
    // writes its chain into the local table of the server it talks to, so
    // the chain lives on that shard; the distributed tables read them all.
    // Each insert also writes the chain's head through a materialized view
    // into `audit_heads`, kept apart from the log, so that deleting the
    // newest records of a chain is seen by `audit verify`.
    table(
        "audit_log",
        format!("({AUDIT_COLUMNS}) ENGINE = MergeTree ORDER BY (node, seq)"),
        "sipHash64(node)",
    );
    table(
        "audit_heads",
        "(node String, seq UInt64, hash String) ENGINE = ReplacingMergeTree(seq) ORDER BY node"
            .to_string(),
        "sipHash64(node)",
    );
    out.push(format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.audit_heads_mv{local}{on} \
         TO {db}.audit_heads{local} AS SELECT node, seq, hash FROM {db}.audit_log{local}"
    ));
    out
}

/// A cluster name as DDL takes it (it is written into the statements).
pub fn valid_cluster(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Creates what is missing and records [`VERSION`]; refuses a database
/// whose schema is newer than this build knows.
pub async fn init(
    client: &clickhouse::Client,
    db: &str,
    cluster: Option<&str>,
) -> Result<(), super::Error> {
    for s in statements(db, cluster) {
        client.query(&s).execute().await?;
    }
    let newest: u32 = client
        .query(&format!("SELECT max(version) FROM {db}.schema_version"))
        .fetch_one()
        .await?;
    if newest > VERSION {
        return Err(super::Error::Settings(format!(
            "the ClickHouse database {db} has schema version {newest}, newer than this build's \
             {VERSION}: run a newer tokentally"
        )));
    }
    if newest < VERSION {
        let now = jiff::Timestamp::now().as_nanosecond() as i64;
        client
            .query(&format!(
                "INSERT INTO {db}.schema_version (version, applied_ns) VALUES ({VERSION}, {now})"
            ))
            .execute()
            .await?;
    }
    Ok(())
}

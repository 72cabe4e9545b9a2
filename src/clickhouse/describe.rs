//! `describe_data` from ClickHouse: counts per event, metric and span
//! name in the range (each record once, `FINAL`), and over all data the
//! developers, agents and versions, resource attribute keys and event
//! bounds, all for the developers the caller may see; session counts come
//! from the same per-session sums as `list_sessions`.

use std::collections::BTreeSet;

use super::questions::{ClickHouseQuestions, none_if_empty};
use crate::agent::Agent;
use crate::query::QueryError;
use crate::query::describe::{DataDescription, Parts};
use crate::query::filter::{Filter, Sql, int};
use crate::query::time::TimeRange;

/// The record tables with the time column a range selects on.
const TABLES: [(&str, &str); 3] = [
    ("events", "time_ns"),
    ("metric_points", "time_ns"),
    ("spans", "start_ns"),
];

/// One distinct context of the stored records.
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct ContextRow {
    developer: String,
    developer_kind: String,
    agent: String,
    agent_version: String,
    resource_keys: Vec<String>,
}

/// One name's counts in the range.
#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct NameRow {
    kind: String,
    name: String,
    count: i64,
    first: i64,
    last: i64,
    with_path: i64,
    with_text: i64,
    redacted: i64,
}

impl ClickHouseQuestions {
    pub(super) async fn describe(
        &self,
        range: &TimeRange,
        f: &Filter,
    ) -> Result<DataDescription, QueryError> {
        let mine = |sql: &mut Sql| f.developer_conditions(sql, "nullIf(developer, '')");
        let mut sql = Sql::default();
        for (i, (table, time)) in TABLES.iter().enumerate() {
            if i > 0 {
                sql.push(" UNION ALL ");
            }
            let (kind, name, extra) = match *table {
                "events" => (
                    "event",
                    "event_name",
                    "toInt64(countIf(isNotNull(file_path))), \
                     toInt64(countIf(event_name = 'user_prompt' AND has(attr_keys, 'prompt'))), \
                     toInt64(sum(content_redacted))",
                ),
                "metric_points" => ("metric", "name", "toInt64(0), toInt64(0), toInt64(0)"),
                _ => ("span", "name", "toInt64(0), toInt64(0), toInt64(0)"),
            };
            sql.bind(
                &format!(
                    "SELECT '{kind}', {name}, toInt64(count()), min({time}), max({time}), {extra} \
                     FROM {table} FINAL WHERE {time} >= ? AND {time} < ?"
                ),
                [int(range.since_ns), int(range.until_ns)],
            );
            mine(&mut sql);
            sql.push(&format!(" GROUP BY {name}"));
        }
        let mut parts = Parts::default();
        for r in self.fetch::<NameRow>(&sql).await? {
            parts.with_path += r.with_path;
            parts.with_text += r.with_text;
            parts.redacted += r.redacted;
            parts
                .names
                .insert((r.kind, r.name), (r.count, Some(r.first), Some(r.last)));
        }
        parts.per_developer = self.sessions_per_developer(f).await?;
        // The rest over all data, from one read of the distinct contexts
        // of the three tables (without FINAL: a retried record adds no new
        // context).
        let mut sql = Sql::default();
        sql.push(
            "SELECT DISTINCT developer, developer_kind, agent, agent_version, resource_keys FROM (",
        );
        for (i, (table, _)) in TABLES.iter().enumerate() {
            if i > 0 {
                sql.push(" UNION ALL ");
            }
            sql.push(&format!(
                "SELECT DISTINCT developer, developer_kind, agent, agent_version, \
                 resource_keys FROM {table} WHERE 1"
            ));
            mine(&mut sql);
        }
        sql.push(")");
        let contexts: Vec<ContextRow> = self.fetch(&sql).await?;
        let mut developers = BTreeSet::new();
        let mut agents = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for c in contexts {
            if let Some(agent) = Agent::parse(&c.agent) {
                agents.insert((agent, none_if_empty(c.agent_version)));
            }
            developers.insert((none_if_empty(c.developer), none_if_empty(c.developer_kind)));
            keys.extend(c.resource_keys);
        }
        parts.developers = developers.into_iter().collect();
        parts.agents = agents.into_iter().collect();
        parts.resource_keys = keys.into_iter().take(200).collect();
        let mut sql = Sql::default();
        sql.push("SELECT toInt64(count()), min(time_ns), max(time_ns) FROM events WHERE 1");
        mine(&mut sql);
        let bounds: Vec<(i64, i64, i64)> = self.fetch(&sql).await?;
        parts.events = bounds
            .into_iter()
            .find(|(n, _, _)| *n > 0)
            .map(|(_, first, last)| (first, last));
        Ok(parts.assemble(range))
    }
}

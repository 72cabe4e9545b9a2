//! `describe_data`: what the store holds (for the caller's developers), so
//! an agent can plan its questions and explain gaps.

use super::QueryError;
use super::filter::{Filter, Sql, int};
use super::plan;
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

/// One coding agent the caller's data comes from.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct AgentInfo {
    /// `claude_code`, `codex`, `gemini_cli` or `opencode`.
    pub agent: String,
    /// Versions seen (all data); empty when the agent sends none (Gemini
    /// CLI sends Node.js's version as `service.version`, not its own).
    pub versions: Vec<String>,
    /// Sessions of this agent (whose first record it sent).
    pub sessions: i64,
}

/// The description.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataDescription {
    /// The coding agents the data comes from.
    pub agents: Vec<AgentInfo>,
    /// Counts per event name, metric and span name.
    pub names: Vec<NameCount>,
    /// Developers (at most 200).
    pub developers: Vec<DeveloperInfo>,
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

/// Counts of one signal and name.
#[derive(Default)]
struct Tally {
    count: i64,
    first: Option<i64>,
    last: Option<i64>,
}

/// What the catalog and raw edges say about the range.
#[derive(Default)]
struct Catalog {
    names: std::collections::BTreeMap<(String, String), Tally>,
    with_path: i64,
    with_text: i64,
    redacted: i64,
}

impl Catalog {
    fn add(&mut self, r: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
        let t = self.names.entry((r.get(0)?, r.get(1)?)).or_default();
        t.count += r.get::<_, i64>(2)?;
        let (first, last): (Option<i64>, Option<i64>) = (r.get(3)?, r.get(4)?);
        t.first = t.first.into_iter().chain(first).min();
        t.last = t.last.into_iter().chain(last).max();
        self.with_path += r.get::<_, Option<i64>>(5)?.unwrap_or(0);
        self.with_text += r.get::<_, Option<i64>>(6)?.unwrap_or(0);
        self.redacted += r.get::<_, Option<i64>>(7)?.unwrap_or(0);
        Ok(())
    }
}

const CATALOG_COLUMNS: &str = "signal, name, SUM(records), MIN(first_ns), MAX(last_ns), \
    SUM(with_path), SUM(with_text), SUM(redacted)";

/// The catalog over `range`: whole UTC days from `catalog_daily`, whole
/// hours from `catalog_hourly`, the partial hours at the edges from raw rows
/// (see [`plan::tiers`]).
fn catalog(
    conn: &rusqlite::Connection,
    f: &Filter,
    range: &TimeRange,
) -> Result<Catalog, QueryError> {
    let tiers = plan::tiers(range);
    let mut parts = Vec::new();
    let mut bucketed = |table: &str, column: &str, (from, to): (i64, i64)| {
        let mut sql = Sql::default();
        sql.bind(
            &format!("SELECT {CATALOG_COLUMNS} FROM {table} WHERE {column} >= ? AND {column} < ?"),
            [int(from), int(to)],
        );
        f.developer_conditions(&mut sql, "NULLIF(developer, '')");
        sql.push(" GROUP BY signal, name");
        parts.push(sql);
    };
    if let Some(days) = tiers.days {
        bucketed("catalog_daily", "day", days);
    }
    for hours in tiers.hours {
        bucketed("catalog_hourly", "hour", hours);
    }
    for (from, to) in tiers.raw {
        for (head, time) in [
            (
                "SELECT 'event', e.event_name, COUNT(*), MIN(e.time_ns), MAX(e.time_ns), \
                 SUM(e.file_path IS NOT NULL), \
                 SUM(e.event_name = 'user_prompt' AND json_extract(e.attrs, '$.prompt') IS NOT NULL), \
                 SUM(e.content_redacted) FROM events e JOIN contexts c ON c.id = e.context_id WHERE 1",
                "e.time_ns",
            ),
            (
                "SELECT 'metric', ms.name, COUNT(*), MIN(p.time_ns), MAX(p.time_ns), 0, 0, 0 \
                 FROM metric_points p CROSS JOIN metric_series ms ON ms.id = p.series_id \
                 JOIN contexts c ON c.id = ms.context_id WHERE 1",
                "p.time_ns",
            ),
            (
                "SELECT 'span', s.name, COUNT(*), MIN(s.start_ns), MAX(s.start_ns), 0, 0, 0 \
                 FROM spans s JOIN contexts c ON c.id = s.context_id WHERE 1",
                "s.start_ns",
            ),
        ] {
            let mut sql = Sql::default();
            sql.bind(
                &format!("{head} AND {time} >= ? AND {time} < ?"),
                [int(from), int(to)],
            );
            f.developer_conditions(&mut sql, "c.developer");
            sql.push(" GROUP BY 2");
            parts.push(sql);
        }
    }
    let mut out = Catalog::default();
    for sql in parts {
        let mut stmt = conn.prepare(&sql.text)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(sql.params.iter()))?;
        while let Some(r) = rows.next()? {
            out.add(r)?;
        }
    }
    Ok(out)
}

/// Count, first and last record of one `(kind, name)`.
pub type NameTally = (i64, Option<i64>, Option<i64>);

/// What an engine reads for [`DataDescription`], before it is put in
/// order by [`Parts::assemble`].
#[derive(Debug, Default)]
pub struct Parts {
    /// `(kind, name) -> (count, first, last)` of the range.
    pub names: std::collections::BTreeMap<(String, String), NameTally>,
    /// Events of the range with a file path.
    pub with_path: i64,
    /// Prompt events of the range with their text.
    pub with_text: i64,
    /// Events of the range whose content was removed.
    pub redacted: i64,
    /// Per developer a session is shown under: sessions, metrics-only
    /// sessions, and sessions per agent of [`crate::agent::Agent::ALL`].
    pub per_developer: Vec<(Option<String>, i64, i64, Vec<i64>)>,
    /// Every `(developer, kind)` of all data.
    pub developers: Vec<(Option<String>, Option<String>)>,
    /// Resource attribute keys, sorted, at most 200.
    pub resource_keys: Vec<String>,
    /// First and last event of all data.
    pub events: Option<(i64, i64)>,
    /// Agents and `"agent version"` pairs of all data.
    pub agents: Vec<(crate::agent::Agent, Option<String>)>,
}

impl Parts {
    /// The description, in the order the tool shows it.
    pub fn assemble(self, range: &TimeRange) -> DataDescription {
        let mut d = DataDescription::default();
        let mut names: Vec<NameCount> = self
            .names
            .into_iter()
            .map(|((kind, name), (count, first, last))| NameCount {
                kind,
                name,
                count,
                first: first.map(|t| range.show(t)),
                last: last.map(|t| range.show(t)),
            })
            .collect();
        let order = |k: &str| match k {
            "event" => 0,
            "metric" => 1,
            _ => 2,
        };
        names.sort_by(|a, b| {
            order(&a.kind)
                .cmp(&order(&b.kind))
                .then(b.count.cmp(&a.count))
                .then_with(|| a.name.cmp(&b.name))
        });
        d.names = names;
        d.events_with_file_path = self.with_path;
        d.prompts_with_text = self.with_text;
        d.events_content_redacted = self.redacted;
        let mut per_developer: std::collections::HashMap<Option<String>, i64> = Default::default();
        let mut per_agent: std::collections::HashMap<crate::agent::Agent, i64> = Default::default();
        for (developer, n, metrics_only, agents) in self.per_developer {
            d.sessions += n;
            d.metrics_only_sessions += metrics_only;
            *per_developer.entry(developer).or_default() += n;
            for (a, k) in crate::agent::Agent::ALL.into_iter().zip(agents) {
                *per_agent.entry(a).or_default() += k;
            }
        }
        d.developers = self
            .developers
            .into_iter()
            .map(|(developer, developer_kind)| DeveloperInfo {
                sessions: per_developer.get(&developer).copied().unwrap_or(0),
                developer,
                developer_kind,
            })
            .collect();
        d.developers.sort_by(|a, b| {
            b.sessions
                .cmp(&a.sessions)
                .then_with(|| a.developer.cmp(&b.developer))
                .then_with(|| a.developer_kind.cmp(&b.developer_kind))
        });
        d.developers.truncate(200);
        d.resource_attribute_keys = self.resource_keys;
        d.first_event = self.events.map(|(t, _)| range.show(t));
        d.last_event = self.events.map(|(_, t)| range.show(t));
        let mut agents: std::collections::BTreeMap<crate::agent::Agent, AgentInfo> =
            Default::default();
        for (agent, version) in self.agents {
            let info = agents.entry(agent).or_insert_with(|| AgentInfo {
                agent: agent.as_str().to_owned(),
                versions: Vec::new(),
                sessions: per_agent.get(&agent).copied().unwrap_or(0),
            });
            if let Some(v) = version
                && !info.versions.contains(&v)
            {
                info.versions.push(v);
            }
        }
        d.agents = agents.into_values().collect();
        for a in &mut d.agents {
            a.versions
                .sort_by_key(|v| std::cmp::Reverse(version_key(v)));
        }
        d
    }
}

/// Runs the question (limited to what `f`'s `Visible` may see). Every part
/// reads a catalog kept at ingest or the sessions table, never all raw rows:
/// counts per name from [`catalog`], developers and all-time bounds from
/// `catalog_daily`, versions and resource keys from `context_values`.
pub fn describe_data(
    conn: &rusqlite::Connection,
    f: &Filter,
    range: &TimeRange,
) -> Result<DataDescription, QueryError> {
    let dev = |head: &str, column: &str, tail: &str| {
        let mut s = Sql::default();
        s.push(head);
        f.developer_conditions(&mut s, column);
        s.push(tail);
        s
    };
    let cat = catalog(conn, f, range)?;
    let mut parts = Parts {
        names: cat
            .names
            .into_iter()
            .map(|(k, t)| (k, (t.count, t.first, t.last)))
            .collect(),
        with_path: cat.with_path,
        with_text: cat.with_text,
        redacted: cat.redacted,
        ..Parts::default()
    };
    // Sessions per developer (the developer a session was first seen
    // with) and agent, and how many sent metrics only, in one pass.
    let mut by_developer = Sql::default();
    by_developer
        .push("SELECT s.developer, COUNT(*), SUM(s.api_requests = 0 AND s.metric_cost_usd > 0)");
    // Per agent as columns, so the pass stays grouped by developer alone
    // (the order of the developer index).
    for a in crate::agent::Agent::ALL {
        by_developer.push(&format!(", SUM(s.agent = '{}')", a.as_str()));
    }
    by_developer.push(" FROM sessions s WHERE 1");
    super::sessions::session_conditions(f, &mut by_developer);
    by_developer.push(" GROUP BY s.developer");
    parts.per_developer = rows(conn, &by_developer, |r| {
        let mut agents = Vec::new();
        for i in 0..crate::agent::Agent::ALL.len() {
            agents.push(r.get::<_, Option<i64>>(3 + i)?.unwrap_or(0));
        }
        Ok((
            r.get::<_, Option<String>>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Option<i64>>(2)?.unwrap_or(0),
            agents,
        ))
    })?;
    parts.developers = rows(
        conn,
        &dev(
            "SELECT NULLIF(developer, ''), NULLIF(developer_kind, '') FROM catalog_daily WHERE 1",
            "NULLIF(developer, '')",
            " GROUP BY developer, developer_kind",
        ),
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    parts.resource_keys = rows(
        conn,
        &dev(
            "SELECT DISTINCT value FROM context_values WHERE kind = 'resource_key'",
            "NULLIF(developer, '')",
            " ORDER BY value LIMIT 200",
        ),
        |r| r.get(0),
    )?;
    parts.events = rows(
        conn,
        &dev(
            "SELECT MIN(first_ns), MAX(last_ns) FROM catalog_daily WHERE signal = 'event'",
            "NULLIF(developer, '')",
            "",
        ),
        |r| Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?)),
    )?
    .into_iter()
    .flatten()
    .next();
    for (kind, value) in rows(
        conn,
        &dev(
            "SELECT DISTINCT kind, value FROM context_values WHERE kind IN ('agent', 'agent_version')",
            "NULLIF(developer, '')",
            "",
        ),
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )? {
        let (agent, version) = match value.split_once(' ') {
            Some((a, v)) if kind == "agent_version" => (a.to_owned(), Some(v.to_owned())),
            _ => (value, None),
        };
        if let Some(agent) = crate::agent::Agent::parse(&agent) {
            parts.agents.push((agent, version));
        }
    }
    Ok(parts.assemble(range))
}

/// Orders versions numerically (`2.1.100` after `2.1.99`), newest first
/// when reversed.
fn version_key(v: &str) -> Vec<u64> {
    v.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::query::fixture::generated::{self, DAY_NS, START_NS};
    use crate::query::fixture::utc;
    use crate::query::visible::testing::visible;

    /// Counts and bounds per event name in `[since, until)`, by iterating
    /// over the generated records.
    fn expected(
        ds: &generated::Dataset,
        since: i64,
        until: i64,
        devs: &[&str],
    ) -> BTreeMap<String, (i64, i64, i64)> {
        let mut out: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
        for r in &ds.records {
            let t = r.ev.time_ns;
            if t < since || t >= until || !(devs.is_empty() || devs.contains(&&*r.developer)) {
                continue;
            }
            let e = out
                .entry(r.ev.event_name.clone())
                .or_insert((0, i64::MAX, i64::MIN));
            e.0 += 1;
            e.1 = e.1.min(t);
            e.2 = e.2.max(t);
        }
        out
    }

    #[test]
    fn counts_per_name_match_the_records_across_days_hours_and_raw_edges() {
        let ds = generated::build();
        let h = crate::query::HOUR_NS;
        // Ranges that take whole days, whole hours and raw edges, one
        // aligned on days, one inside a day, and all data.
        let ranges = [
            (
                START_NS + DAY_NS + 5 * h + 1_234,
                START_NS + 7 * DAY_NS + 3 * h + 99,
            ),
            (START_NS + 2 * DAY_NS, START_NS + 5 * DAY_NS),
            (
                START_NS + 3 * DAY_NS + 9 * h + 7,
                START_NS + 3 * DAY_NS + 17 * h,
            ),
            (0, i64::MAX / 2),
        ];
        let alice = ds.records[0].developer.clone();
        for (since, until) in ranges {
            for devs in [vec![], vec![alice.as_str()]] {
                let range = utc(since, until);
                let f = Filter::new(visible(&devs));
                let d = describe_data(&ds.fx.conn, &f, &range).unwrap();
                let got: BTreeMap<String, (i64, i64, i64)> = d
                    .names
                    .iter()
                    .filter(|n| n.kind == "event")
                    .map(|n| {
                        let parse = |s: &Option<String>| {
                            s.as_deref()
                                .unwrap()
                                .parse::<jiff::Timestamp>()
                                .unwrap()
                                .as_nanosecond() as i64
                        };
                        // Shown times are rounded to milliseconds.
                        (
                            n.name.clone(),
                            (
                                n.count,
                                parse(&n.first) / 1_000_000,
                                parse(&n.last) / 1_000_000,
                            ),
                        )
                    })
                    .collect();
                let want: BTreeMap<String, (i64, i64, i64)> = expected(&ds, since, until, &devs)
                    .into_iter()
                    .map(|(k, (n, a, b))| (k, (n, a / 1_000_000, b / 1_000_000)))
                    .collect();
                assert_eq!(got, want, "range {since}..{until} devs {devs:?}");
                let paths = ds
                    .records
                    .iter()
                    .filter(|r| r.ev.time_ns >= since && r.ev.time_ns < until)
                    .filter(|r| devs.is_empty() || devs.contains(&&*r.developer))
                    .filter(|r| r.ev.file_path.is_some())
                    .count() as i64;
                assert_eq!(d.events_with_file_path, paths);
            }
        }
    }
}

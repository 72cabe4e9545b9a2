//! The audit log every node shares, in ClickHouse (`audit_log`,
//! `audit_heads`, [`super::schema`]): one hash chain per node, the node's
//! id in every record and inside what its hash covers, so that the log
//! stays tamper-evident without a writer shared by the nodes.
//!
//! A node appends to its own chain only: it holds the chain's last sequence
//! number and hash, and an append is acknowledged (and the tool call
//! answered) only once ClickHouse has the record; otherwise the call fails
//! closed. After an insert whose outcome is unknown (a timeout may still
//! have landed) the node reads its chain's end back before the next append.
//! Each insert also writes the chain's head (materialized view into
//! `audit_heads`), so a chain whose newest records were deleted no longer
//! reaches its head. `audit verify` walks every chain ([`crate::audit`]'s
//! `Chain`) and holds each against its head.
//!
//! A node's id is its host name and a random suffix, new at every start:
//! each run of a node is a chain of its own, and two nodes never share one.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::audit::{
    AuditEntry, AuditError, AuditFilter, AuditPage, AuditReader, AuditRecord, AuditSink,
    AuditSummary, Chain, Conditions, GENESIS, Param, Problems, SUMMARY_GROUP_BY, SUMMARY_GROUPS,
    StoredRecord, SummaryGroup, VerifyReport, Witness, write_jsonl,
};

use super::blocking::Blocking;
use super::{ClickHouse, ReadLimits};

/// The columns of [`AuditRow`], in order.
const COLUMNS: &str = "node, seq, time_ns, request_id, token_id, token_name, scope, peer, \
     user_agent, client_name, client_version, method, tool, arguments, outcome, detail, rows, \
     truncated, bytes, duration_ms, prev_hash, hash";

/// One row of `audit_log`.
#[derive(Debug, Clone, clickhouse::Row, serde::Serialize, serde::Deserialize)]
struct AuditRow {
    node: String,
    seq: u64,
    time_ns: i64,
    request_id: Option<String>,
    token_id: Option<i64>,
    token_name: Option<String>,
    scope: Option<String>,
    peer: Option<String>,
    user_agent: Option<String>,
    client_name: Option<String>,
    client_version: Option<String>,
    method: Option<String>,
    tool: Option<String>,
    arguments: Option<String>,
    outcome: String,
    detail: Option<String>,
    rows: Option<i64>,
    truncated: Option<u8>,
    bytes: Option<i64>,
    duration_ms: Option<i64>,
    prev_hash: String,
    hash: String,
}

impl AuditRow {
    fn of(s: StoredRecord, prev_hash: &[u8], hash: &[u8]) -> AuditRow {
        AuditRow {
            node: s.node.unwrap_or_default(),
            seq: u64::try_from(s.seq).unwrap_or(0),
            time_ns: s.time_ns,
            request_id: s.request_id,
            token_id: s.token_id,
            token_name: s.token_name,
            scope: s.scope,
            peer: s.peer,
            user_agent: s.user_agent,
            client_name: s.client_name,
            client_version: s.client_version,
            method: s.method,
            tool: s.tool,
            arguments: s.arguments,
            outcome: s.outcome,
            detail: s.detail,
            rows: s.rows,
            truncated: s.truncated.map(u8::from),
            bytes: s.bytes,
            duration_ms: s.duration_ms,
            prev_hash: hex::encode(prev_hash),
            hash: hex::encode(hash),
        }
    }

    /// The record as its hash covers it, and the hash it links to; or why
    /// the row is not one.
    fn stored(self) -> Result<(StoredRecord, Vec<u8>), String> {
        let prev = hex::decode(&self.prev_hash)
            .map_err(|_| format!("record {} has a garbled prev_hash", self.seq))?;
        let stored = StoredRecord {
            node: Some(self.node),
            seq: i64::try_from(self.seq).map_err(|e| e.to_string())?,
            time_ns: self.time_ns,
            request_id: self.request_id,
            token_id: self.token_id,
            token_name: self.token_name,
            scope: self.scope,
            peer: self.peer,
            user_agent: self.user_agent,
            client_name: self.client_name,
            client_version: self.client_version,
            method: self.method,
            tool: self.tool,
            arguments: self.arguments,
            outcome: self.outcome,
            detail: self.detail,
            rows: self.rows,
            truncated: self.truncated.map(|t| t != 0),
            bytes: self.bytes,
            duration_ms: self.duration_ms,
        };
        Ok((stored, prev))
    }

    fn entry(self) -> Result<AuditEntry, AuditError> {
        let hash = hex::decode(&self.hash).unwrap_or_default();
        let (stored, prev) = self.stored().map_err(AuditError::Internal)?;
        Ok(stored.into_entry(&prev, &hash))
    }
}

/// One chain's head as `audit_heads` holds it.
#[derive(Debug, Clone, clickhouse::Row, serde::Deserialize)]
struct HeadRow {
    node: String,
    last_seq: u64,
    last_hash: String,
}

/// One group of [`AuditReader::summary`].
#[derive(Debug, Clone, clickhouse::Row, serde::Deserialize)]
struct GroupRow {
    outcome: String,
    token_id: Option<i64>,
    token_name: Option<String>,
    tool: Option<String>,
    peer: Option<String>,
    records: u64,
}

/// The shared audit log, as one node writes and reads it.
pub struct ClickHouseAudit {
    /// The writing client, with a connection pool of this log's runtime.
    write: clickhouse::Client,
    /// Where this node's records go: on a cluster, the local table of
    /// the server it talks to, so that its chain is written while that
    /// server is up, whichever other shard is down.
    table: String,
    /// The reading client, under the read limits (the server's query
    /// budget; the CLI's own), made once: its connection pool is this
    /// log's runtime's.
    read: clickhouse::Client,
    /// This node's chain.
    node: String,
    /// Its last sequence number and hash; `None` until read back (at the
    /// first append, and after an insert whose outcome is unknown).
    head: Mutex<Option<(u64, Vec<u8>)>>,
    blocking: Blocking,
}

fn unavailable(e: String) -> AuditError {
    AuditError::Unavailable(format!("audit log: {e}"))
}

/// This process's node id: the host name and a random suffix.
fn node_id() -> String {
    use rand::Rng;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
                .take(64)
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    format!("{host}-{:08x}", rand::rng().random::<u32>())
}

impl ClickHouseAudit {
    /// The audit log of `store`'s database (created by `init`), read under
    /// `limits`, written as a new chain of this process.
    pub fn new(store: ClickHouse, limits: ReadLimits) -> Result<ClickHouseAudit, AuditError> {
        Ok(ClickHouseAudit {
            write: store.own_writer(),
            table: store.local_table("audit_log"),
            read: store.reader(limits),
            node: node_id(),
            head: Mutex::new(None),
            // Reads run under the budget (the server stops them there);
            // an insert or a read never waits much longer than that.
            blocking: Blocking::new(
                "tokentally-audit",
                limits.budget + std::time::Duration::from_secs(30),
            )
            .map_err(unavailable)?,
        })
    }

    /// The id of the chain this process writes.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn run<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T, clickhouse::error::Error>> + Send + 'static,
    ) -> Result<T, AuditError> {
        self.blocking.run(work).map_err(unavailable)
    }

    /// Rows of `audit_log` matching `c`, ordered and limited by `tail`.
    fn rows(&self, c: Conditions, tail: &str) -> Result<Vec<AuditRow>, AuditError> {
        let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE {} {tail}", c.sql());
        self.fetch(sql, c.params)
    }

    /// `sql` with `params` bound, on the read path.
    fn fetch<T>(&self, sql: String, params: Vec<Param>) -> Result<Vec<T>, AuditError>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead + Send + 'static,
    {
        let client = self.read.clone();
        self.run(async move {
            let mut q = client.query(&sql);
            for p in params {
                q = match p {
                    Param::Int(i) => q.bind(i),
                    Param::Text(t) => q.bind(t),
                };
            }
            q.fetch_all::<T>().await
        })
    }

    /// The end of this node's chain as stored, read as the writer (the
    /// append path does not depend on the query path's user).
    fn stored_head(&self) -> Result<(u64, Vec<u8>), AuditError> {
        let client = self.write.clone();
        let node = self.node.clone();
        let sql = format!(
            "SELECT {COLUMNS} FROM {} WHERE node = ? ORDER BY seq DESC LIMIT 1",
            self.table
        );
        let rows =
            self.run(async move { client.query(&sql).bind(node).fetch_all::<AuditRow>().await })?;
        Ok(match rows.into_iter().next() {
            Some(r) => (r.seq, hex::decode(&r.hash).unwrap_or_default()),
            None => (0, GENESIS.to_vec()),
        })
    }
}

impl AuditSink for ClickHouseAudit {
    fn append(&self, record: AuditRecord) -> Result<u64, AuditError> {
        let mut head = self
            .head
            .lock()
            .map_err(|_| AuditError::Internal("audit head lock poisoned".into()))?;
        let (seq, prev) = match head.take() {
            Some(h) => h,
            None => self.stored_head()?,
        };
        let time_ns = i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX);
        let stored = StoredRecord::new(
            record,
            Some(self.node.clone()),
            i64::try_from(seq + 1).unwrap_or(i64::MAX),
            time_ns,
        )?;
        let hash = stored.chain_hash(&prev)?;
        let row = AuditRow::of(stored, &prev, &hash);
        let client = self.write.clone();
        let table = self.table.clone();
        // `head` stays `None` unless ClickHouse acknowledges the row.
        self.run(async move {
            let mut insert = client.insert::<AuditRow>(&table).await?;
            insert.write(&row).await?;
            insert.end().await
        })?;
        *head = Some((seq + 1, hash.to_vec()));
        Ok(seq + 1)
    }
}

impl AuditReader for ClickHouseAudit {
    fn tail(&self, n: usize) -> Result<Vec<AuditEntry>, AuditError> {
        let mut rows = self.rows(
            Conditions::default(),
            &format!("ORDER BY time_ns DESC, seq DESC, node DESC LIMIT {n}"),
        )?;
        rows.reverse();
        rows.into_iter().map(AuditRow::entry).collect()
    }

    fn export_jsonl(
        &self,
        writer: &mut dyn std::io::Write,
        since: Option<jiff::Timestamp>,
    ) -> Result<u64, AuditError> {
        let rows = self.rows(
            Conditions::range(since, None),
            "ORDER BY time_ns, node, seq",
        )?;
        write_jsonl(writer, rows.into_iter().map(AuditRow::entry))
    }

    fn query(&self, filter: &AuditFilter) -> Result<AuditPage, AuditError> {
        let limit = filter.row_limit();
        let mut c = filter.conditions();
        // Newest first across the chains: by time, then sequence number
        // (two nodes' records at the same nanosecond with the same number
        // are the one order this cursor cannot tell apart).
        if let (Some(at), Some(seq)) = (filter.before_ns, filter.before_seq) {
            c.push(
                "(time_ns < ? OR (time_ns = ? AND seq < ?))",
                [
                    Param::Int(at),
                    Param::Int(at),
                    Param::Int(i64::try_from(seq).unwrap_or(i64::MAX)),
                ],
            );
        }
        let found = self
            .rows(
                c,
                &format!("ORDER BY time_ns DESC, seq DESC LIMIT {}", limit + 1),
            )?
            .into_iter()
            .map(AuditRow::entry)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AuditPage::of(found, limit))
    }

    fn summary(
        &self,
        since: Option<jiff::Timestamp>,
        until: Option<jiff::Timestamp>,
    ) -> Result<AuditSummary, AuditError> {
        let c = Conditions::range(since, until);
        let sql = format!("{SUMMARY_GROUPS} WHERE {}{SUMMARY_GROUP_BY}", c.sql());
        let groups = self
            .fetch::<GroupRow>(sql, c.params)?
            .into_iter()
            .map(|g| SummaryGroup {
                outcome: g.outcome,
                token_id: g.token_id,
                token_name: g.token_name,
                tool: g.tool,
                peer: g.peer,
                records: g.records,
            })
            .collect();
        Ok(AuditSummary::from_groups(since, until, groups))
    }

    fn verify_with(&self, witness: &Witness) -> Result<VerifyReport, AuditError> {
        let heads = self.fetch::<HeadRow>(
            "SELECT node, max(seq) AS last_seq, argMax(hash, seq) AS last_hash FROM audit_heads \
             GROUP BY node ORDER BY node"
                .into(),
            Vec::new(),
        )?;
        let heads: BTreeMap<String, (u64, u64, Vec<u8>)> = heads
            .into_iter()
            .map(|h| {
                let hash = hex::decode(&h.last_hash).unwrap_or_default();
                (h.node, (h.last_seq, h.last_seq, hash))
            })
            .collect();
        // Every chain, in the log or only in the heads (all its records
        // deleted); the rows come in (node, seq) order.
        let mut chains: BTreeMap<String, Vec<AuditRow>> =
            heads.keys().map(|n| (n.clone(), Vec::new())).collect();
        for r in self.rows(Conditions::default(), "ORDER BY node, seq")? {
            chains.entry(r.node.clone()).or_default().push(r);
        }
        let mut problems = Problems::default();
        let mut reports = Vec::with_capacity(chains.len());
        for (node, rows) in chains {
            let mut chain = Chain::new(Some(node.clone()));
            for r in rows {
                let hash = hex::decode(&r.hash).unwrap_or_default();
                chain.record(r.seq, r.stored(), hash, &mut problems)?;
            }
            reports.push(chain.finish(heads.get(&node).cloned(), &mut problems));
        }
        VerifyReport::many(reports, problems).witnessed(witness, |want| {
            self.fetch::<u64>(
                "SELECT count() FROM audit_log WHERE hash = ?".into(),
                vec![Param::Text(hex::encode(want))],
            )
            .map(|n| n.first().is_some_and(|n| *n > 0))
        })
    }

    fn head(&self) -> Result<Option<(u64, String)>, AuditError> {
        let head = self
            .head
            .lock()
            .map_err(|_| AuditError::Internal("audit head lock poisoned".into()))?
            .clone();
        Ok(head.map(|(seq, hash)| (seq, hex::encode(hash))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Outcome, ProblemKind};
    use std::time::Duration;

    fn limits() -> ReadLimits {
        ReadLimits {
            budget: Duration::from_secs(30),
            max_result_rows: 1_000_000,
            max_result_bytes: 1 << 30,
        }
    }

    fn record(token: &str, tool: &str, outcome: Outcome) -> AuditRecord {
        AuditRecord {
            token_id: Some(7),
            token_name: Some(token.into()),
            scope: Some("read".into()),
            peer: Some("127.0.0.1".into()),
            method: Some("tools/call".into()),
            tool: Some(tool.into()),
            arguments: Some(serde_json::json!({"since": "7d", "prompt": "secret words"})),
            outcome: outcome.as_str().into(),
            rows: Some(3),
            truncated: Some(false),
            duration_ms: Some(4),
            ..AuditRecord::default()
        }
    }

    /// Runs `sql` as someone with write access to the database would, and
    /// waits for a mutation it starts to finish.
    async fn tamper(store: &ClickHouse, sql: &str) {
        let client = store.writer();
        client.query(sql).execute().await.unwrap();
        for _ in 0..200 {
            let pending: u64 = client
                .query("SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0")
                .bind(store.settings().database.clone())
                .fetch_one()
                .await
                .unwrap();
            if pending == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("mutation {sql} did not finish");
    }

    fn problems(report: &VerifyReport) -> Vec<(String, u64, ProblemKind)> {
        report
            .problems
            .iter()
            .map(|p| (p.node.clone().unwrap_or_default(), p.seq, p.kind))
            .collect()
    }

    /// Two nodes' chains, interleaved: a has records 1..=4, b 1..=3.
    async fn two_nodes() -> (ClickHouse, ClickHouseAudit, ClickHouseAudit) {
        let store = super::super::test_store().await;
        let a = ClickHouseAudit::new(store.clone(), limits()).unwrap();
        let b = ClickHouseAudit::new(store.clone(), limits()).unwrap();
        assert_ne!(a.node(), b.node());
        for (i, (log, tool, outcome)) in [
            (&a, "cost_by_developer", Outcome::Ok),
            (&b, "model_breakdown", Outcome::Ok),
            (&a, "cost_by_developer", Outcome::ToolError),
            (&b, "search_events", Outcome::Forbidden),
            (&a, "model_breakdown", Outcome::Ok),
            (&b, "cost_by_developer", Outcome::Ok),
            (&a, "audit_log", Outcome::Ok),
        ]
        .into_iter()
        .enumerate()
        {
            let token = if i % 2 == 0 { "alice" } else { "bob" };
            log.append(record(token, tool, outcome)).unwrap();
        }
        (store, a, b)
    }

    #[tokio::test]
    async fn each_node_keeps_its_own_chain_and_every_node_reads_them_all() {
        let (_store, a, b) = two_nodes().await;
        assert_eq!(a.head().unwrap().map(|h| h.0), Some(4));
        assert_eq!(b.head().unwrap().map(|h| h.0), Some(3));

        let report = b.verify_with(&Witness::default()).unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.records, 7);
        let mut chains: Vec<(String, u64, Option<u64>)> = report
            .chains
            .iter()
            .map(|c| (c.node.clone().unwrap(), c.records, c.head_seq))
            .collect();
        chains.sort();
        let mut want = vec![
            (a.node().to_string(), 4, Some(4)),
            (b.node().to_string(), 3, Some(3)),
        ];
        want.sort();
        assert_eq!(chains, want);
        // The head each node logs is its chain's end in the report.
        let a_hash = a.head().unwrap().unwrap().1;
        assert!(
            report
                .chains
                .iter()
                .any(|c| c.head_hash.as_deref() == Some(a_hash.as_str()))
        );

        // Newest first across both chains, paged by (time, seq).
        let first = a
            .query(&AuditFilter {
                limit: Some(4),
                ..Default::default()
            })
            .unwrap();
        assert!(first.truncated);
        let order: Vec<(bool, u64)> = first
            .entries
            .iter()
            .map(|e| (e.node.as_deref() == Some(a.node()), e.seq))
            .collect();
        assert_eq!(order, vec![(true, 4), (false, 3), (true, 3), (false, 2)]);
        let last = first.entries.last().unwrap();
        let rest = a
            .query(&AuditFilter {
                before_ns: Some(i64::try_from(last.time.as_nanosecond()).unwrap()),
                before_seq: Some(last.seq),
                ..Default::default()
            })
            .unwrap();
        let order: Vec<(bool, u64)> = rest
            .entries
            .iter()
            .map(|e| (e.node.as_deref() == Some(a.node()), e.seq))
            .collect();
        assert_eq!(order, vec![(true, 2), (false, 1), (true, 1)]);
        assert!(!rest.truncated);
        // Stored redacted, as the embedded log does.
        let text = serde_json::to_string(&rest.entries).unwrap();
        assert!(!text.contains("secret words"), "{text}");

        let alice = b
            .query(&AuditFilter {
                token: Some("alice".into()),
                tool: Some("cost_by_developer".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(alice.entries.len(), 2);

        let s = b.summary(None, None).unwrap();
        assert_eq!((s.total, s.denied), (7, 1));
        assert_eq!(s.by_tool[0].tool, "cost_by_developer");
        assert_eq!((s.by_tool[0].calls, s.by_tool[0].not_ok), (3, 1));
        let alice = s
            .by_token
            .iter()
            .find(|t| t.token_name.as_deref() == Some("alice"))
            .unwrap();
        assert_eq!(alice.calls, 4);

        let tail = a.tail(2).unwrap();
        assert_eq!(
            tail.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![3, 4],
            "oldest first, the newest two"
        );
        let mut out = Vec::new();
        assert_eq!(a.export_jsonl(&mut out, None).unwrap(), 7);
        let lines = String::from_utf8(out).unwrap();
        assert_eq!(lines.lines().count(), 7);
        assert!(lines.contains(&format!("\"node\":\"{}\"", b.node())));
    }

    #[tokio::test]
    async fn an_edited_deleted_moved_or_cut_record_is_found_in_its_chain() {
        let (store, a, b) = two_nodes().await;
        let (an, bn) = (a.node().to_string(), b.node().to_string());
        let witness = Witness {
            head: Some(a.head().unwrap().unwrap().1),
            at_least: None,
        };
        // Edited: a's record 2 says another tool.
        tamper(
            &store,
            &format!("ALTER TABLE audit_log UPDATE tool = 'describe_data' WHERE node = '{an}' AND seq = 2"),
        )
        .await;
        assert_eq!(
            problems(&a.verify_with(&Witness::default()).unwrap()),
            vec![(an.clone(), 2, ProblemKind::Edited)]
        );
        // Deleted from the middle: b's record 2.
        tamper(
            &store,
            &format!("ALTER TABLE audit_log DELETE WHERE node = '{bn}' AND seq = 2"),
        )
        .await;
        let found = problems(&a.verify_with(&Witness::default()).unwrap());
        assert!(
            found.contains(&(bn.clone(), 2, ProblemKind::Missing)),
            "{found:?}"
        );
        assert!(
            found.contains(&(bn.clone(), 3, ProblemKind::ChainBroken)),
            "{found:?}"
        );
        // Cut tail: a's newest record; the head (and a witness) still reach it.
        tamper(
            &store,
            &format!("ALTER TABLE audit_log DELETE WHERE node = '{an}' AND seq = 4"),
        )
        .await;
        let report = a.verify_with(&witness).unwrap();
        let found = problems(&report);
        assert!(
            found.contains(&(an.clone(), 4, ProblemKind::HeadMismatch)),
            "{found:?}"
        );
        assert!(
            found.contains(&(String::new(), 6, ProblemKind::Rewound)),
            "{found:?}"
        );
        assert!(!report.ok);
    }

    /// `node`'s stored rows at `seqs`.
    fn stored_rows(log: &ClickHouseAudit, node: &str, seqs: &[u64]) -> Vec<AuditRow> {
        let all = log
            .rows(Conditions::default(), "ORDER BY node, seq")
            .unwrap();
        all.into_iter()
            .filter(|r| r.node == node && seqs.contains(&r.seq))
            .collect()
    }

    async fn insert(store: &ClickHouse, rows: Vec<AuditRow>) {
        let mut insert = store
            .writer()
            .insert::<AuditRow>("audit_log")
            .await
            .unwrap();
        for r in &rows {
            insert.write(r).await.unwrap();
        }
        insert.end().await.unwrap();
    }

    #[tokio::test]
    async fn reordered_records_and_a_record_moved_to_another_chain_break_it() {
        let (store, a, b) = two_nodes().await;
        let (an, bn) = (a.node().to_string(), b.node().to_string());
        // Reordered: a's records 2 and 3 swap places (numbers swapped,
        // everything else kept).
        let originals = stored_rows(&a, &an, &[2, 3]);
        let swapped = originals
            .iter()
            .map(|r| AuditRow {
                seq: 5 - r.seq,
                ..r.clone()
            })
            .collect();
        tamper(
            &store,
            &format!("ALTER TABLE audit_log DELETE WHERE node = '{an}' AND seq IN (2, 3)"),
        )
        .await;
        insert(&store, swapped).await;
        let found = problems(&a.verify_with(&Witness::default()).unwrap());
        assert!(
            found.contains(&(an.clone(), 2, ProblemKind::ChainBroken)),
            "{found:?}"
        );
        assert!(
            found.contains(&(an.clone(), 2, ProblemKind::Edited)),
            "{found:?}"
        );
        assert!(
            found.iter().all(|p| p.2 != ProblemKind::Missing),
            "{found:?}"
        );
        // Moved: b's record 3 claimed by a's chain as its record 5, linked
        // to a's end: the node is part of what the hash covers.
        let a_end = a.stored_head().unwrap();
        let moved = stored_rows(&b, &bn, &[3])
            .into_iter()
            .map(|r| AuditRow {
                node: an.clone(),
                seq: a_end.0 + 1,
                prev_hash: hex::encode(&a_end.1),
                ..r
            })
            .collect();
        insert(&store, moved).await;
        let found = problems(&a.verify_with(&Witness::default()).unwrap());
        assert!(
            found.contains(&(an.clone(), 5, ProblemKind::Edited)),
            "{found:?}"
        );
        assert!(
            !found.contains(&(an.clone(), 5, ProblemKind::ChainBroken)),
            "{found:?}"
        );
    }

    #[tokio::test]
    async fn a_chain_deleted_whole_is_still_known_by_its_head_and_appends_fail_closed() {
        let (store, a, b) = two_nodes().await;
        let bn = b.node().to_string();
        tamper(
            &store,
            &format!("ALTER TABLE audit_log DELETE WHERE node = '{bn}'"),
        )
        .await;
        let report = a.verify_with(&Witness::default()).unwrap();
        assert_eq!(
            problems(&report),
            vec![(bn.clone(), 3, ProblemKind::HeadMismatch)]
        );
        assert_eq!(report.chains.len(), 2);

        // With the table gone, an append is an error (the call fails
        // closed), and the node does not go on from a head it cannot know.
        tamper(&store, "DROP TABLE audit_heads_mv").await;
        tamper(&store, "DROP TABLE audit_log").await;
        assert!(a.append(record("alice", "x", Outcome::Ok)).is_err());
        assert_eq!(a.head().unwrap(), None);
    }

    #[tokio::test]
    async fn on_two_shards_every_chain_verifies_through_the_distributed_tables() {
        let store = super::super::test_cluster_store().await;
        // Two nodes talk to shard 1 (the store's URL), two to shard 2.
        let port = tokio::task::spawn_blocking(|| {
            super::super::testing::shared_cluster().shards[1].http_port
        })
        .await
        .unwrap();
        let mut settings = store.settings().clone();
        settings.http_url = format!("http://127.0.0.1:{port}");
        let mut shard_2 = ClickHouse::new(settings);
        shard_2.cluster = store.cluster.clone();
        let logs: Vec<ClickHouseAudit> = [&store, &store, &shard_2, &shard_2]
            .into_iter()
            .map(|s| ClickHouseAudit::new(s.clone(), limits()).unwrap())
            .collect();
        for _ in 0..3 {
            for log in &logs {
                log.append(record("alice", "cost_by_developer", Outcome::Ok))
                    .unwrap();
            }
        }
        let report = logs[0].verify_with(&Witness::default()).unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(report.records, 12);
        assert_eq!(report.chains.len(), 4);
        assert!(
            report
                .chains
                .iter()
                .all(|c| c.records == 3 && c.head_seq == Some(3))
        );
        // Each chain stayed on the shard its node talks to.
        for s in [&store, &shard_2] {
            let here: u64 = s
                .writer()
                .query("SELECT count() FROM audit_log_local")
                .fetch_one()
                .await
                .unwrap();
            assert_eq!(here, 6);
        }
        assert_eq!(logs[3].summary(None, None).unwrap().total, 12);
    }
}

//! The access tokens every node shares, in ClickHouse's `tokens` table
//! ([`super::schema`]): created on one node (or by the CLI), usable on
//! every node; revoked anywhere, refused everywhere once each node's
//! verification cache has expired (`auth::tokens::CACHE_TTL`).
//!
//! ClickHouse has no transactions, so a name is claimed by rows and
//! versions instead: a token's first row has version `2 × (C − created)`,
//! so the earliest creation of a name wins whichever node inserted last,
//! and its revocation row the version just above. A creation reads the
//! name back and reports a name another node took first as a duplicate.
//!
//! [`TokenTable`] is blocking (the verification path runs it on a blocking
//! thread, the CLI from `main`): each call runs on a small runtime of this
//! table's own and waits for its answer, so it may be called from any
//! thread.

use std::future::Future;

use crate::auth::{NewToken, Scope, TokenError, TokenInfo, TokenTable, timestamp};

use super::ClickHouse;
use super::blocking::Blocking;

/// The base of the versions (above every nanosecond time until 2116).
const VERSION_BASE: i64 = 1 << 62;

fn created_version(created_ns: i64) -> u64 {
    2 * (VERSION_BASE - created_ns.clamp(0, VERSION_BASE)) as u64
}

/// One row of `tokens`.
#[derive(Debug, Clone, clickhouse::Row, serde::Serialize, serde::Deserialize)]
struct TokenRow {
    name: String,
    id: i64,
    scope: String,
    developers: String,
    secret_hash: String,
    created_ns: i64,
    expires_ns: Option<i64>,
    revoked_ns: Option<i64>,
    version: u64,
    /// The shard holding this copy (0 on one server).
    copy: u32,
}

const COLUMNS: &str =
    "name, id, scope, developers, secret_hash, created_ns, expires_ns, revoked_ns, version, copy";

impl TokenRow {
    fn info(&self) -> Result<TokenInfo, TokenError> {
        Ok(TokenInfo {
            id: self.id,
            name: self.name.clone(),
            scope: Scope::parse(&self.scope).ok_or_else(|| {
                TokenError::Store(format!(
                    "token {:?} has unknown scope {:?}",
                    self.name, self.scope
                ))
            })?,
            developers: serde_json::from_str(&self.developers)
                .map_err(|e| TokenError::Store(e.to_string()))?,
            created_at: timestamp(self.created_ns),
            expires_at: self.expires_ns.map(timestamp),
            revoked_at: self.revoked_ns.map(timestamp),
        })
    }

    fn of(new: &NewToken, id: i64) -> Result<TokenRow, TokenError> {
        Ok(TokenRow {
            name: new.name.clone(),
            id,
            scope: new.scope.as_str().to_string(),
            developers: serde_json::to_string(&new.developers)
                .map_err(|e| TokenError::Store(e.to_string()))?,
            secret_hash: hex::encode(new.secret_hash),
            created_ns: new.created_ns,
            expires_ns: new.expires_ns,
            revoked_ns: None,
            version: created_version(new.created_ns),
            copy: 0,
        })
    }
}

/// Each token once, as its newest row says (the copies of the shards are
/// the same row, or older where a shard missed a revocation while down).
fn newest(rows: Vec<TokenRow>) -> Vec<TokenRow> {
    let mut out: Vec<TokenRow> = Vec::with_capacity(rows.len());
    for r in rows {
        match out.iter_mut().find(|o| o.name == r.name) {
            Some(o) if o.version < r.version => *o = r,
            Some(_) => {}
            None => out.push(r),
        }
    }
    out
}

/// The longest a token read or write waits for ClickHouse.
const TOKEN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The shared token table.
pub struct ClickHouseTokens {
    store: ClickHouse,
    /// The writing client, with a connection pool of this table's runtime.
    write: clickhouse::Client,
    blocking: Blocking,
}

impl ClickHouseTokens {
    /// The tokens of `store`'s database (created by `init`).
    pub fn new(store: ClickHouse) -> Result<ClickHouseTokens, TokenError> {
        Ok(ClickHouseTokens {
            write: store.own_writer(),
            store,
            blocking: Blocking::new("tokentally-tokens", TOKEN_TIMEOUT)
                .map_err(TokenError::Store)?,
        })
    }

    /// Runs `work` on this table's runtime and waits for it.
    fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, clickhouse::error::Error>> + Send + 'static,
    ) -> Result<T, TokenError> {
        self.blocking
            .run(work)
            .map_err(|e| TokenError::Store(format!("token table: {e}")))
    }

    /// The tokens as they are now whose `column` is `value` (all: `None`).
    fn rows(
        &self,
        column: &'static str,
        value: Option<String>,
    ) -> Result<Vec<TokenRow>, TokenError> {
        let client = self.write.clone();
        self.run(async move {
            let filter = if value.is_some() {
                format!(" WHERE {column} = ?")
            } else {
                String::new()
            };
            // Every shard holds every token: the others answer while one
            // is down.
            let mut q = client
                .query(&format!(
                    "SELECT {COLUMNS} FROM tokens FINAL{filter} ORDER BY created_ns, name"
                ))
                .with_option("skip_unavailable_shards", "1");
            if let Some(v) = value {
                q = q.bind(v);
            }
            q.fetch_all::<TokenRow>().await
        })
        .map(newest)
    }

    /// How many copies a token row is written as: one per shard.
    fn copies(&self) -> Result<u32, TokenError> {
        let Some(cluster) = self.store.cluster.clone() else {
            return Ok(1);
        };
        let client = self.write.clone();
        let shards: u64 = self.run(async move {
            client
                .query("SELECT uniqExact(shard_num) FROM system.clusters WHERE cluster = ?")
                .bind(cluster)
                .fetch_one::<u64>()
                .await
        })?;
        Ok(u32::try_from(shards.max(1)).unwrap_or(u32::MAX))
    }

    fn by_name(&self, name: &str) -> Result<Option<TokenRow>, TokenError> {
        Ok(self
            .rows("name", Some(name.to_string()))?
            .into_iter()
            .next())
    }

    fn write(&self, rows: Vec<TokenRow>) -> Result<(), TokenError> {
        let copies = self.copies()?;
        let rows: Vec<TokenRow> = rows
            .into_iter()
            .flat_map(|r| (0..copies).map(move |copy| TokenRow { copy, ..r.clone() }))
            .collect();
        let client = self.write.clone();
        self.run(async move {
            let mut insert = client.insert::<TokenRow>("tokens").await?;
            for r in &rows {
                insert.write(r).await?;
            }
            insert.end().await
        })
    }

    /// Stores `tokens` (fresh random ids); they are claimed when each name
    /// reads back as this creation.
    fn claim(&self, tokens: &[NewToken]) -> Result<Vec<(i64, bool)>, TokenError> {
        let rows = tokens
            .iter()
            .map(|t| TokenRow::of(t, random_id()))
            .collect::<Result<Vec<_>, _>>()?;
        self.write(rows.clone())?;
        // One read of every token back (an organisation has few).
        let now = self.rows("", None)?;
        Ok(rows
            .iter()
            .map(|r| {
                let won = now
                    .iter()
                    .any(|n| n.name == r.name && n.secret_hash == r.secret_hash);
                (r.id, won)
            })
            .collect())
    }
}

/// A token id: random, positive, exact in JSON numbers (below 2^53).
fn random_id() -> i64 {
    use rand::Rng;
    rand::rng().random_range(1..(1_i64 << 53))
}

impl TokenTable for ClickHouseTokens {
    fn insert(&self, new: &NewToken) -> Result<i64, TokenError> {
        if self.by_name(&new.name)?.is_some() {
            return Err(TokenError::DuplicateName(new.name.clone()));
        }
        match self.claim(std::slice::from_ref(new))?.as_slice() {
            [(id, true)] => Ok(*id),
            _ => Err(TokenError::DuplicateName(new.name.clone())),
        }
    }

    fn insert_if_empty(&self, tokens: &[NewToken]) -> Result<Option<Vec<i64>>, TokenError> {
        let client = self.write.clone();
        let existing: u64 = self.run(async move {
            client
                .query("SELECT count() FROM tokens")
                .fetch_one::<u64>()
                .await
        })?;
        if existing > 0 {
            return Ok(None);
        }
        let claimed = self.claim(tokens)?;
        // Another node starting at the same moment may have stored its own:
        // only the creation that every name reads back as is printed.
        if claimed.iter().all(|(_, won)| *won) {
            Ok(Some(claimed.into_iter().map(|(id, _)| id).collect()))
        } else {
            Ok(None)
        }
    }

    fn by_hash(&self, hash: &[u8; 32]) -> Result<Option<(TokenInfo, Vec<u8>)>, TokenError> {
        let Some(row) = self
            .rows("secret_hash", Some(hex::encode(hash)))?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let stored = hex::decode(&row.secret_hash).map_err(|e| TokenError::Store(e.to_string()))?;
        Ok(Some((row.info()?, stored)))
    }

    fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        self.rows("", None)?.iter().map(TokenRow::info).collect()
    }

    fn revoke(&self, name: &str, at_ns: i64) -> Result<Option<TokenInfo>, TokenError> {
        let Some(mut row) = self.by_name(name)? else {
            return Ok(None);
        };
        if row.revoked_ns.is_none() {
            row.revoked_ns = Some(at_ns);
            row.version = created_version(row.created_ns) + 1;
            self.write(vec![row.clone()])?;
        }
        Ok(Some(row.info()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_creation_outranks_a_later_one_and_a_revocation_outranks_both() {
        let (early, late) = (1_800_000_000_000_000_000, 1_800_000_000_000_000_001);
        assert!(created_version(early) > created_version(late));
        assert!(created_version(early) + 1 > created_version(early));
        assert!(created_version(late) + 1 < created_version(early));
        assert!(random_id() > 0 && random_id() < (1 << 53));
    }
}

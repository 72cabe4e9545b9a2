//! The token table: create, list, revoke and verify access tokens.
//!
//! A secret is `tt_` followed by 64 hex digits (32 random bytes). It is shown
//! once at creation; the table keeps only its SHA-256. Verification is on the
//! request path, so verified tokens are cached in memory for a few seconds,
//! keyed by the hash: a revocation made through this handle applies at once,
//! one made by another process (the CLI, another node) within [`CACHE_TTL`].
//!
//! The rules are [`TokenStore`]'s; where the rows live is a [`TokenTable`]:
//! the embedded store's ([`SqliteTokens`]) or the one every node of a
//! ClickHouse deployment shares (`clickhouse::tokens`). [`TokenStore`] is
//! blocking: async callers run it in `tokio::task::spawn_blocking`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::RngCore;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthError, Principal, Scope};

/// How long a verified token is trusted without reading the table again.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// Most verified tokens kept in the cache (it is cleared when full).
const CACHE_MAX: usize = 1024;

/// Prefix of every secret, so leaked tokens are recognisable by scanners.
const SECRET_PREFIX: &str = "tt_";

/// Replaces everything in `text` that looks like a secret (`tt_` and 16 or
/// more hex digits: a whole or partly pasted token) with `tt_[redacted]`,
/// so a secret pasted by mistake into an argument or a message is not kept.
pub fn redact_secrets(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains(SECRET_PREFIX) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(SECRET_PREFIX) {
        let after = &rest[i + SECRET_PREFIX.len()..];
        let hex = after.bytes().take_while(u8::is_ascii_hexdigit).count();
        out.push_str(&rest[..i]);
        if hex >= 16 {
            out.push_str("tt_[redacted]");
            rest = &after[hex..];
        } else {
            out.push_str(SECRET_PREFIX);
            rest = after;
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Names are 1-64 characters of letters, digits, `.`, `_` and `-`.
    #[error("invalid token name {0:?}: use 1-64 letters, digits, '.', '_' or '-'")]
    InvalidName(String),
    /// A developer id is empty or longer than 256 bytes.
    #[error("invalid developer {0:?}")]
    InvalidDeveloper(String),
    /// `--expires` is not a positive length of time.
    #[error("invalid expiry {0:?}: use a length such as 30m, 12h, 30d, 2w or P7D")]
    InvalidExpiry(String),
    /// A token with this name already exists (names are never reused).
    #[error("a token named {0:?} already exists")]
    DuplicateName(String),
    /// No token with this name.
    #[error("no token named {0:?}")]
    NotFound(String),
    /// The database failed.
    #[error("token store error: {0}")]
    Store(String),
}

impl From<rusqlite::Error> for TokenError {
    fn from(e: rusqlite::Error) -> Self {
        TokenError::Store(e.to_string())
    }
}

/// What `token list` shows about a token; never the secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    /// Token id, the name the audit log uses.
    pub id: i64,
    /// Name given at creation.
    pub name: String,
    /// What the token may do.
    pub scope: Scope,
    /// Developers the token is restricted to; empty = all developers.
    pub developers: Vec<String>,
    /// Creation time.
    pub created_at: jiff::Timestamp,
    /// Expiry time, if any.
    pub expires_at: Option<jiff::Timestamp>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<jiff::Timestamp>,
}

impl TokenInfo {
    /// Whether the token is usable at `now` (not revoked, not expired).
    pub fn is_active(&self, now: jiff::Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// One verified token in the cache.
#[derive(Clone)]
struct CachedToken {
    principal: Principal,
    expires_ns: Option<i64>,
    cached_at: Instant,
}

/// A token about to be stored: everything but its id.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Name given at creation.
    pub name: String,
    /// What the token may do.
    pub scope: Scope,
    /// Developers the token is restricted to; empty = all developers.
    pub developers: Vec<String>,
    /// SHA-256 of the secret.
    pub secret_hash: [u8; 32],
    /// Creation time, ns.
    pub created_ns: i64,
    /// Expiry time, ns.
    pub expires_ns: Option<i64>,
}

impl NewToken {
    /// What `token list` shows once the table gave it `id`.
    pub fn info(&self, id: i64) -> TokenInfo {
        TokenInfo {
            id,
            name: self.name.clone(),
            scope: self.scope,
            developers: self.developers.clone(),
            created_at: timestamp(self.created_ns),
            expires_at: self.expires_ns.map(timestamp),
            revoked_at: None,
        }
    }
}

/// Where the tokens are kept: the embedded store's table
/// ([`SqliteTokens`]), or one that every node of a cluster shares. The
/// rules (names, secrets, hashing, expiry, the cache) are
/// [`TokenStore`]'s; a table only stores and finds.
pub trait TokenTable: Send + Sync + 'static {
    /// Stores `new` and returns its id; [`TokenError::DuplicateName`] when
    /// a token of that name exists.
    fn insert(&self, new: &NewToken) -> Result<i64, TokenError>;
    /// Stores `tokens` when the table holds none at all; their ids, or
    /// `None` when it held some (or another node stored its own first).
    fn insert_if_empty(&self, tokens: &[NewToken]) -> Result<Option<Vec<i64>>, TokenError>;
    /// The token whose secret hashes to `hash`, with the hash as stored.
    fn by_hash(&self, hash: &[u8; 32]) -> Result<Option<(TokenInfo, Vec<u8>)>, TokenError>;
    /// All tokens, by creation.
    fn list(&self) -> Result<Vec<TokenInfo>, TokenError>;
    /// Marks `name` revoked at `at_ns` unless it already is; the token as
    /// it is now, `None` when there is no such token.
    fn revoke(&self, name: &str, at_ns: i64) -> Result<Option<TokenInfo>, TokenError>;
}

/// Shared state behind the handle.
struct Inner {
    table: Box<dyn TokenTable>,
    cache: Mutex<HashMap<[u8; 32], CachedToken>>,
}

/// Cheap-`Clone` handle over the token table of `tokentally.db`.
#[derive(Clone)]
pub struct TokenStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenStore").finish_non_exhaustive()
    }
}

fn now_ns() -> i64 {
    i64::try_from(jiff::Timestamp::now().as_nanosecond()).unwrap_or(i64::MAX)
}

/// A nanosecond time as a timestamp (clamped).
pub fn timestamp(ns: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_nanosecond(i128::from(ns)).unwrap_or(jiff::Timestamp::MAX)
}

fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", hex::encode(bytes))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The columns every token query selects, in [`row_to_info`] order.
const TOKEN_COLUMNS: &str = "id, name, scope, developers, created_ns, expires_ns, revoked_ns";

fn row_to_info(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenInfo> {
    let scope_text: String = row.get(2)?;
    let scope = Scope::parse(&scope_text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            2,
            rusqlite::types::Type::Text,
            format!("unknown scope {scope_text:?}").into(),
        )
    })?;
    let developers_json: String = row.get(3)?;
    let developers: Vec<String> = serde_json::from_str(&developers_json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(TokenInfo {
        id: row.get(0)?,
        name: row.get(1)?,
        scope,
        developers,
        created_at: timestamp(row.get(4)?),
        expires_at: row.get::<_, Option<i64>>(5)?.map(timestamp),
        revoked_at: row.get::<_, Option<i64>>(6)?.map(timestamp),
    })
}

impl TokenStore {
    /// Opens (creating if needed) `<data_dir>/tokentally.db`.
    /// Uses the store's own pragmas (WAL, synchronous=FULL, busy timeout) and
    /// migrations, so a created or revoked token is durable once acknowledged.
    pub fn open(data_dir: &Path) -> Result<TokenStore, TokenError> {
        let conn = crate::store::open_admin_connection(data_dir)
            .map_err(|e| TokenError::Store(e.to_string()))?;
        Ok(TokenStore::from_connection(conn))
    }

    /// Wraps a connection whose schema is already applied.
    pub fn from_connection(conn: Connection) -> TokenStore {
        TokenStore::over(SqliteTokens(Mutex::new(conn)))
    }

    /// Tokens kept in `table`.
    pub fn over(table: impl TokenTable) -> TokenStore {
        TokenStore {
            inner: Arc::new(Inner {
                table: Box::new(table),
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn clear_cache(&self) {
        if let Ok(mut cache) = self.inner.cache.lock() {
            cache.clear();
        }
    }

    /// Creates a token and returns it with its secret, which is not stored
    /// and cannot be shown again.
    pub fn create(
        &self,
        name: &str,
        scope: Scope,
        developers: &[String],
        expires: Option<Duration>,
    ) -> Result<(TokenInfo, String), TokenError> {
        let (new, secret) = new_token(name, scope, developers, expires)?;
        let id = self.inner.table.insert(&new)?;
        Ok((new.info(id), secret))
    }

    /// All tokens, including revoked and expired ones, by id. Never secrets.
    pub fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        self.inner.table.list()
    }

    /// Revokes the token called `name`. Revoking twice keeps the first time.
    pub fn revoke(&self, name: &str) -> Result<TokenInfo, TokenError> {
        let info = self
            .inner
            .table
            .revoke(name, now_ns())?
            .ok_or_else(|| TokenError::NotFound(name.to_string()))?;
        self.clear_cache();
        Ok(info)
    }

    /// [`TokenStore::verify`] from async code, on a blocking thread.
    pub async fn verify_async(&self, presented: String) -> Result<Principal, AuthError> {
        let tokens = self.clone();
        tokio::task::spawn_blocking(move || tokens.verify(&presented))
            .await
            .unwrap_or_else(|e| Err(AuthError::Store(e.to_string())))
    }

    /// Verifies a presented secret and returns who it belongs to.
    pub fn verify(&self, presented: &str) -> Result<Principal, AuthError> {
        if !presented.starts_with(SECRET_PREFIX)
            || presented.len() > 128
            || !presented.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(AuthError::Malformed);
        }
        let hash = hash_secret(presented);
        let now = now_ns();
        if let Some(hit) = self.cached(&hash) {
            return match hit.expires_ns {
                Some(e) if e <= now => Err(AuthError::Expired),
                _ => Ok(hit.principal),
            };
        }
        let row = self
            .inner
            .table
            .by_hash(&hash)
            .map_err(|e| AuthError::Store(e.to_string()))?;
        let Some((info, stored)) = row else {
            return Err(AuthError::Unknown);
        };
        if !bool::from(stored.as_slice().ct_eq(&hash[..])) {
            return Err(AuthError::Unknown);
        }
        if info.revoked_at.is_some() {
            return Err(AuthError::Revoked);
        }
        let expires_ns = info
            .expires_at
            .map(|t| i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX));
        if expires_ns.is_some_and(|e| e <= now) {
            return Err(AuthError::Expired);
        }
        let principal = Principal {
            token_id: info.id,
            token_name: info.name,
            scope: info.scope,
            developers: info.developers,
        };
        if let Ok(mut cache) = self.inner.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(
                hash,
                CachedToken {
                    principal: principal.clone(),
                    expires_ns,
                    cached_at: Instant::now(),
                },
            );
        }
        Ok(principal)
    }

    fn cached(&self, hash: &[u8; 32]) -> Option<CachedToken> {
        let mut cache = self.inner.cache.lock().ok()?;
        match cache.get(hash) {
            Some(hit) if hit.cached_at.elapsed() < CACHE_TTL => Some(hit.clone()),
            Some(_) => {
                cache.remove(hash);
                None
            }
            None => None,
        }
    }

    /// On first start (no token at all), creates `admin` (scope `audit`) and
    /// `read` (scope `read`) and returns them with their secrets so `serve`
    /// can print them once. Returns nothing when any token already exists.
    pub fn ensure_bootstrap_tokens(&self) -> Result<Vec<(TokenInfo, String)>, TokenError> {
        let (admin, admin_secret) = new_token("admin", Scope::Audit, &[], None)?;
        let (read, read_secret) = new_token("read", Scope::Read, &[], None)?;
        let tokens = [admin, read];
        let Some(ids) = self.inner.table.insert_if_empty(&tokens)? else {
            return Ok(Vec::new());
        };
        Ok(tokens
            .iter()
            .zip(ids)
            .map(|(t, id)| t.info(id))
            .zip([admin_secret, read_secret])
            .collect())
    }
}

/// A new token with a fresh secret, its name, developers and expiry checked.
fn new_token(
    name: &str,
    scope: Scope,
    developers: &[String],
    expires: Option<Duration>,
) -> Result<(NewToken, String), TokenError> {
    if !valid_name(name) {
        return Err(TokenError::InvalidName(name.to_string()));
    }
    if let Some(bad) = developers
        .iter()
        .find(|d| d.trim().is_empty() || d.len() > 256)
    {
        return Err(TokenError::InvalidDeveloper(bad.clone()));
    }
    let secret = new_secret();
    let created_ns = now_ns();
    let expires_ns = match expires {
        Some(d) => {
            let d = i64::try_from(d.as_nanos())
                .map_err(|_| TokenError::InvalidExpiry(format!("{d:?}")))?;
            Some(created_ns.saturating_add(d))
        }
        None => None,
    };
    Ok((
        NewToken {
            name: name.to_string(),
            scope,
            developers: developers.to_vec(),
            secret_hash: hash_secret(&secret),
            created_ns,
            expires_ns,
        },
        secret,
    ))
}

/// The token table of the embedded store (`tokentally.db`).
pub struct SqliteTokens(Mutex<Connection>);

impl SqliteTokens {
    fn conn(&self) -> Result<MutexGuard<'_, Connection>, TokenError> {
        self.0
            .lock()
            .map_err(|_| TokenError::Store("token store lock poisoned".into()))
    }
}

fn insert_row(conn: &Connection, new: &NewToken) -> Result<i64, TokenError> {
    let exists: Option<i64> = conn
        .query_row("SELECT id FROM tokens WHERE name = ?1", [&new.name], |r| {
            r.get(0)
        })
        .optional()?;
    if exists.is_some() {
        return Err(TokenError::DuplicateName(new.name.clone()));
    }
    let developers_json =
        serde_json::to_string(&new.developers).map_err(|e| TokenError::Store(e.to_string()))?;
    conn.execute(
        "INSERT INTO tokens (name, scope, developers, secret_hash, created_ns, expires_ns)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            new.name,
            new.scope.as_str(),
            developers_json,
            &new.secret_hash[..],
            new.created_ns,
            new.expires_ns
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

impl TokenTable for SqliteTokens {
    fn insert(&self, new: &NewToken) -> Result<i64, TokenError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id = insert_row(&tx, new)?;
        tx.commit()?;
        Ok(id)
    }

    fn insert_if_empty(&self, tokens: &[NewToken]) -> Result<Option<Vec<i64>>, TokenError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: i64 = tx.query_row("SELECT count(*) FROM tokens", [], |r| r.get(0))?;
        if existing > 0 {
            return Ok(None);
        }
        let ids = tokens
            .iter()
            .map(|t| insert_row(&tx, t))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit()?;
        Ok(Some(ids))
    }

    fn by_hash(&self, hash: &[u8; 32]) -> Result<Option<(TokenInfo, Vec<u8>)>, TokenError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                &format!("SELECT {TOKEN_COLUMNS}, secret_hash FROM tokens WHERE secret_hash = ?1"),
                [&hash[..]],
                |row| Ok((row_to_info(row)?, row.get::<_, Vec<u8>>(7)?)),
            )
            .optional()?)
    }

    fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!("SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY id"))?;
        let rows = stmt.query_map([], row_to_info)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn revoke(&self, name: &str, at_ns: i64) -> Result<Option<TokenInfo>, TokenError> {
        let conn = self.conn()?;
        conn.execute(
            "UPDATE tokens SET revoked_ns = ?1 WHERE name = ?2 AND revoked_ns IS NULL",
            params![at_ns, name],
        )?;
        Ok(conn
            .query_row(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE name = ?1"),
                [name],
                row_to_info,
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, TokenStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn create_verify_list() {
        let (_dir, store) = store();
        let devs = vec!["alice@example.com".to_string()];
        let (info, secret) = store
            .create("alice-read", Scope::Read, &devs, None)
            .unwrap();
        assert!(secret.starts_with("tt_"));
        assert_eq!(secret.len(), 3 + 64);
        assert_eq!(info.name, "alice-read");
        assert_eq!(info.developers, devs);

        let p = store.verify(&secret).unwrap();
        assert_eq!(
            p,
            Principal {
                token_id: info.id,
                token_name: "alice-read".into(),
                scope: Scope::Read,
                developers: devs.clone(),
            }
        );
        // Cached path gives the same answer.
        assert_eq!(store.verify(&secret).unwrap(), p);

        let listed = store.list().unwrap();
        assert_eq!(listed, vec![info]);
        let listed_json = serde_json::to_string(&listed).unwrap();
        assert!(!listed_json.contains(&secret));
        assert!(!listed_json.contains(&secret[3..]));
    }

    #[test]
    fn only_the_hash_is_stored() {
        let (dir, store) = store();
        let (_, secret) = store.create("ingest", Scope::Ingest, &[], None).unwrap();
        drop(store);
        let conn = Connection::open(dir.path().join("tokentally.db")).unwrap();
        let (stored, scope): (Vec<u8>, String) = conn
            .query_row("SELECT secret_hash, scope FROM tokens", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(scope, "ingest");
        assert_eq!(stored, Sha256::digest(secret.as_bytes()).to_vec());
        let hits: i64 = conn
            .query_row(
                "SELECT count(*) FROM tokens WHERE instr(name || scope || developers || hex(secret_hash), ?1) > 0",
                [&secret[3..].to_uppercase()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(hits, 0);
        drop(conn);
        // Nowhere in the file either (WAL checkpointed on close).
        let bytes = std::fs::read(dir.path().join("tokentally.db")).unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }

    #[test]
    fn unknown_malformed_revoked_expired_are_distinct() {
        let (_dir, store) = store();
        let (_, secret) = store.create("ci", Scope::Read, &[], None).unwrap();
        let (_, short) = store
            .create("short", Scope::Read, &[], Some(Duration::from_millis(300)))
            .unwrap();
        assert_eq!(store.verify(&short).unwrap().token_name, "short");

        assert_eq!(store.verify("garbage"), Err(AuthError::Malformed));
        assert_eq!(store.verify("tt_not a token"), Err(AuthError::Malformed));
        let unknown = format!("tt_{}", "0".repeat(64));
        assert_eq!(store.verify(&unknown), Err(AuthError::Unknown));

        store.verify(&secret).unwrap();
        let revoked = store.revoke("ci").unwrap();
        assert!(revoked.revoked_at.is_some());
        // Revocation through the same handle applies at once (cache cleared).
        assert_eq!(store.verify(&secret), Err(AuthError::Revoked));
        // Revoking again keeps the first time.
        assert_eq!(store.revoke("ci").unwrap().revoked_at, revoked.revoked_at);
        assert!(matches!(store.revoke("nope"), Err(TokenError::NotFound(_))));

        std::thread::sleep(Duration::from_millis(350));
        // Expiry applies even to a cached token.
        assert_eq!(store.verify(&short), Err(AuthError::Expired));
        let now = jiff::Timestamp::now();
        let active: Vec<_> = store
            .list()
            .unwrap()
            .into_iter()
            .filter(|t| t.is_active(now))
            .collect();
        assert!(active.is_empty());
    }

    #[test]
    fn revocation_by_another_handle_applies_after_the_cache_ttl() {
        let (dir, store) = store();
        let (_, secret) = store.create("ci", Scope::Read, &[], None).unwrap();
        store.verify(&secret).unwrap();
        let other = TokenStore::open(dir.path()).unwrap();
        other.revoke("ci").unwrap();
        // Another process's revocation is not seen until the entry ages out.
        assert!(store.verify(&secret).is_ok());
        store
            .inner
            .cache
            .lock()
            .unwrap()
            .values_mut()
            .for_each(|c| c.cached_at -= CACHE_TTL);
        assert_eq!(store.verify(&secret), Err(AuthError::Revoked));
    }

    #[test]
    fn names_are_checked_and_unique() {
        let (_dir, store) = store();
        store.create("a", Scope::Read, &[], None).unwrap();
        assert!(matches!(
            store.create("a", Scope::Audit, &[], None),
            Err(TokenError::DuplicateName(_))
        ));
        for bad in [
            "",
            "has space",
            "x'; DROP TABLE tokens; --",
            &"n".repeat(65),
        ] {
            assert!(matches!(
                store.create(bad, Scope::Read, &[], None),
                Err(TokenError::InvalidName(_))
            ));
        }
        assert!(matches!(
            store.create("b", Scope::Read, &[" ".into()], None),
            Err(TokenError::InvalidDeveloper(_))
        ));
        assert_eq!(store.list().unwrap().len(), 1);
    }

    #[test]
    fn bootstrap_creates_admin_and_read_once() {
        let (_dir, store) = store();
        let first = store.ensure_bootstrap_tokens().unwrap();
        let names: Vec<_> = first
            .iter()
            .map(|(i, _)| (i.name.as_str(), i.scope))
            .collect();
        assert_eq!(names, vec![("admin", Scope::Audit), ("read", Scope::Read)]);
        assert_eq!(store.verify(&first[0].1).unwrap().scope, Scope::Audit);
        assert_eq!(store.verify(&first[1].1).unwrap().scope, Scope::Read);
        assert!(store.ensure_bootstrap_tokens().unwrap().is_empty());
        assert_eq!(store.list().unwrap().len(), 2);
    }

    #[test]
    fn secrets_are_redacted_wherever_they_appear() {
        let secret = format!("tt_{}", "ab12".repeat(16));
        assert_eq!(
            redact_secrets(&format!("session {secret} and {secret}x")),
            "session tt_[redacted] and tt_[redacted]x"
        );
        assert_eq!(redact_secrets("tt_abc is short"), "tt_abc is short");
        assert_eq!(redact_secrets("no token"), "no token");
        assert_eq!(redact_secrets(&secret[..20]), "tt_[redacted]");
    }
}

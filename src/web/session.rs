//! Server-side sessions of the web view. The browser holds only a random
//! session id in an HttpOnly, SameSite=Strict cookie; the token it logged in
//! with stays in this process's memory and is verified again on every page
//! view, so a revoked or expired token ends its sessions at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;

/// The session cookie's name.
pub const COOKIE: &str = "tokentally_session";

/// A session ends after this long without a page view.
pub const IDLE: Duration = Duration::from_secs(60 * 60);

/// A session ends this long after login, whatever its use.
pub const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// Sessions kept at most; past it the one idle longest is dropped.
const MAX_SESSIONS: usize = 10_000;

struct Entry {
    secret: String,
    created: Instant,
    last_seen: Instant,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        now.duration_since(self.created) < LIFETIME && now.duration_since(self.last_seen) < IDLE
    }
}

/// Open web sessions by id.
#[derive(Default)]
pub struct WebSessions {
    by_id: Mutex<HashMap<String, Entry>>,
}

impl WebSessions {
    /// Opens a session for a verified token secret; returns its id (256
    /// random bits, hex).
    pub fn open(&self, secret: String) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let id = hex::encode(bytes);
        let now = Instant::now();
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, e| e.live(now));
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Entry {
                secret,
                created: now,
                last_seen: now,
            },
        );
        id
    }

    /// The token secret of a live session, marking it used; an expired
    /// session is removed.
    pub fn secret(&self, id: &str) -> Option<String> {
        let now = Instant::now();
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.get_mut(id)?;
        if !entry.live(now) {
            map.remove(id);
            return None;
        }
        entry.last_seen = now;
        Some(entry.secret.clone())
    }

    /// Ends a session.
    pub fn close(&self, id: &str) {
        self.by_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Open sessions (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The session id in a `Cookie` header, if any.
pub fn from_cookie_header(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The `Set-Cookie` value that stores `id` (`secure` when the page is served
/// over TLS).
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_gives_back_its_secret_until_closed() {
        let s = WebSessions::default();
        let id = s.open("tt_secret".into());
        assert_eq!(id.len(), 64);
        assert_eq!(s.secret(&id).as_deref(), Some("tt_secret"));
        assert_eq!(s.secret("0".repeat(64).as_str()), None);
        s.close(&id);
        assert_eq!(s.secret(&id), None);
        assert!(s.is_empty());
    }

    #[test]
    fn two_logins_get_different_ids() {
        let s = WebSessions::default();
        assert_ne!(s.open("a".into()), s.open("a".into()));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn the_cookie_is_read_only_in_its_own_shape() {
        let mut h = http::HeaderMap::new();
        let id = "ab".repeat(32);
        h.insert(
            http::header::COOKIE,
            format!("other=1; {COOKIE}={id}").parse().expect("header"),
        );
        assert_eq!(from_cookie_header(&h), Some(id.clone()));
        h.insert(
            http::header::COOKIE,
            format!("{COOKIE}=../../x").parse().expect("header"),
        );
        assert_eq!(from_cookie_header(&h), None);
        let c = set_cookie(&id, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
        assert!(!set_cookie(&id, false).contains("Secure"));
    }
}

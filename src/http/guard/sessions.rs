//! MCP sessions bound to the token that opened them.
//!
//! rmcp keeps streamable-HTTP sessions by `Mcp-Session-Id` alone, so on its
//! own any token that may query could resume, read or end another token's
//! session. The guard records which token id opened each session (the
//! response to the request that carried no session id) and lets a request
//! that names a session through only for that token: any other, or a session
//! it never saw, gets 404 as if the session did not exist, and the refusal
//! is audited (without the session id, which is a secret).

use std::collections::HashMap;
use std::sync::Mutex;

/// Sessions kept at most; past this the oldest bindings are dropped, and
/// their sessions answer 404 (the client then opens a new one).
const MAX_SESSIONS: usize = 100_000;

/// Session id → token id of the principal that opened it.
#[derive(Debug, Default)]
pub struct SessionOwners {
    inner: Mutex<Owners>,
}

#[derive(Debug, Default)]
struct Owners {
    by_id: HashMap<String, (i64, u64)>,
    next: u64,
}

impl SessionOwners {
    /// Records that `token_id` opened `session`.
    pub fn bind(&self, session: &str, token_id: i64) {
        let mut o = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if o.by_id.len() >= MAX_SESSIONS {
            // Drop the oldest tenth in one go rather than one per new session.
            let mut ages: Vec<u64> = o.by_id.values().map(|(_, age)| *age).collect();
            ages.sort_unstable();
            let cut = ages[MAX_SESSIONS / 10];
            o.by_id.retain(|_, (_, age)| *age > cut);
        }
        o.next += 1;
        let age = o.next;
        o.by_id.insert(session.to_string(), (token_id, age));
    }

    /// Whether `token_id` opened `session`.
    pub fn owned_by(&self, session: &str, token_id: i64) -> bool {
        let o = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        o.by_id.get(session).is_some_and(|(t, _)| *t == token_id)
    }

    /// Forgets `session` (ended by its owner).
    pub fn remove(&self, session: &str) {
        let mut o = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        o.by_id.remove(session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_belongs_to_the_token_that_opened_it() {
        let s = SessionOwners::default();
        s.bind("abc", 1);
        assert!(s.owned_by("abc", 1));
        assert!(!s.owned_by("abc", 2));
        assert!(!s.owned_by("other", 1));
        s.remove("abc");
        assert!(!s.owned_by("abc", 1));
    }
}

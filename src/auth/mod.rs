//! Access tokens and scopes: who is calling and what they may see.
//!
//! Transports verify a bearer token once and insert the resulting
//! [`Principal`] into the request extensions; tools, the rate limiter and the
//! audit log read it from there.
//!
//! * this file: scopes, the verified [`Principal`], verification errors and the
//!   small parsers transports and the CLI share ([`parse_bearer`],
//!   [`parse_expires`]);
//! * `tokens`: the token table (create, list, revoke, verify), storing only a
//!   SHA-256 of each secret.

mod tokens;

pub use tokens::{
    NewToken, TokenError, TokenInfo, TokenStore, TokenTable, redact_secrets, timestamp,
};

use std::time::Duration;

/// What a token may do. Each scope is the least a role needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Scope {
    /// OTLP ingest only; useless on `/mcp`.
    #[serde(rename = "ingest")]
    Ingest,
    /// The query tools, without prompt text or tool input contents.
    #[serde(rename = "read")]
    Read,
    /// The query tools, including stored prompt/tool content.
    #[serde(rename = "read:content")]
    ReadContent,
    /// The audit tools in addition to `read`.
    #[serde(rename = "audit")]
    Audit,
}

impl Scope {
    /// The scope's name as written on the command line and stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::ReadContent => "read:content",
            Scope::Audit => "audit",
        }
    }

    /// Parses a scope name.
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "ingest" => Some(Scope::Ingest),
            "read" => Some(Scope::Read),
            "read:content" => Some(Scope::ReadContent),
            "audit" => Some(Scope::Audit),
            _ => None,
        }
    }

    /// May call the query tools.
    pub fn can_query(self) -> bool {
        matches!(self, Scope::Read | Scope::ReadContent | Scope::Audit)
    }

    /// May see stored prompt text and tool input contents.
    pub fn can_read_content(self) -> bool {
        matches!(self, Scope::ReadContent)
    }

    /// May call the audit tools.
    pub fn can_audit(self) -> bool {
        matches!(self, Scope::Audit)
    }

    /// May send OTLP.
    pub fn can_ingest(self) -> bool {
        matches!(self, Scope::Ingest)
    }
}

/// The verified caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token id (what logs and the audit log name; never the secret).
    pub token_id: i64,
    /// Token name given at creation.
    pub token_name: String,
    /// The token's scope.
    pub scope: Scope,
    /// Developers this token is restricted to; empty = all developers.
    pub developers: Vec<String>,
}

impl Principal {
    /// The developers this token is bound to, if any (the query layer reads
    /// it only through `query::visible::Visible::of`).
    pub fn developer_restriction(&self) -> Option<&[String]> {
        if self.developers.is_empty() {
            None
        } else {
            Some(&self.developers)
        }
    }
}

/// Why a presented token was refused. Transports answer every variant except
/// [`AuthError::Store`] with 401; the variant goes into the audit detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token")]
    Missing,
    /// The header or the token does not have the expected form.
    #[error("malformed bearer token")]
    Malformed,
    /// No token with this secret exists.
    #[error("unknown token")]
    Unknown,
    /// The token exists but its expiry time has passed.
    #[error("token expired")]
    Expired,
    /// The token exists but was revoked.
    #[error("token revoked")]
    Revoked,
    /// The token table could not be read (answered 503, not 401).
    #[error("token store unavailable: {0}")]
    Store(String),
}

/// Extracts the token from an `Authorization` header value.
///
/// Accepts `Bearer <token>` and `Bearer%20<token>` (Claude Code passes
/// `OTEL_EXPORTER_OTLP_HEADERS` verbatim, without URL-decoding it); the scheme
/// is case-insensitive. Anything else (another scheme, an empty token, a token
/// containing whitespace) gives `None`.
pub fn parse_bearer(header_value: &str) -> Option<&str> {
    let value = header_value.trim();
    let scheme = value.get(..6)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let rest = &value[6..];
    let token = if let Some(after) = rest.strip_prefix("%20") {
        after
    } else if rest.starts_with([' ', '\t']) {
        rest.trim_start()
    } else {
        return None;
    };
    if token.is_empty() || token.contains(char::is_whitespace) {
        return None;
    }
    Some(token)
}

/// Parses a token lifetime such as `30m`, `12h`, `30d` or `2w`
/// (`--expires`), in the one grammar of [`crate::duration`]. Zero and
/// lifetimes beyond 100 years are refused.
pub fn parse_expires(text: &str) -> Result<Duration, TokenError> {
    match crate::duration::parse(text) {
        Some(d) if d.as_secs() <= 100 * 366 * 86_400 => Ok(d),
        _ => Err(TokenError::InvalidExpiry(text.to_string())),
    }
}

/// Why an ingest request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestDenial {
    /// No valid token (401 / gRPC `UNAUTHENTICATED`).
    #[error("ingest token required: {0}")]
    Unauthenticated(AuthError),
    /// A valid token of another scope (403 / gRPC `PERMISSION_DENIED`).
    #[error("token scope does not allow ingest")]
    Forbidden,
    /// The token table could not be read (503 / gRPC `UNAVAILABLE`).
    #[error("token store unavailable")]
    Unavailable,
}

/// The ingest token check both OTLP transports call (HTTP and gRPC):
/// `authorization` is the raw `Authorization` header (or gRPC metadata)
/// value. Blocking (the token table may be read).
pub fn check_ingest_token(
    tokens: &TokenStore,
    authorization: Option<&str>,
) -> Result<Principal, IngestDenial> {
    let value = authorization.ok_or(IngestDenial::Unauthenticated(AuthError::Missing))?;
    let secret = parse_bearer(value).ok_or(IngestDenial::Unauthenticated(AuthError::Malformed))?;
    match tokens.verify(secret) {
        Ok(p) if p.scope.can_ingest() => Ok(p),
        Ok(_) => Err(IngestDenial::Forbidden),
        Err(AuthError::Store(_)) => Err(IngestDenial::Unavailable),
        Err(e) => Err(IngestDenial::Unauthenticated(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_forms() {
        assert_eq!(parse_bearer("Bearer tt_abc"), Some("tt_abc"));
        assert_eq!(parse_bearer("bearer tt_abc"), Some("tt_abc"));
        assert_eq!(parse_bearer("BEARER   tt_abc "), Some("tt_abc"));
        assert_eq!(parse_bearer("Bearer%20tt_abc"), Some("tt_abc"));
        assert_eq!(parse_bearer("bearer%20tt_abc"), Some("tt_abc"));
    }

    #[test]
    fn bearer_refuses_other_schemes_and_empty_tokens() {
        assert_eq!(parse_bearer("Basic dXNlcjpwYXNz"), None);
        assert_eq!(parse_bearer("Token tt_abc"), None);
        assert_eq!(parse_bearer("Bearertt_abc"), None);
        assert_eq!(parse_bearer("Bearer "), None);
        assert_eq!(parse_bearer("Bearer%20"), None);
        assert_eq!(parse_bearer("Bearer a b"), None);
        assert_eq!(parse_bearer("tt_abc"), None);
        assert_eq!(parse_bearer(""), None);
        assert_eq!(parse_bearer("Beär tt"), None);
    }

    #[test]
    fn expiry_units() {
        assert_eq!(
            parse_expires("12h").unwrap(),
            Duration::from_secs(12 * 3600)
        );
        assert_eq!(
            parse_expires("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(
            parse_expires("2w").unwrap(),
            Duration::from_secs(14 * 86_400)
        );
        // Minutes and seconds too (short-lived tokens, tests).
        assert_eq!(parse_expires("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_expires("45s").unwrap(), Duration::from_secs(45));
        for bad in ["", "30", "d", "0d", "-1d", "99999999999999w", "200 years"] {
            assert!(parse_expires(bad).is_err(), "{bad:?} accepted");
        }
    }
}

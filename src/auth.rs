//! Access tokens and scopes: who is calling and what they may see.
//!
//! Transports verify a bearer token once and insert the resulting
//! [`Principal`] into the request extensions; tools, the rate limiter and the
//! audit log read it from there.

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
    /// The developer restriction to apply in the query layer, if any.
    pub fn developer_restriction(&self) -> Option<&[String]> {
        if self.developers.is_empty() {
            None
        } else {
            Some(&self.developers)
        }
    }
}

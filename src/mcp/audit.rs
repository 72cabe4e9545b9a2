//! One audit record per `tools/call`, appended before the answer leaves:
//! if the append fails the caller gets an error, never the data.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use rmcp::RoleServer;
use rmcp::service::RequestContext;
use serde_json::{Map, Value};

use super::reply::ToolReply;
use crate::audit::{AuditError, AuditRecord, AuditSink, Outcome};
use crate::auth::Principal;

/// Largest argument object kept in the audit record (serialized bytes).
pub const MAX_AUDIT_ARGS_BYTES: usize = 2048;

/// Request facts for the audit record that do not come from the principal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallMeta {
    /// JSON-RPC request id.
    pub request_id: Option<String>,
    /// Peer address (from axum `ConnectInfo`, when the server provides it).
    pub peer: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// MCP client name from `initialize` (or the request's metadata).
    pub client_name: Option<String>,
    /// MCP client version.
    pub client_version: Option<String>,
}

impl CallMeta {
    /// Reads the HTTP parts and client info rmcp attached to the request.
    pub fn from_context(context: &RequestContext<RoleServer>) -> CallMeta {
        let parts = context.extensions.get::<http::request::Parts>();
        let user_agent = parts
            .and_then(|p| p.headers.get(http::header::USER_AGENT))
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect());
        let peer = parts
            .and_then(|p| {
                p.extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            })
            .map(|c| c.0.to_string());
        let client = context.client_info();
        CallMeta {
            request_id: Some(context.id.to_string().chars().take(128).collect()),
            peer,
            user_agent,
            client_name: client.as_ref().map(|c| c.name.clone()),
            client_version: client.as_ref().map(|c| c.version.clone()),
        }
    }
}

/// Argument names whose values may carry content or secrets.
const REDACTED_KEYS: [&str; 3] = ["error_contains", "cursor", "prompt"];

/// Arguments as logged: content-like values redacted, long strings cut,
/// and the whole object replaced by its key list past the size cap.
pub fn redact_args(args: &Value) -> Value {
    let Value::Object(obj) = args else {
        return Value::Null;
    };
    let mut out = Map::new();
    for (k, v) in obj {
        let v = if REDACTED_KEYS.contains(&k.as_str()) {
            Value::String("[redacted]".into())
        } else {
            match v {
                Value::String(s) if s.len() > 200 => Value::String(format!(
                    "{}… ({} bytes)",
                    s.chars().take(200).collect::<String>(),
                    s.len()
                )),
                Value::Array(_) | Value::Object(_) => Value::String("[structured value]".into()),
                other => other.clone(),
            }
        };
        out.insert(k.chars().take(64).collect(), v);
    }
    let v = Value::Object(out);
    if v.to_string().len() > MAX_AUDIT_ARGS_BYTES {
        let keys: Vec<Value> = obj
            .keys()
            .take(32)
            .map(|k| Value::String(k.chars().take(64).collect()))
            .collect();
        return serde_json::json!({ "_truncated": true, "keys": keys });
    }
    v
}

/// Runs a call and appends its audit record; fails closed.
pub async fn audited<F, Fut>(
    sink: &Arc<dyn AuditSink>,
    principal: Option<&Principal>,
    tool: &str,
    args: Value,
    meta: CallMeta,
    run: F,
) -> Result<ToolReply, AuditError>
where
    F: FnOnce(Principal, String, Value) -> Fut,
    Fut: Future<Output = ToolReply>,
{
    let started = Instant::now();
    let logged_args = redact_args(&args);
    let reply = match principal {
        Some(p) => run(p.clone(), tool.to_string(), args).await,
        None => ToolReply::error(
            Outcome::Unauthenticated,
            "no verified token on this request",
        ),
    };
    let bytes = reply.structured.to_string().len() + reply.text.len();
    let record = AuditRecord {
        request_id: meta.request_id,
        token_id: principal.map(|p| p.token_id),
        token_name: principal.map(|p| p.token_name.clone()),
        scope: principal.map(|p| p.scope.as_str().to_string()),
        peer: meta.peer,
        user_agent: meta.user_agent,
        client_name: meta.client_name,
        client_version: meta.client_version,
        method: Some("tools/call".into()),
        tool: Some(tool.chars().take(128).collect()),
        arguments: Some(logged_args),
        outcome: reply.outcome.as_str().to_string(),
        detail: reply
            .is_error
            .then(|| reply.text.chars().take(500).collect()),
        rows: Some(reply.rows),
        truncated: Some(reply.truncated),
        bytes: Some(bytes as u64),
        duration_ms: Some(started.elapsed().as_millis() as u64),
    };
    let sink = sink.clone();
    tokio::task::spawn_blocking(move || sink.append(record))
        .await
        .map_err(|e| AuditError::Internal(e.to_string()))??;
    Ok(reply)
}

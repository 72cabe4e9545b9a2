//! One audit record per `tools/call`, appended before the answer leaves:
//! if the append fails the caller gets an error, never the data.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use rmcp::RoleServer;
use rmcp::service::RequestContext;
use serde_json::Value;

use super::reply::ToolReply;
use crate::audit::{AuditError, AuditRecord, AuditSink, CallResult, Caller, Outcome};
use crate::auth::Principal;

/// The caller facts rmcp attached to a request: HTTP parts (peer address,
/// `User-Agent`) and the client's `initialize` info.
pub fn caller_of(context: &RequestContext<RoleServer>) -> Caller {
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
    Caller {
        request_id: Some(context.id.to_string().chars().take(128).collect()),
        peer,
        user_agent,
        client_name: client.as_ref().map(|c| c.name.clone()),
        client_version: client.as_ref().map(|c| c.version.clone()),
    }
}

/// Runs a call and appends its audit record; fails closed.
pub async fn audited<F, Fut>(
    sink: &Arc<dyn AuditSink>,
    principal: Option<&Principal>,
    tool: &str,
    args: Value,
    caller: Caller,
    run: F,
) -> Result<ToolReply, AuditError>
where
    F: FnOnce(Principal, String, Value) -> Fut,
    Fut: Future<Output = ToolReply>,
{
    let started = Instant::now();
    let record_args = args.clone();
    let reply = match principal {
        Some(p) => run(p.clone(), tool.to_string(), args).await,
        None => ToolReply::error(
            Outcome::Unauthenticated,
            "no verified token on this request",
        ),
    };
    // Tool names from callers are bounded to the registry's for the label.
    let known = super::registry::find(tool).map_or("unknown", |t| t.name);
    crate::metrics::tool_call(
        known,
        reply.outcome.as_str(),
        started.elapsed().as_secs_f64(),
    );
    let record = AuditRecord::tool_call(
        principal,
        caller,
        tool,
        &record_args,
        CallResult {
            outcome: reply.outcome,
            error: reply.is_error.then(|| reply.text.clone()),
            rows: reply.rows,
            truncated: reply.truncated,
            bytes: (reply.structured.to_string().len() + reply.text.len()) as u64,
            duration: started.elapsed(),
        },
    );
    // One concise line per tool call (no arguments: they may hold content).
    tracing::info!(
        tool = record.tool.as_deref().unwrap_or(""),
        outcome = %record.outcome,
        token = record.token_name.as_deref().unwrap_or("-"),
        rows = record.rows.unwrap_or(0),
        ms = record.duration_ms.unwrap_or(0),
        "tool call"
    );
    crate::audit::append(sink, record).await?;
    Ok(reply)
}

//! Tool replies: structured JSON plus a short text summary, row caps and
//! cursors, the reply-size cap, and caller-facing error messages.

use serde_json::{Map, Value, json};

use crate::audit::Outcome;
use crate::query::page::{self, Position};
use crate::query::{QueryError, ToolContext};

/// What one tool call answered; the MCP handler and the CLI both render it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolReply {
    /// The structured answer (`structuredContent`).
    pub structured: Value,
    /// Short human-readable summary (first text content block).
    pub text: String,
    /// True for caller mistakes and failures (`isError`).
    pub is_error: bool,
    /// Rows returned.
    pub rows: u64,
    /// Whether rows were left out (row cap or size cap).
    pub truncated: bool,
    /// How the call ended, for the audit log.
    pub outcome: Outcome,
}

impl ToolReply {
    /// A tool error that tells the caller what to fix.
    pub fn error(outcome: Outcome, message: impl Into<String>) -> ToolReply {
        let message = message.into();
        ToolReply {
            structured: json!({ "error": message }),
            text: message,
            is_error: true,
            rows: 0,
            truncated: false,
            outcome,
        }
    }

    /// A tool error for a failed query.
    pub fn from_query_error(e: QueryError, ctx: &ToolContext) -> ToolReply {
        match e {
            QueryError::TimedOut => ToolReply::error(
                Outcome::TimedOut,
                format!(
                    "The query ran past its {} ms time budget and was stopped. Narrow the time range \
                     (since/until) or add filters (developer, model, session_id) and try again.",
                    ctx.limits.time_budget_ms
                ),
            ),
            QueryError::Busy => ToolReply::error(
                Outcome::Failed,
                "The store is busy with other queries; try again in a few seconds.",
            ),
            QueryError::Unavailable(detail) => {
                tracing::warn!(%detail, "store unavailable for a query");
                ToolReply::error(
                    Outcome::Failed,
                    "The store cannot be reached right now (the database server is down or \
                     restarting); nothing was answered. Try again in a minute.",
                )
            }
            QueryError::Invalid(m) => ToolReply::error(Outcome::ToolError, m),
            QueryError::NotFound(m) => ToolReply::error(Outcome::ToolError, m),
            QueryError::Sql(detail) => {
                tracing::error!(%detail, "query failed");
                ToolReply::error(
                    Outcome::Failed,
                    "The query failed inside the server; the details are in the server log.",
                )
            }
        }
    }
}

/// A tool's answer before the common finishing (paging, size cap, text).
#[derive(Debug, Default)]
pub struct Output {
    /// Everything but the rows (range, totals, source notes...), from [`Output::body`].
    pub body: Map<String, Value>,
    /// Rows of this page.
    pub rows: Vec<Value>,
    /// Position after each row (for `next_cursor`).
    pub positions: Vec<Position>,
    /// Whether more rows follow this page.
    pub more: bool,
    /// Where this page started (to repeat when no row fits).
    pub start: Option<Position>,
    /// One or two sentences for the text content.
    pub summary: String,
    /// Notes for the caller (clamped limit, data gaps, sources).
    pub notes: Vec<String>,
}

impl Output {
    /// Sets the rows of a page.
    pub fn page<T: serde::Serialize>(&mut self, p: page::Page<T>) {
        self.rows = p
            .rows
            .iter()
            .map(|r| serde_json::to_value(r).unwrap_or(Value::Null))
            .collect();
        self.positions = p.positions;
        self.more = p.more;
    }

    /// Whether this answer is a later page (its emptiness then means the
    /// pages ran out, not that nothing matched).
    pub fn has_start(&self) -> bool {
        !matches!(self.start, None | Some(Position::Offset(0)))
    }

    /// Sets the body: every field of `body` (a struct whose schema is the
    /// tool's reply schema, see `tools::reply_schema`).
    pub fn body(&mut self, body: &impl serde::Serialize) {
        if let Ok(Value::Object(fields)) = serde_json::to_value(body) {
            self.body.extend(fields);
        }
    }
}

/// Makes a value as small as it can be without losing meaning: object
/// members that are `null` are left out (an absent optional field means the
/// same), money (`*_usd`) is rounded to 6 decimals and shares and rates
/// (`*_share`, `*_rate`) to 4, so `0.017837500000000003` reads `0.017838`.
fn compact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            for (k, x) in m.iter_mut() {
                let digits = if k.ends_with("_usd") {
                    Some(6)
                } else if k.ends_with("_share") || k.ends_with("_rate") {
                    Some(4)
                } else {
                    None
                };
                match (digits, x.as_f64()) {
                    (Some(d), Some(f)) if x.is_f64() => {
                        let scale = 10f64.powi(d);
                        *x = serde_json::Number::from_f64((f * scale).round() / scale)
                            .map(Value::Number)
                            .unwrap_or(Value::Null);
                    }
                    _ => compact(x),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(compact),
        _ => {}
    }
}

/// Applies the reply-size cap and builds the reply.
pub fn finish(ctx: &ToolContext, tool: &str, args_hash: &str, mut out: Output) -> ToolReply {
    let max = ctx.limits.max_reply_bytes.max(1024);
    out.rows.iter_mut().for_each(compact);
    // The body as one object, so its own money fields (`total_cost_usd`)
    // are rounded too, not only those nested in it.
    let mut body = Value::Object(std::mem::take(&mut out.body));
    compact(&mut body);
    if let Value::Object(m) = body {
        out.body = m;
    }
    // The text content repeats the JSON for clients that ignore structured
    // content, so the JSON gets half the budget.
    let budget = (max / 2).saturating_sub(out.summary.len() + 512);
    let row_sizes: Vec<usize> = out.rows.iter().map(|r| r.to_string().len() + 1).collect();
    let base = Value::Object(out.body.clone()).to_string().len()
        + out.notes.iter().map(|n| n.len() + 4).sum::<usize>()
        + 200;
    let mut total = base + row_sizes.iter().sum::<usize>();
    let mut dropped = 0usize;
    // Always keep one row so paging makes progress.
    while total > budget && out.rows.len() > 1 {
        out.rows.pop();
        out.positions.pop();
        total -= row_sizes[out.rows.len()];
        dropped += 1;
    }
    let truncated = out.more || dropped > 0;
    if dropped > 0 {
        out.notes.push(format!(
            "{dropped} more row(s) of this page were left out to keep the reply under {max} bytes; pass next_cursor to continue"
        ));
    }
    let next = if truncated {
        out.positions
            .last()
            .copied()
            .or(out.start)
            .or(Some(Position::Offset(0)))
    } else {
        None
    };
    let next_cursor = next.map(|p| page::encode(tool, args_hash, p));
    let rows = out.rows.len() as u64;
    let mut body = out.body;
    body.insert("rows".into(), Value::Array(out.rows));
    body.insert("truncated".into(), Value::Bool(truncated));
    body.insert(
        "next_cursor".into(),
        next_cursor
            .clone()
            .map(Value::String)
            .unwrap_or(Value::Null),
    );
    body.insert("notes".into(), json!(out.notes));
    let structured = Value::Object(body);
    let mut text = out.summary;
    if truncated {
        text.push_str(&format!(
            " Showing {rows} row(s); more are available: call again with cursor set to next_cursor."
        ));
    }
    for n in &out.notes {
        text.push_str("\nNote: ");
        text.push_str(n);
    }
    ToolReply {
        structured,
        text,
        is_error: false,
        rows,
        truncated,
        outcome: Outcome::Ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_shares_are_rounded_at_every_level_and_nulls_dropped() {
        let mut v = json!({
            "total_cost_usd": 0.017837500000000003,
            "gone": null,
            "rows": [{"cost_share": 0.123456, "cost_usd": 1.0000004, "n": 0.017837500000000003}],
        });
        compact(&mut v);
        assert_eq!(
            v,
            json!({
                "total_cost_usd": 0.017838,
                "rows": [{"cost_share": 0.1235, "cost_usd": 1.0, "n": 0.017837500000000003}],
            })
        );
    }
}

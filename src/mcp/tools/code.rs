//! Tools about tool use: latency per tool and the most edited files.

use super::super::args::{self, AggregateArgs};
use super::super::reply::Output;
use super::paging;
use crate::auth::Principal;
use crate::query::latency::ToolLatency;
use crate::query::page::{Page, Position};
use crate::query::time::RangeInfo;
use crate::query::{QueryError, ToolContext};

/// `tool_latency` besides its rows.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct LatencyBody {
    /// The resolved time range.
    pub range: RangeInfo,
    /// How the percentiles are defined.
    pub percentile_definition: String,
    /// MCP tool calls by server and tool.
    pub mcp_breakdown: Vec<ToolLatency>,
}

/// `top_edited_files` besides its rows.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct FilesBody {
    /// The resolved time range.
    pub range: RangeInfo,
    /// Edits in the range, with or without a file path.
    pub total_edits: i64,
    /// Edits that carried no file path.
    pub edits_without_path: i64,
    /// Accepted edit decisions.
    pub accepted: i64,
    /// Rejected edit decisions.
    pub rejected: i64,
    /// Accepted share of decided edits, 0..1.
    pub acceptance_rate: Option<f64>,
    /// Whether any edit carried a file path (OTEL_LOG_TOOL_DETAILS=1).
    pub file_paths_available: bool,
}

pub(crate) async fn tool_latency(
    ctx: &ToolContext,
    principal: &Principal,
    a: Result<AggregateArgs, QueryError>,
    hash: &str,
) -> Result<Output, QueryError> {
    let a = a?;
    args::check_strings(&[("tool_name", &a.tool_name)])?;
    let range = a.common.range.resolve_for(ctx, principal, Some(7)).await?;
    let mut f = a.common.who.filter(principal)?;
    let mut notes = Vec::new();
    if f.model.take().is_some() {
        notes.push("model is ignored: tool results carry no model".to_string());
    }
    let (limit, offset, more_notes) = paging(ctx, "tool_latency", hash, &a.common.page)?;
    notes.extend(more_notes);
    let tool = args::clean(&a.tool_name);
    let r2 = range.clone();
    let (rows, mcp) = ctx.questions.tool_latency(r2, f, tool).await?;
    let mut out = Output {
        notes,
        start: Some(Position::Offset(offset)),
        ..Default::default()
    };
    out.body(&LatencyBody {
        range: range.info(),
        percentile_definition: "nearest rank: pN is the smallest duration d such that at least N% of calls took <= d ms (exact, from the stored millisecond values)".into(),
        mcp_breakdown: mcp,
    });
    out.summary = format!(
        "{} tool(s) between {} and {} ({}).{}",
        rows.len(),
        range.info().since,
        range.info().until,
        range.tz_name,
        rows.first()
            .map(|r| format!(
                " Busiest: {} ({} calls, p95 {} ms).",
                r.tool_name,
                r.calls,
                r.latency.p95_ms.unwrap_or(0)
            ))
            .unwrap_or_default()
    );
    out.page(Page::slice(rows, offset, limit));
    Ok(out)
}

pub(crate) async fn top_edited_files(
    ctx: &ToolContext,
    principal: &Principal,
    a: Result<AggregateArgs, QueryError>,
    hash: &str,
) -> Result<Output, QueryError> {
    let a = a?;
    args::check_strings(&[("tool_name", &a.tool_name)])?;
    let range = a.common.range.resolve_for(ctx, principal, Some(7)).await?;
    let f = a.common.who.filter(principal)?;
    let (limit, offset, notes) = paging(ctx, "top_edited_files", hash, &a.common.page)?;
    let tool = args::clean(&a.tool_name);
    let r2 = range.clone();
    // Only the files of this page and those before it are made into rows.
    let top = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .saturating_add(limit);
    let res = ctx.questions.top_edited_files(r2, f, tool, top).await?;
    let mut out = Output {
        notes,
        start: Some(Position::Offset(offset)),
        ..Default::default()
    };
    let decided = res.accepted + res.rejected;
    out.body(&FilesBody {
        range: range.info(),
        total_edits: res.total_edits,
        edits_without_path: res.edits_without_path,
        accepted: res.accepted,
        rejected: res.rejected,
        acceptance_rate: (decided > 0).then(|| res.accepted as f64 / decided as f64),
        file_paths_available: res.file_count > 0,
    });
    let window = format!(
        "between {} and {} ({})",
        range.info().since,
        range.info().until,
        range.tz_name
    );
    if res.file_count == 0 {
        out.summary = if res.total_edits > 0 {
            format!(
                "{} edit(s) {window}, but none carries a file path. {ENABLE}.",
                res.total_edits,
                ENABLE = crate::query::files::ENABLE_PATHS
            )
        } else {
            format!(
                "No edits {window}. If edits happened, note that {}.",
                crate::query::files::ENABLE_PATHS
            )
        };
        out.notes
            .push(crate::query::files::ENABLE_PATHS.to_string());
    } else {
        if res.edits_without_path > 0 {
            out.notes.push(format!(
                "{} edit(s) had no file path and are only in the totals ({})",
                res.edits_without_path,
                crate::query::files::ENABLE_PATHS
            ));
        }
        out.summary = format!(
            "{} file(s) edited {window}; {} edit(s), {} accepted, {} rejected.{}",
            res.file_count,
            res.total_edits,
            res.accepted,
            res.rejected,
            res.files
                .first()
                .map(|f| format!(" Most edited: {} ({} edits).", f.file_path, f.edits))
                .unwrap_or_default()
        );
    }
    let files = usize::try_from(res.file_count).unwrap_or(usize::MAX);
    out.page(Page::slice_of(res.files, files, offset, limit));
    Ok(out)
}

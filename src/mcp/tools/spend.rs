//! Tools about spend: cost per developer, per model, and over time.

use super::super::args::{self, SpendArgs};
use super::super::reply::Output;
use super::{money, paging};
use crate::auth::Principal;
use crate::query::cost::DeveloperCost;
use crate::query::page::{Page, Position};
use crate::query::time::RangeInfo;
use crate::query::usage::COST_NOTE;
use crate::query::{QueryError, ToolContext};

/// `cost_by_developer` besides its rows.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct CostBody {
    /// The resolved time range.
    pub range: RangeInfo,
    /// Sums over all developers (not only this page).
    pub totals: DeveloperCost,
    /// Where cost and tokens came from.
    pub source: String,
    /// What cost_usd is.
    pub cost_note: String,
    /// Models whose requests count without a cost (the agent sent none and
    /// the price table has no price): add them to a price override file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unpriced_models: Vec<String>,
    /// How developers are identified.
    pub developer_identity: String,
}

/// `model_breakdown` besides its rows.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct ModelsBody {
    /// The resolved time range.
    pub range: RangeInfo,
    /// Cost over all models in USD (reported, else computed).
    pub total_cost_usd: f64,
    /// Where cost and tokens came from.
    pub source: String,
    /// What cost_usd is.
    pub cost_note: String,
    /// How the latency percentile is defined.
    pub latency_note: String,
}

/// `usage_over_time` besides its rows.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct SeriesBody {
    /// The resolved time range.
    pub range: RangeInfo,
    /// Bucket size: hour, day, week or total.
    pub bucket: String,
    /// The split dimension, if any.
    pub split_by: Option<String>,
    /// Cost over the whole series in USD (reported, else computed).
    pub total_cost_usd: f64,
    /// Where cost and tokens came from.
    pub source: String,
    /// What cost_usd is.
    pub cost_note: String,
}

/// How a cost total is made up, for summaries: nothing when all of it was
/// reported by the agents.
pub(crate) fn cost_parts(cost: f64, reported: f64) -> String {
    use crate::query::is_zero_money;
    let computed = cost - reported;
    if is_zero_money(&computed) {
        " (the agents' own estimates)".into()
    } else if is_zero_money(&reported) {
        " (computed from tokens and list prices)".into()
    } else {
        format!(
            " ({} reported by the agents, {} computed from tokens and list prices)",
            money(reported),
            money(computed)
        )
    }
}

/// The note naming models counted without a cost.
pub(crate) fn unpriced_note(models: &[String], requests: i64) -> String {
    format!(
        "{requests} request(s) count without a cost: no reported cost and no price for {}; add the model(s) to a price override file (serve --prices FILE)",
        models.join(", ")
    )
}

pub(crate) async fn cost_by_developer(
    ctx: &ToolContext,
    principal: &Principal,
    a: Result<SpendArgs, QueryError>,
    hash: &str,
) -> Result<Output, QueryError> {
    let a = a?;
    let range = a.range.resolve_for(ctx, principal, Some(7)).await?;
    let f = a.who.filter(principal)?;
    let (limit, offset, notes) = paging(ctx, "cost_by_developer", hash, &a.page)?;
    let r2 = range.clone();
    let res = ctx.questions.cost_by_developer(r2, f).await?;
    let mut out = Output {
        notes,
        start: Some(Position::Offset(offset)),
        ..Default::default()
    };
    out.notes.extend(res.sources.note());
    out.body(&CostBody {
        range: range.info(),
        totals: res.totals.clone(),
        source: res.sources.describe().into(),
        cost_note: COST_NOTE.into(),
        unpriced_models: res.unpriced_models.clone(),
        developer_identity: "developer is user.email when present, else user.account_uuid, else the anonymous user.id; for agents that send no user, user.account_id, installation.id, host.name or the operator's identity map (see developer_kind)".into(),
    });
    if !res.unpriced_models.is_empty() {
        out.notes.push(unpriced_note(
            &res.unpriced_models,
            res.totals.unpriced_requests,
        ));
    }
    let n = res.developers.len();
    out.summary = format!(
        "{n} developer(s) used {}{} between {} and {} ({}); {} API requests, {} output tokens. Source: {}.",
        money(res.totals.cost_usd),
        cost_parts(res.totals.cost_usd, res.totals.reported_cost_usd),
        range.info().since,
        range.info().until,
        range.tz_name,
        res.totals.api_requests,
        res.totals.output_tokens,
        res.sources.describe(),
    );
    if let Some(top) = res.developers.get(offset as usize) {
        out.summary.push_str(&format!(
            " Top: {} ({}) {}.",
            top.developer.as_deref().unwrap_or("(unknown)"),
            top.developer_kind.as_deref().unwrap_or("?"),
            money(top.cost_usd)
        ));
    }
    out.page(Page::slice(res.developers, offset, limit));
    Ok(out)
}

pub(crate) async fn model_breakdown(
    ctx: &ToolContext,
    principal: &Principal,
    a: Result<SpendArgs, QueryError>,
    hash: &str,
) -> Result<Output, QueryError> {
    let a = a?;
    let range = a.range.resolve_for(ctx, principal, Some(7)).await?;
    let f = a.who.filter(principal)?;
    let (limit, offset, mut notes) = paging(ctx, "model_breakdown", hash, &a.page)?;
    let r2 = range.clone();
    let (rows, sources) = ctx.questions.model_breakdown(r2, f).await?;
    notes.extend(sources.note());
    if sources.metrics {
        notes.push("requests and latency are unknown for metrics-only sessions (their tokens and cost come from metrics)".into());
    }
    let mut out = Output {
        notes,
        start: Some(Position::Offset(offset)),
        ..Default::default()
    };
    let total: f64 = rows.iter().map(|r| r.cost_usd).sum();
    let reported: f64 = rows.iter().map(|r| r.reported_cost_usd).sum();
    let unpriced: Vec<String> = rows
        .iter()
        .filter(|r| r.unpriced_requests > 0)
        .map(|r| crate::query::model_label(&r.model))
        .collect();
    if !unpriced.is_empty() {
        let n = rows.iter().map(|r| r.unpriced_requests).sum();
        out.notes.push(unpriced_note(&unpriced, n));
    }
    out.body(&ModelsBody {
        range: range.info(),
        total_cost_usd: total,
        source: sources.describe().into(),
        cost_note: COST_NOTE.into(),
        latency_note: "p95 is the nearest-rank 95th percentile of api_request duration_ms (exact)"
            .into(),
    });
    let most_output = rows
        .iter()
        .max_by_key(|r| r.output_tokens)
        .map(|r| r.model.clone());
    out.summary = format!(
        "{} model(s) between {} and {} ({}), total {}{}.{}",
        rows.len(),
        range.info().since,
        range.info().until,
        range.tz_name,
        money(total),
        cost_parts(total, reported),
        most_output
            .map(|m| format!(" Most output tokens: {m}."))
            .unwrap_or_default()
    );
    out.page(Page::slice(rows, offset, limit));
    Ok(out)
}

pub(crate) async fn usage_over_time(
    ctx: &ToolContext,
    principal: &Principal,
    a: Result<args::SeriesArgs, QueryError>,
    hash: &str,
) -> Result<Output, QueryError> {
    use crate::query::timeseries::{Bucket, Split};
    let a = a?;
    args::check_strings(&[("bucket", &a.bucket), ("split_by", &a.split_by)])?;
    let bucket = Bucket::parse(args::clean(&a.bucket).as_deref().unwrap_or("day"))?;
    let split = Split::parse(args::clean(&a.split_by).as_deref())?;
    let range = a.range.resolve_for(ctx, principal, Some(7)).await?;
    let f = a.who.filter(principal)?;
    let (limit, offset, mut notes) = paging(ctx, "usage_over_time", hash, &a.page)?;
    let r2 = range.clone();
    let (points, sources) = ctx.questions.usage_over_time(r2, f, bucket, split).await?;
    notes.extend(sources.note());
    if matches!(
        split,
        Split::Repository
            | Split::Branch
            | Split::McpServer
            | Split::McpTool
            | Split::Attribution(_)
    ) {
        notes.push(
            "this split reads raw events for the whole range; usage whose records do not carry the value is under key null"
                .into(),
        );
    }
    if matches!(bucket, Bucket::Day | Bucket::Week) {
        let off = range.tz.to_offset(ctx.now()).seconds();
        if off % 3600 != 0 {
            notes.push(format!(
                "{} is not a whole number of hours from UTC: usage is placed in buckets by the UTC hour it falls in",
                range.tz_name
            ));
        }
    }
    let mut out = Output {
        notes,
        start: Some(Position::Offset(offset)),
        ..Default::default()
    };
    let total: f64 = points.iter().map(|p| p.cost_usd).sum();
    let unpriced: i64 = points.iter().map(|p| p.unpriced_requests).sum();
    if unpriced > 0 {
        out.notes.push(format!(
            "{unpriced} request(s) count without a cost (no reported cost and no price for their model); model_breakdown names the models"
        ));
    }
    let peak = points
        .iter()
        .max_by(|x, y| {
            x.cost_usd
                .partial_cmp(&y.cost_usd)
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .cloned();
    out.body(&SeriesBody {
        range: range.info(),
        bucket: args::clean(&a.bucket).unwrap_or_else(|| "day".into()),
        split_by: args::clean(&a.split_by),
        total_cost_usd: total,
        source: sources.describe().into(),
        cost_note: COST_NOTE.into(),
    });
    out.summary = format!(
        "{} point(s) between {} and {} ({}), total {}.{}",
        points.len(),
        range.info().since,
        range.info().until,
        range.tz_name,
        money(total),
        peak.filter(|p| p.cost_usd > 0.0)
            .map(|p| format!(
                " Highest: {}{} with {}.",
                p.bucket_start,
                p.key.map(|k| format!(" ({k})")).unwrap_or_default(),
                money(p.cost_usd)
            ))
            .unwrap_or_default()
    );
    out.page(Page::slice(points, offset, limit));
    Ok(out)
}

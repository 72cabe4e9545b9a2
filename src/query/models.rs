//! `model_breakdown`: per model requests, tokens, cost and share of cost,
//! mean and p95 API latency (exact), errors.

use super::filter::Filter;
use super::latency::{self, Kind, counts};
use super::time::TimeRange;
use super::usage::{self, Dim};
use super::{LatencySummary, QueryError};

/// One model's usage.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct ModelUsage {
    /// Model id as the agent reports it (empty when unknown).
    pub model: String,
    /// The coding agents that used it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<String>,
    /// API requests (`api_request` events).
    pub requests: i64,
    /// API errors (`api_error` events).
    pub errors: i64,
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cache read tokens.
    pub cache_read_tokens: i64,
    /// Cache creation tokens.
    pub cache_creation_tokens: i64,
    /// The reasoning part of the output tokens.
    #[serde(default)]
    pub reasoning_tokens: i64,
    /// Cost in USD: reported by the agent where it sends one, else computed.
    pub cost_usd: f64,
    /// The part of `cost_usd` the agents reported.
    #[serde(default)]
    pub reported_cost_usd: f64,
    /// What the price table gives for these requests (typed from events).
    #[serde(default)]
    pub computed_cost_usd: f64,
    /// Requests counted without a cost: no reported cost and no price for
    /// this model (add it to a price override file).
    #[serde(default)]
    pub unpriced_requests: i64,
    /// This model's share of the total cost, 0..1.
    pub cost_share: Option<f64>,
    /// Mean API request duration in ms.
    pub mean_latency_ms: Option<f64>,
    /// 95th percentile (nearest rank) API request duration in ms.
    pub p95_latency_ms: Option<i64>,
    /// `events`, `metrics` or `events+metrics`.
    pub source: String,
}

/// Models ordered by cost (then output tokens, then name), plus the
/// sources used.
pub fn model_breakdown(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    f: &Filter,
) -> Result<(Vec<ModelUsage>, usage::Sources), QueryError> {
    let groups = usage::grouped(conn, range, f, &GROUPS)?;
    let hists = latency::histograms(conn, Kind::Api, range, f, None)?;
    Ok(fold(groups, &hists))
}

/// The usage groups the answer is folded from.
pub const GROUPS: [Dim; 2] = [Dim::Model, Dim::Agent];

/// The answer from the usage groups by [`GROUPS`] and the API latency
/// histograms by model, whichever engine counted them.
pub fn fold(
    groups: Vec<usage::UsageGroup>,
    hists: &latency::Hists,
) -> (Vec<ModelUsage>, usage::Sources) {
    let total_cost: f64 = groups.iter().map(|g| g.usage.cost_usd).sum();
    let mut sources = usage::Sources::default();
    // One row per model, whichever agents used it.
    let mut by_model: std::collections::BTreeMap<String, (usage::Usage, Vec<String>)> =
        std::collections::BTreeMap::new();
    for g in groups {
        let model = g
            .keys
            .first()
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let (u, agents) = by_model.entry(model).or_default();
        u.add(&g.usage);
        if let Some(a) = g.keys.get(1).and_then(|v| v.as_str()) {
            agents.push(a.to_string());
        }
    }
    let mut rows: Vec<ModelUsage> = by_model
        .into_iter()
        .map(|(model, (u, agents))| {
            sources.add(&u);
            let lat = hists
                .get(&model)
                .map(|h| LatencySummary::from_hist(&counts(h)))
                .unwrap_or_default();
            ModelUsage {
                source: super::cost::source_label(&u),
                model,
                agents,
                reasoning_tokens: u.reasoning_tokens,
                reported_cost_usd: u.reported_cost_usd,
                computed_cost_usd: u.computed_cost_usd,
                unpriced_requests: u.unpriced_requests,
                requests: u.requests,
                errors: u.errors,
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
                cache_read_tokens: u.cache_read_tokens,
                cache_creation_tokens: u.cache_creation_tokens,
                cost_usd: u.cost_usd,
                cost_share: (total_cost > 0.0).then(|| u.cost_usd / total_cost),
                mean_latency_ms: lat.mean_ms,
                p95_latency_ms: lat.p95_ms,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.cost_usd
            .partial_cmp(&a.cost_usd)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| b.output_tokens.cmp(&a.output_tokens))
            .then_with(|| a.model.cmp(&b.model))
    });
    (rows, sources)
}

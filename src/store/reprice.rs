//! Repricing: the computed cost of every stored API request restated with
//! another price table (an override file added or changed after the data
//! arrived), with the rollups and session totals moved by exactly the
//! difference, in one transaction.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use super::rollup::hour_of;
use crate::pricing::{Pricing, Tokens};

/// What one repricing changed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RepriceReceipt {
    /// API requests whose computed cost changed.
    pub requests: u64,
    /// Requests that now count with a computed cost and had none.
    pub newly_priced: u64,
    /// Requests that count without a cost now (their model lost its price).
    pub unpriced: u64,
    /// The change of the total cost answers count, in USD.
    pub cost_delta_usd: f64,
}

#[derive(Default)]
struct Delta {
    cost: f64,
    computed: f64,
    unpriced: i64,
}

/// Restates every agent's `api_request` with `pricing`.
pub(crate) fn reprice(conn: &Connection, pricing: &Pricing) -> rusqlite::Result<RepriceReceipt> {
    let tx = conn.unchecked_transaction()?;
    let mut receipt = RepriceReceipt::default();
    let mut hourly: HashMap<(i64, i64, String), Delta> = HashMap::new();
    let mut sessions: HashMap<i64, f64> = HashMap::new();
    {
        let mut read = tx.prepare(
            "SELECT e.id, e.context_id, c.session_ref, e.time_ns, e.model, e.input_tokens,
                    e.cache_read_tokens, e.cache_creation_tokens, e.output_tokens,
                    e.reasoning_tokens, e.cost_usd, e.computed_cost_usd, e.cost_computed
             FROM events e JOIN contexts c ON c.id = e.context_id
             WHERE e.event_name = 'api_request' AND c.agent IS NOT NULL AND e.model IS NOT NULL",
        )?;
        let mut update = tx.prepare(
            "UPDATE events SET computed_cost_usd = ?2, cost_usd = ?3, cost_computed = ?4 WHERE id = ?1",
        )?;
        let mut rows = read.query([])?;
        while let Some(r) = rows.next()? {
            let model: String = r.get(4)?;
            let tokens = Tokens {
                input: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
                cache_read: r.get::<_, Option<i64>>(6)?.unwrap_or(0),
                cache_write: r.get::<_, Option<i64>>(7)?.unwrap_or(0),
                output: r.get::<_, Option<i64>>(8)?.unwrap_or(0),
                reasoning: r.get::<_, Option<i64>>(9)?.unwrap_or(0),
            };
            let cost: Option<f64> = r.get(10)?;
            let computed: Option<f64> = r.get(11)?;
            let was_computed: bool = r.get(12)?;
            let new_computed = pricing.cost(&model, tokens);
            let reported = cost.filter(|_| !was_computed);
            let (new_cost, now_computed) = crate::pricing::counted_cost(reported, new_computed);
            if new_computed == computed && new_cost == cost {
                continue;
            }
            update.execute(params![
                r.get::<_, i64>(0)?,
                new_computed,
                new_cost,
                now_computed
            ])?;
            receipt.requests += 1;
            let d_cost = new_cost.unwrap_or(0.0) - cost.unwrap_or(0.0);
            let d_unpriced = i64::from(new_cost.is_none()) - i64::from(cost.is_none());
            match d_unpriced {
                -1 => receipt.newly_priced += 1,
                1 => receipt.unpriced += 1,
                _ => {}
            }
            receipt.cost_delta_usd += d_cost;
            let key = (hour_of(r.get(3)?), r.get::<_, i64>(1)?, model);
            let d = hourly.entry(key).or_default();
            d.cost += d_cost;
            d.computed += new_computed.unwrap_or(0.0) - computed.unwrap_or(0.0);
            d.unpriced += d_unpriced;
            if let Some(s) = r.get::<_, Option<i64>>(2)? {
                *sessions.entry(s).or_default() += d_cost;
            }
        }
    }
    {
        let mut stmt = tx.prepare(
            "UPDATE api_hourly SET cost_usd = cost_usd + ?4,
                computed_cost_usd = computed_cost_usd + ?5, unpriced = unpriced + ?6
             WHERE hour = ?1 AND context_id = ?2 AND model = ?3",
        )?;
        for ((hour, context, model), d) in &hourly {
            stmt.execute(params![
                hour, context, model, d.cost, d.computed, d.unpriced
            ])?;
        }
        let mut stmt = tx.prepare("UPDATE sessions SET cost_usd = cost_usd + ?2 WHERE id = ?1")?;
        for (id, d) in &sessions {
            stmt.execute(params![id, d])?;
        }
        super::counted::refresh(&tx, &hourly.keys().map(|k| k.0).collect())?;
    }
    tx.commit()?;
    Ok(receipt)
}

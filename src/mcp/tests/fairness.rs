//! Query capacity is shared fairly: one token's calls in flight are bounded,
//! so another token's calls are not refused while the first is busy.

use std::time::Duration;

use futures::future::join_all;

use super::*;
use crate::mcp::registry::Registry;
use crate::query::questions::{After, Answer, Questions};
use crate::query::time::TimeRange;
use crate::query::visible::Visible;
use crate::query::{events, filter::Filter, timeseries};

/// A backend whose every answer takes the given time, then says "not found".
struct Slow(Duration);

impl Slow {
    fn answer<T: Send + 'static>(&self) -> Answer<T> {
        let d = self.0;
        Box::pin(async move {
            tokio::time::sleep(d).await;
            Err(QueryError::NotFound("slow backend".into()))
        })
    }
}

impl Questions for Slow {
    fn data_extent(&self, _: Visible) -> Answer<Option<(i64, i64)>> {
        self.answer()
    }
    fn cost_by_developer(
        &self,
        _: TimeRange,
        _: Filter,
    ) -> Answer<crate::query::cost::CostByDeveloper> {
        self.answer()
    }
    fn model_breakdown(
        &self,
        _: TimeRange,
        _: Filter,
    ) -> Answer<(
        Vec<crate::query::models::ModelUsage>,
        crate::query::usage::Sources,
    )> {
        self.answer()
    }
    fn tool_latency(
        &self,
        _: TimeRange,
        _: Filter,
        _: Option<String>,
    ) -> Answer<(
        Vec<crate::query::latency::ToolLatency>,
        Vec<crate::query::latency::ToolLatency>,
    )> {
        self.answer()
    }
    fn top_edited_files(
        &self,
        _: TimeRange,
        _: Filter,
        _: Option<String>,
        _: usize,
    ) -> Answer<crate::query::files::TopEditedFiles> {
        self.answer()
    }
    fn search_events(
        &self,
        _: TimeRange,
        _: Filter,
        _: events::EventFilter,
        _: After,
        _: usize,
        _: bool,
    ) -> Answer<crate::query::page::Page<events::EventHit>> {
        self.answer()
    }
    fn list_sessions(
        &self,
        _: TimeRange,
        _: Filter,
        _: String,
        _: u64,
        _: usize,
    ) -> Answer<(Vec<crate::query::sessions::SessionSummary>, bool)> {
        self.answer()
    }
    fn session_timeline(
        &self,
        _: TimeRange,
        _: Visible,
        _: String,
        _: u64,
        _: usize,
        _: bool,
    ) -> Answer<crate::query::timeline::Timeline> {
        self.answer()
    }
    fn usage_over_time(
        &self,
        _: TimeRange,
        _: Filter,
        _: timeseries::Bucket,
        _: timeseries::Split,
    ) -> Answer<(Vec<timeseries::SeriesPoint>, crate::query::usage::Sources)> {
        self.answer()
    }
    fn describe_data(
        &self,
        _: TimeRange,
        _: Filter,
    ) -> Answer<crate::query::describe::DataDescription> {
        self.answer()
    }
}

#[tokio::test]
async fn one_busy_token_does_not_refuse_another() {
    let limits = QueryLimits {
        per_token_calls: 2,
        per_token_wait_ms: 0,
        ..QueryLimits::default()
    };
    let registry = Registry::new(ToolContext::new(
        Arc::new(Slow(Duration::from_millis(300))),
        limits,
    ));
    let heavy = principal(Scope::Read, &[]);
    let light = Principal {
        token_id: 8,
        ..principal(Scope::Read, &[])
    };
    let heavy_calls = join_all((0..5).map(|_| registry.call(&heavy, "describe_data", json!({}))));
    let light_call = registry.call(&light, "describe_data", json!({}));
    let (heavy, light) = futures::join!(heavy_calls, light_call);
    let busy = |r: &ToolReply| r.outcome == Outcome::RateLimited;
    // Two of the first token's calls ran; three were refused with a retry hint.
    assert_eq!(heavy.iter().filter(|r| busy(r)).count(), 3);
    let refused = heavy.iter().find(|r| busy(r)).unwrap();
    assert!(refused.text.contains("retry"), "{}", refused.text);
    assert!(
        heavy
            .iter()
            .filter(|r| !busy(r))
            .all(|r| r.text.contains("slow backend"))
    );
    // The other token's call ran alongside them.
    assert!(!busy(&light), "{}", light.text);
    assert!(light.text.contains("slow backend"));
    // Once the first token's calls are done its slots are free again.
    let again = registry
        .call(&heavy_principal(), "describe_data", json!({}))
        .await;
    assert!(!busy(&again), "{}", again.text);
}

fn heavy_principal() -> Principal {
    principal(Scope::Read, &[])
}

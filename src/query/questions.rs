//! The backend boundary: one method per question, typed answers.
//!
//! Tools, paging, visibility, replies and audit sit above this trait and
//! know nothing of the engine below it. The embedded SQLite store answers
//! through [`super::runner::Sqlite`]; another engine implements the same
//! methods with its own SQL and gives the same answers (the conformance
//! tests in the crate's `conformance` module state what "the same" means).
//!
//! Every method takes the caller's [`Filter`] (and so its
//! [`super::visible::Visible`]) or, for a timeline, the `Visible` itself:
//! there is no way to ask a question without saying whose data it may read.

use futures::future::BoxFuture;

use super::QueryError;
use super::cost::CostByDeveloper;
use super::describe::DataDescription;
use super::events::{EventFilter, EventHit};
use super::files::TopEditedFiles;
use super::filter::Filter;
use super::latency::ToolLatency;
use super::models::ModelUsage;
use super::page::Page;
use super::sessions::SessionSummary;
use super::time::TimeRange;
use super::timeline::Timeline;
use super::timeseries::{Bucket, SeriesPoint, Split};
use super::usage::Sources;
use super::visible::Visible;

/// An answer still being computed.
pub type Answer<T> = BoxFuture<'static, Result<T, QueryError>>;

/// Where `search_events` resumes: after the event at `(time_ns, id)`.
pub type After = Option<(i64, i64)>;

/// The questions every storage engine answers.
pub trait Questions: Send + Sync + 'static {
    /// First and last record time the caller may see.
    fn data_extent(&self, visible: Visible) -> Answer<Option<(i64, i64)>>;

    /// Cost, tokens, requests, sessions, prompts and active days per developer.
    fn cost_by_developer(&self, range: TimeRange, f: Filter) -> Answer<CostByDeveloper>;

    /// Usage, cost share and exact API latency per model.
    fn model_breakdown(&self, range: TimeRange, f: Filter) -> Answer<(Vec<ModelUsage>, Sources)>;

    /// Exact latency per tool, and per MCP server/tool.
    fn tool_latency(
        &self,
        range: TimeRange,
        f: Filter,
        tool: Option<String>,
    ) -> Answer<(Vec<ToolLatency>, Vec<ToolLatency>)>;

    /// Edits, decisions and acceptance per file: the `top` most edited
    /// files, and the totals of all.
    fn top_edited_files(
        &self,
        range: TimeRange,
        f: Filter,
        tool: Option<String>,
        top: usize,
    ) -> Answer<TopEditedFiles>;

    /// Raw events, newest first, one page after `after`.
    fn search_events(
        &self,
        range: TimeRange,
        f: Filter,
        events: EventFilter,
        after: After,
        limit: usize,
        content: bool,
    ) -> Answer<Page<EventHit>>;

    /// Sessions overlapping the range, sorted by `sort`; whether more follow.
    fn list_sessions(
        &self,
        range: TimeRange,
        f: Filter,
        sort: String,
        offset: u64,
        limit: usize,
    ) -> Answer<(Vec<SessionSummary>, bool)>;

    /// One session turn by turn (one page of its events).
    fn session_timeline(
        &self,
        range: TimeRange,
        visible: Visible,
        session_id: String,
        offset: u64,
        limit: usize,
        content: bool,
    ) -> Answer<Timeline>;

    /// A time series of usage, optionally split.
    fn usage_over_time(
        &self,
        range: TimeRange,
        f: Filter,
        bucket: Bucket,
        split: Split,
    ) -> Answer<(Vec<SeriesPoint>, Sources)>;

    /// What the store holds for the caller.
    fn describe_data(&self, range: TimeRange, f: Filter) -> Answer<DataDescription>;
}

//! `usage_over_time`: cost, tokens, requests and active developers per hour,
//! day or week (in the caller's time zone), optionally split by model or
//! developer. Built from hourly usage (rollups plus raw edges, see
//! [`super::usage`]); buckets are assembled in Rust with `jiff`, so DST days
//! have their real length.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{Timestamp, ToSpan, Zoned};

use super::attribution::{self, Attribution};
use super::filter::Filter;
use super::time::TimeRange;
use super::usage::{self, Dim};
use super::{HOUR_NS, QueryError};

/// Most buckets one answer may span.
pub const MAX_BUCKETS: usize = 20_000;

/// Bucket size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// One hour.
    Hour,
    /// One calendar day in the zone.
    Day,
    /// One calendar week (Monday start) in the zone.
    Week,
    /// The whole range as one bucket.
    Total,
}

impl Bucket {
    /// Parses `hour`, `day`, `week`.
    pub fn parse(s: &str) -> Result<Bucket, QueryError> {
        match s {
            "hour" => Ok(Bucket::Hour),
            "day" => Ok(Bucket::Day),
            "week" => Ok(Bucket::Week),
            "total" => Ok(Bucket::Total),
            _ => Err(QueryError::Invalid(format!(
                "bucket {s:?} is not supported; use hour, day, week or total"
            ))),
        }
    }
}

/// What to split each bucket by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// No split.
    None,
    /// By model.
    Model,
    /// By developer.
    Developer,
    /// By team (`team.id`, else `team` resource attribute).
    Team,
    /// By repository.
    Repository,
    /// By branch.
    Branch,
    /// By MCP server.
    McpServer,
    /// By MCP tool.
    McpTool,
    /// By an attribution dimension (subagent, skill, plugin...).
    Attribution(&'static Attribution),
    /// By coding agent.
    Agent,
}

impl Split {
    /// Parses `model`, `developer` (or nothing).
    pub fn parse(s: Option<&str>) -> Result<Split, QueryError> {
        match s {
            None | Some("none") => Ok(Split::None),
            Some("model") => Ok(Split::Model),
            Some("developer") => Ok(Split::Developer),
            Some("team") => Ok(Split::Team),
            Some("repository") => Ok(Split::Repository),
            Some("branch") => Ok(Split::Branch),
            Some("mcp_server") => Ok(Split::McpServer),
            Some("mcp_tool") => Ok(Split::McpTool),
            Some("agent") => Ok(Split::Agent),
            Some(o) => match attribution::find(o) {
                Some(a) => Ok(Split::Attribution(a)),
                None => Err(QueryError::Invalid(format!(
                    "split_by {o:?} is not supported; use model, developer, team, repository, branch, mcp_server, mcp_tool, agent, {}",
                    attribution::names()
                ))),
            },
        }
    }
}

/// One bucket (and split key).
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct SeriesPoint {
    /// Bucket start in the requested zone (RFC 3339).
    pub bucket_start: String,
    /// The split value (model, developer, team...) when split; absent
    /// otherwise; null when the records do not carry it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Cost in USD: reported where the agent reports it, else computed.
    pub cost_usd: f64,
    /// The part of `cost_usd` computed from the price table (agents that
    /// report no cost).
    #[serde(default, skip_serializing_if = "super::is_zero_money")]
    pub computed_part_usd: f64,
    /// Input tokens.
    pub input_tokens: i64,
    /// Output tokens.
    pub output_tokens: i64,
    /// Cache read tokens.
    pub cache_read_tokens: i64,
    /// Cache creation tokens.
    pub cache_creation_tokens: i64,
    /// API requests.
    pub requests: i64,
    /// API errors.
    pub errors: i64,
    /// Requests counted without a cost (no reported cost, no price).
    #[serde(default, skip_serializing_if = "super::is_zero_count")]
    pub unpriced_requests: i64,
    /// Developers with usage in the bucket.
    pub active_developers: i64,
}

fn ns(z: &Zoned) -> i64 {
    z.timestamp().as_nanosecond() as i64
}

/// Start of the bucket holding `t` (ns).
pub fn bucket_start(t: i64, bucket: Bucket, range: &TimeRange) -> Result<i64, QueryError> {
    let err = |e: jiff::Error| QueryError::Invalid(format!("cannot place a time in a bucket: {e}"));
    let z = Timestamp::from_nanosecond(t as i128)
        .map_err(err)?
        .to_zoned(range.tz.clone());
    Ok(match bucket {
        Bucket::Total => range.since_ns,
        Bucket::Hour => t.div_euclid(HOUR_NS) * HOUR_NS,
        Bucket::Day => ns(&z.start_of_day().map_err(err)?),
        Bucket::Week => {
            let back = z.weekday().to_monday_zero_offset() as i64;
            ns(&z
                .start_of_day()
                .and_then(|d| d.checked_sub(back.days()))
                .and_then(|d| d.start_of_day())
                .map_err(err)?)
        }
    })
}

fn next_bucket(start: i64, bucket: Bucket, range: &TimeRange) -> Result<i64, QueryError> {
    let err = |e: jiff::Error| QueryError::Invalid(format!("cannot step buckets: {e}"));
    let z = Timestamp::from_nanosecond(start as i128)
        .map_err(err)?
        .to_zoned(range.tz.clone());
    Ok(match bucket {
        Bucket::Total => range.until_ns,
        Bucket::Hour => start + HOUR_NS,
        Bucket::Day => ns(&z
            .checked_add(1.day())
            .and_then(|d| d.start_of_day())
            .map_err(err)?),
        Bucket::Week => ns(&z
            .checked_add(7.days())
            .and_then(|d| d.start_of_day())
            .map_err(err)?),
    })
}

#[derive(Default)]
struct Acc {
    p: SeriesPoint,
    devs: BTreeSet<String>,
}

/// The series, oldest bucket first; with no split every bucket in the range
/// is present (zeros included). Also the sources used.
pub fn usage_over_time(
    conn: &rusqlite::Connection,
    range: &TimeRange,
    f: &Filter,
    bucket: Bucket,
    split: Split,
) -> Result<(Vec<SeriesPoint>, usage::Sources), QueryError> {
    let starts = bucket_starts(range, bucket)?;
    let groups = usage::grouped(conn, range, f, &dims(split))?;
    fold(range, bucket, split, &starts, groups)
}

/// The usage dimensions a series with `split` is folded from: the hour,
/// the developer, and the split's own.
pub fn dims(split: Split) -> Vec<Dim> {
    let mut dims = vec![Dim::Hour, Dim::Developer];
    match split {
        Split::None | Split::Developer => {}
        Split::Model => dims.push(Dim::Model),
        Split::Team => dims.push(Dim::Team),
        Split::Repository => dims.push(Dim::Repository),
        Split::Branch => dims.push(Dim::Branch),
        Split::McpServer => dims.push(Dim::McpServer),
        Split::McpTool => dims.push(Dim::McpTool),
        Split::Attribution(a) => dims.push(Dim::Attribution(a)),
        Split::Agent => dims.push(Dim::Agent),
    }
    dims
}

/// The start of every bucket of `range`, refused when there are more than
/// the answer may hold (checked before any usage is read).
pub fn bucket_starts(range: &TimeRange, bucket: Bucket) -> Result<Vec<i64>, QueryError> {
    let mut starts = Vec::new();
    let mut b = bucket_start(range.since_ns, bucket, range)?;
    while b < range.until_ns {
        starts.push(b);
        if starts.len() > MAX_BUCKETS {
            return Err(QueryError::Invalid(format!(
                "the range holds more than {MAX_BUCKETS} {bucket:?} buckets; use a larger bucket or a shorter range"
            )));
        }
        b = next_bucket(b, bucket, range)?;
    }
    Ok(starts)
}

/// The series from the buckets' `starts` and the usage groups by
/// [`dims`]`(split)`, whichever engine counted them.
pub fn fold(
    range: &TimeRange,
    bucket: Bucket,
    split: Split,
    starts: &[i64],
    groups: Vec<usage::UsageGroup>,
) -> Result<(Vec<SeriesPoint>, usage::Sources), QueryError> {
    let mut acc: BTreeMap<(i64, Option<String>), Acc> = BTreeMap::new();
    if split == Split::None {
        for s in starts {
            acc.insert((*s, None), Acc::default());
        }
    }
    let mut sources = usage::Sources::default();
    for g in groups {
        let Some(hour) = g.keys.first().and_then(|v| v.as_i64()) else {
            continue;
        };
        let dev = g.keys.get(1).and_then(|v| v.as_str()).map(str::to_string);
        let key = match split {
            Split::None => None,
            Split::Developer => dev.clone(),
            _ => g.keys.get(2).and_then(|v| v.as_str()).map(str::to_string),
        };
        let start =
            bucket_start(hour * HOUR_NS, bucket, range)?.max(starts.first().copied().unwrap_or(0));
        let a = acc.entry((start, key)).or_default();
        let u = &g.usage;
        sources.add(u);
        a.p.cost_usd += u.cost_usd;
        a.p.computed_part_usd += u.cost_usd - u.reported_cost_usd;
        a.p.input_tokens += u.input_tokens;
        a.p.output_tokens += u.output_tokens;
        a.p.cache_read_tokens += u.cache_read_tokens;
        a.p.cache_creation_tokens += u.cache_creation_tokens;
        a.p.requests += u.requests;
        a.p.errors += u.errors;
        a.p.unpriced_requests += u.unpriced_requests;
        if let Some(d) = dev {
            a.devs.insert(d);
        }
    }
    let points = acc
        .into_iter()
        .map(|((start, key), a)| SeriesPoint {
            bucket_start: range.show(start),
            key,
            active_developers: a.devs.len() as i64,
            ..a.p
        })
        .collect();
    Ok((points, sources))
}

//! Row caps and opaque cursors.
//!
//! A cursor is base64 of a small JSON position bound to the tool and to a
//! hash of the other arguments, so it cannot be replayed against a different
//! question. Aggregating tools page by offset over a fully ordered result;
//! `search_events` pages by `(time, id)` so new events do not shift pages.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::QueryError;
use crate::config::QueryLimits;

/// Where the next page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Position {
    /// Skip this many rows of the ordered result.
    Offset(u64),
    /// Continue strictly after (time_ns, id) in newest-first order.
    After(i64, i64),
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CursorBody {
    t: String,
    h: String,
    p: Position,
}

/// Encodes a cursor for `tool` with arguments hash `args_hash`.
pub fn encode(tool: &str, args_hash: &str, pos: Position) -> String {
    let body = CursorBody {
        t: tool.to_string(),
        h: args_hash.to_string(),
        p: pos,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&body).unwrap_or_default())
}

/// Decodes a cursor, checking it belongs to `tool` and these arguments.
pub fn decode(cursor: &str, tool: &str, args_hash: &str) -> Result<Position, QueryError> {
    let bad = || {
        QueryError::Invalid(
            "cursor is not valid: pass next_cursor from the previous answer unchanged, with the same other arguments"
                .to_string(),
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let body: CursorBody = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if body.t != tool || body.h != args_hash {
        return Err(bad());
    }
    Ok(body.p)
}

/// The row limit for a call: default when absent, clamped to the ceiling
/// (with a note), an error for zero or negative values.
pub fn row_limit(
    requested: Option<i64>,
    limits: &QueryLimits,
) -> Result<(usize, Option<String>), QueryError> {
    let max = limits.max_rows.max(1);
    match requested {
        None => Ok((limits.default_rows.clamp(1, max), None)),
        Some(n) if n <= 0 => Err(QueryError::Invalid(format!(
            "limit must be a positive number of rows (1 to {max}); got {n}"
        ))),
        Some(n) if n as u64 > max as u64 => Ok((
            max,
            Some(format!(
                "limit {n} is above the ceiling of {max} rows and was lowered to {max}"
            )),
        )),
        Some(n) => Ok((n as usize, None)),
    }
}

/// One page of rows and where the following page starts (`None` = last).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Page<T> {
    /// The rows of this page.
    pub rows: Vec<T>,
    /// Position of each row's successor (lets the reply-size cap cut anywhere).
    pub positions: Vec<Position>,
    /// Whether more rows follow the page.
    pub more: bool,
}

impl<T> Page<T> {
    /// Cuts an in-memory ordered list at `offset`/`limit`.
    pub fn slice(all: Vec<T>, offset: u64, limit: usize) -> Page<T> {
        let total = all.len();
        Page::slice_of(all, total, offset, limit)
    }

    /// Cuts the first rows of an ordered list of `total` rows (`first` holds
    /// at least the rows up to `offset + limit`, or all of them).
    pub fn slice_of(first: Vec<T>, total: usize, offset: u64, limit: usize) -> Page<T> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(first.len());
        let rows: Vec<T> = first.into_iter().skip(start).take(limit).collect();
        let positions = (0..rows.len())
            .map(|i| Position::Offset((start + i + 1) as u64))
            .collect();
        let more = start + rows.len() < total;
        Page {
            rows,
            positions,
            more,
        }
    }
}

/// Offset from an optional position (keyset positions are refused).
pub fn offset_of(pos: Option<Position>) -> Result<u64, QueryError> {
    match pos {
        None => Ok(0),
        Some(Position::Offset(o)) => Ok(o),
        Some(Position::After(..)) => Err(QueryError::Invalid(
            "cursor is not valid for this tool".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_binding() {
        let c = encode("search_events", "abc", Position::After(5, 7));
        assert_eq!(
            decode(&c, "search_events", "abc").unwrap(),
            Position::After(5, 7)
        );
        assert!(decode(&c, "search_events", "other").is_err());
        assert!(decode(&c, "list_sessions", "abc").is_err());
        assert!(decode("'; DROP TABLE events; --", "search_events", "abc").is_err());
    }

    #[test]
    fn limits_clamp_and_refuse() {
        let l = QueryLimits::default();
        assert_eq!(row_limit(None, &l).unwrap().0, l.default_rows);
        let (n, note) = row_limit(Some(1_000_000), &l).unwrap();
        assert_eq!(n, l.max_rows);
        assert!(note.unwrap().contains("lowered"));
        assert!(row_limit(Some(0), &l).is_err());
        assert!(row_limit(Some(-3), &l).is_err());
    }
}

//! JSON scalars and containers under the protobuf JSON rules: objects with
//! null-as-unset, repeated fields, 64-bit integers as strings or numbers,
//! doubles including "NaN"/"Infinity", enums by number or name, base64
//! bytes and hex ids.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::{JsonError, R};

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn object(v: &Value) -> R<&Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| JsonError::new(format!("expected an object, got {}", kind(v))))
}

/// Visits the non-null fields of an object.
pub(super) fn fields(v: &Value, mut each: impl FnMut(&str, &Value) -> R<()>) -> R<()> {
    for (k, v) in object(v)? {
        if !v.is_null() {
            each(k, v)?;
        }
    }
    Ok(())
}

/// Converts a repeated field, attaching the index and field name to errors.
pub(super) fn list<T>(v: &Value, name: &'static str, item: impl Fn(&Value) -> R<T>) -> R<Vec<T>> {
    let arr = v
        .as_array()
        .ok_or_else(|| JsonError::new(format!("expected an array, got {}", kind(v))).field(name))?;
    let mut out = Vec::with_capacity(arr.len());
    for (i, x) in arr.iter().enumerate() {
        if x.is_null() {
            return Err(JsonError::new("null element in a repeated field")
                .index(i)
                .field(name));
        }
        out.push(item(x).map_err(|e| e.index(i).field(name))?);
    }
    Ok(out)
}

/// Attaches a field name to an error.
pub(super) fn at<T>(name: &'static str, r: R<T>) -> R<T> {
    r.map_err(|e| e.field(name))
}

pub(super) fn string(v: &Value) -> R<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| JsonError::new(format!("expected a string, got {}", kind(v))))
}

pub(super) fn boolean(v: &Value) -> R<bool> {
    v.as_bool()
        .ok_or_else(|| JsonError::new(format!("expected a boolean, got {}", kind(v))))
}

pub(super) fn u64_of(v: &Value) -> R<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1.8e19)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
    .ok_or_else(|| JsonError::new(format!("expected an unsigned integer, got {v}")))
}

pub(super) fn i64_of(v: &Value) -> R<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .ok_or_else(|| JsonError::new(format!("expected an integer, got {v}")))
}

pub(super) fn u32_of(v: &Value) -> R<u32> {
    u32::try_from(u64_of(v)?).map_err(|_| JsonError::new(format!("{v} does not fit 32 bits")))
}

pub(super) fn i32_of(v: &Value) -> R<i32> {
    i32::try_from(i64_of(v)?).map_err(|_| JsonError::new(format!("{v} does not fit 32 bits")))
}

pub(super) fn f64_of(v: &Value) -> R<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            other => other.trim().parse::<f64>().ok(),
        },
        _ => None,
    }
    .ok_or_else(|| JsonError::new(format!("expected a number, got {v}")))
}

/// An enum as its number or its protobuf name.
pub(super) fn enumeration(v: &Value, by_name: fn(&str) -> Option<i32>) -> R<i32> {
    match v {
        Value::String(s) => match by_name(s) {
            Some(n) => Ok(n),
            None => i32_of(v).map_err(|_| JsonError::new(format!("unknown enum value {s:?}"))),
        },
        _ => i32_of(v),
    }
}

pub(super) fn base64_bytes(v: &Value) -> R<Vec<u8>> {
    let s = v
        .as_str()
        .ok_or_else(|| JsonError::new(format!("expected a base64 string, got {}", kind(v))))?;
    let engines = [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    for engine in engines {
        if let Ok(bytes) = engine.decode(s) {
            return Ok(bytes);
        }
    }
    Err(JsonError::new("invalid base64"))
}

/// A trace or span id: hex, empty = unset. Hex of the wrong length decodes
/// to bytes of a length other than `expected`, so that the record (not the
/// request) is rejected later.
pub(super) fn id(v: &Value, expected: usize) -> R<Vec<u8>> {
    let s = v
        .as_str()
        .ok_or_else(|| JsonError::new(format!("expected a hex string, got {}", kind(v))))?;
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(JsonError::new(format!("{s:?} is not a hex id")));
    }
    let even = s.get(..s.len() & !1).unwrap_or_default();
    let mut bytes = hex::decode(even).map_err(|e| JsonError::new(format!("bad hex id: {e}")))?;
    if s.len() % 2 == 1 && bytes.len() == expected {
        // An odd digit count is never a valid id; keep the length wrong.
        bytes.push(0);
    }
    Ok(bytes)
}

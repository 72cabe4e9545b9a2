//! OTLP attribute values → JSON, lenient typed readings (Claude Code sends
//! some numbers and booleans as strings), and a canonical hash of values.

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value as Any};
use serde_json::Value;

use crate::rows::Attrs;

/// The natural JSON form of an attribute value: string → string, int → i64,
/// double → f64 (non-finite as `"NaN"`/`"Infinity"`/`"-Infinity"`), bool,
/// array → array, kvlist → object, bytes → `{"bytes_b64": "..."}`.
pub(super) fn to_json(v: Option<&AnyValue>) -> Value {
    let Some(Some(v)) = v.map(|v| v.value.as_ref()) else {
        return Value::Null;
    };
    match v {
        Any::StringValue(s) => Value::String(s.clone()),
        Any::BoolValue(b) => Value::Bool(*b),
        Any::IntValue(i) => Value::from(*i),
        Any::DoubleValue(d) => double(*d),
        Any::ArrayValue(a) => Value::Array(a.values.iter().map(|x| to_json(Some(x))).collect()),
        Any::KvlistValue(kv) => Value::Object(to_attrs(&kv.values)),
        Any::BytesValue(b) => {
            use base64::Engine as _;
            let mut m = serde_json::Map::new();
            m.insert(
                "bytes_b64".into(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
            );
            Value::Object(m)
        }
        Any::StringValueStrindex(i) => {
            let mut m = serde_json::Map::new();
            m.insert("string_index".into(), Value::from(*i));
            Value::Object(m)
        }
    }
}

/// A double as JSON; JSON has no NaN or infinities, so those become strings.
pub(super) fn double(d: f64) -> Value {
    match serde_json::Number::from_f64(d) {
        Some(n) => Value::Number(n),
        None if d.is_nan() => Value::String("NaN".into()),
        None if d > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// A list of key-values as a JSON object (a repeated key keeps its last value).
pub(super) fn to_attrs(kvs: &[KeyValue]) -> Attrs {
    kvs.iter()
        .map(|kv| (kv.key.clone(), to_json(kv.value.as_ref())))
        .collect()
}

fn inner(v: Option<&AnyValue>) -> Option<&Any> {
    v.and_then(|v| v.value.as_ref())
}

/// A string value.
pub(super) fn str_of(v: Option<&AnyValue>) -> Option<&str> {
    match inner(v)? {
        Any::StringValue(s) => Some(s),
        _ => None,
    }
}

/// A string, or the text of a number or boolean (for identity-like fields).
pub(super) fn text_of(v: Option<&AnyValue>) -> Option<String> {
    match inner(v)? {
        Any::StringValue(s) => Some(s.clone()),
        Any::IntValue(i) => Some(i.to_string()),
        Any::BoolValue(b) => Some(b.to_string()),
        Any::DoubleValue(d) => Some(d.to_string()),
        _ => None,
    }
}

/// An integer from an int, an integral double, or a string holding either
/// (`123`, `123.0`, `"123"` and `"123.0"` all give 123).
pub(super) fn int_of(v: Option<&AnyValue>) -> Option<i64> {
    fn integral(d: f64) -> Option<i64> {
        (d.is_finite() && d.fract() == 0.0 && d.abs() < 9.2e18).then_some(d as i64)
    }
    match inner(v)? {
        Any::IntValue(i) => Some(*i),
        Any::DoubleValue(d) => integral(*d),
        Any::StringValue(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(integral))
        }
        _ => None,
    }
}

/// A finite number from a double, an int or a numeric string.
pub(super) fn float_of(v: Option<&AnyValue>) -> Option<f64> {
    let f = match inner(v)? {
        Any::DoubleValue(d) => *d,
        Any::IntValue(i) => *i as f64,
        Any::StringValue(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    f.is_finite().then_some(f)
}

/// A boolean from a bool or the strings `"true"`/`"false"`.
pub(super) fn bool_of(v: Option<&AnyValue>) -> Option<bool> {
    match inner(v)? {
        Any::BoolValue(b) => Some(*b),
        Any::StringValue(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Any::StringValue(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// Feeds a canonical, unambiguous encoding of a value to a hasher (type tag,
/// then length-prefixed content), without allocating.
pub(super) fn hash_value(h: &mut blake3::Hasher, v: Option<&AnyValue>) {
    match inner(v) {
        None => {
            h.update(&[0]);
        }
        Some(Any::StringValue(s)) => {
            h.update(&[1]);
            hash_str(h, s);
        }
        Some(Any::BoolValue(b)) => {
            h.update(&[2, u8::from(*b)]);
        }
        Some(Any::IntValue(i)) => {
            h.update(&[3]);
            h.update(&i.to_le_bytes());
        }
        Some(Any::DoubleValue(d)) => {
            h.update(&[4]);
            h.update(&d.to_bits().to_le_bytes());
        }
        Some(Any::ArrayValue(a)) => {
            h.update(&[5]);
            h.update(&(a.values.len() as u64).to_le_bytes());
            for x in &a.values {
                hash_value(h, Some(x));
            }
        }
        Some(Any::KvlistValue(kv)) => {
            h.update(&[6]);
            h.update(&(kv.values.len() as u64).to_le_bytes());
            for x in &kv.values {
                hash_str(h, &x.key);
                hash_value(h, x.value.as_ref());
            }
        }
        Some(Any::BytesValue(b)) => {
            h.update(&[7]);
            h.update(&(b.len() as u64).to_le_bytes());
            h.update(b);
        }
        Some(Any::StringValueStrindex(i)) => {
            h.update(&[8]);
            h.update(&i.to_le_bytes());
        }
    }
}

/// A length-prefixed string.
pub(super) fn hash_str(h: &mut blake3::Hasher, s: &str) {
    h.update(&(s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> AnyValue {
        AnyValue {
            value: Some(Any::StringValue(x.into())),
        }
    }
    fn i(x: i64) -> AnyValue {
        AnyValue {
            value: Some(Any::IntValue(x)),
        }
    }
    fn d(x: f64) -> AnyValue {
        AnyValue {
            value: Some(Any::DoubleValue(x)),
        }
    }

    #[test]
    fn lenient_numbers() {
        for v in [s("123"), i(123), d(123.0), s("123.0"), s(" 123 ")] {
            assert_eq!(int_of(Some(&v)), Some(123), "{v:?}");
        }
        assert_eq!(int_of(Some(&d(1.5))), None);
        assert_eq!(int_of(Some(&s("abc"))), None);
        assert_eq!(float_of(Some(&s("0.0007365"))), Some(0.0007365));
        assert_eq!(float_of(Some(&i(2))), Some(2.0));
        assert_eq!(float_of(Some(&s("NaN"))), None);
        assert_eq!(bool_of(Some(&s("true"))), Some(true));
        assert_eq!(
            bool_of(Some(&AnyValue {
                value: Some(Any::BoolValue(false))
            })),
            Some(false)
        );
        assert_eq!(bool_of(Some(&s("yes"))), None);
    }

    #[test]
    fn json_forms() {
        assert_eq!(to_json(Some(&d(f64::NAN))), Value::String("NaN".into()));
        assert_eq!(to_json(Some(&i(-3))), Value::from(-3));
        let b = AnyValue {
            value: Some(Any::BytesValue(b"hi".to_vec())),
        };
        assert_eq!(to_json(Some(&b)), serde_json::json!({"bytes_b64": "aGk="}));
        assert_eq!(to_json(None), Value::Null);
    }
}

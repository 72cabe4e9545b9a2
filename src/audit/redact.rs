//! Redaction of tool arguments before they enter the audit log: content-like
//! values are replaced, long strings cut, deep or large values capped, so the
//! log never becomes a second copy of prompts or file contents (or secrets).

use serde_json::{Map, Value};

use crate::auth::redact_secrets;

/// Keys whose values are replaced by `"[redacted]"` (compared
/// case-insensitively) besides what [`crate::content`] calls content: the
/// tools' own arguments that hold searched text or cursors, text of edits,
/// and credentials.
const REDACTED_KEYS: &[&str] = &[
    "error_contains",
    "cursor",
    "text",
    "old_string",
    "new_string",
    "token",
    "access_token",
    "authorization",
    "password",
    "secret",
];

/// Longest string kept, in bytes, marker included.
const MAX_STRING: usize = 200;
/// Deepest nesting kept.
const MAX_DEPTH: usize = 6;
/// Most array items / object members kept.
const MAX_ITEMS: usize = 32;
/// Ceiling on the serialized size of the whole value.
const MAX_TOTAL: usize = 2048;

const REDACTED: &str = "[redacted]";

/// Returns a copy of `arguments` safe to store in the audit log: values of
/// content-like keys (`prompt`, `content`, `text`, `old_string`,
/// `new_string`, `body`, `error_contains`, `cursor`, and credential-like
/// keys) become `"[redacted]"`, anything that looks like a tokentally secret
/// becomes `tt_[redacted]` wherever it appears,
/// strings over 200 bytes are cut with a `…[+N bytes]` marker, nesting past 6
/// levels and collections past 32 items are elided, and if the result still
/// serializes to more than 2 KB only the leading members that fit are kept
/// (`"_truncated": <members left out>`).
/// Applying it twice gives the same value.
pub fn redact_arguments(arguments: &Value) -> Value {
    let redacted = redact(arguments, 0);
    if redacted.to_string().len() <= MAX_TOTAL {
        return redacted;
    }
    // Keep leading members while they fit, and say how many were left out.
    let budget = MAX_TOTAL - 64;
    let mut used = 2;
    match redacted {
        Value::Object(map) => {
            let total = map.len();
            let mut out = Map::new();
            for (key, v) in map {
                let size = key.len() + v.to_string().len() + 4;
                if used + size > budget {
                    break;
                }
                used += size;
                out.insert(key, v);
            }
            let elided = total - out.len();
            out.insert("_truncated".into(), Value::from(elided));
            Value::Object(out)
        }
        Value::Array(items) => {
            let total = items.len();
            let mut out = Vec::new();
            for v in items {
                let size = v.to_string().len() + 1;
                if used + size > budget {
                    break;
                }
                used += size;
                out.push(v);
            }
            out.push(Value::String(format!("[+{} items]", total - out.len())));
            Value::Array(out)
        }
        _ => Value::String("[too large]".into()),
    }
}

fn redact(value: &Value, depth: usize) -> Value {
    match value {
        Value::String(s) => Value::String(cut(&redact_secrets(s))),
        Value::Array(items) if depth >= MAX_DEPTH => {
            Value::String(format!("[{} items]", items.len()))
        }
        Value::Object(map) if depth >= MAX_DEPTH => Value::String(format!("[{} keys]", map.len())),
        Value::Array(items) => {
            let mut out: Vec<Value> = items
                .iter()
                .take(MAX_ITEMS)
                .map(|v| redact(v, depth + 1))
                .collect();
            if items.len() > MAX_ITEMS {
                out.push(Value::String(format!(
                    "[+{} items]",
                    items.len() - MAX_ITEMS
                )));
            }
            Value::Array(out)
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, v) in map.iter().take(MAX_ITEMS) {
                let key = cut(&redact_secrets(key));
                let lower = key.to_ascii_lowercase();
                let v = if REDACTED_KEYS.contains(&lower.as_str())
                    || crate::content::is_content_key(&lower)
                {
                    Value::String(REDACTED.into())
                } else {
                    redact(v, depth + 1)
                };
                out.insert(key, v);
            }
            if map.len() > MAX_ITEMS {
                out.insert("_elided_keys".into(), Value::from(map.len() - MAX_ITEMS));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn cut(s: &str) -> String {
    if s.len() <= MAX_STRING {
        return s.to_string();
    }
    let marker = format!("…[+{} bytes]", s.len());
    let mut end = MAX_STRING.saturating_sub(marker.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[+{} bytes]", &s[..end], s.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_keys_are_redacted_at_any_depth() {
        let args = json!({
            "since": "7d",
            "Prompt": "ignore previous instructions",
            "filter": {"text": "x", "old_string": "a", "new_string": "b", "developer": "alice"},
            "items": [{"content": "file body"}, {"body": "raw"}],
            "access_token": "tt_abc"
        });
        assert_eq!(
            redact_arguments(&args),
            json!({
                "since": "7d",
                "Prompt": "[redacted]",
                "filter": {"text": "[redacted]", "old_string": "[redacted]",
                           "new_string": "[redacted]", "developer": "alice"},
                "items": [{"content": "[redacted]"}, {"body": "[redacted]"}],
                "access_token": "[redacted]"
            })
        );
    }

    #[test]
    fn long_strings_are_cut_and_marked() {
        let long = "é".repeat(500); // 1000 bytes
        let out = redact_arguments(&json!({ "session_id": long }));
        let s = out["session_id"].as_str().unwrap();
        assert!(s.len() <= MAX_STRING, "{}", s.len());
        assert!(s.starts_with("éé"));
        let kept = s.split('…').next().unwrap().len();
        assert!(s.ends_with(&format!("…[+{} bytes]", 1000 - kept)), "{s}");
        assert_eq!(redact_arguments(&out), out);
    }

    #[test]
    fn deep_and_wide_values_are_capped() {
        let mut deep = json!("leaf");
        for _ in 0..50 {
            deep = json!({ "a": deep });
        }
        let out = redact_arguments(&deep);
        assert!(out.to_string().len() < 200);
        assert!(out.to_string().contains("[1 keys]"));

        let wide: Vec<Value> = (0..1000).map(Value::from).collect();
        let out = redact_arguments(&Value::Array(wide));
        let arr = out.as_array().unwrap();
        assert_eq!(arr.len(), MAX_ITEMS + 1);
        assert_eq!(arr[MAX_ITEMS], json!("[+968 items]"));
    }

    #[test]
    fn total_size_is_capped() {
        let many: Map<String, Value> = (0..30)
            .map(|i| (format!("k{i}"), Value::String("x".repeat(190))))
            .collect();
        let out = redact_arguments(&Value::Object(many));
        assert!(
            out.to_string().len() <= MAX_TOTAL,
            "{}",
            out.to_string().len()
        );
        let kept = out.as_object().unwrap().len() - 1;
        assert_eq!(out["_truncated"], json!(30 - kept));
        assert!(kept >= 5, "{kept}");
        assert_eq!(out["k0"], json!("x".repeat(190)));
        assert_eq!(redact_arguments(&json!(null)), json!(null));
        assert_eq!(
            redact_arguments(&json!({"limit": -5})),
            json!({"limit": -5})
        );
    }
}

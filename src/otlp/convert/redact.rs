//! Content capture at ingest: what [`crate::content`] calls content is
//! dropped unless the operator turned capture on; and the metadata read out
//! of the `tool_input` / `tool_parameters` JSON strings.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use serde_json::{Map, Value};

use super::attrs;
use crate::content::{TOOL_INPUT_KEYS, is_content, is_sender_placeholder, is_tool_input_metadata};

/// Parses a JSON-object string attribute (`tool_input`, `tool_parameters`).
pub(super) fn parse_object(raw: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// What `tool_input` becomes with capture off: `Some(text)` to keep
/// (rewritten when keys were dropped), `None` to drop it altogether (not a
/// JSON object, so its parts cannot be told apart). The flag says whether
/// anything was removed.
pub(super) fn filter_tool_input(
    raw: &str,
    parsed: Option<&Map<String, Value>>,
) -> (Option<String>, bool) {
    let Some(obj) = parsed else {
        return (None, !raw.is_empty());
    };
    if obj.keys().all(|k| is_tool_input_metadata(k)) {
        return (Some(raw.to_owned()), false);
    }
    let kept: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| is_tool_input_metadata(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (Some(Value::Object(kept).to_string()), true)
}

/// Metadata read from `tool_input` and `tool_parameters`.
#[derive(Default)]
pub(super) struct ToolDetails {
    /// `file_path`, `notebook_path` or `path`.
    pub(super) file_path: Option<String>,
    /// `mcp_server_name`.
    pub(super) mcp_server: Option<String>,
    /// `mcp_tool_name`.
    pub(super) mcp_tool: Option<String>,
    /// `git_branch`.
    pub(super) branch: Option<String>,
}

impl ToolDetails {
    /// Reads what is not known yet from one parsed object.
    pub(super) fn read(&mut self, obj: &Map<String, Value>) {
        let text = |k: &str| {
            obj.get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        if self.file_path.is_none() {
            self.file_path = text("file_path")
                .or_else(|| text("notebook_path"))
                .or_else(|| text("path"));
        }
        if self.mcp_server.is_none() {
            self.mcp_server = text("mcp_server_name");
        }
        if self.mcp_tool.is_none() {
            self.mcp_tool = text("mcp_tool_name");
        }
        if self.branch.is_none() {
            self.branch = text("git_branch");
        }
    }
}

/// Handles the attributes that carry content or tool details. Returns `None`
/// when `kv` is neither (the caller maps it as usual); otherwise the value to
/// keep in the record's attributes, if any. Reads tool details into
/// `details` and sets `redacted` when something was dropped.
pub(super) fn content_attr(
    event_name: &str,
    kv: &KeyValue,
    capture: bool,
    details: &mut ToolDetails,
    redacted: &mut bool,
) -> Option<Option<Value>> {
    let key = kv.key.as_str();
    if TOOL_INPUT_KEYS.contains(&key) {
        let Some(raw) = attrs::str_of(kv.value.as_ref()) else {
            if capture {
                return Some(Some(attrs::to_json(kv.value.as_ref())));
            }
            *redacted = true;
            return Some(None);
        };
        let parsed = parse_object(raw);
        if let Some(obj) = &parsed {
            details.read(obj);
        }
        if capture {
            return Some(Some(Value::String(raw.to_owned())));
        }
        let (kept, dropped) = filter_tool_input(raw, parsed.as_ref());
        *redacted |= dropped;
        return Some(kept.map(Value::String));
    }
    if !is_content(event_name, key) {
        return None;
    }
    if capture || is_sender_placeholder(attrs::str_of(kv.value.as_ref())) {
        return Some(Some(attrs::to_json(kv.value.as_ref())));
    }
    *redacted = true;
    Some(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_input_keeps_metadata_only() {
        let raw = r#"{"file_path":"/home/dev/webapp/a.txt","old_string":"x","new_string":"y","replace_all":false}"#;
        let (kept, dropped) = filter_tool_input(raw, parse_object(raw).as_ref());
        assert!(dropped);
        assert_eq!(
            kept.as_deref(),
            Some(r#"{"file_path":"/home/dev/webapp/a.txt"}"#)
        );
        let raw = r#"{"command":"ls","description":"List"}"#;
        let (kept, dropped) = filter_tool_input(raw, parse_object(raw).as_ref());
        assert!(!dropped);
        assert_eq!(kept.as_deref(), Some(raw));
        let (kept, dropped) = filter_tool_input("{truncated", None);
        assert!(dropped);
        assert_eq!(kept, None);
    }

    #[test]
    fn details_prefer_file_path() {
        let mut d = ToolDetails::default();
        d.read(
            &parse_object(r#"{"path":"/p","notebook_path":"/n.ipynb","git_branch":"main"}"#)
                .unwrap(),
        );
        assert_eq!(d.file_path.as_deref(), Some("/n.ipynb"));
        assert_eq!(d.branch.as_deref(), Some("main"));
    }
}

//! The query parameters a page takes, and how they become tool arguments:
//! a parameter goes to a tool only when the tool's argument schema names
//! it, so the tool's own validation answers every bad value.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The filter inputs pages show: name, label and an example.
pub const FILTERS: &[(&str, &str, &str)] = &[
    ("since", "Since", "7d, 30d, 2026-11-01"),
    ("until", "Until", "now, 2026-11-30"),
    ("timezone", "Time zone", "UTC, Europe/Berlin"),
    ("developer", "Developer", "email or id"),
    ("team", "Team", "resource team"),
    ("model", "Model", "claude-sonnet-4-6"),
    ("repository", "Repository", "repository name"),
    ("agent", "Agent", "claude_code, codex, gemini_cli, opencode"),
];

/// Page parameters besides the filters.
const PAGE_PARAMS: &[&str] = &[
    "cursor",
    "sort_by",
    "session_id",
    "token",
    "tool",
    "outcome",
    "sort",
    "dir",
    "format",
    "verify",
];

/// Longest parameter value accepted.
const MAX_VALUE_BYTES: usize = 1024;

/// The recognised, non-empty parameters of one page request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Reads the recognised parameters of a query string, refusing unknown
    /// names and oversized values with a message that says which.
    pub fn parse(query: Option<&str>) -> Result<Params, String> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|e| format!("the query string is not valid: {e}"))?;
        let mut values = BTreeMap::new();
        for (name, value) in pairs {
            let known = FILTERS.iter().any(|(n, _, _)| *n == name) || PAGE_PARAMS.contains(&&*name);
            if !known {
                return Err(format!(
                    "unknown parameter {name:?}; pages take {}",
                    FILTERS
                        .iter()
                        .map(|(n, _, _)| *n)
                        .chain(PAGE_PARAMS.iter().copied())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            if value.len() > MAX_VALUE_BYTES {
                return Err(format!(
                    "parameter {name} is {} bytes long; the limit is {MAX_VALUE_BYTES}",
                    value.len()
                ));
            }
            let value = value.trim();
            if !value.is_empty() {
                values.insert(name, value.to_string());
            }
        }
        Ok(Params { values })
    }

    /// One parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// A copy with `name` set (or removed, with `None`).
    pub fn with(&self, name: &str, value: Option<&str>) -> Params {
        let mut p = self.clone();
        match value {
            Some(v) => p.values.insert(name.to_string(), v.to_string()),
            None => p.values.remove(name),
        };
        p
    }

    /// Whether the JSON form of the page was asked for.
    pub fn wants_json(&self) -> bool {
        self.get("format") == Some("json")
    }

    /// The arguments for `tool`: every parameter its schema names (so the
    /// page's own parameters, such as `sort`, never), then `extra`.
    pub fn args_for(&self, tool: &str, extra: &[(&str, Value)]) -> Map<String, Value> {
        let def = crate::mcp::registry::find(tool);
        let mut args = Map::new();
        for (name, value) in &self.values {
            if def.is_some_and(|d| d.accepts(name)) {
                args.insert(name.clone(), Value::String(value.clone()));
            }
        }
        for (name, value) in extra {
            args.insert((*name).to_string(), value.clone());
        }
        args
    }

    /// `path?` with these parameters except `drop`, ready for one more
    /// `name=value` (ends in `?` or `&`).
    pub fn link(&self, path: &str, drop: &[&str]) -> String {
        let kept: Vec<(&str, &str)> = self
            .values
            .iter()
            .filter(|(k, _)| !drop.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let q = serde_urlencoded::to_string(&kept).unwrap_or_default();
        if q.is_empty() {
            format!("{path}?")
        } else {
            format!("{path}?{q}&")
        }
    }

    /// `path` with these parameters except `drop` and with `extra` added.
    pub fn href(&self, path: &str, drop: &[&str], extra: &[(&str, &str)]) -> String {
        let mut link = self.link(path, drop);
        let more = serde_urlencoded::to_string(extra).unwrap_or_default();
        link.push_str(&more);
        link.trim_end_matches(['?', '&']).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_parameters_pass() {
        let p = Params::parse(Some("since=30d&developer=a%40b.com&model=")).expect("valid");
        assert_eq!(p.get("since"), Some("30d"));
        assert_eq!(p.get("developer"), Some("a@b.com"));
        assert_eq!(p.get("model"), None);
        let e = Params::parse(Some("access_token=x")).expect_err("unknown");
        assert!(e.contains("access_token"), "{e}");
        let long = format!("since={}", "x".repeat(2000));
        assert!(Params::parse(Some(&long)).is_err());
    }

    #[test]
    fn a_tool_gets_the_parameters_its_schema_names() {
        let p =
            Params::parse(Some("since=7d&session_id=s1&sort=cost&team=a&verify=1")).expect("valid");
        let args = p.args_for("session_timeline", &[("limit", Value::from(5))]);
        assert_eq!(args.get("session_id"), Some(&Value::from("s1")));
        assert!(args.get("team").is_none() && args.get("sort").is_none());
        assert_eq!(args.get("limit"), Some(&Value::from(5)));
        let args = p.args_for("cost_by_developer", &[]);
        assert_eq!(args.get("team"), Some(&Value::from("a")));
        assert!(args.get("verify").is_none());
    }

    #[test]
    fn links_keep_the_other_parameters_encoded() {
        let p = Params::parse(Some("since=7d&developer=a%20b")).expect("valid");
        assert_eq!(p.link("/ui/x", &["since"]), "/ui/x?developer=a+b&");
        assert_eq!(
            p.href("/ui/x", &[], &[("cursor", "c&1")]),
            "/ui/x?developer=a+b&since=7d&cursor=c%261"
        );
        assert_eq!(Params::default().href("/ui/x", &[], &[]), "/ui/x");
    }
}

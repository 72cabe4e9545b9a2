//! The query tools' implementations and the helpers every tool shares
//! (schemas, argument checks, hashing, paging). Each tool turns its
//! arguments into a filter and range, asks [`crate::query::Questions`] and
//! shapes the answer; [`super::registry`] declares and calls them.

use schemars::JsonSchema;
use serde_json::{Map, Value, json};

pub(crate) mod activity;
pub(crate) mod code;
pub(crate) mod inventory;
pub(crate) mod spend;

use super::args;
use super::registry::{Registry, ToolDef};
use super::reply::ToolReply;
use crate::auth::Principal;
use crate::query::page::{self};
use crate::query::{QueryError, ToolContext};

/// A JSON Schema with every subschema inlined (no `$ref`), as an object.
pub fn schema_of<T: JsonSchema>() -> Map<String, Value> {
    let settings =
        schemars::generate::SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true);
    let schema = settings.into_generator().into_root_schema_for::<T>();
    match serde_json::to_value(schema) {
        Ok(Value::Object(mut m)) => {
            m.remove("$schema");
            m.remove("title");
            m
        }
        _ => Map::new(),
    }
}

/// The output schema shared by every tool: rows of `row`, paging and notes.
pub fn output_schema(row: Map<String, Value>) -> Map<String, Value> {
    let v = json!({
        "type": "object",
        "properties": {
            "range": {"type": "object", "description": "The resolved time range (since inclusive, until exclusive) and time zone."},
            "rows": {"type": "array", "items": Value::Object(row)},
            "truncated": {"type": "boolean", "description": "True when rows were left out; page on with next_cursor."},
            "next_cursor": {"type": ["string", "null"], "description": "Pass as cursor to get the next page."},
            "notes": {"type": "array", "items": {"type": "string"}}
        },
        "required": ["rows", "truncated", "next_cursor", "notes"]
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The schema of a whole reply (`structuredContent`): the tool's body
/// fields `B`, its rows `R`, and the paging fields every tool has. No other
/// field is allowed, so the schema is the reply's whole contract.
pub fn reply_schema<B: JsonSchema, R: JsonSchema>() -> Map<String, Value> {
    let mut schema = output_schema(schema_of::<R>());
    let body = schema_of::<B>();
    if let (Some(Value::Object(props)), Some(Value::Object(extra))) =
        (schema.get_mut("properties"), body.get("properties"))
    {
        for (k, v) in extra {
            props.insert(k.clone(), v.clone());
        }
    }
    if let (Some(Value::Array(required)), Some(Value::Array(extra))) =
        (schema.get_mut("required"), body.get("required"))
    {
        required.extend(extra.iter().cloned());
    }
    schema.insert("additionalProperties".into(), Value::Bool(false));
    schema
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The argument names of a tool, from its schema; generated once per tool
/// (tool names are unique across the query and audit tools).
fn known_arguments(spec: &ToolDef) -> std::sync::Arc<[String]> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type ByTool = HashMap<&'static str, Arc<[String]>>;
    static KNOWN: OnceLock<Mutex<ByTool>> = OnceLock::new();
    let mut known = KNOWN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    known
        .entry(spec.name)
        .or_insert_with(|| {
            (spec.input_schema)()
                .get("properties")
                .and_then(|p| p.as_object())
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default()
        })
        .clone()
}

/// Checks the argument object against the tool's schema properties.
pub(crate) fn check_args(spec: &ToolDef, args: &Value) -> Result<Map<String, Value>, QueryError> {
    let obj = match args {
        Value::Null => Map::new(),
        Value::Object(o) => o.clone(),
        _ => {
            return Err(QueryError::Invalid(
                "arguments must be a JSON object".into(),
            ));
        }
    };
    if depth(args) > 4 {
        return Err(QueryError::Invalid(
            "arguments are nested too deeply; every argument is a plain value".into(),
        ));
    }
    let known = known_arguments(spec);
    for k in obj.keys() {
        if !known.contains(k) {
            let list: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
            return Err(QueryError::Invalid(format!(
                "unknown argument {k:?} for {}; known arguments: {}",
                spec.name,
                list.join(", ")
            )));
        }
    }
    Ok(obj)
}

/// Hash of the arguments that define the question (not limit/cursor), binding cursors to it.
pub(crate) fn args_hash(tool: &str, obj: &Map<String, Value>) -> String {
    let mut o = obj.clone();
    o.remove("limit");
    o.remove("cursor");
    let text = format!("{tool}\n{}", Value::Object(o));
    blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
}

/// Deserializes checked arguments, turning serde's message into a tool error.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(
    tool: &str,
    obj: Map<String, Value>,
) -> Result<T, QueryError> {
    serde_json::from_value(Value::Object(obj))
        .map_err(|e| QueryError::Invalid(format!("invalid arguments for {tool}: {e}")))
}

/// Runs one tool for `principal` through the [`Registry`] over `ctx` (the
/// audit tools, which need the audit log, answer that it is not available).
pub async fn call_tool(
    ctx: &ToolContext,
    principal: &Principal,
    name: &str,
    args: Value,
) -> ToolReply {
    Registry::new(ctx.clone()).call(principal, name, args).await
}

/// Row limit, start offset and notes shared by the offset-paged tools.
pub fn paging(
    ctx: &ToolContext,
    tool: &str,
    hash: &str,
    p: &args::PageArgs,
) -> Result<(usize, u64, Vec<String>), QueryError> {
    args::check_strings(&[("cursor", &p.cursor)])?;
    let (limit, note) = page::row_limit(p.limit, &ctx.limits)?;
    let pos = args::clean(&p.cursor)
        .map(|c| page::decode(&c, tool, hash))
        .transpose()?;
    let offset = page::offset_of(pos)?;
    Ok((limit, offset, note.into_iter().collect()))
}

pub(super) fn money(x: f64) -> String {
    format!("${x:.4}")
}

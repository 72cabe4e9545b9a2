//! The query tools' implementations and the helpers every tool shares
//! (schemas, paging). Each tool turns its
//! arguments into a filter and range, asks [`crate::query::Questions`] and
//! shapes the answer; [`super::registry`] declares and calls them.

use schemars::JsonSchema;
use serde_json::{Map, Value, json};

pub(crate) mod activity;
pub(crate) mod code;
pub(crate) mod inventory;
pub(crate) mod spend;

use super::args;
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
            let mut v = Value::Object(m);
            portable(&mut v);
            match v {
                Value::Object(m) => m,
                _ => Map::new(),
            }
        }
        _ => Map::new(),
    }
}

/// Makes a schema portable across MCP clients: an optional field is
/// described by its type alone (`"type": ["string", "null"]` becomes
/// `"type": "string"`), since an absent field already means "not given" and
/// replies leave null members out. Several clients warn on type arrays.
fn portable(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Array(types)) = m.get("type") {
                let rest: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                if rest.len() == 1 && types.len() == 2 {
                    m.insert("type".into(), rest[0].clone());
                }
            }
            for x in m.values_mut() {
                portable(x);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(portable),
        _ => {}
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

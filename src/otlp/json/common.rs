//! The messages every signal shares: attribute values, key-values,
//! resources and instrumentation scopes.

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::Value;

use super::R;
use super::scalar::{
    at, base64_bytes, boolean, f64_of, fields, i32_of, i64_of, list, string, u32_of,
};

pub(super) fn any_value(v: &Value) -> R<AnyValue> {
    let mut out = AnyValue { value: None };
    fields(v, |k, x| {
        out.value = Some(match k {
            "stringValue" | "string_value" => {
                any_value::Value::StringValue(at("stringValue", string(x))?)
            }
            "boolValue" | "bool_value" => any_value::Value::BoolValue(at("boolValue", boolean(x))?),
            "intValue" | "int_value" => any_value::Value::IntValue(at("intValue", i64_of(x))?),
            "doubleValue" | "double_value" => {
                any_value::Value::DoubleValue(at("doubleValue", f64_of(x))?)
            }
            "arrayValue" | "array_value" => {
                any_value::Value::ArrayValue(at("arrayValue", array_value(x))?)
            }
            "kvlistValue" | "kvlist_value" => {
                any_value::Value::KvlistValue(at("kvlistValue", kvlist_value(x))?)
            }
            "bytesValue" | "bytes_value" => {
                any_value::Value::BytesValue(at("bytesValue", base64_bytes(x))?)
            }
            "stringValueStrindex" | "string_value_strindex" => {
                any_value::Value::StringValueStrindex(at("stringValueStrindex", i32_of(x))?)
            }
            _ => return Ok(()),
        });
        Ok(())
    })?;
    Ok(out)
}

pub(super) fn array_value(v: &Value) -> R<ArrayValue> {
    let mut out = ArrayValue::default();
    fields(v, |k, x| {
        if k == "values" {
            out.values = list(x, "values", any_value)?;
        }
        Ok(())
    })?;
    Ok(out)
}

pub(super) fn kvlist_value(v: &Value) -> R<KeyValueList> {
    let mut out = KeyValueList::default();
    fields(v, |k, x| {
        if k == "values" {
            out.values = list(x, "values", key_value)?;
        }
        Ok(())
    })?;
    Ok(out)
}

pub(super) fn key_value(v: &Value) -> R<KeyValue> {
    let mut out = KeyValue::default();
    fields(v, |k, x| {
        match k {
            "key" => out.key = at("key", string(x))?,
            "value" => out.value = Some(at("value", any_value(x))?),
            "keyStrindex" | "key_strindex" => out.key_strindex = at("keyStrindex", i32_of(x))?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

pub(super) fn attributes(x: &Value) -> R<Vec<KeyValue>> {
    list(x, "attributes", key_value)
}

pub(super) fn entity_ref(v: &Value) -> R<EntityRef> {
    let mut out = EntityRef::default();
    fields(v, |k, x| {
        match k {
            "schemaUrl" | "schema_url" => out.schema_url = at("schemaUrl", string(x))?,
            "type" => out.r#type = at("type", string(x))?,
            "idKeys" | "id_keys" => out.id_keys = list(x, "idKeys", string)?,
            "descriptionKeys" | "description_keys" => {
                out.description_keys = list(x, "descriptionKeys", string)?
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

pub(super) fn resource(v: &Value) -> R<Resource> {
    let mut out = Resource::default();
    fields(v, |k, x| {
        match k {
            "attributes" => out.attributes = attributes(x)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                out.dropped_attributes_count = at("droppedAttributesCount", u32_of(x))?
            }
            "entityRefs" | "entity_refs" => out.entity_refs = list(x, "entityRefs", entity_ref)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

pub(super) fn scope(v: &Value) -> R<InstrumentationScope> {
    let mut out = InstrumentationScope::default();
    fields(v, |k, x| {
        match k {
            "name" => out.name = at("name", string(x))?,
            "version" => out.version = at("version", string(x))?,
            "attributes" => out.attributes = attributes(x)?,
            "droppedAttributesCount" | "dropped_attributes_count" => {
                out.dropped_attributes_count = at("droppedAttributesCount", u32_of(x))?
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(out)
}

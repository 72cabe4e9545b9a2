//! Every tool's `structuredContent` validates against the output schema it
//! advertises (a JSON Schema validator, the whole reply: no field outside
//! the schema), on the generated team, the real capture and a real audit log.

use super::*;
use crate::audit::AuditLog;
use crate::mcp::registry::{Registry, TOOLS};

fn validate(tool: &str, schema: &serde_json::Map<String, Value>, reply: &ToolReply) {
    assert!(!reply.is_error, "{tool}: {}", reply.text);
    let validator = jsonschema::validator_for(&Value::Object(schema.clone()))
        .unwrap_or_else(|e| panic!("{tool}: the schema itself is invalid: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(&reply.structured)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{tool}: {errors:#?}");
}

async fn check_all(registry: &Registry, session: &str) {
    let p = principal(Scope::Audit, &[]);
    for tool in TOOLS {
        let args = match tool.name {
            "session_timeline" => json!({"session_id": session}),
            "usage_over_time" => json!({"since": ALL, "until": "2027-01-01", "split_by": "model"}),
            // Wider than the data: the range says it was narrowed.
            _ => json!({"since": "2000-01-01", "until": "2100-01-01"}),
        };
        let reply = registry.call(&p, tool.name, args).await;
        assert!(
            reply.rows > 0 || tool.name == "top_edited_files",
            "{}: no rows",
            tool.name
        );
        validate(tool.name, &(tool.output_schema)(), &reply);
    }
    // Optional body fields left unset (no split) validate too.
    let tool = crate::mcp::registry::find("usage_over_time").unwrap();
    let reply = registry
        .call(&p, tool.name, json!({"since": ALL, "until": "2027-01-01"}))
        .await;
    validate(tool.name, &(tool.output_schema)(), &reply);
}

#[tokio::test]
async fn every_reply_validates_against_its_advertised_schema() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    let p = principal(Scope::Read, &[]);
    for outcome in [Outcome::Ok, Outcome::Forbidden] {
        log.append(AuditRecord::denial(
            Some(&p),
            crate::audit::Caller::default(),
            "POST /mcp".into(),
            outcome,
            "test",
        ))
        .unwrap();
    }
    let audit = Arc::new(AuditLog::open_read_only(dir.path()).unwrap());
    let (ctx, ds) = generated_ctx();
    let registry = Registry::new(ctx).with_audit_log(audit.clone());
    check_all(&registry, &ds.records[0].session_id).await;
    let mut fx = Fx::new();
    capture::load(&mut fx);
    let registry = Registry::new(ctx_over(fx, QueryLimits::default())).with_audit_log(audit);
    check_all(&registry, capture::SESSION).await;
}

#[test]
fn a_field_outside_the_schema_is_refused() {
    // The schemas are closed: the validation above would catch a new field
    // that a tool sets without declaring it.
    let tool = crate::mcp::registry::find("cost_by_developer").unwrap();
    let validator = jsonschema::validator_for(&Value::Object((tool.output_schema)())).unwrap();
    let mut reply = json!({"rows": [], "truncated": false, "next_cursor": null, "notes": []});
    assert!(!validator.is_valid(&reply), "body fields are required");
    reply["undeclared"] = json!(1);
    assert!(!validator.is_valid(&reply));
}

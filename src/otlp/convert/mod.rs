//! prost OTLP messages → [`rows::Batch`].
//!
//! What the three signals share lives here: splitting a record's attributes
//! into the shared [`Context`] (resource, scope, and the attributes Claude
//! Code repeats on every record of a session) and the rest, grouping records
//! by context so equal contexts share one `Arc`, deduplication keys, and the
//! accounting of refused records. The per-signal conversions are in
//! `events`, `metrics` and `spans`; content redaction is in `redact`.

mod agents;
mod attrs;
mod events;
mod metrics;
mod redact;
mod spans;

use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::agent::Agent;
use crate::otlp::DecodeOptions;
use crate::rows::{Attrs, Context, ContextGroup, DedupKey, IdentityKind};

pub use events::logs_to_batch;
pub use metrics::metrics_to_batch;
pub use spans::traces_to_batch;

/// Most attributes one record (log record, data point, span) may carry:
/// exporters cap theirs at 128 by default; more is refused rather than held
/// in memory and stored.
pub(crate) const MAX_ATTRIBUTES: usize = 1024;

/// Record attributes that are constant within a session and so belong to the
/// context rather than to each record.
fn is_shared_key(key: &str) -> bool {
    matches!(
        key,
        "session.id"
            | "conversation.id"
            | "installation.id"
            | "user.id"
            | "user.email"
            | "user.account_uuid"
            | "user.account_id"
            | "organization.id"
            | "terminal.type"
            | "app.version"
            | "app.entrypoint"
            | "anthropic.provider"
            | "anthropic.custom_base_url"
            | "service.name"
            | "service.version"
            | "os.type"
            | "os.version"
            | "host.arch"
    )
}

fn first16(hash: &[u8; 32]) -> DedupKey {
    let mut key = [0u8; 16];
    key.copy_from_slice(hash.get(..16).unwrap_or(&[0u8; 16]));
    key
}

/// One resource + scope: what every record under it shares, computed once.
pub(super) struct ScopeInfo<'a> {
    resource: &'a [KeyValue],
    scope_name: &'a str,
    scope_version: &'a str,
    /// The agent the scope name identifies, if any.
    pub(super) agent: Option<Agent>,
    /// Keep content attributes of the resource (`process.command_args`).
    capture: bool,
    /// The operator's identity map.
    identity: &'a crate::config::IdentityMap,
    /// Hash state after the resource and scope, cloned for each context key.
    prefix: blake3::Hasher,
}

impl<'a> ScopeInfo<'a> {
    pub(super) fn new(
        resource: Option<&'a Resource>,
        scope: Option<&'a InstrumentationScope>,
        opts: &'a DecodeOptions,
    ) -> Self {
        let resource = resource
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        let scope_name = scope.map(|s| s.name.as_str()).unwrap_or_default();
        let scope_version = scope.map(|s| s.version.as_str()).unwrap_or_default();
        let mut prefix = blake3::Hasher::new();
        prefix.update(b"tokentally.context.v1");
        let mut sorted: Vec<&KeyValue> = resource.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        prefix.update(&(sorted.len() as u64).to_le_bytes());
        for kv in sorted {
            attrs::hash_str(&mut prefix, &kv.key);
            attrs::hash_value(&mut prefix, kv.value.as_ref());
        }
        attrs::hash_str(&mut prefix, scope_name);
        attrs::hash_str(&mut prefix, scope_version);
        ScopeInfo {
            resource,
            scope_name,
            scope_version,
            agent: Agent::from_scope(scope_name),
            capture: opts.capture_content,
            identity: &opts.identity,
            prefix,
        }
    }

    /// Whether a record attribute belongs to the context: a session-constant
    /// key, or a copy (same key and value) of a resource attribute.
    fn is_shared(&self, kv: &KeyValue) -> bool {
        is_shared_key(&kv.key)
            || self
                .resource
                .iter()
                .any(|r| r.key == kv.key && r.value == kv.value)
    }

    /// The agent of a record named `name` (metric or span name) under this
    /// scope: the scope's mark, else the name's.
    pub(super) fn agent_of(&self, name: &str) -> Option<Agent> {
        self.agent.or_else(|| Agent::from_record_name(name))
    }

    fn resource_value(&self, key: &str) -> Option<&'a KeyValue> {
        self.resource.iter().rev().find(|kv| kv.key == key)
    }

    /// The resource attributes as stored: content (Gemini CLI's
    /// `process.command_args`, which holds the prompt) only under capture.
    fn resource_attrs(&self) -> Attrs {
        self.resource
            .iter()
            .filter(|kv| self.capture || !crate::content::is_content("", &kv.key))
            .map(|kv| (kv.key.clone(), attrs::to_json(kv.value.as_ref())))
            .collect()
    }
}

/// The version of the agent: `app.version`, else `service.version` unless
/// it is the runtime's (Gemini CLI sends Node.js's version there), else the
/// agent's scope version.
fn agent_version(scope: &ScopeInfo<'_>, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(v) = lookup("app.version") {
        return Some(v);
    }
    let runtime = lookup("process.runtime.version");
    let service = lookup("service.version").filter(|v| {
        runtime
            .as_deref()
            .is_none_or(|r| v.trim_start_matches('v') != r.trim_start_matches('v'))
    });
    service.or_else(|| {
        let own = scope.agent.is_some() && !scope.scope_version.is_empty();
        // Gemini CLI's trace scope is versioned `v1`: not the CLI's version.
        (own && scope.scope_version.contains('.')).then(|| scope.scope_version.to_owned())
    })
}

/// Which attributes of one record go to the context. Reused across records
/// so that splitting allocates nothing in the steady state.
#[derive(Default)]
pub(super) struct Split {
    /// Indices of the shared attributes, ordered by key.
    shared: Vec<usize>,
    /// `mask[i]` is true when attribute `i` is shared.
    mask: Vec<bool>,
}

impl Split {
    /// Splits `kvs` and returns the key of the resulting context.
    pub(super) fn compute(
        &mut self,
        scope: &ScopeInfo<'_>,
        kvs: &[KeyValue],
        agent: Option<Agent>,
    ) -> DedupKey {
        self.shared.clear();
        self.mask.clear();
        for (i, kv) in kvs.iter().enumerate() {
            let shared = scope.is_shared(kv);
            self.mask.push(shared);
            if shared {
                self.shared.push(i);
            }
        }
        self.shared
            .sort_unstable_by(|&a, &b| key_at(kvs, a).cmp(key_at(kvs, b)).then(a.cmp(&b)));
        let mut h = scope.prefix.clone();
        h.update(&(self.shared.len() as u64).to_le_bytes());
        for &i in &self.shared {
            if let Some(kv) = kvs.get(i) {
                attrs::hash_str(&mut h, &kv.key);
                attrs::hash_value(&mut h, kv.value.as_ref());
            }
        }
        // 0 and 1 are what the byte was before other agents were known
        // (not Claude Code / Claude Code), so stored context keys stay valid.
        let tag: u8 = match agent {
            None => 0,
            Some(Agent::ClaudeCode) => 1,
            Some(Agent::Codex) => 2,
            Some(Agent::GeminiCli) => 3,
            Some(Agent::Opencode) => 4,
        };
        h.update(&[tag]);
        first16(h.finalize().as_bytes())
    }

    /// True when attribute `i` went to the context.
    pub(super) fn is_shared(&self, i: usize) -> bool {
        self.mask.get(i).copied().unwrap_or(false)
    }

    /// Builds the context of the last split (only for a context not seen yet
    /// in this batch).
    pub(super) fn context(
        &self,
        scope: &ScopeInfo<'_>,
        kvs: &[KeyValue],
        key: DedupKey,
        agent: Option<Agent>,
    ) -> Context {
        let shared: Vec<&KeyValue> = self.shared.iter().filter_map(|&i| kvs.get(i)).collect();
        let lookup = |k: &str| -> Option<String> {
            shared
                .iter()
                .rev()
                .find(|kv| kv.key == k)
                .copied()
                .or_else(|| scope.resource_value(k))
                .and_then(|kv| attrs::text_of(kv.value.as_ref()))
        };
        let service_name = scope
            .resource_value("service.name")
            .and_then(|kv| attrs::text_of(kv.value.as_ref()))
            .or_else(|| lookup("service.name"));
        let user_email = lookup("user.email");
        let user_account_uuid = lookup("user.account_uuid");
        let user_id = lookup("user.id");
        let claude_code = agent == Some(Agent::ClaudeCode);
        let mapped = scope
            .identity
            .lookup(lookup)
            .map(|d| (Some(d), Some(IdentityKind::Mapped)));
        let (developer, developer_kind) = mapped.unwrap_or_else(|| {
            let candidates = [
                (user_email.clone(), IdentityKind::Email),
                (user_account_uuid.clone(), IdentityKind::AccountUuid),
                (user_id.clone(), IdentityKind::UserId),
                (lookup("user.account_id"), IdentityKind::AccountId),
            ];
            // An agent that sends no user is still someone's: its install
            // id, else the machine it ran on. Other senders stay anonymous.
            let fallbacks = [
                (lookup("installation.id"), IdentityKind::InstallationId),
                (lookup("host.name"), IdentityKind::Host),
            ];
            let agent_fallbacks = fallbacks
                .into_iter()
                .filter(|_| agent.is_some() && !claude_code);
            candidates
                .into_iter()
                .chain(agent_fallbacks)
                .find_map(|(v, k)| v.filter(|v| !v.is_empty()).map(|v| (Some(v), Some(k))))
                .unwrap_or((None, None))
        });
        let app_version = lookup("app.version")
            .or_else(|| lookup("service.version"))
            .or_else(|| {
                (claude_code && !scope.scope_version.is_empty())
                    .then(|| scope.scope_version.to_owned())
            });
        let agent_version = agent.and_then(|_| agent_version(scope, &lookup));
        let session_id = lookup("session.id").or_else(|| {
            (agent == Some(Agent::Codex))
                .then(|| lookup("conversation.id"))
                .flatten()
        });
        Context {
            key,
            agent,
            agent_version,
            service_name,
            scope_name: scope.scope_name.to_owned(),
            scope_version: scope.scope_version.to_owned(),
            session_id,
            developer,
            developer_kind,
            user_email,
            user_account_uuid,
            user_id,
            organization_id: lookup("organization.id"),
            terminal_type: lookup("terminal.type"),
            app_version,
            resource_attrs: scope.resource_attrs(),
            shared_attrs: shared
                .iter()
                .map(|kv| (kv.key.clone(), attrs::to_json(kv.value.as_ref())))
                .collect::<Attrs>(),
        }
    }
}

fn key_at(kvs: &[KeyValue], i: usize) -> &str {
    kvs.get(i).map(|kv| kv.key.as_str()).unwrap_or_default()
}

/// Rows grouped by context; equal contexts share one `Arc`.
pub(super) struct Grouped<T> {
    groups: Vec<ContextGroup<T>>,
    index: HashMap<DedupKey, usize>,
}

impl<T> Grouped<T> {
    pub(super) fn new() -> Self {
        Grouped {
            groups: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Adds a row to the group of context `key`, building the context with
    /// `make` the first time the key is seen.
    pub(super) fn push(&mut self, key: DedupKey, make: impl FnOnce() -> Context, row: T) {
        let i = *self.index.entry(key).or_insert_with(|| {
            self.groups.push(ContextGroup {
                context: Arc::new(make()),
                rows: Vec::new(),
            });
            self.groups.len() - 1
        });
        if let Some(g) = self.groups.get_mut(i) {
            g.rows.push(row);
        }
    }

    pub(super) fn into_groups(self) -> Vec<ContextGroup<T>> {
        self.groups
    }
}

/// Deduplication keys for one request: a hash of the context key and the
/// record's protobuf encoding, plus the ordinal of identical content within
/// the request (so a retry maps to the same keys and two identical records in
/// one request stay distinct).
pub(super) struct Dedup {
    seen: HashMap<[u8; 32], u32>,
    buf: Vec<u8>,
}

impl Dedup {
    pub(super) fn new() -> Self {
        Dedup {
            seen: HashMap::new(),
            buf: Vec::with_capacity(1024),
        }
    }

    /// The key of `record` in context `context`; `extra` is hashed between
    /// the two (a metric's name and type for its points).
    pub(super) fn key(
        &mut self,
        context: &DedupKey,
        extra: &[u8],
        record: &impl prost::Message,
    ) -> DedupKey {
        self.buf.clear();
        // Encoding into a Vec cannot run out of space.
        let _ = record.encode(&mut self.buf);
        let mut h = blake3::Hasher::new();
        h.update(context);
        h.update(&(extra.len() as u64).to_le_bytes());
        h.update(extra);
        h.update(&self.buf);
        let content = *h.finalize().as_bytes();
        let seen = self.seen.entry(content).or_insert(0);
        let ordinal = *seen;
        *seen += 1;
        if ordinal == 0 {
            first16(&content)
        } else {
            let mut h = blake3::Hasher::new();
            h.update(&content);
            h.update(&ordinal.to_le_bytes());
            first16(h.finalize().as_bytes())
        }
    }
}

/// Records refused one by one, with the first few reasons.
#[derive(Default)]
pub(super) struct Rejects {
    count: u64,
    total: u64,
    reasons: Vec<String>,
}

impl Rejects {
    const KEPT_REASONS: usize = 3;

    /// Counts one record seen.
    pub(super) fn seen(&mut self) {
        self.total += 1;
    }

    /// Counts one refused record; `reason` says which and why.
    pub(super) fn reject(&mut self, reason: impl FnOnce() -> String) {
        self.count += 1;
        if self.reasons.len() < Self::KEPT_REASONS {
            self.reasons.push(reason());
        }
    }

    /// `(rejected, message)` for [`Decoded`](super::Decoded).
    pub(super) fn finish(self, what: &str) -> (u64, Option<String>) {
        if self.count == 0 {
            return (0, None);
        }
        let mut message = format!(
            "rejected {} of {} {what}: {}",
            self.count,
            self.total,
            self.reasons.join("; ")
        );
        if self.count > self.reasons.len() as u64 {
            message.push_str("; ...");
        }
        (self.count, Some(message))
    }
}

/// A timestamp as signed nanoseconds (the store's type).
pub(super) fn nanos(t: u64) -> Option<i64> {
    i64::try_from(t).ok()
}

/// Checks an id's length: `required` ids must be present.
pub(super) fn check_id(id: &[u8], len: usize, required: bool, name: &str) -> Result<(), String> {
    if id.len() == len || (!required && id.is_empty()) {
        Ok(())
    } else {
        Err(format!(
            "{name} must be {len} bytes ({} hex digits), got {} bytes",
            len * 2,
            id.len()
        ))
    }
}

/// Sets a model column and its context variant once, from the raw `model`
/// attribute (see [`crate::rows::split_model`]).
pub(super) fn set_model(
    model: &mut Option<String>,
    variant: &mut Option<String>,
    raw: Option<&str>,
) -> bool {
    let Some(raw) = raw else { return false };
    if model.is_some() {
        return false;
    }
    let (base, v) = crate::rows::split_model(raw);
    *model = Some(base.to_string());
    *variant = v.map(str::to_string);
    true
}

/// Sets `field` from `value` unless it is already set or `value` is none;
/// returns true when the value went to the typed column.
pub(super) fn set_once<T>(field: &mut Option<T>, value: Option<T>) -> bool {
    if field.is_some() {
        return false;
    }
    match value {
        Some(v) => {
            *field = Some(v);
            true
        }
        None => false,
    }
}

//! Attribution dimensions: what Claude Code 2.1.330+ sends on `api_request`
//! and `api_error` events and on the cost and token metrics to say what a
//! request was for (the subagent, skill, plugin, effort...), and what it
//! puts on every record when configured (plan, identity source, repository
//! owner). One table, used by the filters ([`super::filter::Filter`]), the
//! usage dimensions ([`super::usage::Dim::Attribution`]) and the series
//! splits of `usage_over_time`.
//!
//! A value is read from the record's own attributes, else from its context
//! (session-constant attributes, then the resource), so the same dimension
//! works whether an exporter sends it per record or once per process.

/// One attribution dimension.
#[derive(Debug, PartialEq, Eq)]
pub struct Attribution {
    /// The name used in arguments (`split_by`, filters).
    pub name: &'static str,
    /// The OTLP attribute key.
    pub key: &'static str,
}

/// Every attribution dimension, in the order they are documented.
pub static ATTRIBUTIONS: &[Attribution] = &[
    Attribution {
        name: "subagent",
        key: "agent.name",
    },
    Attribution {
        name: "skill",
        key: "skill.name",
    },
    Attribution {
        name: "plugin",
        key: "plugin.name",
    },
    Attribution {
        name: "marketplace",
        key: "marketplace.name",
    },
    Attribution {
        name: "effort",
        key: "effort",
    },
    Attribution {
        name: "plan",
        key: "anthropic.plan",
    },
    Attribution {
        name: "identity_source",
        key: "identity.source",
    },
    Attribution {
        name: "user_groups",
        key: "user.groups",
    },
    Attribution {
        name: "repository_owner",
        key: "vcs.owner.name",
    },
    Attribution {
        name: "repository_url",
        key: "vcs.repository.url.full",
    },
];

/// The dimension called `name`.
pub fn find(name: &str) -> Option<&'static Attribution> {
    ATTRIBUTIONS.iter().find(|a| a.name == name)
}

/// The names, for messages.
pub fn names() -> String {
    ATTRIBUTIONS
        .iter()
        .map(|a| a.name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Attribution {
    /// SQL for the value on a row whose own attributes are the JSON column
    /// `attrs` (`e.attrs`, `ms.attrs`), falling back to its context `c`.
    /// The key is a literal of [`ATTRIBUTIONS`], never caller input.
    pub fn expr(&self, attrs: &str) -> String {
        let k = self.key;
        format!(
            "COALESCE(CAST(json_extract({attrs}, '$.\"{k}\"') AS TEXT), \
             CAST(json_extract(c.shared_attrs, '$.\"{k}\"') AS TEXT), \
             CAST(json_extract(c.resource_attrs, '$.\"{k}\"') AS TEXT))"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_plain_and_names_unique() {
        for a in ATTRIBUTIONS {
            assert!(super::super::filter::attribute_key_ok(a.key), "{}", a.key);
            assert_eq!(find(a.name), Some(a));
        }
    }
}

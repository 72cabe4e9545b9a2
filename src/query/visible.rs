//! Who may see what: the one place that turns a caller into the rows it may
//! read.
//!
//! A [`Visible`] is built only from an authenticated [`Principal`]: every
//! question takes one (inside its [`super::filter::Filter`], whose only
//! constructor asks for it), so no tool, report or page can run a query
//! without saying whose data it may see. A record is visible when its own
//! developer is one of the token's developers (or the token is bound to
//! none): a session that mixes developers shows each viewer only its own
//! records.
//!
//! The restriction is rendered here, for whichever column holds the
//! developer of the rows a query reads ([`Visible::condition`]); nothing
//! else writes it.

use std::sync::Arc;

use super::sql::{Sql, text};
use crate::auth::Principal;

/// The developers whose records a caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visible {
    /// `None`: every developer (a token bound to none); otherwise exactly
    /// these developer identities.
    developers: Option<Arc<[String]>>,
}

impl Visible {
    /// What `principal` may see: the developers its token is bound to, or
    /// all when it is bound to none.
    pub fn of(principal: &Principal) -> Visible {
        Visible {
            developers: principal.developer_restriction().map(|d| d.to_vec().into()),
        }
    }

    /// The developers this caller is limited to (`None` = all).
    pub fn developers(&self) -> Option<&[String]> {
        self.developers.as_deref()
    }

    /// True when the caller may see every developer.
    pub fn is_everyone(&self) -> bool {
        self.developers.is_none()
    }

    /// Whether a record of `developer` is visible.
    pub fn allows(&self, developer: Option<&str>) -> bool {
        match (&self.developers, developer) {
            (None, _) => true,
            (Some(devs), Some(d)) => devs.iter().any(|x| x == d),
            (Some(_), None) => false,
        }
    }

    /// Appends ` AND <column> IN (...)` (nothing for an unrestricted caller)
    /// to `sql`: `column` is the developer column of the rows being read,
    /// e.g. `c.developer` for contexts or `developer` for the histograms.
    pub fn condition(&self, sql: &mut Sql, column: &str) {
        let Some(devs) = &self.developers else {
            return;
        };
        if devs.is_empty() {
            sql.push(" AND 0");
            return;
        }
        let marks = vec!["?"; devs.len()].join(",");
        sql.bind(
            &format!(" AND {column} IN ({marks})"),
            devs.iter().map(|d| text(d)),
        );
    }
}

impl Visible {
    /// Appends ` AND <session is visible>` for sessions alias `s`: a session
    /// is visible when any of its records is (its contexts' own developers,
    /// not the developer who happened to send first).
    pub fn session_condition(&self, sql: &mut Sql) {
        if self.is_everyone() {
            return;
        }
        sql.push(" AND EXISTS (SELECT 1 FROM contexts cv WHERE cv.session_ref = s.id");
        self.condition(sql, "cv.developer");
        sql.push(")");
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Principals for query-layer tests.
    use super::Visible;
    use crate::auth::{Principal, Scope};

    /// What a read token bound to `devs` sees (`&[]` = everyone).
    pub(crate) fn visible(devs: &[&str]) -> Visible {
        Visible::of(&Principal {
            token_id: 1,
            token_name: "test".into(),
            scope: Scope::Read,
            developers: devs.iter().map(|d| d.to_string()).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::testing::visible;
    use super::*;

    #[test]
    fn renders_the_restriction_for_the_given_column() {
        let mut sql = Sql::default();
        visible(&[]).condition(&mut sql, "c.developer");
        assert_eq!(sql.text, "");
        let mut sql = Sql::default();
        visible(&["a@x", "b@x"]).condition(&mut sql, "s.developer");
        assert_eq!(sql.text, " AND s.developer IN (?,?)");
        assert_eq!(sql.params, vec![text("a@x"), text("b@x")]);
    }

    #[test]
    fn allows_only_its_developers() {
        let v = visible(&["a@x"]);
        assert!(v.allows(Some("a@x")));
        assert!(!v.allows(Some("b@x")));
        assert!(!v.allows(None));
        assert!(visible(&[]).allows(None));
    }
}

//! SQL text and its bound parameters, built together so they cannot drift:
//! every fragment of every question is an [`Sql`], and caller input only
//! ever enters one as a parameter.

use rusqlite::types::Value;

/// SQL text plus its bound parameters, built together so they cannot drift.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    /// The SQL text with `?` placeholders.
    pub text: String,
    /// The parameters, in order.
    pub params: Vec<Value>,
}

impl Sql {
    /// Appends text.
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    /// Appends text with one bound parameter per `?` in it.
    pub fn bind(&mut self, s: &str, values: impl IntoIterator<Item = Value>) -> &mut Self {
        self.text.push_str(s);
        self.params.extend(values);
        self
    }

    /// Appends another fragment.
    pub fn append(&mut self, other: Sql) -> &mut Self {
        self.text.push_str(&other.text);
        self.params.extend(other.params);
        self
    }
}

/// A text parameter.
pub fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// An integer parameter.
pub fn int(i: i64) -> Value {
    Value::Integer(i)
}

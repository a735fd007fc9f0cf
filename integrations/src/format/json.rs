//! A small builder for JSON objects that leaves out what is unknown: `None`, empty strings,
//! empty objects and empty arrays are never written.

use serde_json::{Map, Value};

/// A JSON object under construction.
#[derive(Default)]
pub(crate) struct Obj(Map<String, Value>);

impl Obj {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, unless the value is empty (`""`, `{}`, `[]`, `null`).
    pub(crate) fn put(mut self, key: &str, value: impl Into<Value>) -> Self {
        let value = value.into();
        let empty = match &value {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            Value::Bool(_) | Value::Number(_) => false,
        };
        if !empty {
            self.0.insert(key.to_owned(), value);
        }
        self
    }

    /// Sets `key` when `value` is known.
    pub(crate) fn opt<V: Into<Value>>(self, key: &str, value: Option<V>) -> Self {
        match value {
            Some(v) => self.put(key, v),
            None => self,
        }
    }

    /// Whether nothing was set.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Obj> for Value {
    fn from(obj: Obj) -> Self {
        Value::Object(obj.0)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn empty_and_unknown_values_are_left_out() {
        let v: Value = Obj::new()
            .put("a", "x")
            .put("b", "")
            .put("c", Obj::new())
            .put("d", Vec::<Value>::new())
            .opt("e", None::<u32>)
            .opt("f", Some(0u32))
            .put("g", false)
            .put("h", Value::Null)
            .into();
        assert_eq!(v, json!({"a": "x", "f": 0, "g": false}));
        assert!(Obj::new().put("x", "").is_empty());
    }
}

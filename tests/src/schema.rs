//! Structural and CEL validation of objects against schemas.

use std::{collections::BTreeMap, path::Path};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;
use thiserror::Error;

/// Why an object or file is invalid.
#[derive(Debug, Error)]
pub enum SchemaError {
    /// A file could not be read.
    #[error("reading {path}")]
    Read {
        /// File path.
        path: String,
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not the YAML it should be.
    #[error("parsing {path}")]
    Parse {
        /// File path.
        path: String,
        /// Parser error with location.
        #[source]
        source: serde_yaml::Error,
    },
    /// No committed CRD serves this apiVersion and kind.
    #[error("{file}: no CRD serves {api_version} {kind}")]
    UnknownKind {
        /// File name.
        file: String,
        /// apiVersion of the object.
        api_version: String,
        /// kind of the object.
        kind: String,
    },
    /// The object does not fit the schema.
    #[error("{file}: {}", problems.join("; "))]
    Invalid {
        /// File name.
        file: String,
        /// One line per problem, each starting with the field path.
        problems: Vec<String>,
    },
}

/// Check `value` against an OpenAPI v3 / JSON Schema subset: `type`, `properties`, `required`,
/// `additionalProperties`, `items`, `enum`, `minimum`, `maximum`, `minLength`, `maxLength`,
/// `pattern`, `minItems`, `maxItems`, `minProperties`, `maxProperties`, `nullable`,
/// `format: date-time`
/// and the Kubernetes extensions `x-kubernetes-int-or-string` and
/// `x-kubernetes-preserve-unknown-fields`. Unknown fields are errors: the apiserver would silently
/// prune them, which hides typos in examples.
pub fn check_structure(schema: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) && schema.get("type").is_some() {
            problems.push(format!("{path}: null is not allowed"));
        }
        return;
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        problems.push(format!(
            "{path}: {value} is not one of {}",
            Value::Array(options.clone())
        ));
    }
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            problems.push(format!("{path}: expected an integer or a string"));
        }
        return;
    }
    let ty = schema.get("type").and_then(Value::as_str);
    let ok = match ty {
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        _ => true,
    };
    if !ok {
        problems.push(format!(
            "{path}: expected {}, found {value}",
            ty.unwrap_or("?")
        ));
        return;
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            problems.push(format!("{path}: {n} is below the minimum {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            problems.push(format!("{path}: {n} is above the maximum {max}"));
        }
    }
    check_sizes(schema, value, path, problems);
    if schema.get("format").and_then(Value::as_str) == Some("date-time")
        && let Some(s) = value.as_str()
        && s.parse::<k8s_openapi::jiff::Timestamp>().is_err()
    {
        problems.push(format!("{path}: {s:?} is not an RFC 3339 date-time"));
    }
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for req in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(r) = req.as_str()
                    && !map.contains_key(r)
                {
                    problems.push(format!("{path}.{r}: required"));
                }
            }
            let preserve =
                schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
            for (k, v) in map {
                let child = format!("{path}.{k}");
                match (
                    props.and_then(|p| p.get(k)),
                    schema.get("additionalProperties"),
                ) {
                    (Some(s), _) => check_structure(s, v, &child, problems),
                    (None, Some(Value::Bool(false))) => {
                        problems.push(format!("{child}: unknown field"))
                    }
                    (None, Some(add @ Value::Object(_))) => {
                        check_structure(add, v, &child, problems)
                    }
                    (None, _) if props.is_some() && !preserve => {
                        problems.push(format!("{child}: unknown field"))
                    }
                    (None, _) => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    check_structure(s, v, &format!("{path}[{i}]"), problems);
                }
            }
        }
        _ => {}
    }
}

/// The size and shape keywords the apiserver enforces: `minLength`/`maxLength` (counted in
/// characters, as the apiserver counts them), `pattern`, `minItems`/`maxItems` and
/// `minProperties`/`maxProperties`.
fn check_sizes(schema: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
    let bound = |key: &str| schema.get(key).and_then(Value::as_u64);
    let mut check = |len: usize, keyword: &str, noun: &str| {
        let len = len as u64;
        if let Some(min) = bound(&format!("min{keyword}"))
            && len < min
        {
            problems.push(format!(
                "{path}: {len} {noun}, fewer than the minimum {min}"
            ));
        }
        if let Some(max) = bound(&format!("max{keyword}"))
            && len > max
        {
            problems.push(format!("{path}: {len} {noun}, more than the maximum {max}"));
        }
    };
    match value {
        Value::String(s) => check(s.chars().count(), "Length", "characters"),
        Value::Array(items) => check(items.len(), "Items", "items"),
        Value::Object(map) => check(map.len(), "Properties", "properties"),
        _ => {}
    }
    if let (Some(pattern), Some(s)) = (
        schema.get("pattern").and_then(Value::as_str),
        value.as_str(),
    ) {
        match regex::Regex::new(pattern) {
            Ok(re) if re.is_match(s) => {}
            Ok(_) => problems.push(format!("{path}: {s:?} should match '{pattern}'")),
            Err(e) => problems.push(format!("{path}: the schema's pattern {pattern:?}: {e}")),
        }
    }
}

/// The committed CRDs, by `apiVersion` and `kind`.
pub struct CrdSet {
    schemas: BTreeMap<(String, String), Value>,
}

impl CrdSet {
    /// Load every `*.yaml` CRD in `dir`.
    pub fn load(dir: &Path) -> Result<Self, SchemaError> {
        let mut schemas = BTreeMap::new();
        let entries = std::fs::read_dir(dir).map_err(|source| SchemaError::Read {
            path: dir.display().to_string(),
            source,
        })?;
        for entry in entries {
            let path = entry
                .map_err(|source| SchemaError::Read {
                    path: dir.display().to_string(),
                    source,
                })?
                .path();
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|source| SchemaError::Read {
                path: path.display().to_string(),
                source,
            })?;
            let crd: CustomResourceDefinition =
                serde_yaml::from_str(&text).map_err(|source| SchemaError::Parse {
                    path: path.display().to_string(),
                    source,
                })?;
            for v in &crd.spec.versions {
                let schema = v
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref());
                let schema = serde_json::to_value(schema).unwrap_or(Value::Null);
                schemas.insert(
                    (
                        format!("{}/{}", crd.spec.group, v.name),
                        crd.spec.names.kind.clone(),
                    ),
                    schema,
                );
            }
        }
        Ok(Self { schemas })
    }

    /// Number of (version, kind) schemas loaded.
    pub fn len(&self) -> usize {
        self.schemas.len()
    }

    /// Whether no schema was loaded.
    pub fn is_empty(&self) -> bool {
        self.schemas.is_empty()
    }

    /// Validate one object as the apiserver would on create: structure, then CEL rules with
    /// schema defaults applied.
    pub fn validate(&self, file: &str, object: &Value) -> Result<(), SchemaError> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let schema = self
            .schemas
            .get(&(api_version.clone(), kind.clone()))
            .ok_or_else(|| SchemaError::UnknownKind {
                file: file.to_owned(),
                api_version,
                kind,
            })?;
        let mut problems = Vec::new();
        // apiVersion, kind and metadata are implicit in every CRD's root schema.
        let mut body = object.clone();
        if let Some(map) = body.as_object_mut() {
            for implicit in ["apiVersion", "kind", "metadata"] {
                map.remove(implicit);
            }
        }
        check_structure(schema, &body, "", &mut problems);
        if let Err(errors) = kube::core::cel::Validator::new().validate(schema, object, None) {
            problems.extend(errors.iter().map(|e| format!("CEL {e}")));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SchemaError::Invalid {
                file: file.to_owned(),
                problems,
            })
        }
    }
}

/// Parse every YAML document of a file, skipping empty ones.
pub fn yaml_documents(path: &str, text: &str) -> Result<Vec<Value>, SchemaError> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|source| SchemaError::Parse {
            path: path.to_owned(),
            source,
        })?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn structure_table() {
        let schema = json!({"type": "object", "required": ["a"], "properties": {
            "a": {"type": "integer", "minimum": 1},
            "b": {"type": "string", "enum": ["x", "y"]},
            "c": {"type": "array", "items": {"type": "boolean"}},
            "m": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 1},
            "s": {"type": "string", "maxLength": 3, "pattern": "^[a-z]+$"},
            "u": {"type": "string", "maxLength": 3},
            "l": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2}
        }});
        let table = [
            (json!({"a": 1}), None),
            (json!({}), Some(".a: required")),
            (json!({"a": 0}), Some(".a: 0 is below the minimum 1")),
            (json!({"a": 1, "b": "z"}), Some(".b: \"z\" is not one of")),
            (
                json!({"a": 1, "c": [true, 3]}),
                Some(".c[1]: expected boolean"),
            ),
            (json!({"a": 1, "typo": 1}), Some(".typo: unknown field")),
            (
                json!({"a": 1, "m": {"k": 2}}),
                Some(".m.k: expected string"),
            ),
            (json!({"a": 1, "s": "abc", "l": ["x", "y"]}), None),
            // Characters, not bytes: three two-byte letters fit a maxLength of 3.
            (json!({"a": 1, "u": "\u{e9}\u{e9}\u{e9}"}), None),
            (
                json!({"a": 1, "s": "abcd"}),
                Some(".s: 4 characters, more than the maximum 3"),
            ),
            (
                json!({"a": 1, "s": "AB"}),
                Some(".s: \"AB\" should match '^[a-z]+$'"),
            ),
            (
                json!({"a": 1, "l": ["x", "y", "z"]}),
                Some(".l: 3 items, more than the maximum 2"),
            ),
            (
                json!({"a": 1, "l": []}),
                Some(".l: 0 items, fewer than the minimum 1"),
            ),
            (
                json!({"a": 1, "m": {"k": "v", "j": "w"}}),
                Some(".m: 2 properties, more than the maximum 1"),
            ),
        ];
        for (value, want) in table {
            let mut problems = Vec::new();
            check_structure(&schema, &value, "", &mut problems);
            match want {
                None => assert!(problems.is_empty(), "{value}: {problems:?}"),
                Some(w) => assert!(
                    problems.iter().any(|p| p.starts_with(w)),
                    "{value}: {problems:?}"
                ),
            }
        }
    }
}

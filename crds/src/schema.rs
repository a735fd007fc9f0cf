//! Schema post-processing shared by every CRD: what the API server understands, and bounds for
//! embedded Kubernetes types whose schemas come from k8s-openapi.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

/// String formats a Kubernetes API server validates (`k8s.io/apiextensions-apiserver`,
/// `validation/formats.go`), compared after removing `-` as the server does. Anything else draws
/// an `unrecognized format` warning on every apply and is ignored.
pub const STRING_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "quantity",
];

/// True when the API server knows `format` for a schema of type `ty`.
pub fn format_is_known(ty: Option<&str>, format: &str) -> bool {
    match ty {
        None | Some("string") => STRING_FORMATS.contains(&format.replace('-', "").as_str()),
        Some("integer") => matches!(format, "int32" | "int64"),
        Some("number") => matches!(format, "float" | "double"),
        _ => false,
    }
}

/// Rewrites every schema of `crd` so that it uses only formats the API server knows. schemars
/// writes Rust's integer types (`uint32`, `uint16`, `uint64`, ...); they become `int32` or
/// `int64` with the range the Rust type allows, so a value the agent could not read is refused.
pub fn normalize_formats(crd: &mut CustomResourceDefinition) {
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|v| v.open_api_v3_schema.as_mut())
        {
            for_each_schema(schema, &mut normalize_format);
        }
    }
}

fn normalize_format(schema: &mut JSONSchemaProps) {
    let Some(format) = schema.format.clone() else {
        return;
    };
    if format_is_known(schema.type_.as_deref(), &format) {
        return;
    }
    let mut integer = |bits: &str, min: f64, max: Option<f64>| {
        schema.format = Some(bits.to_owned());
        schema.minimum.get_or_insert(min);
        if let Some(max) = max {
            schema.maximum.get_or_insert(max);
        }
    };
    match (schema.type_.as_deref(), format.as_str()) {
        (Some("integer"), "uint8") => integer("int32", 0.0, Some(u8::MAX.into())),
        (Some("integer"), "uint16") => integer("int32", 0.0, Some(u16::MAX.into())),
        (Some("integer"), "uint32") => integer("int64", 0.0, Some(u32::MAX.into())),
        (Some("integer"), "uint64" | "uint") => integer("int64", 0.0, None),
        (Some("integer"), "int8") => integer("int32", i8::MIN.into(), Some(i8::MAX.into())),
        (Some("integer"), "int16") => integer("int32", i16::MIN.into(), Some(i16::MAX.into())),
        _ => schema.format = None,
    }
}

/// Calls `f` on `schema` and every schema below it: properties, items, additional properties
/// and the branches of `allOf`, `anyOf`, `oneOf` and `not`.
pub fn for_each_schema(schema: &mut JSONSchemaProps, f: &mut impl FnMut(&mut JSONSchemaProps)) {
    f(schema);
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        for_each_schema(child, f);
    }
    match schema.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(item)) => for_each_schema(item, f),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => {
            items.iter_mut().for_each(|i| for_each_schema(i, f))
        }
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(values)) = schema.additional_properties.as_mut() {
        for_each_schema(values, f);
    }
    for branches in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of] {
        for branch in branches.iter_mut().flatten() {
            for_each_schema(branch, f);
        }
    }
    if let Some(not) = schema.not.as_mut() {
        for_each_schema(not, f);
    }
}

/// Gives every string in `schema` (a schemars schema, e.g. of an embedded k8s-openapi type)
/// that has no `maxLength` and no `enum` the bound `max`, so CEL rules reaching it have a cost
/// the API server can estimate.
pub fn bound_strings(schema: &mut Value, max: u32) {
    let Value::Object(node) = schema else { return };
    let is_string = node.get("type").and_then(Value::as_str) == Some("string");
    if is_string && !node.contains_key("maxLength") && !node.contains_key("enum") {
        node.insert("maxLength".into(), Value::from(max));
    }
    if let Some(Value::Object(props)) = node.get_mut("properties") {
        props.values_mut().for_each(|p| bound_strings(p, max));
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = node.get_mut(key) {
            bound_strings(child, max);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rust_integer_formats_become_kubernetes_ones_with_their_range() {
        let schema = |ty: &str, format: &str| JSONSchemaProps {
            type_: Some(ty.into()),
            format: Some(format.into()),
            ..Default::default()
        };
        let mut root = JSONSchemaProps {
            properties: Some(
                [
                    ("a", schema("integer", "uint32")),
                    ("b", schema("integer", "uint16")),
                    ("c", schema("integer", "uint64")),
                    ("d", schema("integer", "int64")),
                    ("e", schema("number", "double")),
                    ("f", schema("string", "date-time")),
                    ("g", schema("string", "made-up")),
                    ("h", schema("number", "uint32")),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            ),
            ..Default::default()
        };
        for_each_schema(&mut root, &mut normalize_format);
        let p = root.properties.unwrap_or_default();
        let got = |k: &str| {
            let s = &p[k];
            (s.format.clone(), s.minimum, s.maximum)
        };
        assert_eq!(
            got("a"),
            (Some("int64".into()), Some(0.0), Some(4294967295.0))
        );
        assert_eq!(got("b"), (Some("int32".into()), Some(0.0), Some(65535.0)));
        assert_eq!(got("c"), (Some("int64".into()), Some(0.0), None));
        assert_eq!(got("d"), (Some("int64".into()), None, None));
        assert_eq!(got("e").0.as_deref(), Some("double"));
        assert_eq!(got("f").0.as_deref(), Some("date-time"));
        assert_eq!(got("g").0, None);
        assert_eq!(got("h").0, None);
    }

    #[test]
    fn bound_strings_reaches_nested_strings_and_leaves_enums() {
        let mut schema = json!({"type": "array", "items": {"type": "object", "properties": {
            "key": {"type": "string"},
            "effect": {"type": "string", "enum": ["NoExecute"]},
            "short": {"type": "string", "maxLength": 5},
            "n": {"type": "integer"},
        }}});
        bound_strings(&mut schema, 10);
        let p = &schema["items"]["properties"];
        assert_eq!(p["key"]["maxLength"], 10);
        assert!(p["effect"].get("maxLength").is_none());
        assert_eq!(p["short"]["maxLength"], 5);
        assert!(p["n"].get("maxLength").is_none());
    }
}

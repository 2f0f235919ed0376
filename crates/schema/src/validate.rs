//! Validating objects against a [`Schema`], reproducing kube-openapi's
//! messages as converted to `field.Error`s by the apiextensions-apiserver.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::{FieldError, join_path};
use crate::schema::{Additional, ListType, MAX_DEPTH, Schema, SchemaType};
use crate::{formats, meta};

/// Top-level fields the API server validates itself.
const ROOT_META: &[&str] = &["apiVersion", "kind", "metadata"];

impl Schema {
    /// Validates a whole custom resource. Top-level `apiVersion`, `kind` and
    /// `metadata` are left to the server, except that a schema's explicit
    /// `metadata.name`/`generateName` restrictions are enforced.
    /// `x-kubernetes-validations` (CEL) rules are not evaluated.
    pub fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut v = Validator::default();
        v.value(self, obj, "", 0, true);
        v.errors
    }
}

/// Validates a value that is not a resource root (e.g. a default).
pub(crate) fn validate_value(
    s: &Schema,
    value: &Value,
    path: &str,
    depth: usize,
) -> Vec<FieldError> {
    let mut v = Validator::default();
    v.value(s, value, path, depth, false);
    v.errors
}

#[derive(Default)]
struct Validator {
    errors: Vec<FieldError>,
}

/// The JSON type name kube-openapi infers for a value.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's `%v` for a float64 limit: integral values print without a fraction.
fn fmt_num(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// Float-backed integers (e.g. `2.0`) are accepted as integers, as in kube-openapi.
fn is_json_integer(f: f64) -> bool {
    f.is_finite() && f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0
}

fn type_matches(expected: SchemaType, v: &Value) -> bool {
    match (expected, v) {
        (SchemaType::Object, Value::Object(_))
        | (SchemaType::Array, Value::Array(_))
        | (SchemaType::String, Value::String(_))
        | (SchemaType::Boolean, Value::Bool(_))
        | (SchemaType::Number, Value::Number(_)) => true,
        (SchemaType::Integer, Value::Number(n)) => {
            !n.is_f64() || n.as_f64().is_some_and(is_json_integer)
        }
        _ => false,
    }
}

/// JSON equality where `1` and `1.0` are the same number.
pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            _ if x == y => true,
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// A key that is equal for [`json_eq`]-equal values, for hashing list items.
fn canonical(v: &Value, depth: usize) -> String {
    if depth > MAX_DEPTH {
        return String::new();
    }
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && is_json_integer(f) => fmt_num(f),
            _ => n.to_string(),
        },
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(|x| canonical(x, depth + 1)).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(o) => {
            let mut parts: Vec<String> = o
                .iter()
                .map(|(k, x)| format!("{}:{}", Value::String(k.clone()), canonical(x, depth + 1)))
                .collect();
            parts.sort();
            format!("{{{}}}", parts.join(","))
        }
        other => other.to_string(),
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

impl Validator {
    fn invalid(&mut self, path: &str, value: Value, msg: String) {
        self.errors.push(FieldError::invalid(path, value, msg));
    }

    fn value(&mut self, s: &Schema, v: &Value, path: &str, depth: usize, root: bool) {
        if depth > MAX_DEPTH {
            return;
        }
        if v.is_null() {
            self.null(s, v, path);
            return;
        }
        self.check_type(s, v, path);
        self.junctors(s, v, path, depth);
        match v {
            Value::String(st) => self.string(s, st, path),
            Value::Number(n) => self.number(s, n.as_f64().unwrap_or(0.0), v, path),
            Value::Array(a) => self.array(s, a, path, depth),
            _ => {}
        }
        self.enumeration(s, v, path);
        if let Value::Object(o) = v {
            self.object(s, o, path, depth, root);
        }
    }

    fn null(&mut self, s: &Schema, v: &Value, path: &str) {
        let typed = s.ty.is_some() || s.int_or_string;
        if typed && !s.nullable {
            let expected = expected_types(s);
            self.errors.push(FieldError::type_invalid(
                path,
                Value::String("null".into()),
                format!("{path} in body must be of type {expected}: \"null\""),
            ));
        }
        self.enumeration(s, v, path);
    }

    fn check_type(&mut self, s: &Schema, v: &Value, path: &str) {
        let ok = if s.int_or_string {
            type_matches(SchemaType::Integer, v) || v.is_string()
        } else {
            s.ty.is_none_or(|t| type_matches(t, v))
        };
        if !ok {
            let actual = json_type(v);
            self.errors.push(FieldError::type_invalid(
                path,
                Value::String(actual.into()),
                format!(
                    "{path} in body must be of type {}: \"{actual}\"",
                    expected_types(s)
                ),
            ));
        }
    }

    fn junctors(&mut self, s: &Schema, v: &Value, path: &str, depth: usize) {
        if !s.all_of.is_empty() {
            let before = self.errors.len();
            for sub in &s.all_of {
                self.errors.extend(validate_value(sub, v, path, depth + 1));
            }
            if self.errors.len() > before {
                self.invalid(
                    path,
                    v.clone(),
                    format!("{path} in body must validate all the schemas (allOf)"),
                );
            }
        }
        if !s.any_of.is_empty() {
            let results: Vec<Vec<FieldError>> = s
                .any_of
                .iter()
                .map(|sub| validate_value(sub, v, path, depth + 1))
                .collect();
            if results.iter().all(|r| !r.is_empty()) {
                self.invalid(
                    path,
                    v.clone(),
                    format!("{path} in body must validate at least one schema (anyOf)"),
                );
                self.errors.extend(fewest(results));
            }
        }
        if !s.one_of.is_empty() {
            let results: Vec<Vec<FieldError>> = s
                .one_of
                .iter()
                .map(|sub| validate_value(sub, v, path, depth + 1))
                .collect();
            let valid = results.iter().filter(|r| r.is_empty()).count();
            if valid != 1 {
                self.invalid(
                    path,
                    v.clone(),
                    format!("{path} in body must validate one and only one schema (oneOf)"),
                );
                if valid == 0 {
                    self.errors.extend(fewest(results));
                }
            }
        }
        if let Some(not) = &s.not
            && validate_value(not, v, path, depth + 1).is_empty()
        {
            self.invalid(
                path,
                v.clone(),
                format!("{path} in body must not validate the schema (not)"),
            );
        }
    }

    fn string(&mut self, s: &Schema, st: &str, path: &str) {
        let len = st.chars().count() as u64;
        if let Some(max) = s.max_length
            && len > max
        {
            self.errors.push(FieldError::too_long(path, max));
        }
        if let Some(min) = s.min_length
            && len < min
        {
            self.invalid(
                path,
                st.into(),
                format!("{path} in body should be at least {min} chars long"),
            );
        }
        if let Some(p) = &s.pattern
            && !p.regex.is_match(st)
        {
            self.invalid(
                path,
                st.into(),
                format!("{path} in body should match '{}'", p.source),
            );
        }
        if let Some(f) = &s.format
            && !formats::is_valid(f, st)
        {
            self.errors.push(FieldError::type_invalid(
                path,
                st.into(),
                format!(
                    "{path} in body must be of type {f}: {}",
                    crate::error::go_quote(st)
                ),
            ));
        }
    }

    fn number(&mut self, s: &Schema, f: f64, v: &Value, path: &str) {
        if let Some(max) = s.maximum {
            let (bad, rel) = if s.exclusive_maximum {
                (f >= max, "less than")
            } else {
                (f > max, "less than or equal to")
            };
            if bad {
                self.invalid(
                    path,
                    v.clone(),
                    format!("{path} in body should be {rel} {}", fmt_num(max)),
                );
            }
        }
        if let Some(min) = s.minimum {
            let (bad, rel) = if s.exclusive_minimum {
                (f <= min, "greater than")
            } else {
                (f < min, "greater than or equal to")
            };
            if bad {
                self.invalid(
                    path,
                    v.clone(),
                    format!("{path} in body should be {rel} {}", fmt_num(min)),
                );
            }
        }
        if let Some(factor) = s.multiple_of
            && factor > 0.0
        {
            // Same trick as go-openapi to keep fractional factors exact enough.
            let mult = if factor < 1.0 {
                (1.0 / factor) * f
            } else {
                f / factor
            };
            if mult.is_finite() && mult.fract() != 0.0 {
                self.invalid(
                    path,
                    v.clone(),
                    format!("{path} in body should be a multiple of {}", fmt_num(factor)),
                );
            }
        }
    }

    fn array(&mut self, s: &Schema, a: &[Value], path: &str, depth: usize) {
        let len = a.len() as u64;
        if let Some(max) = s.max_items
            && len > max
        {
            self.errors.push(FieldError::too_many(path, len, max));
        }
        if let Some(min) = s.min_items
            && len < min
        {
            self.invalid(
                path,
                Value::from(len),
                format!("{path} in body should have at least {min} items"),
            );
        }
        if s.unique_items && has_duplicates(a) {
            self.invalid(
                path,
                Value::Array(a.to_vec()),
                format!("{path} in body shouldn't contain duplicates"),
            );
        }
        if let Some(items) = &s.items {
            for (i, item) in a.iter().enumerate() {
                self.value(items, item, &index(path, i), depth + 1, false);
            }
        }
        match s.list_type {
            Some(ListType::Set) => self.set_duplicates(a, path),
            Some(ListType::Map) => self.map_duplicates(s, a, path),
            _ => {}
        }
    }

    fn set_duplicates(&mut self, a: &[Value], path: &str) {
        let mut seen = HashMap::new();
        for (i, item) in a.iter().enumerate() {
            if seen.insert(canonical(item, 0), i).is_some() {
                self.errors
                    .push(FieldError::duplicate(index(path, i), item.clone()));
            }
        }
    }

    fn map_duplicates(&mut self, s: &Schema, a: &[Value], path: &str) {
        let mut seen = HashMap::new();
        for (i, item) in a.iter().enumerate() {
            let Some(obj) = item.as_object() else {
                continue;
            };
            let key: Map<String, Value> = s
                .list_map_keys
                .iter()
                .filter_map(|k| Some((k.clone(), map_key_value(s, obj, k)?)))
                .collect();
            let key = Value::Object(key);
            if seen.insert(canonical(&key, 0), i).is_some() {
                self.errors.push(FieldError::duplicate(index(path, i), key));
            }
        }
    }

    fn enumeration(&mut self, s: &Schema, v: &Value, path: &str) {
        let Some(values) = &s.enum_values else {
            return;
        };
        if values.iter().any(|e| json_eq(e, v)) {
            return;
        }
        let supported: Vec<String> = values
            .iter()
            .map(|e| match e {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        self.errors
            .push(FieldError::not_supported(path, v.clone(), &supported));
    }

    fn object(&mut self, s: &Schema, o: &Map<String, Value>, path: &str, depth: usize, root: bool) {
        let n = o.len() as u64;
        if let Some(max) = s.max_properties
            && n > max
        {
            self.errors.push(FieldError::too_many(path, n, max));
        }
        if let Some(min) = s.min_properties
            && n < min
        {
            self.invalid(
                path,
                Value::from(n),
                format!("{path} in body should have at least {min} properties"),
            );
        }
        for r in &s.required {
            if !o.contains_key(r) {
                self.errors
                    .push(FieldError::required(join_path(path, r), ""));
            }
        }
        for (k, v) in o {
            if root
                && ROOT_META.contains(&k.as_str())
                && !(k == "metadata" && s.properties.contains_key(k))
            {
                continue;
            }
            let child = match s.properties.get(k) {
                Some(p) => p,
                None => match &s.additional {
                    Some(Additional::Schema(a)) => a,
                    _ => continue,
                },
            };
            self.value(child, v, &join_path(path, k), depth + 1, false);
        }
        if s.embedded_resource && !root {
            self.errors.extend(meta::validate_embedded(o, path));
        }
    }
}

/// A list-map key of an item, falling back to the key property's default.
fn map_key_value(s: &Schema, obj: &Map<String, Value>, k: &str) -> Option<Value> {
    obj.get(k).cloned().or_else(|| {
        s.items
            .as_ref()
            .and_then(|i| i.properties.get(k))
            .and_then(|p| p.default.clone())
    })
}

fn expected_types(s: &Schema) -> &'static str {
    if s.int_or_string {
        "integer,string"
    } else {
        s.ty.map(SchemaType::as_str).unwrap_or("object")
    }
}

fn fewest(results: Vec<Vec<FieldError>>) -> Vec<FieldError> {
    let mut best: Option<Vec<FieldError>> = None;
    for r in results {
        if best.as_ref().is_none_or(|b| r.len() < b.len()) {
            best = Some(r);
        }
    }
    best.unwrap_or_default()
}

fn has_duplicates(a: &[Value]) -> bool {
    let mut seen = std::collections::HashSet::new();
    a.iter().any(|v| !seen.insert(canonical(v, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(v: Value) -> Schema {
        match Schema::compile(&v) {
            Ok(s) => s,
            Err(e) => panic!("compile failed: {e:?}"),
        }
    }

    fn root(spec: Value) -> Value {
        json!({"type": "object", "properties": {"spec": spec}})
    }

    #[test]
    fn messages_match_kube() {
        let cases: Vec<(Value, Value, Vec<&str>)> = vec![
            (
                json!({"type": "object", "properties": {"replicas": {"type": "integer"}}}),
                json!({"replicas": "3"}),
                vec![
                    r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#,
                ],
            ),
            (
                json!({"type": "object", "properties": {"size": {"type": "string", "enum": ["S", "M"]}}}),
                json!({"size": "XL"}),
                vec![r#"spec.size: Unsupported value: "XL": supported values: "S", "M""#],
            ),
            (
                json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}),
                json!({}),
                vec!["spec.name: Required value"],
            ),
            (
                json!({"type": "object", "properties": {"count": {"type": "integer", "maximum": 10}}}),
                json!({"count": 11}),
                vec![
                    "spec.count: Invalid value: 11: spec.count in body should be less than or equal to 10",
                ],
            ),
            (
                json!({"type": "object", "properties": {"count": {"type": "number", "minimum": 1.5, "exclusiveMinimum": true}}}),
                json!({"count": 1.5}),
                vec![
                    "spec.count: Invalid value: 1.5: spec.count in body should be greater than 1.5",
                ],
            ),
            (
                json!({"type": "object", "properties": {"count": {"type": "integer", "multipleOf": 5}}}),
                json!({"count": 7}),
                vec!["spec.count: Invalid value: 7: spec.count in body should be a multiple of 5"],
            ),
            (
                json!({"type": "object", "properties": {"n": {"type": "string", "maxLength": 3, "minLength": 1}}}),
                json!({"n": "abcd"}),
                vec!["spec.n: Too long: may not be more than 3 bytes"],
            ),
            (
                json!({"type": "object", "properties": {"n": {"type": "string", "minLength": 2}}}),
                json!({"n": "a"}),
                vec![
                    r#"spec.n: Invalid value: "a": spec.n in body should be at least 2 chars long"#,
                ],
            ),
            (
                json!({"type": "object", "properties": {"n": {"type": "string", "pattern": "^[a-z]+$"}}}),
                json!({"n": "A1"}),
                vec![r#"spec.n: Invalid value: "A1": spec.n in body should match '^[a-z]+$'"#],
            ),
            (
                json!({"type": "object", "properties": {"t": {"type": "string", "format": "date-time"}}}),
                json!({"t": "noon"}),
                vec![
                    r#"spec.t: Invalid value: "noon": spec.t in body must be of type date-time: "noon""#,
                ],
            ),
            (
                json!({"type": "object", "properties": {"l": {"type": "array", "maxItems": 1, "items": {"type": "string"}}}}),
                json!({"l": ["a", "b"]}),
                vec!["spec.l: Too many: 2: must have at most 1 item"],
            ),
            (
                json!({"type": "object", "properties": {"l": {"type": "array", "minItems": 2, "items": {"type": "integer"}}}}),
                json!({"l": [1.5]}),
                vec![
                    "spec.l: Invalid value: 1: spec.l in body should have at least 2 items",
                    r#"spec.l[0]: Invalid value: "number": spec.l[0] in body must be of type integer: "number""#,
                ],
            ),
            (
                json!({"type": "object", "properties": {"l": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}}),
                json!({"l": ["a", "b", "a"]}),
                vec![r#"spec.l[2]: Duplicate value: "a""#],
            ),
            (
                json!({"type": "object", "properties": {"l": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "v": {"type": "integer"}}}}}}),
                json!({"l": [{"name": "a", "v": 1}, {"name": "a", "v": 2}]}),
                vec![r#"spec.l[1]: Duplicate value: {"name":"a"}"#],
            ),
            (
                json!({"type": "object", "properties": {"m": {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}}}}),
                json!({"m": {"a": "x", "b": 2}}),
                vec![
                    "spec.m: Too many: 2: must have at most 1 item",
                    r#"spec.m.b: Invalid value: "integer": spec.m.b in body must be of type string: "integer""#,
                ],
            ),
            (
                json!({"type": "object", "properties": {"p": {"x-kubernetes-int-or-string": true}}}),
                json!({"p": true}),
                vec![
                    r#"spec.p: Invalid value: "boolean": spec.p in body must be of type integer,string: "boolean""#,
                ],
            ),
            (
                json!({"type": "object", "properties": {"p": {"type": "string"}, "q": {"type": "string", "nullable": true}}}),
                json!({"p": null, "q": null}),
                vec![
                    r#"spec.p: Invalid value: "null": spec.p in body must be of type string: "null""#,
                ],
            ),
            (
                json!({"type": "object", "properties": {"i": {"type": "integer"}, "n": {"type": "number"}}}),
                json!({"i": 2.0, "n": 3}),
                vec![],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                    "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}),
                json!({"a": "x", "b": "y"}),
                vec![
                    r#"spec: Invalid value: {"a":"x","b":"y"}: spec in body must validate one and only one schema (oneOf)"#,
                ],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string"}}, "not": {"required": ["a"]}}),
                json!({"a": "x"}),
                vec![
                    r#"spec: Invalid value: {"a":"x"}: spec in body must not validate the schema (not)"#,
                ],
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "integer"}}, "anyOf": [{"properties": {"a": {"minimum": 5}}}, {"properties": {"a": {"maximum": 1}}}]}),
                json!({"a": 3}),
                vec![
                    r#"spec: Invalid value: {"a":3}: spec in body must validate at least one schema (anyOf)"#,
                    "spec.a: Invalid value: 3: spec.a in body should be greater than or equal to 5",
                ],
            ),
            (
                json!({"type": "object", "properties": {"r": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}}),
                json!({"r": {"kind": "Pod"}}),
                vec!["spec.r.apiVersion: Required value: must not be empty"],
            ),
            (
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                json!({"anything": [1, {"goes": true}]}),
                vec![],
            ),
        ];
        for (spec, value, want) in cases {
            let s = schema(root(spec.clone()));
            let got: Vec<String> = s
                .validate(&json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x"}, "spec": value}))
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, want, "schema {spec}");
        }
    }

    #[test]
    fn root_meta_is_left_to_the_server_unless_restricted() {
        let s = schema(json!({"type": "object", "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 3}}}}}));
        let obj = json!({"apiVersion": 5, "kind": [], "metadata": {"name": "long-name", "labels": {"a": "b"}}});
        let got: Vec<String> = s.validate(&obj).iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            vec!["metadata.name: Too long: may not be more than 3 bytes"]
        );
    }

    #[test]
    fn deep_values_do_not_overflow() {
        let mut v = json!(1);
        for _ in 0..2_000 {
            v = Value::Array(vec![v]);
        }
        let mut obj = Map::new();
        obj.insert("spec".into(), v);
        let s = schema(
            json!({"type": "object", "properties": {"spec": {"type": "array", "items": {"x-kubernetes-preserve-unknown-fields": true}}}}),
        );
        assert!(s.validate(&Value::Object(obj)).is_empty());
    }
}

//! Tolerant accessors for `metadata` on JSON objects (wrong types read as
//! absent, setters create `metadata` as needed) and RFC 3339 timestamps.

use serde_json::{Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

/// The `metadata` map, created (replacing a non-object) if needed; `None`
/// only when `obj` itself is not an object.
pub fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let root = obj.as_object_mut()?;
    let m = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut()
}

fn get_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    meta(obj)?.get(key)?.as_str()
}

fn set(obj: &mut Value, key: &str, v: Value) {
    if let Some(m) = meta_mut(obj) {
        m.insert(key.to_string(), v);
    }
}

/// Removes `metadata.<key>`.
pub fn remove(obj: &mut Value, key: &str) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        // retain keeps the other fields' order, unlike remove.
        m.retain(|k, _| k != key);
    }
}

macro_rules! str_field {
    ($get:ident, $set:ident, $key:literal) => {
        #[doc = concat!("`metadata.", $key, "`, if a string.")]
        pub fn $get(obj: &Value) -> Option<&str> {
            get_str(obj, $key)
        }
        #[doc = concat!("Sets `metadata.", $key, "`.")]
        pub fn $set(obj: &mut Value, v: &str) {
            set(obj, $key, Value::String(v.to_string()));
        }
    };
}

str_field!(name, set_name, "name");
str_field!(namespace, set_namespace, "namespace");
str_field!(generate_name, set_generate_name, "generateName");
str_field!(resource_version, set_resource_version, "resourceVersion");
str_field!(uid, set_uid, "uid");
str_field!(
    creation_timestamp,
    set_creation_timestamp,
    "creationTimestamp"
);
str_field!(
    deletion_timestamp,
    set_deletion_timestamp,
    "deletionTimestamp"
);

/// `metadata.generation`, 0 when absent.
pub fn generation(obj: &Value) -> i64 {
    meta(obj)
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

pub fn set_generation(obj: &mut Value, g: i64) {
    set(obj, "generation", Value::from(g));
}

fn string_map(obj: &Value, key: &str) -> Map<String, Value> {
    meta(obj)
        .and_then(|m| m.get(key))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// `metadata.labels`, empty when absent.
pub fn labels(obj: &Value) -> Map<String, Value> {
    string_map(obj, "labels")
}

pub fn set_labels(obj: &mut Value, labels: Map<String, Value>) {
    set(obj, "labels", Value::Object(labels));
}

/// `metadata.annotations`, empty when absent.
pub fn annotations(obj: &Value) -> Map<String, Value> {
    string_map(obj, "annotations")
}

pub fn set_annotations(obj: &mut Value, annotations: Map<String, Value>) {
    set(obj, "annotations", Value::Object(annotations));
}

/// One annotation's value.
pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    meta(obj)?.get("annotations")?.get(key)?.as_str()
}

/// The strings of a JSON array (non-strings skipped; not an array: none).
pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

/// `metadata.finalizers` (non-strings skipped).
pub fn finalizers(obj: &Value) -> Vec<String> {
    strings(meta(obj).and_then(|m| m.get("finalizers")))
}

/// Sets `metadata.finalizers`, removing the field when empty as Go's omitempty would.
pub fn set_finalizers(obj: &mut Value, finalizers: &[String]) {
    if finalizers.is_empty() {
        remove(obj, "finalizers");
    } else {
        set(obj, "finalizers", Value::from(finalizers.to_vec()));
    }
}

/// `metadata.ownerReferences`, empty when absent.
pub fn owner_references(obj: &Value) -> Vec<Value> {
    meta(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

pub fn set_owner_references(obj: &mut Value, refs: Vec<Value>) {
    if refs.is_empty() {
        remove(obj, "ownerReferences");
    } else {
        set(obj, "ownerReferences", Value::Array(refs));
    }
}

/// Current UTC time as RFC 3339 with seconds precision, e.g. `2026-11-22T00:00:00Z`.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format_rfc3339(secs)
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC.
pub fn format_rfc3339(unix_secs: i64) -> String {
    kplex_gocompat::format_rfc3339(unix_secs)
}

/// How Go's encoding/json names a JSON value's type in an unmarshalling error.
pub(crate) fn go_json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A `metadata` field whose JSON type is not the one ObjectMeta's Go field has.
struct Mismatch<'a> {
    field: &'a str,
    got: &'a Value,
    /// The Go type the value should have had (`map[string]string`, `string`, …).
    want: &'static str,
}

/// The decoding error kube-apiserver gives when `metadata` does not have ObjectMeta's types
/// (strings, string maps, string lists, lists of objects): e.g. `json: cannot unmarshal
/// object into Go struct field ObjectMeta.metadata.annotations of type string`.
pub fn type_error(metadata: &Value) -> Option<String> {
    let m = mismatch(metadata)?;
    Some(format!(
        "json: cannot unmarshal {} into Go struct field ObjectMeta.metadata.{} of type {}",
        go_json_type(m.got),
        m.field,
        m.want
    ))
}

/// The same mismatch as kube's unstructured converter words it, which is what a strategic
/// merge patch meets (kube applies it to a map, then converts the map to the typed object):
/// e.g. `cannot restore map from string`.
pub fn restore_error(metadata: &Value) -> Option<String> {
    let m = mismatch(metadata)?;
    let got = match m.got {
        Value::Null => "invalid",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    };
    Some(match m.want {
        w if w.starts_with("map") => format!("cannot restore map from {got}"),
        w if w.starts_with("[]") => format!("cannot restore slice from {got}"),
        w if w.starts_with("v1.") => format!("cannot restore struct from {got}"),
        w => format!("cannot convert {got} to {w}"),
    })
}

fn mismatch(metadata: &Value) -> Option<Mismatch<'_>> {
    let err = |field, got, want| Some(Mismatch { field, got, want });
    let m = metadata.as_object()?;
    for (field, v) in m {
        if v.is_null() {
            continue;
        }
        let field = field.as_str();
        match field {
            "name" | "generateName" | "namespace" | "uid" | "resourceVersion" | "selfLink"
            | "creationTimestamp" | "deletionTimestamp"
                if !v.is_string() =>
            {
                return err(field, v, "string");
            }
            "generation" | "deletionGracePeriodSeconds" if !v.is_i64() => {
                return err(field, v, "int64");
            }
            "labels" | "annotations" => {
                let Some(map) = v.as_object() else {
                    return err(field, v, "map[string]string");
                };
                if let Some(bad) = map.values().find(|x| !x.is_string() && !x.is_null()) {
                    return err(field, bad, "string");
                }
            }
            "finalizers" => {
                let Some(list) = v.as_array() else {
                    return err(field, v, "[]string");
                };
                if let Some(bad) = list.iter().find(|x| !x.is_string()) {
                    return err(field, bad, "string");
                }
            }
            "ownerReferences" | "managedFields" => {
                let Some(list) = v.as_array() else {
                    return err(field, v, "[]v1.OwnerReference");
                };
                if let Some(bad) = list.iter().find(|x| !x.is_object()) {
                    return err(field, bad, "v1.OwnerReference");
                }
            }
            _ => {}
        }
    }
    None
}

/// A JSON value as Go's `%+v` prints the `map[string]interface{}` it decodes to (kube puts
/// a patch in its error messages this way): `map[metadata:map[labels:invalid]]`.
pub fn go_format(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_format).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            // Go prints map keys sorted; serde_json's map may keep insertion order.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_format(&map[k])))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// Sets `obj.a.b.c = value`, creating objects on the way.
pub fn set_path(obj: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for p in parents {
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        cur = map
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
    }
    if let Some(map) = cur.as_object_mut() {
        map.insert(last.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_795_305_600, "2026-11-22T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (-1, "1969-12-31T23:59:59Z"),
        ];
        for (secs, want) in cases {
            assert_eq!(format_rfc3339(secs), want);
        }
        assert_eq!(now_rfc3339().len(), 20);
        // Extreme inputs must not panic.
        let _ = format_rfc3339(i64::MAX / 4);
    }

    #[test]
    fn accessors_tolerate_wrong_types() {
        let mut o = json!({"metadata": {"name": 5, "labels": "x", "generation": "1"}});
        assert_eq!(name(&o), None);
        assert!(labels(&o).is_empty());
        assert_eq!(generation(&o), 0);
        set_name(&mut o, "a");
        assert_eq!(name(&o), Some("a"));
        let mut bad = json!({"metadata": []});
        set_namespace(&mut bad, "ns");
        assert_eq!(namespace(&bad), Some("ns"));
        let mut not_obj = json!(3);
        set_name(&mut not_obj, "x");
        assert_eq!(not_obj, json!(3));
        set_finalizers(&mut o, &["a/b".to_string()]);
        assert_eq!(finalizers(&o), vec!["a/b"]);
        set_finalizers(&mut o, &[]);
        assert!(o["metadata"].get("finalizers").is_none());
        set_generation(&mut o, 2);
        assert_eq!(generation(&o), 2);
    }

    #[test]
    fn metadata_types_are_checked_as_go_decodes_them() {
        use serde_json::json;
        assert_eq!(
            type_error(&json!({"name": "a", "labels": {"a": "b"}, "finalizers": ["x"]})),
            None
        );
        assert_eq!(
            type_error(&json!({"annotations": {"a": {"b": 1}}})).as_deref(),
            Some(
                "json: cannot unmarshal object into Go struct field ObjectMeta.metadata.annotations of type string"
            )
        );
        assert!(type_error(&json!({"name": 5})).is_some());
        assert!(type_error(&json!({"labels": []})).is_some());
        assert!(type_error(&json!({"generation": 1.5})).is_some());
        assert_eq!(
            restore_error(&json!({"labels": "invalid"})).as_deref(),
            Some("cannot restore map from string")
        );
        assert_eq!(
            go_format(&json!({"metadata": {"labels": "invalid", "a": [1, null, true]}})),
            "map[metadata:map[a:[1 <nil> true] labels:invalid]]"
        );
    }
}

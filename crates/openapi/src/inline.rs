//! Structural, `$ref`-free schemas of built-in kinds for `kplex-schema`.
//!
//! Only what validation and pruning read is kept: types, formats,
//! properties, items, additionalProperties and list types. Descriptions are
//! dropped (documents carry them), and so is `required`: kube's built-in
//! validation decides required-ness with its own messages, and Go decoding
//! accepts `null` anywhere, hence `nullable: true` below the root.

use serde_json::{Map, Value, json};

use crate::builtin::{builtin, node_ref};

const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const JSON: &str = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON";

/// Free-form objects: kept as they are, unknown fields and all.
const FREE_OBJECTS: &[&str] = &[
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
];

/// kube-apiserver nests objects far less deep; this only stops runaway input.
const MAX_DEPTH: usize = 64;

pub(crate) fn builtin_schema(group: &str, version: &str, kind: &str) -> Option<Value> {
    let b = builtin();
    let k = b.kind(group, version, kind)?;
    let root = b.schemas.get(&k.schema)?;
    let mut stack = vec![k.schema.clone()];
    let Value::Object(mut out) = inline(root, &mut stack, 0) else {
        return None;
    };
    out.remove("nullable");
    // Root metadata is implicitly ObjectMeta for kplex-schema, which rejects
    // a schema that narrows more than name/generateName there.
    if let Some(Value::Object(props)) = out.get_mut("properties")
        && props.contains_key("metadata")
    {
        props.insert("metadata".into(), json!({"type": "object"}));
    }
    Some(Value::Object(out))
}

fn preserve_any() -> Value {
    json!({"nullable": true, "x-kubernetes-preserve-unknown-fields": true})
}

fn free_object() -> Value {
    json!({"type": "object", "nullable": true, "x-kubernetes-preserve-unknown-fields": true})
}

fn named(
    name: &str,
    siblings: &Map<String, Value>,
    stack: &mut Vec<String>,
    depth: usize,
) -> Value {
    let mut v = match name {
        INT_OR_STRING | QUANTITY => {
            json!({"nullable": true, "x-kubernetes-int-or-string": true})
        }
        JSON => preserve_any(),
        n if FREE_OBJECTS.contains(&n) => free_object(),
        // Recursive types (JSONSchemaProps) are cut off as free-form objects.
        n if stack.iter().any(|s| s == n) => free_object(),
        n => match builtin().schemas.get(n) {
            Some(target) => {
                stack.push(n.to_string());
                let v = inline(target, stack, depth + 1);
                stack.pop();
                v
            }
            None => preserve_any(),
        },
    };
    // Extensions set at the use site (list types) apply to the inlined node.
    if let Value::Object(o) = &mut v {
        for (k, sv) in siblings {
            if k.starts_with("x-kubernetes-list") {
                o.insert(k.clone(), sv.clone());
            }
        }
    }
    v
}

fn inline(v: &Value, stack: &mut Vec<String>, depth: usize) -> Value {
    let Value::Object(node) = v else {
        return preserve_any();
    };
    if depth > MAX_DEPTH {
        return free_object();
    }
    if let Some(name) = node_ref(node) {
        return named(name, node, stack, depth);
    }
    if node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        return json!({"nullable": true, "x-kubernetes-int-or-string": true});
    }
    let Some(ty) = node.get("type").and_then(Value::as_str) else {
        // Untyped unions (oneOf/anyOf, e.g. JSONSchemaPropsOrArray) are free-form.
        return preserve_any();
    };
    let mut out = Map::new();
    out.insert("type".into(), ty.into());
    if let Some(f) = node.get("format") {
        out.insert("format".into(), f.clone());
    }
    out.insert("nullable".into(), true.into());
    if let Some(Value::Object(props)) = node.get("properties") {
        let mut p = Map::new();
        for (k, child) in props {
            p.insert(k.clone(), inline(child, stack, depth + 1));
        }
        out.insert("properties".into(), Value::Object(p));
    }
    match node.get("additionalProperties") {
        Some(Value::Bool(true)) => {
            out.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
        }
        Some(a @ Value::Object(_)) => {
            out.insert("additionalProperties".into(), inline(a, stack, depth + 1));
        }
        _ => {}
    }
    if let Some(items) = node.get("items") {
        out.insert("items".into(), inline(items, stack, depth + 1));
    } else if ty == "array" {
        out.insert("items".into(), preserve_any());
    }
    for k in ["x-kubernetes-list-type", "x-kubernetes-list-map-keys"] {
        if let Some(x) = node.get(k) {
            out.insert(k.into(), x.clone());
        }
    }
    // An object with neither properties nor additionalProperties is free-form in Go.
    if ty == "object"
        && !out.contains_key("properties")
        && !out.contains_key("additionalProperties")
    {
        out.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
    }
    Value::Object(out)
}

//! A Swagger 2.0 document derived from the v3 documents, for clients that
//! still ask for `/openapi/v2`.

use serde_json::{Map, Value, json};

use crate::ResourceSpec;
use crate::builtin::REF_PREFIX;

const V2_PREFIX: &str = "#/definitions/";

/// See [`crate::v2_document`].
pub(crate) fn document(resources: &[ResourceSpec]) -> Value {
    let mut gvs: Vec<(&str, &str)> = Vec::new();
    for r in resources {
        if !gvs.contains(&(r.group.as_str(), r.version.as_str())) {
            gvs.push((&r.group, &r.version));
        }
    }
    let mut paths = Map::new();
    let mut definitions = Map::new();
    // CRD kinds' schemas are filtered for kubectl's client-side validation, as kube does.
    let custom: Vec<String> = resources
        .iter()
        .filter(|r| r.schema.is_some())
        .map(|r| crate::v3::kind_schema(r).0)
        .collect();
    for (g, v) in gvs {
        let doc = crate::v3::document(g, v, resources);
        if let Some(Value::Object(p)) = doc.get("paths") {
            for (path, item) in p {
                paths.insert(path.clone(), path_item(item));
            }
        }
        if let Some(Value::Object(s)) = doc.pointer("/components/schemas") {
            for (name, schema) in s {
                definitions.entry(name.clone()).or_insert_with(|| {
                    if custom.contains(name) {
                        schema_v2(&for_kubectl(schema))
                    } else {
                        schema_v2(schema)
                    }
                });
            }
        }
    }
    definitions.sort_keys();
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}
        },
        "security": [{"BearerToken": []}],
    })
}

fn path_item(item: &Value) -> Value {
    let Value::Object(item) = item else {
        return item.clone();
    };
    let mut out = Map::new();
    for (k, v) in item {
        let converted = if k == "parameters" {
            params(v)
        } else {
            operation(v)
        };
        out.insert(k.clone(), converted);
    }
    Value::Object(out)
}

/// v3 parameters carry a `schema`; v2 ones have the type inline.
fn params(v: &Value) -> Value {
    let Value::Array(ps) = v else {
        return v.clone();
    };
    Value::Array(
        ps.iter()
            .map(|p| {
                let mut p = p.as_object().cloned().unwrap_or_default();
                if let Some(Value::Object(s)) = p.remove("schema") {
                    p.extend(s);
                }
                Value::Object(p)
            })
            .collect(),
    )
}

fn operation(v: &Value) -> Value {
    let Value::Object(op) = v else {
        return v.clone();
    };
    let mut out = Map::new();
    let mut parameters = match op.get("parameters") {
        Some(p) => params(p).as_array().cloned().unwrap_or_default(),
        None => Vec::new(),
    };
    let mut consumes: Vec<Value> = Vec::new();
    if let Some(Value::Object(content)) = op.get("requestBody").and_then(|b| b.get("content")) {
        consumes = content.keys().map(|k| Value::String(k.clone())).collect();
        if let Some(schema) = content.values().next().and_then(|c| c.get("schema")) {
            parameters.insert(
                0,
                json!({"name": "body", "in": "body", "required": true, "schema": schema_v2(schema)}),
            );
        }
    }
    for (k, val) in op {
        match k.as_str() {
            "parameters" | "requestBody" => {}
            "responses" => {
                out.insert("responses".into(), responses(val));
            }
            _ => {
                out.insert(k.clone(), val.clone());
            }
        }
    }
    if !consumes.is_empty() {
        out.insert("consumes".into(), Value::Array(consumes));
    }
    out.insert(
        "produces".into(),
        json!([
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf"
        ]),
    );
    out.insert("schemes".into(), json!(["https"]));
    if !parameters.is_empty() {
        out.insert("parameters".into(), Value::Array(parameters));
    }
    Value::Object(out)
}

fn responses(v: &Value) -> Value {
    let Value::Object(rs) = v else {
        return v.clone();
    };
    let mut out = Map::new();
    for (code, r) in rs {
        let mut o = Map::new();
        if let Some(d) = r.get("description") {
            o.insert("description".into(), d.clone());
        }
        if let Some(Value::Object(content)) = r.get("content")
            && let Some(s) = content.values().next().and_then(|c| c.get("schema"))
        {
            o.insert("schema".into(), schema_v2(s));
        }
        out.insert(code.clone(), Value::Object(o));
    }
    Value::Object(out)
}

/// A CRD kind's schema as kube's v2 document publishes it (`buildKubeNative` and
/// `ToStructuralOpenAPIV2`): kubectl's client-side validation — what a `kind: List` of
/// custom resources meets — treats every listed property set as closed, so where a schema
/// preserves unknown fields kube lists no properties, and it drops what v2 cannot say
/// (junctors, nullable types, arrays without items).
fn for_kubectl(schema: &Value) -> Value {
    let preserves =
        |s: &Value| s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if preserves(schema) {
        let mut root = Map::new();
        root.insert("type".into(), "object".into());
        if let Some(gvk) = schema.get("x-kubernetes-group-version-kind") {
            root.insert("x-kubernetes-group-version-kind".into(), gvk.clone());
        }
        return Value::Object(root);
    }
    let mut out = schema.clone();
    filter_for_kubectl(&mut out);
    out
}

fn filter_for_kubectl(s: &mut Value) {
    let Some(o) = s.as_object_mut() else {
        return;
    };
    for junctor in ["allOf", "oneOf", "anyOf", "not"] {
        // A lone `allOf` holding a `$ref` is how a described reference is spelled; keep it.
        let lone_ref = junctor == "allOf"
            && matches!(o.get("allOf"), Some(Value::Array(a)) if a.len() == 1 && a[0].get("$ref").is_some());
        if !lone_ref {
            o.remove(junctor);
        }
    }
    if o.remove("nullable") == Some(Value::Bool(true)) {
        for k in ["type", "items", "properties"] {
            o.remove(k);
        }
    }
    if o.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        o.remove("items");
        o.remove("properties");
    }
    if !o.contains_key("items") && o.get("type").and_then(Value::as_str) == Some("array") {
        o.remove("type");
    }
    let nullable: Vec<String> = match o.get("properties") {
        Some(Value::Object(props)) => props
            .iter()
            .filter(|(_, p)| p.get("nullable") == Some(&Value::Bool(true)))
            .map(|(k, _)| k.clone())
            .collect(),
        _ => Vec::new(),
    };
    if let Some(Value::Array(required)) = o.get_mut("required") {
        required.retain(|r| r.as_str().is_none_or(|r| !nullable.iter().any(|n| n == r)));
        if required.is_empty() {
            o.remove("required");
        }
    }
    if let Some(Value::Object(props)) = o.get_mut("properties") {
        props.values_mut().for_each(filter_for_kubectl);
    }
    for k in ["items", "additionalProperties"] {
        if let Some(child) = o.get_mut(k) {
            filter_for_kubectl(child);
        }
    }
}

/// Rewrites a v3 schema the way kube's v2 spec spells it: `$ref`s into
/// `#/definitions/`, described references as `$ref` with siblings,
/// int-or-string as `type: string, format: int-or-string`, no `nullable`.
fn schema_v2(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut out = Map::new();
            let single_ref = match o.get("allOf") {
                Some(Value::Array(a)) if a.len() == 1 => {
                    a.first().and_then(|x| x.get("$ref")).cloned()
                }
                _ => None,
            };
            for (k, child) in o {
                match k.as_str() {
                    "$ref" if child.is_string() => {
                        let r = child.as_str().unwrap_or_default();
                        let name = r.strip_prefix(REF_PREFIX).unwrap_or(r);
                        out.insert(k.clone(), format!("{V2_PREFIX}{name}").into());
                    }
                    "allOf" if single_ref.is_some() => {
                        if let Some(r) = single_ref.as_ref().and_then(Value::as_str) {
                            let name = r.strip_prefix(REF_PREFIX).unwrap_or(r);
                            out.insert("$ref".into(), format!("{V2_PREFIX}{name}").into());
                        }
                    }
                    "nullable" => {}
                    "x-kubernetes-int-or-string" => {
                        out.insert("type".into(), "string".into());
                        out.insert("format".into(), "int-or-string".into());
                    }
                    _ => {
                        out.insert(k.clone(), schema_v2(child));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(schema_v2).collect()),
        other => other.clone(),
    }
}

//! Conversion between the served versions of APIExport and APIBinding (v1alpha1 ⇄ v1alpha2),
//! applied when an object is read at a version other than the one it was written at.
//!
//! v1alpha1 exports list `latestResourceSchemas`; v1alpha2 lists `resources` with group and
//! storage. v1alpha1 permission claims have `all`; v1alpha2 claims have `verbs` and a
//! `selector`.

use serde_json::{Value, json};

use super::{GROUP, V2};

fn set_api_version(obj: &mut Value, version: &str) -> bool {
    let want = format!("{GROUP}/{version}");
    if obj.get("apiVersion").and_then(Value::as_str) == Some(want.as_str()) {
        return false;
    }
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), Value::String(want));
    }
    true
}

/// `<prefix>.<plural>.<group>` → (plural, group).
pub fn schema_resource(schema: &str) -> Option<(&str, &str)> {
    let (_, rest) = schema.split_once('.')?;
    rest.split_once('.')
}

fn claims_mut<'a>(obj: &'a mut Value, path: &str) -> impl Iterator<Item = &'a mut Value> {
    obj.pointer_mut(path)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

fn claim_to_v2(claim: &mut Value, with_selector: bool) {
    let Some(m) = claim.as_object_mut() else {
        return;
    };
    let all = m.remove("all").and_then(|a| a.as_bool()).unwrap_or(true);
    m.remove("resourceSelector");
    m.entry("verbs").or_insert_with(|| json!(["*"]));
    if with_selector {
        m.entry("selector")
            .or_insert_with(|| json!({"matchAll": all}));
    }
}

fn claim_to_v1(claim: &mut Value) {
    let Some(m) = claim.as_object_mut() else {
        return;
    };
    m.remove("verbs");
    if let Some(selector) = m.remove("selector") {
        m.insert(
            "all".into(),
            Value::Bool(selector.get("matchAll").and_then(Value::as_bool) == Some(true)),
        );
    }
}

/// Converts an APIExport to `version`.
pub fn export(obj: &mut Value, version: &str) {
    if !set_api_version(obj, version) {
        return;
    }
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if version == V2 {
        if let Some(Value::Array(schemas)) = spec.remove("latestResourceSchemas") {
            let resources: Vec<Value> = schemas
                .iter()
                .filter_map(Value::as_str)
                .map(|schema| {
                    let (plural, group) = schema_resource(schema).unwrap_or((schema, ""));
                    json!({"name": plural, "group": group, "schema": schema, "storage": {"crd": {}}})
                })
                .collect();
            spec.insert("resources".into(), Value::Array(resources));
        }
        for c in claims_mut(obj, "/spec/permissionClaims") {
            claim_to_v2(c, false);
        }
    } else {
        if let Some(Value::Array(resources)) = spec.remove("resources") {
            let schemas: Vec<Value> = resources
                .iter()
                .filter_map(|r| r.get("schema").cloned())
                .collect();
            spec.insert("latestResourceSchemas".into(), Value::Array(schemas));
        }
        for c in claims_mut(obj, "/spec/permissionClaims") {
            claim_to_v1(c);
        }
    }
}

/// Converts an APIBinding to `version`.
pub fn binding(obj: &mut Value, version: &str) {
    if !set_api_version(obj, version) {
        return;
    }
    for (path, with_selector) in [
        ("/spec/permissionClaims", true),
        ("/status/appliedPermissionClaims", true),
        ("/status/exportPermissionClaims", false),
    ] {
        for c in claims_mut(obj, path) {
            if version == V2 {
                claim_to_v2(c, with_selector);
            } else {
                claim_to_v1(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::V1;
    use super::*;

    #[test]
    fn exports_round_trip_between_versions() {
        let mut e = json!({"apiVersion": "apis.kcp.io/v1alpha1", "kind": "APIExport",
            "spec": {"latestResourceSchemas": ["v1.widgets.example.dev"],
                     "permissionClaims": [{"group": "", "resource": "configmaps", "all": true}]}});
        export(&mut e, V2);
        assert_eq!(
            e["spec"]["resources"],
            json!([{"name": "widgets", "group": "example.dev", "schema": "v1.widgets.example.dev", "storage": {"crd": {}}}])
        );
        assert_eq!(e["spec"]["permissionClaims"][0]["verbs"], json!(["*"]));
        export(&mut e, V1);
        assert_eq!(
            e["spec"]["latestResourceSchemas"],
            json!(["v1.widgets.example.dev"])
        );
        assert_eq!(e["apiVersion"], "apis.kcp.io/v1alpha1");
    }

    #[test]
    fn binding_claims_gain_verbs_and_selector() {
        let mut b = json!({"apiVersion": "apis.kcp.io/v1alpha1", "kind": "APIBinding",
            "spec": {"permissionClaims": [{"resource": "configmaps", "all": true, "state": "Accepted"}]}});
        binding(&mut b, V2);
        assert_eq!(
            b["spec"]["permissionClaims"][0],
            json!({"resource": "configmaps", "state": "Accepted", "verbs": ["*"], "selector": {"matchAll": true}})
        );
        binding(&mut b, V1);
        assert_eq!(
            b["spec"]["permissionClaims"][0],
            json!({"resource": "configmaps", "state": "Accepted", "all": true})
        );
    }
}

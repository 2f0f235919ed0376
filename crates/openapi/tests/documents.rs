//! The documents as kubectl reads them.

use kplex_openapi::{ResourceSpec, document_hash, group_version_document, v2_document};
use serde_json::{Value, json};

fn builtin(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> ResourceSpec {
    ResourceSpec {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        namespaced,
        status: true,
        scale: kind == "Deployment",
        strategic_patch: true,
        schema: None,
    }
}

fn widget() -> ResourceSpec {
    ResourceSpec {
        group: "example.com".into(),
        version: "v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
        namespaced: true,
        status: true,
        scale: false,
        strategic_patch: false,
        schema: Some(json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "description": "Widget spec.", "properties": {
                    "size": {"type": "integer", "description": "How big."}
                }},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }
        })),
    }
}

/// kubectl's field-validation probe: a PATCH tagged with the GVK that takes `fieldValidation`.
fn patch_op<'a>(doc: &'a Value, group: &str, version: &str, kind: &str) -> Option<&'a Value> {
    let want = json!({"group": group, "kind": kind, "version": version});
    doc["paths"].as_object()?.values().find_map(|p| {
        let op = p.get("patch")?;
        (op["x-kubernetes-group-version-kind"] == want).then_some(op)
    })
}

fn has_param(op: &Value, name: &str) -> bool {
    op["parameters"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "query"))
}

fn schema_by_gvk<'a>(doc: &'a Value, group: &str, version: &str, kind: &str) -> Option<&'a Value> {
    let want = json!({"group": group, "kind": kind, "version": version});
    doc["components"]["schemas"]
        .as_object()?
        .values()
        .find(|s| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|g| g.contains(&want))
        })
}

/// Follows `$ref`/`allOf` like kubectl explain does.
fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    let r = s["$ref"]
        .as_str()
        .or_else(|| s["allOf"][0]["$ref"].as_str());
    match r.and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &doc["components"]["schemas"][name],
        None => s,
    }
}

fn walk<'a>(doc: &'a Value, root: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = root;
    for p in path {
        let mut s = resolve(doc, cur);
        if s["type"] == "array" {
            s = resolve(doc, &s["items"]);
        }
        cur = s["properties"].get(*p)?;
    }
    Some(cur)
}

fn all_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, c) in o {
                match (k.as_str(), c) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => all_refs(c, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| all_refs(c, out)),
        _ => {}
    }
}

#[test]
fn apps_v1_deployment_document() {
    let resources = [
        builtin("apps", "v1", "Deployment", "deployments", true),
        builtin("", "v1", "ConfigMap", "configmaps", true),
    ];
    let doc = group_version_document("apps", "v1", &resources);
    assert_eq!(doc["openapi"], "3.0.0");
    assert!(
        doc["paths"]
            .get("/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
            .is_some()
    );
    assert!(doc["paths"].get("/apis/apps/v1/deployments").is_some());
    assert!(
        doc["paths"]
            .get("/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale")
            .is_some()
    );
    // Other group-versions are not in this document.
    assert!(
        doc["paths"]
            .get("/api/v1/namespaces/{namespace}/configmaps")
            .is_none()
    );

    let op = patch_op(&doc, "apps", "v1", "Deployment").expect("patch op");
    assert!(has_param(op, "fieldValidation"));
    assert!(has_param(op, "force"));
    assert_eq!(op["x-kubernetes-action"], "patch");
    let content = op["requestBody"]["content"].as_object().expect("content");
    for t in [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    ] {
        assert!(content.contains_key(t), "{t}");
    }

    let dep = schema_by_gvk(&doc, "apps", "v1", "Deployment").expect("Deployment schema");
    let containers =
        walk(&doc, dep, &["spec", "template", "spec", "containers"]).expect("containers");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    let image = walk(
        &doc,
        dep,
        &["spec", "template", "spec", "containers", "image"],
    )
    .expect("image");
    assert!(
        image["description"]
            .as_str()
            .is_some_and(|d| d.contains("image"))
    );
    let annotations = walk(&doc, dep, &["metadata", "annotations"]).expect("annotations");
    assert_eq!(annotations["type"], "object");

    // Every reference resolves within the document.
    let mut refs = Vec::new();
    all_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r.strip_prefix("#/components/schemas/").expect("ref prefix");
        assert!(doc["components"]["schemas"].get(name).is_some(), "{r}");
    }
    assert!(schema_by_gvk(&doc, "apps", "v1", "DeploymentList").is_some());
    assert!(
        doc["components"]["schemas"]
            .get("io.k8s.apimachinery.pkg.apis.meta.v1.Status")
            .is_some()
    );
}

#[test]
fn core_group_paths() {
    let resources = [
        builtin("", "v1", "ConfigMap", "configmaps", true),
        builtin("", "v1", "Namespace", "namespaces", false),
    ];
    let doc = group_version_document("", "v1", &resources);
    assert!(
        doc["paths"]
            .get("/api/v1/namespaces/{namespace}/configmaps")
            .is_some()
    );
    assert!(doc["paths"].get("/api/v1/namespaces/{name}").is_some());
    assert!(
        doc["paths"]
            .get("/api/v1/namespaces/{name}/status")
            .is_some()
    );
    let op = patch_op(&doc, "", "v1", "ConfigMap").expect("patch op");
    assert!(has_param(op, "fieldValidation"));
    assert!(
        doc["components"]["schemas"]
            .get("io.k8s.api.core.v1.ConfigMap")
            .is_some()
    );
}

#[test]
fn custom_resource_document() {
    let doc = group_version_document("example.com", "v1", &[widget()]);
    let w = &doc["components"]["schemas"]["com.example.v1.Widget"];
    assert_eq!(
        w["x-kubernetes-group-version-kind"],
        json!([{"group": "example.com", "kind": "Widget", "version": "v1"}])
    );
    assert_eq!(
        w["properties"]["spec"]["properties"]["size"]["type"],
        "integer"
    );
    assert_eq!(
        w["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert!(
        doc["components"]["schemas"]
            .get("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
            .is_some()
    );
    let op = patch_op(&doc, "example.com", "v1", "Widget").expect("patch op");
    assert!(has_param(op, "fieldValidation"));
    let content = op["requestBody"]["content"].as_object().expect("content");
    assert!(!content.contains_key("application/strategic-merge-patch+json"));
    assert!(content.contains_key("application/merge-patch+json"));
    assert!(
        doc["paths"]
            .get("/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/status")
            .is_some()
    );
    let size = walk(&doc, w, &["spec", "size"]).expect("size");
    assert_eq!(size["description"], "How big.");
}

#[test]
fn v2_and_hash() {
    let resources = [
        builtin("apps", "v1", "Deployment", "deployments", true),
        builtin("", "v1", "ConfigMap", "configmaps", true),
        widget(),
    ];
    let doc = v2_document(&resources);
    assert_eq!(doc["swagger"], "2.0");
    let defs = doc["definitions"].as_object().expect("definitions");
    assert!(defs.contains_key("io.k8s.api.apps.v1.Deployment"));
    assert!(defs.contains_key("com.example.v1.Widget"));
    assert!(
        doc["paths"]
            .get("/api/v1/namespaces/{namespace}/configmaps")
            .is_some()
    );
    let mut refs = Vec::new();
    all_refs(&doc, &mut refs);
    for r in refs {
        let name = r.strip_prefix("#/definitions/").expect("v2 ref prefix");
        assert!(defs.contains_key(name), "{r}");
    }
    let patch = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert!(
        patch["consumes"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("application/strategic-merge-patch+json")))
    );

    let a = group_version_document("apps", "v1", &resources);
    let b = group_version_document("apps", "v1", &resources);
    let h = document_hash(&a);
    assert_eq!(h, document_hash(&b));
    assert_eq!(h.len(), 32);
    assert!(
        h.chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    );
    assert_ne!(
        h,
        document_hash(&group_version_document("", "v1", &resources))
    );
}

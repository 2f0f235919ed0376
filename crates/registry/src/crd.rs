//! CustomResourceDefinitions: validation of the CRD itself, and turning an established CRD
//! into resource descriptions the generic registry serves.

use std::sync::Arc;

use kplex_apimachinery::status::BadValue;
use kplex_apimachinery::version::compare_versions;
use kplex_apimachinery::{StatusCause, meta};
use kplex_schema::Schema;
use serde_json::Value;

use crate::catalog::{ALL_VERBS, Cell, Column, Origin, ResourceDesc, ScalePaths};

/// The finalizer that makes CRD deletion remove the custom resources first.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, p| v.get(*p))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// kube-apiserver's checks on a CRD object (the subset users hit).
pub fn validate(crd: &Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let group = s(crd, &["spec", "group"]);
    let plural = s(crd, &["spec", "names", "plural"]);
    let kind = s(crd, &["spec", "names", "kind"]);
    let name = meta::name(crd).unwrap_or("");
    if group.is_empty() {
        out.push(StatusCause::required("spec.group", ""));
    } else if !group.contains('.') {
        out.push(StatusCause::invalid(
            "spec.group",
            BadValue::Str(group),
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        out.push(StatusCause::required("spec.names.plural", ""));
    }
    if kind.is_empty() {
        out.push(StatusCause::required("spec.names.kind", ""));
    }
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        out.push(StatusCause::invalid(
            "metadata.name",
            BadValue::Str(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    match s(crd, &["spec", "scope"]) {
        "Namespaced" | "Cluster" => {}
        other => out.push(StatusCause::not_supported(
            "spec.scope",
            BadValue::Str(other),
            &["Cluster", "Namespaced"],
        )),
    }
    let versions = crd
        .get("spec")
        .and_then(|s| s.get("versions"))
        .and_then(Value::as_array);
    let Some(versions) = versions.filter(|v| !v.is_empty()) else {
        out.push(StatusCause::invalid(
            "spec.versions",
            BadValue::Json(&Value::Array(vec![])),
            "must have exactly one version marked as storage version",
        ));
        return out;
    };
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if storage != 1 {
        out.push(StatusCause::invalid(
            "spec.versions",
            BadValue::Json(&Value::Array(versions.clone())),
            "must have exactly one version marked as storage version",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        let vname = s(v, &["name"]);
        if vname.is_empty() {
            out.push(StatusCause::required(
                &format!("spec.versions[{i}].name"),
                "",
            ));
        }
        match v.get("schema").and_then(|s| s.get("openAPIV3Schema")) {
            None => out.push(StatusCause::required(
                &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                "schemas are required",
            )),
            Some(schema) => {
                if let Err(errors) = Schema::compile(schema) {
                    for e in errors {
                        let e = e.with_prefix(&format!("spec.versions[{i}].schema"));
                        out.push(StatusCause {
                            reason: e.reason().into(),
                            message: e.error_body(),
                            field: e.field.clone(),
                        });
                    }
                }
            }
        }
    }
    out
}

/// Whether the CRD has been accepted and established by the CRD controller.
pub fn is_established(crd: &Value) -> bool {
    condition_true(crd, "Established")
}

pub fn condition_true(obj: &Value, type_: &str) -> bool {
    obj.get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| s(c, &["type"]) == type_ && s(c, &["status"]) == "True")
}

/// The resources an established CRD serves, one per served version.
pub fn descriptions(crd: &Value) -> Vec<ResourceDesc> {
    let group = s(crd, &["spec", "group"]).to_string();
    let names = crd
        .get("spec")
        .and_then(|s| s.get("names"))
        .cloned()
        .unwrap_or(Value::Null);
    let kind = s(&names, &["kind"]).to_string();
    let plural = s(&names, &["plural"]).to_string();
    let singular = match s(&names, &["singular"]) {
        "" => kind.to_ascii_lowercase(),
        other => other.to_string(),
    };
    let strings = |field: &str| -> Vec<String> {
        names
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect()
    };
    let namespaced = s(crd, &["spec", "scope"]) != "Cluster";
    let versions = crd
        .get("spec")
        .and_then(|s| s.get("versions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .map(|v| s(v, &["name"]).to_string())
        .unwrap_or_default();
    let crd_name = meta::name(crd).unwrap_or("").to_string();
    versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
        .map(|v| {
            let sub = v.get("subresources");
            let scale = sub.and_then(|s| s.get("scale")).map(|sc| ScalePaths {
                spec_replicas: s(sc, &["specReplicasPath"]).to_string(),
                status_replicas: s(sc, &["statusReplicasPath"]).to_string(),
                label_selector: Some(s(sc, &["labelSelectorPath"]).to_string())
                    .filter(|p| !p.is_empty()),
            });
            let schema = v
                .get("schema")
                .and_then(|s| s.get("openAPIV3Schema"))
                .and_then(|s| Schema::compile(s).ok())
                .map(Arc::new);
            let field_labels = v
                .get("selectableFields")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|f| {
                    let path = s(f, &["jsonPath"]).to_string();
                    (path.trim_start_matches('.').to_string(), path)
                })
                .collect();
            ResourceDesc {
                group: group.clone(),
                version: s(v, &["name"]).to_string(),
                kind: kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                short_names: strings("shortNames"),
                categories: strings("categories"),
                namespaced,
                status: sub.and_then(|s| s.get("status")).is_some(),
                scale,
                subresources: vec![],
                generation: true,
                columns: columns(v),
                field_labels,
                schema,
                builtin_schema: Arc::default(),
                origin: Origin::Crd {
                    name: crd_name.clone(),
                    storage_version: storage_version.clone(),
                },
                verbs: ALL_VERBS.to_vec(),
                conversion: None,
                strategy: crate::registry::strategy::generic(),
                shared: None,
                stored_as: None,
                deprecation_warning: deprecation_warning(v, &versions, &group, &kind),
            }
        })
        .collect()
}

/// A version marked `deprecated`: its `deprecationWarning`, else kube's default text, which
/// points at the best served version that is newer and not deprecated.
fn deprecation_warning(version: &Value, all: &[Value], group: &str, kind: &str) -> Option<String> {
    if version.get("deprecated").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    if let Some(custom) = version.get("deprecationWarning").and_then(Value::as_str) {
        return Some(custom.to_string());
    }
    let this = s(version, &["name"]);
    let flag = |v: &Value, key: &str| v.get(key).and_then(Value::as_bool);
    let better = all
        .iter()
        .filter(|v| flag(v, "served") != Some(false) && flag(v, "deprecated") != Some(true))
        .map(|v| s(v, &["name"]))
        .filter(|name| compare_versions(name, this).is_lt())
        .min_by(|a, b| compare_versions(a, b));
    let mut msg = format!("{group}/{this} {kind} is deprecated");
    if let Some(newer) = better {
        msg.push_str(&format!("; use {group}/{newer} {kind}"));
    }
    Some(msg)
}

/// Name, then the version's additionalPrinterColumns — or Age when there are none.
fn columns(version: &Value) -> Vec<Column> {
    let name = Column {
        name: "Name".into(),
        type_: "string".into(),
        format: "name".into(),
        description: "Name must be unique within a namespace.".into(),
        priority: 0,
        cell: Cell::Name,
    };
    let printer: Vec<Column> = version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let path = kplex_schema::jsonpath::parse(s(c, &["jsonPath"])).ok()?;
            Some(Column {
                name: s(c, &["name"]).to_string(),
                type_: s(c, &["type"]).to_string(),
                format: s(c, &["format"]).to_string(),
                description: s(c, &["description"]).to_string(),
                priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32,
                cell: Cell::Path(Arc::new(path)),
            })
        })
        .collect();
    let mut out = vec![name];
    if printer.is_empty() {
        out.push(Column {
            name: "Age".into(),
            type_: "date".into(),
            format: String::new(),
            description: String::new(),
            priority: 0,
            cell: Cell::Age,
        });
    } else {
        out.extend(printer);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn widget() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wg"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}},
                     "subresources": {"status": {}},
                     "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]},
                    {"name": "v1beta1", "served": true, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}
                ]}
        })
    }

    #[test]
    fn valid_crd_gives_one_description_per_served_version() {
        assert!(validate(&widget()).is_empty(), "{:?}", validate(&widget()));
        let d = descriptions(&widget());
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].version.as_str(), d[0].singular.as_str(), d[0].status),
            ("v1", "widget", true)
        );
        assert_eq!(
            d[0].columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            vec!["Name", "Size"]
        );
        assert_eq!(
            d[1].columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            vec!["Name", "Age"]
        );
        assert_eq!(
            d[1].origin,
            Origin::Crd {
                name: "widgets.example.com".into(),
                storage_version: "v1".into()
            }
        );
    }

    #[test]
    fn invalid_crds_are_explained() {
        let mut bad = widget();
        bad["metadata"]["name"] = json!("nope");
        bad["spec"]["versions"][1]["storage"] = json!(true);
        let fields: Vec<String> = validate(&bad).into_iter().map(|c| c.field).collect();
        assert!(fields.contains(&"metadata.name".to_string()));
        assert!(fields.contains(&"spec.versions".to_string()));
    }
}

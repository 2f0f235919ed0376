//! The API importer (kcp v0.11's `pkg/syncer/apiimporter`, in one step): a resource named
//! with `--resources` that the downstream cluster serves from a CustomResourceDefinition is
//! made servable upstream. Its CRD becomes an APIResourceSchema in the SyncTarget's
//! workspace, listed in the target's supported APIExport (`kubernetes` by default); a team
//! that binds compute binds that export and gets the resource, stored under the export's
//! identity, which the agent names when it lists the resource across workspaces.
//!
//! The schema's name carries a hash of the CRD's spec, so an unchanged CRD is imported once
//! however often the agent starts, and a changed one replaces its predecessor in the export.

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Error;

/// The export a SyncTarget supports unless its spec says otherwise (kcp's default).
pub const DEFAULT_EXPORT: &str = "kubernetes";
/// How long the agent waits for kplex to give a new export its identity.
const IDENTITY_WAIT: Duration = Duration::from_secs(30);

/// A resource imported from a downstream CRD.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    pub resource: ApiResource,
    /// Whether its storage version has a status subresource.
    pub status: bool,
    /// The identity hash of the export that serves it upstream.
    pub identity: String,
}

fn apis(kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: "apis.kcp.io".into(),
        version: "v1alpha1".into(),
        api_version: "apis.kcp.io/v1alpha1".into(),
        kind: kind.into(),
        plural: plural.into(),
    }
}

fn crds() -> ApiResource {
    ApiResource {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        plural: "customresourcedefinitions".into(),
    }
}

/// The APIExport (in the target's own workspace) a SyncTarget supports.
pub fn supported_export(target: &Value) -> String {
    target
        .pointer("/spec/supportedAPIExports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| {
            e.get("path")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
        })
        .and_then(|e| e.get("export").and_then(Value::as_str))
        .unwrap_or(DEFAULT_EXPORT)
        .to_string()
}

/// The APIResourceSchema of a CRD (`i<hash>.<plural>.<group>`), and what the agent syncs of
/// it: the resource at its storage version, and whether that version has a status.
pub fn resource_schema(crd: &Value) -> Option<(Value, ApiResource, bool)> {
    let mut spec = crd.get("spec")?.clone();
    let group = spec.get("group")?.as_str()?.to_string();
    let plural = spec.pointer("/names/plural")?.as_str()?.to_string();
    let kind = spec.pointer("/names/kind")?.as_str()?.to_string();
    let spec_obj = spec.as_object_mut()?;
    spec_obj.remove("preserveUnknownFields");
    let mut storage = None;
    for v in spec_obj.get_mut("versions")?.as_array_mut()? {
        // A schema's version holds the OpenAPI schema itself, not wrapped.
        if let Some(schema) = v.pointer_mut("/schema/openAPIV3Schema").map(Value::take) {
            v["schema"] = schema;
        }
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            let status = v.pointer("/subresources/status").is_some();
            storage = Some((v.get("name")?.as_str()?.to_string(), status));
        }
    }
    let (version, status) = storage?;
    let digest = Sha256::digest(spec.to_string().as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let schema = json!({
        "apiVersion": "apis.kcp.io/v1alpha1",
        "kind": "APIResourceSchema",
        "metadata": {"name": format!("i{hash}.{plural}.{group}")},
        "spec": spec,
    });
    let api_version = format!("{group}/{version}");
    let resource = ApiResource {
        group,
        version,
        api_version,
        kind,
        plural,
    };
    Some((schema, resource, status))
}

/// `latestResourceSchemas` with `schema` in place of any other schema of its resource
/// (`<anything>.<plural>.<group>`); `None` if it is already there.
pub fn with_schema(latest: &[Value], schema: &str) -> Option<Vec<Value>> {
    let resource = schema.split_once('.').map_or(schema, |(_, r)| r);
    if latest.iter().any(|s| s.as_str() == Some(schema)) {
        return None;
    }
    let mut out: Vec<Value> = latest
        .iter()
        .filter(|s| {
            s.as_str()
                .and_then(|s| s.split_once('.'))
                .is_none_or(|(_, r)| r != resource)
        })
        .cloned()
        .collect();
    out.push(json!(schema));
    Some(out)
}

/// Imports `name` (`plural.group`) if downstream serves it from a CRD; `None` if it does not.
/// `up` reaches the SyncTarget's workspace.
pub async fn import(
    up: &Client,
    down: &Client,
    export: &str,
    name: &str,
) -> Result<Option<Imported>, Error> {
    let crd = Api::<DynamicObject>::all_with(down.clone(), &crds())
        .get_opt(name)
        .await?;
    let Some(crd) = crd else {
        return Ok(None);
    };
    let crd = serde_json::to_value(crd)?;
    let (schema, resource, status) =
        resource_schema(&crd).ok_or_else(|| Error::UnknownResource(name.to_string()))?;
    let schemas = Api::<DynamicObject>::all_with(
        up.clone(),
        &apis("APIResourceSchema", "apiresourceschemas"),
    );
    let schema_name = schema["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    match schemas
        .create(&PostParams::default(), &serde_json::from_value(schema)?)
        .await
    {
        Ok(_) => {}
        // Schemas are immutable and named by their content: the same one is there.
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let identity = add_to_export(up, export, &schema_name).await?;
    tracing::debug!(resource = %name, schema = %schema_name, %export, "imported from the downstream CRD");
    Ok(Some(Imported {
        resource,
        status,
        identity,
    }))
}

/// Imports the `started` resources again every `every` (kcp's `--api-import-poll-interval`):
/// a CRD changed downstream replaces its schema in the export. Returns the name of the
/// first resource whose import now differs from the one the agent started with (a new
/// storage version, a status subresource added or removed): the agent then starts over,
/// syncing it as it now is.
pub async fn keep_importing(
    up: Client,
    down: Client,
    export: String,
    started: Vec<(String, Imported)>,
    every: Duration,
) -> String {
    loop {
        tokio::time::sleep(every).await;
        for (name, was) in &started {
            match import(&up, &down, &export, name).await {
                Ok(Some(now)) if now != *was => return name.clone(),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(resource = %name, error = %e, "importing the downstream CRD again failed")
                }
            }
        }
    }
}

/// Lists `schema` in the export (compare-and-swap, retried on races with other agents of
/// the same workspace) and returns the export's identity hash once kplex has set it.
async fn add_to_export(up: &Client, export: &str, schema: &str) -> Result<String, Error> {
    let exports = Api::<DynamicObject>::all_with(up.clone(), &apis("APIExport", "apiexports"));
    let deadline = tokio::time::Instant::now() + IDENTITY_WAIT;
    loop {
        let mut current = match exports.get(export).await {
            Ok(e) => e,
            Err(kube::Error::Api(e)) if e.code == 404 => {
                return Err(Error::NoExport(export.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        let latest: Vec<Value> = current
            .data
            .pointer("/spec/latestResourceSchemas")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(next) = with_schema(&latest, schema) {
            current.data["spec"]["latestResourceSchemas"] = json!(next);
            match exports
                .replace(&current.name_any(), &PostParams::default(), &current)
                .await
            {
                Ok(_) => continue,
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let identity = current
            .data
            .pointer("/status/identityHash")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !identity.is_empty() {
            return Ok(identity.to_string());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::NoIdentity(export.to_string()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com", "uid": "u1", "resourceVersion": "7"},
            "spec": {
                "group": "example.com", "scope": "Namespaced", "preserveUnknownFields": false,
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "versions": [
                    {"name": "v1beta1", "served": true, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object"}}},
                    {"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}},
                     "subresources": {"status": {}}}
                ]
            },
            "status": {"acceptedNames": {"plural": "widgets"}}
        })
    }

    #[test]
    fn a_crd_becomes_a_schema_named_by_its_content() {
        let (schema, resource, status) = resource_schema(&crd()).unwrap();
        let name = schema["metadata"]["name"].as_str().unwrap();
        assert!(
            name.starts_with('i') && name.ends_with(".widgets.example.com"),
            "{name}"
        );
        assert_eq!(name.len(), "i12345678.widgets.example.com".len());
        assert_eq!(schema["kind"], "APIResourceSchema");
        assert_eq!(
            schema["spec"]["versions"][1]["schema"]["properties"]["spec"]["type"],
            "object"
        );
        assert_eq!(
            schema["spec"]["versions"][0]["schema"],
            json!({"type": "object"})
        );
        assert!(schema["spec"].get("preserveUnknownFields").is_none());
        assert!(schema.get("status").is_none());
        assert_eq!(
            (
                resource.group.as_str(),
                resource.version.as_str(),
                resource.kind.as_str(),
                resource.plural.as_str()
            ),
            ("example.com", "v1", "Widget", "widgets")
        );
        assert!(status);
        // The same CRD (another uid or resourceVersion) gives the same schema; a changed
        // spec another.
        let mut again = crd();
        again["metadata"]["uid"] = json!("u2");
        assert_eq!(resource_schema(&again).unwrap().0, schema);
        again["spec"]["versions"][1]["served"] = json!(false);
        assert_ne!(
            resource_schema(&again).unwrap().0["metadata"]["name"],
            schema["metadata"]["name"]
        );
    }

    #[test]
    fn a_crd_without_a_storage_version_is_refused() {
        let mut bad = crd();
        bad["spec"]["versions"][1]["storage"] = json!(false);
        assert!(resource_schema(&bad).is_none());
    }

    #[test]
    fn a_new_schema_replaces_its_resources_old_one_only() {
        let latest = vec![
            json!("i1.widgets.example.com"),
            json!("v1.gadgets.example.com"),
        ];
        assert_eq!(
            with_schema(&latest, "i2.widgets.example.com").unwrap(),
            vec![
                json!("v1.gadgets.example.com"),
                json!("i2.widgets.example.com")
            ]
        );
        assert_eq!(with_schema(&latest, "i1.widgets.example.com"), None);
        assert_eq!(
            with_schema(&[], "i1.widgets.example.com").unwrap(),
            vec![json!("i1.widgets.example.com")]
        );
    }

    #[test]
    fn the_supported_export_defaults_to_kubernetes() {
        assert_eq!(supported_export(&json!({"spec": {}})), "kubernetes");
        assert_eq!(
            supported_export(
                &json!({"spec": {"supportedAPIExports": [{"path": "root:other", "export": "x"}, {"export": "mine"}]}})
            ),
            "mine"
        );
    }
}

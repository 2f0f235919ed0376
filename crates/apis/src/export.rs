//! The APIExport controller: the export's identity and its default endpoint slice.
//!
//! The identity is a secret only the provider can read (`kcp-system/<export>`, key `key`, 256
//! random bits unless the export names another secret); `status.identityHash` is its public
//! sha256, set once. An APIExportEndpointSlice lists the virtual workspace URL of an export
//! once at least one workspace binds it (kcp lists only shards with bindings; kplex is one).

use base64::Engine;
use kplex_apimachinery::{ApiError, meta};
use serde_json::{Value, json};

use super::Apis;
use super::{GROUP, IDENTITY_NAMESPACE, V1, V2, conditions, get, scope};
use crate::registry::{Scope, WriteOptions};

/// Annotation that turns the default endpoint slice off.
pub const SKIP_ENDPOINT_SLICE: &str = "apiexports.apis.kcp.io/skip-endpointslice";

fn secret_ref(export: &Value, name: &str) -> (String, String, bool) {
    let r = export.pointer("/spec/identity/secretRef");
    let field = |f: &str| r.and_then(|r| r.get(f)).and_then(Value::as_str);
    match (field("namespace"), field("name")) {
        (Some(ns), Some(n)) => (ns.to_string(), n.to_string(), false),
        _ => (IDENTITY_NAMESPACE.to_string(), name.to_string(), true),
    }
}

fn core_scope(t: &Apis, cluster: &str, plural: &str, ns: Option<&str>) -> Option<Scope> {
    Some(Scope {
        cluster: Some(cluster.to_string()),
        desc: t.served.lookup(Some(cluster), "", "v1", plural)?,
        namespace: ns.map(String::from),
    })
}

/// The identity key in the secret, creating the default secret (and its namespace) if needed.
async fn identity_key(
    t: &Apis,
    cluster: &str,
    (ns, name, default): (&str, &str, bool),
) -> Result<Option<Vec<u8>>, ApiError> {
    let secrets = core_scope(t, cluster, "secrets", Some(ns)).ok_or_else(missing)?;
    let read = |s: &Value| {
        s.pointer("/data/key")
            .and_then(Value::as_str)
            .and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok())
    };
    if let Some(secret) = get(&t.registry, &secrets, name).await? {
        return Ok(read(&secret));
    }
    if !default {
        return Ok(None);
    }
    let namespaces = core_scope(t, cluster, "namespaces", None).ok_or_else(missing)?;
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    match t
        .registry
        .create(&namespaces, namespace, &WriteOptions::default())
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_already_exists() => {}
        Err(e) => return Err(e),
    }
    let key: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": ns},
        "data": {"key": base64::engine::general_purpose::STANDARD.encode(&key)}});
    match t
        .registry
        .create(&secrets, secret, &WriteOptions::default())
        .await
    {
        Ok(_) => Ok(Some(key.into_bytes())),
        // Someone else created it first: use theirs.
        Err(e) if e.is_already_exists() => Ok(get(&t.registry, &secrets, name)
            .await?
            .as_ref()
            .and_then(read)),
        Err(e) => Err(e),
    }
}

fn missing() -> ApiError {
    ApiError::internal("the logical cluster serves no core kinds")
}

/// Reconciles one APIExport; Ok(false) = try again later.
pub async fn reconcile(t: &Apis, cluster: &str, name: &str) -> Result<bool, ApiError> {
    let Some(exports) = scope(&t.served, cluster, V2, "apiexports") else {
        return Ok(true);
    };
    let Some(export) = get(&t.registry, &exports, name).await? else {
        return Ok(true);
    };
    if meta::deletion_timestamp(&export).is_some() {
        return Ok(true);
    }
    let mut status = export.get("status").cloned().unwrap_or_else(|| json!({}));
    let (ns, secret, default) = secret_ref(&export, name);
    let hash = status
        .get("identityHash")
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
        .map(String::from);
    let key = identity_key(t, cluster, (&ns, &secret, default)).await?;
    let ok = match (&hash, &key) {
        (_, None) => false,
        (None, Some(k)) => {
            status["identityHash"] = json!(super::identity_hash(k));
            true
        }
        // The hash never changes; a secret that no longer matches it is reported.
        (Some(h), Some(k)) => *h == super::identity_hash(k),
    };
    let reason = if key.is_none() {
        "IdentityNotFound"
    } else if ok {
        ""
    } else {
        "IdentityVerificationFailed"
    };
    let message = if ok {
        String::new()
    } else {
        format!("identity secret {ns}/{secret} is missing or does not match the identity hash")
    };
    status["conditions"] = conditions(
        &export,
        &[
            ("IdentityValid", ok, reason, message),
            ("VirtualWorkspaceURLsReady", true, "", String::new()),
        ],
    );
    t.registry.set_status(&exports, &export, status).await?;
    if meta::annotation(&export, SKIP_ENDPOINT_SLICE).is_none() {
        ensure_default_slice(t, cluster, name).await?;
    }
    Ok(ok)
}

async fn ensure_default_slice(t: &Apis, cluster: &str, name: &str) -> Result<(), ApiError> {
    let Some(slices) = scope(&t.served, cluster, V1, "apiexportendpointslices") else {
        return Ok(());
    };
    if get(&t.registry, &slices, name).await?.is_some() {
        return reconcile_slice(t, cluster, name).await.map(|_| ());
    }
    let path = t.served.path_of(cluster).unwrap_or_else(|| cluster.into());
    let slice = json!({"apiVersion": format!("{GROUP}/{V1}"), "kind": "APIExportEndpointSlice",
        "metadata": {"name": name}, "spec": {"export": {"path": path, "name": name}}});
    match t
        .registry
        .create(&slices, slice, &WriteOptions::default())
        .await
    {
        Ok(_) | Err(ApiError { code: 409, .. }) => {
            reconcile_slice(t, cluster, name).await.map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// The URL of an export's virtual workspace.
pub fn virtual_workspace_url(base_url: &str, export_cluster: &str, export: &str) -> String {
    format!("{base_url}/services/apiexport/{export_cluster}/{export}")
}

/// Reconciles an APIExportEndpointSlice: the export's virtual workspace URL once it has a
/// consumer.
pub async fn reconcile_slice(t: &Apis, cluster: &str, name: &str) -> Result<bool, ApiError> {
    let Some(slices) = scope(&t.served, cluster, V1, "apiexportendpointslices") else {
        return Ok(true);
    };
    let Some(slice) = get(&t.registry, &slices, name).await? else {
        return Ok(true);
    };
    let export_name = slice
        .pointer("/spec/export/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let path = slice
        .pointer("/spec/export/path")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    let export_cluster = match path {
        Some(p) => t.served.resolve(p),
        None => Some(cluster.to_string()),
    };
    let export = match &export_cluster {
        Some(ec) => match scope(&t.served, ec, V2, "apiexports") {
            Some(s) => get(&t.registry, &s, export_name).await?,
            None => None,
        },
        None => None,
    };
    let mut status = slice.get("status").cloned().unwrap_or_else(|| json!({}));
    let endpoints = match (&export_cluster, &export) {
        (Some(ec), Some(_)) if !t.exports.consumers((ec, export_name)).is_empty() => {
            vec![json!({"url": virtual_workspace_url(&t.base_url, ec, export_name)})]
        }
        _ => vec![],
    };
    status["endpoints"] = Value::Array(endpoints);
    let valid = export.is_some();
    status["conditions"] = conditions(
        &slice,
        &[(
            "APIExportValid",
            valid,
            if valid { "" } else { "APIExportNotFound" },
            if valid {
                String::new()
            } else {
                format!("APIExport {} not found", path.unwrap_or(cluster))
            },
        )],
    );
    t.registry.set_status(&slices, &slice, status).await?;
    Ok(true)
}

//! What every namespace has in a cluster: the `default` ServiceAccount (kube's
//! serviceaccounts controller) and the `kube-root-ca.crt` ConfigMap holding the CA that signs
//! the server's certificate (kube's root-ca-cert publisher), so `kubectl create token default`
//! and in-cluster clients work in a fresh namespace; and in `default`, the `kubernetes`
//! Service kube-apiserver makes for itself. Made again when deleted, as kube does.
//! Which objects these are is `kplex_registry::object::NAMESPACE_DEFAULTS`, shared with
//! placement (never copied to a cluster) and export (left out).

use kplex_apimachinery::{ApiError, meta};
use kplex_registry::object::NAMESPACE_DEFAULTS;
use kplex_registry::registry::WriteOptions;
use serde_json::{Value, json};

use super::Builtins;
use crate::strategies::API_SERVICE_IP;

/// The default ServiceAccount's name.
const SERVICE_ACCOUNT: &str = NAMESPACE_DEFAULTS[0].name;
/// The CA ConfigMap's name.
const ROOT_CA: &str = NAMESPACE_DEFAULTS[1].name;
/// The `kubernetes` Service and the one namespace it is in.
const API_SERVICE: kplex_registry::object::NamespaceDefault = NAMESPACE_DEFAULTS[2];

impl Builtins {
    /// Creates what namespace `name` of `cluster` lacks of its defaults, and brings the CA
    /// ConfigMap's data up to date.
    pub(super) async fn reconcile_namespace_defaults(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<bool, ApiError> {
        let Some((_, ns)) = self.namespace(cluster, name).await? else {
            return Ok(true);
        };
        // A terminating namespace takes no new objects.
        if meta::deletion_timestamp(&ns).is_some() {
            return Ok(true);
        }
        let account = json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": SERVICE_ACCOUNT}});
        self.ensure(cluster, name, "serviceaccounts", account, None)
            .await?;
        if let Some(ca) = self.root_ca() {
            let data = json!({"ca.crt": ca});
            let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA, "annotations": {"kubernetes.io/description":
                    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                "data": data.clone()});
            self.ensure(cluster, name, "configmaps", config_map, Some(data))
                .await?;
        }
        if API_SERVICE.namespace == Some(name) {
            self.ensure(cluster, name, API_SERVICE.resource, api_service(), None)
                .await?;
        }
        Ok(true)
    }

    /// The CA bundle in-cluster clients verify the server with (None: no CA configured).
    fn root_ca(&self) -> Option<String> {
        let ca = &self.tokens.as_ref()?.ca_pem;
        (!ca.is_empty()).then(|| String::from_utf8_lossy(ca).into_owned())
    }

    /// Creates `obj` in the namespace unless it exists; with `data`, an existing object's
    /// `data` is set to it when it differs.
    async fn ensure(
        &self,
        cluster: &str,
        namespace: &str,
        plural: &str,
        obj: Value,
        data: Option<Value>,
    ) -> Result<(), ApiError> {
        let Some(desc) = self.desc(cluster, "", "v1", plural) else {
            return Ok(());
        };
        let scope = self.scope(cluster, desc, Some(namespace));
        let name = meta::name(&obj).unwrap_or("").to_string();
        let current = match self.registry.get(&scope, &name).await {
            Ok(s) => s.decode()?,
            Err(e) if e.is_not_found() => {
                return match self
                    .registry
                    .create(&scope, obj, &WriteOptions::default())
                    .await
                {
                    // Created meanwhile (a client, or our own earlier try); a namespace
                    // terminating meanwhile refuses it.
                    Err(e) if e.is_already_exists() || e.is_forbidden() => Ok(()),
                    other => other.map(|_| ()),
                };
            }
            Err(e) => return Err(e),
        };
        match data {
            Some(data) if current.get("data") != Some(&data) => self
                .registry
                .update_with(&scope, &name, &WriteOptions::default(), move |cur, _| {
                    let mut next = cur.clone();
                    next["data"] = data.clone();
                    Ok(next)
                })
                .await
                .map(|_| ()),
            _ => Ok(()),
        }
    }
}

/// kube-apiserver's own Service as its kubernetesservice controller writes it. Nothing
/// routes to it in a workspace (no Endpoints are made); workloads placed on a cluster reach
/// that cluster's own `kubernetes` Service, which placement never overwrites.
fn api_service() -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": API_SERVICE.name,
            "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": API_SERVICE_IP, "clusterIPs": [API_SERVICE_IP],
            "sessionAffinity": "None",
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}})
}

//! The cluster as the simulator talks to it: HTTP through the `kube` client, dynamic
//! objects as JSON values. Answers that only mean "someone else got there first" (409 on
//! create, 404 on delete or patch) are success: the next pass looks again.

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

use crate::{Error, SimArgs};

fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

pub fn pods() -> ApiResource {
    ar("", "v1", "Pod", "pods")
}
pub fn nodes() -> ApiResource {
    ar("", "v1", "Node", "nodes")
}
pub fn deployments() -> ApiResource {
    ar("apps", "v1", "Deployment", "deployments")
}
pub fn replica_sets() -> ApiResource {
    ar("apps", "v1", "ReplicaSet", "replicasets")
}
pub fn stateful_sets() -> ApiResource {
    ar("apps", "v1", "StatefulSet", "statefulsets")
}
pub fn daemon_sets() -> ApiResource {
    ar("apps", "v1", "DaemonSet", "daemonsets")
}
pub fn jobs() -> ApiResource {
    ar("batch", "v1", "Job", "jobs")
}
pub fn services() -> ApiResource {
    ar("", "v1", "Service", "services")
}
pub fn endpoints() -> ApiResource {
    ar("", "v1", "Endpoints", "endpoints")
}
pub fn leases() -> ApiResource {
    ar("coordination.k8s.io", "v1", "Lease", "leases")
}
pub fn endpoint_slices() -> ApiResource {
    ar("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices")
}

/// The kinds whose changes trigger a pass.
pub fn watched() -> Vec<ApiResource> {
    vec![
        pods(),
        deployments(),
        replica_sets(),
        stateful_sets(),
        daemon_sets(),
        jobs(),
        services(),
    ]
}

pub fn is(e: &kube::Error, codes: &[u16]) -> bool {
    matches!(e, kube::Error::Api(s) if codes.contains(&s.code))
}

pub struct Cluster {
    client: Client,
}

impl Cluster {
    pub async fn connect(args: &SimArgs) -> Result<Self, Error> {
        let options = KubeConfigOptions {
            context: args.context.clone(),
            ..Default::default()
        };
        let config = match &args.kubeconfig {
            Some(path) => {
                Config::from_custom_kubeconfig(Kubeconfig::read_from(path)?, &options).await?
            }
            None => Config::from_kubeconfig(&options).await?,
        };
        Ok(Self {
            client: Client::try_from(config)?,
        })
    }

    pub fn all(&self, ar: &ApiResource) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), ar)
    }

    fn api(&self, ar: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, ar),
            None => Api::all_with(self.client.clone(), ar),
        }
    }

    /// Whether the server serves a kind (a list of one answers; 404 means not served).
    pub async fn serves(&self, ar: &ApiResource) -> Result<bool, Error> {
        match self.all(ar).list(&ListParams::default().limit(1)).await {
            Ok(_) => Ok(true),
            Err(e) if is(&e, &[404]) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object of a kind, in every namespace.
    pub async fn list(&self, ar: &ApiResource) -> Result<Vec<Value>, Error> {
        let list = self.all(ar).list(&ListParams::default()).await?;
        list.items
            .iter()
            .map(|o| serde_json::to_value(o).map_err(Error::from))
            .collect()
    }

    pub async fn create(
        &self,
        ar: &ApiResource,
        namespace: Option<&str>,
        obj: Value,
    ) -> Result<(), Error> {
        let obj: DynamicObject = serde_json::from_value(obj)?;
        match self
            .api(ar, namespace)
            .create(&PostParams::default(), &obj)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is(&e, &[409]) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A merge patch of the object (`status: true`: of its status subresource).
    pub async fn patch(
        &self,
        ar: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        patch: Value,
        status: bool,
    ) -> Result<(), Error> {
        let api = self.api(ar, namespace);
        let pp = PatchParams::default();
        let result = if status {
            api.patch_status(name, &pp, &Patch::Merge(patch)).await
        } else {
            api.patch(name, &pp, &Patch::Merge(patch)).await
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) if is(&e, &[404, 409]) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes at once (grace period 0), as a kubelet finishing a pod does.
    pub async fn delete(
        &self,
        ar: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(), Error> {
        match self
            .api(ar, namespace)
            .delete(name, &DeleteParams::background().grace_period(0))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is(&e, &[404, 409]) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The scheduler's `pods/binding`; a server without that subresource (404/405) gets
    /// `spec.nodeName` set by a patch instead.
    pub async fn bind(&self, namespace: &str, pod: &str, node: &str) -> Result<(), Error> {
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
        let api = self.api(&pods(), Some(namespace));
        match api
            .create_subresource::<Value, Value>("binding", pod, &PostParams::default(), &binding)
            .await
        {
            Ok(_) => Ok(()),
            // Already bound (by us, in an earlier pass, or by someone else).
            Err(e) if is(&e, &[409]) => Ok(()),
            Err(e) if is(&e, &[404, 405]) => {
                let patch = json!({"spec": {"nodeName": node}});
                self.patch(&pods(), Some(namespace), pod, patch, false)
                    .await
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Cluster {
    /// Writes `status` (its top-level fields, a merge patch) to `obj`'s status
    /// subresource, unless the object already reports exactly that: a settled simulation
    /// writes nothing.
    pub async fn set_status(
        &self,
        ar: &ApiResource,
        obj: &Value,
        status: Value,
    ) -> Result<(), Error> {
        if crate::object::already(obj.get("status"), &status) {
            return Ok(());
        }
        let name = crate::object::name(obj);
        tracing::debug!(kind = %ar.kind, %name, "writing status");
        let patch = json!({"status": status});
        self.patch(ar, crate::object::namespace(obj), name, patch, true)
            .await
    }
}

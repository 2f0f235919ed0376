//! The cluster as the simulator talks to it: dynamic objects as JSON values.

use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};

use crate::{Error, SimArgs};

pub fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
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
pub fn endpoint_slices() -> ApiResource {
    ar("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices")
}

/// What a change of triggers a pass.
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

    /// Every object of a kind, in every namespace; none when the kind is not served.
    pub async fn list(&self, ar: &ApiResource) -> Result<Vec<Value>, Error> {
        match self.all(ar).list(&ListParams::default()).await {
            Ok(list) => Ok(list.items.iter().map(value).collect()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(vec![]),
            Err(e) => Err(e.into()),
        }
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
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
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
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

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
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The scheduler's `pods/binding`.
    pub async fn bind(&self, namespace: &str, pod: &str, node: &str) -> Result<(), Error> {
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
        let api = self.api(&pods(), Some(namespace));
        match api
            .create_subresource::<Value, Value>("binding", pod, &PostParams::default(), &binding)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

pub fn value(obj: &DynamicObject) -> Value {
    serde_json::to_value(obj).unwrap_or_default()
}

pub fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

pub fn name(obj: &Value) -> &str {
    text(obj, "/metadata/name")
}

pub fn namespace(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/namespace").and_then(Value::as_str)
}

pub fn uid(obj: &Value) -> &str {
    text(obj, "/metadata/uid")
}

/// Whether `obj` is controlled by the object with uid `owner`.
pub fn controlled_by(obj: &Value, owner: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r.get("uid").and_then(Value::as_str) == Some(owner)
                    && r.get("controller").and_then(Value::as_bool) == Some(true)
            })
        })
}

/// The controller reference to `owner`.
pub fn owner_ref(owner: &Value) -> Value {
    json!([{"apiVersion": text(owner, "/apiVersion"), "kind": text(owner, "/kind"),
        "name": name(owner), "uid": uid(owner), "controller": true, "blockOwnerDeletion": true}])
}

pub fn terminating(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp").is_some()
}

pub fn condition_true(obj: &Value, type_: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(type_)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

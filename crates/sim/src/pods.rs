//! Pods the workload controllers make from their pod templates, and the one way they all
//! converge: create the wanted pods that are missing, delete the owned ones not wanted.

use serde_json::{Map, Value, json};

use crate::Error;
use crate::client::{self, Cluster};
use crate::object::{controlled_by, name, namespace, owner_ref, terminating, uid};

/// The pods `owner` controls, not being deleted (pods on their way out count for no
/// controller, as in kube).
pub fn owned<'a>(pods: &'a [Value], owner: &Value) -> Vec<&'a Value> {
    pods.iter()
        .filter(|p| controlled_by(p, uid(owner)) && !terminating(p))
        .collect()
}

/// A pod from `owner`'s `spec.template`, named `pod_name`, with extra labels and,
/// for a DaemonSet's pod, its node already chosen.
pub fn from_template(
    owner: &Value,
    pod_name: &str,
    extra_labels: &[(&str, String)],
    node: Option<&str>,
) -> Value {
    let template = owner
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut labels: Map<String, Value> = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in extra_labels {
        labels.insert((*k).to_string(), json!(v));
    }
    let mut spec = match template.get("spec") {
        Some(s) if s.is_object() => s.clone(),
        _ => json!({}),
    };
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    let mut metadata =
        json!({"name": pod_name, "labels": labels, "ownerReferences": owner_ref(owner)});
    if let Some(a) = template
        .pointer("/metadata/annotations")
        .filter(|a| a.is_object())
    {
        metadata["annotations"] = a.clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

/// Creates the `create` pods and deletes the pods named in `delete`, in `owner`'s
/// namespace.
pub async fn converge(
    c: &Cluster,
    owner: &Value,
    create: Vec<Value>,
    delete: &[String],
) -> Result<(), Error> {
    let ns = namespace(owner);
    for pod in create {
        tracing::debug!(owner = %name(owner), pod = %name(&pod), "creating pod");
        c.create(&client::pods(), ns, pod).await?;
    }
    for pod in delete {
        tracing::debug!(owner = %name(owner), %pod, "deleting pod");
        c.delete(&client::pods(), ns, pod).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_carry_the_template_and_a_controller_reference() {
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-abc", "uid": "u1"},
            "spec": {"template": {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
        let p = from_template(&rs, "web-abc-x", &[("extra", "1".into())], Some("n0"));
        assert_eq!(p["metadata"]["labels"], json!({"app": "web", "extra": "1"}));
        assert_eq!(p["metadata"]["annotations"]["a"], "b");
        assert_eq!(p["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(p["spec"]["nodeName"], "n0");
        assert!(controlled_by(&p, "u1"));
        let pods = vec![p.clone(), json!({})];
        assert_eq!(owned(&pods, &rs).len(), 1);
        // A template that is not an object still makes a pod (the server will judge it).
        let odd = json!({"metadata": {"name": "x"}, "spec": {"template": 7}});
        assert_eq!(from_template(&odd, "x-1", &[], None)["spec"], json!({}));
    }
}

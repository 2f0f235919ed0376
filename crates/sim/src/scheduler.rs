//! The scheduler: pods nobody placed yet (and that ask for the default scheduler) are bound
//! to the least loaded simulated node whose labels satisfy their `nodeSelector`. Pods no
//! node fits stay Pending, as with kube's scheduler.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Error;
use crate::client::Cluster;
use crate::object::{labels, name, namespace, terminating, text};

/// A decision: bind pod (namespace, name) to node.
#[derive(Debug, PartialEq, Eq)]
pub struct Binding {
    pub namespace: String,
    pub pod: String,
    pub node: String,
}

fn unscheduled(pod: &Value) -> bool {
    let scheduler = text(pod, "/spec/schedulerName");
    text(pod, "/spec/nodeName").is_empty()
        && (scheduler.is_empty() || scheduler == "default-scheduler")
        && !terminating(pod)
        && !matches!(text(pod, "/status/phase"), "Succeeded" | "Failed")
}

pub fn fits(pod: &Value, node: &Value) -> bool {
    let Some(selector) = pod.pointer("/spec/nodeSelector").and_then(Value::as_object) else {
        return true;
    };
    let node_labels = labels(node);
    selector.iter().all(|(k, v)| node_labels.get(k) == Some(v))
}

/// Where each unscheduled pod goes: the fitting node with the fewest pods (ties: by name).
pub fn assign(pods: &[Value], nodes: &[&Value]) -> Vec<Binding> {
    let mut load: BTreeMap<&str, usize> = nodes.iter().map(|n| (name(n), 0)).collect();
    for p in pods {
        if let Some(n) = load.get_mut(text(p, "/spec/nodeName")) {
            *n += 1;
        }
    }
    let mut out = Vec::new();
    for p in pods.iter().filter(|p| unscheduled(p)) {
        let best = nodes
            .iter()
            .filter(|n| fits(p, n))
            .map(|n| name(n))
            .min_by_key(|n| (load.get(n).copied().unwrap_or(0), *n));
        let Some(node) = best else { continue };
        if let Some(count) = load.get_mut(node) {
            *count += 1;
        }
        out.push(Binding {
            namespace: namespace(p).unwrap_or("default").to_string(),
            pod: name(p).to_string(),
            node: node.to_string(),
        });
    }
    out
}

pub async fn reconcile(c: &Cluster, pods: &[Value], nodes: &[&Value]) -> Result<(), Error> {
    for b in assign(pods, nodes) {
        tracing::debug!(pod = %b.pod, namespace = %b.namespace, node = %b.node, "binding");
        c.bind(&b.namespace, &b.pod, &b.node).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, node: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "d"}, "spec": {"nodeName": node}})
    }

    #[test]
    fn pods_go_to_the_least_loaded_fitting_node() {
        let a = json!({"metadata": {"name": "a", "labels": {"zone": "x"}}});
        let b = json!({"metadata": {"name": "b", "labels": {"zone": "y"}}});
        let pods = vec![
            pod("p0", "a"),
            pod("p1", ""),
            pod("p2", ""),
            json!({"metadata": {"name": "p3", "namespace": "d"}, "spec": {"nodeSelector": {"zone": "x"}}}),
            json!({"metadata": {"name": "p4", "namespace": "d"}, "spec": {"nodeSelector": {"zone": "z"}}}),
            json!({"metadata": {"name": "p5", "namespace": "d"}, "spec": {"schedulerName": "other"}}),
            json!({"metadata": {"name": "p6", "namespace": "d", "deletionTimestamp": "t"}, "spec": {}}),
        ];
        let got: Vec<(String, String)> = assign(&pods, &[&a, &b])
            .into_iter()
            .map(|b| (b.pod, b.node))
            .collect();
        let want = [("p1", "b"), ("p2", "a"), ("p3", "a")];
        assert_eq!(
            got,
            want.map(|(p, n)| (p.to_string(), n.to_string())).to_vec()
        );
        assert!(assign(&pods, &[]).is_empty());
    }
}

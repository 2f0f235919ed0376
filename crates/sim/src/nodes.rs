//! Simulated Nodes: registered Ready with room for everything (as a kubelet registers its
//! node), re-registered if deleted, and kept Ready by a heartbeat so that nothing watching
//! node health (a node lifecycle controller) would mark them NotReady.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Error;
use crate::client::{self, Cluster};
use crate::object::{name, now};
use crate::world::World;

/// How often a node's Ready condition is refreshed (a kubelet's default node status
/// update frequency is 10 s; kube marks a node unknown after 40 s of silence).
const HEARTBEAT: Duration = Duration::from_secs(20);

/// The label every simulated node carries (KWOK's `type=kwok` too, for tools that look
/// for that).
pub const SIMULATED: &str = "kplex.io/simulated";

pub struct Nodes {
    names: Vec<String>,
    last_heartbeat: Option<Instant>,
}

impl Nodes {
    pub fn new(prefix: &str, count: usize) -> Self {
        Self {
            names: (0..count).map(|i| format!("{prefix}{i}")).collect(),
            last_heartbeat: None,
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The simulated nodes' objects as the server has them (for their labels).
    pub fn objects<'a>(&self, w: &'a World) -> Vec<&'a Value> {
        w.nodes
            .iter()
            .filter(|n| self.names.iter().any(|s| s == name(n)))
            .collect()
    }

    pub async fn reconcile(&mut self, c: &Cluster, w: &World) -> Result<(), Error> {
        let due = self.last_heartbeat.is_none_or(|t| t.elapsed() >= HEARTBEAT);
        for (i, node_name) in self.names.iter().enumerate() {
            if !w.nodes.iter().any(|n| name(n) == node_name) {
                c.create(&client::nodes(), None, node(node_name, i)).await?;
            } else if due {
                let patch = json!({"status": {"conditions": conditions()}});
                c.patch(&client::nodes(), None, node_name, patch, true)
                    .await?;
            }
        }
        if due {
            self.last_heartbeat = Some(Instant::now());
            for node_name in &self.names {
                renew_lease(c, node_name).await?;
            }
        }
        Ok(())
    }
}

/// The kubelet's other heartbeat: its Lease in `kube-node-lease`, when that namespace
/// exists (a kplex workspace has none unless someone made it; then there is nothing to do).
async fn renew_lease(c: &Cluster, node_name: &str) -> Result<(), Error> {
    let ns = Some(LEASE_NAMESPACE);
    match c.create(&client::leases(), ns, lease(node_name)).await {
        Ok(()) => {}
        Err(Error::Api(e)) if client::is(&e, &[403, 404]) => return Ok(()),
        Err(e) => return Err(e),
    }
    let patch = json!({"spec": {"renewTime": micro_now()}});
    c.patch(&client::leases(), ns, node_name, patch, false)
        .await
}

const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Now as a `MicroTime` (the Lease's times have microseconds).
fn micro_now() -> String {
    now().replace('Z', ".000000Z")
}

pub fn lease(node_name: &str) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": node_name, "namespace": LEASE_NAMESPACE},
        "spec": {"holderIdentity": node_name, "leaseDurationSeconds": 40,
            "renewTime": micro_now()}})
}

fn conditions() -> Value {
    let now = now();
    let ok = |type_: &str, reason: &str| {
        json!({"type": type_, "status": "False", "reason": reason,
            "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!([
        ok("MemoryPressure", "KubeletHasSufficientMemory"),
        ok("DiskPressure", "KubeletHasNoDiskPressure"),
        ok("PIDPressure", "KubeletHasSufficientPID"),
        {"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "kubelet is posting ready status (simulated)",
            "lastHeartbeatTime": now, "lastTransitionTime": now},
    ])
}

/// The InternalIP of the `index`th node.
pub fn node_ip(index: usize) -> String {
    format!("10.0.{}.{}", (index / 250) % 256, index % 250 + 2)
}

/// A Node as a kubelet registers it (status included: kube lets a create carry it).
pub fn node(name: &str, index: usize) -> Value {
    let capacity =
        json!({"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"});
    json!({"apiVersion": "v1", "kind": "Node",
    "metadata": {"name": name, "labels": {
        "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
        SIMULATED: "true", "type": "kwok"},
        "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
    "spec": {},
    "status": {
        "capacity": capacity, "allocatable": capacity, "conditions": conditions(),
        "addresses": [{"type": "InternalIP", "address": node_ip(index)},
            {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"kubeletVersion": "v1.33.0", "kubeProxyVersion": "v1.33.0", "osImage": "kplex sim",
            "kernelVersion": "simulated", "containerRuntimeVersion": "sim://1.0", "operatingSystem": "linux",
            "architecture": "amd64", "machineID": name, "systemUUID": name, "bootID": name},
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_register_ready_with_room() {
        let n = node("sim-node-1", 1);
        assert_eq!(
            n["metadata"]["labels"]["kubernetes.io/hostname"],
            "sim-node-1"
        );
        assert_eq!(n["metadata"]["labels"][SIMULATED], "true");
        assert_eq!(n["status"]["allocatable"]["pods"], "110");
        assert_eq!(n["status"]["nodeInfo"]["kubeletVersion"], "v1.33.0");
        assert_eq!(n["status"]["addresses"][0]["address"], "10.0.0.3");
        let ready = &n["status"]["conditions"][3];
        assert_eq!(
            (ready["type"].as_str(), ready["status"].as_str()),
            (Some("Ready"), Some("True"))
        );
        assert_ne!(node_ip(0), node_ip(250));
        let l = lease("sim-node-1");
        assert_eq!(l["spec"]["holderIdentity"], "sim-node-1");
        let renew = l["spec"]["renewTime"].as_str().unwrap_or_default();
        assert!(renew.ends_with(".000000Z") && renew.len() == 27, "{renew}");
    }
}

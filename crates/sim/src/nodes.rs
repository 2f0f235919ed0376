//! Simulated Nodes: registered Ready, with room for everything, and kept Ready by a
//! heartbeat as a kubelet would.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Error;
use crate::client::{self, Cluster};

/// How often a node's Ready condition is refreshed.
const HEARTBEAT: Duration = Duration::from_secs(20);

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

    pub fn names(&self) -> Vec<String> {
        self.names.clone()
    }

    pub async fn reconcile(&mut self, c: &Cluster) -> Result<(), Error> {
        let due = self.last_heartbeat.is_none_or(|t| t.elapsed() >= HEARTBEAT);
        if !due {
            return Ok(());
        }
        let existing = c.list(&client::nodes()).await?;
        for (i, name) in self.names.iter().enumerate() {
            let found = existing.iter().find(|n| client::name(n) == name);
            match found {
                None => c.create(&client::nodes(), None, node(name, i)).await?,
                Some(_) => {
                    let status = json!({"conditions": conditions()});
                    c.patch(
                        &client::nodes(),
                        None,
                        name,
                        json!({"status": status}),
                        true,
                    )
                    .await?;
                }
            }
        }
        self.last_heartbeat = Some(Instant::now());
        Ok(())
    }
}

fn conditions() -> Value {
    let now = kplex_gocompat::now_rfc3339();
    json!([{"type": "Ready", "status": "True", "reason": "KubeletReady",
        "message": "kubelet is posting ready status (simulated)",
        "lastHeartbeatTime": now, "lastTransitionTime": now}])
}

/// A Node as a kubelet registers it (status included: kube lets a create carry it).
fn node(name: &str, index: usize) -> Value {
    let capacity =
        json!({"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "1Ti"});
    json!({"apiVersion": "v1", "kind": "Node",
    "metadata": {"name": name, "labels": {
        "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "kplex.io/simulated": "true", "type": "kwok"}},
    "spec": {},
    "status": {
        "capacity": capacity, "allocatable": capacity, "conditions": conditions(),
        "addresses": [{"type": "InternalIP", "address": format!("10.0.0.{}", index + 10)},
            {"type": "Hostname", "address": name}],
        "nodeInfo": {"kubeletVersion": "v1.33.0", "kubeProxyVersion": "", "osImage": "kplex sim",
            "kernelVersion": "simulated", "containerRuntimeVersion": "sim://1.0", "operatingSystem": "linux",
            "architecture": "amd64", "machineID": name, "systemUUID": name, "bootID": name},
    }})
}

//! The scheduler and the kubelets: unbound pods are bound to the least loaded simulated
//! node; bound pods become Running and Ready (a Job's pods then Succeeded).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Error;
use crate::client::{self, Cluster, text};

/// How long a Job's pod runs before it succeeds.
const JOB_POD_RUNS: Duration = Duration::from_secs(1);

/// Binds pods nobody placed yet (default scheduler) to the least loaded node.
pub async fn schedule(c: &Cluster, nodes: &[String]) -> Result<(), Error> {
    if nodes.is_empty() {
        return Ok(());
    }
    let pods = c.list(&client::pods()).await?;
    let mut load: HashMap<&str, usize> = nodes.iter().map(|n| (n.as_str(), 0)).collect();
    for p in &pods {
        if let Some(n) = load.get_mut(text(p, "/spec/nodeName")) {
            *n += 1;
        }
    }
    for p in &pods {
        let scheduler = text(p, "/spec/schedulerName");
        let unbound = text(p, "/spec/nodeName").is_empty()
            && (scheduler.is_empty() || scheduler == "default-scheduler")
            && !client::terminating(p);
        if !unbound {
            continue;
        }
        let Some((node, count)) = load
            .iter_mut()
            .min_by(|a, b| (*a.1).cmp(&*b.1).then(a.0.cmp(b.0)))
        else {
            continue;
        };
        *count += 1;
        let ns = client::namespace(p).unwrap_or("default");
        c.bind(ns, client::name(p), node).await?;
    }
    Ok(())
}

#[derive(Default)]
pub struct Kubelet {
    /// Pod uid → when its (simulated) containers started.
    started: HashMap<String, Instant>,
    next_ip: u32,
}

impl Kubelet {
    fn ip(&mut self) -> String {
        self.next_ip += 1;
        format!(
            "10.244.{}.{}",
            (self.next_ip >> 8) & 0xff,
            (self.next_ip & 0xff).max(1)
        )
    }

    /// Runs the pods bound to simulated nodes.
    pub async fn run_pods(&mut self, c: &Cluster, nodes: &[String]) -> Result<(), Error> {
        let pods = c.list(&client::pods()).await?;
        let mut live = Vec::new();
        for p in &pods {
            let node = text(p, "/spec/nodeName");
            if !nodes.iter().any(|n| n == node) || client::terminating(p) {
                continue;
            }
            live.push(client::uid(p).to_string());
            let phase = text(p, "/status/phase");
            let job = owned_by_kind(p, "Job");
            let started = *self
                .started
                .entry(client::uid(p).to_string())
                .or_insert_with(Instant::now);
            let status = match phase {
                "Succeeded" | "Failed" => continue,
                "Running" if job && started.elapsed() >= JOB_POD_RUNS => succeeded(p),
                "Running" => continue,
                _ => {
                    let ip = self.ip();
                    running(p, &ip, node)
                }
            };
            let ns = client::namespace(p);
            c.patch(
                &client::pods(),
                ns,
                client::name(p),
                json!({"status": status}),
                true,
            )
            .await?;
        }
        self.started.retain(|uid, _| live.contains(uid));
        Ok(())
    }
}

fn owned_by_kind(obj: &Value, kind: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|r| {
            r.iter()
                .any(|o| o.get("kind").and_then(Value::as_str) == Some(kind))
        })
}

fn containers(pod: &Value) -> Vec<(String, String)> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| (text(c, "/name").to_string(), text(c, "/image").to_string()))
        .collect()
}

fn pod_conditions(ready: bool, now: &str) -> Value {
    let s = |ok: bool| if ok { "True" } else { "False" };
    json!([
        {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "Ready", "status": s(ready), "lastTransitionTime": now},
        {"type": "ContainersReady", "status": s(ready), "lastTransitionTime": now},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
    ])
}

/// What a kubelet reports once every container started.
pub fn running(pod: &Value, ip: &str, node: &str) -> Value {
    let now = kplex_gocompat::now_rfc3339();
    let statuses: Vec<Value> = containers(pod)
        .into_iter()
        .map(|(name, image)| json!({"name": name, "image": image, "imageID": format!("sim://{image}"),
            "containerID": format!("sim://{name}"), "ready": true, "started": true, "restartCount": 0,
            "state": {"running": {"startedAt": now}}}))
        .collect();
    json!({"phase": "Running", "conditions": pod_conditions(true, &now), "hostIP": node_ip(node),
        "hostIPs": [{"ip": node_ip(node)}], "podIP": ip, "podIPs": [{"ip": ip}], "startTime": now,
        "qosClass": "BestEffort", "containerStatuses": statuses})
}

/// What a kubelet reports when a run-to-completion pod's containers exited 0.
pub fn succeeded(pod: &Value) -> Value {
    let now = kplex_gocompat::now_rfc3339();
    let statuses: Vec<Value> = containers(pod)
        .into_iter()
        .map(|(name, image)| json!({"name": name, "image": image, "imageID": format!("sim://{image}"),
            "containerID": format!("sim://{name}"), "ready": false, "started": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": text(pod, "/status/startTime"), "finishedAt": now}}}))
        .collect();
    json!({"phase": "Succeeded", "conditions": pod_conditions(false, &now), "containerStatuses": statuses})
}

fn node_ip(node: &str) -> String {
    let n: u32 = node.bytes().map(u32::from).sum::<u32>() % 200;
    format!("10.0.1.{}", n + 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_pods_are_ready_with_an_ip() {
        let pod = json!({"spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let s = running(&pod, "10.244.0.1", "n0");
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.244.0.1");
        assert_eq!(s["containerStatuses"][0]["ready"], true);
        let ready = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        assert!(ready);
        assert_eq!(succeeded(&pod)["phase"], "Succeeded");
    }
}

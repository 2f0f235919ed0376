//! The kubelets of the simulated nodes: a pod bound to one becomes Running and Ready at
//! once (nothing is pulled or started); a Job's pod exits 0 a moment later; a pod being
//! deleted is removed (the kubelet's final delete with grace period 0).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Error;
use crate::client::{self, Cluster};
use crate::nodes::node_ip;
use crate::object::{name, namespace, now, owned_by_kind, terminating, text, uid};

/// How long a Job's pod runs before it succeeds.
const JOB_POD_RUNS: Duration = Duration::from_secs(1);

/// What the kubelet does with one of its pods.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Being deleted: finish the deletion.
    Remove,
    /// Not running yet: report it Running and Ready.
    Start,
    /// A run-to-completion pod that ran long enough: report it Succeeded.
    Complete,
    Nothing,
}

/// The next step for `pod`, running for `ran` since this kubelet first saw it.
pub fn step(pod: &Value, ran: Duration) -> Step {
    let phase = text(pod, "/status/phase");
    if terminating(pod) {
        Step::Remove
    } else if matches!(phase, "Succeeded" | "Failed") {
        Step::Nothing
    } else if phase != "Running" || text(pod, "/status/podIP").is_empty() {
        Step::Start
    } else if owned_by_kind(pod, "Job") && ran >= JOB_POD_RUNS {
        Step::Complete
    } else {
        Step::Nothing
    }
}

#[derive(Default)]
pub struct Kubelet {
    /// Pod uid → when this kubelet first saw it running.
    started: HashMap<String, Instant>,
    next_ip: u32,
}

impl Kubelet {
    /// A pod IP from 10.244.0.0/16 no listed pod has.
    fn ip(&mut self, used: &HashSet<&str>) -> String {
        loop {
            self.next_ip = (self.next_ip + 1) % (1 << 16);
            let n = self.next_ip;
            if n & 0xff == 0 || n & 0xff == 0xff {
                continue;
            }
            let ip = format!("10.244.{}.{}", n >> 8, n & 0xff);
            if !used.contains(ip.as_str()) {
                return ip;
            }
        }
    }

    /// Runs the pods bound to the simulated `nodes`.
    pub async fn reconcile(
        &mut self,
        c: &Cluster,
        pods: &[Value],
        nodes: &[String],
    ) -> Result<(), Error> {
        let used: HashSet<&str> = pods.iter().map(|p| text(p, "/status/podIP")).collect();
        let mut live = HashSet::new();
        for p in pods {
            let node = text(p, "/spec/nodeName");
            let Some(index) = nodes.iter().position(|n| n == node) else {
                continue;
            };
            live.insert(uid(p).to_string());
            let started = *self
                .started
                .entry(uid(p).to_string())
                .or_insert_with(Instant::now);
            let status = match step(p, started.elapsed()) {
                Step::Nothing => continue,
                Step::Remove => {
                    c.delete(&client::pods(), namespace(p), name(p)).await?;
                    continue;
                }
                Step::Start => running(p, &self.ip(&used), &node_ip(index)),
                Step::Complete => succeeded(p),
            };
            let patch = json!({"status": status});
            c.patch(&client::pods(), namespace(p), name(p), patch, true)
                .await?;
        }
        self.started.retain(|uid, _| live.contains(uid));
        Ok(())
    }
}

/// (name, image) of the pod's containers of `field` (`containers`, `initContainers`).
fn containers(pod: &Value, field: &str) -> Vec<(String, String)> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| (text(c, "/name").to_string(), text(c, "/image").to_string()))
        .collect()
}

fn container_status(name: &str, image: &str, ready: bool, state: Value) -> Value {
    json!({"name": name, "image": image, "imageID": format!("sim://{image}"),
        "containerID": format!("sim://{name}"), "ready": ready, "started": ready,
        "restartCount": 0, "state": state})
}

fn pod_conditions(ready: bool, now: &str) -> Value {
    let s = |ok: bool| if ok { "True" } else { "False" };
    let mut conditions = json!([
        {"type": "PodReadyToStartContainers", "status": s(ready), "lastTransitionTime": now},
        {"type": "Initialized", "status": "True", "lastTransitionTime": now},
        {"type": "Ready", "status": s(ready), "lastTransitionTime": now},
        {"type": "ContainersReady", "status": s(ready), "lastTransitionTime": now},
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
    ]);
    if !ready {
        // A finished pod's readiness is false because it completed, not because it failed.
        for i in [2, 3] {
            conditions[i]["reason"] = json!("PodCompleted");
        }
    }
    conditions
}

/// Init containers, as a kubelet reports them once they all exited 0.
fn init_statuses(pod: &Value, now: &str) -> Value {
    containers(pod, "initContainers")
        .iter()
        .map(|(name, image)| {
            let state = json!({"terminated": {"exitCode": 0, "reason": "Completed",
                "startedAt": now, "finishedAt": now}});
            container_status(name, image, false, state)
        })
        .collect()
}

/// What a kubelet reports once every container started (and, having no probes to run,
/// is ready).
pub fn running(pod: &Value, ip: &str, host_ip: &str) -> Value {
    let now = now();
    let statuses: Vec<Value> = containers(pod, "containers")
        .iter()
        .map(|(name, image)| {
            container_status(name, image, true, json!({"running": {"startedAt": now}}))
        })
        .collect();
    json!({"phase": "Running", "conditions": pod_conditions(true, &now), "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}], "podIP": ip, "podIPs": [{"ip": ip}], "startTime": now,
        "qosClass": "BestEffort", "containerStatuses": statuses,
        "initContainerStatuses": init_statuses(pod, &now)})
}

/// What a kubelet reports when a run-to-completion pod's containers exited 0.
pub fn succeeded(pod: &Value) -> Value {
    let now = now();
    let started = text(pod, "/status/startTime");
    let statuses: Vec<Value> = containers(pod, "containers")
        .iter()
        .map(|(name, image)| {
            let state = json!({"terminated": {"exitCode": 0, "reason": "Completed",
                "startedAt": started, "finishedAt": now}});
            container_status(name, image, false, state)
        })
        .collect();
    json!({"phase": "Succeeded", "conditions": pod_conditions(false, &now),
        "containerStatuses": statuses})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_pods_are_ready_with_an_ip() {
        let pod = json!({"spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let s = running(&pod, "10.244.0.1", "10.0.0.2");
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.244.0.1");
        assert_eq!(s["hostIP"], "10.0.0.2");
        assert_eq!(s["containerStatuses"][0]["ready"], true);
        assert_eq!(s["containerStatuses"][0]["restartCount"], 0);
        assert!(s["containerStatuses"][0]["state"]["running"]["startedAt"].is_string());
        let running = json!({"spec": pod["spec"], "status": s});
        assert!(crate::object::pod_ready(&running));
        let done = succeeded(&running);
        assert_eq!(done["phase"], "Succeeded");
        assert_eq!(
            done["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            0
        );
    }

    #[test]
    fn the_kubelet_starts_completes_and_removes() {
        let job = json!({"kind": "Job"});
        let pending =
            json!({"metadata": {"ownerReferences": [job]}, "status": {"phase": "Pending"}});
        assert_eq!(step(&pending, Duration::ZERO), Step::Start);
        let running = json!({"metadata": {"ownerReferences": [job]},
            "status": {"phase": "Running", "podIP": "10.244.0.1"}});
        assert_eq!(step(&running, Duration::ZERO), Step::Nothing);
        assert_eq!(step(&running, JOB_POD_RUNS), Step::Complete);
        let served = json!({"status": {"phase": "Running", "podIP": "10.244.0.1"}});
        assert_eq!(step(&served, JOB_POD_RUNS * 10), Step::Nothing);
        let gone = json!({"metadata": {"deletionTimestamp": "t"}, "status": {"phase": "Running"}});
        assert_eq!(step(&gone, Duration::ZERO), Step::Remove);
        assert_eq!(
            step(&json!({"status": {"phase": "Succeeded"}}), Duration::ZERO),
            Step::Nothing
        );
    }

    #[test]
    fn pod_ips_are_unique() {
        let mut k = Kubelet::default();
        let used: HashSet<&str> = ["10.244.0.1"].into();
        assert_eq!(k.ip(&used), "10.244.0.2");
        assert_eq!(k.ip(&used), "10.244.0.3");
    }
}

//! kube-controller-manager's workload controllers, one step per pass: Deployments own a
//! ReplicaSet per pod template, ReplicaSets and the other workloads own pods, and each
//! reports the status kube's controller would (what `kubectl rollout status` and Helm's
//! readiness checks read).

use serde_json::{Map, Value, json};

use crate::Error;
use crate::client::{
    self, Cluster, condition_true, controlled_by, int, name, namespace, owner_ref, text,
};

/// kube's `rand.SafeEncodeString` alphabet (no vowels, no look-alikes).
const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// kube's pod-template-hash: FNV-1a (32 bits) of the template, its decimal digits mapped
/// through the safe alphabet. Stable for one template; any change gives a new ReplicaSet.
pub fn template_hash(template: &Value) -> String {
    let mut h: u32 = 0x811c9dc5;
    for b in template.to_string().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x01000193);
    }
    h.to_string()
        .bytes()
        .map(|d| char::from(SAFE[usize::from(d) % SAFE.len()]))
        .collect()
}

fn random_suffix() -> String {
    (0..5)
        .map(|_| char::from(SAFE[rand::random::<u32>() as usize % SAFE.len()]))
        .collect()
}

fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn pod_ready(pod: &Value) -> bool {
    text(pod, "/status/phase") == "Running" && condition_true(pod, "Ready")
}

/// The pods `owner` controls (not being deleted).
fn owned<'a>(pods: &'a [Value], owner: &Value) -> Vec<&'a Value> {
    pods.iter()
        .filter(|p| controlled_by(p, client::uid(owner)) && !client::terminating(p))
        .collect()
}

/// A pod from `owner`'s template, named `pod_name`.
fn pod_from(
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
        labels.insert(k.to_string(), json!(v));
    }
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    let mut metadata =
        json!({"name": pod_name, "labels": labels, "ownerReferences": owner_ref(owner)});
    if let Some(a) = template.pointer("/metadata/annotations") {
        metadata["annotations"] = a.clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

/// Creates or deletes pods so that `want` named ones exist for `owner`.
async fn converge_pods(
    c: &Cluster,
    owner: &Value,
    have: &[&Value],
    want: Vec<(String, Value)>,
) -> Result<(), Error> {
    let ns = namespace(owner);
    for (pod_name, pod) in &want {
        if !have.iter().any(|p| name(p) == pod_name) {
            c.create(&client::pods(), ns, pod.clone()).await?;
        }
    }
    for p in have {
        if !want.iter().any(|(n, _)| n == name(p)) {
            c.delete(&client::pods(), ns, name(p)).await?;
        }
    }
    Ok(())
}

async fn set_status(
    c: &Cluster,
    ar: &kube::api::ApiResource,
    obj: &Value,
    status: Value,
) -> Result<(), Error> {
    let current = obj.get("status").cloned().unwrap_or_else(|| json!({}));
    if merged(&current, &status) == current {
        return Ok(());
    }
    c.patch(
        ar,
        namespace(obj),
        name(obj),
        json!({"status": status}),
        true,
    )
    .await
}

/// `current` with `patch`'s fields (a shallow merge, as the merge patch does).
fn merged(current: &Value, patch: &Value) -> Value {
    let mut out = current.clone();
    if let (Some(o), Some(p)) = (out.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            o.insert(k.clone(), v.clone());
        }
    }
    out
}

pub async fn deployments(c: &Cluster) -> Result<(), Error> {
    let deployments = c.list(&client::deployments()).await?;
    let sets = c.list(&client::replica_sets()).await?;
    for d in &deployments {
        if client::terminating(d)
            || d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true)
        {
            continue;
        }
        let template = d
            .pointer("/spec/template")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let hash = template_hash(&template);
        let new_name = format!("{}-{hash}", name(d));
        let mine: Vec<&Value> = sets
            .iter()
            .filter(|s| controlled_by(s, client::uid(d)))
            .collect();
        let want = replicas(d);
        match mine.iter().find(|s| name(s) == new_name) {
            None => {
                c.create(
                    &client::replica_sets(),
                    namespace(d),
                    replica_set(d, &new_name, &hash, want),
                )
                .await?
            }
            Some(s) if replicas(s) != want => {
                c.patch(
                    &client::replica_sets(),
                    namespace(d),
                    &new_name,
                    json!({"spec": {"replicas": want}}),
                    false,
                )
                .await?;
            }
            Some(_) => {}
        }
        // Old ReplicaSets scale to zero once the new one is available (a rolling update in
        // one step).
        let new = mine.iter().find(|s| name(s) == new_name);
        let new_available = new.is_some_and(|s| int(s, "/status/availableReplicas") >= want);
        for old in mine
            .iter()
            .filter(|s| name(s) != new_name && replicas(s) != 0)
        {
            if new_available {
                c.patch(
                    &client::replica_sets(),
                    namespace(d),
                    name(old),
                    json!({"spec": {"replicas": 0}}),
                    false,
                )
                .await?;
            }
        }
        set_status(
            c,
            &client::deployments(),
            d,
            deployment_status(d, new.copied(), &mine),
        )
        .await?;
    }
    Ok(())
}

fn replica_set(d: &Value, rs_name: &str, hash: &str, replicas: i64) -> Value {
    let mut template = d
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = d
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or_else(|| json!({}));
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let mut labels: Map<String, Value> = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert("pod-template-hash".into(), json!(hash));
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": rs_name, "labels": labels, "ownerReferences": owner_ref(d),
            "annotations": {"deployment.kubernetes.io/revision": "1",
                "deployment.kubernetes.io/desired-replicas": replicas.to_string()}},
        "spec": {"replicas": replicas, "selector": selector, "template": template}})
}

/// A Deployment's status from its ReplicaSets, as kube's deployment controller computes it.
pub fn deployment_status(d: &Value, new: Option<&Value>, sets: &[&Value]) -> Value {
    let want = replicas(d);
    let sum = |p: &str| sets.iter().map(|s| int(s, p)).sum::<i64>();
    let (replicas_now, ready, available) = (
        sum("/status/replicas"),
        sum("/status/readyReplicas"),
        sum("/status/availableReplicas"),
    );
    let updated = new.map_or(0, |s| int(s, "/status/replicas"));
    let now = kplex_gocompat::now_rfc3339();
    let available_ok = available >= want;
    let complete = updated == want && replicas_now == want && available == want;
    let mut status = json!({
        "observedGeneration": client::int(d, "/metadata/generation"),
        "replicas": replicas_now, "updatedReplicas": updated, "readyReplicas": ready,
        "availableReplicas": available,
        "conditions": [
            if available_ok {
                json!({"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.", "lastUpdateTime": now, "lastTransitionTime": now})
            } else {
                json!({"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability.", "lastUpdateTime": now, "lastTransitionTime": now})
            },
            if complete {
                json!({"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": format!("ReplicaSet \"{}\" has successfully progressed.", new.map(name).unwrap_or_default()), "lastUpdateTime": now, "lastTransitionTime": now})
            } else {
                json!({"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": "ReplicaSet is progressing.", "lastUpdateTime": now, "lastTransitionTime": now})
            },
        ],
    });
    if replicas_now - available > 0 {
        status["unavailableReplicas"] = json!(replicas_now - available);
    }
    // Conditions' times change only with their status (so a settled Deployment settles).
    keep_times(d, &mut status);
    status
}

/// Keeps the previous `lastTransitionTime`/`lastUpdateTime` of conditions whose status and
/// reason did not change.
fn keep_times(obj: &Value, status: &mut Value) {
    let before = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        for c in conditions {
            let prior = before.iter().find(|p| {
                p.get("type") == c.get("type")
                    && p.get("status") == c.get("status")
                    && p.get("reason") == c.get("reason")
            });
            if let Some(p) = prior {
                for t in ["lastTransitionTime", "lastUpdateTime"] {
                    if let Some(v) = p.get(t) {
                        c[t] = v.clone();
                    }
                }
            }
        }
    }
}

pub async fn replica_sets(c: &Cluster) -> Result<(), Error> {
    let sets = c.list(&client::replica_sets()).await?;
    let pods = c.list(&client::pods()).await?;
    for s in &sets {
        if client::terminating(s) {
            continue;
        }
        let have = owned(&pods, s);
        let want = usize::try_from(replicas(s)).unwrap_or(0);
        let mut names: Vec<String> = have.iter().map(|p| name(p).to_string()).collect();
        names.sort();
        let mut keep: Vec<(String, Value)> = names
            .iter()
            .take(want)
            .map(|n| (n.clone(), Value::Null))
            .collect();
        while keep.len() < want {
            let pod_name = format!("{}-{}", name(s), random_suffix());
            keep.push((pod_name.clone(), pod_from(s, &pod_name, &[], None)));
        }
        converge_pods(c, s, &have, keep).await?;
        let ready = have.iter().filter(|p| pod_ready(p)).count() as i64;
        let count = (have.len() as i64).min(replicas(s));
        let status = json!({"replicas": count, "fullyLabeledReplicas": count, "readyReplicas": ready.min(count),
            "availableReplicas": ready.min(count), "observedGeneration": int(s, "/metadata/generation")});
        set_status(c, &client::replica_sets(), s, status).await?;
    }
    Ok(())
}

pub async fn stateful_sets(c: &Cluster) -> Result<(), Error> {
    let sets = c.list(&client::stateful_sets()).await?;
    let pods = c.list(&client::pods()).await?;
    for s in &sets {
        if client::terminating(s) {
            continue;
        }
        let have = owned(&pods, s);
        let revision = format!(
            "{}-{}",
            name(s),
            template_hash(s.pointer("/spec/template").unwrap_or(&Value::Null))
        );
        let want: Vec<(String, Value)> = (0..replicas(s).max(0))
            .map(|i| {
                let pod_name = format!("{}-{i}", name(s));
                let labels = [
                    ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
                    ("apps.kubernetes.io/pod-index", i.to_string()),
                    ("controller-revision-hash", revision.clone()),
                ];
                let pod = pod_from(s, &pod_name, &labels, None);
                (pod_name, pod)
            })
            .collect();
        converge_pods(c, s, &have, want).await?;
        let count = (have.len() as i64).min(replicas(s));
        let ready = (have.iter().filter(|p| pod_ready(p)).count() as i64).min(count);
        let status = json!({"replicas": count, "readyReplicas": ready, "currentReplicas": count,
            "updatedReplicas": count, "availableReplicas": ready, "observedGeneration": int(s, "/metadata/generation"),
            "currentRevision": revision, "updateRevision": revision, "collisionCount": 0});
        set_status(c, &client::stateful_sets(), s, status).await?;
    }
    Ok(())
}

pub async fn daemon_sets(c: &Cluster, nodes: &[String]) -> Result<(), Error> {
    let sets = c.list(&client::daemon_sets()).await?;
    let pods = c.list(&client::pods()).await?;
    for s in &sets {
        if client::terminating(s) {
            continue;
        }
        let have = owned(&pods, s);
        let want: Vec<(String, Value)> = nodes
            .iter()
            .map(|n| {
                let pod_name = format!("{}-{n}", name(s));
                let pod = pod_from(s, &pod_name, &[], Some(n));
                (pod_name, pod)
            })
            .collect();
        converge_pods(c, s, &have, want).await?;
        let n = nodes.len() as i64;
        let ready = have.iter().filter(|p| pod_ready(p)).count() as i64;
        let status = json!({"desiredNumberScheduled": n, "currentNumberScheduled": (have.len() as i64).min(n),
            "numberReady": ready, "numberAvailable": ready, "updatedNumberScheduled": (have.len() as i64).min(n),
            "numberMisscheduled": 0, "observedGeneration": int(s, "/metadata/generation")});
        set_status(c, &client::daemon_sets(), s, status).await?;
    }
    Ok(())
}

pub async fn jobs(c: &Cluster) -> Result<(), Error> {
    let jobs = c.list(&client::jobs()).await?;
    let pods = c.list(&client::pods()).await?;
    for j in &jobs {
        if client::terminating(j) || condition_true(j, "Complete") {
            continue;
        }
        let completions = j
            .pointer("/spec/completions")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let parallelism = j
            .pointer("/spec/parallelism")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let have = owned(&pods, j);
        let succeeded = have
            .iter()
            .filter(|p| text(p, "/status/phase") == "Succeeded")
            .count() as i64;
        let active = have
            .iter()
            .filter(|p| !matches!(text(p, "/status/phase"), "Succeeded" | "Failed"))
            .count() as i64;
        let to_start = (completions - succeeded - active)
            .min(parallelism - active)
            .max(0);
        for _ in 0..to_start {
            let pod_name = format!("{}-{}", name(j), random_suffix());
            let labels = [
                ("batch.kubernetes.io/job-name", name(j).to_string()),
                ("job-name", name(j).to_string()),
            ];
            c.create(
                &client::pods(),
                namespace(j),
                pod_from(j, &pod_name, &labels, None),
            )
            .await?;
        }
        let status = job_status(j, succeeded, active + to_start);
        set_status(c, &client::jobs(), j, status).await?;
    }
    Ok(())
}

/// A Job's status: `Complete` (and kube 1.33's `SuccessCriteriaMet`) once enough pods
/// succeeded.
pub fn job_status(j: &Value, succeeded: i64, active: i64) -> Value {
    let completions = j
        .pointer("/spec/completions")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let now = kplex_gocompat::now_rfc3339();
    let start = j
        .pointer("/status/startTime")
        .cloned()
        .unwrap_or_else(|| json!(now));
    let mut status = json!({"startTime": start, "active": active, "succeeded": succeeded, "ready": 0, "terminating": 0});
    if succeeded >= completions {
        status["active"] = json!(0);
        status["completionTime"] = json!(now);
        status["conditions"] = json!([
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": now, "lastTransitionTime": now},
        ]);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_hashes_are_stable_and_safe() {
        let a = template_hash(&json!({"spec": {"containers": [{"image": "nginx"}]}}));
        assert_eq!(
            a,
            template_hash(&json!({"spec": {"containers": [{"image": "nginx"}]}}))
        );
        assert_ne!(
            a,
            template_hash(&json!({"spec": {"containers": [{"image": "nginx:2"}]}}))
        );
        assert!(a.bytes().all(|b| SAFE.contains(&b)));
    }

    #[test]
    fn a_deployment_is_complete_when_its_new_set_is_available() {
        let d = json!({"metadata": {"generation": 2}, "spec": {"replicas": 2}});
        let rs = json!({"metadata": {"name": "web-x"}, "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}});
        let s = deployment_status(&d, Some(&rs), &[&rs]);
        assert_eq!(s["observedGeneration"], 2);
        assert_eq!(
            (
                s["updatedReplicas"].as_i64(),
                s["availableReplicas"].as_i64()
            ),
            (Some(2), Some(2))
        );
        assert_eq!(s["conditions"][0]["status"], "True");
        assert_eq!(s["conditions"][1]["reason"], "NewReplicaSetAvailable");
        assert!(s.get("unavailableReplicas").is_none());
        let rs0 = json!({"status": {"replicas": 2, "readyReplicas": 0, "availableReplicas": 0}});
        let s = deployment_status(&d, Some(&rs0), &[&rs0]);
        assert_eq!(s["conditions"][0]["status"], "False");
        assert_eq!(s["unavailableReplicas"], 2);
    }

    #[test]
    fn jobs_complete_with_kubes_conditions() {
        let j = json!({"spec": {"completions": 2}});
        assert!(job_status(&j, 1, 1).get("conditions").is_none());
        let done = job_status(&j, 2, 0);
        assert_eq!(done["conditions"][1]["type"], "Complete");
        assert_eq!(done["active"], 0);
    }
}

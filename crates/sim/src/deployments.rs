//! kube's Deployment controller: one ReplicaSet per pod template
//! (`<deployment>-<pod-template-hash>`), scaled to `spec.replicas`; older ones scaled to 0
//! once the new one is available (a rolling update in one step); and the status
//! `kubectl rollout status`, `kubectl wait --for=condition=Available` and Helm read.

use serde_json::{Map, Value, json};

use crate::Error;
use crate::client::{self, Cluster};
use crate::object::{
    controlled_by, generation, hash, int, keep_condition_times, name, namespace, now, owner_ref,
    replicas, terminating, text, uid,
};
use crate::world::World;

pub const REVISION: &str = "deployment.kubernetes.io/revision";

/// The pod-template-hash of a Deployment: stable for one template; a changed template
/// gives a new ReplicaSet.
pub fn template_hash(d: &Value) -> String {
    hash(d.pointer("/spec/template").unwrap_or(&Value::Null))
}

fn revision(obj: &Value) -> i64 {
    text(
        obj,
        &format!("/metadata/annotations/{}", REVISION.replace('/', "~1")),
    )
    .parse()
    .unwrap_or(0)
}

/// The new ReplicaSet of a Deployment whose template hashes to `hash`, at `revision`.
pub fn replica_set(d: &Value, hash: &str, revision: i64) -> Value {
    let mut template = match d.pointer("/spec/template") {
        Some(t) if t.is_object() => t.clone(),
        _ => json!({}),
    };
    template["metadata"]["labels"]["pod-template-hash"] = json!(hash);
    let mut selector = match d.pointer("/spec/selector") {
        Some(s) if s.is_object() => s.clone(),
        _ => json!({}),
    };
    selector["matchLabels"]["pod-template-hash"] = json!(hash);
    let labels = template["metadata"]["labels"].clone();
    let want = replicas(d);
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": format!("{}-{hash}", name(d)), "labels": labels,
            "ownerReferences": owner_ref(d),
            "annotations": {REVISION: revision.to_string(),
                "deployment.kubernetes.io/desired-replicas": want.to_string(),
                "deployment.kubernetes.io/max-replicas": want.to_string()}},
        "spec": {"replicas": want, "selector": selector, "template": template}})
}

/// `spec.strategy.rollingUpdate.maxUnavailable` of `want` replicas (an int or a percent,
/// rounded down; 25% by default; 0 for Recreate).
pub fn max_unavailable(d: &Value, want: i64) -> i64 {
    if text(d, "/spec/strategy/type") == "Recreate" {
        return 0;
    }
    let value = d.pointer("/spec/strategy/rollingUpdate/maxUnavailable");
    match value {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<i64>().ok())
            .map_or(0, |p| want * p / 100),
        _ => want * 25 / 100,
    }
    .clamp(0, want)
}

fn condition(type_: &str, status: bool, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": type_, "status": if status { "True" } else { "False" }, "reason": reason,
        "message": message, "lastUpdateTime": now, "lastTransitionTime": now})
}

/// A Deployment's status from its ReplicaSets (`new`: the one of its current template),
/// as kube's deployment controller computes it.
pub fn status(d: &Value, new: Option<&Value>, sets: &[&Value]) -> Value {
    let want = replicas(d);
    let sum = |p: &str| sets.iter().map(|s| int(s, p)).sum::<i64>();
    let total_wanted: i64 = sets.iter().map(|s| replicas(s)).sum();
    let (count, ready, available) = (
        sum("/status/replicas"),
        sum("/status/readyReplicas"),
        sum("/status/availableReplicas"),
    );
    let updated = new.map_or(0, |s| int(s, "/status/replicas"));
    let now = now();
    let new_name = new.map(name).unwrap_or_default();
    let available_ok = available >= want - max_unavailable(d, want);
    let complete = updated == want && count == want && available >= want;
    let mut status = json!({
        "observedGeneration": generation(d),
        "replicas": count, "updatedReplicas": updated, "readyReplicas": ready,
        "availableReplicas": available,
        "conditions": [
            if available_ok {
                condition("Available", true, "MinimumReplicasAvailable", "Deployment has minimum availability.", &now)
            } else {
                condition("Available", false, "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", &now)
            },
            if complete {
                condition("Progressing", true, "NewReplicaSetAvailable", &format!("ReplicaSet \"{new_name}\" has successfully progressed."), &now)
            } else {
                condition("Progressing", true, "ReplicaSetUpdated", &format!("ReplicaSet \"{new_name}\" is progressing."), &now)
            },
        ],
    });
    status["unavailableReplicas"] = json!((total_wanted - available).max(0));
    // kube omits zero counts (`omitempty`); null removes them in the merge patch.
    if let Some(s) = status.as_object_mut() {
        for (k, v) in s.iter_mut() {
            if k.ends_with("eplicas") && v == &json!(0) {
                *v = Value::Null;
            }
        }
    }
    keep_condition_times(d, &mut status);
    status
}

/// What to do with a Deployment's ReplicaSets.
#[derive(Debug, PartialEq)]
pub struct Plan {
    /// The new ReplicaSet, when it does not exist yet.
    pub create: Option<Value>,
    /// (ReplicaSet, replicas) to scale.
    pub scale: Vec<(String, i64)>,
    /// The revision the Deployment is at.
    pub revision: i64,
}

pub fn plan(d: &Value, sets: &[&Value]) -> Plan {
    let hash = template_hash(d);
    let new_name = format!("{}-{hash}", name(d));
    let want = replicas(d);
    let new = sets.iter().find(|s| name(s) == new_name);
    let mut scale = Vec::new();
    let (create, revision) = match new {
        None => {
            let revision = sets.iter().map(|s| revision(s)).max().unwrap_or(0) + 1;
            (Some(replica_set(d, &hash, revision)), revision)
        }
        Some(s) => {
            if replicas(s) != want {
                scale.push((new_name.clone(), want));
            }
            (None, revision(s))
        }
    };
    let new_available =
        new.is_some_and(|s| replicas(s) == want && int(s, "/status/availableReplicas") >= want);
    if new_available {
        for old in sets
            .iter()
            .filter(|s| name(s) != new_name && replicas(s) != 0)
        {
            scale.push((name(old).to_string(), 0));
        }
    }
    Plan {
        create,
        scale,
        revision,
    }
}

pub async fn reconcile(c: &Cluster, w: &World) -> Result<(), Error> {
    for d in &w.deployments {
        let paused = d.pointer("/spec/paused").and_then(Value::as_bool) == Some(true);
        if terminating(d) || paused {
            continue;
        }
        let sets: Vec<&Value> = w
            .replica_sets
            .iter()
            .filter(|s| controlled_by(s, uid(d)) && !terminating(s))
            .collect();
        let plan = plan(d, &sets);
        let ns = namespace(d);
        if let Some(rs) = plan.create {
            tracing::debug!(deployment = %name(d), replicaset = %name(&rs), "creating replicaset");
            c.create(&client::replica_sets(), ns, rs).await?;
        }
        for (rs, n) in &plan.scale {
            let mut annotations = Map::new();
            annotations.insert(
                "deployment.kubernetes.io/desired-replicas".into(),
                json!(n.to_string()),
            );
            let patch = json!({"metadata": {"annotations": annotations}, "spec": {"replicas": n}});
            c.patch(&client::replica_sets(), ns, rs, patch, false)
                .await?;
        }
        if revision(d) != plan.revision {
            let patch = json!({"metadata": {"annotations": {REVISION: plan.revision.to_string()}}});
            c.patch(&client::deployments(), ns, name(d), patch, false)
                .await?;
        }
        let new_name = format!("{}-{}", name(d), template_hash(d));
        let new = sets.iter().find(|s| name(s) == new_name).copied();
        c.set_status(&client::deployments(), d, status(d, new, &sets))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(replicas: i64) -> Value {
        json!({"metadata": {"name": "web", "generation": 2, "uid": "d1"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    }

    fn rs(name: &str, spec: i64, count: i64, available: i64, revision: &str) -> Value {
        json!({"metadata": {"name": name, "annotations": {REVISION: revision}},
            "spec": {"replicas": spec},
            "status": {"replicas": count, "readyReplicas": available, "availableReplicas": available}})
    }

    #[test]
    fn the_pod_template_hash_is_stable() {
        assert_eq!(template_hash(&deployment(2)), template_hash(&deployment(3)));
        let mut other = deployment(2);
        other["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert_ne!(template_hash(&deployment(2)), template_hash(&other));
    }

    #[test]
    fn a_new_template_gets_a_new_replica_set_at_the_next_revision() {
        let d = deployment(2);
        let old = rs("web-old", 2, 2, 2, "3");
        let p = plan(&d, &[&old]);
        let new = p.create.unwrap();
        let hash = template_hash(&d);
        assert_eq!(new["metadata"]["name"], format!("web-{hash}"));
        assert_eq!(new["metadata"]["annotations"][REVISION], "4");
        assert_eq!(
            new["spec"]["selector"]["matchLabels"]["pod-template-hash"],
            json!(hash)
        );
        assert_eq!(new["spec"]["template"]["metadata"]["labels"]["app"], "web");
        assert_eq!(new["metadata"]["ownerReferences"][0]["uid"], "d1");
        assert_eq!((p.revision, p.scale), (4, vec![]));
        // Once the new one is available, old ones go to 0.
        let ready = rs(&format!("web-{hash}"), 2, 2, 2, "4");
        let p = plan(&d, &[&old, &ready]);
        assert_eq!(p.create, None);
        assert_eq!(p.scale, vec![("web-old".to_string(), 0)]);
        // Scaling changes the new set's replicas only.
        let p = plan(&deployment(3), &[&ready]);
        assert_eq!(p.scale, vec![(format!("web-{hash}"), 3)]);
    }

    #[test]
    fn a_deployment_is_complete_when_its_new_set_is_available() {
        let d = deployment(2);
        let done = rs("web-x", 2, 2, 2, "1");
        let s = status(&d, Some(&done), &[&done]);
        assert_eq!(s["observedGeneration"], 2);
        assert_eq!(
            (
                s["replicas"].as_i64(),
                s["updatedReplicas"].as_i64(),
                s["availableReplicas"].as_i64()
            ),
            (Some(2), Some(2), Some(2))
        );
        assert_eq!(s["conditions"][0]["reason"], "MinimumReplicasAvailable");
        assert_eq!(s["conditions"][1]["reason"], "NewReplicaSetAvailable");
        assert!(s["unavailableReplicas"].is_null());
        let starting = rs("web-x", 2, 2, 0, "1");
        let s = status(&d, Some(&starting), &[&starting]);
        assert_eq!(s["conditions"][0]["status"], "False");
        assert_eq!(s["conditions"][1]["reason"], "ReplicaSetUpdated");
        assert_eq!(s["unavailableReplicas"], 2);
        assert!(s["availableReplicas"].is_null());
    }

    #[test]
    fn max_unavailable_is_25_percent_rounded_down_by_default() {
        let mut d = deployment(4);
        assert_eq!(max_unavailable(&d, 4), 1);
        assert_eq!(max_unavailable(&d, 2), 0);
        d["spec"]["strategy"] = json!({"rollingUpdate": {"maxUnavailable": "50%"}});
        assert_eq!(max_unavailable(&d, 4), 2);
        d["spec"]["strategy"] = json!({"rollingUpdate": {"maxUnavailable": 9}});
        assert_eq!(max_unavailable(&d, 4), 4);
        d["spec"]["strategy"] = json!({"type": "Recreate"});
        assert_eq!(max_unavailable(&d, 4), 0);
    }
}

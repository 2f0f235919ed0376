//! kube's ReplicaSet controller: keeps `spec.replicas` pods (`<rs>-<5 random chars>`) and
//! reports how many exist, are ready and available.

use serde_json::{Value, json};

use crate::Error;
use crate::client::{self, Cluster};
use crate::object::{generation, name, pod_ready, random_suffix, replicas, terminating, text};
use crate::pods;
use crate::world::World;

/// Which of `have` to delete to keep `want`: the least useful first, as kube does —
/// unscheduled before scheduled, not ready before ready, then the newest name.
pub fn surplus(have: &[&Value], want: usize) -> Vec<String> {
    let mut order: Vec<&Value> = have.to_vec();
    order.sort_by_key(|p| {
        (
            !text(p, "/spec/nodeName").is_empty(),
            pod_ready(p),
            std::cmp::Reverse(text(p, "/metadata/creationTimestamp").to_string()),
            name(p).to_string(),
        )
    });
    let extra = have.len().saturating_sub(want);
    order
        .iter()
        .take(extra)
        .map(|p| name(p).to_string())
        .collect()
}

/// A ReplicaSet's status from the pods it controls.
pub fn status(rs: &Value, have: &[&Value]) -> Value {
    let count = have.len() as i64;
    let ready = have.iter().filter(|p| pod_ready(p)).count() as i64;
    json!({"replicas": count, "fullyLabeledReplicas": count, "readyReplicas": ready,
        "availableReplicas": ready, "observedGeneration": generation(rs)})
}

pub async fn reconcile(c: &Cluster, w: &World) -> Result<(), Error> {
    for rs in w.replica_sets.iter().filter(|r| !terminating(r)) {
        let have = pods::owned(&w.pods, rs);
        let want = usize::try_from(replicas(rs)).unwrap_or(0);
        let create: Vec<Value> = (have.len()..want)
            .map(|_| {
                let pod_name = format!("{}-{}", name(rs), random_suffix());
                pods::from_template(rs, &pod_name, &[], None)
            })
            .collect();
        pods::converge(c, rs, create, &surplus(&have, want)).await?;
        c.set_status(&client::replica_sets(), rs, status(rs, &have))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str, ready: bool) -> Value {
        let phase = if ready { "Running" } else { "Pending" };
        json!({"metadata": {"name": name}, "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    #[test]
    fn scale_down_removes_the_least_useful_pods() {
        let (a, b, c) = (
            pod("a", "n", true),
            pod("b", "", false),
            pod("c", "n", false),
        );
        let have = [&a, &b, &c];
        assert_eq!(surplus(&have, 1), vec!["b", "c"]);
        assert_eq!(surplus(&have, 3), Vec::<String>::new());
        assert_eq!(surplus(&have, 0).len(), 3);
    }

    #[test]
    fn status_counts_ready_pods() {
        let rs = json!({"metadata": {"generation": 4}});
        let (a, b) = (pod("a", "n", true), pod("b", "n", false));
        let s = status(&rs, &[&a, &b]);
        assert_eq!(
            s,
            json!({"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 1,
                "availableReplicas": 1, "observedGeneration": 4})
        );
    }
}

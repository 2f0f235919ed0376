//! kube's StatefulSet controller: pods `<sts>-0` … `<sts>-(n-1)` with stable names,
//! created in order (each once the previous is ready, unless `podManagementPolicy:
//! Parallel`), removed from the highest ordinal down; a changed template replaces pods
//! from the highest ordinal down, one at a time.

use serde_json::{Value, json};

use crate::Error;
use crate::client::{self, Cluster};
use crate::object::{generation, hash, name, pod_ready, replicas, terminating, text};
use crate::pods;
use crate::world::World;

const REVISION_LABEL: &str = "controller-revision-hash";

/// `<sts>-<hash of the template>`, the name kube gives the ControllerRevision.
pub fn update_revision(sts: &Value) -> String {
    format!(
        "{}-{}",
        name(sts),
        hash(sts.pointer("/spec/template").unwrap_or(&Value::Null))
    )
}

fn ordinal(sts: &Value, pod: &Value) -> Option<i64> {
    name(pod)
        .strip_prefix(name(sts))?
        .strip_prefix('-')?
        .parse()
        .ok()
}

fn revision_of(pod: &Value) -> &str {
    text(pod, &format!("/metadata/labels/{REVISION_LABEL}"))
}

/// (pods to create, pods to delete) to move `sts` one step.
pub fn plan(sts: &Value, have: &[&Value]) -> (Vec<Value>, Vec<String>) {
    let want = replicas(sts);
    let revision = update_revision(sts);
    let parallel = text(sts, "/spec/podManagementPolicy") == "Parallel";
    let mut by_ordinal: Vec<(i64, &Value)> = have
        .iter()
        .filter_map(|p| ordinal(sts, p).map(|o| (o, *p)))
        .collect();
    by_ordinal.sort_by_key(|(o, _)| *o);
    // Pods outside 0..want (and strays with foreign names) go, highest first.
    let mut delete: Vec<String> = by_ordinal
        .iter()
        .rev()
        .filter(|(o, _)| *o >= want || *o < 0)
        .map(|(_, p)| name(p).to_string())
        .collect();
    delete.extend(
        have.iter()
            .filter(|p| ordinal(sts, p).is_none())
            .map(|p| name(p).to_string()),
    );
    let mut create = Vec::new();
    for i in 0..want {
        match by_ordinal.iter().find(|(o, _)| *o == i) {
            Some((_, p)) if pod_ready(p) || parallel => continue,
            Some(_) => break,
            None => {
                let pod_name = format!("{}-{i}", name(sts));
                let labels = [
                    ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
                    ("apps.kubernetes.io/pod-index", i.to_string()),
                    (REVISION_LABEL, revision.clone()),
                ];
                let mut pod = pods::from_template(sts, &pod_name, &labels, None);
                // The pod's DNS name under the governing Service.
                pod["spec"]["hostname"] = json!(pod_name);
                let service = text(sts, "/spec/serviceName");
                if !service.is_empty() {
                    pod["spec"]["subdomain"] = json!(service);
                }
                create.push(pod);
                if !parallel {
                    break;
                }
            }
        }
    }
    // A rolling update: once every pod is there and ready, replace the highest outdated one.
    let settled = create.is_empty()
        && delete.is_empty()
        && by_ordinal.len() as i64 == want
        && by_ordinal.iter().all(|(_, p)| pod_ready(p));
    if settled
        && let Some((_, p)) = by_ordinal
            .iter()
            .rev()
            .find(|(_, p)| revision_of(p) != revision)
    {
        delete.push(name(p).to_string());
    }
    (create, delete)
}

pub fn status(sts: &Value, have: &[&Value]) -> Value {
    let revision = update_revision(sts);
    let count = have.len() as i64;
    let ready = have.iter().filter(|p| pod_ready(p)).count() as i64;
    let updated = have.iter().filter(|p| revision_of(p) == revision).count() as i64;
    // The current revision stays the older one until every pod runs the update.
    let current_revision = have
        .iter()
        .map(|p| revision_of(p))
        .find(|r| *r != revision && !r.is_empty())
        .unwrap_or(&revision)
        .to_string();
    let current = have
        .iter()
        .filter(|p| revision_of(p) == current_revision)
        .count() as i64;
    json!({"replicas": count, "readyReplicas": ready, "currentReplicas": current,
        "updatedReplicas": updated, "availableReplicas": ready,
        "observedGeneration": generation(sts), "currentRevision": current_revision,
        "updateRevision": revision, "collisionCount": 0})
}

pub async fn reconcile(c: &Cluster, w: &World) -> Result<(), Error> {
    for sts in w.stateful_sets.iter().filter(|s| !terminating(s)) {
        let have = pods::owned(&w.pods, sts);
        let (create, delete) = plan(sts, &have);
        pods::converge(c, sts, create, &delete).await?;
        c.set_status(&client::stateful_sets(), sts, status(sts, &have))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sts(replicas: i64) -> Value {
        json!({"metadata": {"name": "db", "generation": 1, "uid": "s"},
            "spec": {"replicas": replicas, "serviceName": "db",
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {}}}})
    }

    fn pod(s: &Value, i: i64, ready: bool) -> Value {
        let rev = update_revision(s);
        json!({"metadata": {"name": format!("db-{i}"), "labels": {REVISION_LABEL: rev}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    #[test]
    fn pods_are_made_in_order_each_once_the_previous_is_ready() {
        let s = sts(3);
        let (create, delete) = plan(&s, &[]);
        assert_eq!(create.len(), 1);
        assert_eq!(create[0]["metadata"]["name"], "db-0");
        assert_eq!(
            create[0]["metadata"]["labels"]["apps.kubernetes.io/pod-index"],
            "0"
        );
        assert_eq!(
            create[0]["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"],
            "db-0"
        );
        assert_eq!(create[0]["spec"]["subdomain"], "db");
        assert!(delete.is_empty());
        let p0 = pod(&s, 0, false);
        assert!(plan(&s, &[&p0]).0.is_empty());
        let p0 = pod(&s, 0, true);
        assert_eq!(plan(&s, &[&p0]).0[0]["metadata"]["name"], "db-1");
    }

    #[test]
    fn scale_down_removes_the_highest_ordinals() {
        let s = sts(1);
        let (p0, p1, p2) = (pod(&s, 0, true), pod(&s, 1, true), pod(&s, 2, true));
        let (create, delete) = plan(&s, &[&p0, &p1, &p2]);
        assert!(create.is_empty());
        assert_eq!(delete, vec!["db-2", "db-1"]);
    }

    #[test]
    fn status_reports_revisions_and_readiness() {
        let s = sts(2);
        let (p0, p1) = (pod(&s, 0, true), pod(&s, 1, false));
        let st = status(&s, &[&p0, &p1]);
        assert_eq!(st["replicas"], 2);
        assert_eq!(st["readyReplicas"], 1);
        assert_eq!(st["updatedReplicas"], 2);
        assert_eq!(st["currentRevision"], st["updateRevision"]);
        let mut new = s.clone();
        new["spec"]["template"]["spec"]["containers"] = json!([{"name": "c", "image": "x"}]);
        let p1 = pod(&s, 1, true);
        let (_, delete) = plan(&new, &[&p0, &p1]);
        assert_eq!(delete, vec!["db-1"]);
        assert_eq!(
            status(&new, &[&p0, &p1])["currentRevision"],
            update_revision(&s)
        );
    }
}

//! kube's DaemonSet controller: one pod per simulated node its template's `nodeSelector`
//! admits, placed directly (`spec.nodeName`, no scheduler); pods of an older template are
//! replaced.

use serde_json::{Value, json};

use crate::Error;
use crate::client::{self, Cluster};
use crate::object::{generation, hash, name, pod_ready, terminating, text};
use crate::pods;
use crate::scheduler::fits;
use crate::world::World;

const REVISION_LABEL: &str = "controller-revision-hash";

fn revision(ds: &Value) -> String {
    hash(ds.pointer("/spec/template").unwrap_or(&Value::Null))
}

/// The nodes `ds` wants a pod on.
fn wanted_nodes<'a>(ds: &Value, nodes: &[&'a Value]) -> Vec<&'a str> {
    let probe = json!({"spec": ds.pointer("/spec/template/spec").cloned().unwrap_or_default()});
    nodes
        .iter()
        .filter(|n| fits(&probe, n))
        .map(|n| name(n))
        .collect()
}

/// (pods to create, pods to delete) for `ds` on `nodes`.
pub fn plan(ds: &Value, have: &[&Value], nodes: &[&Value]) -> (Vec<Value>, Vec<String>) {
    let revision = revision(ds);
    let wanted = wanted_nodes(ds, nodes);
    let current = |p: &&&Value| {
        wanted.contains(&text(p, "/spec/nodeName"))
            && text(p, &format!("/metadata/labels/{REVISION_LABEL}")) == revision
    };
    let delete = have
        .iter()
        .filter(|p| !current(p))
        .map(|p| name(p).to_string())
        .collect();
    let create = wanted
        .iter()
        .filter(|n| {
            !have
                .iter()
                .filter(current)
                .any(|p| text(p, "/spec/nodeName") == **n)
        })
        .map(|n| {
            let pod_name = format!("{}-{}", name(ds), hash(&json!(n)));
            let labels = [(REVISION_LABEL, revision.clone())];
            pods::from_template(ds, &pod_name, &labels, Some(n))
        })
        .collect();
    (create, delete)
}

pub fn status(ds: &Value, have: &[&Value], nodes: &[&Value]) -> Value {
    let revision = revision(ds);
    let desired = wanted_nodes(ds, nodes).len() as i64;
    let scheduled = have.len() as i64;
    let ready = have.iter().filter(|p| pod_ready(p)).count() as i64;
    let updated = have
        .iter()
        .filter(|p| text(p, &format!("/metadata/labels/{REVISION_LABEL}")) == revision)
        .count() as i64;
    let unavailable = (desired - ready).max(0);
    json!({"desiredNumberScheduled": desired, "currentNumberScheduled": scheduled,
        "numberReady": ready, "numberAvailable": if ready > 0 { json!(ready) } else { Value::Null },
        "numberUnavailable": if unavailable > 0 { json!(unavailable) } else { Value::Null },
        "updatedNumberScheduled": updated, "numberMisscheduled": 0,
        "observedGeneration": generation(ds)})
}

pub async fn reconcile(c: &Cluster, w: &World, nodes: &[&Value]) -> Result<(), Error> {
    for ds in w.daemon_sets.iter().filter(|d| !terminating(d)) {
        let have = pods::owned(&w.pods, ds);
        let (create, delete) = plan(ds, &have, nodes);
        pods::converge(c, ds, create, &delete).await?;
        c.set_status(&client::daemon_sets(), ds, status(ds, &have, nodes))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pod_per_admitted_node() {
        let ds = json!({"metadata": {"name": "agent", "generation": 3},
            "spec": {"template": {"spec": {"nodeSelector": {"zone": "x"}}}}});
        let a = json!({"metadata": {"name": "a", "labels": {"zone": "x"}}});
        let b = json!({"metadata": {"name": "b", "labels": {"zone": "y"}}});
        let (create, delete) = plan(&ds, &[], &[&a, &b]);
        assert_eq!(create.len(), 1);
        assert_eq!(create[0]["spec"]["nodeName"], "a");
        assert!(delete.is_empty());
        let mut running = create[0].clone();
        running["status"] =
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
        let (create, delete) = plan(&ds, &[&running], &[&a, &b]);
        assert!(create.is_empty() && delete.is_empty());
        let s = status(&ds, &[&running], &[&a, &b]);
        assert_eq!(
            (
                s["desiredNumberScheduled"].as_i64(),
                s["numberReady"].as_i64(),
                s["updatedNumberScheduled"].as_i64()
            ),
            (Some(1), Some(1), Some(1))
        );
        assert!(s["numberUnavailable"].is_null());
        // A pod on a node no longer admitted goes.
        let (_, delete) = plan(&ds, &[&running], &[&b]);
        assert_eq!(delete.len(), 1);
    }
}

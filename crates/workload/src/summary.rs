//! One status for an object placed on several targets (kcp's "summarizing"): each target's
//! agent writes its own status into annotation `experimental.status.workload.kcp.io/<key>`;
//! the upstream `.status` is their aggregate, so `kubectl get`, `kubectl rollout status` and
//! `kubectl wait` read the whole fleet in one GET.
//!
//! The rules, by field:
//! - replica and pod counts are summed (per kind, [`SUMMED`]);
//! - `observedGeneration` is the minimum, absent until every target has reported (a
//!   client waits for the rollout, as it should);
//! - a condition is `True` only when it is `True` on every target; otherwise it takes the
//!   first target's non-`True` state, its message naming that target. Conditions whose
//!   `True` is bad news ([`TRUE_IS_BAD`]: `ReplicaFailure`, a Job's `Failed`) are `True` when
//!   any target has them `True`;
//! - a target with no status yet makes every condition `Unknown` (reason
//!   `StatusPending`), so `Available` is never true before the whole fleet says so;
//! - load-balancer ingress points are concatenated; a Job's `startTime` is the earliest,
//!   its `completionTime` the latest once every target has one;
//! - anything else comes from the first target (in key order) that reported.

use serde_json::{Map, Value, json};

/// `experimental.status.workload.kcp.io/<key>`: one target's status, as JSON.
pub use kplex_registry::object::STATUS_ANNOTATION_PREFIX;

/// Integer fields summed over the targets, by kind; other kinds sum nothing.
const SUMMED: &[(&str, &[&str])] = &[
    (
        "Deployment",
        &[
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "terminatingReplicas",
        ],
    ),
    (
        "StatefulSet",
        &[
            "replicas",
            "readyReplicas",
            "currentReplicas",
            "updatedReplicas",
            "availableReplicas",
        ],
    ),
    (
        "Job",
        &["active", "succeeded", "failed", "ready", "terminating"],
    ),
];

/// Condition types whose `True` means trouble: any target's `True` is the fleet's.
const TRUE_IS_BAD: &[&str] = &["ReplicaFailure", "Failed", "FailureTarget", "Stalled"];

/// The status annotation of target `key`.
pub fn status_annotation(key: &str) -> String {
    format!("{STATUS_ANNOTATION_PREFIX}{key}")
}

/// Each target's reported status (None: not yet), in key order, from an object's
/// annotations; `keys` are the targets it is placed on.
pub fn reported(annotations: &Map<String, Value>, keys: &[String]) -> Vec<(String, Option<Value>)> {
    let mut keys = keys.to_vec();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let status = annotations
                .get(&status_annotation(&k))
                .and_then(Value::as_str)
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .filter(Value::is_object);
            (k, status)
        })
        .collect()
}

/// Whether a Deployment or StatefulSet is available by the status one target reports: it
/// has seen the current generation, and (Deployment) its `Available` condition is true, or
/// (StatefulSet) every replica it runs is ready.
pub fn is_available(obj: &Value, status: &Value) -> bool {
    let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = status.get("observedGeneration").and_then(Value::as_i64);
    if observed < generation {
        return false;
    }
    match obj.get("kind").and_then(Value::as_str) {
        Some("StatefulSet") => {
            let count = |f: &str| status.get(f).and_then(Value::as_i64).unwrap_or(0);
            count("readyReplicas") >= count("replicas")
        }
        _ => status
            .get("conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Available" && c["status"] == "True")
            }),
    }
}

/// The aggregate status of an object of `kind` from its targets' statuses.
pub fn aggregate(kind: &str, targets: &[(String, Option<Value>)]) -> Value {
    let reports: Vec<(&str, &Map<String, Value>)> = targets
        .iter()
        .filter_map(|(k, s)| {
            s.as_ref()
                .and_then(Value::as_object)
                .map(|s| (k.as_str(), s))
        })
        .collect();
    let pending: Vec<&str> = targets
        .iter()
        .filter(|(_, s)| s.is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    let mut out: Map<String, Value> = reports
        .first()
        .map(|(_, s)| (*s).clone())
        .unwrap_or_default();
    let summed = SUMMED
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[][..], |(_, f)| *f);
    for field in summed {
        let values: Vec<i64> = reports
            .iter()
            .filter_map(|(_, s)| s.get(*field).and_then(Value::as_i64))
            .collect();
        if values.is_empty() {
            out.remove(*field);
        } else {
            out.insert((*field).into(), json!(values.iter().sum::<i64>()));
        }
    }
    let generations: Vec<i64> = reports
        .iter()
        .filter_map(|(_, s)| s.get("observedGeneration").and_then(Value::as_i64))
        .collect();
    match generations.iter().min() {
        Some(g) if pending.is_empty() && generations.len() == reports.len() => {
            out.insert("observedGeneration".into(), json!(g));
        }
        _ => {
            out.remove("observedGeneration");
        }
    }
    let conditions = conditions(&reports, &pending);
    if conditions.is_empty() {
        out.remove("conditions");
    } else {
        out.insert("conditions".into(), Value::Array(conditions));
    }
    if let Some(ingress) = load_balancer(&reports) {
        out.insert("loadBalancer".into(), json!({"ingress": ingress}));
    }
    job_times(&mut out, &reports, pending.is_empty());
    Value::Object(out)
}

/// Every condition type any target reports, merged (see the module's rules).
fn conditions(reports: &[(&str, &Map<String, Value>)], pending: &[&str]) -> Vec<Value> {
    let of = |s: &Map<String, Value>| -> Vec<Value> {
        s.get("conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut types: Vec<String> = Vec::new();
    for (_, s) in reports {
        for c in of(s) {
            if let Some(t) = c.get("type").and_then(Value::as_str)
                && !types.iter().any(|x| x == t)
            {
                types.push(t.to_string());
            }
        }
    }
    types
        .iter()
        .map(|t| {
            let per_target: Vec<(&str, Option<Value>)> = reports
                .iter()
                .map(|(k, s)| {
                    let c = of(s)
                        .into_iter()
                        .find(|c| c.get("type").and_then(Value::as_str) == Some(t));
                    (*k, c)
                })
                .collect();
            merge_condition(t, &per_target, pending)
        })
        .collect()
}

fn merge_condition(type_: &str, per_target: &[(&str, Option<Value>)], pending: &[&str]) -> Value {
    let status_of = |c: &Option<Value>| {
        c.as_ref()
            .and_then(|c| c.get("status"))
            .and_then(Value::as_str)
            .unwrap_or("Unknown")
            .to_string()
    };
    let template = per_target
        .iter()
        .find_map(|(_, c)| c.clone())
        .unwrap_or_else(|| json!({"type": type_}));
    let latest = per_target
        .iter()
        .filter_map(|(_, c)| c.as_ref()?.get("lastTransitionTime")?.as_str())
        .max()
        .map(String::from);
    let with = |mut c: Value, key: Option<&str>| {
        if let (Some(key), Some(m)) = (key, c.get("message").and_then(Value::as_str)) {
            c["message"] = json!(format!("target {key}: {m}"));
        }
        if let Some(t) = &latest {
            c["lastTransitionTime"] = json!(t);
        }
        c
    };
    if TRUE_IS_BAD.contains(&type_) {
        return match per_target.iter().find(|(_, c)| status_of(c) == "True") {
            Some((k, c)) => with(c.clone().unwrap_or(template), Some(k)),
            None => with(template, None),
        };
    }
    if !pending.is_empty() {
        let mut c = with(template, None);
        c["status"] = json!("Unknown");
        c["reason"] = json!("StatusPending");
        c["message"] = json!(format!(
            "no status yet from target(s) {}",
            pending.join(", ")
        ));
        return c;
    }
    match per_target.iter().find(|(_, c)| status_of(c) != "True") {
        Some((k, Some(c))) => with(c.clone(), Some(k)),
        Some((k, None)) => {
            let mut c = with(template, None);
            c["status"] = json!("Unknown");
            c["reason"] = json!("ConditionMissing");
            c["message"] = json!(format!("target {k} does not report {type_}"));
            c
        }
        None => with(template, None),
    }
}

/// The load-balancer ingress points of every target, if any has one.
fn load_balancer(reports: &[(&str, &Map<String, Value>)]) -> Option<Vec<Value>> {
    let mut all: Vec<Value> = Vec::new();
    let mut any = false;
    for (_, s) in reports {
        if let Some(points) = s
            .get("loadBalancer")
            .and_then(|lb| lb.get("ingress"))
            .and_then(Value::as_array)
        {
            any = true;
            for p in points {
                if !all.contains(p) {
                    all.push(p.clone());
                }
            }
        }
    }
    any.then_some(all)
}

/// A Job's times: started with the earliest target, complete with the last one.
fn job_times(out: &mut Map<String, Value>, reports: &[(&str, &Map<String, Value>)], all: bool) {
    let times = |field: &str| -> Vec<&str> {
        reports
            .iter()
            .filter_map(|(_, s)| s.get(field).and_then(Value::as_str))
            .collect()
    };
    if let Some(start) = times("startTime").into_iter().min() {
        out.insert("startTime".into(), json!(start));
    }
    let done = times("completionTime");
    match done.iter().max() {
        Some(t) if all && done.len() == reports.len() => {
            out.insert("completionTime".into(), json!(t));
        }
        _ => {
            out.remove("completionTime");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(replicas: i64, available: i64, generation: i64, avail: &str) -> Value {
        json!({
            "observedGeneration": generation,
            "replicas": replicas,
            "readyReplicas": available,
            "availableReplicas": available,
            "updatedReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": avail, "reason": "MinimumReplicasAvailable",
                 "message": "Deployment has minimum availability.",
                 "lastTransitionTime": format!("2026-12-0{generation}T00:00:00Z")},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
                 "message": "ok"}
            ]
        })
    }

    fn targets(statuses: &[Option<Value>]) -> Vec<(String, Option<Value>)> {
        statuses
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("t{i}"), s.clone()))
            .collect()
    }

    fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
        status["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == type_))
            .unwrap_or(&Value::Null)
    }

    /// (per-target states, replicas, available, observedGeneration, Available).
    type Row = (Vec<Option<Value>>, i64, i64, Value, &'static str);

    #[test]
    fn deployments_aggregate_over_a_table_of_target_states() {
        let table: Vec<Row> = vec![
            // All available: counts summed, the lowest generation, Available.
            (
                vec![
                    Some(deployment(2, 2, 3, "True")),
                    Some(deployment(3, 3, 3, "True")),
                ],
                5,
                5,
                json!(3),
                "True",
            ),
            // One target behind: its generation is the fleet's.
            (
                vec![
                    Some(deployment(2, 2, 3, "True")),
                    Some(deployment(3, 3, 2, "True")),
                ],
                5,
                5,
                json!(2),
                "True",
            ),
            // One target unavailable: the fleet is not available.
            (
                vec![
                    Some(deployment(2, 2, 3, "True")),
                    Some(deployment(3, 0, 3, "False")),
                ],
                5,
                2,
                json!(3),
                "False",
            ),
            // One target has not reported: unknown, and no generation observed yet.
            (
                vec![Some(deployment(2, 2, 3, "True")), None],
                2,
                2,
                Value::Null,
                "Unknown",
            ),
            // Three targets, all available.
            (
                vec![
                    Some(deployment(1, 1, 1, "True")),
                    Some(deployment(1, 1, 1, "True")),
                    Some(deployment(1, 1, 1, "True")),
                ],
                3,
                3,
                json!(1),
                "True",
            ),
        ];
        for (i, (states, replicas, available, generation, avail)) in table.into_iter().enumerate() {
            let status = aggregate("Deployment", &targets(&states));
            assert_eq!(status["replicas"], json!(replicas), "row {i}: {status}");
            assert_eq!(status["availableReplicas"], json!(available), "row {i}");
            assert_eq!(status["observedGeneration"], generation, "row {i}");
            assert_eq!(condition(&status, "Available")["status"], avail, "row {i}");
        }
    }

    #[test]
    fn availability_per_target() {
        let d = json!({"kind": "Deployment", "metadata": {"generation": 3}});
        assert!(is_available(&d, &deployment(2, 2, 3, "True")));
        assert!(
            !is_available(&d, &deployment(2, 2, 2, "True")),
            "old generation"
        );
        assert!(!is_available(&d, &deployment(2, 0, 3, "False")));
        let s = json!({"kind": "StatefulSet", "metadata": {"generation": 1}});
        let sts =
            |ready: i64| json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": ready});
        assert!(is_available(&s, &sts(2)));
        assert!(!is_available(&s, &sts(1)));
    }

    #[test]
    fn a_failing_target_names_itself_and_bad_conditions_win() {
        let failed = json!({"failed": 1, "conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "too many"}]});
        let ok = json!({"succeeded": 1, "completionTime": "2026-12-05T00:00:02Z",
            "startTime": "2026-12-05T00:00:00Z",
            "conditions": [{"type": "Complete", "status": "True", "reason": "Done", "message": "done"}]});
        let status = aggregate("Job", &targets(&[Some(ok.clone()), Some(failed)]));
        assert_eq!(condition(&status, "Failed")["status"], "True");
        assert_eq!(
            condition(&status, "Failed")["message"],
            "target t1: too many"
        );
        // Complete only when every target is: t1 does not say so.
        assert_eq!(condition(&status, "Complete")["status"], "Unknown");
        assert_eq!(status["completionTime"], Value::Null);
        assert_eq!(status["succeeded"], 1);
        assert_eq!(status["failed"], 1);
        let both = aggregate("Job", &targets(&[Some(ok.clone()), Some(ok)]));
        assert_eq!(condition(&both, "Complete")["status"], "True");
        assert_eq!(both["completionTime"], "2026-12-05T00:00:02Z");
    }

    #[test]
    fn load_balancers_and_other_kinds() {
        let lb = |ip: &str| json!({"loadBalancer": {"ingress": [{"ip": ip}]}});
        let status = aggregate(
            "Service",
            &targets(&[Some(lb("10.0.0.1")), Some(lb("10.0.0.2"))]),
        );
        assert_eq!(
            status["loadBalancer"]["ingress"],
            json!([{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}])
        );
        // A custom resource: its fields from the first target, nothing summed.
        let cr = |n: i64| json!({"phase": "Ready", "count": n});
        let status = aggregate("Widget", &targets(&[Some(cr(1)), Some(cr(2))]));
        assert_eq!(status, json!({"phase": "Ready", "count": 1}));
    }

    #[test]
    fn reports_come_from_the_annotations_of_placed_targets() {
        let annotations: Map<String, Value> = serde_json::from_value(json!({
            status_annotation("b"): "{\"replicas\":1}",
            status_annotation("a"): "not json",
            "other": "x",
        }))
        .unwrap();
        let got = reported(&annotations, &["b".into(), "a".into(), "c".into()]);
        assert_eq!(
            got,
            vec![
                ("a".into(), None),
                ("b".into(), Some(json!({"replicas": 1}))),
                ("c".into(), None)
            ]
        );
    }
}

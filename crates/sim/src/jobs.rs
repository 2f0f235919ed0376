//! kube's Job controller: up to `parallelism` pods at a time until `completions` pods
//! succeeded (the kubelet lets a Job's pod exit 0 after a moment), then the Job is
//! `SuccessCriteriaMet` and `Complete`, as kube 1.33 reports it.

use serde_json::{Value, json};

use crate::Error;
use crate::client::{self, Cluster};
use crate::object::{
    condition_true, keep_condition_times, name, now, pod_ready, random_suffix, terminating, text,
    uid,
};
use crate::pods;
use crate::world::World;

/// `spec.completions` (None: done once any pod succeeded and none runs).
fn completions(job: &Value) -> Option<i64> {
    job.pointer("/spec/completions").and_then(Value::as_i64)
}

fn parallelism(job: &Value) -> i64 {
    job.pointer("/spec/parallelism")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0)
}

#[derive(Debug, PartialEq, Eq, Default)]
pub struct Counts {
    pub active: i64,
    pub ready: i64,
    pub succeeded: i64,
    pub failed: i64,
}

pub fn count(have: &[&Value]) -> Counts {
    let phase = |p: &Value, ph: &str| text(p, "/status/phase") == ph;
    let n = |f: &dyn Fn(&Value) -> bool| have.iter().filter(|p| f(p)).count() as i64;
    Counts {
        active: n(&|p| !phase(p, "Succeeded") && !phase(p, "Failed")),
        ready: n(&|p| pod_ready(p)),
        succeeded: n(&|p| phase(p, "Succeeded")),
        failed: n(&|p| phase(p, "Failed")),
    }
}

pub fn done(job: &Value, c: &Counts) -> bool {
    match completions(job) {
        Some(n) => c.succeeded >= n,
        None => c.succeeded > 0 && c.active == 0,
    }
}

/// How many pods to start now.
pub fn to_start(job: &Value, c: &Counts) -> i64 {
    if done(job, c) {
        return 0;
    }
    let remaining = match completions(job) {
        Some(n) => n - c.succeeded - c.active,
        // A work queue: once one succeeded, no new pods.
        None if c.succeeded > 0 => 0,
        None => parallelism(job) - c.active,
    };
    remaining.min(parallelism(job) - c.active).max(0)
}

pub fn status(job: &Value, c: &Counts) -> Value {
    let now = now();
    let start = job
        .pointer("/status/startTime")
        .filter(|t| t.is_string())
        .cloned()
        .unwrap_or_else(|| json!(now));
    let mut status = json!({"startTime": start, "active": c.active, "ready": c.ready,
        "succeeded": c.succeeded, "failed": c.failed, "terminating": 0,
        "uncountedTerminatedPods": {}});
    if done(job, c) {
        let message = "Reached expected number of succeeded pods";
        let condition = |type_: &str| {
            json!({"type": type_, "status": "True", "reason": "CompletionsReached",
                "message": message, "lastProbeTime": now, "lastTransitionTime": now})
        };
        status["active"] = Value::Null;
        status["completionTime"] = json!(now);
        status["conditions"] = json!([condition("SuccessCriteriaMet"), condition("Complete")]);
        keep_condition_times(job, &mut status);
    }
    for k in ["active", "succeeded", "failed"] {
        if status[k] == json!(0) {
            status[k] = Value::Null;
        }
    }
    status
}

fn pod_labels(job: &Value) -> [(&'static str, String); 4] {
    [
        ("batch.kubernetes.io/job-name", name(job).to_string()),
        ("job-name", name(job).to_string()),
        ("batch.kubernetes.io/controller-uid", uid(job).to_string()),
        ("controller-uid", uid(job).to_string()),
    ]
}

pub async fn reconcile(c: &Cluster, w: &World) -> Result<(), Error> {
    for job in &w.jobs {
        let suspended = job.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
        if terminating(job) || suspended || condition_true(job, "Complete") {
            continue;
        }
        let have = pods::owned(&w.pods, job);
        let counts = count(&have);
        let create: Vec<Value> = (0..to_start(job, &counts))
            .map(|_| {
                let pod_name = format!("{}-{}", name(job), random_suffix());
                pods::from_template(job, &pod_name, &pod_labels(job), None)
            })
            .collect();
        pods::converge(c, job, create, &[]).await?;
        c.set_status(&client::jobs(), job, status(job, &counts))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(phase: &str) -> Value {
        json!({"status": {"phase": phase}})
    }

    #[test]
    fn a_job_runs_parallelism_pods_until_completions_succeeded() {
        let job = json!({"spec": {"completions": 3, "parallelism": 2}});
        let c = count(&[]);
        assert_eq!(to_start(&job, &c), 2);
        let (s, r) = (pod("Succeeded"), pod("Running"));
        let c = count(&[&s, &r]);
        assert_eq!(
            c,
            Counts {
                active: 1,
                ready: 0,
                succeeded: 1,
                failed: 0
            }
        );
        assert_eq!(to_start(&job, &c), 1);
        assert!(status(&job, &c).get("conditions").is_none());
        let c = count(&[&s, &s, &s]);
        assert_eq!(to_start(&job, &c), 0);
        let st = status(&job, &c);
        assert_eq!(st["conditions"][0]["type"], "SuccessCriteriaMet");
        assert_eq!(st["conditions"][1]["type"], "Complete");
        assert_eq!(st["conditions"][1]["status"], "True");
        assert!(st["completionTime"].is_string());
        assert!(st["active"].is_null());
        assert_eq!(st["succeeded"], 3);
    }

    #[test]
    fn a_job_without_completions_is_a_work_queue() {
        let job = json!({"spec": {}});
        assert_eq!(to_start(&job, &count(&[])), 1);
        let s = pod("Succeeded");
        assert!(done(&job, &count(&[&s])));
    }
}

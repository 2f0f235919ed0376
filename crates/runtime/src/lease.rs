//! The `coordination.k8s.io/v1` Lease as stored: pure functions from a record to the JSON
//! object kube-apiserver would hold, and back (client-go's `LeaseLock`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kplex_apimachinery::meta;
use serde_json::{Map, Value, json};

pub const GROUP: &str = "coordination.k8s.io";
pub const RESOURCE: &str = "leases";
pub const API_VERSION: &str = "coordination.k8s.io/v1";
pub const KIND: &str = "Lease";
/// The annotation naming an object's logical cluster (always the storage key's cluster).
pub use kplex_registry::object::CLUSTER_ANNOTATION;

/// A Lease's `spec`, as leader election reads it (client-go's `LeaderElectionRecord`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseRecord {
    /// `spec.holderIdentity`; `None` when absent or empty (released).
    pub holder_identity: Option<String>,
    /// `spec.leaseDurationSeconds`; 0 when absent.
    pub lease_duration_seconds: i64,
    /// `spec.acquireTime` (MicroTime).
    pub acquire_time: Option<String>,
    /// `spec.renewTime` (MicroTime).
    pub renew_time: Option<String>,
    /// `spec.leaseTransitions`; 0 when absent.
    pub lease_transitions: i64,
}

impl LeaseRecord {
    /// Reads the record of a Lease object; an error names what is not a Lease about it.
    pub fn from_object(obj: &Value) -> Result<Self, String> {
        let api_version = obj.get("apiVersion").and_then(Value::as_str);
        let kind = obj.get("kind").and_then(Value::as_str);
        if api_version != Some(API_VERSION) || kind != Some(KIND) {
            return Err(format!(
                "expected {API_VERSION} {KIND}, found {} {}",
                api_version.unwrap_or("<none>"),
                kind.unwrap_or("<none>")
            ));
        }
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let string = |field: &str| spec.get(field).and_then(Value::as_str).map(String::from);
        let int = |field: &str| spec.get(field).and_then(Value::as_i64).unwrap_or(0);
        Ok(Self {
            holder_identity: string("holderIdentity").filter(|h| !h.is_empty()),
            lease_duration_seconds: int("leaseDurationSeconds"),
            acquire_time: string("acquireTime"),
            renew_time: string("renewTime"),
            lease_transitions: int("leaseTransitions"),
        })
    }

    /// How long after it last changed the lease is held (at least nothing).
    pub fn duration(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.lease_duration_seconds).unwrap_or(0))
    }
}

/// Formats a time as Kubernetes' MicroTime: RFC 3339 in UTC with microseconds,
/// `2006-01-02T15:04:05.000000Z`.
pub fn micro_time(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let seconds = meta::format_rfc3339(secs);
    let base = seconds.strip_suffix('Z').unwrap_or(&seconds);
    format!("{base}.{:06}Z", since.subsec_micros())
}

/// Whole seconds for `leaseDurationSeconds`, rounded up so nobody waits less than asked.
pub fn duration_seconds(d: Duration) -> i64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i64::try_from(secs.max(1)).unwrap_or(i64::MAX)
}

/// A new Lease held by `holder` since `now` (no transitions yet).
pub fn new_object(
    cluster: &str,
    namespace: &str,
    name: &str,
    holder: &str,
    duration: Duration,
    now: SystemTime,
) -> Value {
    let t = micro_time(now);
    json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": meta::format_rfc3339(
                i64::try_from(now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs())
                    .unwrap_or(i64::MAX)
            ),
            "annotations": {CLUSTER_ANNOTATION: cluster},
        },
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration_seconds(duration),
            "acquireTime": t,
            "renewTime": t,
            "leaseTransitions": 0,
        },
    })
}

/// Makes `holder` the holder of an existing Lease at `now`: a renewal if it already
/// held it, else an acquisition (new `acquireTime`, one more transition). Other fields of
/// the object (labels, other annotations) are kept.
pub fn hold(
    obj: &mut Value,
    cluster: &str,
    previous: &LeaseRecord,
    holder: &str,
    duration: Duration,
    now: SystemTime,
) {
    let t = micro_time(now);
    let renewal = previous.holder_identity.as_deref() == Some(holder);
    let acquire_time = match (&previous.acquire_time, renewal) {
        (Some(at), true) => at.clone(),
        _ => t.clone(),
    };
    let transitions = if renewal {
        previous.lease_transitions
    } else {
        previous.lease_transitions.saturating_add(1)
    };
    write_spec(
        obj,
        cluster,
        json!({
            "holderIdentity": holder,
            "leaseDurationSeconds": duration_seconds(duration),
            "acquireTime": acquire_time,
            "renewTime": t,
            "leaseTransitions": transitions,
        }),
    );
}

/// Lets a Lease go so that another candidate takes it at once, as client-go's
/// `ReleaseOnCancel` does: no holder, one-second duration, times set to now.
pub fn release(obj: &mut Value, cluster: &str, previous: &LeaseRecord, now: SystemTime) {
    let t = micro_time(now);
    write_spec(
        obj,
        cluster,
        json!({
            "holderIdentity": "",
            "leaseDurationSeconds": 1,
            "acquireTime": t,
            "renewTime": t,
            "leaseTransitions": previous.lease_transitions,
        }),
    );
}

/// Replaces the leader-election fields of `spec` (keeping any others) and stamps the
/// cluster annotation, which is always the storage key's cluster.
fn write_spec(obj: &mut Value, cluster: &str, fields: Value) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let spec = root
        .entry("spec")
        .or_insert_with(|| Value::Object(Map::new()));
    if !spec.is_object() {
        *spec = Value::Object(Map::new());
    }
    if let (Some(spec), Value::Object(fields)) = (spec.as_object_mut(), fields) {
        spec.extend(fields);
    }
    let mut annotations = meta::annotations(obj);
    annotations.insert(CLUSTER_ANNOTATION.to_string(), Value::from(cluster));
    meta::set_annotations(obj, annotations);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, micros: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, micros * 1000)
    }

    #[test]
    fn micro_time_is_rfc3339_with_six_digits() {
        assert_eq!(micro_time(at(0, 0)), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            micro_time(at(1_700_000_000, 42)),
            "2023-11-14T22:13:20.000042Z"
        );
        assert_eq!(micro_time(SystemTime::now()).len(), 27);
    }

    #[test]
    fn durations_round_up_to_whole_seconds() {
        assert_eq!(duration_seconds(Duration::from_secs(15)), 15);
        assert_eq!(duration_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(duration_seconds(Duration::from_millis(300)), 1);
        assert_eq!(duration_seconds(Duration::ZERO), 1);
    }

    #[test]
    fn a_new_lease_looks_like_kubes() {
        let obj = new_object(
            "root",
            "kube-system",
            "kplex",
            "a",
            Duration::from_secs(15),
            at(1_700_000_000, 5),
        );
        assert_eq!(obj["apiVersion"], "coordination.k8s.io/v1");
        assert_eq!(obj["kind"], "Lease");
        assert_eq!(obj["metadata"]["name"], "kplex");
        assert_eq!(obj["metadata"]["namespace"], "kube-system");
        assert_eq!(obj["metadata"]["uid"].as_str().unwrap().len(), 36);
        assert_eq!(obj["metadata"]["creationTimestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(obj["metadata"]["annotations"]["kcp.io/cluster"], "root");
        assert_eq!(
            obj["spec"],
            json!({
                "holderIdentity": "a",
                "leaseDurationSeconds": 15,
                "acquireTime": "2023-11-14T22:13:20.000005Z",
                "renewTime": "2023-11-14T22:13:20.000005Z",
                "leaseTransitions": 0,
            })
        );
        let record = LeaseRecord::from_object(&obj).unwrap();
        assert_eq!(record.holder_identity.as_deref(), Some("a"));
        assert_eq!(record.duration(), Duration::from_secs(15));
    }

    #[test]
    fn renew_keeps_acquire_time_and_takeover_counts_a_transition() {
        let mut obj = new_object("root", "ns", "l", "a", Duration::from_secs(15), at(100, 0));
        let r0 = LeaseRecord::from_object(&obj).unwrap();
        hold(
            &mut obj,
            "root",
            &r0,
            "a",
            Duration::from_secs(15),
            at(102, 0),
        );
        let r1 = LeaseRecord::from_object(&obj).unwrap();
        assert_eq!(r1.acquire_time, r0.acquire_time);
        assert_eq!(
            r1.renew_time.as_deref(),
            Some("1970-01-01T00:01:42.000000Z")
        );
        assert_eq!(r1.lease_transitions, 0);

        hold(
            &mut obj,
            "root",
            &r1,
            "b",
            Duration::from_secs(15),
            at(130, 0),
        );
        let r2 = LeaseRecord::from_object(&obj).unwrap();
        assert_eq!(r2.holder_identity.as_deref(), Some("b"));
        assert_eq!(
            r2.acquire_time.as_deref(),
            Some("1970-01-01T00:02:10.000000Z")
        );
        assert_eq!(r2.lease_transitions, 1);

        release(&mut obj, "root", &r2, at(131, 0));
        assert_eq!(obj["spec"]["holderIdentity"], "");
        assert_eq!(obj["spec"]["leaseDurationSeconds"], 1);
        let r3 = LeaseRecord::from_object(&obj).unwrap();
        assert_eq!(
            (r3.holder_identity.as_deref(), r3.lease_transitions),
            (None, 1)
        );

        hold(
            &mut obj,
            "root",
            &r3,
            "a",
            Duration::from_secs(15),
            at(132, 0),
        );
        let r4 = LeaseRecord::from_object(&obj).unwrap();
        assert_eq!(
            r4.lease_transitions, 2,
            "taking a released lease is a transition"
        );
    }

    #[test]
    fn holding_keeps_foreign_fields_and_restamps_the_cluster() {
        let mut obj = json!({
            "apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": "l", "labels": {"x": "y"},
                         "annotations": {"kcp.io/cluster": "other", "note": "n"}},
            "spec": {"preferredHolder": "p"},
        });
        let r = LeaseRecord::from_object(&obj).unwrap();
        assert_eq!(r, LeaseRecord::default());
        hold(&mut obj, "root", &r, "a", Duration::from_secs(1), at(1, 0));
        assert_eq!(obj["metadata"]["labels"]["x"], "y");
        assert_eq!(obj["metadata"]["annotations"]["note"], "n");
        assert_eq!(obj["metadata"]["annotations"]["kcp.io/cluster"], "root");
        assert_eq!(obj["spec"]["preferredHolder"], "p");
        assert_eq!(obj["spec"]["leaseTransitions"], 1);
    }

    #[test]
    fn other_objects_are_not_leases() {
        let err = LeaseRecord::from_object(&json!({"apiVersion": "v1", "kind": "ConfigMap"}));
        assert_eq!(
            err.unwrap_err(),
            "expected coordination.k8s.io/v1 Lease, found v1 ConfigMap"
        );
        assert!(LeaseRecord::from_object(&json!([])).is_err());
    }
}

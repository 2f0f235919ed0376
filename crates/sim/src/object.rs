//! Reading and making Kubernetes objects as JSON values. The simulator works on dynamic
//! objects only, so that any API server's shapes (defaults, extra fields) pass through
//! untouched; these accessors answer "absent" instead of failing on odd input.

use serde_json::{Map, Value, json};

pub fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

pub fn name(obj: &Value) -> &str {
    text(obj, "/metadata/name")
}

pub fn namespace(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/namespace").and_then(Value::as_str)
}

pub fn uid(obj: &Value) -> &str {
    text(obj, "/metadata/uid")
}

pub fn generation(obj: &Value) -> i64 {
    int(obj, "/metadata/generation")
}

/// `spec.replicas`, defaulted to 1 as the API server does.
pub fn replicas(obj: &Value) -> i64 {
    obj.pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0)
}

pub fn labels(obj: &Value) -> Map<String, Value> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Whether `obj` is controlled by the object with uid `owner`.
pub fn controlled_by(obj: &Value, owner: &str) -> bool {
    !owner.is_empty()
        && obj
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| {
                refs.iter().any(|r| {
                    r.get("uid").and_then(Value::as_str) == Some(owner)
                        && r.get("controller").and_then(Value::as_bool) == Some(true)
                })
            })
}

/// Whether `obj` has an owner of `kind`.
pub fn owned_by_kind(obj: &Value, kind: &str) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|r| {
            r.iter()
                .any(|o| o.get("kind").and_then(Value::as_str) == Some(kind))
        })
}

/// The controller reference to `owner` (a one-element `ownerReferences`).
pub fn owner_ref(owner: &Value) -> Value {
    json!([{"apiVersion": text(owner, "/apiVersion"), "kind": text(owner, "/kind"),
        "name": name(owner), "uid": uid(owner), "controller": true, "blockOwnerDeletion": true}])
}

pub fn terminating(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

pub fn condition_true(obj: &Value, type_: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(type_)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// A pod the kubelet reports Running and Ready.
pub fn pod_ready(pod: &Value) -> bool {
    text(pod, "/status/phase") == "Running" && condition_true(pod, "Ready")
}

/// Whether every `selector` label is on `obj` with the same value.
pub fn matches_labels(obj: &Value, selector: &Map<String, Value>) -> bool {
    let labels = labels(obj);
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Now, as Kubernetes writes times (RFC 3339, seconds, UTC).
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// kube's `rand.SafeEncodeString` alphabet (no vowels, no look-alikes), used for generated
/// name suffixes and hashes.
pub const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Five random characters, as `generateName` appends.
pub fn random_suffix() -> String {
    (0..5)
        .map(|_| char::from(SAFE[rand::random::<u32>() as usize % SAFE.len()]))
        .collect()
}

/// FNV-1a (32 bits) of `value`'s JSON, its decimal digits mapped through the safe alphabet
/// (kube's pod-template-hash is FNV-1a of the template, encoded the same way). Stable for
/// one value; any change gives another string.
pub fn hash(value: &Value) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in value.to_string().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.to_string()
        .bytes()
        .map(|d| char::from(SAFE[usize::from(d) % SAFE.len()]))
        .collect()
}

/// Keeps the previous `lastTransitionTime`/`lastUpdateTime`/`lastProbeTime` of conditions
/// whose status and reason did not change: so a settled object's status stops changing,
/// and the simulator stops writing it.
pub fn keep_condition_times(obj: &Value, status: &mut Value) {
    let before = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) else {
        return;
    };
    for c in conditions {
        let prior = before.iter().find(|p| {
            p.get("type") == c.get("type")
                && p.get("status") == c.get("status")
                && p.get("reason") == c.get("reason")
        });
        if let Some(p) = prior {
            for t in ["lastTransitionTime", "lastUpdateTime", "lastProbeTime"] {
                if let Some(v) = p.get(t) {
                    c[t] = v.clone();
                }
            }
        }
    }
}

/// Whether merging `patch` (one level deep, as a merge patch of a status does for its
/// top-level fields; null removes a field) into `current` changes nothing.
pub fn already(current: Option<&Value>, patch: &Value) -> bool {
    let (Some(current), Some(patch)) = (current.and_then(Value::as_object), patch.as_object())
    else {
        return false;
    };
    patch.iter().all(|(k, v)| match current.get(k) {
        None => v.is_null(),
        Some(c) => c == v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_safe() {
        let a = hash(&json!({"spec": {"containers": [{"image": "nginx"}]}}));
        assert_eq!(
            a,
            hash(&json!({"spec": {"containers": [{"image": "nginx"}]}}))
        );
        assert_ne!(
            a,
            hash(&json!({"spec": {"containers": [{"image": "nginx:2"}]}}))
        );
        assert!(a.bytes().all(|b| SAFE.contains(&b)));
    }

    #[test]
    fn odd_objects_read_as_absent() {
        let odd = json!({"metadata": {"name": 3, "ownerReferences": "x", "labels": []}, "spec": {"replicas": -2}});
        assert_eq!(name(&odd), "");
        assert!(!controlled_by(&odd, "u"));
        assert!(labels(&odd).is_empty());
        assert_eq!(replicas(&odd), 0);
        assert_eq!(replicas(&json!({})), 1);
        assert!(!terminating(
            &json!({"metadata": {"deletionTimestamp": null}})
        ));
    }

    #[test]
    fn settled_conditions_keep_their_times() {
        let obj = json!({"status": {"conditions": [{"type": "A", "status": "True", "reason": "R", "lastTransitionTime": "t0"}]}});
        let mut s = json!({"conditions": [{"type": "A", "status": "True", "reason": "R", "lastTransitionTime": "t1"}]});
        keep_condition_times(&obj, &mut s);
        assert_eq!(s["conditions"][0]["lastTransitionTime"], "t0");
        assert!(already(obj.get("status"), &s));
    }

    #[test]
    fn now_is_rfc3339_seconds() {
        let t = now();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z'));
    }
}

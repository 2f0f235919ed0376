//! The pure parts of syncing: downstream namespace names, and objects as they go down
//! (spec) and up (status, upsynced pods).

use std::time::Duration;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha224};

use crate::ConflictPolicy;

/// Marks downstream objects (and namespaces) this agent created, with its target's key:
/// the agent never modifies or deletes a downstream object without it.
pub const OWNER_LABEL: &str = "internal.workload.kcp.io/cluster";
/// Where a downstream namespace comes from (kcp's locator, as JSON).
pub const LOCATOR_ANNOTATION: &str = "kcp.io/namespace-locator";
/// The logical cluster of an upstream object.
pub const CLUSTER_ANNOTATION: &str = "kcp.io/cluster";
pub const STATE_LABEL_PREFIX: &str = "state.workload.kcp.io/";
/// `<prefix><key>`: target `key`'s status of an object placed on several targets (the
/// server aggregates them into `.status`).
pub const STATUS_ANNOTATION_PREFIX: &str = "experimental.status.workload.kcp.io/";
/// `<prefix><key>`: a JSON patch (RFC 6902) to the object's `spec` for target `key` only,
/// as kcp's: e.g. `[{"op":"replace","path":"/replicas","value":5}]`.
pub const SPEC_DIFF_ANNOTATION_PREFIX: &str = "experimental.spec-diff.workload.kcp.io/";

/// The target an agent serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The SyncTarget's logical cluster (name).
    pub cluster: String,
    pub name: String,
    pub uid: String,
    /// Its key (`internal.workload.kcp.io/key`).
    pub key: String,
}

/// kcp's namespace locator: which target, workspace and namespace a downstream namespace
/// stands for.
pub fn locator(target: &Target, cluster: &str, namespace: &str) -> Value {
    json!({
        "syncTarget": {"cluster": target.cluster, "name": target.name, "uid": target.uid},
        "cluster": cluster,
        "namespace": namespace,
    })
}

/// `kcp-` and 12 base-36 characters of sha224 over the locator: one downstream namespace per
/// (target, workspace, namespace), the same on every restart.
pub fn downstream_namespace(locator: &Value) -> String {
    let digest = Sha224::digest(locator.to_string().as_bytes());
    let mut number: Vec<u32> = digest.iter().map(|b| u32::from(*b)).collect();
    let mut digits = Vec::new();
    while number.iter().any(|d| *d != 0) {
        let mut remainder = 0u32;
        for d in number.iter_mut() {
            let value = remainder * 256 + *d;
            *d = value / 36;
            remainder = value % 36;
        }
        digits.push(char::from_digit(remainder, 36).unwrap_or('0'));
    }
    let text: String = digits.iter().rev().collect();
    format!("kcp-{}", &text[..text.len().min(12)])
}

/// The (cluster, namespace) a downstream namespace's locator names, if it has one.
pub fn upstream_of(ns: &Value) -> Option<(String, String)> {
    let raw = ns
        .pointer("/metadata/annotations")?
        .get(LOCATOR_ANNOTATION)?
        .as_str()?;
    let loc: Value = serde_json::from_str(raw).ok()?;
    Some((
        loc.get("cluster")?.as_str()?.to_string(),
        loc.get("namespace")?.as_str()?.to_string(),
    ))
}

/// Whether a downstream object was made by the agent of `key`.
pub fn is_ours(obj: &Value, key: &str) -> bool {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(OWNER_LABEL))
        .and_then(Value::as_str)
        == Some(key)
}

/// Whether an upstream object is synced at all (service-account token Secrets are minted
/// by each cluster for its own accounts).
pub fn syncable(obj: &Value) -> bool {
    obj.get("type").and_then(Value::as_str) != Some("kubernetes.io/service-account-token")
}

/// The downstream copy of an upstream object: its spec and its own labels and annotations
/// in namespace `namespace` (None: cluster-scoped), marked as ours; nothing the upstream
/// server owns (status, uid, versions, owners, finalizers, placement labels).
pub fn downstream_object(up: &Value, namespace: Option<&str>, key: &str) -> Value {
    let mut out = up.clone();
    let Some(m) = out.as_object_mut() else {
        return out;
    };
    m.remove("status");
    let meta = up.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut labels: Map<String, Value> = meta
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.retain(|k, _| !k.starts_with(STATE_LABEL_PREFIX));
    labels.insert(OWNER_LABEL.into(), json!(key));
    let mut annotations: Map<String, Value> = meta
        .get("annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    // Placement's bookkeeping stays upstream.
    annotations.retain(|k, _| {
        k != CLUSTER_ANNOTATION
            && !k.starts_with("kubectl.kubernetes.io/")
            && !k.starts_with(STATUS_ANNOTATION_PREFIX)
            && !k.starts_with(SPEC_DIFF_ANNOTATION_PREFIX)
    });
    let mut new_meta =
        json!({"name": meta.get("name").cloned().unwrap_or(Value::Null), "labels": labels});
    if !annotations.is_empty() {
        new_meta["annotations"] = Value::Object(annotations);
    }
    if let Some(ns) = namespace {
        new_meta["namespace"] = json!(ns);
    }
    m.insert("metadata".into(), new_meta);
    // A Service's cluster IPs are each cluster's own.
    if up.get("kind").and_then(Value::as_str) == Some("Service")
        && let Some(spec) = m.get_mut("spec").and_then(Value::as_object_mut)
    {
        for f in ["clusterIP", "clusterIPs", "healthCheckNodePort"] {
            spec.remove(f);
        }
    }
    out
}

/// Applies the upstream object's spec diff for target `key` (if it has one) to `down`'s
/// `spec`; an invalid patch is an error, and the object is not synced until it is fixed.
pub fn apply_spec_diff(down: &mut Value, up: &Value, key: &str) -> Result<(), String> {
    let annotation = format!("{SPEC_DIFF_ANNOTATION_PREFIX}{key}");
    let Some(diff) = up
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(&annotation))
        .and_then(Value::as_str)
    else {
        return Ok(());
    };
    let patch: json_patch::Patch =
        serde_json::from_str(diff).map_err(|e| format!("annotation {annotation}: {e}"))?;
    let Some(spec) = down.get_mut("spec") else {
        return Err(format!("annotation {annotation}: the object has no spec"));
    };
    json_patch::patch(spec, &patch).map_err(|e| format!("annotation {annotation}: {e}"))
}

/// How many targets an upstream object is placed on (its `Sync` state labels).
pub fn placed_on(up: &Value) -> usize {
    up.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map_or(0, |labels| {
            labels
                .iter()
                .filter(|(k, v)| k.starts_with(STATE_LABEL_PREFIX) && v.as_str() == Some("Sync"))
                .count()
        })
}

/// For an object placed on several targets: the merge patch that records this target's
/// status in its annotation, if the recorded one differs.
pub fn status_report(up: &Value, down: &Value, key: &str) -> Option<Value> {
    let status = down.get("status").filter(|s| !s.is_null())?;
    let annotation = format!("{STATUS_ANNOTATION_PREFIX}{key}");
    let recorded = up
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(&annotation))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Value>(s).ok());
    (recorded.as_ref() != Some(status))
        .then(|| json!({"metadata": {"annotations": {annotation: status.to_string()}}}))
}

/// The upstream copy of a downstream object the syncer shows in the workspace (a pod, a
/// ReplicaSet): what it is, without the downstream cluster's bookkeeping, owned by
/// `owners` (upstream references).
pub fn upstream_copy(down: &Value, namespace: &str, owners: Vec<Value>) -> Value {
    let meta = down.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut labels: Map<String, Value> = meta
        .get("labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.remove(OWNER_LABEL);
    let mut metadata = json!({"name": meta.get("name"), "namespace": namespace, "labels": labels});
    if let Some(a) = meta.get("annotations") {
        metadata["annotations"] = a.clone();
    }
    if !owners.is_empty() {
        metadata["ownerReferences"] = Value::Array(owners);
    }
    // What it is (a pod's spec, a Secret's type and data), not what it reports.
    let mut out = down.clone();
    if let Some(m) = out.as_object_mut() {
        m.remove("status");
        m.insert("metadata".into(), metadata);
    }
    out
}

/// What to do with the downstream twin of an upstream object, given what exists there now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Server-side apply our copy (creating it, or over our own, or over a foreign one the
    /// policy lets us take).
    Apply,
    /// Leave the foreign object alone and report it.
    Refuse,
}

/// The conflict policy applied: only an object that exists without our mark is a conflict.
/// `adopt` and `overwrite` both apply over it (the apply adds our mark, so it is ours from
/// then on, and the agent may later delete it).
pub fn decide(existing: Option<&Value>, key: &str, policy: ConflictPolicy) -> Decision {
    match existing {
        Some(e) if !is_ours(e, key) && policy == ConflictPolicy::Refuse => Decision::Refuse,
        _ => Decision::Apply,
    }
}

/// The SyncTarget condition listing the downstream objects refused under `--conflict-policy
/// refuse`.
pub const CONFLICTS_CONDITION: &str = "SyncConflicts";

/// The SyncTarget's conditions with [`CONFLICTS_CONDITION`] saying `refused` (each
/// `cluster/namespace/resource/name`), or None when they already say it. No conflicts and no
/// condition yet: nothing to write.
pub fn conflict_conditions(target: &Value, refused: &[String], now: &str) -> Option<Vec<Value>> {
    let mut conditions: Vec<Value> = target
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let current = conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(CONFLICTS_CONDITION));
    let wanted = if refused.is_empty() {
        json!({"type": CONFLICTS_CONDITION, "status": "False", "lastTransitionTime": now})
    } else {
        json!({"type": CONFLICTS_CONDITION, "status": "True", "reason": "ExistingObjects",
            "message": refused.join(", "), "lastTransitionTime": now})
    };
    let same = |c: &Value| {
        c.get("status") == wanted.get("status") && c.get("message") == wanted.get("message")
    };
    match current {
        None if refused.is_empty() => return None,
        Some(c) if same(c) => return None,
        _ => {}
    }
    conditions.retain(|c| c.get("type").and_then(Value::as_str) != Some(CONFLICTS_CONDITION));
    conditions.push(wanted);
    Some(conditions)
}

/// kcp's heartbeat: a JSON patch whose `test` makes the server refuse it for a re-created
/// target of the same name (another uid), so a stale agent never keeps a new target alive.
pub fn heartbeat_patch(uid: &str, now: &str) -> Value {
    json!([
        {"op": "test", "path": "/metadata/uid", "value": uid},
        {"op": "add", "path": "/status/lastSyncerHeartbeatTime", "value": now},
    ])
}

/// `status.syncedResources`: every resource the agent syncs, as (group, plural, version).
pub fn synced_resources<'a>(
    resources: impl IntoIterator<Item = (&'a str, &'a str, &'a str, &'a str)>,
) -> Value {
    resources
        .into_iter()
        .map(|(group, plural, version, identity)| {
            let mut r = json!({"group": group, "resource": plural, "versions": [version], "state": "Accepted"});
            if !identity.is_empty() {
                r["identityHash"] = json!(identity);
            }
            r
        })
        .collect()
}

/// RFC 3339 in whole seconds (what Kubernetes' `metav1.Time` writes), `since_epoch` after
/// 1970-01-01T00:00:00Z.
pub fn rfc3339(since_epoch: Duration) -> String {
    let secs = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    k8s_openapi::jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The wall clock as [`rfc3339`].
pub fn now_rfc3339() -> String {
    rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// The status to write upstream, if the downstream one differs.
pub fn status_update(up: &Value, down: &Value) -> Option<Value> {
    let status = down.get("status").filter(|s| !s.is_null())?;
    (up.get("status") != Some(status)).then(|| status.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            cluster: "c1".into(),
            name: "east".into(),
            uid: "u1".into(),
            key: "K".into(),
        }
    }

    #[test]
    fn downstream_namespaces_are_stable_and_distinct() {
        let a = downstream_namespace(&locator(&target(), "team", "default"));
        assert_eq!(
            a,
            downstream_namespace(&locator(&target(), "team", "default"))
        );
        assert_ne!(
            a,
            downstream_namespace(&locator(&target(), "team", "other"))
        );
        assert_ne!(
            a,
            downstream_namespace(&locator(&target(), "team2", "default"))
        );
        assert!(a.starts_with("kcp-") && a.len() == 16, "{a}");
        assert!(
            a[4..]
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        let ns = json!({"metadata": {"annotations": {LOCATOR_ANNOTATION: locator(&target(), "team", "default").to_string()}}});
        assert_eq!(upstream_of(&ns), Some(("team".into(), "default".into())));
    }

    #[test]
    fn downstream_namespace_names_match_kcps_encoding() {
        // The locator's JSON text, field order included, is what is hashed: kcp's Go struct
        // order, so a name computed by kcp's syncer for the same locator is the same.
        let loc = locator(&target(), "team", "default");
        assert_eq!(
            loc.to_string(),
            r#"{"syncTarget":{"cluster":"c1","name":"east","uid":"u1"},"cluster":"team","namespace":"default"}"#
        );
        // Computed independently: base36(int.from_bytes(sha224(text), "big"))[:12].
        assert_eq!(downstream_namespace(&loc), "kcp-20w0hngwyqwf");
    }

    #[test]
    fn only_a_foreign_object_under_refuse_is_left_alone() {
        let ours = json!({"metadata": {"labels": {OWNER_LABEL: "K"}}});
        let foreign = json!({"metadata": {"labels": {"app": "x"}}});
        let other_agents = json!({"metadata": {"labels": {OWNER_LABEL: "L"}}});
        for policy in [
            ConflictPolicy::Refuse,
            ConflictPolicy::Adopt,
            ConflictPolicy::Overwrite,
        ] {
            assert_eq!(decide(None, "K", policy), Decision::Apply);
            assert_eq!(decide(Some(&ours), "K", policy), Decision::Apply);
        }
        assert_eq!(
            decide(Some(&foreign), "K", ConflictPolicy::Refuse),
            Decision::Refuse
        );
        assert_eq!(
            decide(Some(&other_agents), "K", ConflictPolicy::Refuse),
            Decision::Refuse
        );
        assert_eq!(
            decide(Some(&foreign), "K", ConflictPolicy::Adopt),
            Decision::Apply
        );
        assert_eq!(
            decide(Some(&foreign), "K", ConflictPolicy::Overwrite),
            Decision::Apply
        );
    }

    #[test]
    fn conflicts_are_reported_once_and_cleared() {
        let now = "2023-11-14T22:13:20Z";
        let ready = json!({"type": "Ready", "status": "True"});
        let target = json!({"status": {"conditions": [ready]}});
        assert_eq!(conflict_conditions(&target, &[], now), None);
        let refused = vec![
            "c/default/configmaps/a".to_string(),
            "c/default/secrets/b".to_string(),
        ];
        let set = conflict_conditions(&target, &refused, now).unwrap();
        assert_eq!(
            set,
            vec![
                ready.clone(),
                json!({"type": "SyncConflicts", "status": "True", "reason": "ExistingObjects",
                    "message": "c/default/configmaps/a, c/default/secrets/b", "lastTransitionTime": now}),
            ]
        );
        let reported = json!({"status": {"conditions": set}});
        assert_eq!(conflict_conditions(&reported, &refused, "later"), None);
        let cleared = conflict_conditions(&reported, &[], now).unwrap();
        assert_eq!(
            cleared,
            vec![
                ready,
                json!({"type": "SyncConflicts", "status": "False", "lastTransitionTime": now})
            ]
        );
    }

    #[test]
    fn heartbeats_and_reports() {
        assert_eq!(rfc3339(Duration::ZERO), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(Duration::from_millis(1_700_000_000_900)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            heartbeat_patch("u1", "2023-11-14T22:13:20Z"),
            json!([
                {"op": "test", "path": "/metadata/uid", "value": "u1"},
                {"op": "add", "path": "/status/lastSyncerHeartbeatTime", "value": "2023-11-14T22:13:20Z"},
            ])
        );
        assert_eq!(
            synced_resources([
                ("", "namespaces", "v1", ""),
                ("example.com", "widgets", "v1", "abc")
            ]),
            json!([
                {"group": "", "resource": "namespaces", "versions": ["v1"], "state": "Accepted"},
                {"group": "example.com", "resource": "widgets", "versions": ["v1"], "state": "Accepted", "identityHash": "abc"},
            ])
        );
    }

    #[test]
    fn objects_go_down_without_what_the_upstream_server_owns() {
        let up = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default", "uid": "x", "resourceVersion": "5",
                "labels": {"app": "web", "state.workload.kcp.io/K": "Sync"},
                "annotations": {"kcp.io/cluster": "team", "note": "kept"},
                "finalizers": ["workload.kcp.io/syncer-K"], "ownerReferences": [{"uid": "o"}]},
            "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80}]},
            "status": {"loadBalancer": {}},
        });
        let down = downstream_object(&up, Some("kcp-abc"), "K");
        assert_eq!(
            down,
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "namespace": "kcp-abc",
                    "labels": {"app": "web", OWNER_LABEL: "K"}, "annotations": {"note": "kept"}},
                "spec": {"ports": [{"port": 80}]},
            })
        );
        assert!(is_ours(&down, "K") && !is_ours(&down, "other"));
        assert!(!syncable(
            &json!({"type": "kubernetes.io/service-account-token"})
        ));
    }

    #[test]
    fn spec_diffs_apply_to_their_target_only() {
        let up = json!({"kind": "Deployment", "metadata": {"name": "web", "annotations": {
            "experimental.spec-diff.workload.kcp.io/east": "[{\"op\":\"replace\",\"path\":\"/replicas\",\"value\":5}]",
            "experimental.spec-diff.workload.kcp.io/bad": "[{\"op\":\"remove\",\"path\":\"/nothing\"}]",
            "experimental.status.workload.kcp.io/east": "{}",
            "team": "a"}},
            "spec": {"replicas": 2}});
        let mut east = downstream_object(&up, Some("kcp-x"), "east");
        apply_spec_diff(&mut east, &up, "east").unwrap();
        assert_eq!(east["spec"]["replicas"], 5);
        // Placement's annotations stay upstream; the team's go down.
        assert_eq!(east["metadata"]["annotations"], json!({"team": "a"}));
        let mut west = downstream_object(&up, Some("kcp-x"), "west");
        apply_spec_diff(&mut west, &up, "west").unwrap();
        assert_eq!(west["spec"]["replicas"], 2);
        let mut bad = downstream_object(&up, Some("kcp-x"), "bad");
        let err = apply_spec_diff(&mut bad, &up, "bad").unwrap_err();
        assert!(err.contains("spec-diff.workload.kcp.io/bad"), "{err}");
    }

    #[test]
    fn several_targets_report_status_in_annotations() {
        let up = json!({"metadata": {"labels": {
            "state.workload.kcp.io/east": "Sync", "state.workload.kcp.io/west": "Sync",
            "state.workload.kcp.io/pods": "Upsync"},
            "annotations": {"experimental.status.workload.kcp.io/east": "{\"replicas\":1}"}}});
        assert_eq!(placed_on(&up), 2);
        let down = json!({"status": {"replicas": 1}});
        assert_eq!(status_report(&up, &down, "east"), None);
        assert_eq!(
            status_report(&up, &down, "west"),
            Some(json!({"metadata": {"annotations": {
                "experimental.status.workload.kcp.io/west": "{\"replicas\":1}"}}}))
        );
        assert_eq!(status_report(&up, &json!({}), "west"), None);
    }

    #[test]
    fn status_goes_up_only_when_it_differs() {
        let up = json!({"status": {"replicas": 1}});
        assert_eq!(
            status_update(&up, &json!({"status": {"replicas": 1}})),
            None
        );
        assert_eq!(
            status_update(&up, &json!({"status": {"replicas": 2}})),
            Some(json!({"replicas": 2}))
        );
        assert_eq!(status_update(&up, &json!({})), None);
        let pod = upstream_copy(
            &json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "a", OWNER_LABEL: "K"}}, "spec": {"nodeName": "n"}}),
            "default",
            vec![],
        );
        assert_eq!(pod["metadata"]["labels"], json!({"app": "a"}));
        assert_eq!(pod["spec"]["nodeName"], "n");
    }
}

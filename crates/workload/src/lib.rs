//! Workloads that run (kcp v0.11's "transparent multi-cluster"): a compute workspace holds
//! **SyncTargets** (one per physical or virtual cluster, each served by a `kplex syncer`
//! agent) grouped by **Locations**; a team's workspace holds a **Placement** that selects
//! a Location; scheduling picks a SyncTarget for each of the team's namespaces and labels
//! the namespace and its objects `state.workload.kcp.io/<key>=Sync`; the agent reads
//! exactly those objects through the syncer virtual workspace and writes status back.
//!
//! - `schemas`: the three kinds' OpenAPI schemas;
//! - `scheduling`: the controllers (target keys and health, location counts, placements,
//!   namespaces and the objects in them);
//! - `summary`: one status for an object placed on several targets;
//! - `admission`: new objects in a scheduled namespace carry its state labels at once;
//! - `syncer_view`: the virtual workspace `/services/syncer/<cluster>/<target>/<uid>/…`.

// ApiError is a Kubernetes Status with details: large, but only on the error path.
#![allow(clippy::result_large_err)]

pub mod admission;
pub mod feature;
pub mod scheduling;
mod schemas;
pub mod summary;
pub mod syncer_view;

use kplex_registry::catalog::{Column, ResourceDesc, system};
use sha2::{Digest, Sha224};

pub const WORKLOAD: &str = "workload.kcp.io";
pub const SCHEDULING: &str = "scheduling.kcp.io";
pub const VERSION: &str = "v1alpha1";

/// A SyncTarget's key label (the key names it in every state label).
pub const KEY_LABEL: &str = "internal.workload.kcp.io/key";
/// `state.workload.kcp.io/<key>`: where an object is placed (`Sync`: down to that target;
/// `Upsync`: the target owns it and shows it upstream).
pub const STATE_LABEL_PREFIX: &str = "state.workload.kcp.io/";
/// The Placement a namespace was scheduled by.
pub const PLACEMENT_ANNOTATION: &str = "scheduling.kcp.io/placement";
/// On a Placement: how many targets of its location each namespace goes to — `All`, or a
/// count (default 1). Several Placements that select a namespace add up.
pub const SPREAD_ANNOTATION: &str = "experimental.scheduling.kplex.io/spread";
/// On a namespace: the targets it is failing over from (comma-separated keys), which keep
/// their copies until the replacements are available.
pub const FAILOVER_ANNOTATION: &str = "experimental.scheduling.kplex.io/failover-from";
/// On a Location: how many namespaces may fail over (or drain) off its targets at once.
pub const MAX_MOVING_ANNOTATION: &str = "experimental.scheduling.kplex.io/max-moving";
/// Namespaces that never leave the control plane.
pub const UNSCHEDULED_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

/// The state label of the target with `key`.
pub fn state_label(key: &str) -> String {
    format!("{STATE_LABEL_PREFIX}{key}")
}

/// kcp's sync target key: base62 of sha224 over the target's logical cluster and name,
/// short enough for a label name and the same on every replica.
pub fn sync_target_key(cluster: &str, name: &str) -> String {
    let digest = Sha224::digest(format!("{cluster}:{name}").as_bytes());
    base62(&digest)
}

fn base62(bytes: &[u8]) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    // Big-endian bytes as one big number, divided by 62 repeatedly.
    let mut number: Vec<u32> = bytes.iter().map(|b| u32::from(*b)).collect();
    let mut out = Vec::new();
    while number.iter().any(|d| *d != 0) {
        let mut remainder = 0u32;
        for digit in number.iter_mut() {
            let value = remainder * 256 + *digit;
            *digit = value / 62;
            remainder = value % 62;
        }
        out.push(DIGITS[remainder as usize]);
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The kinds every logical cluster serves (kcp served them through APIExports of the
/// compute workspace; kplex serves them everywhere, as it serves the workload kinds).
pub fn resources() -> Vec<ResourceDesc> {
    vec![
        system(
            (WORKLOAD, VERSION),
            ("SyncTarget", "synctargets"),
            &[],
            vec![
                Column::name(),
                Column::path(
                    "Key",
                    "string",
                    ".metadata.labels.internal\\.workload\\.kcp\\.io/key",
                ),
                Column::path(
                    "Ready",
                    "string",
                    ".status.conditions[?(@.type==\"Ready\")].status",
                ),
                Column::path("Heartbeat", "date", ".status.lastSyncerHeartbeatTime"),
                Column::age(),
            ],
            &schemas::sync_target(),
        ),
        system(
            (SCHEDULING, VERSION),
            ("Location", "locations"),
            &[],
            vec![
                Column::name(),
                Column::path("Resource", "string", ".spec.resource.resource"),
                Column::path("Available", "integer", ".status.availableInstances"),
                Column::path("Instances", "integer", ".status.instances"),
                Column::age(),
            ],
            &schemas::location(),
        ),
        system(
            (SCHEDULING, VERSION),
            ("Placement", "placements"),
            &[],
            vec![
                Column::name(),
                Column::path("Phase", "string", ".status.phase"),
                Column::path(
                    "Location",
                    "string",
                    ".status.selectedLocation.locationName",
                ),
                Column::age(),
            ],
            &schemas::placement(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_base62_stable_and_distinct() {
        let a = sync_target_key("root:compute", "east");
        assert_eq!(a, sync_target_key("root:compute", "east"));
        assert_ne!(a, sync_target_key("root:compute", "west"));
        assert!(a.len() <= 63 && a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(base62(&[0, 61]), "z");
        assert_eq!(base62(&[0, 62]), "10");
    }
}

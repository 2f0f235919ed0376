//! Logical clusters and the workspace tree (kcp's `tenancy.kcp.io` and `core.kcp.io`):
//! the kinds, path resolution, admission of new workspaces, the workspace lifecycle, home
//! workspaces, and the initializing-workspaces virtual workspace.
//!
//! A workspace is a `Workspace` object in its parent plus a logical cluster whose
//! `LogicalCluster` singleton (`cluster`) carries its canonical path (`kcp.io/path`). A
//! logical cluster is nothing but a key prefix in the store, so an empty one costs a few
//! small objects and two index entries in memory.

// ApiError is a Kubernetes Status with details: large, but only on the error path.
#![allow(clippy::result_large_err)]

pub mod admission;
pub mod controllers;
pub mod feature;
pub mod home;
pub mod initializing;
pub mod lifecycle;
pub mod lookup;
pub mod schemas;
pub mod types;

use kplex_registry::catalog::{Column, ResourceDesc};

// The registry's and auth's modules under the names this crate's code uses.
pub(crate) use kplex_auth::authz;
pub(crate) use kplex_registry::{catalog, registry, served};

/// The root workspace's logical cluster (and path).
pub const ROOT_CLUSTER: &str = "root";
/// kcp's `apis.kcp.io` group and the version default APIBindings are written at (tenancy
/// creates them for a WorkspaceType's `defaultAPIBindings`; the apis feature serves them).
const APIS_GROUP: &str = "apis.kcp.io";
const APIS_VERSION: &str = "v1alpha2";

pub const TENANCY: &str = "tenancy.kcp.io";
pub const CORE: &str = "core.kcp.io";
pub const VERSION: &str = "v1alpha1";
/// The LogicalCluster singleton's name in every logical cluster.
pub const LOGICAL_CLUSTER: &str = "cluster";
/// Annotation with a logical cluster's canonical path (`root:org:team`).
pub const PATH_ANNOTATION: &str = "kcp.io/path";
/// Annotation with the `<path>:<name>` of the workspace type a logical cluster has.
pub const TYPE_ANNOTATION: &str = "tenancy.kcp.io/workspace-type";
/// Keeps a Workspace until its logical cluster is gone.
pub const WORKSPACE_FINALIZER: &str = "core.kcp.io/logicalcluster";

fn system(
    group: &str,
    kind: &str,
    plural: &str,
    short: &[&str],
    columns: Vec<Column>,
    schema: serde_json::Value,
) -> ResourceDesc {
    crate::catalog::system((group, VERSION), (kind, plural), short, columns, &schema)
}

/// The tenancy kinds every logical cluster serves.
pub fn resources() -> Vec<ResourceDesc> {
    vec![
        system(
            TENANCY,
            "Workspace",
            "workspaces",
            &["ws"],
            vec![
                Column::name(),
                Column::path("Type", "string", ".spec.type.name"),
                Column::path("Region", "string", ".metadata.labels.region"),
                Column::path("Phase", "string", ".status.phase"),
                Column::path("URL", "string", ".spec.URL"),
                Column::age(),
            ],
            schemas::workspace(),
        )
        .with_strategy(std::sync::Arc::new(admission::WorkspaceRules)),
        system(
            TENANCY,
            "WorkspaceType",
            "workspacetypes",
            &[],
            vec![Column::name(), Column::age()],
            schemas::workspace_type(),
        ),
        system(
            CORE,
            "LogicalCluster",
            "logicalclusters",
            &[],
            vec![
                Column::name(),
                Column::path("Phase", "string", ".status.phase"),
                Column::path("URL", "string", ".status.URL"),
                Column::age(),
            ],
            schemas::logical_cluster(),
        )
        .with_strategy(std::sync::Arc::new(admission::LogicalClusterRules)),
    ]
}

/// A fresh logical cluster name: 16 base36 characters, as kcp generates them.
pub fn random_cluster_name() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16)
        .map(|_| {
            let i = rng.random_range(0..36u8);
            char::from(if i < 10 { b'0' + i } else { b'a' + i - 10 })
        })
        .collect()
}

/// The logical cluster of the Workspace with uid `uid`: 16 base36 characters of
/// sha256(uid). Derived, not random, so that replicas scheduling one Workspace at once
/// name the same logical cluster and the store's create-if-absent lets only one exist (the
/// uid is random, so the name is no easier to guess than a random one).
pub fn cluster_name_of(uid: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(uid.as_bytes());
    let mut n = digest
        .iter()
        .take(10)
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    let mut out = [b'0'; 16];
    for slot in out.iter_mut().rev() {
        let d = (n % 36) as u8;
        *slot = if d < 10 { b'0' + d } else { b'a' + d - 10 };
        n /= 36;
    }
    out.iter().map(|b| char::from(*b)).collect()
}

/// Whether `s` is a valid workspace path (`root`, `root:org:team`, `user:alice`).
pub fn is_path(s: &str) -> bool {
    !s.is_empty()
        && s.split(':').all(|seg| {
            !seg.is_empty()
                && seg.len() <= 63
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !seg.starts_with('-')
                && !seg.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_workspace_names_one_logical_cluster() {
        let a = cluster_name_of("5f0c8c3e-6f8a-4c7e-9f44-0f2d6a1b2c3d");
        assert_eq!(a, cluster_name_of("5f0c8c3e-6f8a-4c7e-9f44-0f2d6a1b2c3d"));
        assert_ne!(a, cluster_name_of("another-uid"));
        assert_eq!(a.len(), 16);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
    }

    use super::*;

    #[test]
    fn kinds_compile_and_names_look_like_kcp() {
        for d in resources() {
            assert!(d.schema.is_some(), "{} schema compiles", d.kind);
        }
        let n = random_cluster_name();
        assert_eq!(n.len(), 16);
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert!(is_path("root:org:team-a"));
        assert!(!is_path("root::x") && !is_path("Root") && !is_path("root:-a"));
    }
}

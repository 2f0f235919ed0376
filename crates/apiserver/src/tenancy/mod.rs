//! Logical clusters and the workspace tree (kcp's `tenancy.kcp.io` and `core.kcp.io`):
//! the kinds, path resolution, admission of new workspaces, the workspace lifecycle, home
//! workspaces, and the initializing-workspaces virtual workspace.
//!
//! A workspace is a `Workspace` object in its parent plus a logical cluster whose
//! `LogicalCluster` singleton (`cluster`) carries its canonical path (`kcp.io/path`). A
//! logical cluster is nothing but a key prefix in the store, so an empty one costs a few
//! small objects and two index entries in memory.

pub mod admission;
pub mod home;
pub mod lifecycle;
mod schemas;
pub mod types;

use std::sync::Arc;

use kplex_schema::Schema;

use crate::catalog::{ALL_VERBS, Cell, Column, Origin, ResourceDesc};

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

fn column(name: &str, type_: &str, path: &str) -> Column {
    let cell = match kplex_schema::jsonpath::parse(path) {
        Ok(p) => Cell::Path(Arc::new(p)),
        Err(_) => Cell::Computed("invalid"),
    };
    Column {
        name: name.into(),
        type_: type_.into(),
        format: String::new(),
        description: String::new(),
        priority: 0,
        cell,
    }
}

fn name_column() -> Column {
    Column {
        name: "Name".into(),
        type_: "string".into(),
        format: "name".into(),
        description: String::new(),
        priority: 0,
        cell: Cell::Name,
    }
}

fn age_column() -> Column {
    Column {
        name: "Age".into(),
        type_: "date".into(),
        format: String::new(),
        description: String::new(),
        priority: 0,
        cell: Cell::Age,
    }
}

fn system(
    group: &str,
    kind: &str,
    plural: &str,
    short: &[&str],
    columns: Vec<Column>,
    schema: serde_json::Value,
) -> ResourceDesc {
    let schema = Schema::compile(&schema).ok().map(Arc::new);
    ResourceDesc {
        group: group.into(),
        version: VERSION.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: vec!["kcp".into()],
        namespaced: false,
        status: true,
        scale: None,
        generation: true,
        columns,
        field_labels: vec![],
        schema,
        builtin_schema: Arc::default(),
        origin: Origin::System,
        verbs: ALL_VERBS.to_vec(),
    }
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
                name_column(),
                column("Type", "string", ".spec.type.name"),
                column("Region", "string", ".metadata.labels.region"),
                column("Phase", "string", ".status.phase"),
                column("URL", "string", ".spec.URL"),
                age_column(),
            ],
            schemas::workspace(),
        ),
        system(
            TENANCY,
            "WorkspaceType",
            "workspacetypes",
            &[],
            vec![name_column(), age_column()],
            schemas::workspace_type(),
        ),
        system(
            CORE,
            "LogicalCluster",
            "logicalclusters",
            &[],
            vec![
                name_column(),
                column("Phase", "string", ".status.phase"),
                column("URL", "string", ".status.URL"),
                age_column(),
            ],
            schemas::logical_cluster(),
        ),
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

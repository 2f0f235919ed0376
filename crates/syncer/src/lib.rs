//! `kplex syncer`: the agent that runs a SyncTarget's workloads on a Kubernetes cluster
//! (kcp v0.11's syncer). It reads, through the syncer virtual workspace, every object kplex
//! placed on its target, across workspaces; writes each into the downstream namespace
//! `kcp-<hash>` of its workspace and namespace; sends status back up; shows the pods the
//! downstream cluster runs for them in the workspace (read-only); and sends heartbeats.
//!
//! **What it deletes.** Downstream: only objects and namespaces carrying its mark
//! (`internal.workload.kcp.io/cluster=<key>`), and only on evidence from upstream: an
//! upstream deletion, or an object missing from a complete upstream list (no longer placed
//! here); a namespace only once nothing placed is left in it, after
//! `--downstream-namespace-clean-delay`. Starting, restarting, or losing upstream deletes
//! nothing. Upstream: only what it shows there itself (pods, ReplicaSets, Secrets labelled
//! `state.workload.kcp.io/<key>=Upsync`), once their downstream original is gone; and its own
//! finalizer, once the downstream copy is gone.
//!
//! **What it never touches.** A downstream object without its mark: refused (listed in the
//! SyncTarget's `SyncConflicts` condition), unless `--conflict-policy` is `adopt` or
//! `overwrite`, which apply over it (marking it ours). Of a placed upstream object, anything
//! but its own finalizer and its status.
//!
//! It talks HTTP only (the `kube` crate); it depends on no kplex crate.

mod connect;
mod engine;
pub mod importer;
pub mod namespace_mode;
pub mod transform;

use std::path::PathBuf;
use std::time::Duration;

pub use engine::run;

/// `kplex syncer`'s flags (kcp's syncer's names).
#[derive(clap::Args, Debug, Clone)]
pub struct SyncerArgs {
    /// Kubeconfig of the SyncTarget's workspace (upstream).
    #[arg(long)]
    pub from_kubeconfig: PathBuf,
    /// Context of the upstream kubeconfig.
    #[arg(long)]
    pub from_context: Option<String>,
    /// The SyncTarget this agent serves.
    #[arg(long)]
    pub sync_target_name: String,
    /// Its uid (the agent refuses to serve a re-created target of the same name).
    #[arg(long)]
    pub sync_target_uid: String,
    /// The SyncTarget's workspace path (e.g. root:compute).
    #[arg(long)]
    pub from_cluster: String,
    /// Kubeconfig of the downstream cluster (default: in-cluster, or $KUBECONFIG).
    #[arg(long)]
    pub to_kubeconfig: Option<PathBuf>,
    /// Context of the downstream kubeconfig.
    #[arg(long)]
    pub to_context: Option<String>,
    /// Resources to sync beyond the defaults (`plural.group`, comma-separated). One the
    /// downstream cluster defines by a CRD is imported: served upstream through the
    /// SyncTarget's supported APIExport.
    #[arg(long, value_delimiter = ',')]
    pub resources: Vec<String>,
    /// How often the CRDs of imported `--resources` are read again (a changed one replaces
    /// its schema upstream; a new storage version makes the agent start over to sync it).
    #[arg(long, value_parser = parse_duration, default_value = "1m")]
    pub api_import_poll_interval: Duration,
    /// How often to tell kplex the agent is alive.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub heartbeat_interval: Duration,
    /// How long an emptied downstream namespace is kept before it is deleted.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub downstream_namespace_clean_delay: Duration,
    /// Namespace mode (vcluster-style): put every placed namespace's objects into this one
    /// downstream namespace, renamed `<name>-x-<namespace>-x-<workspace>`; the agent then
    /// needs rights in this namespace only.
    #[arg(long)]
    pub downstream_namespace: Option<String>,
    /// What to do with a downstream object that exists without this agent's mark.
    #[arg(long, value_enum, default_value = "refuse")]
    pub conflict_policy: ConflictPolicy,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictPolicy {
    /// Leave it alone and report it.
    Refuse,
    /// Mark it as ours and sync over it.
    Adopt,
    /// Sync over it (marking it).
    Overwrite,
}

/// `500ms`, `5s`, `1m`, `1h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("invalid duration {s:?}")),
    }
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        source: kube::config::KubeconfigError,
    },
    #[error("the downstream cluster's configuration: {0}")]
    Downstream(#[from] kube::config::InferConfigError),
    #[error("invalid URL {0}")]
    Url(String),
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error(
        "sync target {name} has uid {found}, not {expected}: it was re-created; run `kubectl kplex workload sync` again"
    )]
    WrongTarget {
        name: String,
        found: String,
        expected: String,
    },
    #[error(
        "resource {0:?} is neither served upstream nor defined downstream by a CustomResourceDefinition with a storage version"
    )]
    UnknownResource(String),
    #[error("APIExport {0} has no identity yet: is kplex's APIs controller running?")]
    NoIdentity(String),
    #[error(
        "the sync target's APIExport {0} does not exist in its workspace: run `kubectl kplex workload sync` again (it creates it), or create it"
    )]
    NoExport(String),
    #[error("{object}: invalid spec diff, not synced until it is fixed: {reason}")]
    SpecDiff { object: String, reason: String },
    #[error("downstream namespace {0} exists and is not the syncer's: refusing to use it")]
    ForeignNamespace(String),
    #[error("encoding an object: {0}")]
    Json(#[from] serde_json::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert!(parse_duration("x").is_err());
    }
}

//! The workspace lifecycle's controllers: Workspaces being scheduled, initialized or
//! deleted, and LogicalClusters whose initializers are done (see [`lifecycle`]).
//!
//! [`lifecycle`]: crate::lifecycle

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kplex_apimachinery::{ApiError, meta};
use kplex_registry::object;
use kplex_runtime::{
    Action, Backoff, CancellationToken, Controller, ControllerSet, EventHandler, Metrics,
    Reconciler, WorkQueue,
};
use serde_json::Value;

use crate::lifecycle::Tenancy;

/// How soon an item that is not done yet is looked at again.
const RETRY: Duration = Duration::from_millis(500);
/// Items reconciled at once: workspace creation is the busiest path.
const WORKERS: usize = 64;

const WORKSPACES: &str = "/registry/tenancy.kcp.io/workspaces/";
const LOGICAL_CLUSTERS: &str = "/registry/core.kcp.io/logicalclusters/";

/// The queue's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Work {
    /// A Workspace (in its parent cluster) to schedule, initialize or delete.
    Workspace { cluster: String, name: String },
    /// A logical cluster whose LogicalCluster changed.
    LogicalCluster { cluster: String },
}

/// The lifecycle's controllers: an [`EventHandler`] for the informer and the
/// [`Reconciler`] of their queue.
pub struct Lifecycle {
    tenancy: Tenancy,
    queue: WorkQueue<Work>,
}

impl Lifecycle {
    pub fn new(tenancy: Tenancy) -> Self {
        Self {
            tenancy,
            queue: WorkQueue::new(),
        }
    }
}

impl ControllerSet for Lifecycle {
    /// The lifecycle only writes (scheduling's leftovers, initialization, deletion); what
    /// it serves — the cluster index — is kept by the event handler on every replica.
    fn leader_only(&self) -> bool {
        true
    }

    /// Runs the reconcilers until `cancel` fires (on etcd, while this replica leads).
    fn run(self: Arc<Self>, metrics: &Metrics, cancel: &CancellationToken) {
        let controller = Controller::new("tenancy", self.clone())
            .with_queue(self.queue.clone())
            .workers(WORKERS)
            .backoff(Backoff::around(RETRY))
            .metrics(metrics);
        tokio::spawn(controller.run(cancel.clone()));
    }
}

/// Workspaces still being scheduled, initialized or deleted.
fn workspace_needs_work(ws: &Value) -> bool {
    meta::deletion_timestamp(ws).is_some()
        || ws
            .pointer("/spec/cluster")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        || ws.pointer("/status/phase").and_then(Value::as_str) != Some("Ready")
}

/// Ready and not being deleted: nothing left to do for its Workspace or LogicalCluster.
fn settled(value: &[u8]) -> bool {
    memchr::memmem::find(value, b"\"phase\":\"Ready\"").is_some()
        && memchr::memmem::find(value, b"\"deletionTimestamp\"").is_none()
}

/// What may have work left after a restart: workspaces and logical clusters that are not
/// settled (nearly all of them are).
fn unfinished(key: &str, value: &[u8]) -> bool {
    (key.starts_with(LOGICAL_CLUSTERS) || key.starts_with(WORKSPACES)) && !settled(value)
}

#[async_trait]
impl EventHandler for Lifecycle {
    /// Every LogicalCluster (the cluster index follows them); a Workspace only while it has
    /// work left — a settled one is not even parsed (most Workspace writes are its status).
    fn wants(&self, key: &str, value: &[u8]) -> bool {
        key.starts_with(LOGICAL_CLUSTERS) || (key.starts_with(WORKSPACES) && !settled(value))
    }

    fn changed(&self, obj: &Value, created: bool) {
        let Some(cluster) = meta::annotation(obj, object::CLUSTER_ANNOTATION) else {
            return;
        };
        match obj.get("kind").and_then(Value::as_str) {
            // A Ready workspace has nothing to do; skipping it saves a reconcile after every
            // status write (the lifecycle's own last step).
            Some("Workspace") if workspace_needs_work(obj) => self.queue.add(Work::Workspace {
                cluster: cluster.to_string(),
                name: meta::name(obj).unwrap_or("").to_string(),
            }),
            Some("LogicalCluster") => {
                // Every replica learns of logical clusters from the store, whichever one
                // created them (the creating one also adds its own at once).
                let path = meta::annotation(obj, crate::PATH_ANNOTATION).unwrap_or(cluster);
                self.tenancy.served.add_cluster(cluster, path);
                if let Some(quota) = &self.tenancy.registry.quota {
                    quota.observe_logical_cluster(cluster, obj);
                }
                // Created Ready (no initializers): the scheduler writes its Workspace's
                // phase itself, so there is nothing to follow yet.
                let born_ready = created
                    && obj.pointer("/status/phase").and_then(Value::as_str) == Some("Ready");
                if !born_ready {
                    self.queue.add(Work::LogicalCluster {
                        cluster: cluster.to_string(),
                    });
                }
            }
            _ => {}
        }
    }

    /// A logical cluster deleted (through any replica) is served no more.
    fn deleted(&self, old: &Value) {
        if old.get("kind").and_then(Value::as_str) == Some("LogicalCluster")
            && let Some(cluster) = meta::annotation(old, object::CLUSTER_ANNOTATION)
        {
            self.tenancy.served.remove_cluster(cluster);
        }
    }

    fn unfinished(&self, key: &str, value: &[u8]) -> bool {
        unfinished(key, value)
    }

    /// Workspaces whose scheduling at creation (a POST to this replica) was let go
    /// unfinished join the queue, on every replica: the leader works them off; a
    /// follower's copy waits for a term of its own (the leader learns of them from the
    /// watch as well, as they are not Ready).
    async fn started(&self, _objects: &[Value]) {
        if let Some(mut unfinished) = self.tenancy.scheduling.unfinished() {
            let queue = self.queue.clone();
            tokio::spawn(async move {
                while let Some((cluster, name)) = unfinished.recv().await {
                    queue.add(Work::Workspace { cluster, name });
                }
            });
        }
    }
}

#[async_trait]
impl Reconciler for Lifecycle {
    type Key = Work;
    type Error = ApiError;

    async fn reconcile(&self, work: &Work) -> Result<Action, ApiError> {
        let done = match work {
            Work::Workspace { cluster, name } => {
                self.tenancy.reconcile_workspace(cluster, name).await?
            }
            Work::LogicalCluster { cluster } => {
                if let Some((parent, name)) =
                    self.tenancy.reconcile_logical_cluster(cluster).await?
                {
                    self.queue.add(Work::Workspace {
                        cluster: parent,
                        name,
                    });
                }
                true
            }
        };
        Ok(Action::done_or_after(done, RETRY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_reads_only_what_may_have_work_left() {
        let lc = "/registry/core.kcp.io/logicalclusters/abc/cluster";
        assert!(!unfinished(lc, br#"{"status":{"phase":"Ready"}}"#));
        assert!(unfinished(lc, br#"{"status":{"phase":"Initializing"}}"#));
        assert!(unfinished(
            lc,
            br#"{"metadata":{"deletionTimestamp":"x"},"status":{"phase":"Ready"}}"#
        ));
        let ws = "/registry/tenancy.kcp.io/workspaces/root/a";
        assert!(!unfinished(ws, br#"{"status":{"phase":"Ready"}}"#));
        assert!(unfinished(ws, br#"{"status":{"phase":"Scheduling"}}"#));
        assert!(!unfinished("/registry/configmaps/root/default/a", b"{}"));
    }
}

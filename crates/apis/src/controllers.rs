//! The APIs feature's controllers: export identities and endpoint slices, bindings (which
//! make bound resources served), and the bindings and slices an export change concerns.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use kplex_apimachinery::{ApiError, meta};
use kplex_registry::object;
use kplex_registry::registry::{ListOptions, Scope};
use kplex_runtime::{
    Action, Backoff, CancellationToken, Controller, ControllerSet, EventHandler, Metrics,
    Reconciler, WorkQueue,
};
use serde_json::Value;

use crate::Apis;

/// How soon an item that is not done yet is looked at again.
const RETRY: Duration = Duration::from_millis(500);
/// Items reconciled at once.
const WORKERS: usize = 32;
/// How long a new term waits before it looks whether reconciles went without writing.
const SKIPPED_SETTLE: Duration = Duration::from_millis(200);
/// Where every `apis.kcp.io` object is stored.
const PREFIX: &str = "/registry/apis.kcp.io/";

/// The queue's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Work {
    ApiExport {
        cluster: String,
        name: String,
    },
    ApiBinding {
        cluster: String,
        name: String,
    },
    EndpointSlice {
        cluster: String,
        name: String,
    },
    /// An export changed (or appeared, or is gone): every binding referencing it re-binds.
    ExportConsumers {
        cluster: String,
        name: String,
    },
    /// An export gained its first or lost its last consumer: every endpoint slice that
    /// references it (in any workspace) lists or drops its URL.
    SlicesOf {
        cluster: String,
        name: String,
    },
}

/// The feature's controllers: an [`EventHandler`] for the informer and the [`Reconciler`]
/// of their queue.
pub struct ApisControllers {
    apis: Apis,
    queue: WorkQueue<Work>,
}

fn cluster_of(obj: &Value) -> Option<String> {
    meta::annotation(obj, object::CLUSTER_ANNOTATION).map(String::from)
}

impl ApisControllers {
    pub fn new(apis: Apis) -> Self {
        Self {
            apis,
            queue: WorkQueue::new(),
        }
    }
}

impl ControllerSet for ApisControllers {
    /// Runs the reconcilers until `cancel` fires.
    fn run(self: Arc<Self>, metrics: &Metrics, cancel: &CancellationToken) {
        let controller = Controller::new("apis", self.clone())
            .with_queue(self.queue.clone())
            .workers(WORKERS)
            .backoff(Backoff::around(RETRY))
            .metrics(metrics);
        tokio::spawn(controller.run(cancel.clone()));
    }
}

/// The writing half of [`ApisControllers`], led by one replica: while its term lasts the
/// reconcilers also write (statuses, finalizers, identity Secrets, endpoint slices, a
/// deleted binding's objects); at its start every export, binding and slice is queued
/// again, as a follower reconciled them without writing.
pub struct ApisWriters(pub Arc<ApisControllers>);

/// [`ApisControllers`] follows the events for both halves.
impl EventHandler for ApisWriters {}

impl ControllerSet for ApisWriters {
    fn leader_only(&self) -> bool {
        true
    }

    /// Writes from now on (set before the informer starts where there is no election, so a
    /// single process never reconciles without writing); queues everything again only if
    /// a reconcile went without writing meanwhile (a follower's, or one that raced this).
    fn run(self: Arc<Self>, _metrics: &Metrics, cancel: &CancellationToken) {
        let controllers = self.0.clone();
        controllers.apis.leading.store(true, Ordering::Release);
        let term = cancel.clone();
        tokio::spawn(async move {
            // A reconcile that read "not leading" just before the store above records that
            // it skipped within microseconds: look after a moment, not at once.
            tokio::time::sleep(SKIPPED_SETTLE).await;
            if controllers.apis.skipped.swap(false, Ordering::AcqRel) {
                controllers.requeue_all().await;
            }
            term.cancelled().await;
            controllers.apis.leading.store(false, Ordering::Release);
        });
    }
}

impl ApisControllers {
    /// Queues every APIExport, APIBinding and endpoint slice, as their events would.
    async fn requeue_all(&self) {
        for (version, plural) in [
            (crate::V2, "apiexports"),
            (crate::V2, "apibindings"),
            (crate::V1, "apiexportendpointslices"),
        ] {
            let Some(desc) = self.apis.served.lookup(None, crate::GROUP, version, plural) else {
                continue;
            };
            let scope = Scope {
                cluster: None,
                desc,
                namespace: None,
            };
            let mut opts = ListOptions {
                limit: 500,
                ..Default::default()
            };
            loop {
                let page = match self.apis.registry.list(&scope, &opts).await {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::warn!(error = %e, plural, "apis: queueing every object for the new leader failed");
                        break;
                    }
                };
                for item in &page.items {
                    if let Ok(obj) = item.decode() {
                        self.changed(&obj, false);
                    }
                }
                match page.continue_token {
                    Some(token) => opts.continue_token = Some(token),
                    None => break,
                }
            }
        }
    }

    fn enqueue(&self, work: Work) {
        self.queue.add(work);
    }

    /// Reconciles one item; `Ok(false)`: not done yet, look again shortly.
    async fn reconcile_work(&self, work: &Work) -> Result<bool, ApiError> {
        match work {
            // Exports and slices are only written: the leader's alone.
            Work::ApiExport { .. } | Work::EndpointSlice { .. } if !self.apis.writes() => Ok(true),
            Work::ApiExport { cluster, name } => {
                crate::export::reconcile(&self.apis, cluster, name).await
            }
            Work::EndpointSlice { cluster, name } => {
                crate::export::reconcile_slice(&self.apis, cluster, name).await
            }
            Work::ApiBinding { cluster, name } => {
                let r = crate::binding::reconcile(&self.apis, cluster, name).await?;
                if let Some((cluster, name)) = r.export_changed {
                    self.enqueue(Work::SlicesOf { cluster, name });
                }
                Ok(r.done)
            }
            Work::ExportConsumers { cluster, name } => {
                self.enqueue_bindings_of(cluster, name).await
            }
            Work::SlicesOf { cluster, name } => self.enqueue_slices_of(cluster, name).await,
        }
    }

    /// Re-binds every APIBinding that references export `cluster`/`name` (a changed schema
    /// list, a new identity, a deleted export).
    async fn enqueue_bindings_of(&self, cluster: &str, name: &str) -> Result<bool, ApiError> {
        for (consumer, binding) in self
            .referencing(
                cluster,
                name,
                crate::V2,
                "apibindings",
                "/spec/reference/export",
            )
            .await?
        {
            self.enqueue(Work::ApiBinding {
                cluster: consumer,
                name: binding,
            });
        }
        Ok(true)
    }

    /// Refreshes every endpoint slice of export `cluster`/`name`.
    async fn enqueue_slices_of(&self, cluster: &str, name: &str) -> Result<bool, ApiError> {
        for (owner, slice) in self
            .referencing(
                cluster,
                name,
                crate::V1,
                "apiexportendpointslices",
                "/spec/export",
            )
            .await?
        {
            self.enqueue(Work::EndpointSlice {
                cluster: owner,
                name: slice,
            });
        }
        Ok(true)
    }

    /// (cluster, name) of every `apis.kcp.io` object whose export reference at `pointer`
    /// (`{path, name}`; an empty path is the object's own workspace) names export
    /// `cluster`/`name`.
    async fn referencing(
        &self,
        cluster: &str,
        name: &str,
        version: &str,
        plural: &str,
        pointer: &str,
    ) -> Result<Vec<(String, String)>, ApiError> {
        let Some(desc) = self.apis.served.lookup(None, crate::GROUP, version, plural) else {
            return Ok(vec![]);
        };
        let scope = Scope {
            cluster: None,
            desc: desc.clone(),
            namespace: None,
        };
        let list = self
            .apis
            .registry
            .list(&scope, &ListOptions::default())
            .await?;
        let path = self.apis.served.path_of(cluster);
        let mut out = Vec::new();
        for item in &list.items {
            let obj = item.decode_as(&desc)?;
            let Some(owner) = cluster_of(&obj) else {
                continue;
            };
            let field = |f: &str| {
                obj.pointer(&format!("{pointer}/{f}"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            let (p, n) = (field("path"), field("name"));
            let same_cluster = if p.is_empty() {
                owner == cluster
            } else {
                p == cluster || Some(p) == path.as_deref()
            };
            if n == name && same_cluster {
                out.push((owner, meta::name(&obj).unwrap_or("").to_string()));
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl EventHandler for ApisControllers {
    /// Exports and bindings present at start: what bindings serve is served before the
    /// first request.
    fn start_prefixes(&self) -> Vec<String> {
        vec![PREFIX.to_string()]
    }

    /// Reconciles the bindings now (the queued copies then find nothing to do).
    async fn started(&self, objects: &[Value]) {
        let bindings = objects
            .iter()
            .filter(|obj| obj.get("kind").and_then(Value::as_str) == Some("APIBinding"))
            .map(|obj| Work::ApiBinding {
                cluster: cluster_of(obj).unwrap_or_default(),
                name: meta::name(obj).unwrap_or("").to_string(),
            });
        futures::stream::iter(bindings)
            .for_each_concurrent(16, |work| async move {
                if let Err(e) = self.reconcile_work(&work).await {
                    tracing::debug!(?work, error = %e, "initial reconcile failed");
                }
            })
            .await;
    }

    fn wants(&self, key: &str, _value: &[u8]) -> bool {
        key.starts_with(PREFIX)
    }

    fn changed(&self, obj: &Value, _created: bool) {
        let (Some(cluster), Some(name)) = (cluster_of(obj), meta::name(obj)) else {
            return;
        };
        let name = name.to_string();
        match obj.get("kind").and_then(Value::as_str) {
            Some("APIExport") => {
                self.enqueue(Work::ApiExport {
                    cluster: cluster.clone(),
                    name: name.clone(),
                });
                self.enqueue(Work::ExportConsumers { cluster, name });
            }
            Some("APIBinding") => self.enqueue(Work::ApiBinding { cluster, name }),
            Some("APIExportEndpointSlice") => self.enqueue(Work::EndpointSlice { cluster, name }),
            _ => {}
        }
    }

    fn deleted(&self, old: &Value) {
        let Some(cluster) = cluster_of(old) else {
            return;
        };
        let name = meta::name(old).unwrap_or("").to_string();
        let in_group = old
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("apis.kcp.io/"));
        match old.get("kind").and_then(Value::as_str) {
            Some("APIBinding") if in_group => self.enqueue(Work::ApiBinding { cluster, name }),
            Some("APIExport") if in_group => self.enqueue(Work::ExportConsumers { cluster, name }),
            // Bindings are gone before their logical cluster; this only catches strays.
            Some("LogicalCluster") => self.apis.exports.remove_consumer_cluster(&cluster),
            _ => {}
        }
    }
}

#[async_trait]
impl Reconciler for ApisControllers {
    type Key = Work;
    type Error = ApiError;

    async fn reconcile(&self, work: &Work) -> Result<Action, ApiError> {
        let done = self.reconcile_work(work).await?;
        Ok(Action::done_or_after(done, RETRY))
    }
}

//! The built-in kinds' controllers: CRD establishing and cleanup, namespace lifecycle,
//! garbage collection by ownerReferences, ResourceQuota usage, legacy service-account token
//! Secrets. Cluster-aware from the start: every key names its logical cluster.
//!
//! The shared informer (`kplex_runtime::Informer`) hands this feature the writes that may
//! concern it; each becomes a [`Work`] item on one de-duplicating queue, reconciled from the
//! current state, so a missed or repeated event is harmless. Items that must wait
//! (finalizers, objects still terminating) are looked at again after a short delay;
//! failures back off per item.

mod aggregation;
mod crd;
mod defaults;
mod gc;
mod namespace;
mod quota;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use kplex_apimachinery::{ApiError, meta};
use kplex_auth::serviceaccount::{self, LegacyTokens};
use kplex_registry::catalog::ResourceDesc;
use kplex_registry::object::{self, keys};
use kplex_registry::registry::{Registry, Scope};
use kplex_registry::served::Served;
use kplex_runtime::{
    Action, Backoff, CancellationToken, Controller, ControllerSet, EventHandler, Metrics,
    Reconciler, WorkQueue, spawn_until,
};
use serde_json::Value;

/// How soon an item that is not done yet is looked at again.
const RETRY: Duration = Duration::from_millis(500);
/// Items reconciled at once; an item is never worked on twice at the same time.
const WORKERS: usize = 32;

/// What the controllers have to do, one variant per concern: the queue's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Work {
    Crd {
        cluster: String,
        name: String,
    },
    Namespace {
        cluster: String,
        name: String,
    },
    /// A namespace's `default` ServiceAccount and `kube-root-ca.crt` ConfigMap.
    NamespaceDefaults {
        cluster: String,
        name: String,
    },
    /// An owner with this uid is gone: collect or release its dependents.
    OwnerGone {
        cluster: String,
        namespace: Option<String>,
        uid: String,
    },
    /// An object waiting on the `foregroundDeletion` or `orphan` finalizer.
    Dependents {
        cluster: String,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
    },
    /// The ResourceQuotas of one namespace: recount `status.used`.
    Quotas {
        cluster: String,
        namespace: String,
    },
    /// The ClusterRoles of one logical cluster changed: refresh the aggregating ones.
    Aggregation {
        cluster: String,
    },
    /// A legacy service-account token Secret to fill.
    TokenSecret {
        cluster: String,
        namespace: String,
        name: String,
    },
}

/// The built-in kinds' controllers: an [`EventHandler`] for the informer and the
/// [`Reconciler`] of their two queues. CRDs are served by every replica (their reconcile
/// makes them servable here), so that queue's workers run everywhere; the rest only writes
/// (namespace deletion, garbage collection, quota counts, token Secrets) and runs on the
/// leader alone ([`BuiltinWriters`]).
pub struct Builtins {
    registry: Registry,
    served: Arc<Served>,
    /// Fills legacy token Secrets (None: no service-account tokens are issued).
    tokens: Option<Arc<LegacyTokens>>,
    /// CRDs: every replica.
    serving: WorkQueue<Work>,
    /// Everything else: the leader.
    writes: WorkQueue<Work>,
}

/// The writing half of [`Builtins`] as a controller set of its own, run only on the replica
/// that leads; the events that fill its queue are followed by [`Builtins`] everywhere, so
/// a new leader finds the work its predecessor left.
pub struct BuiltinWriters(pub Arc<Builtins>);

/// [`Builtins`] follows the events for both halves.
impl EventHandler for BuiltinWriters {}

impl ControllerSet for BuiltinWriters {
    fn leader_only(&self) -> bool {
        true
    }

    /// Runs the writing reconcilers (and the periodic quota recount) until `cancel` fires.
    fn run(self: Arc<Self>, metrics: &Metrics, cancel: &CancellationToken) {
        let builtins = self.0.clone();
        spawn_until(cancel, builtins.clone().resync_quotas());
        let controller = Controller::new("builtins", builtins.clone())
            .with_queue(builtins.writes.clone())
            .workers(WORKERS)
            .backoff(Backoff::around(RETRY))
            .metrics(metrics);
        tokio::spawn(controller.run(cancel.clone()));
    }
}

/// Where CRDs are stored (a constant: `wants` runs on every write).
const CRD_PREFIX: &str = "/registry/apiextensions.k8s.io/customresourcedefinitions/";
/// Where ClusterRoles are stored.
const CLUSTER_ROLE_PREFIX: &str = "/registry/rbac.authorization.k8s.io/clusterroles/";
/// Where Namespaces are stored.
const NAMESPACE_PREFIX: &str = "/registry/namespaces/";

/// Whether `key` (`/registry/<resource>/<cluster>/<namespace>/<name>`) is one of the
/// objects the built-ins make in namespaces (made again when deleted).
/// Runs on every write: no allocation.
fn is_namespace_default(key: &str) -> bool {
    let mut segments = key.rsplit('/');
    let (name, namespace) = (segments.next().unwrap_or(""), segments.next().unwrap_or(""));
    object::NAMESPACE_DEFAULTS.iter().any(|d| {
        d.is(namespace, name)
            && key
                .strip_prefix("/registry/")
                .and_then(|k| k.strip_prefix(d.resource))
                .is_some_and(|k| k.starts_with('/'))
    })
}

/// The kinds followed on every change, and any object being deleted (garbage collection's
/// foreground/orphan finalizers, namespace deletion).
fn wants(key: &str, value: &[u8]) -> bool {
    const MARKER: &[u8] = b"\"deletionTimestamp\"";
    const TOKEN_SECRET: &[u8] = b"\"kubernetes.io/service-account-token\"";
    key.starts_with(CRD_PREFIX)
        || key.starts_with(CLUSTER_ROLE_PREFIX)
        || key.starts_with(NAMESPACE_PREFIX)
        || is_namespace_default(key)
        || key.starts_with("/registry/resourcequotas/")
        || memchr::memmem::find(value, MARKER).is_some()
        || (key.starts_with("/registry/secrets/")
            && memchr::memmem::find(value, TOKEN_SECRET).is_some())
}

/// What may have work left after a restart; CRDs were taken up at start already.
/// Aggregating ClusterRoles are looked at again: a source may have changed while no
/// leader ran.
fn unfinished(key: &str, value: &[u8]) -> bool {
    const AGGREGATING: &[u8] = b"\"aggregationRule\"";
    if key.starts_with(CLUSTER_ROLE_PREFIX) {
        return memchr::memmem::find(value, AGGREGATING).is_some();
    }
    wants(key, value) && !key.starts_with(CRD_PREFIX)
}

fn cluster_of(obj: &Value) -> Option<String> {
    meta::annotation(obj, object::CLUSTER_ANNOTATION).map(String::from)
}

impl Builtins {
    pub fn new(registry: Registry, served: Arc<Served>, tokens: Option<Arc<LegacyTokens>>) -> Self {
        Self {
            registry,
            served,
            tokens,
            serving: WorkQueue::new(),
            writes: WorkQueue::new(),
        }
    }
}

impl ControllerSet for Builtins {
    /// Runs the CRD reconcilers until `cancel` fires.
    fn run(self: Arc<Self>, metrics: &Metrics, cancel: &CancellationToken) {
        let controller = Controller::new("crds", self.clone())
            .with_queue(self.serving.clone())
            .workers(WORKERS)
            .backoff(Backoff::around(RETRY))
            .metrics(metrics);
        tokio::spawn(controller.run(cancel.clone()));
    }
}

impl Builtins {
    fn enqueue(&self, work: Work) {
        match work {
            Work::Crd { .. } => self.serving.add(work),
            _ => self.writes.add(work),
        }
    }

    fn desc(
        &self,
        cluster: &str,
        group: &str,
        version: &str,
        plural: &str,
    ) -> Option<Arc<ResourceDesc>> {
        self.served.lookup(Some(cluster), group, version, plural)
    }

    fn scope(&self, cluster: &str, desc: Arc<ResourceDesc>, namespace: Option<&str>) -> Scope {
        Scope {
            cluster: Some(cluster.to_string()),
            desc,
            namespace: namespace.map(String::from),
        }
    }

    /// Deletes every object of `desc` in `cluster` (one namespace, or all); returns how many
    /// still exist (waiting on finalizers).
    async fn delete_all(
        &self,
        cluster: &str,
        desc: Arc<ResourceDesc>,
        namespace: Option<&str>,
    ) -> Result<usize, ApiError> {
        self.registry
            .delete_all(&self.scope(cluster, desc, namespace))
            .await
    }

    /// Reconciles one item; `Ok(false)`: not done yet, look again shortly.
    async fn reconcile_work(&self, work: &Work) -> Result<bool, ApiError> {
        match work {
            Work::Crd { cluster, name } => self.reconcile_crd(cluster, name).await,
            Work::Namespace { cluster, name } => self.reconcile_namespace(cluster, name).await,
            Work::NamespaceDefaults { cluster, name } => {
                self.reconcile_namespace_defaults(cluster, name).await
            }
            Work::OwnerGone {
                cluster,
                namespace,
                uid,
            } => {
                self.collect_dependents(cluster, namespace.as_deref(), uid)
                    .await
            }
            Work::Dependents {
                cluster,
                api_version,
                kind,
                namespace,
                name,
            } => {
                self.reconcile_dependents(cluster, api_version, kind, namespace.as_deref(), name)
                    .await
            }
            Work::Quotas { cluster, namespace } => self.reconcile_quotas(cluster, namespace).await,
            Work::Aggregation { cluster } => self.reconcile_aggregation(cluster).await,
            Work::TokenSecret {
                cluster,
                namespace,
                name,
            } => self.fill_token_secret(cluster, namespace, name).await,
        }
    }

    async fn fill_token_secret(
        &self,
        cluster: &str,
        namespace: &str,
        name: &str,
    ) -> Result<bool, ApiError> {
        let Some(tokens) = &self.tokens else {
            return Ok(true);
        };
        let accounts = serviceaccount::Accounts {
            registry: &self.registry,
            served: &self.served,
        };
        serviceaccount::fill_token_secret(accounts, tokens, cluster, namespace, name).await
    }

    /// The work a written object asks for, by kind.
    fn kind_work(&self, obj: &Value, cluster: &str, name: &str) -> Option<Work> {
        let api_version = obj.get("apiVersion").and_then(Value::as_str)?;
        let kind = obj.get("kind").and_then(Value::as_str)?;
        let (cluster, name) = (cluster.to_string(), name.to_string());
        match (api_version, kind) {
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
                Some(Work::Crd { cluster, name })
            }
            ("v1", "Namespace") if meta::deletion_timestamp(obj).is_some() => {
                Some(Work::Namespace { cluster, name })
            }
            ("v1", "Namespace") => Some(Work::NamespaceDefaults { cluster, name }),
            ("v1", "Secret") if serviceaccount::needs_token(obj) => Some(Work::TokenSecret {
                cluster,
                namespace: meta::namespace(obj).unwrap_or("").to_string(),
                name,
            }),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => Some(Work::Aggregation { cluster }),
            ("v1", "ResourceQuota") => {
                let namespace = meta::namespace(obj).unwrap_or("").to_string();
                if let Some(quota) = &self.registry.quota {
                    quota.observe_quota(&cluster, &namespace);
                }
                Some(Work::Quotas { cluster, namespace })
            }
            _ => None,
        }
    }
}

#[async_trait]
impl EventHandler for Builtins {
    /// CRDs are established before the first request; terminating namespaces resume.
    fn start_prefixes(&self) -> Vec<String> {
        vec![
            CRD_PREFIX.to_string(),
            keys::resource_prefix("", "namespaces"),
        ]
    }

    /// What CRDs serve must be served before the first request is: reconcile them now (the
    /// queued copies then find nothing to do).
    async fn started(&self, objects: &[Value]) {
        let crds = objects.iter().filter_map(|obj| {
            match self.kind_work(obj, &cluster_of(obj)?, meta::name(obj)?) {
                Some(work @ Work::Crd { .. }) => Some(work),
                _ => None,
            }
        });
        futures::stream::iter(crds)
            .for_each_concurrent(16, |work| async move {
                if let Err(e) = self.reconcile_work(&work).await {
                    tracing::debug!(?work, error = %e, "initial reconcile failed");
                }
            })
            .await;
    }

    fn wants(&self, key: &str, value: &[u8]) -> bool {
        wants(key, value)
    }

    fn changed(&self, obj: &Value, _created: bool) {
        let (Some(cluster), Some(name)) = (cluster_of(obj), meta::name(obj)) else {
            return;
        };
        if let Some(work) = self.kind_work(obj, &cluster, name) {
            self.enqueue(work);
        }
        if let Some(work) = gc::waiting_on_dependents(obj, &cluster) {
            self.enqueue(work);
        }
    }

    /// Capped workspaces' object counts follow the store, whichever replica wrote.
    fn created_or_deleted(&self, key: &str, revision: i64, created: bool) {
        if let Some(quota) = &self.registry.quota {
            quota.observe_change(key, revision, created);
        }
    }

    fn deleted(&self, old: &Value) {
        let Some(cluster) = cluster_of(old) else {
            return;
        };
        if let Some(uid) = meta::uid(old) {
            self.enqueue(Work::OwnerGone {
                cluster: cluster.clone(),
                namespace: meta::namespace(old).map(String::from),
                uid: uid.to_string(),
            });
        }
        let kind = old.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = meta::name(old).unwrap_or("");
        if let Some(namespace) = meta::namespace(old)
            && object::is_namespace_default(kind, namespace, name)
        {
            self.enqueue(Work::NamespaceDefaults {
                cluster: cluster.clone(),
                name: namespace.to_string(),
            });
        }
        if old.get("kind").and_then(Value::as_str) == Some("ClusterRole") {
            self.enqueue(Work::Aggregation {
                cluster: cluster.clone(),
            });
        }
        if old.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition") {
            let name = meta::name(old).unwrap_or("").to_string();
            self.enqueue(Work::Crd { cluster, name });
        }
    }

    fn unfinished(&self, key: &str, value: &[u8]) -> bool {
        unfinished(key, value)
    }
}

#[async_trait]
impl Reconciler for Builtins {
    type Key = Work;
    type Error = ApiError;

    async fn reconcile(&self, work: &Work) -> Result<Action, ApiError> {
        let done = self.reconcile_work(work).await?;
        Ok(Action::done_or_after(done, RETRY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_reads_only_what_may_have_work_left() {
        let cm = "/registry/configmaps/root/default/a";
        assert!(!unfinished(cm, br#"{"metadata":{}}"#));
        assert!(unfinished(cm, br#"{"metadata":{"deletionTimestamp":"x"}}"#));
        // Taken up at start already.
        let crd = format!("{CRD_PREFIX}root/w.example.com");
        assert!(!unfinished(
            &crd,
            br#"{"metadata":{"deletionTimestamp":"x"}}"#
        ));
        assert!(wants(&crd, b"{}"));
        assert!(wants("/registry/serviceaccounts/root/team/default", b"{}"));
        assert!(!wants("/registry/serviceaccounts/root/team/robot", b"{}"));
        assert!(wants(
            "/registry/configmaps/root/team/kube-root-ca.crt",
            b"{}"
        ));
        assert_eq!(NAMESPACE_PREFIX, keys::resource_prefix("", "namespaces"));
        let role = format!("{CLUSTER_ROLE_PREFIX}root/monitoring");
        assert!(wants(&role, b"{}"));
        assert!(unfinished(&role, br#"{"aggregationRule":{}}"#));
        assert!(!unfinished(&role, br#"{"rules":[]}"#));
        assert_eq!(
            CLUSTER_ROLE_PREFIX,
            keys::resource_prefix("rbac.authorization.k8s.io", "clusterroles")
        );
        assert_eq!(
            CRD_PREFIX,
            keys::resource_prefix("apiextensions.k8s.io", "customresourcedefinitions")
        );
    }
}

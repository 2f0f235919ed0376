//! In-process controllers, cluster-aware from the start: CRD establishing and cleanup,
//! namespace lifecycle, and garbage collection by ownerReferences.
//!
//! One store watch over `/registry/` feeds the runtime's de-duplicating work queue
//! (`kplex_runtime`: one item never twice at once, 64 workers, a span and metrics per
//! reconcile, cancelled at shutdown); each item is reconciled from the current state, so a
//! missed or repeated event is harmless. Items that must wait (finalizers, objects still
//! terminating) are looked at again after a short delay; failures back off per item.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kplex_apimachinery::{ApiError, meta};
use kplex_runtime::{Action, Backoff, CancellationToken, Controller, Reconciler, WorkQueue};
use kplex_store::{EventKind, KeyRange, RangeRequest};
use serde_json::{Value, json};

use crate::catalog::ResourceDesc;
use crate::crd::{self, CLEANUP_FINALIZER};
use crate::object;
use crate::registry::{DeleteOptions, ListOptions, Registry, Scope, WriteOptions};
use crate::served::Served;
use crate::tenancy::lifecycle::Tenancy;

const RETRY: Duration = Duration::from_millis(500);
/// How often ResourceQuota usage is recounted.
const QUOTA_RESYNC: Duration = Duration::from_secs(5);

/// What the controllers have to do, one variant per concern: the runtime's queue key.
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
    /// An owner with this uid is gone: collect or release its dependents.
    OwnerGone {
        cluster: String,
        namespace: Option<String>,
        uid: String,
    },
    Workspace {
        cluster: String,
        name: String,
    },
    LogicalCluster {
        cluster: String,
    },
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
    /// An export changed (or appeared): every binding referencing it re-binds.
    ExportConsumers {
        cluster: String,
        name: String,
    },
    /// A legacy service-account token Secret to fill.
    TokenSecret {
        cluster: String,
        namespace: String,
        name: String,
    },
    /// An export gained its first or lost its last consumer: every endpoint slice that
    /// references it (in any workspace) lists or drops its URL.
    SlicesOf {
        cluster: String,
        name: String,
    },
    /// The ResourceQuotas of one namespace: recount `status.used`.
    Quotas {
        cluster: String,
        namespace: String,
    },
    /// An object waiting on the `foregroundDeletion` or `orphan` finalizer.
    Dependents {
        cluster: String,
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
    },
}

#[derive(Clone)]
pub struct Controllers {
    registry: Registry,
    /// Fills legacy token Secrets (None: no service-account tokens are issued).
    tokens: Option<Arc<crate::serviceaccount::LegacyTokens>>,
    served: Arc<Served>,
    tenancy: Tenancy,
    apis: crate::apis::Apis,
    queue: WorkQueue<Work>,
}

/// Items reconciled at once; an item is never worked on twice at the same time.
const WORKERS: usize = 64;

/// Starts the controllers; they run until the process ends.
pub async fn start(
    tenancy: Tenancy,
    apis: crate::apis::Apis,
    tokens: Option<Arc<crate::serviceaccount::LegacyTokens>>,
    metrics: &kplex_runtime::Metrics,
    cancel: CancellationToken,
) -> Result<(), ApiError> {
    let c = Controllers {
        tokens,
        registry: tenancy.registry.clone(),
        served: tenancy.served.clone(),
        tenancy,
        apis,
        queue: WorkQueue::new(),
    };
    let revision = c.enqueue_existing().await?;
    if let Some(mut unfinished) = c.tenancy.scheduling.unfinished() {
        let c = c.clone();
        spawn_until(&cancel, async move {
            while let Some((cluster, name)) = unfinished.recv().await {
                c.enqueue(Work::Workspace { cluster, name });
            }
        });
    }
    let watcher = c.clone();
    spawn_until(&cancel, async move { watcher.watch(revision + 1).await });
    spawn_until(&cancel, c.clone().resync_quotas());
    spawn_until(&cancel, c.clone().resume_unfinished());
    let controller = Controller::new("kplex", Arc::new(c.clone()))
        .with_queue(c.queue.clone())
        .workers(WORKERS)
        .backoff(Backoff {
            base: RETRY / 5,
            cap: RETRY * 4,
        })
        .metrics(metrics);
    tokio::spawn(controller.run(cancel));
    Ok(())
}

/// Runs `task` until it ends or `cancel` fires.
fn spawn_until(cancel: &CancellationToken, task: impl Future<Output = ()> + Send + 'static) {
    let cancel = cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = task => {}
        }
    });
}

/// Key prefixes of the kinds controllers follow on every change.
const WATCHED_KINDS: &[&str] = &[
    "/registry/apiextensions.k8s.io/customresourcedefinitions/",
    "/registry/tenancy.kcp.io/workspaces/",
    "/registry/core.kcp.io/logicalclusters/",
    "/registry/apis.kcp.io/",
    "/registry/resourcequotas/",
];

/// Whether a written object can need a controller: one of the followed kinds, or any object
/// being deleted (garbage collection's foreground/orphan finalizers, namespace deletion). A
/// byte search avoids parsing every object written.
fn concerns_controllers(key: &str, value: &[u8]) -> bool {
    const MARKER: &[u8] = b"\"deletionTimestamp\"";
    const TOKEN_SECRET: &[u8] = b"\"kubernetes.io/service-account-token\"";
    WATCHED_KINDS.iter().any(|p| key.starts_with(p))
        || memchr::memmem::find(value, MARKER).is_some()
        || (key.starts_with("/registry/secrets/")
            && memchr::memmem::find(value, TOKEN_SECRET).is_some())
}

/// Objects found at start that may have work left (see `resume_unfinished`): those the
/// controllers follow, but for the kinds `enqueue_existing` already took up, and workspaces
/// and logical clusters that are Ready and not being deleted, which is nearly all of them.
fn may_be_unfinished(key: &str, value: &[u8]) -> bool {
    const SETTLED_CLUSTER: &[u8] = b"\"phase\":\"Ready\"";
    let taken_up = key.starts_with("/registry/apiextensions.k8s.io/customresourcedefinitions/")
        || key.starts_with("/registry/apis.kcp.io/");
    let settled_cluster = (key.starts_with("/registry/core.kcp.io/logicalclusters/")
        || key.starts_with("/registry/tenancy.kcp.io/workspaces/"))
        && memchr::memmem::find(value, SETTLED_CLUSTER).is_some()
        && memchr::memmem::find(value, b"\"deletionTimestamp\"").is_none();
    concerns_controllers(key, value) && !taken_up && !settled_cluster
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

/// The work that makes an existing object's resources served (CRDs, APIBindings).
fn serving_work(obj: &Value) -> Option<Work> {
    let cluster = cluster_of(obj)?;
    let name = meta::name(obj)?.to_string();
    match obj.get("kind").and_then(Value::as_str)? {
        "CustomResourceDefinition" => Some(Work::Crd { cluster, name }),
        "APIBinding" => Some(Work::ApiBinding { cluster, name }),
        _ => None,
    }
}

fn cluster_of(obj: &Value) -> Option<String> {
    meta::annotation(obj, object::CLUSTER_ANNOTATION).map(String::from)
}

fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

impl Controllers {
    fn enqueue(&self, work: Work) {
        self.queue.add(work);
    }

    /// Object counts change with every create and delete, which the controllers do not
    /// follow one by one: recount the namespaces that hold quotas every few seconds.
    async fn resync_quotas(self) {
        let Some(quota) = self.registry.quota.clone() else {
            return;
        };
        loop {
            tokio::time::sleep(QUOTA_RESYNC).await;
            for (cluster, namespace) in quota.quota_namespaces() {
                self.enqueue(Work::Quotas { cluster, namespace });
            }
        }
    }

    /// What a restart left mid-way, which no event would bring back: workspaces and logical
    /// clusters being scheduled, initialized or deleted, objects held by foreground or orphan
    /// deletion, token Secrets to fill. Found in the background, a page at a time, so that
    /// readiness does not wait for a scan of the store; anything changed meanwhile arrives
    /// through the watch, and reconciling twice is harmless.
    async fn resume_unfinished(self) {
        const PAGE: usize = 1000;
        let mut range = KeyRange::prefix("/registry/");
        loop {
            let page = RangeRequest {
                limit: PAGE,
                ..RangeRequest::new(range.clone())
            };
            let resp = match self.registry.store.range(page).await {
                Ok(resp) => resp,
                Err(e) => {
                    tracing::warn!(error = %e, "controllers: resuming unfinished work failed");
                    return;
                }
            };
            for kv in resp
                .kvs
                .iter()
                .filter(|kv| may_be_unfinished(&kv.key, &kv.value))
            {
                if let Ok(obj) = object::decode(&kv.value, kv.mod_revision) {
                    self.dispatch(&obj, false);
                }
            }
            match resp.kvs.last() {
                Some(last) if resp.kvs.len() == PAGE => range.start = format!("{}\0", last.key),
                _ => break,
            }
        }
    }

    /// CRDs, terminating namespaces, exports and bindings present at start; returns the
    /// revision read at.
    async fn enqueue_existing(&self) -> Result<i64, ApiError> {
        let crds = self
            .registry
            .store
            .range(RangeRequest::prefix(object::keys::resource_prefix(
                "apiextensions.k8s.io",
                "customresourcedefinitions",
            )))
            .await
            .map_err(crate::registry::store_error)?;
        let namespaces = self
            .registry
            .store
            .range(
                RangeRequest::prefix(object::keys::resource_prefix("", "namespaces"))
                    .at_revision(crds.revision),
            )
            .await
            .map_err(crate::registry::store_error)?;
        let apis = self
            .registry
            .store
            .range(RangeRequest::prefix("/registry/apis.kcp.io/").at_revision(crds.revision))
            .await
            .map_err(crate::registry::store_error)?;
        let mut serving = Vec::new();
        for kv in crds.kvs.iter().chain(&namespaces.kvs).chain(&apis.kvs) {
            if let Ok(obj) = object::decode(&kv.value, kv.mod_revision) {
                self.dispatch(&obj, false);
                serving.extend(serving_work(&obj));
            }
        }
        // What CRDs and bindings serve must be served before the first request is: reconcile
        // them now (the queued copies then find nothing to do).
        futures::stream::iter(serving)
            .for_each_concurrent(16, |work| async move {
                if let Err(e) = self.reconcile_work(&work).await {
                    tracing::debug!(?work, error = %e, "initial reconcile failed");
                }
            })
            .await;
        Ok(crds.revision)
    }

    async fn watch(self, from: i64) {
        let mut next = from;
        loop {
            let mut events = match self
                .registry
                .store
                .watch(KeyRange::prefix("/registry/"), next)
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "controllers: watch failed, retrying");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            while let Some(item) = events.next().await {
                let Ok(event) = item else { break };
                next = event.kv.mod_revision + 1;
                match event.kind {
                    // Most writes concern no controller: parse only the ones that can.
                    EventKind::Put if concerns_controllers(&event.kv.key, &event.kv.value) => {
                        if let Ok(obj) = object::decode(&event.kv.value, event.kv.mod_revision) {
                            let created = event.kv.create_revision == event.kv.mod_revision;
                            self.dispatch(&obj, created);
                        }
                    }
                    EventKind::Put => {}
                    EventKind::Delete => {
                        if let Some(old) = event
                            .prev
                            .as_ref()
                            .and_then(|p| object::decode(&p.value, p.mod_revision).ok())
                        {
                            self.deleted(&old);
                        }
                    }
                }
            }
            // The stream ended (store restart, compaction): resume where we were.
            tokio::time::sleep(RETRY).await;
        }
    }

    fn dispatch(&self, obj: &Value, created: bool) {
        let Some(cluster) = cluster_of(obj) else {
            return;
        };
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = meta::name(obj).unwrap_or("").to_string();
        match (api_version, kind) {
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => self.enqueue(Work::Crd {
                cluster: cluster.clone(),
                name: name.clone(),
            }),
            ("v1", "Namespace") if meta::deletion_timestamp(obj).is_some() => {
                self.enqueue(Work::Namespace {
                    cluster: cluster.clone(),
                    name: name.clone(),
                })
            }
            // A Ready workspace has nothing to do; skipping it saves a reconcile after every
            // status write (the lifecycle's own last step).
            ("tenancy.kcp.io/v1alpha1", "Workspace") if workspace_needs_work(obj) => {
                self.enqueue(Work::Workspace {
                    cluster: cluster.clone(),
                    name: name.clone(),
                })
            }
            ("core.kcp.io/v1alpha1", "LogicalCluster") => {
                if let Some(quota) = &self.registry.quota {
                    quota.observe_logical_cluster(&cluster, obj);
                }
                // Created Ready (no initializers): the scheduler writes its Workspace's
                // phase itself, so there is nothing to follow yet.
                let born_ready = created
                    && obj.pointer("/status/phase").and_then(Value::as_str) == Some("Ready");
                if !born_ready {
                    self.enqueue(Work::LogicalCluster {
                        cluster: cluster.clone(),
                    })
                }
            }
            ("v1", "Secret") if crate::serviceaccount::needs_token(obj) => {
                self.enqueue(Work::TokenSecret {
                    cluster: cluster.clone(),
                    namespace: meta::namespace(obj).unwrap_or("").to_string(),
                    name: name.clone(),
                })
            }
            ("v1", "ResourceQuota") => {
                let namespace = meta::namespace(obj).unwrap_or("").to_string();
                if let Some(quota) = &self.registry.quota {
                    quota.observe_quota(&cluster, &namespace);
                }
                self.enqueue(Work::Quotas {
                    cluster: cluster.clone(),
                    namespace,
                })
            }
            (v, "APIExport") if v.starts_with("apis.kcp.io/") => {
                self.enqueue(Work::ApiExport {
                    cluster: cluster.clone(),
                    name: name.clone(),
                });
                self.enqueue(Work::ExportConsumers {
                    cluster: cluster.clone(),
                    name: name.clone(),
                });
            }
            (v, "APIBinding") if v.starts_with("apis.kcp.io/") => self.enqueue(Work::ApiBinding {
                cluster: cluster.clone(),
                name: name.clone(),
            }),
            (v, "APIExportEndpointSlice") if v.starts_with("apis.kcp.io/") => {
                self.enqueue(Work::EndpointSlice {
                    cluster: cluster.clone(),
                    name: name.clone(),
                })
            }
            _ => {}
        }
        let finalizers = meta::finalizers(obj);
        if meta::deletion_timestamp(obj).is_some()
            && finalizers
                .iter()
                .any(|f| f == "foregroundDeletion" || f == "orphan")
        {
            self.enqueue(Work::Dependents {
                cluster,
                api_version: api_version.to_string(),
                kind: kind.to_string(),
                namespace: meta::namespace(obj).map(String::from),
                name,
            });
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
        let name = meta::name(old).unwrap_or("").to_string();
        match old.get("kind").and_then(Value::as_str) {
            Some("CustomResourceDefinition") => self.enqueue(Work::Crd { cluster, name }),
            Some("APIBinding") => self.enqueue(Work::ApiBinding { cluster, name }),
            Some("APIExport") => self.enqueue(Work::ExportConsumers { cluster, name }),
            // Bindings are gone before their logical cluster; this only catches strays.
            Some("LogicalCluster") => self.apis.exports.remove_consumer_cluster(&cluster),
            _ => {}
        }
    }

    /// Reconciles one item; `Ok(false)`: not done yet, look again shortly.
    async fn reconcile_work(&self, work: &Work) -> Result<bool, ApiError> {
        match work {
            Work::Crd { cluster, name } => self.reconcile_crd(cluster, name).await,
            Work::Namespace { cluster, name } => self.reconcile_namespace(cluster, name).await,
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
            Work::Workspace { cluster, name } => {
                self.tenancy.reconcile_workspace(cluster, name).await
            }
            Work::ApiExport { cluster, name } => {
                crate::apis::export::reconcile(&self.apis, cluster, name).await
            }
            Work::EndpointSlice { cluster, name } => {
                crate::apis::export::reconcile_slice(&self.apis, cluster, name).await
            }
            Work::ApiBinding { cluster, name } => {
                let r = crate::apis::binding::reconcile(&self.apis, cluster, name).await?;
                if let Some((cluster, name)) = r.export_changed {
                    self.enqueue(Work::SlicesOf { cluster, name });
                }
                Ok(r.done)
            }
            Work::ExportConsumers { cluster, name } => {
                self.enqueue_bindings_of(cluster, name).await
            }
            Work::Quotas { cluster, namespace } => self.reconcile_quotas(cluster, namespace).await,
            Work::SlicesOf { cluster, name } => self.enqueue_slices_of(cluster, name).await,
            Work::TokenSecret {
                cluster,
                namespace,
                name,
            } => match &self.tokens {
                Some(tokens) => {
                    let accounts = crate::serviceaccount::Accounts {
                        registry: &self.registry,
                        served: &self.served,
                    };
                    crate::serviceaccount::fill_token_secret(
                        accounts, tokens, cluster, namespace, name,
                    )
                    .await
                }
                None => Ok(true),
            },
            Work::LogicalCluster { cluster } => {
                if let Some((parent, name)) =
                    self.tenancy.reconcile_logical_cluster(cluster).await?
                {
                    self.enqueue(Work::Workspace {
                        cluster: parent,
                        name,
                    });
                }
                Ok(true)
            }
        }
    }

    /// Recounts `status.used` of the ResourceQuotas in one namespace.
    async fn reconcile_quotas(&self, cluster: &str, namespace: &str) -> Result<bool, ApiError> {
        let (Some(quota), Some(desc)) = (
            &self.registry.quota,
            self.desc(cluster, "", "v1", "resourcequotas"),
        ) else {
            return Ok(true);
        };
        let scope = self.scope(cluster, desc, Some(namespace));
        let list = self.registry.list(&scope, &ListOptions::default()).await?;
        for item in &list.items {
            let obj = item.decode()?;
            let status = quota
                .usage(self.registry.store.as_ref(), cluster, namespace, &obj)
                .await?;
            self.registry.set_status(&scope, &obj, status).await?;
        }
        Ok(true)
    }

    /// Re-binds every APIBinding that references export `cluster`/`name` (a changed schema
    /// list, a new identity, a deleted export).
    async fn enqueue_bindings_of(&self, cluster: &str, name: &str) -> Result<bool, ApiError> {
        for (consumer, binding) in self
            .referencing(
                cluster,
                name,
                crate::apis::V2,
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
                crate::apis::V1,
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
        let Some(desc) = self
            .served
            .lookup(None, crate::apis::GROUP, version, plural)
        else {
            return Ok(vec![]);
        };
        let scope = Scope {
            cluster: None,
            desc: desc.clone(),
            namespace: None,
        };
        let list = self.registry.list(&scope, &ListOptions::default()).await?;
        let path = self.served.path_of(cluster);
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

    /// Establishes a CRD (conditions, served resources) or, when it is being deleted, removes
    /// its custom resources and then its finalizer. Ok(false) = try again later.
    async fn reconcile_crd(&self, cluster: &str, name: &str) -> Result<bool, ApiError> {
        let Some(desc) = self.desc(
            cluster,
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
        ) else {
            return Ok(true);
        };
        let scope = self.scope(cluster, desc, None);
        let crd = match self.registry.get(&scope, name).await {
            Ok(s) => s.decode()?,
            Err(e) if e.is_not_found() => {
                self.served.remove_crd(cluster, name);
                return Ok(true);
            }
            Err(e) => return Err(e),
        };
        if meta::deletion_timestamp(&crd).is_some() {
            return self.cleanup_crd(&scope, cluster, name, &crd).await;
        }
        let status = self.crd_status(cluster, name, &crd);
        if crd.get("status") != Some(&status) {
            let status = status.clone();
            let opts = WriteOptions {
                subresource: Some("status".into()),
                ..Default::default()
            };
            self.registry
                .update_with(&scope, name, &opts, move |cur, _| {
                    let mut next = cur.clone();
                    next["status"] = status.clone();
                    Ok(next)
                })
                .await?;
        }
        if crd::condition_true(&json!({"status": status}), "Established") {
            self.served.set_crd(cluster, name, crd::descriptions(&crd));
        }
        Ok(true)
    }

    fn crd_status(&self, cluster: &str, name: &str, crd: &Value) -> Value {
        let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
        let group = spec.get("group").and_then(Value::as_str).unwrap_or("");
        let mut names = spec.get("names").cloned().unwrap_or_else(|| json!({}));
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if names.get("singular").is_none() {
            names["singular"] = json!(kind.to_ascii_lowercase());
        }
        if names.get("listKind").is_none() {
            names["listKind"] = json!(format!("{kind}List"));
        }
        let plural = names.get("plural").and_then(Value::as_str).unwrap_or("");
        let conflict = self.served.resources(Some(cluster)).iter().any(|d| {
            d.group == group
                && d.plural == plural
                && !matches!(&d.origin, crate::catalog::Origin::Crd { name: n, .. } if n == name)
        });
        let now = meta::now_rfc3339();
        let previous = |t: &str| -> Option<String> {
            crd.get("status")?
                .get("conditions")?
                .as_array()?
                .iter()
                .find(|c| c["type"] == t)?
                .get("lastTransitionTime")?
                .as_str()
                .map(String::from)
        };
        let condition = |t: &str, ok: bool, reason: &str, message: &str| json!({"type": t, "status": if ok { "True" } else { "False" }, "lastTransitionTime": previous(t).unwrap_or_else(|| now.clone()), "reason": reason, "message": message});
        let storage: Vec<Value> = spec
            .get("versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .filter_map(|v| v.get("name").cloned())
            .collect();
        let mut stored_versions: Vec<Value> = crd
            .get("status")
            .and_then(|s| s.get("storedVersions"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for v in storage {
            if !stored_versions.contains(&v) {
                stored_versions.push(v);
            }
        }
        let conditions = if conflict {
            vec![
                condition(
                    "NamesAccepted",
                    false,
                    "NameConflict",
                    &format!("\"{plural}\" is already in use"),
                ),
                condition(
                    "Established",
                    false,
                    "NotAccepted",
                    "not all names are accepted",
                ),
            ]
        } else {
            vec![
                condition("NamesAccepted", true, "NoConflicts", "no conflicts found"),
                condition(
                    "Established",
                    true,
                    "InitialNamesAccepted",
                    "the initial names have been accepted",
                ),
            ]
        };
        json!({"conditions": conditions, "acceptedNames": names, "storedVersions": stored_versions})
    }

    async fn cleanup_crd(
        &self,
        scope: &Scope,
        cluster: &str,
        name: &str,
        crd: &Value,
    ) -> Result<bool, ApiError> {
        self.served.remove_crd(cluster, name);
        let descs = crd::descriptions(crd);
        if let Some(d) = descs.into_iter().next() {
            // Every version shares one storage location: deleting through one is enough.
            let remaining = self.delete_all(cluster, Arc::new(d), None).await?;
            if remaining > 0 {
                return Ok(false);
            }
        }
        self.remove_finalizer(scope, name, CLEANUP_FINALIZER)
            .await?;
        Ok(true)
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

    async fn remove_finalizer(
        &self,
        scope: &Scope,
        name: &str,
        finalizer: &str,
    ) -> Result<(), ApiError> {
        self.registry.remove_finalizer(scope, name, finalizer).await
    }

    /// Empties a terminating namespace, then releases its `kubernetes` finalizer.
    async fn reconcile_namespace(&self, cluster: &str, name: &str) -> Result<bool, ApiError> {
        let Some(ns_desc) = self.desc(cluster, "", "v1", "namespaces") else {
            return Ok(true);
        };
        let scope = self.scope(cluster, ns_desc, None);
        let ns = match self.registry.get(&scope, name).await {
            Ok(s) => s.decode()?,
            Err(e) if e.is_not_found() => return Ok(true),
            Err(e) => return Err(e),
        };
        if meta::deletion_timestamp(&ns).is_none() {
            return Ok(true);
        }
        let mut remaining = 0;
        let mut seen = HashSet::new();
        for desc in self
            .served
            .resources(Some(cluster))
            .into_iter()
            .filter(|d| d.namespaced)
        {
            // Versions of one resource share storage; empty each storage location once.
            if seen.insert((desc.group.clone(), desc.plural.clone())) {
                remaining += self.delete_all(cluster, desc, Some(name)).await?;
            }
        }
        if remaining > 0 {
            return Ok(false);
        }
        let opts = WriteOptions {
            subresource: Some("finalize".into()),
            ..Default::default()
        };
        let result = self
            .registry
            .update_with(&scope, name, &opts, |cur, _| {
                let mut next = cur.clone();
                let fs: Vec<Value> = cur
                    .get("spec")
                    .and_then(|s| s.get("finalizers"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|f| f.as_str() != Some("kubernetes"))
                    .cloned()
                    .collect();
                next["spec"]["finalizers"] = Value::Array(fs);
                Ok(next)
            })
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Objects (in the owner's namespace, or anywhere for a cluster-scoped owner) whose
    /// ownerReferences name `uid`, with the resource that serves each.
    async fn dependents(
        &self,
        cluster: &str,
        namespace: Option<&str>,
        uid: &str,
    ) -> Result<Vec<(Arc<ResourceDesc>, Value)>, ApiError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for desc in self.served.resources(Some(cluster)) {
            if !seen.insert((desc.group.clone(), desc.plural.clone())) {
                continue;
            }
            let ns = if desc.namespaced { namespace } else { None };
            if namespace.is_some() && !desc.namespaced {
                // A namespaced owner cannot own cluster-scoped objects.
                continue;
            }
            let list = self
                .registry
                .list(
                    &self.scope(cluster, desc.clone(), ns),
                    &ListOptions::default(),
                )
                .await?;
            for item in list.items {
                let obj = item.decode()?;
                if meta::owner_references(&obj)
                    .iter()
                    .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                {
                    out.push((desc.clone(), obj));
                }
            }
        }
        Ok(out)
    }

    /// Background collection: dependents left with no existing owner are deleted; others
    /// lose the dangling reference.
    async fn collect_dependents(
        &self,
        cluster: &str,
        namespace: Option<&str>,
        uid: &str,
    ) -> Result<bool, ApiError> {
        if !self.served.has_cluster(cluster) {
            return Ok(true);
        }
        for (desc, dep) in self.dependents(cluster, namespace, uid).await? {
            let scope = self.scope(cluster, desc, meta::namespace(&dep));
            let name = meta::name(&dep).unwrap_or("").to_string();
            let others: Vec<Value> = meta::owner_references(&dep)
                .into_iter()
                .filter(|r| r.get("uid").and_then(Value::as_str) != Some(uid))
                .collect();
            let mut alive = false;
            for r in &others {
                alive |= self.owner_exists(cluster, meta::namespace(&dep), r).await;
            }
            if alive {
                self.registry
                    .update_with(&scope, &name, &WriteOptions::default(), |cur, _| {
                        let mut next = cur.clone();
                        let refs = meta::owner_references(cur)
                            .into_iter()
                            .filter(|r| r.get("uid").and_then(Value::as_str) != Some(uid))
                            .collect();
                        meta::set_owner_references(&mut next, refs);
                        Ok(next)
                    })
                    .await?;
            } else {
                match self
                    .registry
                    .delete(&scope, &name, &DeleteOptions::default())
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(true)
    }

    async fn owner_exists(
        &self,
        cluster: &str,
        namespace: Option<&str>,
        owner_ref: &Value,
    ) -> bool {
        let api_version = owner_ref
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = owner_ref.get("kind").and_then(Value::as_str).unwrap_or("");
        let (group, version) = split_api_version(api_version);
        let Some(desc) = self
            .served
            .resources(Some(cluster))
            .into_iter()
            .find(|d| d.group == group && d.version == version && d.kind == kind)
        else {
            return false;
        };
        let ns = if desc.namespaced { namespace } else { None };
        let scope = self.scope(cluster, desc, ns);
        match self
            .registry
            .get(
                &scope,
                owner_ref.get("name").and_then(Value::as_str).unwrap_or(""),
            )
            .await
        {
            Ok(s) => {
                s.decode()
                    .ok()
                    .and_then(|o| meta::uid(&o).map(String::from))
                    .as_deref()
                    == owner_ref.get("uid").and_then(Value::as_str)
            }
            Err(_) => false,
        }
    }

    /// Foreground deletion deletes dependents first; orphaning releases them. Then the
    /// owner's finalizer is removed.
    async fn reconcile_dependents(
        &self,
        cluster: &str,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, ApiError> {
        let (group, version) = split_api_version(api_version);
        let Some(desc) = self
            .served
            .resources(Some(cluster))
            .into_iter()
            .find(|d| d.group == group && d.version == version && d.kind == kind)
        else {
            return Ok(true);
        };
        let scope = self.scope(cluster, desc.clone(), namespace);
        let owner = match self.registry.get(&scope, name).await {
            Ok(s) => s.decode()?,
            Err(e) if e.is_not_found() => return Ok(true),
            Err(e) => return Err(e),
        };
        let uid = meta::uid(&owner).unwrap_or("").to_string();
        let finalizers = meta::finalizers(&owner);
        let dependents = self.dependents(cluster, namespace, &uid).await?;
        if finalizers.iter().any(|f| f == "orphan") {
            for (d, dep) in &dependents {
                let dep_scope = self.scope(cluster, d.clone(), meta::namespace(dep));
                let uid = uid.clone();
                self.registry
                    .update_with(
                        &dep_scope,
                        meta::name(dep).unwrap_or(""),
                        &WriteOptions::default(),
                        move |cur, _| {
                            let mut next = cur.clone();
                            let refs = meta::owner_references(cur)
                                .into_iter()
                                .filter(|r| {
                                    r.get("uid").and_then(Value::as_str) != Some(uid.as_str())
                                })
                                .collect();
                            meta::set_owner_references(&mut next, refs);
                            Ok(next)
                        },
                    )
                    .await?;
            }
            self.remove_finalizer(&scope, name, "orphan").await?;
            return Ok(true);
        }
        if finalizers.iter().any(|f| f == "foregroundDeletion") {
            if !dependents.is_empty() {
                for (d, dep) in &dependents {
                    let dep_scope = self.scope(cluster, d.clone(), meta::namespace(dep));
                    let opts = DeleteOptions {
                        propagation_policy: Some("Foreground".into()),
                        ..Default::default()
                    };
                    match self
                        .registry
                        .delete(&dep_scope, meta::name(dep).unwrap_or(""), &opts)
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(e),
                    }
                }
                return Ok(false);
            }
            self.remove_finalizer(&scope, name, "foregroundDeletion")
                .await?;
        }
        Ok(true)
    }
}

/// Every controller is one reconciler over one queue for now: the items say what to do.
#[async_trait::async_trait]
impl Reconciler for Controllers {
    type Key = Work;
    type Error = ApiError;

    async fn reconcile(&self, work: &Work) -> Result<Action, ApiError> {
        Ok(match self.reconcile_work(work).await? {
            true => Action::Done,
            false => Action::RequeueAfter(RETRY),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_reads_only_what_may_have_work_left() {
        let lc = "/registry/core.kcp.io/logicalclusters/abc/cluster";
        assert!(!may_be_unfinished(lc, br#"{"status":{"phase":"Ready"}}"#));
        assert!(may_be_unfinished(
            lc,
            br#"{"status":{"phase":"Initializing"}}"#
        ));
        assert!(may_be_unfinished(
            lc,
            br#"{"metadata":{"deletionTimestamp":"x"},"status":{"phase":"Ready"}}"#
        ));
        let ws = "/registry/tenancy.kcp.io/workspaces/root/a";
        assert!(!may_be_unfinished(ws, br#"{"status":{"phase":"Ready"}}"#));
        assert!(may_be_unfinished(
            ws,
            br#"{"status":{"phase":"Scheduling"}}"#
        ));
        let cm = "/registry/configmaps/root/default/a";
        assert!(!may_be_unfinished(cm, br#"{"metadata":{}}"#));
        assert!(may_be_unfinished(
            cm,
            br#"{"metadata":{"deletionTimestamp":"x"}}"#
        ));
        // Taken up synchronously at start already.
        let crd = "/registry/apiextensions.k8s.io/customresourcedefinitions/root/w.example.com";
        assert!(!may_be_unfinished(
            crd,
            br#"{"metadata":{"deletionTimestamp":"x"}}"#
        ));
    }
}

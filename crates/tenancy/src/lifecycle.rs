//! The workspace lifecycle (kcp's `pkg/reconciler/tenancy/workspace`, see its README):
//!
//! ```text
//!  Workspace created (admission set spec.type, finalizer)   phase Scheduling
//!  scheduled by its own POST (the controller if that did not finish):
//!    → new logical cluster: LogicalCluster `cluster` (owner, path, type, initializers),
//!      namespace `default`, spec.cluster + spec.URL on the Workspace
//!                                                             phase Initializing (initializers left)
//!    → every initializer removed from LogicalCluster.status   phase Ready
//!  Workspace deleted (deletionTimestamp)                     phase Terminating
//!    → terminators removed → every object inside deleted (child workspaces recurse)
//!    → LogicalCluster deleted → finalizer removed → Workspace gone
//! ```
//!
//! Every step reads current state and is safe to repeat.

use std::collections::HashSet;
use std::sync::Arc;

use kplex_apimachinery::{ApiError, meta};
use serde_json::{Value, json};

use super::types::{self, TypeRef};
use super::{
    CORE, LOGICAL_CLUSTER, PATH_ANNOTATION, TENANCY, TYPE_ANNOTATION, VERSION, WORKSPACE_FINALIZER,
};
use crate::registry::create_hook::{CreateHook, FinishCreate};
use crate::registry::{DeleteOptions, Registry, Scope, WriteOptions};
use crate::served::Served;

/// What the lifecycle needs: the registry, the cluster index and the server's public URL.
#[derive(Clone)]
pub struct Tenancy {
    pub registry: Registry,
    pub served: Arc<Served>,
    /// `https://host:port`, the base of every workspace URL.
    pub base_url: String,
    /// Workspaces being scheduled right now, by their POST or by the controller: only one
    /// of the two may give a Workspace its logical cluster.
    pub scheduling: Claims,
}

/// (parent cluster, workspace name).
type Key = (String, String);

/// The workspaces held while one task schedules them, and those whose claim was let go
/// before they were scheduled (an error, a request dropped mid-way), for the controller to
/// take up again.
#[derive(Clone)]
pub struct Claims {
    held: Arc<std::sync::Mutex<HashSet<Key>>>,
    unfinished: tokio::sync::mpsc::UnboundedSender<Key>,
    unfinished_rx: Arc<std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Key>>>>,
}

impl Default for Claims {
    fn default() -> Self {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Self {
            held: Arc::default(),
            unfinished: tx,
            unfinished_rx: Arc::new(std::sync::Mutex::new(Some(rx))),
        }
    }
}

/// Held while scheduling; releases the claim when dropped (also on error or cancellation),
/// handing the workspace back unless it was marked finished.
pub struct Claim {
    claims: Claims,
    key: Key,
    finished: bool,
}

impl Claims {
    fn take(&self, parent: &str, name: &str) -> Option<Claim> {
        let key = (parent.to_string(), name.to_string());
        let mut set = self.held.lock().ok()?;
        set.insert(key.clone()).then(|| Claim {
            claims: self.clone(),
            key,
            finished: false,
        })
    }

    /// The stream of workspaces handed back unscheduled (for the one controller).
    pub fn unfinished(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Key>> {
        self.unfinished_rx.lock().ok()?.take()
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Ok(mut set) = self.claims.held.lock() {
            set.remove(&self.key);
        }
        if !self.finished {
            let _ = self.claims.unfinished.send(self.key.clone());
        }
    }
}

/// What scheduling a Workspace came to.
enum Scheduled {
    /// Given its logical cluster: the Workspace as now stored.
    Now(Value),
    /// Nothing to do: scheduled before, being deleted, or gone.
    Already,
    /// Another task is scheduling it at this moment.
    Busy,
}

/// The LogicalCluster singleton of a new logical cluster.
pub fn logical_cluster_object(
    path: &str,
    owner: Option<Value>,
    t: &TypeRef,
    initializers: &[String],
    url: &str,
) -> Value {
    let mut spec = json!({"initializers": initializers});
    if let Some(owner) = owner {
        spec["owner"] = owner;
    }
    json!({
        "apiVersion": format!("{CORE}/{VERSION}"), "kind": "LogicalCluster",
        "metadata": {"name": LOGICAL_CLUSTER, "annotations": {PATH_ANNOTATION: path, TYPE_ANNOTATION: t.qualified()}},
        "spec": spec,
        "status": {"phase": if initializers.is_empty() { "Ready" } else { "Initializing" }, "URL": url, "initializers": initializers},
    })
}

/// The user who created a Workspace (admission records it as kcp does).
fn creator(ws: &Value) -> Option<String> {
    let owner = meta::annotation(ws, "experimental.tenancy.kcp.io/owner")?;
    serde_json::from_str::<Value>(owner)
        .ok()?
        .get("username")?
        .as_str()
        .map(String::from)
}

fn system() -> WriteOptions {
    WriteOptions {
        system: true,
        ..Default::default()
    }
}

impl Tenancy {
    fn scope(&self, cluster: &str, group: &str, version: &str, resource: &str) -> Option<Scope> {
        let desc = self
            .served
            .lookup(Some(cluster), group, version, resource)?;
        Some(Scope {
            cluster: Some(cluster.to_string()),
            desc,
            namespace: None,
        })
    }

    pub(crate) fn workspaces(&self, cluster: &str) -> Option<Scope> {
        self.scope(cluster, TENANCY, VERSION, "workspaces")
    }

    pub(crate) fn logical_clusters(&self, cluster: &str) -> Option<Scope> {
        self.scope(cluster, CORE, VERSION, "logicalclusters")
    }

    pub(crate) async fn get(&self, scope: &Scope, name: &str) -> Result<Option<Value>, ApiError> {
        match self.registry.get(scope, name).await {
            Ok(s) => Ok(Some(s.decode()?)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn url_of(&self, path: &str) -> String {
        format!("{}/clusters/{path}", self.base_url)
    }

    /// Creates logical cluster `path` (owned by `owner`) with its LogicalCluster and `default`
    /// namespace; returns its name.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_logical_cluster(
        &self,
        path: &str,
        owner: Option<Value>,
        t: &TypeRef,
        initializers: &[String],
        terminators: &[String],
        name: Option<&str>,
        admin: Option<&str>,
    ) -> Result<String, ApiError> {
        let url = self.url_of(path);
        for _ in 0..8 {
            let cluster = name
                .map(String::from)
                .unwrap_or_else(super::random_cluster_name);
            let Some(scope) = self.logical_clusters(&cluster) else {
                return Err(ApiError::internal("logicalclusters not served"));
            };
            let mut lc = logical_cluster_object(path, owner.clone(), t, initializers, &url);
            lc["spec"]["terminators"] = json!(terminators);
            lc["status"]["terminators"] = json!(terminators);
            match self.registry.create(&scope, lc, &system()).await {
                Ok(_) => {}
                // Taken: by our own earlier attempt (fine when named), or a rare collision.
                Err(e) if e.is_already_exists() && name.is_some() => {}
                Err(e) if e.is_already_exists() => continue,
                Err(e) => return Err(e),
            }
            self.served.add_cluster(&cluster, path);
            if let Some(ns) = self.scope(&cluster, "", "v1", "namespaces") {
                let default = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}});
                match self
                    .registry
                    .create(&ns, default, &WriteOptions::default())
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.is_already_exists() => {}
                    Err(e) => return Err(e),
                }
            }
            if let Some(user) = admin.filter(|u| !u.is_empty()) {
                self.grant_admin(&cluster, user).await?;
            }
            return Ok(cluster);
        }
        Err(ApiError::internal(
            "could not find a free logical cluster name",
        ))
    }

    /// The type's `defaultAPIBindings`: one APIBinding per export, named after it.
    async fn bind_defaults(&self, cluster: &str, t: &TypeRef) -> Result<(), ApiError> {
        let exports = types::default_api_bindings(&self.registry, &self.served, t).await?;
        if exports.is_empty() {
            return Ok(());
        }
        let Some(scope) = self.scope(
            cluster,
            crate::APIS_GROUP,
            crate::APIS_VERSION,
            "apibindings",
        ) else {
            return Ok(());
        };
        for (path, export) in exports {
            let binding = json!({
                "apiVersion": format!("{}/{}", crate::APIS_GROUP, crate::APIS_VERSION),
                "kind": "APIBinding",
                "metadata": {"name": export},
                "spec": {"reference": {"export": {"path": path, "name": export}}},
            });
            match self
                .registry
                .create(&scope, binding, &WriteOptions::default())
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_already_exists() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The creator becomes the workspace's admin: ClusterRoleBinding `workspace-admin` to
    /// `cluster-admin`, as kcp's tenancy logicalcluster controller does.
    async fn grant_admin(&self, cluster: &str, user: &str) -> Result<(), ApiError> {
        let Some(scope) = self.scope(
            cluster,
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
        ) else {
            return Ok(());
        };
        let binding = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "workspace-admin"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        });
        match self
            .registry
            .create(&scope, binding, &WriteOptions::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_already_exists() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Moves one Workspace forward. Ok(false) asks to be retried later.
    pub async fn reconcile_workspace(&self, parent: &str, name: &str) -> Result<bool, ApiError> {
        let Some(scope) = self.workspaces(parent) else {
            return Ok(true);
        };
        let Some(ws) = self.get(&scope, name).await? else {
            return Ok(true);
        };
        if meta::deletion_timestamp(&ws).is_some() {
            // Not while its POST is still scheduling it: the logical cluster being made would
            // be left behind. Once scheduled, it is deleted like any other.
            let Some(mut claim) = self.scheduling.take(parent, name) else {
                return Ok(false);
            };
            claim.finished = true;
            let Some(ws) = self.get(&scope, name).await? else {
                return Ok(true);
            };
            return self.delete_workspace(&scope, &ws).await;
        }
        let cluster = ws
            .pointer("/spec/cluster")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if cluster.is_empty() {
            // Busy: its POST is scheduling it, and hands it back if that does not finish.
            self.schedule(&scope, parent, name).await?;
            return Ok(true);
        }
        // Initializing: follow the LogicalCluster's initializers.
        let Some(lc_scope) = self.logical_clusters(&cluster) else {
            return Ok(true);
        };
        let Some(lc) = self.get(&lc_scope, LOGICAL_CLUSTER).await? else {
            return Ok(true);
        };
        let initializers = lc
            .pointer("/status/initializers")
            .cloned()
            .unwrap_or_else(|| json!([]));
        let phase = lc
            .pointer("/status/phase")
            .cloned()
            .unwrap_or_else(|| json!("Ready"));
        if ws.pointer("/status/phase") != Some(&phase)
            || ws.pointer("/status/initializers") != Some(&initializers)
        {
            self.registry
                .update_with(&scope, name, &system(), |cur, _| {
                    let mut next = cur.clone();
                    next["status"]["phase"] = phase.clone();
                    next["status"]["initializers"] = initializers.clone();
                    Ok(next)
                })
                .await?;
        }
        Ok(true)
    }

    /// Claims a Workspace about to be created through the API, so that its POST, not the
    /// controller woken by the creation, schedules it (None: someone else holds it).
    pub fn claim(&self, parent: &str, name: &str) -> Option<Claim> {
        self.scheduling.take(parent, name)
    }

    /// Schedules a Workspace its POST just created, before the POST is answered, and returns
    /// it as now stored (None: it is gone or was scheduled already). Doing this in the
    /// request makes a burst of creations wait for their own workspaces instead of running
    /// ahead of the controller, so time-to-Ready stays the request's latency.
    pub async fn schedule_claimed(&self, mut claim: Claim) -> Result<Option<Value>, ApiError> {
        let (parent, name) = claim.key.clone();
        let Some(scope) = self.workspaces(&parent) else {
            return Ok(None);
        };
        let scheduled = self.schedule_held(&scope, &parent, &name).await?;
        claim.finished = true;
        match scheduled {
            Scheduled::Now(ws) => Ok(Some(ws)),
            Scheduled::Already | Scheduled::Busy => Ok(None),
        }
    }

    async fn schedule(
        &self,
        scope: &Scope,
        parent: &str,
        name: &str,
    ) -> Result<Scheduled, ApiError> {
        let Some(mut claim) = self.scheduling.take(parent, name) else {
            return Ok(Scheduled::Busy);
        };
        let scheduled = self.schedule_held(scope, parent, name).await;
        // The controller retries its own errors (later, not through the hand-back).
        claim.finished = true;
        scheduled
    }

    /// Gives a Workspace its logical cluster; the caller holds its claim.
    async fn schedule_held(
        &self,
        scope: &Scope,
        parent: &str,
        name: &str,
    ) -> Result<Scheduled, ApiError> {
        // Read under the claim: whoever held it before may have just scheduled it.
        let Some(ws) = self.get(scope, name).await? else {
            return Ok(Scheduled::Already);
        };
        let unscheduled = ws
            .pointer("/spec/cluster")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if !unscheduled || meta::deletion_timestamp(&ws).is_some() {
            return Ok(Scheduled::Already);
        }
        let name = name.to_string();
        let t = ws
            .pointer("/spec/type")
            .and_then(TypeRef::from_json)
            .unwrap_or_else(TypeRef::universal);
        let parent_path = self
            .served
            .path_of(parent)
            .unwrap_or_else(|| parent.to_string());
        let path = format!("{parent_path}:{name}");
        let parent_type = super::admission::type_of(&self.registry, &self.served, parent).await?;
        let initializers =
            types::admit_child(&self.registry, &self.served, &parent_type, &t, &name).await?;
        let terminators = types::terminators(&self.registry, &self.served, &t).await?;
        let owner = json!({"apiVersion": format!("{TENANCY}/{VERSION}"), "resource": "workspaces", "name": name, "cluster": parent, "uid": meta::uid(&ws).unwrap_or("")});
        let cluster = self
            .create_logical_cluster(
                &path,
                Some(owner),
                &t,
                &initializers,
                &terminators,
                meta::uid(&ws).map(super::cluster_name_of).as_deref(),
                creator(&ws).as_deref(),
            )
            .await?;
        self.bind_defaults(&cluster, &t).await?;
        let url = self.url_of(&path);
        let phase = if initializers.is_empty() {
            "Ready"
        } else {
            "Initializing"
        };
        let result = self
            .registry
            .update_with(scope, &name, &system(), |cur, _| {
                let mut next = cur.clone();
                let taken = cur.pointer("/spec/cluster").and_then(Value::as_str);
                if taken.is_some_and(|c| !c.is_empty()) {
                    // Scheduled meanwhile (by another replica): its cluster stands.
                    return Ok(next);
                }
                next["spec"]["cluster"] = json!(cluster);
                next["spec"]["URL"] = json!(url);
                next["status"] = json!({"phase": phase, "initializers": initializers, "terminators": terminators});
                let mut labels = meta::labels(&next);
                labels.insert("tenancy.kcp.io/phase".into(), json!(phase));
                meta::set_labels(&mut next, labels);
                Ok(next)
            })
            .await;
        match result {
            Ok(written) => Ok(Scheduled::Now(written.object)),
            Err(e) => {
                // The Workspace went away meanwhile: do not leave an orphaned logical cluster.
                self.remove_logical_cluster(&cluster).await?;
                if e.is_not_found() {
                    Ok(Scheduled::Already)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Called when a LogicalCluster changed: an Initializing cluster whose initializers are
    /// all gone becomes Ready. Returns its owning Workspace (parent cluster, name).
    pub async fn reconcile_logical_cluster(
        &self,
        cluster: &str,
    ) -> Result<Option<(String, String)>, ApiError> {
        let Some(scope) = self.logical_clusters(cluster) else {
            return Ok(None);
        };
        let Some(lc) = self.get(&scope, LOGICAL_CLUSTER).await? else {
            return Ok(None);
        };
        let done = meta::strings(lc.pointer("/status/initializers")).is_empty();
        if done && lc.pointer("/status/phase").and_then(Value::as_str) == Some("Initializing") {
            self.registry
                .update_with(&scope, LOGICAL_CLUSTER, &system(), |cur, _| {
                    let mut next = cur.clone();
                    next["status"]["phase"] = json!("Ready");
                    Ok(next)
                })
                .await?;
        }
        let owner = lc.pointer("/spec/owner");
        let parent = owner.and_then(|o| o.get("cluster")).and_then(Value::as_str);
        let name = owner.and_then(|o| o.get("name")).and_then(Value::as_str);
        Ok(parent
            .zip(name)
            .map(|(p, n)| (p.to_string(), n.to_string())))
    }

    /// Deletion: terminators first, then every object inside (child workspaces recurse),
    /// then the logical cluster, then the Workspace's finalizer.
    async fn delete_workspace(&self, scope: &Scope, ws: &Value) -> Result<bool, ApiError> {
        let name = meta::name(ws).unwrap_or("").to_string();
        let cluster = ws
            .pointer("/spec/cluster")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if ws.pointer("/status/phase").and_then(Value::as_str) != Some("Terminating") {
            self.registry
                .update_with(scope, &name, &system(), |cur, _| {
                    let mut next = cur.clone();
                    next["status"]["phase"] = json!("Terminating");
                    Ok(next)
                })
                .await?;
        }
        if !cluster.is_empty() && self.served.has_cluster(&cluster) {
            if let Some(lc_scope) = self.logical_clusters(&cluster)
                && let Some(lc) = self.get(&lc_scope, LOGICAL_CLUSTER).await?
            {
                let terminators = meta::strings(lc.pointer("/status/terminators"));
                let phase = if terminators.is_empty() {
                    "Deleting"
                } else {
                    "Terminating"
                };
                if lc.pointer("/status/phase").and_then(Value::as_str) != Some(phase) {
                    self.registry
                        .update_with(&lc_scope, LOGICAL_CLUSTER, &system(), |cur, _| {
                            let mut next = cur.clone();
                            next["status"]["phase"] = json!(phase);
                            Ok(next)
                        })
                        .await?;
                }
                if !terminators.is_empty() {
                    // A LogicalCluster update (a terminator leaving) brings us back.
                    return Ok(true);
                }
            }
            if self.delete_contents(&cluster).await? > 0 {
                return Ok(false);
            }
            self.remove_logical_cluster(&cluster).await?;
        }
        self.registry
            .remove_finalizer(scope, &name, WORKSPACE_FINALIZER)
            .await?;
        Ok(true)
    }

    async fn remove_logical_cluster(&self, cluster: &str) -> Result<(), ApiError> {
        if let Some(scope) = self.logical_clusters(cluster) {
            match self
                .registry
                .delete(&scope, LOGICAL_CLUSTER, &DeleteOptions::default())
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        self.served.remove_cluster(cluster);
        Ok(())
    }

    /// Deletes every object in `cluster` but its LogicalCluster (honouring finalizers);
    /// returns how many remain.
    async fn delete_contents(&self, cluster: &str) -> Result<usize, ApiError> {
        let mut remaining = 0;
        let mut seen = HashSet::new();
        for desc in self.served.resources(Some(cluster)) {
            if !seen.insert((desc.group.clone(), desc.plural.clone()))
                || (desc.group == CORE && desc.plural == "logicalclusters")
            {
                continue;
            }
            let scope = Scope {
                cluster: Some(cluster.to_string()),
                desc,
                namespace: None,
            };
            remaining += self.registry.delete_all(&scope).await?;
        }
        Ok(remaining)
    }
}

/// Scheduling at creation (see [`Tenancy::claim`]): a Workspace about to be created through
/// the API is claimed for its own POST, which schedules it right after the create; the
/// controller, woken by the creation, leaves it alone meanwhile.
pub struct ScheduleAtCreation(pub Tenancy);

impl CreateHook for ScheduleAtCreation {
    fn begin_create(
        &self,
        scope: &Scope,
        opts: &WriteOptions,
        obj: &Value,
    ) -> Option<Box<dyn FinishCreate>> {
        let workspaces = matches!(scope.desc.group.as_str(), TENANCY | CORE)
            && scope.desc.plural == "workspaces";
        if !workspaces || opts.dry_run {
            return None;
        }
        let claim = self.0.claim(scope.cluster.as_deref()?, meta::name(obj)?)?;
        Some(Box::new(Claimed {
            tenancy: self.0.clone(),
            claim,
        }))
    }
}

/// A Workspace created under its claim, to be scheduled before its POST is answered.
struct Claimed {
    tenancy: Tenancy,
    claim: Claim,
}

#[async_trait::async_trait]
impl FinishCreate for Claimed {
    async fn finish(self: Box<Self>) -> Option<Value> {
        match self.tenancy.schedule_claimed(self.claim).await {
            Ok(ws) => ws,
            Err(e) => {
                tracing::debug!(error = %e, "scheduling at creation failed; the controller retries");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_exclusive_and_handed_back_unless_finished() {
        let claims = Claims::default();
        let mut unfinished = claims.unfinished().unwrap();
        assert!(
            claims.unfinished().is_none(),
            "one controller takes the hand-backs"
        );

        let first = claims.take("root", "a").unwrap();
        assert!(claims.take("root", "a").is_none(), "held by its POST");
        assert!(
            claims.take("root", "b").is_some(),
            "other workspaces are free"
        );
        // `b`'s claim was dropped unfinished at once: handed back.
        assert_eq!(unfinished.try_recv().unwrap(), ("root".into(), "b".into()));
        drop(first);
        assert_eq!(unfinished.try_recv().unwrap(), ("root".into(), "a".into()));

        let mut done = claims.take("root", "a").unwrap();
        done.finished = true;
        drop(done);
        assert!(
            unfinished.try_recv().is_err(),
            "a finished claim is not handed back"
        );
    }
}

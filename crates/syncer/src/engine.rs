//! The agent's loop: watches upstream (through the syncer virtual workspace) and downstream
//! feed one de-duplicated queue of keys; one worker reconciles each key from what is known
//! now (level-triggered), so a missed or repeated event changes nothing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, Config};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::connect::Pool;
use crate::transform::{
    CLUSTER_ANNOTATION, Decision, LOCATOR_ANNOTATION, OWNER_LABEL, STATE_LABEL_PREFIX, Target,
    apply_spec_diff, conflict_conditions, decide, downstream_namespace, downstream_object,
    heartbeat_patch, is_ours, locator, now_rfc3339, placed_on, status_report, status_update,
    syncable, synced_resources, upstream_copy, upstream_of,
};
use crate::{Error, SyncerArgs, importer, namespace_mode};

const FIELD_MANAGER: &str = "kplex-syncer";
const KEY_LABEL: &str = "internal.workload.kcp.io/key";
/// A failed key is looked at again after this long, doubling per failure in a row up to
/// [`MAX_RETRY`] (an unreachable cluster is not hammered).
const RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// Keys reconciled at once.
const WORKERS: usize = 8;
/// A key found in flight is taken again after this long.
const BUSY: Duration = Duration::from_millis(20);
/// How often an object refused for a foreign downstream twin is looked at again.
const CONFLICT_RECHECK: Duration = Duration::from_secs(30);
/// How long one pass of the resync takes (see [`Syncer::resync`]).
const RESYNC: Duration = Duration::from_secs(600);

/// What every agent syncs besides namespaces: (group, version, kind, plural).
const DEFAULT_RESOURCES: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "ConfigMap", "configmaps"),
    ("", "v1", "Secret", "secrets"),
    ("", "v1", "ServiceAccount", "serviceaccounts"),
    ("apps", "v1", "Deployment", "deployments"),
    ("", "v1", "Service", "services"),
    ("networking.k8s.io", "v1", "Ingress", "ingresses"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("batch", "v1", "Job", "jobs"),
];

/// The default kinds whose status goes up (the others have none; writing to a `/status`
/// that is not served would fail, and be retried, forever).
const WITH_STATUS: &[&str] = &["Deployment", "Service", "Ingress", "StatefulSet", "Job"];

/// What the downstream cluster makes of the workloads, shown upstream read-only: the
/// ReplicaSets (Helm's `--wait` and `kubectl rollout` read a Deployment's new one) and the
/// pods (where they run).
const SHOWN: &[(&str, &str, &str, &str)] = &[
    ("apps", "v1", "ReplicaSet", "replicasets"),
    ("", "v1", "Pod", "pods"),
    // Only those a downstream controller made for a synced object (a certificate's key
    // pair, an operator's credentials): see `Syncer::shows`.
    ("", "v1", "Secret", "secrets"),
];

/// How upstream watches reconnect: from 100 ms, doubling to at most 500 ms (kube's default
/// backs off to 30 s). Upstream is one kplex, and after it restarts the next change must
/// reach downstream within a second — the wait for the next attempt is part of that; a
/// refused connection costs next to nothing.
#[derive(Clone, Debug)]
struct UpstreamBackoff(Duration);

const UPSTREAM_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_millis(500));

impl Default for UpstreamBackoff {
    fn default() -> Self {
        Self(UPSTREAM_BACKOFF.0)
    }
}

impl Iterator for UpstreamBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = self.0;
        self.0 = (now * 2).min(UPSTREAM_BACKOFF.1);
        Some(now)
    }
}

/// Upstream lists unpaginated: a whole consistent list of one target's objects is what
/// kplex answers from its watch cache (cheap when a hundred agents relist after a restart);
/// a paginated one reads and decodes every object of the resource from the store.
fn upstream_watch() -> watcher::Config {
    watcher::Config {
        page_size: None,
        ..watcher::Config::default()
    }
}

impl kube::runtime::utils::Backoff for UpstreamBackoff {
    fn reset(&mut self) {
        self.0 = UPSTREAM_BACKOFF.0;
    }
}

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// (cluster, namespace, name) of an upstream object.
type Key = (String, String, String);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Work {
    /// An upstream object of resource `res` (or its downstream copy) changed.
    Object(usize, Key),
    /// A downstream object of resource `res` changed, in downstream namespace `.1`.
    Downstream(usize, String, String),
    /// An upstream namespace (cluster, namespace) changed.
    Namespace(String, String),
    /// An object of [`SHOWN`] kind `.0` to show upstream: (cluster, namespace, name).
    Shown(usize, Key),
    /// A downstream object of [`SHOWN`] kind `.0` changed, in downstream namespace `.1`.
    DownstreamShown(usize, String, String),
}

#[derive(Default)]
struct State {
    /// Per resource, the upstream objects placed here.
    /// (Kept as JSON text: a third of the memory of parsed values, parsed per reconcile.)
    upstream: Vec<HashMap<Key, Box<str>>>,
    /// Per resource, whether a complete upstream list has been seen: only then is an
    /// object's absence evidence.
    listed: Vec<bool>,
    /// Per resource, our downstream objects (downstream namespace, name).
    downstream: Vec<HashSet<(String, String)>>,
    /// Upstream namespaces placed here, and whether they were listed completely.
    namespaces: HashSet<(String, String)>,
    namespaces_listed: bool,
    /// Upstream namespaces gone since when (their downstream twin waits the clean delay).
    namespaces_gone: HashMap<(String, String), Instant>,
    /// Our downstream namespaces → upstream (cluster, namespace).
    mapped: HashMap<String, (String, String)>,
    /// Namespace mode: per resource, our downstream names → upstream keys.
    names: Vec<HashMap<String, Key>>,
    /// Per resource, the resourceVersion our last apply gave each downstream object
    /// (namespace, name): its watch event is the echo of that write, nothing to do.
    applied: Vec<HashMap<(String, String), String>>,
    conflicts: BTreeSet<String>,
}

struct Syncer {
    args: SyncerArgs,
    target: Target,
    /// Upstream connections, TLS and credentials (the URL changes per request target).
    upstream: Pool,
    /// The SyncTargets of the target's home workspace (heartbeats, reports).
    targets: Api<DynamicObject>,
    /// The syncer virtual workspace's URL.
    view: String,
    down: Client,
    resources: Vec<ApiResource>,
    /// Per resource, whether it has a status subresource to write upstream.
    has_status: Vec<bool>,
    /// Per resource, the identity of the APIExport serving it upstream ("" for kplex's own
    /// kinds): a list across workspaces must name it.
    identities: Vec<String>,
    /// Failures in a row per key, for the retry backoff.
    failures: Mutex<HashMap<Work, u32>>,
    writers: Mutex<HashMap<String, Client>>,
    state: Mutex<State>,
    queue: mpsc::UnboundedSender<Work>,
    pending: Mutex<HashSet<Work>>,
    in_flight: Mutex<HashSet<Work>>,
}

/// Runs the agent until the process is stopped.
pub async fn run(args: SyncerArgs) -> Result<(), Error> {
    while let Some(changed) = run_until_reimported(args.clone()).await? {
        tracing::info!(resource = %changed, "its downstream CRD changed how it is stored; syncing it as it now is");
    }
    Ok(())
}

/// Syncs until the import of a resource from a downstream CRD changes (a new storage
/// version, say): returns its name, having stopped everything, and the agent starts over
/// (its upstream view is rebuilt from a list; downstream is left as it is).
async fn run_until_reimported(args: SyncerArgs) -> Result<Option<String>, Error> {
    let kubeconfig =
        Kubeconfig::read_from(&args.from_kubeconfig).map_err(|source| Error::Kubeconfig {
            path: args.from_kubeconfig.clone(),
            source,
        })?;
    let options = KubeConfigOptions {
        context: args.from_context.clone(),
        ..Default::default()
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|source| Error::Kubeconfig {
            path: args.from_kubeconfig.clone(),
            source,
        })?;
    let upstream = Pool::new(config)?;
    let down = downstream_client(&args).await?;
    let (target, view, export) = find_target(&upstream, &args).await?;
    tracing::info!(target = %args.sync_target_name, key = %target.key, %view, "syncing");
    let (mut resources, mut has_status): (Vec<ApiResource>, Vec<bool>) = DEFAULT_RESOURCES
        .iter()
        .map(|(g, v, k, p)| (resource(g, v, k, p), WITH_STATUS.contains(k)))
        .unzip();
    let mut identities = vec![String::new(); resources.len()];
    let wildcard = upstream.client_at(&format!("{view}/clusters/*"))?;
    let home = upstream.client()?;
    let mut imported = Vec::new();
    for extra in &args.resources {
        // A downstream CRD is imported; anything else must be served upstream already.
        let (ar, status, identity) = match importer::import(&home, &down, &export, extra).await? {
            Some(i) => {
                imported.push((extra.clone(), i.clone()));
                (i.resource, i.status, i.identity)
            }
            None => {
                let (ar, status) = discover(&wildcard, extra).await?;
                (ar, status, String::new())
            }
        };
        if !resources
            .iter()
            .any(|r| r.group == ar.group && r.plural == ar.plural)
        {
            resources.push(ar);
            has_status.push(status);
            identities.push(identity);
        }
    }
    let targets = Api::all_with(home.clone(), &synctargets());
    let every = args.api_import_poll_interval;
    let reimported = {
        let down = down.clone();
        async move {
            if imported.is_empty() {
                std::future::pending().await
            } else {
                importer::keep_importing(home, down, export, imported, every).await
            }
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let syncer = Arc::new(Syncer {
        args,
        target,
        targets,
        upstream,
        view,
        down,
        state: Mutex::new(State {
            upstream: vec![HashMap::new(); resources.len()],
            listed: vec![false; resources.len()],
            downstream: vec![HashSet::new(); resources.len()],
            names: vec![HashMap::new(); resources.len()],
            applied: vec![HashMap::new(); resources.len()],
            ..State::default()
        }),
        resources,
        has_status,
        identities,
        failures: Mutex::default(),
        writers: Mutex::default(),
        queue: tx,
        pending: Mutex::default(),
        in_flight: Mutex::default(),
    });
    syncer.report_resources().await;
    // Dropped (every task stopped) when this returns.
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(syncer.clone().heartbeat());
    for i in 0..syncer.resources.len() {
        tasks.spawn(syncer.clone().watch_upstream(i));
        tasks.spawn(syncer.clone().watch_downstream(i));
    }
    tasks.spawn(syncer.clone().watch_upstream_namespaces());
    // In namespace mode the pods of every tenant share one namespace: not shown upstream.
    if syncer.args.downstream_namespace.is_none() {
        for i in 0..SHOWN.len() {
            tasks.spawn(syncer.clone().watch_upstream_shown(i));
            tasks.spawn(syncer.clone().watch_downstream_shown(i));
        }
    }
    tasks.spawn(syncer.clone().resync());
    tokio::select! {
        () = syncer.work(rx) => Ok(None),
        changed = reimported => Ok(Some(changed)),
    }
}

async fn downstream_client(args: &SyncerArgs) -> Result<Client, Error> {
    let options = KubeConfigOptions {
        context: args.to_context.clone(),
        ..Default::default()
    };
    let config = match &args.to_kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
                path: path.clone(),
                source,
            })?;
            Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(|source| Error::Kubeconfig {
                    path: path.clone(),
                    source,
                })?
        }
        None => Config::infer().await?,
    };
    Pool::new(config)?.client()
}

fn synctargets() -> ApiResource {
    resource("workload.kcp.io", "v1alpha1", "SyncTarget", "synctargets")
}

/// The SyncTarget (checked against its uid), its syncer view's URL once kplex has given it a
/// key and a URL, and the APIExport it supports.
async fn find_target(
    upstream: &Pool,
    args: &SyncerArgs,
) -> Result<(Target, String, String), Error> {
    let api: Api<DynamicObject> = Api::all_with(upstream.client()?, &synctargets());
    loop {
        let st = serde_json::to_value(api.get(&args.sync_target_name).await?).unwrap_or_default();
        let text = |p: &str| {
            st.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let uid = text("/metadata/uid");
        if uid != args.sync_target_uid {
            return Err(Error::WrongTarget {
                name: args.sync_target_name.clone(),
                found: uid,
                expected: args.sync_target_uid.clone(),
            });
        }
        let key = st
            .pointer("/metadata/labels")
            .and_then(|l| l.get(KEY_LABEL))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let view = text("/status/virtualWorkspaces/0/syncerURL");
        let cluster = st
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(CLUSTER_ANNOTATION))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !key.is_empty() && !view.is_empty() {
            let target = Target {
                cluster,
                name: args.sync_target_name.clone(),
                uid,
                key,
            };
            return Ok((target, view, importer::supported_export(&st)));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The downstream object with its `status.observedGeneration` in upstream terms: the
/// upstream generation once the downstream controller has observed the spec just applied
/// from it (generations differ between the clusters), else what upstream had.
fn upstream_generations(up: &Value, mut down: Value) -> Value {
    let generation = |o: &Value| o.pointer("/metadata/generation").and_then(Value::as_i64);
    let observed = |o: &Value| {
        o.pointer("/status/observedGeneration")
            .and_then(Value::as_i64)
    };
    let Some(down_observed) = observed(&down) else {
        return down;
    };
    let caught_up = generation(&down).is_some_and(|g| down_observed >= g);
    let mapped = if caught_up {
        generation(up).unwrap_or(down_observed)
    } else {
        observed(up).unwrap_or(0)
    };
    down["status"]["observedGeneration"] = json!(mapped);
    down
}

/// `plural.group` → the resource as the upstream view serves it, and whether it has a
/// status subresource.
async fn discover(client: &Client, name: &str) -> Result<(ApiResource, bool), Error> {
    let (plural, group) = name.split_once('.').unwrap_or((name, ""));
    let discovery = kube::Discovery::new(client.clone())
        .filter(&[group])
        .run()
        .await?;
    discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(ar, _)| ar.plural == plural && ar.group == group)
        .map(|(ar, caps)| {
            let status = caps
                .subresources
                .iter()
                .any(|(sub, _)| sub.plural == "status");
            (ar, status)
        })
        .ok_or_else(|| Error::UnknownResource(name.to_string()))
}

fn value_of(obj: &DynamicObject) -> Value {
    serde_json::to_value(obj).unwrap_or_default()
}

fn key_of(obj: &Value) -> Key {
    let text = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let cluster = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(CLUSTER_ANNOTATION))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    (cluster, text("/metadata/namespace"), text("/metadata/name"))
}

fn finalizer(key: &str) -> String {
    format!("workload.kcp.io/syncer-{key}")
}

impl Syncer {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn enqueue(&self, work: Work) {
        let fresh = self
            .pending
            .lock()
            .map(|mut p| p.insert(work.clone()))
            .unwrap_or(true);
        if fresh {
            let _ = self.queue.send(work);
        }
    }

    fn enqueue_after(self: &Arc<Self>, work: Work, delay: Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            this.enqueue(work);
        });
    }

    fn wildcard(&self) -> Result<Client, Error> {
        self.upstream
            .client_at(&format!("{}/clusters/*", self.view))
    }

    /// A client writing into upstream workspace `cluster` through the view.
    fn writer(&self, cluster: &str) -> Result<Client, Error> {
        let mut writers = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = writers.get(cluster) {
            return Ok(c.clone());
        }
        let client = self
            .upstream
            .client_at(&format!("{}/clusters/{cluster}", self.view))?;
        writers.insert(cluster.to_string(), client.clone());
        Ok(client)
    }

    /// Where an upstream namespace's objects go: its own `kcp-<hash>` namespace, or in
    /// namespace mode the one shared namespace.
    fn downstream_namespace(&self, cluster: &str, namespace: &str) -> String {
        match &self.args.downstream_namespace {
            Some(shared) => shared.clone(),
            None => downstream_namespace(&locator(&self.target, cluster, namespace)),
        }
    }

    /// An upstream object's name downstream (translated in namespace mode).
    fn downstream_name(&self, (cluster, namespace, name): &Key) -> String {
        match &self.args.downstream_namespace {
            Some(_) => namespace_mode::translated_name(name, namespace, cluster),
            None => name.clone(),
        }
    }

    /// What of upstream object `up` a reconcile acts on: the object it applies downstream,
    /// whether our finalizer is on it, whether it is being deleted, whether it is placed on
    /// other targets too (status goes into an annotation then), whether it is synced at all.
    fn intent(&self, up: &Value) -> Value {
        let mut down = downstream_object(up, None, &self.target.key);
        let diff = apply_spec_diff(&mut down, up, &self.target.key).is_ok();
        let finalized = up
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| {
                f.iter()
                    .any(|f| f.as_str() == Some(&finalizer(&self.target.key)))
            });
        json!([
            down,
            diff,
            finalized,
            up.pointer("/metadata/deletionTimestamp").is_some(),
            placed_on(up) > 1,
            syncable(up),
        ])
    }

    /// Whether a downstream object of ours has an upstream object in the current view (as
    /// far as the mapping in memory tells without asking downstream).
    fn known_upstream(&self, res: usize, ns: &str, name: &str) -> bool {
        let s = self.state();
        let key = match &self.args.downstream_namespace {
            Some(_) => s.names[res].get(name).cloned(),
            None => s
                .mapped
                .get(ns)
                .map(|(cluster, namespace)| (cluster.clone(), namespace.clone(), name.to_string())),
        };
        key.is_some_and(|k| s.upstream[res].contains_key(&k))
    }

    /// A downstream object of ours (namespace, name) → its upstream key, if known.
    async fn upstream_key_of(
        &self,
        res: usize,
        ns: &str,
        name: &str,
    ) -> Result<Option<Key>, Error> {
        if self.args.downstream_namespace.is_some() {
            return Ok(self.state().names[res].get(name).cloned());
        }
        Ok(self
            .upstream_namespace_of(ns)
            .await?
            .map(|(cluster, namespace)| (cluster, namespace, name.to_string())))
    }

    /// [`WORKERS`] workers share the queue; a key already being reconciled waits its turn,
    /// so one key is never reconciled twice at once.
    async fn work(self: Arc<Self>, rx: mpsc::UnboundedReceiver<Work>) {
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..WORKERS {
            let (this, rx) = (self.clone(), rx.clone());
            workers.spawn(async move {
                loop {
                    let Some(work) = rx.lock().await.recv().await else {
                        return;
                    };
                    this.work_on(work).await;
                }
            });
        }
        while workers.join_next().await.is_some() {}
    }

    async fn work_on(self: &Arc<Self>, work: Work) {
        let claimed = self
            .in_flight
            .lock()
            .map(|mut f| f.insert(work.clone()))
            .unwrap_or(false);
        // Out of the queue either way: a busy key is queued again (not lost as "pending").
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&work);
        }
        if !claimed {
            self.enqueue_after(work, BUSY);
            return;
        }
        let result = self.reconcile(&work).await;
        if let Ok(mut f) = self.in_flight.lock() {
            f.remove(&work);
        }
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(()) => {
                failures.remove(&work);
            }
            Err(e) => {
                let n = failures.entry(work.clone()).or_insert(0);
                *n = n.saturating_add(1);
                let delay = retry_delay(*n);
                drop(failures);
                tracing::debug!(?work, error = %e, ?delay, "retrying");
                self.enqueue_after(work, delay);
            }
        }
    }

    async fn reconcile(self: &Arc<Self>, work: &Work) -> Result<(), Error> {
        match work {
            Work::Object(res, key) => self.reconcile_object(*res, key).await,
            // Downstream events become the upstream object's key, so that the two never run
            // at once for one object.
            Work::Downstream(res, ns, name) => {
                if let Some(key) = self.upstream_key_of(*res, ns, name).await? {
                    self.enqueue(Work::Object(*res, key));
                }
                Ok(())
            }
            Work::Namespace(cluster, namespace) => {
                self.reconcile_namespace(cluster, namespace).await
            }
            Work::Shown(kind, key) => self.reconcile_shown(*kind, key).await,
            Work::DownstreamShown(kind, ns, name) => {
                if let Some((cluster, namespace)) = self.upstream_namespace_of(ns).await? {
                    self.enqueue(Work::Shown(*kind, (cluster, namespace, name.clone())));
                }
                Ok(())
            }
        }
    }

    /// The upstream (cluster, namespace) of one of our downstream namespaces.
    async fn upstream_namespace_of(&self, ns: &str) -> Result<Option<(String, String)>, Error> {
        if let Some(m) = self.state().mapped.get(ns) {
            return Ok(Some(m.clone()));
        }
        let api: Api<DynamicObject> = Api::all_with(
            self.down.clone(),
            &resource("", "v1", "Namespace", "namespaces"),
        );
        let Some(obj) = api.get_opt(ns).await? else {
            return Ok(None);
        };
        let obj = value_of(&obj);
        if !is_ours(&obj, &self.target.key) {
            return Ok(None);
        }
        let up = upstream_of(&obj);
        if let Some(up) = &up {
            self.state().mapped.insert(ns.to_string(), up.clone());
        }
        Ok(up)
    }

    /// Spec down, status up, finalizer on; or the downstream copy away.
    async fn reconcile_object(self: &Arc<Self>, res: usize, key: &Key) -> Result<(), Error> {
        let (cluster, namespace, name) = key;
        let (up, listed) = {
            let s = self.state();
            let up = s.upstream[res]
                .get(key)
                .and_then(|text| serde_json::from_str::<Value>(text).ok());
            (up, s.listed[res])
        };
        let ar = &self.resources[res];
        let ns = self.downstream_namespace(cluster, namespace);
        let down_name = self.downstream_name(key);
        let api: Api<DynamicObject> = Api::namespaced_with(self.down.clone(), &ns, ar);
        let existing = api.get_opt(&down_name).await?.map(|o| value_of(&o));
        let ours = existing
            .as_ref()
            .is_some_and(|e| is_ours(e, &self.target.key));
        match up {
            Some(up) if up.pointer("/metadata/deletionTimestamp").is_none() => {
                if !syncable(&up) {
                    return Ok(());
                }
                let conflict = format!("{cluster}/{namespace}/{}/{name}", ar.plural);
                if decide(
                    existing.as_ref(),
                    &self.target.key,
                    self.args.conflict_policy,
                ) == Decision::Refuse
                {
                    tracing::warn!(object = %conflict, "exists downstream without the syncer's mark; refusing to touch it");
                    // Its removal downstream is no event of ours: look again now and then.
                    self.enqueue_after(Work::Object(res, key.clone()), CONFLICT_RECHECK);
                    return self.set_conflict(&conflict, true).await;
                }
                let mut obj = downstream_object(&up, Some(&ns), &self.target.key);
                apply_spec_diff(&mut obj, &up, &self.target.key).map_err(|reason| {
                    Error::SpecDiff {
                        object: conflict.clone(),
                        reason,
                    }
                })?;
                if self.args.downstream_namespace.is_some() {
                    namespace_mode::translate(&mut obj, cluster, namespace);
                    self.state().names[res].insert(down_name.clone(), key.clone());
                } else {
                    self.ensure_namespace(cluster, namespace).await?;
                }
                let applied = api
                    .patch(
                        &down_name,
                        &PatchParams::apply(FIELD_MANAGER).force(),
                        &Patch::Apply(&obj),
                    )
                    .await?;
                tracing::debug!(?key, "applied downstream");
                if let Some(rv) = applied.metadata.resource_version.clone() {
                    self.state().applied[res].insert((ns.clone(), down_name.clone()), rv);
                }
                let applied = value_of(&applied);
                self.set_conflict(&conflict, false).await?;
                self.ensure_finalizer(res, &up, true).await?;
                if self.has_status[res] {
                    self.report_status(res, key, &up, upstream_generations(&up, applied))
                        .await?;
                }
                self.state().downstream[res].insert((ns, down_name));
                Ok(())
            }
            // Being deleted upstream: the downstream copy goes first, then our finalizer.
            Some(up) => {
                if ours {
                    api.delete(&down_name, &DeleteParams::background()).await?;
                    self.enqueue_after(Work::Object(res, key.clone()), RETRY);
                    return Ok(());
                }
                self.ensure_finalizer(res, &up, false).await
            }
            // Gone from a complete upstream view (deleted, or no longer placed here).
            None if listed && ours => {
                api.delete(&down_name, &DeleteParams::background()).await?;
                let mut s = self.state();
                s.applied[res].remove(&(ns.clone(), down_name.clone()));
                s.downstream[res].remove(&(ns, down_name.clone()));
                s.names[res].remove(&down_name);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Status up: into `.status` when the object is placed here only; into this target's
    /// status annotation when it is placed on several (the server aggregates them).
    async fn report_status(
        &self,
        res: usize,
        (cluster, namespace, name): &Key,
        up: &Value,
        down: Value,
    ) -> Result<(), Error> {
        let writer = Api::<DynamicObject>::namespaced_with(
            self.writer(cluster)?,
            namespace,
            &self.resources[res],
        );
        if placed_on(up) > 1 {
            if let Some(patch) = status_report(up, &down, &self.target.key) {
                writer
                    .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await?;
            }
        } else if let Some(status) = status_update(up, &down) {
            writer
                .patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await?;
        }
        Ok(())
    }

    async fn ensure_finalizer(&self, res: usize, up: &Value, present: bool) -> Result<(), Error> {
        let fin = finalizer(&self.target.key);
        let mut finalizers: Vec<String> = up
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect();
        let has = finalizers.contains(&fin);
        if has == present {
            return Ok(());
        }
        if present {
            finalizers.push(fin);
        } else {
            finalizers.retain(|f| *f != fin);
        }
        let (cluster, namespace, name) = key_of(up);
        let rv = up
            .pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or(Value::Null);
        let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": rv}});
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.writer(&cluster)?, &namespace, &self.resources[res]);
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The downstream namespace of an upstream one, created (marked, with its locator) on
    /// first use.
    async fn ensure_namespace(&self, cluster: &str, namespace: &str) -> Result<String, Error> {
        let ns = self.downstream_namespace(cluster, namespace);
        if self.state().mapped.contains_key(&ns) {
            return Ok(ns);
        }
        let api: Api<DynamicObject> = Api::all_with(
            self.down.clone(),
            &resource("", "v1", "Namespace", "namespaces"),
        );
        let loc = locator(&self.target, cluster, namespace);
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns,
            "labels": {OWNER_LABEL: self.target.key},
            "annotations": {LOCATOR_ANNOTATION: loc.to_string()}}});
        match api.get_opt(&ns).await? {
            Some(existing) if !is_ours(&value_of(&existing), &self.target.key) => {
                return Err(Error::ForeignNamespace(ns));
            }
            Some(_) => {}
            None => {
                let obj: DynamicObject = serde_json::from_value(obj).map_err(Error::Json)?;
                match api.create(&PostParams::default(), &obj).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.state()
            .mapped
            .insert(ns.clone(), (cluster.to_string(), namespace.to_string()));
        Ok(ns)
    }

    /// An upstream namespace placed here gets its downstream twin; one no longer placed
    /// here loses it after the clean delay, once nothing synced is left in it.
    async fn reconcile_namespace(
        self: &Arc<Self>,
        cluster: &str,
        namespace: &str,
    ) -> Result<(), Error> {
        // Namespace mode: one shared namespace, never created or deleted by the agent.
        if self.args.downstream_namespace.is_some() {
            return Ok(());
        }
        let up = (cluster.to_string(), namespace.to_string());
        let (present, listed, since) = {
            let mut s = self.state();
            let present = s.namespaces.contains(&up);
            let since = if present {
                s.namespaces_gone.remove(&up);
                None
            } else {
                Some(
                    *s.namespaces_gone
                        .entry(up.clone())
                        .or_insert_with(Instant::now),
                )
            };
            (present, s.namespaces_listed, since)
        };
        if present {
            self.ensure_namespace(cluster, namespace).await?;
            return Ok(());
        }
        let Some(since) = since.filter(|_| listed) else {
            return Ok(());
        };
        let delay = self.args.downstream_namespace_clean_delay;
        if since.elapsed() < delay {
            self.enqueue_after(Work::Namespace(up.0, up.1), delay - since.elapsed());
            return Ok(());
        }
        let ns = self.downstream_namespace(cluster, namespace);
        let (still_used, all_listed) = {
            let s = self.state();
            let used = s.upstream.iter().any(|objects| {
                objects
                    .keys()
                    .any(|(c, n, _)| c == cluster && n == namespace)
            });
            (used, s.listed.iter().all(|l| *l))
        };
        if still_used {
            return Ok(());
        }
        // "Nothing placed is left in it" is evidence only once every resource was listed.
        if !all_listed {
            self.enqueue_after(Work::Namespace(up.0, up.1), delay);
            return Ok(());
        }
        let api: Api<DynamicObject> = Api::all_with(
            self.down.clone(),
            &resource("", "v1", "Namespace", "namespaces"),
        );
        if let Some(existing) = api.get_opt(&ns).await?
            && is_ours(&value_of(&existing), &self.target.key)
        {
            api.delete(&ns, &DeleteParams::background()).await?;
            self.state().mapped.remove(&ns);
        }
        Ok(())
    }

    /// A downstream object shown upstream (created, its status kept), or its upstream copy
    /// removed once it is gone downstream.
    async fn reconcile_shown(&self, kind: usize, key: &Key) -> Result<(), Error> {
        let (cluster, namespace, name) = key;
        let (g, v, k, p) = SHOWN[kind];
        let ar = resource(g, v, k, p);
        let ns = self.downstream_namespace(cluster, namespace);
        let down: Api<DynamicObject> = Api::namespaced_with(self.down.clone(), &ns, &ar);
        let up: Api<DynamicObject> = Api::namespaced_with(self.writer(cluster)?, namespace, &ar);
        let down_obj = down.get_opt(name).await?.map(|p| value_of(&p));
        let up_obj = up.get_opt(name).await?.map(|p| value_of(&p));
        // Only what this agent shows: never an object placed here (state `Sync`), nor a
        // downstream object that is not the downstream cluster's own making for ours.
        let state = format!("{STATE_LABEL_PREFIX}{}", self.target.key);
        let shown_upstream = |u: &Value| {
            u.pointer("/metadata/labels")
                .and_then(|l| l.get(&state))
                .and_then(Value::as_str)
                == Some("Upsync")
        };
        let down_obj = match down_obj {
            Some(d) if self.shows(k, &ns, &d).await? => Some(d),
            _ => None,
        };
        let up_obj = up_obj.filter(shown_upstream);
        if up_obj.is_none() && up.get_opt(name).await?.is_some() {
            return Ok(());
        }
        match (down_obj, up_obj) {
            (Some(d), None) => {
                let owners = self.upstream_owners(cluster, namespace, &d);
                let obj: DynamicObject =
                    serde_json::from_value(upstream_copy(&d, namespace, owners))
                        .map_err(Error::Json)?;
                let created = value_of(&up.create(&PostParams::default(), &obj).await?);
                if let Some(status) = status_update(&created, &d) {
                    up.patch_status(
                        name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": status})),
                    )
                    .await?;
                }
            }
            (Some(d), Some(u)) => {
                // Scheduled downstream after it was shown: bind the upstream copy too (a
                // pod's node changes only through its binding).
                let node = d
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let shown = u
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if k == "Pod" && !node.is_empty() && shown.is_empty() {
                    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                        "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
                    up.create_subresource::<Value, Value>(
                        "binding",
                        name,
                        &PostParams::default(),
                        &binding,
                    )
                    .await?;
                }
                if let Some(status) = status_update(&u, &d) {
                    up.patch_status(
                        name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": status})),
                    )
                    .await?;
                }
                if k == "Secret" && u.get("data") != d.get("data") {
                    let data = d.get("data").cloned().unwrap_or(Value::Null);
                    up.patch(
                        name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"data": data})),
                    )
                    .await?;
                }
            }
            (None, Some(_)) => {
                match up
                    .delete(name, &DeleteParams::background().grace_period(0))
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            (None, None) => {}
        }
        Ok(())
    }

    async fn watch_upstream(self: Arc<Self>, res: usize) {
        let client = match self.wildcard() {
            Ok(c) => c,
            Err(e) => return tracing::error!(error = %e, "no upstream client"),
        };
        let mut across = self.resources[res].clone();
        if !self.identities[res].is_empty() {
            across.plural = format!("{}:{}", across.plural, self.identities[res]);
        }
        let api: Api<DynamicObject> = Api::all_with(client, &across);
        let mut stream = watcher(api, upstream_watch())
            .backoff(UpstreamBackoff::default())
            .boxed();
        let mut listing: HashSet<Key> = HashSet::new();
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Apply(o) | Event::InitApply(o)) => {
                    let v = value_of(&o);
                    let key = key_of(&v);
                    listing.insert(key.clone());
                    let text: Box<str> = v.to_string().into();
                    let previous = self.state().upstream[res].insert(key.clone(), text);
                    // What was seen before was queued when it came, and is synced or being
                    // retried: a change that does not change what goes down (the echo of
                    // our own finalizer or status write; a relist after upstream
                    // restarted) needs nothing. Downstream drift comes as downstream events.
                    let same = previous
                        .and_then(|p| serde_json::from_str::<Value>(&p).ok())
                        .is_some_and(|p| self.intent(&p) == self.intent(&v));
                    if !same {
                        tracing::debug!(?key, "upstream changed");
                        self.enqueue(Work::Object(res, key));
                    }
                }
                Ok(Event::Delete(o)) => {
                    let key = key_of(&value_of(&o));
                    self.state().upstream[res].remove(&key);
                    self.enqueue(Work::Object(res, key));
                }
                Ok(Event::Init) => listing.clear(),
                Ok(Event::InitDone) => {
                    let (gone, ours) = {
                        let mut s = self.state();
                        let gone: Vec<Key> = s.upstream[res]
                            .keys()
                            .filter(|k| !listing.contains(*k))
                            .cloned()
                            .collect();
                        for k in &gone {
                            s.upstream[res].remove(k);
                        }
                        s.listed[res] = true;
                        (gone, s.downstream[res].iter().cloned().collect::<Vec<_>>())
                    };
                    for k in gone {
                        self.enqueue(Work::Object(res, k));
                    }
                    tracing::debug!(resource = %self.resources[res].plural, objects = listing.len(), "upstream listed");
                    // Downstream copies whose upstream object is missing go now.
                    for (ns, name) in ours {
                        if !self.known_upstream(res, &ns, &name) {
                            self.enqueue(Work::Downstream(res, ns, name));
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, resource = %self.resources[res].plural, "upstream watch (retrying)")
                }
            }
        }
    }

    async fn watch_downstream(self: Arc<Self>, res: usize) {
        let api: Api<DynamicObject> = match &self.args.downstream_namespace {
            Some(ns) => Api::namespaced_with(self.down.clone(), ns, &self.resources[res]),
            None => Api::all_with(self.down.clone(), &self.resources[res]),
        };
        let config =
            watcher::Config::default().labels(&format!("{OWNER_LABEL}={}", self.target.key));
        let mut stream = watcher(api, config).default_backoff().boxed();
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Apply(o) | Event::InitApply(o)) => {
                    let obj = value_of(&o);
                    let (_, ns, name) = key_of(&obj);
                    let mut s = self.state();
                    if let Some(up) = namespace_mode::upstream_key(&obj) {
                        s.names[res].insert(name.clone(), up);
                    }
                    let echo = s.applied[res]
                        .get(&(ns.clone(), name.clone()))
                        .is_some_and(|rv| o.metadata.resource_version.as_ref() == Some(rv));
                    s.downstream[res].insert((ns.clone(), name.clone()));
                    drop(s);
                    if !echo {
                        self.enqueue(Work::Downstream(res, ns, name));
                    }
                }
                // Deleted downstream by someone: put back if it is still placed here.
                Ok(Event::Delete(o)) => {
                    let (_, ns, name) = key_of(&value_of(&o));
                    let mut s = self.state();
                    s.downstream[res].remove(&(ns.clone(), name.clone()));
                    s.applied[res].remove(&(ns.clone(), name.clone()));
                    drop(s);
                    self.enqueue(Work::Downstream(res, ns, name));
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "downstream watch (retrying)"),
            }
        }
    }

    async fn watch_upstream_namespaces(self: Arc<Self>) {
        let client = match self.wildcard() {
            Ok(c) => c,
            Err(e) => return tracing::error!(error = %e, "no upstream client"),
        };
        let api: Api<DynamicObject> =
            Api::all_with(client, &resource("", "v1", "Namespace", "namespaces"));
        let mut stream = watcher(api, upstream_watch())
            .backoff(UpstreamBackoff::default())
            .boxed();
        let mut listing = HashSet::new();
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Apply(o) | Event::InitApply(o)) => {
                    let (cluster, _, name) = key_of(&value_of(&o));
                    listing.insert((cluster.clone(), name.clone()));
                    self.state()
                        .namespaces
                        .insert((cluster.clone(), name.clone()));
                    self.enqueue(Work::Namespace(cluster, name));
                }
                Ok(Event::Delete(o)) => {
                    let (cluster, _, name) = key_of(&value_of(&o));
                    self.state()
                        .namespaces
                        .remove(&(cluster.clone(), name.clone()));
                    self.enqueue(Work::Namespace(cluster, name));
                }
                Ok(Event::Init) => listing.clear(),
                Ok(Event::InitDone) => {
                    let gone: Vec<(String, String)> = {
                        let mut s = self.state();
                        s.namespaces_listed = true;
                        let gone = s
                            .namespaces
                            .iter()
                            .filter(|n| !listing.contains(*n))
                            .cloned()
                            .collect::<Vec<_>>();
                        for n in &gone {
                            s.namespaces.remove(n);
                        }
                        // Our downstream namespaces whose upstream one is not placed here.
                        let mapped: Vec<(String, String)> = s.mapped.values().cloned().collect();
                        gone.into_iter().chain(mapped).collect()
                    };
                    for (cluster, name) in gone {
                        self.enqueue(Work::Namespace(cluster, name));
                    }
                }
                Err(e) => tracing::debug!(error = %e, "upstream namespace watch (retrying)"),
            }
        }
    }

    /// Objects shown upstream: one whose downstream twin is gone is removed.
    async fn watch_upstream_shown(self: Arc<Self>, kind: usize) {
        let client = match self.wildcard() {
            Ok(c) => c,
            Err(e) => return tracing::error!(error = %e, "no upstream client"),
        };
        let (g, v, k, p) = SHOWN[kind];
        let api: Api<DynamicObject> = Api::all_with(client, &resource(g, v, k, p));
        let mut stream = watcher(api, upstream_watch())
            .backoff(UpstreamBackoff::default())
            .applied_objects()
            .boxed();
        while let Some(obj) = stream.next().await {
            if let Ok(obj) = obj {
                self.enqueue(Work::Shown(kind, key_of(&value_of(&obj))));
            }
        }
    }

    /// What the downstream cluster runs in our namespaces.
    async fn watch_downstream_shown(self: Arc<Self>, kind: usize) {
        let (g, v, k, p) = SHOWN[kind];
        let api: Api<DynamicObject> = Api::all_with(self.down.clone(), &resource(g, v, k, p));
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = stream.next().await {
            let obj = match event {
                Ok(Event::Apply(o) | Event::InitApply(o) | Event::Delete(o)) => o,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "downstream watch (retrying)");
                    continue;
                }
            };
            let (_, ns, name) = key_of(&value_of(&obj));
            if ns.starts_with("kcp-") {
                self.enqueue(Work::DownstreamShown(kind, ns, name));
            }
        }
    }

    /// Whether downstream object `d` (of [`SHOWN`] kind `kind`, in our namespace `ns`) is
    /// shown upstream: ReplicaSets and Pods always; a Secret only when a synced object of
    /// ours owns it (never one of ours, never a service-account token).
    async fn shows(&self, kind: &str, ns: &str, d: &Value) -> Result<bool, Error> {
        if kind != "Secret" {
            return Ok(true);
        }
        if is_ours(d, &self.target.key) || !syncable(d) {
            return Ok(false);
        }
        let owners = d
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for owner in owners {
            let (Some(owner_kind), Some(owner_name)) = (
                owner.get("kind").and_then(Value::as_str),
                owner.get("name").and_then(Value::as_str),
            ) else {
                continue;
            };
            let Some(ar) = self.resources.iter().find(|r| r.kind == owner_kind) else {
                continue;
            };
            let api: Api<DynamicObject> = Api::namespaced_with(self.down.clone(), ns, ar);
            if let Some(o) = api.get_opt(owner_name).await?
                && is_ours(&value_of(&o), &self.target.key)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The owner references of an upstream copy: its downstream controller, when that is a
    /// synced Deployment, as the upstream Deployment (so Helm and kubectl find a
    /// Deployment's ReplicaSets upstream).
    fn upstream_owners(&self, cluster: &str, namespace: &str, down: &Value) -> Vec<Value> {
        let Some(deployments) = self.resources.iter().position(|r| r.kind == "Deployment") else {
            return vec![];
        };
        let state = self.state();
        down.pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|o| o.get("kind").and_then(Value::as_str) == Some("Deployment"))
            .filter_map(|o| {
                let owner = o.get("name")?.as_str()?;
                let key = (cluster.to_string(), namespace.to_string(), owner.to_string());
                let up: Value = serde_json::from_str(state.upstream[deployments].get(&key)?).ok()?;
                Some(json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": owner,
                    "uid": up.pointer("/metadata/uid")?, "controller": true, "blockOwnerDeletion": true}))
            })
            .collect()
    }

    /// Every object is reconciled again once per [`RESYNC`], evenly spread: a safety net
    /// (changes and drift arrive through the watches). All at once, a hundred agents'
    /// passes of a thousand objects each would be a GET and an apply downstream per
    /// object every pass, together.
    async fn resync(self: Arc<Self>) {
        loop {
            let keys: Vec<Work> = {
                let s = self.state();
                s.upstream
                    .iter()
                    .enumerate()
                    .flat_map(|(i, m)| m.keys().map(move |k| Work::Object(i, k.clone())))
                    .collect()
            };
            let Ok(n) = u32::try_from(keys.len().max(1)) else {
                tokio::time::sleep(RESYNC).await;
                continue;
            };
            let pause = RESYNC / n;
            if keys.is_empty() {
                tokio::time::sleep(pause).await;
            }
            for k in keys {
                tokio::time::sleep(pause).await;
                self.enqueue(k);
            }
        }
    }

    /// Tells kplex the agent is alive; a re-created target (another uid) refuses the patch.
    async fn heartbeat(self: Arc<Self>) {
        loop {
            let patch = heartbeat_patch(&self.target.uid, &now_rfc3339());
            let result = match serde_json::from_value(patch) {
                Ok(patch) => self
                    .targets
                    .patch_status(
                        &self.target.name,
                        &PatchParams::default(),
                        &Patch::<Value>::Json(patch),
                    )
                    .await
                    .map_err(Error::from),
                Err(e) => Err(Error::Json(e)),
            };
            let result = match result {
                Ok(target) => self.report_conflicts(Some(value_of(&target))).await,
                Err(e) => Err(e),
            };
            match result {
                Err(Error::Api(kube::Error::Api(e))) if e.code == 422 || e.code == 409 => {
                    tracing::error!(error = %e, uid = %self.target.uid, "heartbeat refused: the sync target was re-created (another uid); run `kubectl kplex workload sync` again")
                }
                Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                Ok(()) => {}
            }
            tokio::time::sleep(self.args.heartbeat_interval).await;
        }
    }

    /// `status.syncedResources`: what this agent syncs.
    async fn report_resources(&self) {
        // Namespaces first: they are synced too (cluster-scoped upstream, `kcp-*` downstream).
        let synced = synced_resources(std::iter::once(("", "namespaces", "v1", "")).chain(
            self.resources.iter().zip(&self.identities).map(|(r, id)| {
                (
                    r.group.as_str(),
                    r.plural.as_str(),
                    r.version.as_str(),
                    id.as_str(),
                )
            }),
        ));
        if let Err(e) = self
            .targets
            .patch_status(
                &self.target.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"syncedResources": synced}})),
            )
            .await
        {
            tracing::warn!(error = %e, "reporting synced resources failed");
        }
    }

    /// Records whether `object` is refused; the SyncTarget's `SyncConflicts` condition
    /// follows when the set changes (and at every heartbeat: see [`Self::report_conflicts`]).
    async fn set_conflict(&self, object: &str, conflicting: bool) -> Result<(), Error> {
        let changed = {
            let mut s = self.state();
            if conflicting {
                s.conflicts.insert(object.to_string())
            } else {
                s.conflicts.remove(object)
            }
        };
        if changed {
            self.report_conflicts(None).await?;
        }
        Ok(())
    }

    /// Writes `SyncConflicts` if the SyncTarget (`target`: as just read; None: fetched)
    /// does not say what the agent knows. Level-triggered: a failed write, or a condition
    /// someone else dropped, is repaired at the next heartbeat.
    async fn report_conflicts(&self, target: Option<Value>) -> Result<(), Error> {
        let api = &self.targets;
        let target = match target {
            Some(t) => t,
            None => value_of(&api.get(&self.target.name).await?),
        };
        let refused: Vec<String> = self.state().conflicts.iter().cloned().collect();
        let Some(conditions) = conflict_conditions(&target, &refused, &now_rfc3339()) else {
            return Ok(());
        };
        api.patch_status(
            &self.target.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": conditions}})),
        )
        .await?;
        Ok(())
    }
}

/// The wait before the `failures`-th retry in a row of one key.
fn retry_delay(failures: u32) -> Duration {
    RETRY
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(MAX_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_watches_reconnect_within_a_second() {
        use kube::runtime::utils::Backoff;
        let mut b = UpstreamBackoff::default();
        let waits: Vec<u64> = b.by_ref().take(6).map(|d| d.as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500, 500]);
        b.reset();
        assert_eq!(b.next(), Some(Duration::from_millis(100)));
    }

    #[test]
    fn retries_back_off_to_a_bound() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(2));
        assert_eq!(retry_delay(4), Duration::from_secs(8));
        assert_eq!(retry_delay(6), MAX_RETRY);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY);
    }

    #[test]
    fn observed_generations_are_translated_to_upstream_ones() {
        let up = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 1}});
        let caught_up = json!({"metadata": {"generation": 5}, "status": {"observedGeneration": 5, "replicas": 3}});
        let out = upstream_generations(&up, caught_up);
        assert_eq!(
            out["status"],
            json!({"observedGeneration": 2, "replicas": 3})
        );
        let behind = json!({"metadata": {"generation": 6}, "status": {"observedGeneration": 5}});
        assert_eq!(
            upstream_generations(&up, behind)["status"]["observedGeneration"],
            1
        );
        let none = json!({"metadata": {"generation": 1}, "status": {"replicas": 1}});
        assert!(
            upstream_generations(&up, none)["status"]
                .get("observedGeneration")
                .is_none()
        );
    }
}

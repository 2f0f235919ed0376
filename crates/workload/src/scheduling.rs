//! The scheduling controllers (kcp v0.11's `pkg/reconciler/workload` and
//! `pkg/reconciler/scheduling`), one queue:
//!
//! - a **SyncTarget** gets its key label, the syncer virtual workspace's URL and its health
//!   conditions from the agent's heartbeat (`HeartbeatHealthy=False` once it is older than
//!   [`HEARTBEAT_THRESHOLD`]);
//! - a **Location** counts its instances and the available ones;
//! - a **tenant** workspace (one with Placements): each Placement selects a Location; each
//!   namespace a Placement selects is put on one SyncTarget of it, or on several (its
//!   spread), by labelling the namespace `state.workload.kcp.io/<key>=Sync`; a failed or
//!   drained target's namespaces fail over to another target of the location, keeping the
//!   old copy until the new one is available;
//! - the objects of a scheduled namespace get the same label ([`SYNCED`] kinds and custom
//!   resources, see [`is_synced`]; new ones at admission, existing ones here);
//! - an object on several targets gets one status, aggregated from the per-target reports
//!   of their agents ([`crate::summary`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use kplex_apimachinery::selector::LabelSelector;
use kplex_apimachinery::{ApiError, meta};
use kplex_registry::catalog::{Origin, ResourceDesc};
use kplex_registry::object::CLUSTER_ANNOTATION;
use kplex_registry::registry::{ListOptions, Registry, Scope, WriteOptions};
use kplex_registry::served::Served;
use kplex_runtime::{
    Action, Backoff, CancellationToken, Controller, ControllerSet, EventHandler, Metrics,
    Reconciler, WorkQueue,
};
use serde_json::{Map, Value, json};
use sha2::Digest;

use crate::summary::{STATUS_ANNOTATION_PREFIX, aggregate, is_available, reported};
use crate::{
    FAILOVER_ANNOTATION, KEY_LABEL, MAX_MOVING_ANNOTATION, PLACEMENT_ANNOTATION, SCHEDULING,
    SPREAD_ANNOTATION, STATE_LABEL_PREFIX, UNSCHEDULED_NAMESPACES, VERSION, WORKLOAD, state_label,
    sync_target_key,
};

/// A target whose agent has not reported for this long is unhealthy.
pub const HEARTBEAT_THRESHOLD: Duration = Duration::from_secs(15);
/// A target unhealthy this long has its namespaces failed over (placed on another target
/// of the location too; see [`Scheduling::schedule_namespace`]). The wait keeps a restart of
/// kplex itself, after which every agent reconnects within seconds, from moving anything.
pub const FAILOVER_GRACE: Duration = Duration::from_secs(10);
/// How many namespaces of one Location may be failing over at once, unless the Location's
/// [`MAX_MOVING_ANNOTATION`] says otherwise.
pub const DEFAULT_MAX_MOVING: usize = 100;
/// A tenant whose failover waits (for the cap, or for a replacement to become available)
/// is looked at again this often.
const FAILOVER_POLL: Duration = Duration::from_secs(2);
/// The namespaced kinds a scheduled namespace's objects of are labelled (group, version,
/// plural): what every syncer syncs.
pub const SYNCED: &[(&str, &str, &str)] = &[
    ("", "v1", "configmaps"),
    ("", "v1", "secrets"),
    ("", "v1", "serviceaccounts"),
    ("", "v1", "services"),
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("batch", "v1", "jobs"),
    ("networking.k8s.io", "v1", "ingresses"),
];

/// Whether objects of `desc` are placed with their namespace: the [`SYNCED`] built-ins, and
/// every namespaced custom resource (from a CRD, or bound from an APIExport such as the
/// compute workspace's `kubernetes` export that syncers import downstream CRDs into). As in
/// kcp, labelling is broad and each syncer syncs only the resources it knows.
pub fn is_synced(desc: &ResourceDesc) -> bool {
    SYNCED
        .iter()
        .any(|(g, v, r)| desc.group == *g && desc.version == *v && desc.plural == *r)
        || (desc.namespaced && matches!(desc.origin, Origin::Crd { .. } | Origin::Bound(_)))
}

/// Whether an object of `plural` named `name` may be placed: not the objects every
/// namespace has on every cluster (`NAMESPACE_DEFAULTS`: their downstream twins are the
/// cluster's own), as kcp's syncer never synced them.
pub fn placeable(plural: &str, namespace: &str, name: &str) -> bool {
    !kplex_registry::object::is_namespace_default_resource(plural, namespace, name)
}

const TARGETS: &str = "/registry/workload.kcp.io/synctargets/";
const LOCATIONS: &str = "/registry/scheduling.kcp.io/locations/";
const PLACEMENTS: &str = "/registry/scheduling.kcp.io/placements/";
const NAMESPACES: &str = "/registry/namespaces/";
const BINDINGS: &str = "/registry/apis.kcp.io/apibindings/";
const RETRY: Duration = Duration::from_millis(500);
const WORKERS: usize = 8;

/// What the controllers need of the server.
#[derive(Clone)]
pub struct Workload {
    pub registry: Registry,
    pub served: Arc<Served>,
    /// `https://host:port`, the base of the syncer virtual workspace's URL.
    pub base_url: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Work {
    Target {
        cluster: String,
        name: String,
    },
    LocationsIn {
        cluster: String,
    },
    Tenant {
        cluster: String,
    },
    Namespace {
        cluster: String,
        name: String,
    },
    /// A new object of a synced resource (group, version, plural) in a tenant's namespace:
    /// it gets its namespace's state labels even if it was admitted just before the
    /// namespace had them.
    Object {
        cluster: String,
        namespace: String,
        resource: (String, String, String),
        name: String,
    },
    /// An object placed on several targets (or reporting per-target status): its status
    /// is the aggregate of theirs (see [`crate::summary`]).
    Summary {
        cluster: String,
        namespace: String,
        resource: (String, String, String),
        name: String,
    },
}

pub struct Scheduling {
    w: Workload,
    queue: WorkQueue<Work>,
    /// A target or location change reschedules each of them.
    tenants: Tenants,
    /// What scheduling needs of each SyncTarget, from the watch: placing a thousand
    /// tenants reads it from memory instead of listing every target once per tenant.
    targets: TargetIndex,
    moves: Moves,
}

/// A SyncTarget's facts that scheduling decides on.
#[derive(Clone, Debug, PartialEq)]
struct TargetFacts {
    key: String,
    labels: Map<String, Value>,
    ready: bool,
    /// When it stopped being Ready (its condition's transition), if it is not.
    down_since: Option<i64>,
    unschedulable: bool,
    /// `spec.evictAfter`, seconds since the epoch.
    evict_after: Option<i64>,
    /// What its agent syncs (`status.syncedResources` not refused): `resource.group`.
    apis: BTreeSet<String>,
}

impl TargetFacts {
    fn of(cluster: &str, target: &Value) -> Self {
        Self {
            key: sync_target_key(cluster, meta::name(target).unwrap_or_default()),
            labels: meta::labels(target),
            ready: condition_true(target, "Ready"),
            down_since: (!condition_true(target, "Ready"))
                .then(|| condition_since(target, "Ready"))
                .flatten(),
            unschedulable: target
                .pointer("/spec/unschedulable")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            evict_after: target
                .pointer("/spec/evictAfter")
                .and_then(Value::as_str)
                .and_then(parse_time),
            apis: target
                .pointer("/status/syncedResources")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|r| {
                    r.get("state")
                        .and_then(Value::as_str)
                        .is_none_or(|s| s == "Accepted")
                })
                .filter_map(api_name)
                .collect(),
        }
    }

    fn target(&self, now: i64) -> Target {
        Target {
            key: self.key.clone(),
            labels: self.labels.clone(),
            schedulable: self.ready && !self.unschedulable && self.evict_after.is_none(),
            evicting: self.evict_after.is_some_and(|at| at <= now),
            failed: self
                .down_since
                .is_some_and(|t| now - t >= FAILOVER_GRACE.as_secs() as i64),
            apis: self.apis.clone(),
        }
    }
}

/// `resource.group` of a `{group, resource}` entry (syncedResources, boundResources).
fn api_name(r: &Value) -> Option<String> {
    let resource = r.get("resource")?.as_str()?;
    let group = r.get("group").and_then(Value::as_str).unwrap_or("");
    Some(format!("{resource}.{group}"))
}

/// Per logical cluster, its SyncTargets' facts by name.
#[derive(Default)]
struct TargetIndex(Mutex<HashMap<String, BTreeMap<String, TargetFacts>>>);

impl TargetIndex {
    /// Records a target; whether scheduling's view of it changed.
    fn update(&self, cluster: &str, name: &str, facts: TargetFacts) -> bool {
        let Ok(mut index) = self.0.lock() else {
            return true;
        };
        let targets = index.entry(cluster.to_string()).or_default();
        targets.insert(name.to_string(), facts.clone()) != Some(facts)
    }

    fn remove(&self, cluster: &str, name: &str) {
        if let Ok(mut index) = self.0.lock()
            && let Some(targets) = index.get_mut(cluster)
        {
            targets.remove(name);
        }
    }

    fn in_cluster(&self, cluster: &str) -> Vec<Target> {
        let now = now_secs();
        self.0
            .lock()
            .ok()
            .and_then(|index| {
                index
                    .get(cluster)
                    .map(|t| t.values().map(|f| f.target(now)).collect())
            })
            .unwrap_or_default()
    }
}

/// The namespaces failing over, per location (`<path>:<name>`): the cap's count. Kept by
/// the leader in memory; a new leader counts them again as it reschedules.
#[derive(Default)]
struct Moves(Mutex<HashMap<String, HashSet<String>>>);

impl Moves {
    /// Counts `namespace` as moving off `location` if there is room (or it already is).
    fn start(&self, location: &str, namespace: &str, max: usize) -> bool {
        let Ok(mut moves) = self.0.lock() else {
            return false;
        };
        let set = moves.entry(location.to_string()).or_default();
        set.contains(namespace) || (set.len() < max && set.insert(namespace.to_string()))
    }

    fn finish(&self, namespace: &str) {
        if let Ok(mut moves) = self.0.lock() {
            for set in moves.values_mut() {
                set.remove(namespace);
            }
        }
    }
}

/// Logical clusters with Placements, derived from the watch (every replica keeps it): only
/// their namespaces concern scheduling, and only their writes need state labels.
#[derive(Clone, Default)]
pub struct Tenants(Arc<Mutex<HashSet<String>>>);

impl Tenants {
    pub fn contains(&self, cluster: &str) -> bool {
        self.0.lock().is_ok_and(|t| t.contains(cluster))
    }

    fn insert(&self, cluster: &str) {
        if let Ok(mut t) = self.0.lock() {
            t.insert(cluster.to_string());
        }
    }

    fn remove(&self, cluster: &str) {
        if let Ok(mut t) = self.0.lock() {
            t.remove(cluster);
        }
    }

    fn all(&self) -> Vec<String> {
        self.0
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl Scheduling {
    pub fn new(w: Workload, tenants: Tenants) -> Self {
        Self {
            w,
            queue: WorkQueue::new(),
            tenants,
            targets: TargetIndex::default(),
            moves: Moves::default(),
        }
    }

    fn is_tenant(&self, cluster: &str) -> bool {
        self.tenants.contains(cluster)
    }

    /// Every tenant reschedules: a target or location changed under them.
    fn reschedule_all(&self) {
        for cluster in self.tenants.all() {
            self.queue.add(Work::Tenant { cluster });
        }
    }
}

impl ControllerSet for Scheduling {
    /// Placement writes labels and statuses only: one replica does it.
    fn leader_only(&self) -> bool {
        true
    }

    fn run(self: Arc<Self>, metrics: &Metrics, cancel: &CancellationToken) {
        let controller = Controller::new("workload-scheduling", self.clone())
            .with_queue(self.queue.clone())
            .workers(WORKERS)
            .backoff(Backoff::around(RETRY))
            .metrics(metrics);
        tokio::spawn(controller.run(cancel.clone()));
    }
}

fn cluster_of(obj: &Value) -> String {
    meta::annotation(obj, CLUSTER_ANNOTATION)
        .unwrap_or_default()
        .to_string()
}

/// The kinds of [`SYNCED`], by kind name (as objects carry it).
const SYNCED_KINDS: &[&str] = &[
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Service",
    "Deployment",
    "StatefulSet",
    "Job",
    "Ingress",
];

fn synced_kind(kind: &str) -> Option<usize> {
    SYNCED_KINDS.iter().position(|k| *k == kind)
}

/// The storage prefixes of [`SYNCED`]'s resources.
fn synced_prefixes() -> &'static [String] {
    static PREFIXES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    PREFIXES.get_or_init(|| {
        SYNCED
            .iter()
            .map(|(g, _, r)| {
                if g.is_empty() {
                    format!("/registry/{r}/")
                } else {
                    format!("/registry/{g}/{r}/")
                }
            })
            .collect()
    })
}

/// The logical cluster in a key `<prefix><cluster>/…`.
fn key_cluster<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    key.strip_prefix(prefix)?.split('/').next()
}

/// The logical cluster of a custom resource's key: `/registry/<group>/<plural>/<cluster>/…`
/// from a CRD, `/registry/<group>/<plural>/<identity>/<cluster>/…` when bound. Custom
/// groups have a dot and are not Kubernetes' or kcp's own.
fn custom_key_cluster(key: &str) -> Option<&str> {
    let mut parts = key.strip_prefix("/registry/")?.split('/');
    let group = parts.next()?;
    let builtin = group.ends_with("k8s.io") || group.ends_with("kcp.io");
    if !group.contains('.') || builtin {
        return None;
    }
    let _plural = parts.next()?;
    let next = parts.next()?;
    let identity = next.len() == 64 && next.bytes().all(|b| b.is_ascii_hexdigit());
    if identity { parts.next() } else { Some(next) }
}

#[async_trait]
impl EventHandler for Scheduling {
    fn start_prefixes(&self) -> Vec<String> {
        vec![TARGETS.into(), LOCATIONS.into(), PLACEMENTS.into()]
    }

    fn wants(&self, key: &str, _value: &[u8]) -> bool {
        key.starts_with(TARGETS)
            || key.starts_with(LOCATIONS)
            || key.starts_with(PLACEMENTS)
            || key_cluster(key, NAMESPACES).is_some_and(|c| self.is_tenant(c))
            || key_cluster(key, BINDINGS).is_some_and(|c| self.is_tenant(c))
            || synced_prefixes()
                .iter()
                .any(|p| key_cluster(key, p).is_some_and(|c| self.is_tenant(c)))
            || custom_key_cluster(key).is_some_and(|c| self.is_tenant(c))
    }

    fn changed(&self, obj: &Value, created: bool) {
        let cluster = cluster_of(obj);
        let name = meta::name(obj).unwrap_or_default().to_string();
        match obj.get("kind").and_then(Value::as_str) {
            Some("SyncTarget") => {
                // Scheduling decides on the index: once it changes, decide again.
                if self
                    .targets
                    .update(&cluster, &name, TargetFacts::of(&cluster, obj))
                {
                    self.queue.add(Work::LocationsIn {
                        cluster: cluster.clone(),
                    });
                    self.reschedule_all();
                }
                self.queue.add(Work::Target { cluster, name });
            }
            Some("Location") => {
                self.queue.add(Work::LocationsIn { cluster });
                self.reschedule_all();
            }
            Some("Placement") => {
                self.tenants.insert(&cluster);
                self.queue.add(Work::Tenant { cluster });
            }
            // What a tenant binds decides which targets can take it.
            Some("APIBinding") => self.queue.add(Work::Tenant { cluster }),
            Some("Namespace") => {
                self.queue.add(Work::Tenant {
                    cluster: cluster.clone(),
                });
                self.queue.add(Work::Namespace { cluster, name });
            }
            Some(kind) => {
                let summarized = needs_summary(obj);
                if !created && !summarized {
                    return;
                }
                let (Some(namespace), Some(resource)) = (
                    meta::namespace(obj),
                    self.synced_resource(&cluster, obj, kind),
                ) else {
                    return;
                };
                let namespace = namespace.to_string();
                if summarized {
                    self.queue.add(Work::Summary {
                        cluster: cluster.clone(),
                        namespace: namespace.clone(),
                        resource: resource.clone(),
                        name: name.clone(),
                    });
                }
                if created {
                    self.queue.add(Work::Object {
                        namespace,
                        cluster,
                        resource,
                        name,
                    });
                }
            }
            None => {}
        }
    }

    fn deleted(&self, old: &Value) {
        let cluster = cluster_of(old);
        match old.get("kind").and_then(Value::as_str) {
            Some("SyncTarget" | "Location") => {
                if old.get("kind").and_then(Value::as_str) == Some("SyncTarget") {
                    self.targets
                        .remove(&cluster, meta::name(old).unwrap_or_default());
                }
                self.queue.add(Work::LocationsIn { cluster });
                self.reschedule_all();
            }
            Some("Placement" | "APIBinding") => self.queue.add(Work::Tenant { cluster }),
            _ => {}
        }
    }
}

#[async_trait]
impl Reconciler for Scheduling {
    type Key = Work;
    type Error = ApiError;

    async fn reconcile(&self, work: &Work) -> Result<Action, ApiError> {
        match work {
            Work::Target { cluster, name } => {
                let (after, health_changed) = self.reconcile_target(cluster, name).await?;
                if health_changed {
                    self.queue.add(Work::LocationsIn {
                        cluster: cluster.clone(),
                    });
                    self.reschedule_all();
                }
                Ok(after.map_or(Action::Done, Action::RequeueAfter))
            }
            Work::LocationsIn { cluster } => {
                self.reconcile_locations(cluster).await?;
                Ok(Action::Done)
            }
            Work::Tenant { cluster } => Ok(self
                .reconcile_tenant(cluster)
                .await?
                .map_or(Action::Done, Action::RequeueAfter)),
            Work::Namespace { cluster, name } => {
                self.label_namespace_objects(cluster, name).await?;
                Ok(Action::Done)
            }
            Work::Object {
                cluster,
                namespace,
                resource,
                name,
            } => {
                let (g, v, r) = resource;
                self.label_object(cluster, namespace, (g, v, r), name)
                    .await?;
                Ok(Action::Done)
            }
            Work::Summary {
                cluster,
                namespace,
                resource,
                name,
            } => {
                let (g, v, r) = resource;
                self.summarize(cluster, namespace, (g, v, r), name).await?;
                Ok(Action::Done)
            }
        }
    }
}

/// A SyncTarget as scheduling sees it.
#[derive(Clone, Debug)]
struct Target {
    key: String,
    labels: Map<String, Value>,
    /// Ready and not cordoned: new namespaces may go there.
    schedulable: bool,
    /// Drained (`evictAfter` has passed): everything moves off.
    evicting: bool,
    /// Not Ready for [`FAILOVER_GRACE`]: its namespaces fail over.
    failed: bool,
    apis: BTreeSet<String>,
}

impl Target {
    /// Whether the namespaces on it stay there.
    fn keeps(&self) -> bool {
        !self.evicting && !self.failed
    }
}

impl Scheduling {
    fn scope(&self, cluster: Option<&str>, gvr: (&str, &str, &str)) -> Option<Scope> {
        let desc = self.w.served.lookup(cluster, gvr.0, gvr.1, gvr.2)?;
        Some(Scope {
            cluster: cluster.map(String::from),
            desc,
            namespace: None,
        })
    }

    /// Changes an object's metadata as the server (compare-and-swap, retried on races).
    async fn edit(
        &self,
        scope: &Scope,
        name: &str,
        change: impl Fn(&mut Value),
    ) -> Result<(), ApiError> {
        let opts = WriteOptions {
            system: true,
            ..Default::default()
        };
        self.w
            .registry
            .update_with(scope, name, &opts, |cur, _| {
                let mut next = cur.clone();
                change(&mut next);
                Ok(next)
            })
            .await
            .map(drop)
    }

    async fn list(&self, scope: &Scope) -> Result<Vec<Value>, ApiError> {
        let list = self.w.registry.list(scope, &ListOptions::default()).await?;
        list.items
            .iter()
            .map(|i| i.decode_as(&scope.desc))
            .collect()
    }

    async fn list_kind(
        &self,
        cluster: &str,
        gvr: (&str, &str, &str),
    ) -> Result<Vec<Value>, ApiError> {
        match self.scope(Some(cluster), gvr) {
            Some(scope) => self.list(&scope).await,
            None => Ok(vec![]),
        }
    }

    /// Key label, syncer URL and health; returns when to look again (the heartbeat's
    /// expiry) and whether the target's readiness changed.
    async fn reconcile_target(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<(Option<Duration>, bool), ApiError> {
        let Some(scope) = self.scope(Some(cluster), (WORKLOAD, VERSION, "synctargets")) else {
            return Ok((None, false));
        };
        let target = match self.w.registry.get(&scope, name).await {
            Ok(stored) => stored.decode_as(&scope.desc)?,
            Err(e) if e.code == 404 => return Ok((None, false)),
            Err(e) => return Err(e),
        };
        let key = sync_target_key(cluster, name);
        if meta::labels(&target).get(KEY_LABEL).and_then(Value::as_str) != Some(key.as_str()) {
            self.edit(&scope, name, |obj| {
                let mut labels = meta::labels(obj);
                labels.insert(KEY_LABEL.into(), json!(key));
                meta::set_labels(obj, labels);
            })
            .await?;
            // The write comes back as an event: the rest is done then.
            return Ok((None, false));
        }
        let uid = meta::uid(&target).unwrap_or_default();
        let url = |vw: &str| format!("{}/services/{vw}/{cluster}/{name}/{uid}", self.w.base_url);
        let last = target
            .pointer("/status/lastSyncerHeartbeatTime")
            .and_then(Value::as_str)
            .and_then(parse_time);
        let now = now_secs();
        let health = heartbeat_health(last, now);
        let was_ready = condition_true(&target, "Ready");
        let mut status = target.get("status").cloned().unwrap_or_else(|| json!({}));
        status["virtualWorkspaces"] =
            json!([{"syncerURL": url("syncer"), "upsyncerURL": url("upsyncer")}]);
        // The agent's own conditions (e.g. `SyncConflicts`) stay; the server owns these three.
        let mut conditions = health_conditions(&target, &health);
        let owned = ["Ready", "HeartbeatHealthy", "SyncerReady"];
        conditions.extend(
            target
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| {
                    c.get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| !owned.contains(&t))
                })
                .cloned(),
        );
        status["conditions"] = Value::Array(conditions);
        self.w.registry.set_status(&scope, &target, status).await?;
        let grace = FAILOVER_GRACE.as_secs() as i64;
        let down_since = condition_since(&target, "Ready").filter(|_| !was_ready);
        let (after, failover_due) = match (health.healthy, last, down_since) {
            (true, Some(last), _) => {
                let left = (last + HEARTBEAT_THRESHOLD.as_secs() as i64 - now).max(0) as u64;
                (Some(Duration::from_secs(left + 1)), false)
            }
            // Unhealthy: its namespaces fail over once the grace has passed.
            (false, _, Some(since)) if now < since + grace => (
                Some(Duration::from_secs((since + grace - now) as u64 + 1)),
                false,
            ),
            // Just past the grace (this is the requeue above): reschedule every tenant
            // once; later events of a dead target reschedule nothing.
            (false, _, Some(since)) => (None, now < since + grace + 5),
            _ => (None, false),
        };
        Ok((after, was_ready != health.healthy || failover_due))
    }

    async fn reconcile_locations(&self, cluster: &str) -> Result<(), ApiError> {
        let Some(scope) = self.scope(Some(cluster), (SCHEDULING, VERSION, "locations")) else {
            return Ok(());
        };
        let targets = self.targets.in_cluster(cluster);
        for location in self.list(&scope).await? {
            let members = members(&location, &targets);
            let mut status = location.get("status").cloned().unwrap_or_else(|| json!({}));
            status["instances"] = json!(members.len());
            status["availableInstances"] = json!(members.iter().filter(|t| t.schedulable).count());
            self.w
                .registry
                .set_status(&scope, &location, status)
                .await?;
        }
        Ok(())
    }

    /// Placements choose locations; namespaces are put on targets.
    /// Returns when to look again: while a namespace fails over.
    async fn reconcile_tenant(&self, cluster: &str) -> Result<Option<Duration>, ApiError> {
        let Some(scope) = self.scope(Some(cluster), (SCHEDULING, VERSION, "placements")) else {
            return Ok(None);
        };
        let mut placements = self.list(&scope).await?;
        if placements.is_empty() {
            self.tenants.remove(cluster);
        }
        placements.sort_by(|a, b| meta::name(a).cmp(&meta::name(b)));
        let mut chosen = Vec::new();
        for placement in &placements {
            chosen.push(self.choose_location(cluster, placement).await?);
        }
        let namespaces = self.list_kind(cluster, ("", "v1", "namespaces")).await?;
        let mut bound: BTreeSet<usize> = BTreeSet::new();
        let mut waiting = false;
        for ns in &namespaces {
            let scheduled = self
                .schedule_namespace(cluster, ns, &placements, &chosen)
                .await?;
            bound.extend(scheduled.placed_by);
            waiting |= scheduled.waiting;
        }
        for (i, (placement, choice)) in placements.iter().zip(&chosen).enumerate() {
            let status = placement_status(placement, choice, bound.contains(&i));
            self.w
                .registry
                .set_status(&scope, placement, status)
                .await?;
        }
        Ok(waiting.then_some(FAILOVER_POLL))
    }

    /// The Location a Placement uses (kept while it still matches) and its targets.
    async fn choose_location(&self, cluster: &str, placement: &Value) -> Result<Choice, ApiError> {
        let path = placement
            .pointer("/spec/locationWorkspace")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty());
        let location_cluster = match path {
            None => cluster.to_string(),
            Some(p) => match self.w.served.resolve(p) {
                Some(c) => c,
                None => {
                    return Ok(Choice::failed(
                        "LocationNotFound",
                        format!("workspace {p} not found"),
                    ));
                }
            },
        };
        let locations = self
            .list_kind(&location_cluster, (SCHEDULING, VERSION, "locations"))
            .await?;
        if locations.is_empty() {
            return Ok(Choice::failed(
                "LocationNotFound",
                format!("no locations in workspace {}", path.unwrap_or(cluster)),
            ));
        }
        let selectors: Vec<LabelSelector> = placement
            .pointer("/spec/locationSelectors")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .filter_map(|s| LabelSelector::from_json(s).ok())
                    .collect()
            })
            .unwrap_or_default();
        let mut matching: Vec<&Value> = locations
            .iter()
            .filter(|l| {
                selectors.is_empty() || selectors.iter().any(|s| s.matches(&meta::labels(l)))
            })
            .collect();
        matching.sort_by(|a, b| meta::name(a).cmp(&meta::name(b)));
        let current = placement
            .pointer("/status/selectedLocation/locationName")
            .and_then(Value::as_str);
        let Some(location) = matching
            .iter()
            .find(|l| meta::name(l) == current)
            .or_else(|| matching.first())
        else {
            return Ok(Choice::failed(
                "LocationNoMatch",
                "no location matches the placement's selectors".into(),
            ));
        };
        // kcp's API compatibility: a tenant that binds resources from the location's
        // workspace (a downstream CRD the agents import, say) gets new namespaces only on
        // targets whose agents sync them all; what is placed stays.
        let needs = self.bound_apis(cluster, &location_cluster).await?;
        let mut targets = members(location, &self.targets.in_cluster(&location_cluster));
        for t in &mut targets {
            t.schedulable &= needs.is_subset(&t.apis);
        }
        Ok(Choice {
            location: Some((
                path.map(String::from)
                    .or_else(|| self.w.served.path_of(&location_cluster))
                    .unwrap_or(location_cluster.clone()),
                meta::name(location).unwrap_or_default().to_string(),
            )),
            targets,
            needs,
            max_moving: meta::annotation(location, MAX_MOVING_ANNOTATION)
                .and_then(|a| a.parse().ok())
                .unwrap_or(DEFAULT_MAX_MOVING),
            failure: None,
        })
    }

    /// The resources tenant `cluster` binds from APIExports in workspace `compute`
    /// (`resource.group`).
    async fn bound_apis(&self, cluster: &str, compute: &str) -> Result<BTreeSet<String>, ApiError> {
        let bindings = self
            .list_kind(cluster, ("apis.kcp.io", "v1alpha1", "apibindings"))
            .await?;
        Ok(bindings
            .iter()
            .filter(|b| {
                b.pointer("/status/apiExportClusterName")
                    .and_then(Value::as_str)
                    == Some(compute)
            })
            .filter_map(|b| {
                b.pointer("/status/boundResources")
                    .and_then(Value::as_array)
            })
            .flatten()
            .filter_map(api_name)
            .collect())
    }

    /// Puts `ns` on the targets of every placement that selects it (each placement adds
    /// as many of its location's targets as its spread asks for).
    ///
    /// **Failover**: a target that failed (unhealthy for [`FAILOVER_GRACE`]) or is drained
    /// is replaced by another target of the same location, but keeps its `Sync` label —
    /// its copy is not deleted — until every Deployment and StatefulSet of the namespace
    /// is available on the replacements ([`FAILOVER_ANNOTATION`] records it meanwhile);
    /// then the label goes, and the old target's agent, if it ever comes back, deletes
    /// its copy. With no new target to move to, nothing moves. At most the location's cap
    /// of namespaces fail over at once.
    async fn schedule_namespace(
        &self,
        cluster: &str,
        ns: &Value,
        placements: &[Value],
        chosen: &[Choice],
    ) -> Result<Scheduled, ApiError> {
        let name = meta::name(ns).unwrap_or_default();
        if UNSCHEDULED_NAMESPACES.contains(&name) {
            return Ok(Scheduled::default());
        }
        let labels = meta::labels(ns);
        let current: Vec<String> = synced_keys(&labels);
        let mut desired: BTreeSet<String> = BTreeSet::new();
        let mut out = Scheduled::default();
        // Targets the namespace is leaving (failed or drained) and the location they are in.
        let mut failing: BTreeMap<String, (String, usize)> = BTreeMap::new();
        let seed = format!("{cluster}/{name}");
        let was_leaving: BTreeSet<String> = meta::annotation(ns, FAILOVER_ANNOTATION)
            .map(|a| {
                a.split(',')
                    .filter(|k| !k.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        // A move once begun completes, even if the old target comes back meanwhile.
        let staying: Vec<String> = current
            .iter()
            .filter(|k| !was_leaving.contains(*k))
            .cloned()
            .collect();
        for (i, (placement, choice)) in placements.iter().zip(chosen).enumerate() {
            let Some((path, location)) = &choice.location else {
                continue;
            };
            if !selects_namespace(placement, &labels) {
                continue;
            }
            for t in &choice.targets {
                if current.contains(&t.key) && (!t.keeps() || was_leaving.contains(&t.key)) {
                    failing.insert(
                        t.key.clone(),
                        (format!("{path}:{location}"), choice.max_moving),
                    );
                }
            }
            let keys = pick_targets(&choice.targets, &staying, &seed, Spread::of(placement));
            if !keys.is_empty() {
                out.placed_by.push(i);
            }
            desired.extend(keys);
        }
        failing.retain(|k, _| !desired.contains(k));
        // A failed target with nothing new to replace it (every other target of the
        // location is in use already, or none is Ready) stays: there is nowhere to move to.
        if desired.iter().all(|k| current.contains(k)) {
            failing.retain(|k, _| {
                let stays = !was_leaving.contains(k);
                if stays {
                    desired.insert(k.clone());
                }
                !stays
            });
        }
        let moving = format!("{cluster}/{name}");
        // A new failover waits for room under its location's cap.
        for (location, max) in failing.values() {
            if !self.moves.start(location, &moving, *max) {
                out.waiting = true;
                return Ok(out);
            }
        }
        let replaced = failing.is_empty()
            || (!desired.is_empty() && self.available_on(cluster, name, &desired).await?);
        let leaving: BTreeSet<String> = if replaced {
            BTreeSet::new()
        } else {
            out.waiting = true;
            failing.keys().cloned().collect()
        };
        if leaving.is_empty() {
            self.moves.finish(&moving);
        }
        let leaving_text = leaving.iter().cloned().collect::<Vec<_>>().join(",");
        let placement_names: Vec<&str> = out
            .placed_by
            .iter()
            .filter_map(|i| meta::name(&placements[*i]))
            .collect();
        let placement_name = (!placement_names.is_empty()).then(|| placement_names.join(","));
        let mut next_labels = labels.clone();
        next_labels
            .retain(|k, v| !(k.starts_with(STATE_LABEL_PREFIX) && v.as_str() == Some("Sync")));
        for key in desired.iter().chain(&leaving) {
            next_labels.insert(state_label(key), json!("Sync"));
        }
        let annotation = meta::annotation(ns, PLACEMENT_ANNOTATION).map(String::from);
        let changed =
            next_labels != labels || annotation != placement_name || was_leaving != leaving;
        if changed {
            let scope = self
                .scope(Some(cluster), ("", "v1", "namespaces"))
                .ok_or_else(|| ApiError::not_found("", "namespaces", name))?;
            self.edit(&scope, name, |obj| {
                meta::set_labels(obj, next_labels.clone());
                let mut annotations = meta::annotations(obj);
                match &placement_name {
                    Some(p) => annotations.insert(PLACEMENT_ANNOTATION.into(), json!(p)),
                    None => annotations.remove(PLACEMENT_ANNOTATION),
                };
                if leaving.is_empty() {
                    annotations.remove(FAILOVER_ANNOTATION);
                } else {
                    annotations.insert(FAILOVER_ANNOTATION.into(), json!(leaving_text));
                }
                meta::set_annotations(obj, annotations);
            })
            .await?;
        }
        Ok(out)
    }

    /// Whether every Deployment and StatefulSet of namespace `ns` is available on each of
    /// `keys` (from the per-target status reports: during a failover the objects are on
    /// several targets).
    async fn available_on(
        &self,
        cluster: &str,
        ns: &str,
        keys: &BTreeSet<String>,
    ) -> Result<bool, ApiError> {
        for gvr in [
            ("apps", "v1", "deployments"),
            ("apps", "v1", "statefulsets"),
        ] {
            let Some(mut scope) = self.scope(Some(cluster), gvr) else {
                continue;
            };
            scope.namespace = Some(ns.to_string());
            let keys: Vec<String> = keys.iter().cloned().collect();
            for obj in self.list(&scope).await? {
                let reports = reported(&meta::annotations(&obj), &keys);
                if !reports
                    .iter()
                    .all(|(_, s)| s.as_ref().is_some_and(|s| is_available(&obj, s)))
                {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The (group, version, plural) of a synced object of `kind`, if its resource is synced.
    fn synced_resource(
        &self,
        cluster: &str,
        obj: &Value,
        kind: &str,
    ) -> Option<(String, String, String)> {
        if let Some(k) = synced_kind(kind) {
            let (g, v, r) = SYNCED[k];
            return Some((g.into(), v.into(), r.into()));
        }
        let api_version = obj.get("apiVersion").and_then(Value::as_str)?;
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.w
            .served
            .resources(Some(cluster))
            .into_iter()
            .find(|d| d.kind == kind && d.group == group && d.version == version && is_synced(d))
            .map(|d| (d.group.clone(), d.version.clone(), d.plural.clone()))
    }

    /// Gives one object its namespace's state labels (if it lacks them).
    async fn label_object(
        &self,
        cluster: &str,
        ns: &str,
        gvr: (&str, &str, &str),
        name: &str,
    ) -> Result<(), ApiError> {
        let (Some(ns_scope), Some(mut scope)) = (
            self.scope(Some(cluster), ("", "v1", "namespaces")),
            self.scope(Some(cluster), gvr),
        ) else {
            return Ok(());
        };
        scope.namespace = Some(ns.to_string());
        let (namespace, obj) = match (
            self.w.registry.get_parsed(&ns_scope, ns).await,
            self.w.registry.get_parsed(&scope, name).await,
        ) {
            (Ok(n), Ok(o)) => (n, o),
            (Err(e), _) | (_, Err(e)) if e.code == 404 => return Ok(()),
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        let wanted = sync_labels(&meta::labels(&namespace));
        if !lacks_sync_labels(&meta::labels(&obj), &wanted) || !placeable(gvr.2, ns, name) {
            return Ok(());
        }
        let result = self
            .edit(&scope, name, |o| {
                let mut labels = meta::labels(o);
                apply_sync_labels(&mut labels, &wanted);
                meta::set_labels(o, labels);
            })
            .await;
        match result {
            Err(e) if e.code != 404 => Err(e),
            _ => Ok(()),
        }
    }

    /// The status of an object placed on several targets: the aggregate of the statuses
    /// their agents report in annotations; annotations of targets it left are dropped
    /// (all of them once one target is left: its agent writes `.status` itself).
    async fn summarize(
        &self,
        cluster: &str,
        ns: &str,
        gvr: (&str, &str, &str),
        name: &str,
    ) -> Result<(), ApiError> {
        let Some(mut scope) = self.scope(Some(cluster), gvr) else {
            return Ok(());
        };
        scope.namespace = Some(ns.to_string());
        let obj = match self.w.registry.get_parsed(&scope, name).await {
            Ok(o) => o,
            Err(e) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e),
        };
        let keys = synced_keys(&meta::labels(&obj));
        if stale_reports(&meta::annotations(&obj), &keys) {
            let result = self
                .edit(&scope, name, |o| {
                    let keys = synced_keys(&meta::labels(o));
                    let mut annotations = meta::annotations(o);
                    annotations.retain(|k, _| !is_stale_report(k, &keys));
                    meta::set_annotations(o, annotations);
                })
                .await;
            return match result {
                Err(e) if e.code != 404 => Err(e),
                // The edit is an event: the summary follows from it.
                _ => Ok(()),
            };
        }
        if keys.len() < 2 || !scope.desc.status {
            return Ok(());
        }
        let kind = scope.desc.kind.clone();
        let opts = WriteOptions {
            subresource: Some("status".into()),
            system: true,
            ..Default::default()
        };
        let wanted = summary_of(&kind, &obj);
        if obj.get("status") == Some(&wanted) {
            return Ok(());
        }
        let result = self
            .w
            .registry
            .update_with(&scope, name, &opts, |cur, _| {
                let mut next = cur.clone();
                next["status"] = summary_of(&kind, cur);
                Ok(next)
            })
            .await;
        match result {
            Err(e) if e.code != 404 => Err(e),
            _ => Ok(()),
        }
    }

    /// Gives the synced objects of namespace `ns` its state labels.
    async fn label_namespace_objects(&self, cluster: &str, ns: &str) -> Result<(), ApiError> {
        let Some(ns_scope) = self.scope(Some(cluster), ("", "v1", "namespaces")) else {
            return Ok(());
        };
        let namespace = match self.w.registry.get(&ns_scope, ns).await {
            Ok(stored) => stored.decode()?,
            Err(e) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e),
        };
        let wanted = sync_labels(&meta::labels(&namespace));
        let synced = self.w.served.resources(Some(cluster));
        for desc in synced.into_iter().filter(|d| is_synced(d)) {
            let scope = Scope {
                cluster: Some(cluster.to_string()),
                namespace: Some(ns.to_string()),
                desc,
            };
            for obj in self.list(&scope).await? {
                let labels = meta::labels(&obj);
                if !lacks_sync_labels(&labels, &wanted)
                    || !placeable(&scope.desc.plural, ns, meta::name(&obj).unwrap_or_default())
                {
                    continue;
                }
                let name = meta::name(&obj).unwrap_or_default().to_string();
                let result = self
                    .edit(&scope, &name, |obj| {
                        let mut labels = meta::labels(obj);
                        apply_sync_labels(&mut labels, &wanted);
                        meta::set_labels(obj, labels);
                    })
                    .await;
                match result {
                    Ok(_) => {}
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

/// A Placement's location and that location's targets, or why there is none.
#[derive(Clone, Debug, Default)]
struct Choice {
    /// (workspace path, location name).
    location: Option<(String, String)>,
    targets: Vec<Target>,
    /// How many of its namespaces may fail over at once.
    max_moving: usize,
    failure: Option<(&'static str, String)>,
    /// The resources the tenant binds from the location's workspace.
    needs: BTreeSet<String>,
}

/// What scheduling did with one namespace.
#[derive(Default)]
struct Scheduled {
    /// The placements that put it somewhere.
    placed_by: Vec<usize>,
    /// It is failing over (or waits to): look again soon.
    waiting: bool,
}

impl Choice {
    fn failed(reason: &'static str, message: String) -> Self {
        Self {
            failure: Some((reason, message)),
            ..Self::default()
        }
    }
}

/// The targets of a location: those its instance selector matches (empty: all).
fn members(location: &Value, targets: &[Target]) -> Vec<Target> {
    let selector = location
        .pointer("/spec/instanceSelector")
        .and_then(|s| LabelSelector::from_json(s).ok());
    targets
        .iter()
        .filter(|t| selector.as_ref().is_none_or(|s| s.matches(&t.labels)))
        .cloned()
        .collect()
}

/// kcp's rule: no namespace selector selects nothing; an empty one selects every namespace.
fn selects_namespace(placement: &Value, labels: &Map<String, Value>) -> bool {
    placement
        .pointer("/spec/namespaceSelector")
        .and_then(|s| LabelSelector::from_json(s).ok())
        .is_some_and(|s| s.matches(labels))
}

/// Whether an object's status is (or was) reported per target.
fn needs_summary(obj: &Value) -> bool {
    let labels = meta::labels(obj);
    synced_keys(&labels).len() > 1
        || meta::annotations(obj)
            .keys()
            .any(|k| k.starts_with(STATUS_ANNOTATION_PREFIX))
}

/// A status annotation no agent should be writing: of a target the object left, or any
/// once it is on one target only.
fn is_stale_report(annotation: &str, keys: &[String]) -> bool {
    annotation
        .strip_prefix(STATUS_ANNOTATION_PREFIX)
        .is_some_and(|k| keys.len() < 2 || !keys.iter().any(|x| x == k))
}

fn stale_reports(annotations: &Map<String, Value>, keys: &[String]) -> bool {
    annotations.keys().any(|k| is_stale_report(k, keys))
}

/// The aggregate status of `obj` from its targets' reports.
fn summary_of(kind: &str, obj: &Value) -> Value {
    let keys = synced_keys(&meta::labels(obj));
    aggregate(kind, &reported(&meta::annotations(obj), &keys))
}

/// Keys of the targets a namespace is synced to.
fn synced_keys(labels: &Map<String, Value>) -> Vec<String> {
    labels
        .iter()
        .filter(|(_, v)| v.as_str() == Some("Sync"))
        .filter_map(|(k, _)| k.strip_prefix(STATE_LABEL_PREFIX).map(String::from))
        .collect()
}

/// How many targets of its location a Placement puts each namespace on: annotation
/// [`SPREAD_ANNOTATION`] = `All`, or a count (default 1, kcp's rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spread {
    Count(usize),
    All,
}

impl Spread {
    pub fn of(placement: &Value) -> Self {
        match meta::annotation(placement, SPREAD_ANNOTATION).map(str::trim) {
            Some(a) if a.eq_ignore_ascii_case("all") => Self::All,
            Some(a) => Self::Count(a.parse().unwrap_or(1).max(1)),
            None => Self::Count(1),
        }
    }

    fn allows(self, n: usize) -> bool {
        match self {
            Self::All => true,
            Self::Count(c) => n < c,
        }
    }
}

/// The targets for a namespace: the current ones while they are still members of the
/// location and neither drained nor failed (a target merely unhealthy, within the failover
/// grace, keeps its namespaces), then schedulable ones ranked by a hash of the namespace and the target
/// (rendezvous hashing: spreads namespaces, stable across replicas and restarts, and a new
/// target takes only its share), up to `spread`.
fn pick_targets(targets: &[Target], current: &[String], seed: &str, spread: Spread) -> Vec<String> {
    let mut picked: Vec<String> = Vec::new();
    for key in current {
        if spread.allows(picked.len()) && targets.iter().any(|t| &t.key == key && t.keeps()) {
            picked.push(key.clone());
        }
    }
    let mut ranked: Vec<(u64, &Target)> = targets
        .iter()
        .filter(|t| t.schedulable && !picked.contains(&t.key))
        .map(|t| (rendezvous(seed, &t.key), t))
        .collect();
    ranked.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.key.cmp(&b.1.key)));
    for (_, t) in ranked {
        if !spread.allows(picked.len()) {
            break;
        }
        picked.push(t.key.clone());
    }
    picked
}

/// A stable hash of (namespace, target): the same on every replica and release.
fn rendezvous(seed: &str, key: &str) -> u64 {
    let digest = sha2::Sha256::digest(format!("{seed}\0{key}").as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

/// The `Sync` state labels of a label set.
pub fn sync_labels(labels: &Map<String, Value>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, v)| k.starts_with(STATE_LABEL_PREFIX) && v.as_str() == Some("Sync"))
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// Whether [`apply_sync_labels`] would change `labels`.
pub fn lacks_sync_labels(labels: &Map<String, Value>, wanted: &BTreeMap<String, String>) -> bool {
    let mut applied = labels.clone();
    apply_sync_labels(&mut applied, wanted);
    applied != *labels
}

/// Replaces the `Sync` state labels of `labels` with `wanted`. Other states stay: an object
/// a target shows upstream (`Upsync`) is never sent back down to it.
pub fn apply_sync_labels(labels: &mut Map<String, Value>, wanted: &BTreeMap<String, String>) {
    labels.retain(|k, v| !(k.starts_with(STATE_LABEL_PREFIX) && v.as_str() == Some("Sync")));
    for (k, v) in wanted {
        labels.entry(k.clone()).or_insert_with(|| json!(v));
    }
}

fn placement_status(placement: &Value, choice: &Choice, bound: bool) -> Value {
    let mut status = placement
        .get("status")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let old = placement.clone();
    let (phase, ready, scheduled) = match (&choice.location, &choice.failure) {
        (Some((path, name)), _) => {
            status["selectedLocation"] = json!({"path": path, "locationName": name});
            let scheduled = if choice.targets.iter().any(|t| t.schedulable) || bound {
                condition("Scheduled", true, "", "")
            } else {
                let mut message = "no ready, schedulable SyncTarget in the location".to_string();
                if !choice.needs.is_empty() {
                    let needs: Vec<&str> = choice.needs.iter().map(String::as_str).collect();
                    message.push_str(&format!(" that syncs {}", needs.join(", ")));
                }
                condition("Scheduled", false, "NoValidTarget", &message)
            };
            (
                if bound { "Bound" } else { "Unbound" },
                condition("Ready", true, "", ""),
                scheduled,
            )
        }
        (None, failure) => {
            if let Some(m) = status.as_object_mut() {
                m.remove("selectedLocation");
            }
            let (reason, message) = failure
                .clone()
                .unwrap_or(("LocationNotFound", String::new()));
            (
                "Pending",
                condition("Ready", false, reason, &message),
                condition("Scheduled", false, "ScheduleLocationNotFound", &message),
            )
        }
    };
    status["phase"] = json!(phase);
    status["conditions"] = json!(with_transition_times(&old, vec![ready, scheduled]));
    status
}

/// Health as the heartbeat tells it.
struct Health {
    healthy: bool,
    message: String,
}

fn heartbeat_health(last: Option<i64>, now: i64) -> Health {
    match last {
        None => Health {
            healthy: false,
            message: "the syncer has not sent a heartbeat yet".into(),
        },
        Some(t) if now - t > HEARTBEAT_THRESHOLD.as_secs() as i64 => Health {
            healthy: false,
            message: format!("no heartbeat for {}s", now - t),
        },
        Some(_) => Health {
            healthy: true,
            message: String::new(),
        },
    }
}

fn health_conditions(target: &Value, health: &Health) -> Vec<Value> {
    let (reason, message) = if health.healthy {
        ("", "")
    } else {
        ("ErrorHeartbeat", health.message.as_str())
    };
    with_transition_times(
        target,
        vec![
            condition("Ready", health.healthy, reason, message),
            condition("HeartbeatHealthy", health.healthy, reason, message),
            condition("SyncerReady", health.healthy, reason, message),
        ],
    )
}

fn condition(type_: &str, ok: bool, reason: &str, message: &str) -> Value {
    let mut c = json!({"type": type_, "status": if ok { "True" } else { "False" }});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
        c["severity"] = json!("Error");
    }
    if !message.is_empty() {
        c["message"] = json!(message);
    }
    c
}

/// Conditions keep their `lastTransitionTime` while their status does not change.
fn with_transition_times(old: &Value, conditions: Vec<Value>) -> Vec<Value> {
    let previous = old
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    conditions
        .into_iter()
        .map(|mut c| {
            let before = previous.iter().find(|p| p.get("type") == c.get("type"));
            let time = match before {
                Some(p) if p.get("status") == c.get("status") => p
                    .get("lastTransitionTime")
                    .cloned()
                    .unwrap_or_else(|| json!(meta::now_rfc3339())),
                _ => json!(meta::now_rfc3339()),
            };
            c["lastTransitionTime"] = time;
            c
        })
        .collect()
}

fn condition_true(obj: &Value, type_: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some(type_)
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// When condition `type_` last changed (its `lastTransitionTime`), in seconds.
fn condition_since(obj: &Value, type_: &str) -> Option<i64> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?
        .get("lastTransitionTime")?
        .as_str()
        .and_then(parse_time)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Seconds since the epoch of an RFC 3339 UTC time (`2026-12-05T01:02:03Z`, fractions
/// allowed).
fn parse_time(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + min * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(key: &str, schedulable: bool) -> Target {
        Target {
            key: key.into(),
            labels: Map::new(),
            schedulable,
            evicting: false,
            failed: false,
            apis: BTreeSet::new(),
        }
    }

    fn one(targets: &[Target], current: &[&str], seed: &str) -> Option<String> {
        let current: Vec<String> = current.iter().map(|c| c.to_string()).collect();
        pick_targets(targets, &current, seed, Spread::Count(1))
            .into_iter()
            .next()
    }

    #[test]
    fn a_namespace_stays_on_its_target_and_new_ones_spread() {
        let targets = [target("a", true), target("b", true), target("c", false)];
        // Kept while a member, even unschedulable.
        assert_eq!(one(&targets, &["c"], "x").as_deref(), Some("c"));
        // New ones only on schedulable targets, deterministically.
        let picks: BTreeSet<String> = (0..50)
            .filter_map(|i| one(&targets, &[], &format!("ns{i}")))
            .collect();
        assert_eq!(picks, BTreeSet::from(["a".to_string(), "b".to_string()]));
        assert_eq!(one(&targets, &[], "ns1"), one(&targets, &[], "ns1"));
        assert_eq!(one(&[target("c", false)], &[], "x"), None);
        // A drained target lets its namespaces go.
        let drained = Target {
            evicting: true,
            ..target("c", false)
        };
        assert_eq!(
            one(&[drained, target("a", true)], &["c"], "x").as_deref(),
            Some("a")
        );
    }

    #[test]
    fn failed_targets_are_replaced_and_moves_are_capped() {
        let failed = Target {
            failed: true,
            ..target("a", false)
        };
        // A failed target's namespaces go elsewhere (the caller keeps its label meanwhile).
        assert_eq!(
            one(&[failed.clone(), target("b", true)], &["a"], "x").as_deref(),
            Some("b")
        );
        assert_eq!(one(&[failed], &["a"], "x"), None);
        let moves = Moves::default();
        assert!(moves.start("loc", "t/ns1", 2));
        assert!(moves.start("loc", "t/ns1", 2), "already counted");
        assert!(moves.start("loc", "t/ns2", 2));
        assert!(!moves.start("loc", "t/ns3", 2), "over the cap");
        assert!(moves.start("other", "t/ns3", 2), "per location");
        moves.finish("t/ns1");
        assert!(moves.start("loc", "t/ns3", 2));
        // Down for the grace: failed.
        let now = now_secs();
        let facts = |since: i64| TargetFacts {
            key: "a".into(),
            labels: Map::new(),
            ready: false,
            down_since: Some(since),
            unschedulable: false,
            evict_after: None,
            apis: BTreeSet::new(),
        };
        assert!(!facts(now - 2).target(now).failed);
        assert!(
            facts(now - FAILOVER_GRACE.as_secs() as i64)
                .target(now)
                .failed
        );
    }

    #[test]
    fn a_spread_places_a_namespace_on_several_targets() {
        let targets = [
            target("a", true),
            target("b", true),
            target("c", true),
            target("d", false),
        ];
        let all = pick_targets(&targets, &[], "x", Spread::All);
        assert_eq!(all.len(), 3, "every schedulable target: {all:?}");
        let two = pick_targets(&targets, &[], "x", Spread::Count(2));
        assert_eq!(two.len(), 2);
        assert!(two.iter().all(|k| all.contains(k)));
        // Current members stay (an unschedulable one too), the rest is filled up.
        let kept = pick_targets(&targets, &["d".into()], "x", Spread::Count(2));
        assert_eq!(kept[0], "d");
        assert_eq!(kept.len(), 2);
        // A new target takes only its share: most namespaces keep their ranking.
        let more = [targets.as_slice(), &[target("e", true)]].concat();
        let moved = (0..200)
            .filter(|i| {
                let seed = format!("ns{i}");
                pick_targets(&targets, &[], &seed, Spread::Count(1))
                    != pick_targets(&more, &[], &seed, Spread::Count(1))
            })
            .count();
        assert!(moved < 100, "{moved} of 200 moved");
        let spread = |a: &str| {
            let mut p = json!({"metadata": {"name": "p"}});
            if !a.is_empty() {
                p["metadata"]["annotations"] = json!({SPREAD_ANNOTATION: a});
            }
            Spread::of(&p)
        };
        assert_eq!(spread(""), Spread::Count(1));
        assert_eq!(spread("All"), Spread::All);
        assert_eq!(spread("3"), Spread::Count(3));
        assert_eq!(spread("0"), Spread::Count(1));
        assert_eq!(spread("many"), Spread::Count(1));
    }

    #[test]
    fn synced_kinds_line_up_with_synced_resources() {
        let plurals: Vec<&str> = SYNCED.iter().map(|(_, _, p)| *p).collect();
        let from_kinds: Vec<String> = SYNCED_KINDS
            .iter()
            .map(|k| match *k {
                "Ingress" => "ingresses".to_string(),
                k => format!("{}s", k.to_lowercase()),
            })
            .collect();
        assert_eq!(plurals, from_kinds);
    }

    #[test]
    fn heartbeat_health_and_times() {
        let t = parse_time("2026-12-05T01:02:03Z").unwrap();
        assert_eq!(parse_time("2026-12-05T01:02:03.123456Z"), Some(t));
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert!(heartbeat_health(Some(t), t + 15).healthy);
        assert!(!heartbeat_health(Some(t), t + 16).healthy);
        assert!(!heartbeat_health(None, t).healthy);
    }

    #[test]
    fn namespace_selectors_follow_kcp() {
        let labels: Map<String, Value> = serde_json::from_value(json!({"team": "a"})).unwrap();
        assert!(!selects_namespace(&json!({"spec": {}}), &labels));
        assert!(selects_namespace(
            &json!({"spec": {"namespaceSelector": {}}}),
            &labels
        ));
        assert!(!selects_namespace(
            &json!({"spec": {"namespaceSelector": {"matchLabels": {"team": "b"}}}}),
            &labels
        ));
    }

    #[test]
    fn the_target_index_changes_only_with_what_scheduling_decides_on() {
        let target = |ready: &str, heartbeat: &str| {
            json!({"metadata": {"name": "east", "labels": {"region": "east"}},
                "spec": {},
                "status": {"lastSyncerHeartbeatTime": heartbeat,
                    "conditions": [{"type": "Ready", "status": ready}]}})
        };
        let index = TargetIndex::default();
        assert!(index.update("c", "east", TargetFacts::of("c", &target("True", "t1"))));
        // A heartbeat alone changes nothing scheduling sees.
        assert!(!index.update("c", "east", TargetFacts::of("c", &target("True", "t2"))));
        assert!(index.in_cluster("c")[0].schedulable);
        assert!(index.update("c", "east", TargetFacts::of("c", &target("False", "t2"))));
        assert!(!index.in_cluster("c")[0].schedulable);
        let mut drained = target("True", "t2");
        drained["spec"]["evictAfter"] = json!("2020-01-01T00:00:00Z");
        assert!(index.update("c", "east", TargetFacts::of("c", &drained)));
        let t = &index.in_cluster("c")[0];
        assert!(t.evicting && !t.schedulable);
        assert_eq!(t.key, sync_target_key("c", "east"));
        index.remove("c", "east");
        assert!(index.in_cluster("c").is_empty() && index.in_cluster("other").is_empty());
    }

    #[test]
    fn sync_labels_replace_only_sync_states() {
        let mut labels: Map<String, Value> = serde_json::from_value(json!({
            "app": "x", "state.workload.kcp.io/old": "Sync", "state.workload.kcp.io/up": "Upsync",
        }))
        .unwrap();
        let wanted = BTreeMap::from([
            ("state.workload.kcp.io/new".to_string(), "Sync".to_string()),
            ("state.workload.kcp.io/up".to_string(), "Sync".to_string()),
        ]);
        apply_sync_labels(&mut labels, &wanted);
        assert_eq!(
            json!(labels),
            json!({"app": "x", "state.workload.kcp.io/up": "Upsync", "state.workload.kcp.io/new": "Sync"})
        );
    }
}

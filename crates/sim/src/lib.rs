//! `kplex sim`: a cluster simulator, **a test and demo tool** (KWOK-like). Against any
//! Kubernetes API — a kplex workspace included — it plays what a real cluster runs besides
//! its API server: Nodes that stay Ready ([`nodes`]), the scheduler ([`scheduler`],
//! `pods/binding`), kubelets ([`kubelet`]: pods Running and Ready, a Job's pods
//! Succeeded), and kube-controller-manager's controllers ([`deployments`],
//! [`replicasets`], [`statefulsets`], [`daemonsets`], [`jobs`], [`services`]) with their
//! status as kube reports it. Nothing runs: no image is pulled, no container started, no
//! packet routed. With it, `kubectl rollout status`, `kubectl wait --for=condition=Available`
//! and `helm install --wait` finish against a "physical cluster" made of a second
//! `kplex start` plus `kplex sim`.
//!
//! It talks to the API over HTTP only (the `kube` crate; no kplex server crate), so it
//! works against kube-apiserver too.
//!
//! Level-triggered: every change it sees (watches) triggers one pass that lists the world
//! ([`world::World`]) and moves each object one step towards what kube would make of it;
//! a pass also runs every second without any change (heartbeats, a Job's pods finishing).
//! Each module keeps its decisions in pure functions ("desired state from observed state")
//! tested next to them; the I/O around them is thin.

mod client;
pub mod daemonsets;
pub mod deployments;
pub mod jobs;
pub mod kubelet;
pub mod nodes;
mod object;
mod pods;
pub mod replicasets;
pub mod scheduler;
pub mod services;
pub mod statefulsets;
pub mod world;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use tokio::sync::Notify;

pub use client::Cluster;

/// `kplex sim`'s flags (its help, "a test and demo tool", is the subcommand's doc in
/// `src/main.rs`).
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// Kubeconfig of the cluster to play (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig (default: its current context).
    #[arg(long)]
    pub context: Option<String>,
    /// How many Nodes to simulate.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Their names' prefix (nodes are `<prefix>0`, `<prefix>1`, …).
    #[arg(long, default_value = "sim-node-")]
    pub node_name_prefix: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("loading the cluster's configuration: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error("encoding an object: {0}")]
    Json(#[from] serde_json::Error),
}

/// How often a pass runs without any event (heartbeats, a Job's pods finishing).
const TICK: Duration = Duration::from_secs(1);
/// Events closer together than this make one pass.
const COALESCE: Duration = Duration::from_millis(30);

/// Runs the simulator until the process is stopped.
pub async fn run(args: SimArgs) -> Result<(), Error> {
    let cluster = Arc::new(Cluster::connect(&args).await?);
    let slices = cluster.serves(&client::endpoint_slices()).await?;
    if !slices {
        tracing::info!("the server does not serve EndpointSlices; only Endpoints are kept");
    }
    tracing::info!(nodes = args.nodes, prefix = %args.node_name_prefix, "simulating a cluster");
    let changed = Arc::new(Notify::new());
    for ar in client::watched() {
        let api = cluster.all(&ar);
        let changed = changed.clone();
        tokio::spawn(async move {
            // Backoff: a kind the server does not serve must not make a busy loop.
            let mut events = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(event) = events.next().await {
                if event.is_ok() {
                    changed.notify_one();
                }
            }
        });
    }
    let mut sim = Sim::new(cluster, &args, slices);
    loop {
        sim.pass().await;
        let _ = tokio::time::timeout(TICK, changed.notified()).await;
        tokio::time::sleep(COALESCE).await;
    }
}

/// The simulator's memory between passes.
pub struct Sim {
    cluster: Arc<Cluster>,
    nodes: nodes::Nodes,
    kubelet: kubelet::Kubelet,
    slices: bool,
}

impl Sim {
    pub fn new(cluster: Arc<Cluster>, args: &SimArgs, slices: bool) -> Self {
        Self {
            cluster,
            nodes: nodes::Nodes::new(&args.node_name_prefix, args.nodes),
            kubelet: kubelet::Kubelet::default(),
            slices,
        }
    }

    /// One step of every simulated component. A component that fails is logged and
    /// retried by the next pass; it does not stop the others.
    pub async fn pass(&mut self) {
        let c = &*self.cluster;
        let w = match world::World::observe(c, self.slices).await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "listing the cluster failed; retrying");
                return;
            }
        };
        let log = |component: &str, r: Result<(), Error>| {
            if let Err(e) = r {
                tracing::warn!(component, error = %e, "step failed; the next pass retries");
            }
        };
        log("nodes", self.nodes.reconcile(c, &w).await);
        let nodes = self.nodes.objects(&w);
        log("deployments", deployments::reconcile(c, &w).await);
        log("replicasets", replicasets::reconcile(c, &w).await);
        log("statefulsets", statefulsets::reconcile(c, &w).await);
        log("daemonsets", daemonsets::reconcile(c, &w, &nodes).await);
        log("jobs", jobs::reconcile(c, &w).await);
        log("scheduler", scheduler::reconcile(c, &w.pods, &nodes).await);
        let names = self.nodes.names().to_vec();
        log("kubelet", self.kubelet.reconcile(c, &w.pods, &names).await);
        log("services", services::reconcile(c, &w, self.slices).await);
    }
}

//! `kplex sim`: a cluster simulator, **a test and demo tool** (KWOK-like). Against any
//! Kubernetes API — a kplex workspace included — it plays what a real cluster runs besides
//! its API server: Nodes that stay Ready, the scheduler (`pods/binding`), kubelets (pods
//! Running and Ready, a Job's pods Succeeded), and kube-controller-manager's workload
//! controllers (Deployments → ReplicaSets → Pods, StatefulSets, DaemonSets, Jobs, with
//! their status as kube reports it; Services get Endpoints and EndpointSlices). Nothing
//! runs: containers are never pulled or started. With it, `kubectl rollout status`,
//! `kubectl wait --for=condition=Available` and `helm install --wait` finish against a
//! cluster made of a second `kplex start` plus `kplex sim`.
//!
//! Level-triggered: every change it sees (watches) triggers one pass that lists the world
//! and moves each object one step towards what kube would make of it.

mod client;
mod kubelet;
mod nodes;
mod services;
mod workloads;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::watcher::{self, watcher};
use tokio::sync::Notify;

pub use client::Cluster;

/// `kplex sim`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// Kubeconfig of the cluster to play (default: $KUBECONFIG).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig.
    #[arg(long)]
    pub context: Option<String>,
    /// How many Nodes to simulate.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Their names' prefix.
    #[arg(long, default_value = "sim-node-")]
    pub node_name_prefix: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("the cluster's configuration: {0}")]
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
    let changed = Arc::new(Notify::new());
    for ar in client::watched() {
        let api = cluster.all(&ar);
        let changed = changed.clone();
        tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default()).boxed();
            while let Some(event) = events.next().await {
                if event.is_ok() {
                    changed.notify_one();
                }
            }
        });
    }
    let mut sim = Sim::new(cluster, &args);
    loop {
        if let Err(e) = sim.pass().await {
            tracing::debug!(error = %e, "pass failed; the next one retries");
        }
        let _ = tokio::time::timeout(TICK, changed.notified()).await;
        tokio::time::sleep(COALESCE).await;
    }
}

/// The simulator's memory between passes.
pub struct Sim {
    cluster: Arc<Cluster>,
    nodes: nodes::Nodes,
    kubelet: kubelet::Kubelet,
}

impl Sim {
    pub fn new(cluster: Arc<Cluster>, args: &SimArgs) -> Self {
        Self {
            cluster,
            nodes: nodes::Nodes::new(&args.node_name_prefix, args.nodes),
            kubelet: kubelet::Kubelet::default(),
        }
    }

    /// One step of every simulated component.
    pub async fn pass(&mut self) -> Result<(), Error> {
        let c = &self.cluster;
        self.nodes.reconcile(c).await?;
        workloads::deployments(c).await?;
        workloads::replica_sets(c).await?;
        workloads::stateful_sets(c).await?;
        workloads::daemon_sets(c, &self.nodes.names()).await?;
        workloads::jobs(c).await?;
        kubelet::schedule(c, &self.nodes.names()).await?;
        self.kubelet.run_pods(c, &self.nodes.names()).await?;
        services::reconcile(c).await?;
        Ok(())
    }
}

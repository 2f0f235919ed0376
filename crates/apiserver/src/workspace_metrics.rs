//! Per-workspace request figures, on request and bounded: `/metrics` never labels by
//! workspace by default (the series count would grow with workspaces, as kcp's does). An
//! operator who wants to see the busiest tenants asks for the top N
//! (`--metrics-top-workspaces`), or names the workspaces to follow
//! (`--metrics-workspaces`); `kplex_workspace_requests_total{workspace}` and
//! `kplex_workspace_request_duration_seconds_total{workspace}` then carry at most N plus
//! the named ones. The figures are kept for every known logical cluster that was asked
//! something (a few dozen bytes each) and chosen when `/metrics` is read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kplex_registry::served::Served;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;

/// Which workspaces get series of their own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkspaceMetricsConfig {
    /// The N workspaces with the most requests (0: none).
    pub top: usize,
    /// Workspaces always shown (paths like `root:team-a`, or logical cluster names).
    pub named: Vec<String>,
}

impl WorkspaceMetricsConfig {
    fn enabled(&self) -> bool {
        self.top > 0 || !self.named.is_empty()
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    requests: u64,
    seconds: f64,
}

/// The figures per logical cluster, and what to show of them.
pub struct WorkspaceRequests {
    config: WorkspaceMetricsConfig,
    served: Arc<Served>,
    by_cluster: Mutex<HashMap<String, Figures>>,
}

impl std::fmt::Debug for WorkspaceRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspaceRequests")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WorkspaceRequests {
    /// `None` unless the configuration asks for any workspace (the default): then nothing
    /// is recorded at all.
    pub fn new(config: WorkspaceMetricsConfig, served: Arc<Served>) -> Option<Arc<Self>> {
        config.enabled().then(|| {
            Arc::new(Self {
                config,
                served,
                by_cluster: Mutex::default(),
            })
        })
    }

    /// Counts a finished request in logical cluster `cluster` (names no known logical
    /// cluster — a made-up URL, the wildcard: not counted, so junk adds no entries).
    pub fn record(&self, cluster: &str, seconds: f64) {
        if !self.served.clusters().contains(cluster) {
            return;
        }
        if let Ok(mut map) = self.by_cluster.lock() {
            let f = map.entry(cluster.to_string()).or_default();
            f.requests += 1;
            f.seconds += seconds;
        }
    }

    /// (workspace label, figures) to show: the named ones, then the top N of the others.
    fn chosen(&self) -> Vec<(String, Figures)> {
        let Ok(map) = self.by_cluster.lock() else {
            return Vec::new();
        };
        let index = self.served.clusters();
        let named: Vec<String> = self
            .config
            .named
            .iter()
            .filter_map(|n| index.resolve(n))
            .collect();
        let mut out: Vec<(String, Figures)> = named
            .iter()
            .map(|c| (c.clone(), map.get(c).copied().unwrap_or_default()))
            .collect();
        let mut others: Vec<(&String, &Figures)> =
            map.iter().filter(|(c, _)| !named.contains(c)).collect();
        // Most requests first; ties by name, so the choice is stable between scrapes.
        others.sort_by(|a, b| b.1.requests.cmp(&a.1.requests).then(a.0.cmp(b.0)));
        out.extend(
            others
                .into_iter()
                .take(self.config.top)
                .map(|(c, f)| (c.clone(), *f)),
        );
        out.into_iter()
            .map(|(cluster, f)| (index.path_of(&cluster).unwrap_or(cluster), f))
            .collect()
    }
}

/// A series' name, help, and its value from a workspace's figures.
type Series = (&'static str, &'static str, fn(&Figures) -> f64);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkspaceLabel {
    workspace: String,
}

/// Exposes the chosen workspaces' figures at each scrape.
#[derive(Debug)]
pub struct WorkspaceCollector(pub Arc<WorkspaceRequests>);

impl Collector for WorkspaceCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let chosen = self.0.chosen();
        let series: [Series; 2] = [
            (
                "kplex_workspace_requests",
                "Requests per workspace, for the workspaces --metrics-top-workspaces and --metrics-workspaces choose.",
                |f| f.requests as f64,
            ),
            (
                "kplex_workspace_request_duration_seconds",
                "Seconds spent serving each chosen workspace's requests.",
                |f| f.seconds,
            ),
        ];
        for (name, help, value) in series {
            let counter = ConstCounter::new(0.0);
            let mut metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            for (workspace, figures) in &chosen {
                let label = WorkspaceLabel {
                    workspace: workspace.clone(),
                };
                ConstCounter::new(value(figures)).encode(metric.encode_family(&label)?)?;
            }
        }
        Ok(())
    }
}

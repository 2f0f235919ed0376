//! `kplex-bench fleet`: placement across a fleet of simulated targets, all in this process.
//!
//! A real `kplex syncer` per target costs a process (16.6 MiB); a thousand of them do not fit
//! next to the server on a small machine. Here each **simulated target** does, over HTTP
//! against a real kplex, what the agent does upstream — heartbeats (kcp's JSON patch), one
//! watch per resource through its syncer virtual workspace, status reports for Deployments
//! (into `.status`, or its status annotation when the object is on several targets) — and
//! keeps what it receives in memory instead of writing it to a cluster. What is measured is
//! kplex: scheduling, fan-out through the views, status aggregation, failover.
//!
//! Phases: targets up (memory per simulated target); Placements over many namespaces
//! (placements decided/s); a fill (per-target objects/s); timed creates (create → every
//! target's copy) and status reports (last report → aggregate upstream); a failover (one
//! target stops: unhealthy, re-placed, and the latency of the objects created meanwhile,
//! plotted as an SVG).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use futures::StreamExt;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::apis::{WORKSPACES, body, each, workspace};
use super::client::Client;
use super::placement::{get_json, until};
use super::report::{Better, Row, Sample, print_table};
use super::server::{KplexBinary, Server, expect, rss_kib};
use super::workspaces::wait_ready;

#[derive(Args)]
pub struct FleetBenchArgs {
    /// Simulated targets, all in this process.
    #[arg(long, default_value_t = 1000)]
    targets: usize,
    /// Team workspaces, each with one Placement.
    #[arg(long, default_value_t = 100)]
    workspaces: usize,
    /// Namespaces per workspace (besides `default`).
    #[arg(long, default_value_t = 10)]
    namespaces: usize,
    /// Targets each namespace is placed on (the Placements' spread).
    #[arg(long, default_value_t = 2)]
    spread: usize,
    /// Placed ConfigMaps of the fill.
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Timed creates after the fill.
    #[arg(long, default_value_t = 500)]
    events: usize,
    /// Deployments whose aggregated status is timed.
    #[arg(long, default_value_t = 200)]
    status_events: usize,
    /// Seconds of creates (20/s) into the lost target's namespaces during the failover.
    #[arg(long, default_value_t = 40)]
    failover_seconds: u64,
    /// Requests in flight at once while setting up.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Where to write the failover plot.
    #[arg(long, default_value = "fleet-failover.svg")]
    svg: PathBuf,
    #[command(flatten)]
    kplex: KplexBinary,
}

const STALL: Duration = Duration::from_secs(120);
const COMPUTE: &str = "/clusters/root:compute/apis";
const HEARTBEAT: Duration = Duration::from_secs(5);
const STATE: &str = "state.workload.kcp.io/";

/// What every simulated target reports to the bench.
#[derive(Default)]
struct Observed {
    /// ConfigMaps received (ADDED), all targets together.
    received: AtomicU64,
    /// Timed objects: name → (target, arrival) per copy.
    arrivals: Mutex<HashMap<String, Vec<(usize, Instant)>>>,
    /// Deployments: `cluster/ns/name` → when the last target sent its report.
    reported: Mutex<HashMap<String, Instant>>,
}

/// One simulated target: its identity and its view, and a switch that stops it.
struct SimTarget {
    index: usize,
    name: String,
    uid: String,
    key: String,
    /// `/services/syncer/<cluster>/<name>/<uid>`.
    view: String,
    stopped: AtomicBool,
}

impl SimTarget {
    fn live(&self) -> bool {
        !self.stopped.load(Ordering::Relaxed)
    }

    async fn heartbeat(self: Arc<Self>, c: Client) {
        let path = format!(
            "{COMPUTE}/workload.kcp.io/v1alpha1/synctargets/{}/status",
            self.name
        );
        while self.live() {
            let patch = json!([{"op": "test", "path": "/metadata/uid", "value": self.uid},
                {"op": "add", "path": "/status/lastSyncerHeartbeatTime", "value": kplex_gocompat::now_rfc3339()}]);
            let _ = c
                .send(
                    Method::PATCH,
                    &path,
                    Some("application/json-patch+json"),
                    body(&patch),
                )
                .await;
            tokio::time::sleep(HEARTBEAT).await;
        }
    }

    /// Watches `collection` through the view (reconnecting from the last version seen)
    /// and hands every event to `on`.
    async fn watch(
        self: Arc<Self>,
        c: Client,
        collection: &'static str,
        on: impl Fn(&Arc<Self>, &Value, Instant) + Send + 'static,
    ) {
        let mut rv = String::new();
        while self.live() {
            let path = format!(
                "{}/clusters/*{collection}?watch=true&allowWatchBookmarks=true&resourceVersion={rv}",
                self.view
            );
            let Ok(stream) = c.stream(&path).await else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let mut frames = stream.into_data_stream();
            let mut buf = Vec::new();
            while let Some(Ok(chunk)) = frames.next().await {
                if !self.live() {
                    return;
                }
                let now = Instant::now();
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let Ok(event) = serde_json::from_slice::<Value>(&line) else {
                        continue;
                    };
                    if let Some(v) = event
                        .pointer("/object/metadata/resourceVersion")
                        .and_then(Value::as_str)
                    {
                        rv = v.to_string();
                    }
                    on(&self, &event, now);
                }
            }
        }
    }

    fn on_configmap(self: &Arc<Self>, event: &Value, now: Instant, seen: &Observed) {
        if event["type"] != "ADDED" {
            return;
        }
        seen.received.fetch_add(1, Ordering::Relaxed);
        let name = event
            .pointer("/object/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !name.starts_with('f')
            && let Ok(mut a) = seen.arrivals.lock()
        {
            a.entry(name.to_string())
                .or_default()
                .push((self.index, now));
        }
    }

    /// A Deployment placed here: report it available, as the agent would once the
    /// cluster runs it.
    async fn on_deployment(self: Arc<Self>, c: Client, obj: Value, seen: Arc<Observed>) {
        let text = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or_default();
        let (cluster, ns, name) = (
            text("/metadata/annotations/kcp.io~1cluster").to_string(),
            text("/metadata/namespace").to_string(),
            text("/metadata/name").to_string(),
        );
        let generation = obj.pointer("/metadata/generation").cloned();
        let replicas = obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1));
        let status = json!({"observedGeneration": generation, "replicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas, "updatedReplicas": replicas,
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]});
        let targets = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map_or(0, |l| {
                l.iter()
                    .filter(|(k, v)| k.starts_with(STATE) && *v == "Sync")
                    .count()
            });
        let base = format!(
            "{}/clusters/{cluster}/apis/apps/v1/namespaces/{ns}/deployments/{name}",
            self.view
        );
        let annotation = format!("experimental.status.workload.kcp.io/{}", self.key);
        let (path, patch) = if targets > 1 {
            let recorded = obj
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(&annotation))
                .and_then(Value::as_str)
                .and_then(|s| serde_json::from_str::<Value>(s).ok());
            if recorded.as_ref() == Some(&status) {
                return;
            }
            (
                base,
                json!({"metadata": {"annotations": {annotation: status.to_string()}}}),
            )
        } else {
            if obj.get("status") == Some(&status) {
                return;
            }
            (format!("{base}/status"), json!({"status": status}))
        };
        if let Ok(mut r) = seen.reported.lock() {
            r.insert(format!("{cluster}/{ns}/{name}"), Instant::now());
        }
        let _ = c
            .send(
                Method::PATCH,
                &path,
                Some("application/merge-patch+json"),
                body(&patch),
            )
            .await;
    }
}

fn items(list: &Value) -> impl Iterator<Item = &Value> {
    list["items"].as_array().into_iter().flatten()
}

fn condition(obj: &Value, type_: &str) -> Option<String> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)?
        .get("status")?
        .as_str()
        .map(String::from)
}

fn sync_keys(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .filter(|(_, v)| *v == "Sync")
                .filter_map(|(k, _)| k.strip_prefix(STATE).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn self_rss_kib() -> u64 {
    rss_kib(std::path::Path::new("/proc/self/status"))
}

async fn post_all(
    c: &Client,
    conc: usize,
    paths_and_bodies: Vec<(String, Bytes)>,
) -> anyhow::Result<()> {
    let shared = Arc::new(paths_and_bodies);
    let c = c.clone();
    each(conc, shared.len(), move |i| {
        let (c, all) = (c.clone(), shared.clone());
        async move {
            let (path, b) = &all[i];
            expect(&c, Method::POST, path, b.clone(), StatusCode::CREATED)
                .await
                .map(drop)
        }
    })
    .await
}

fn configmap(name: &str) -> Bytes {
    body(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "b"}}),
    )
}

/// Starts the simulated targets; returns them and the bench's memory per target (KiB).
async fn start_targets(
    up: &Client,
    watchers: &Client,
    n: usize,
    seen: &Arc<Observed>,
) -> anyhow::Result<(Vec<Arc<SimTarget>>, f64)> {
    let list = get_json(
        up,
        &format!("{COMPUTE}/workload.kcp.io/v1alpha1/synctargets"),
    )
    .await?;
    let before = self_rss_kib();
    let mut targets = Vec::new();
    for st in items(&list) {
        let text = |p: &str| st.pointer(p).and_then(Value::as_str).unwrap_or_default();
        let url = text("/status/virtualWorkspaces/0/syncerURL");
        let view = url
            .find("/services/")
            .map(|i| url[i..].to_string())
            .unwrap_or_default();
        let name = text("/metadata/name").to_string();
        let index: usize = name.trim_start_matches('t').parse()?;
        targets.push(Arc::new(SimTarget {
            index,
            key: text("/metadata/labels/internal.workload.kcp.io~1key").to_string(),
            uid: text("/metadata/uid").to_string(),
            name,
            view,
            stopped: AtomicBool::new(false),
        }));
    }
    anyhow::ensure!(targets.len() == n, "{} targets, not {n}", targets.len());
    for t in &targets {
        tokio::spawn(t.clone().heartbeat(up.clone()));
        let s = seen.clone();
        tokio::spawn(
            t.clone()
                .watch(watchers.clone(), "/api/v1/configmaps", move |t, e, now| {
                    t.on_configmap(e, now, &s)
                }),
        );
        let (s, c) = (seen.clone(), up.clone());
        tokio::spawn(t.clone().watch(
            watchers.clone(),
            "/apis/apps/v1/deployments",
            move |t, e, _| {
                if matches!(e["type"].as_str(), Some("ADDED" | "MODIFIED")) {
                    tokio::spawn(t.clone().on_deployment(
                        c.clone(),
                        e["object"].clone(),
                        s.clone(),
                    ));
                }
            },
        ));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let per_target = self_rss_kib().saturating_sub(before) as f64 / n as f64;
    Ok((targets, per_target))
}

pub async fn run(args: FleetBenchArgs) -> anyhow::Result<()> {
    let (n, w, k, spread, conc) = (
        args.targets.max(2),
        args.workspaces.max(1),
        args.namespaces,
        args.spread.max(1),
        args.concurrency.max(1),
    );
    // Every simulated target is the admin: the per-user watch budget covers them all.
    let watches = (n * 4 + 1000).to_string();
    let up = Server::start_with(&args.kplex, &[], &["--max-watches-per-user", &watches]).await?;
    let upc = up.client(4).await?;
    // Watches spread over connections (kplex allows 1,000 streams per connection).
    let watchers = up.client((n * 2).div_ceil(500).max(1)).await?;
    println!(
        "setting up: {n} simulated targets, {w} workspaces × {} namespaces…",
        k + 1
    );
    expect(
        &upc,
        Method::POST,
        &format!("/clusters/root{WORKSPACES}"),
        workspace("compute"),
        StatusCode::CREATED,
    )
    .await?;
    wait_ready(&upc, "root", "compute").await?;
    let targets_path = format!("{COMPUTE}/workload.kcp.io/v1alpha1/synctargets");
    post_all(
        &upc,
        conc,
        (0..n)
            .map(|i| {
                (
                    targets_path.clone(),
                    body(
                        &json!({"apiVersion": "workload.kcp.io/v1alpha1", "kind": "SyncTarget",
                        "metadata": {"name": format!("t{i}")}, "spec": {}}),
                    ),
                )
            })
            .collect(),
    )
    .await?;
    expect(
        &upc,
        Method::POST,
        &format!("{COMPUTE}/scheduling.kcp.io/v1alpha1/locations"),
        body(&json!({"apiVersion": "scheduling.kcp.io/v1alpha1", "kind": "Location",
            "metadata": {"name": "all", "annotations": {"experimental.scheduling.kplex.io/max-moving": "1000"}},
            "spec": {"resource": {"group": "workload.kcp.io", "version": "v1alpha1", "resource": "synctargets"}}})),
        StatusCode::CREATED,
    )
    .await?;
    until(&upc, &targets_path, "target keys and URLs", |l| {
        items(l)
            .filter(|t| {
                t.pointer("/status/virtualWorkspaces/0/syncerURL").is_some()
                    && t.pointer("/metadata/labels/internal.workload.kcp.io~1key")
                        .is_some()
            })
            .count()
            == n
    })
    .await?;
    let seen = Arc::new(Observed::default());
    let (targets, kib_per_target) = start_targets(&upc, &watchers, n, &seen).await?;
    until(&upc, &targets_path, "every target Ready", |l| {
        items(l)
            .filter(|t| condition(t, "Ready").as_deref() == Some("True"))
            .count()
            == n
    })
    .await?;

    // Placements decided: namespaces first, then every workspace's Placement at once.
    let names: Vec<String> = (0..w).map(|i| format!("w{i}")).collect();
    post_all(
        &upc,
        conc,
        names
            .iter()
            .map(|n| (format!("/clusters/root{WORKSPACES}"), workspace(n)))
            .collect(),
    )
    .await?;
    for name in &names {
        wait_ready(&upc, "root", name).await?;
    }
    post_all(
        &upc,
        conc,
        (0..w * k)
            .map(|i| {
                (
                    format!("/clusters/root:w{}/api/v1/namespaces", i % w),
                    body(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("ns{}", i / w)}})),
                )
            })
            .collect(),
    )
    .await?;
    let placement = body(
        &json!({"apiVersion": "scheduling.kcp.io/v1alpha1", "kind": "Placement",
        "metadata": {"name": "fleet", "annotations": {"experimental.scheduling.kplex.io/spread": spread.to_string()}},
        "spec": {"locationWorkspace": "root:compute", "locationSelectors": [{}], "namespaceSelector": {}}}),
    );
    let namespaces = w * (k + 1);
    let start = Instant::now();
    post_all(
        &upc,
        conc,
        (0..w)
            .map(|i| {
                (
                    format!("/clusters/root:w{i}/apis/scheduling.kcp.io/v1alpha1/placements"),
                    placement.clone(),
                )
            })
            .collect(),
    )
    .await?;
    let placed = |l: &Value| {
        items(l)
            .filter(|ns| {
                let name = ns.pointer("/metadata/name").and_then(Value::as_str);
                matches!(name, Some(n) if n == "default" || n.starts_with("ns"))
                    && sync_keys(ns).len() == spread
            })
            .count()
    };
    until(
        &upc,
        "/clusters/*/api/v1/namespaces",
        "every namespace placed",
        |l| placed(l) >= namespaces,
    )
    .await?;
    let scheduling = Sample {
        ops: namespaces as u64,
        elapsed: start.elapsed(),
        latencies: vec![],
    };

    // The fill: per-target objects/s.
    let all_ns: Vec<(usize, String)> = (0..w)
        .flat_map(|i| {
            std::iter::once((i, "default".to_string()))
                .chain((0..k).map(move |j| (i, format!("ns{j}"))))
        })
        .collect();
    let before = seen.received.load(Ordering::Relaxed);
    let start = Instant::now();
    post_all(
        &upc,
        conc,
        (0..args.objects)
            .map(|i| {
                let (ws, ns) = &all_ns[i % all_ns.len()];
                (
                    format!("/clusters/root:w{ws}/api/v1/namespaces/{ns}/configmaps"),
                    configmap(&format!("f{i}")),
                )
            })
            .collect(),
    )
    .await?;
    println!(
        "  fill: {} creates in {:.2} s",
        args.objects,
        start.elapsed().as_secs_f64()
    );
    let want = before + (args.objects * spread) as u64;
    while seen.received.load(Ordering::Relaxed) < want {
        anyhow::ensure!(start.elapsed() < STALL * 5, "the fill did not arrive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fanout = Sample {
        ops: (args.objects * spread) as u64,
        elapsed: start.elapsed(),
        latencies: vec![],
    };

    let creates = timed_creates(&upc, &seen, &all_ns, args.events, spread, "e").await?;
    let statuses = aggregated_status(&up, &upc, &seen, &all_ns, args.status_events, spread).await?;
    let title = format!(
        "fleet: {n} simulated targets, {namespaces} namespaces placed on {spread} each, {} objects",
        args.objects
    );
    let rows = vec![
        Row {
            name: "placements decided (namespaces scheduled)".into(),
            better: Better::Throughput,
            samples: vec![scheduling],
        },
        Row {
            name: "fan-out: per-target objects delivered".into(),
            better: Better::Throughput,
            samples: vec![fanout],
        },
        Row {
            name: "upstream create → each target's copy".into(),
            better: Better::Latency,
            samples: vec![creates],
        },
        Row {
            name: "last target's status report → aggregate upstream".into(),
            better: Better::Latency,
            samples: vec![statuses],
        },
    ];
    print_table(&title, &["kplex"], &rows);
    println!(
        "\nmemory per simulated target (this process): {kib_per_target:.1} KiB; kplex RSS {:.1} MiB",
        up.rss_kib() as f64 / 1024.0
    );
    failover(&upc, &seen, &targets, &args, spread).await?;
    println!(
        "goals: ≥ 1,000 placements/s; ≥ 5,000 per-target objects/s; create → downstream p99 ≤ 250 ms; status up p99 ≤ 1 s; ≤ 100 KiB per simulated target; failover detect ≤ 15 s, re-placed ≤ 30 s"
    );
    Ok(())
}

/// Creates `events` ConfigMaps named `<prefix><i>` one after another (8 in flight) and
/// times each until every target it is placed on has it.
async fn timed_creates(
    c: &Client,
    seen: &Arc<Observed>,
    all_ns: &[(usize, String)],
    events: usize,
    spread: usize,
    prefix: &'static str,
) -> anyhow::Result<Sample> {
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let ns = Arc::new(all_ns.to_vec());
    let start = Instant::now();
    let (c2, s2) = (c.clone(), sent.clone());
    each(8, events, move |i| {
        let (c, sent, ns) = (c2.clone(), s2.clone(), ns.clone());
        async move {
            let (ws, n) = &ns[(i * 7) % ns.len()];
            let name = format!("{prefix}{i}");
            if let Ok(mut s) = sent.lock() {
                s.insert(name.clone(), Instant::now());
            }
            expect(
                &c,
                Method::POST,
                &format!("/clusters/root:w{ws}/api/v1/namespaces/{n}/configmaps"),
                configmap(&name),
                StatusCode::CREATED,
            )
            .await
            .map(drop)
        }
    })
    .await?;
    let latencies = loop {
        if let Some(done) = copies_arrived(seen, &sent, spread, events)? {
            break done;
        }
        anyhow::ensure!(start.elapsed() < STALL, "timed creates did not all arrive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    Ok(Sample {
        ops: latencies.len() as u64,
        elapsed: start.elapsed(),
        latencies,
    })
}

/// Each timed object's latency to each of its copies, once every one of `events` has
/// `spread` copies.
fn copies_arrived(
    seen: &Observed,
    sent: &Mutex<HashMap<String, Instant>>,
    spread: usize,
    events: usize,
) -> anyhow::Result<Option<Vec<Duration>>> {
    let arrivals = seen
        .arrivals
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let sent = sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let done: Vec<Duration> = sent
        .iter()
        .filter_map(|(name, at)| {
            let copies = arrivals.get(name)?;
            (copies.len() >= spread).then(|| {
                copies
                    .iter()
                    .map(|(_, t)| t.saturating_duration_since(*at))
                    .collect::<Vec<_>>()
            })
        })
        .flatten()
        .collect();
    Ok((done.len() >= events * spread).then_some(done))
}

/// Deployments in `n` namespaces; each target reports them available; times the last
/// report until the upstream watch shows the aggregate (every copy available).
async fn aggregated_status(
    up: &Server,
    c: &Client,
    seen: &Arc<Observed>,
    all_ns: &[(usize, String)],
    n: usize,
    spread: usize,
) -> anyhow::Result<Sample> {
    let watch = up.client(1).await?;
    let stream = watch
        .stream("/clusters/*/apis/apps/v1/deployments?watch=true")
        .await?;
    let want = spread as i64;
    let observer = tokio::spawn(async move {
        let mut frames = stream.into_data_stream();
        let mut buf = Vec::new();
        let mut done: HashMap<String, Instant> = HashMap::new();
        while done.len() < n {
            let chunk = tokio::time::timeout(STALL, frames.next())
                .await
                .map_err(|_| anyhow::anyhow!("no aggregate in {STALL:?}"))?
                .ok_or_else(|| anyhow::anyhow!("the watch ended"))??;
            let now = Instant::now();
            buf.extend_from_slice(&chunk);
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                let event: Value = serde_json::from_slice(&line)?;
                let o = &event["object"];
                let available = o
                    .pointer("/status/availableReplicas")
                    .and_then(Value::as_i64);
                if available == Some(want) {
                    let text = |p: &str| o.pointer(p).and_then(Value::as_str).unwrap_or("");
                    let key = format!(
                        "{}/{}/{}",
                        text("/metadata/annotations/kcp.io~1cluster"),
                        text("/metadata/namespace"),
                        text("/metadata/name")
                    );
                    done.entry(key).or_insert(now);
                }
            }
        }
        anyhow::Ok(done)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    let deployment = body(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "app"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "app"}},
            "template": {"metadata": {"labels": {"app": "app"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}));
    post_all(
        c,
        8,
        all_ns
            .iter()
            .take(n)
            .map(|(ws, ns)| {
                (
                    format!("/clusters/root:w{ws}/apis/apps/v1/namespaces/{ns}/deployments"),
                    deployment.clone(),
                )
            })
            .collect(),
    )
    .await?;
    let done = tokio::time::timeout(STALL, observer).await???;
    let reported = seen
        .reported
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let latencies: Vec<Duration> = done
        .iter()
        .filter_map(|(k, at)| Some(at.saturating_duration_since(*reported.get(k)?)))
        .collect();
    Ok(Sample {
        ops: latencies.len() as u64,
        elapsed: start.elapsed(),
        latencies,
    })
}

/// One target stops (heartbeats and watches): how long until it is unhealthy and its
/// namespaces are re-placed, and the latency (to every live copy) of objects created in
/// those namespaces meanwhile, plotted.
async fn failover(
    c: &Client,
    seen: &Arc<Observed>,
    targets: &[Arc<SimTarget>],
    args: &FleetBenchArgs,
    spread: usize,
) -> anyhow::Result<()> {
    let list = get_json(c, "/clusters/*/api/v1/namespaces").await?;
    // The target holding the most namespaces goes.
    let mut load: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for ns in items(&list) {
        let cluster = ns
            .pointer("/metadata/annotations/kcp.io~1cluster")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = ns
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for key in sync_keys(ns) {
            load.entry(key)
                .or_default()
                .push((cluster.to_string(), name.to_string()));
        }
    }
    let (key, affected) = load
        .into_iter()
        .max_by_key(|(_, v)| v.len())
        .ok_or_else(|| anyhow::anyhow!("nothing placed"))?;
    let lost = targets
        .iter()
        .find(|t| t.key == key)
        .ok_or_else(|| anyhow::anyhow!("no target with key {key}"))?;
    let paths: Vec<String> = affected
        .iter()
        .map(|(cluster, ns)| format!("/clusters/{cluster}/api/v1/namespaces/{ns}/configmaps"))
        .collect();
    println!(
        "\nfailover: target {} (holding {} namespaces) stops…",
        lost.name,
        affected.len()
    );
    let kill = Instant::now();
    lost.stopped.store(true, Ordering::Relaxed);
    let sent: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let creator = {
        let (c, sent, paths) = (c.clone(), sent.clone(), paths.clone());
        let seconds = args.failover_seconds;
        tokio::spawn(async move {
            let mut i = 0usize;
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            while kill.elapsed() < Duration::from_secs(seconds) {
                tick.tick().await;
                let name = format!("x{i}");
                let path = &paths[i % paths.len()];
                if let Ok(mut s) = sent.lock() {
                    s.push((name.clone(), Instant::now()));
                }
                expect(
                    &c,
                    Method::POST,
                    path,
                    configmap(&name),
                    StatusCode::CREATED,
                )
                .await?;
                i += 1;
            }
            anyhow::Ok(())
        })
    };
    let target_path = format!(
        "{COMPUTE}/workload.kcp.io/v1alpha1/synctargets/{}",
        lost.name
    );
    until(c, &target_path, "the lost target unhealthy", |t| {
        condition(t, "Ready").as_deref() == Some("False")
    })
    .await?;
    let detect = kill.elapsed();
    {
        let affected: HashSet<(String, String)> = affected.iter().cloned().collect();
        let key = key.clone();
        until(
            c,
            "/clusters/*/api/v1/namespaces",
            "the namespaces re-placed",
            move |l| {
                items(l)
                    .filter(|ns| {
                        let cluster = ns
                            .pointer("/metadata/annotations/kcp.io~1cluster")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string();
                        let name = ns
                            .pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        affected.contains(&(cluster, name.to_string()))
                            && sync_keys(ns).iter().filter(|k| **k != key).count() >= spread
                    })
                    .count()
                    == affected.len()
            },
        )
        .await?;
    }
    let replaced_in = kill.elapsed();
    creator.await??;
    // Each object's latency to `spread` live copies.
    let deadline = Instant::now() + STALL;
    let points = loop {
        let (points, all) = live_copies(seen, &sent, lost.index, kill, spread)?;
        if all || Instant::now() > deadline {
            break points;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let worst = points.iter().map(|p| p.1).fold(0.0, f64::max);
    println!(
        "  unhealthy after {:.1} s; re-placed after {:.1} s; {} objects created meanwhile, worst {:.1} s to {spread} live copies",
        detect.as_secs_f64(),
        replaced_in.as_secs_f64(),
        points.len(),
        worst / 1000.0
    );
    std::fs::write(
        &args.svg,
        plot(&points, detect.as_secs_f64(), replaced_in.as_secs_f64()),
    )?;
    println!("  plot: {}", args.svg.display());
    Ok(())
}

/// Per object created during the failover: (created at, ms until `spread` copies on live
/// targets); and whether every object has them.
fn live_copies(
    seen: &Observed,
    sent: &Mutex<Vec<(String, Instant)>>,
    lost: usize,
    kill: Instant,
    spread: usize,
) -> anyhow::Result<(Vec<(f64, f64)>, bool)> {
    let arrivals = seen
        .arrivals
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let sent = sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let points: Vec<(f64, f64)> = sent
        .iter()
        .filter_map(|(name, at)| {
            let mut live: Vec<Instant> = arrivals
                .get(name)?
                .iter()
                .filter(|(t, _)| *t != lost)
                .map(|(_, when)| *when)
                .collect();
            live.sort();
            let full = live.get(spread - 1)?;
            Some((
                at.duration_since(kill).as_secs_f64(),
                full.saturating_duration_since(*at).as_secs_f64() * 1000.0,
            ))
        })
        .collect();
    let all = points.len() == sent.len();
    Ok((points, all))
}

/// Latency over time during the failover, as an SVG scatter plot with the two moments marked.
fn plot(points: &[(f64, f64)], detect: f64, replaced: f64) -> String {
    let (w, h, left, bottom) = (800.0, 400.0, 70.0, 40.0);
    let max_x = points.iter().map(|p| p.0).fold(replaced + 5.0, f64::max);
    let max_y = points.iter().map(|p| p.1).fold(1000.0, f64::max) * 1.05;
    let x = |v: f64| left + v / max_x * (w - left - 20.0);
    let y = |v: f64| h - bottom - v / max_y * (h - bottom - 20.0);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="14" text-anchor="middle">kplex-bench fleet: a target stops at t = 0 — create → every live copy, per object</text>
<line x1="{left}" y1="{}" x2="{}" y2="{}" stroke="black"/>
<line x1="{left}" y1="20" x2="{left}" y2="{}" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">seconds since the target stopped (object created)</text>
<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">latency (s)</text>
"#,
        w / 2.0,
        h - bottom,
        w - 20.0,
        h - bottom,
        h - bottom,
        w / 2.0,
        h - 8.0,
        h / 2.0,
        h / 2.0
    );
    let step_x = (max_x / 8.0).ceil().max(1.0);
    let mut t = 0.0;
    while t <= max_x {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{t:.0}</text>\n",
            x(t),
            h - bottom + 15.0
        ));
        t += step_x;
    }
    let step_y = (max_y / 1000.0 / 6.0).ceil().max(1.0);
    let mut v = 0.0;
    while v * 1000.0 <= max_y {
        svg.push_str(&format!(
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.0}</text>\n",
            left - 5.0,
            y(v * 1000.0) + 4.0
        ));
        v += step_y;
    }
    for (at, label, color) in [
        (detect, "unhealthy", "#c60"),
        (replaced, "re-placed", "#080"),
    ] {
        svg.push_str(&format!(
            "<line x1=\"{0:.1}\" y1=\"20\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"{color}\" stroke-dasharray=\"4\"/><text x=\"{2:.1}\" y=\"32\" fill=\"{color}\">{label} ({at:.1} s)</text>\n",
            x(at),
            h - bottom,
            x(at) + 4.0
        ));
    }
    for (px, py) in points {
        svg.push_str(&format!(
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"#06c\"/>\n",
            x(*px),
            y(*py)
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

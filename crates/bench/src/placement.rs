//! `kplex-bench placement`: workloads placed on simulated clusters. An upstream kplex holds
//! the SyncTargets and the team workspaces; a downstream kplex holds one workspace per
//! target (each a "cluster"); one `kplex syncer` process per target connects them. Times:
//! an upstream create until the object is downstream, and a downstream status change until
//! it is visible upstream; and the syncers' memory.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::apis::{WORKSPACES, body, each, next_lines, paced, workspace};
use super::client::Client;
use super::report::{Better, Row, Sample, print_table};
use super::server::{KplexBinary, Server, expect, expect_typed, rss_kib};
use super::workspaces::wait_ready;

#[derive(Args)]
pub struct PlacementBenchArgs {
    /// Sync targets (downstream clusters), one `kplex syncer` process each.
    #[arg(long, default_value_t = 10)]
    targets: usize,
    /// Team workspaces, each with a Placement.
    #[arg(long, default_value_t = 100)]
    workspaces: usize,
    /// Upstream creates whose arrival downstream is timed.
    #[arg(long, default_value_t = 1000)]
    events: u64,
    /// Then time as many creates again, paced at this many per second (an open loop, as
    /// from many teams at once), besides as fast as eight connections go (0: only that).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Downstream status changes whose arrival upstream is timed (one Deployment each).
    #[arg(long, default_value_t = 100)]
    status_events: usize,
    /// Requests in flight at once while setting up.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Then fill upstream with this many placed objects, restart it, and time the first
    /// change after the restart until it is downstream (0: skip).
    #[arg(long, default_value_t = 0)]
    restart_objects: usize,
    #[command(flatten)]
    kplex: KplexBinary,
}

const STALL: Duration = Duration::from_secs(60);

/// `kplex syncer` children, killed when dropped.
struct Syncers(Vec<Child>);

impl Drop for Syncers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Syncers {
    /// The largest resident set among them.
    fn max_rss_kib(&self) -> u64 {
        self.0
            .iter()
            .map(|c| rss_kib(&Path::new("/proc").join(c.id().to_string()).join("status")))
            .max()
            .unwrap_or(0)
    }
}

fn target(i: usize) -> Bytes {
    body(
        &json!({"apiVersion": "workload.kcp.io/v1alpha1", "kind": "SyncTarget",
        "metadata": {"name": format!("t{i}")}, "spec": {}}),
    )
}

fn location() -> Bytes {
    body(
        &json!({"apiVersion": "scheduling.kcp.io/v1alpha1", "kind": "Location",
        "metadata": {"name": "all"},
        "spec": {"resource": {"group": "workload.kcp.io", "version": "v1alpha1", "resource": "synctargets"}}}),
    )
}

fn placement() -> Bytes {
    body(
        &json!({"apiVersion": "scheduling.kcp.io/v1alpha1", "kind": "Placement",
        "metadata": {"name": "compute"},
        "spec": {"locationWorkspace": "root:compute", "locationSelectors": [{}], "namespaceSelector": {}}}),
    )
}

fn configmap(name: &str, sent: u128) -> Bytes {
    body(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
        "data": {"payload": sent.to_string()}}),
    )
}

fn deployment(team: usize) -> Bytes {
    body(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "app", "labels": {"bench-team": team.to_string()}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "app"}},
            "template": {"metadata": {"labels": {"app": "app"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
}

/// Creates `names` under root of `client`'s server and waits until they are Ready.
async fn make_workspaces(client: &Client, names: Vec<String>, conc: usize) -> anyhow::Result<()> {
    let c = client.clone();
    let shared = Arc::new(names.clone());
    each(conc, names.len(), move |i| {
        let (c, names) = (c.clone(), shared.clone());
        async move {
            let path = format!("/clusters/root{WORKSPACES}");
            expect(
                &c,
                Method::POST,
                &path,
                workspace(&names[i]),
                StatusCode::CREATED,
            )
            .await
            .map(drop)
        }
    })
    .await?;
    for name in &names {
        wait_ready(client, "root", name).await?;
    }
    Ok(())
}

pub(super) async fn get_json(client: &Client, path: &str) -> anyhow::Result<Value> {
    Ok(serde_json::from_slice(
        &expect(client, Method::GET, path, Bytes::new(), StatusCode::OK).await?,
    )?)
}

/// Polls until `done` holds for the list at `path`; returns how long that took.
pub(super) async fn until(
    client: &Client,
    path: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if done(&get_json(client, path).await?) {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(start.elapsed() < STALL, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ready_targets(list: &Value) -> usize {
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| {
            t.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
        .count()
}

pub async fn run(args: PlacementBenchArgs) -> anyhow::Result<()> {
    let (t, w, conc) = (
        args.targets.max(1),
        args.workspaces.max(1),
        args.concurrency.max(1),
    );
    // Every syncer here is the admin (one identity instead of a service account per
    // target), so the per-user watch budget must cover them all.
    let watches = (t * 32 + 1000).to_string();
    let extra = ["--max-watches-per-user", watches.as_str()];
    let mut up = Server::start_with(&args.kplex, &[], &extra).await?;
    let down = Server::start_with(&args.kplex, &[], &extra).await?;
    let upc = up.client(4).await?;
    let downc = down.client(4).await?;
    println!("setting up: {t} targets (downstream workspaces), {w} team workspaces…");
    make_workspaces(&upc, vec!["compute".into()], 1).await?;
    make_workspaces(&downc, (0..t).map(|i| format!("d{i}")).collect(), conc).await?;
    let compute = "/clusters/root:compute/apis";
    for i in 0..t {
        expect(
            &upc,
            Method::POST,
            &format!("{compute}/workload.kcp.io/v1alpha1/synctargets"),
            target(i),
            StatusCode::CREATED,
        )
        .await?;
    }
    expect(
        &upc,
        Method::POST,
        &format!("{compute}/scheduling.kcp.io/v1alpha1/locations"),
        location(),
        StatusCode::CREATED,
    )
    .await?;
    let targets_path = format!("{compute}/workload.kcp.io/v1alpha1/synctargets");
    until(&upc, &targets_path, "sync target URLs", |l| {
        l["items"].as_array().is_some_and(|i| {
            i.iter()
                .filter(|t| t.pointer("/status/virtualWorkspaces/0/syncerURL").is_some())
                .count()
                == t
        })
    })
    .await?;
    let list = get_json(&upc, &targets_path).await?;
    let dir = tempfile::tempdir()?;
    let upstream = dir.path().join("upstream.kubeconfig");
    std::fs::write(&upstream, up.kubeconfig("root:compute")?)?;
    let binary = args.kplex.path()?;
    let mut syncers = Syncers(Vec::new());
    for st in list["items"].as_array().into_iter().flatten() {
        let name = st
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let uid = st
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let i: usize = name.trim_start_matches('t').parse()?;
        let downstream = dir.path().join(format!("d{i}.kubeconfig"));
        std::fs::write(&downstream, down.kubeconfig(&format!("root:d{i}"))?)?;
        let mut cmd = Command::new(&binary);
        cmd.args([
            "syncer",
            "--from-cluster",
            "root:compute",
            "--sync-target-name",
            name,
            "--sync-target-uid",
            uid,
        ])
        .arg("--from-kubeconfig")
        .arg(&upstream)
        .arg("--to-kubeconfig")
        .arg(&downstream);
        crate::server::logged(&mut cmd, &format!("syncer-{name}"))?;
        let child = cmd.spawn()?;
        syncers.0.push(child);
    }
    until(&upc, &targets_path, "every target Ready", |l| {
        ready_targets(l) == t
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = syncers.max_rss_kib();

    make_workspaces(&upc, (0..w).map(|i| format!("w{i}")).collect(), conc).await?;
    let c = upc.clone();
    each(conc, w, move |i| {
        let c = c.clone();
        async move {
            let path = format!("/clusters/root:w{i}/apis/scheduling.kcp.io/v1alpha1/placements");
            expect(&c, Method::POST, &path, placement(), StatusCode::CREATED)
                .await
                .map(drop)
        }
    })
    .await?;
    for i in 0..w {
        let path = format!("/clusters/root:w{i}/api/v1/namespaces/default");
        until(&upc, &path, "namespaces scheduled", |ns| {
            ns.pointer("/metadata/labels")
                .and_then(Value::as_object)
                .is_some_and(|l| l.keys().any(|k| k.starts_with("state.workload.kcp.io/")))
        })
        .await?;
    }

    println!(
        "timing {} creates and {} status changes…",
        args.events,
        w.min(args.status_events)
    );
    let (down_events, _) = spec_down(&down, &upc, w, args.events, "e", Load::Closed(8)).await?;
    let mut rows = vec![Row {
        name: "upstream create → downstream object".into(),
        better: Better::Latency,
        samples: vec![down_events],
    }];
    if args.rate > 0.0 {
        let load = Load::Paced(args.rate);
        let (sample, _) = spec_down(&down, &upc, w, args.events, "p", load).await?;
        rows.push(Row {
            name: format!("  the same, paced at {}/s", args.rate),
            better: Better::Latency,
            samples: vec![sample],
        });
    }
    let loaded_rss = syncers.max_rss_kib();
    let synced = if args.rate > 0.0 { 2 } else { 1 } * args.events;
    let status_events = status_up(&up, &down, &upc, w.min(args.status_events)).await?;
    rows.push(Row {
        name: "downstream status → upstream".into(),
        better: Better::Latency,
        samples: vec![status_events],
    });
    let title =
        format!("placement: {t} targets × {w} workspaces, one kplex syncer process per target");
    print_table(&title, &["kplex"], &rows);
    // Printed first: the restart phase is long, and its figures come on their own.
    if args.restart_objects > 0 {
        let first = after_restart(&mut up, &down, w, args.restart_objects, conc).await?;
        rows = vec![Row {
            name: format!(
                "first change after an upstream restart holding {} objects → downstream",
                args.restart_objects
            ),
            better: Better::Latency,
            samples: vec![first],
        }];
        print_table(&title, &["kplex"], &rows);
    }
    println!(
        "\nsyncer RSS (largest of {t}): idle {:.1} MiB; after {} synced objects {:.1} MiB",
        idle_rss as f64 / 1024.0,
        synced / t as u64,
        loaded_rss as f64 / 1024.0
    );
    println!(
        "goals: create → downstream p50 ≤ 50 ms, p99 ≤ 250 ms; status → upstream p99 ≤ 1 s; first change after a restart ≤ 1 s; syncer ≤ 20 MiB idle"
    );
    Ok(())
}

/// Objects of a downstream wildcard list (its first page's items plus the remaining count).
async fn count(c: &Client, collection: &str) -> anyhow::Result<u64> {
    let page = get_json(c, &format!("{collection}?limit=1")).await?;
    let items = page["items"].as_array().map_or(0, Vec::len) as u64;
    let rest = page
        .pointer("/metadata/remainingItemCount")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Ok(items + rest)
}

/// Fills upstream with `objects` placed ConfigMaps and waits until all are downstream;
/// restarts upstream (printing how long it took to be ready); then times one create made as
/// soon as it is ready until the object is downstream: the syncers must have reconnected
/// and re-listed.
async fn after_restart(
    up: &mut Server,
    down: &Server,
    w: usize,
    objects: usize,
    conc: usize,
) -> anyhow::Result<Sample> {
    const CONFIGMAPS: &str = "/clusters/*/api/v1/configmaps";
    let downc = down.client(1).await?;
    let before = count(&downc, CONFIGMAPS).await?;
    let upc = up.client(4).await?;
    println!("filling upstream with {objects} placed objects…");
    let fill = Instant::now();
    let c = upc.clone();
    each(conc, objects, move |i| {
        let c = c.clone();
        async move {
            let path = format!(
                "/clusters/root:w{}/api/v1/namespaces/default/configmaps",
                i % w
            );
            expect(
                &c,
                Method::POST,
                &path,
                configmap(&format!("f{i}"), 0),
                StatusCode::CREATED,
            )
            .await
            .map(drop)
        }
    })
    .await?;
    let created = fill.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    while count(&downc, CONFIGMAPS).await? < before + objects as u64 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the objects did not all reach downstream"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "  created in {:.1} s, all downstream after {:.1} s",
        created.as_secs_f64(),
        fill.elapsed().as_secs_f64()
    );
    up.restart().await?;
    println!(
        "  upstream restarted: ready {:.2} s after the kill",
        up.started_in.as_secs_f64()
    );
    let upc = up.client(1).await?;
    let (sample, acked) = spec_down(down, &upc, w, 1, "r", Load::Closed(1)).await?;
    println!(
        "  the create was acknowledged after {:.1} ms",
        acked.as_secs_f64() * 1e3
    );
    Ok(sample)
}

/// How creates are issued: this many at a time, each as soon as the one before it on its
/// connection is answered; or this many a second, on schedule.
#[derive(Clone, Copy)]
enum Load {
    Closed(usize),
    Paced(f64),
}

/// Upstream ConfigMap creates named `<prefix><i>` (carrying their send time) → the
/// downstream wildcard watch; and the slowest create's acknowledgement.
async fn spec_down(
    down: &Server,
    upc: &Client,
    w: usize,
    events: u64,
    prefix: &'static str,
    load: Load,
) -> anyhow::Result<(Sample, Duration)> {
    let watch = down.client(1).await?;
    // From now on: a watch without a resourceVersion would first replay every object.
    let now = get_json(&watch, "/clusters/*/api/v1/configmaps?limit=1").await?;
    let rv = now
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let stream = watch
        .stream(&format!(
            "/clusters/*/api/v1/configmaps?watch=true&resourceVersion={rv}"
        ))
        .await?;
    let epoch = Instant::now();
    let observer = tokio::spawn(async move {
        let mut frames = stream.into_data_stream();
        let mut buf = Vec::new();
        let mut latencies = Vec::with_capacity(events as usize);
        while (latencies.len() as u64) < events {
            let (lines, now) = next_lines(&mut frames, &mut buf).await?;
            for line in lines {
                let event: Value = serde_json::from_slice(&line)?;
                let ours = event
                    .pointer("/object/metadata/name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.starts_with(prefix));
                if event["type"] != "ADDED" || !ours {
                    continue;
                }
                if let Some(sent) = event
                    .pointer("/object/data/payload")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    latencies.push(
                        now.duration_since(epoch)
                            .saturating_sub(Duration::from_nanos(sent)),
                    );
                }
            }
        }
        anyhow::Ok(latencies)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    let c = upc.clone();
    let slowest_ack = Arc::new(Mutex::new(Duration::ZERO));
    let slowest = slowest_ack.clone();
    let create = move |i: usize| {
        let (c, slowest) = (c.clone(), slowest.clone());
        async move {
            let path = format!(
                "/clusters/root:w{}/api/v1/namespaces/default/configmaps",
                i % w
            );
            let sent = epoch.elapsed().as_nanos().max(1);
            let begun = Instant::now();
            expect(
                &c,
                Method::POST,
                &path,
                configmap(&format!("{prefix}{i}"), sent),
                StatusCode::CREATED,
            )
            .await?;
            if let Ok(mut s) = slowest.lock() {
                *s = (*s).max(begun.elapsed());
            }
            anyhow::Ok(())
        }
    };
    match load {
        Load::Closed(conc) => each(conc, events as usize, create).await?,
        Load::Paced(rate) => paced(rate, events as usize, create).await?,
    }
    let latencies = tokio::time::timeout(STALL, observer).await???;
    let acked = slowest_ack.lock().map(|s| *s).unwrap_or_default();
    let sample = Sample {
        ops: latencies.len() as u64,
        elapsed: start.elapsed(),
        latencies,
    };
    Ok((sample, acked))
}

/// Downstream Deployment status patches → the upstream wildcard watch.
async fn status_up(up: &Server, down: &Server, upc: &Client, n: usize) -> anyhow::Result<Sample> {
    let downc = down.client(2).await?;
    let c = upc.clone();
    each(8, n, move |i| {
        let c = c.clone();
        async move {
            let path = format!("/clusters/root:w{i}/apis/apps/v1/namespaces/default/deployments");
            expect(&c, Method::POST, &path, deployment(i), StatusCode::CREATED)
                .await
                .map(drop)
        }
    })
    .await?;
    // Where each team's Deployment landed: (downstream cluster, namespace).
    let deadline = Instant::now() + STALL;
    let placed: HashMap<usize, (String, String)> = loop {
        let list = get_json(&downc, "/clusters/*/apis/apps/v1/deployments").await?;
        let placed: HashMap<usize, (String, String)> = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| {
                let team = d
                    .pointer("/metadata/labels/bench-team")?
                    .as_str()?
                    .parse()
                    .ok()?;
                let cluster = d
                    .pointer("/metadata/annotations/kcp.io~1cluster")?
                    .as_str()?
                    .to_string();
                let ns = d.pointer("/metadata/namespace")?.as_str()?.to_string();
                Some((team, (cluster, ns)))
            })
            .collect();
        if placed.len() == n {
            break placed;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "deployments did not all reach downstream"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watch = up.client(1).await?;
    let stream = watch
        .stream("/clusters/*/apis/apps/v1/deployments?watch=true")
        .await?;
    let observer = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut frames = stream.into_data_stream();
            let mut buf = Vec::new();
            let mut seen: HashMap<String, Instant> = HashMap::new();
            while seen.len() < n {
                let (lines, now) = next_lines(&mut frames, &mut buf).await?;
                for line in lines {
                    let event: Value = serde_json::from_slice(&line)?;
                    let obj = &event["object"];
                    if obj.pointer("/status/replicas").and_then(Value::as_i64) == Some(42)
                        && let Some(team) = obj
                            .pointer("/metadata/labels/bench-team")
                            .and_then(Value::as_str)
                    {
                        seen.entry(team.to_string()).or_insert(now);
                    }
                }
            }
            let sent = sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            anyhow::Ok(
                seen.into_iter()
                    .filter_map(|(t, at)| Some(at.saturating_duration_since(*sent.get(&t)?)))
                    .collect::<Vec<_>>(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    let placed = Arc::new(placed);
    let s = sent.clone();
    each(8, n, move |i| {
        let (c, placed, s) = (downc.clone(), placed.clone(), s.clone());
        async move {
            let (cluster, ns) = placed
                .get(&i)
                .ok_or_else(|| anyhow::anyhow!("team {i} not placed"))?;
            let path =
                format!("/clusters/{cluster}/apis/apps/v1/namespaces/{ns}/deployments/app/status");
            if let Ok(mut s) = s.lock() {
                s.insert(i.to_string(), Instant::now());
            }
            let patch = Bytes::from_static(br#"{"status":{"replicas":42}}"#);
            let ct = Some("application/merge-patch+json");
            expect_typed(&c, Method::PATCH, &path, ct, patch, StatusCode::OK).await?;
            Ok(())
        }
    })
    .await?;
    let latencies = tokio::time::timeout(STALL, observer).await???;
    Ok(Sample {
        ops: latencies.len() as u64,
        elapsed: start.elapsed(),
        latencies,
    })
}

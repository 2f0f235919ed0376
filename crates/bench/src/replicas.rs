//! `kplex-bench replicas`: kplex processes on one etcd — how fast a write through one
//! replica reaches a watch on another, what one more replica costs in memory once the store
//! holds many workspaces and objects, how long the controllers' leader takes to fail over,
//! and request throughput through one replica against three.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use futures::StreamExt;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::api::watch_latency;
use super::apis::{WORKSPACES, body, workspace};
use super::client::Client;
use super::report::{Better, Row, Sample, fmt_duration, print_table};
use super::server::{KplexBinary, Server, expect};
use super::workspaces::wait_ready;

#[derive(Args)]
pub struct ReplicasBenchArgs {
    /// etcd endpoints; without them, an `etcd` from PATH is started on a temporary directory.
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// Workspaces in the store when one more replica's memory is measured.
    #[arg(long, default_value_t = 10_000)]
    workspaces: usize,
    /// ConfigMaps in the store (spread over the workspaces) at that moment.
    #[arg(long, default_value_t = 100_000)]
    objects: usize,
    /// Writes timed from one replica to a watch on another.
    #[arg(long, default_value_t = 500)]
    events: u64,
    /// How long each throughput figure is measured.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Requests in flight while filling the store and measuring throughput.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[command(flatten)]
    kplex: KplexBinary,
}

/// An `etcd` child on a temporary data directory, killed on drop.
struct LocalEtcd {
    child: Child,
    _dir: tempfile::TempDir,
    endpoint: String,
}

impl LocalEtcd {
    fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = |_| -> anyhow::Result<u16> {
            Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port())
        };
        let (client, peer) = (port(0)?, port(1)?);
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new("etcd")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=default={peer_url}"))
            .args(["--quota-backend-bytes=8589934592", "--log-level=error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start etcd (apt-get install etcd-server), or pass --etcd-servers")?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", client)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "etcd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        Ok(Self {
            child,
            _dir: dir,
            endpoint,
        })
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port of the replica holding the controllers' Lease.
async fn leader_port(client: &Client) -> Option<u16> {
    let path = "/clusters/root/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kplex-controllers";
    let (code, body) = client
        .send(Method::GET, path, None, Bytes::new())
        .await
        .ok()?;
    if code != StatusCode::OK {
        return None;
    }
    let lease: Value = serde_json::from_slice(&body).ok()?;
    lease
        .pointer("/spec/holderIdentity")?
        .as_str()?
        .rsplit('_')
        .next()?
        .parse()
        .ok()
}

/// `workspaces` workspaces under root and `objects` ConfigMaps spread over them, through
/// `client`.
async fn fill(
    client: &Client,
    workspaces: usize,
    objects: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let list = format!("/clusters/root{WORKSPACES}");
    futures::stream::iter(0..workspaces)
        .map(|i| {
            let list = &list;
            async move {
                expect(
                    client,
                    Method::POST,
                    list,
                    workspace(&format!("fill-{i}")),
                    StatusCode::CREATED,
                )
                .await
                .map(drop)
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<()>>()?;
    if workspaces > 0 {
        wait_ready(client, "root", &format!("fill-{}", workspaces - 1)).await?;
    }
    let data = "x".repeat(200);
    futures::stream::iter(0..objects)
        .map(|i| {
            let cm = body(&json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("cm-{i}")}, "data": {"d": data}}));
            let ws = if workspaces == 0 {
                "root".to_string()
            } else {
                format!("root:fill-{}", i % workspaces)
            };
            async move {
                let path = format!("/clusters/{ws}/api/v1/namespaces/default/configmaps");
                // A workspace made a moment ago may not have its namespace yet: try again.
                for _ in 0..50 {
                    match client.send(Method::POST, &path, None, cm.clone()).await {
                        Ok((StatusCode::CREATED, _)) => return Ok(()),
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                anyhow::bail!("could not create a ConfigMap in {ws}")
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// `count` CRDs created through `a`, each timed until `b` serves its resource.
async fn crd_propagation(a: &Client, b: &Client, count: usize) -> anyhow::Result<Sample> {
    let mut sample = Sample::default();
    let start = Instant::now();
    for i in 0..count {
        let (group, plural) = (format!("g{i}.example.dev"), format!("things{i}"));
        let crd = body(&json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.{group}")},
            "spec": {"group": group, "scope": "Namespaced",
                "names": {"plural": plural, "singular": format!("thing{i}"), "kind": format!("Thing{i}")},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}));
        let sent = Instant::now();
        expect(
            a,
            Method::POST,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            crd,
            StatusCode::CREATED,
        )
        .await?;
        let path = format!("/apis/{group}/v1/namespaces/default/{plural}");
        loop {
            if let Ok((StatusCode::OK, _)) = b.send(Method::GET, &path, None, Bytes::new()).await {
                break;
            }
            anyhow::ensure!(
                sent.elapsed() < Duration::from_secs(30),
                "{plural} never served on B"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        sample.latencies.push(sent.elapsed());
        sample.ops += 1;
    }
    sample.elapsed = start.elapsed();
    Ok(sample)
}

/// GETs of one ConfigMap for `seconds`, `concurrency` at a time, spread over `clients`.
async fn throughput(
    clients: &[Client],
    seconds: u64,
    concurrency: usize,
) -> anyhow::Result<Sample> {
    let path = "/clusters/root/api/v1/namespaces/default/configmaps/target";
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let per_task = futures::future::join_all((0..concurrency).map(|t| async move {
        let client = &clients[t % clients.len()];
        let mut latencies = Vec::new();
        while Instant::now() < deadline {
            let sent = Instant::now();
            expect(client, Method::GET, path, Bytes::new(), StatusCode::OK).await?;
            latencies.push(sent.elapsed());
        }
        anyhow::Ok(latencies)
    }))
    .await;
    let mut sample = Sample::default();
    for latencies in per_task {
        let latencies = latencies?;
        sample.ops += latencies.len() as u64;
        sample.latencies.extend(latencies);
    }
    sample.elapsed = start.elapsed();
    Ok(sample)
}

pub async fn run(args: ReplicasBenchArgs) -> anyhow::Result<()> {
    let local = match args.etcd_servers.is_empty() {
        true => Some(LocalEtcd::start()?),
        false => None,
    };
    let etcd = match &local {
        Some(l) => vec![l.endpoint.clone()],
        None => args.etcd_servers.clone(),
    };
    let a = Server::start(&args.kplex, &etcd).await?;
    let mut b = a.replica().await?;
    let (ca, cb) = (a.client(16).await?, b.client(16).await?);

    // A write through A, seen by a watch on B.
    expect(
        &ca,
        Method::POST,
        "/api/v1/namespaces",
        body(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "watch"}})),
        StatusCode::CREATED,
    )
    .await?;
    let propagation = watch_latency(&b, &ca, 1, args.events).await?;
    // A CRD established through A, served by B.
    let crds = crd_propagation(&ca, &cb, 50).await?;

    // Throughput through one replica, then through three.
    expect(
        &ca,
        Method::POST,
        "/clusters/root/api/v1/namespaces/default/configmaps",
        body(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "target"}})),
        StatusCode::CREATED,
    )
    .await?;
    let one = throughput(std::slice::from_ref(&ca), args.seconds, args.concurrency).await?;
    let c = a.replica().await?;
    let cc = c.client(16).await?;
    let three = throughput(
        &[ca.clone(), cb.clone(), cc.clone()],
        args.seconds,
        args.concurrency,
    )
    .await?;
    drop(cc);
    drop(c);

    // One more replica's memory, with the store full.
    println!(
        "filling the store: {} workspaces, {} ConfigMaps…",
        args.workspaces, args.objects
    );
    let filling = Instant::now();
    fill(&ca, args.workspaces, args.objects, args.concurrency).await?;
    println!("filled in {}", fmt_duration(filling.elapsed()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let one_more = a.replica().await?;
    let started_in = one_more.started_in;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (rss_a, rss_more) = (a.rss_kib(), one_more.rss_kib());
    drop(one_more);

    // Failover: kill the leader (A or B) and time until the other holds the Lease.
    let mut a = a;
    let leader = leader_port(&ca).await.context("no controllers' leader")?;
    let (survivor, killed_b) = if leader == b.port() {
        b.kill();
        (&ca, true)
    } else {
        a.kill();
        (&cb, false)
    };
    let survivor_port = if killed_b { a.port() } else { b.port() };
    let killed = Instant::now();
    while leader_port(survivor).await != Some(survivor_port) {
        anyhow::ensure!(
            killed.elapsed() < Duration::from_secs(30),
            "no failover in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failover = killed.elapsed();

    let row = |name: &str, better: Better, s: Sample| Row {
        name: name.to_string(),
        better,
        samples: vec![s],
    };
    print_table(
        "kplex bench replicas (on etcd)",
        &["kplex"],
        &[
            row(
                "write on A → watch event on B",
                Better::Latency,
                propagation,
            ),
            row("CRD created on A → served by B", Better::Latency, crds),
            row("GET through 1 replica", Better::Throughput, one),
            row("GET through 3 replicas", Better::Throughput, three),
        ],
    );
    println!(
        "\none more replica with {} workspaces and {} ConfigMaps in the store: ready in {}, RSS {:.1} MiB (the first replica: {:.1} MiB)",
        args.workspaces,
        args.objects,
        fmt_duration(started_in),
        rss_more as f64 / 1024.0,
        rss_a as f64 / 1024.0
    );
    println!(
        "leader failover after kill -9: {} (Lease 8 s, renewed every 1 s)",
        fmt_duration(failover)
    );
    Ok(())
}

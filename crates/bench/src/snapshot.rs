//! `kplex-bench snapshot`: one workspace at a time — how long a snapshot, an export, a
//! restore and a fork of a workspace holding `--objects` objects take, through the same
//! `/clusters/<ws>/snapshot` requests `kubectl ws snapshot|export|restore|fork` send.

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use futures::StreamExt;
use http::{Method, StatusCode};
use serde_json::json;

use super::apis::{WORKSPACES, body, workspace};
use super::client::Client;
use super::report::{Better, Row, Sample, print_table};
use super::server::{KplexBinary, Server, expect, expect_typed};
use super::workspaces::wait_ready;

#[derive(Args)]
pub struct SnapshotBenchArgs {
    /// Objects (ConfigMaps of about 1 KiB) in the workspace.
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Times each operation is timed.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Requests in flight at once while filling the workspace.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Run kplex on these etcd endpoints instead of the embedded store.
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    #[command(flatten)]
    kplex: KplexBinary,
}

const SOURCE: &str = "/clusters/root:src";

/// The goal the issue sets for a snapshot and a fork of 10,000 objects.
const GOAL: Duration = Duration::from_secs(1);

async fn fill(client: &Client, objects: usize, concurrency: usize) -> anyhow::Result<()> {
    let data = "x".repeat(900);
    futures::stream::iter(0..objects)
        .map(|i| {
            let cm = body(&json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("cm-{i}"), "labels": {"app": "bench"}},
                "data": {"payload": data}}));
            async move {
                let path = format!("{SOURCE}/api/v1/namespaces/default/configmaps");
                expect(client, Method::POST, &path, cm, StatusCode::CREATED).await
            }
        })
        .buffer_unordered(concurrency)
        .map(|r| r.map(|_| ()))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// Times `op` `rounds` times (one at a time).
async fn time<F, Fut>(rounds: usize, mut op: F) -> anyhow::Result<Sample>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut sample = Sample::default();
    let start = Instant::now();
    for round in 0..rounds {
        let t = Instant::now();
        op(round).await?;
        sample.latencies.push(t.elapsed());
        sample.ops += 1;
    }
    sample.elapsed = start.elapsed();
    Ok(sample)
}

async fn get(client: &Client, path: &str) -> anyhow::Result<Bytes> {
    expect(client, Method::GET, path, Bytes::new(), StatusCode::OK).await
}

async fn put_snapshot(client: &Client, workspace: &str, snapshot: Bytes) -> anyhow::Result<()> {
    let path = format!("/clusters/{workspace}/snapshot");
    let ct = Some("application/octet-stream");
    expect_typed(client, Method::PUT, &path, ct, snapshot, StatusCode::OK).await?;
    Ok(())
}

/// The server's resident memory while it streams the whole store (`kplex snapshot save`),
/// sampled every few milliseconds: the save holds a page, not the store.
async fn whole_store_memory(server: &Server, client: &Client) -> anyhow::Result<()> {
    let before = server.rss_kib();
    let save = get(client, "/snapshot");
    tokio::pin!(save);
    let mut peak = before;
    let bytes = loop {
        tokio::select! {
            done = &mut save => break done?.len(),
            () = tokio::time::sleep(Duration::from_millis(2)) => peak = peak.max(server.rss_kib()),
        }
    };
    println!(
        "the whole store is {:.1} MiB; the server's RSS while it streams: {:.1} MiB before, at most +{:.1} MiB",
        bytes as f64 / (1024.0 * 1024.0),
        before as f64 / 1024.0,
        peak.saturating_sub(before) as f64 / 1024.0
    );
    Ok(())
}

async fn create_workspace(client: &Client, name: &str) -> anyhow::Result<()> {
    let list = format!("/clusters/root{WORKSPACES}");
    expect(
        client,
        Method::POST,
        &list,
        workspace(name),
        StatusCode::CREATED,
    )
    .await?;
    wait_ready(client, "root", name).await
}

pub async fn run(args: SnapshotBenchArgs) -> anyhow::Result<()> {
    let rounds = args.rounds.max(1);
    let server = Server::start(&args.kplex, &args.etcd_servers).await?;
    let client = server.client(8).await?;
    println!(
        "setting up: workspace root:src with {} ConfigMaps…",
        args.objects
    );
    create_workspace(&client, "src").await?;
    fill(&client, args.objects, args.concurrency.max(1)).await?;
    // First, before any snapshot has grown the server's heap.
    whole_store_memory(&server, &client).await?;
    let snapshot_path = format!("{SOURCE}/snapshot");
    let first = get(&client, &snapshot_path).await?;
    println!(
        "a snapshot is {:.1} MiB",
        first.len() as f64 / (1024.0 * 1024.0)
    );

    let snapshot = time(rounds, |_| async {
        get(&client, &snapshot_path).await.map(|_| ())
    })
    .await?;
    let whole = time(rounds, |_| async {
        get(&client, "/snapshot").await.map(|_| ())
    })
    .await?;

    let export_path = format!("{SOURCE}/snapshot?format=yaml");
    let export = time(rounds, |_| async {
        get(&client, &export_path).await.map(|_| ())
    })
    .await?;
    // Restore into itself after 1% of the objects changed: a diff, written back.
    let changed = (args.objects / 100).max(1);
    let mut restore = Sample::default();
    for _ in 0..rounds {
        for i in 0..changed {
            let path = format!("{SOURCE}/api/v1/namespaces/default/configmaps/cm-{i}");
            let patch = body(&json!({"data": {"payload": "changed"}}));
            let ct = Some("application/merge-patch+json");
            expect_typed(&client, Method::PATCH, &path, ct, patch, StatusCode::OK).await?;
        }
        let t = Instant::now();
        put_snapshot(&client, "root:src", first.clone()).await?;
        restore.latencies.push(t.elapsed());
        restore.ops += 1;
        restore.elapsed += t.elapsed();
    }
    // Fork: a new workspace, Ready, then the source's snapshot written into it — what
    // `kubectl ws fork` does.
    let fork = time(rounds, |round| {
        let client = &client;
        let snapshot_path = &snapshot_path;
        async move {
            let name = format!("fork-{round}");
            create_workspace(client, &name).await?;
            let snap = get(client, snapshot_path).await?;
            put_snapshot(client, &format!("root:{name}"), snap).await
        }
    })
    .await?;

    let row = |name: &str, s: Sample| Row {
        name: name.to_string(),
        better: Better::Latency,
        samples: vec![s],
    };
    let title = format!(
        "kplex bench snapshot (embedded store unless --etcd-servers; one workspace of {} objects; {rounds} rounds)",
        args.objects
    );
    let (snap_p50, fork_p50) = (snapshot.percentile(50.0), fork.percentile(50.0));
    print_table(
        &title,
        &["kplex"],
        &[
            row("snapshot (GET /snapshot)", snapshot),
            row("export (?format=yaml)", export),
            row("whole store (kplex snapshot save)", whole),
            row(&format!("restore into itself ({changed} changed)"), restore),
            row("fork (create + snapshot + restore)", fork),
        ],
    );
    let verdict = |d: Duration| if d <= GOAL { "met" } else { "missed" };
    println!("\ngoals (10,000 objects):");
    println!(
        "  snapshot ≤ 1 s                 {:>9}  {}",
        super::report::fmt_duration(snap_p50),
        verdict(snap_p50)
    );
    println!(
        "  fork ≤ 1 s                     {:>9}  {}",
        super::report::fmt_duration(fork_p50),
        verdict(fork_p50)
    );
    Ok(())
}

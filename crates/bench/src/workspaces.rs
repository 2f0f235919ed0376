//! `kplex-bench workspaces`: many workspaces in one kplex — how fast they are created (POST →
//! `Ready` as one watch sees it), what an empty workspace costs in memory and storage, and
//! whether a request inside one workspace gets slower as the number of workspaces grows.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use futures::StreamExt;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::client::Client;
use super::report::{Sample, concurrently, fmt_duration, fmt_rate};
use super::server::{KplexBinary, Server, cpu_time, expect};

#[derive(Args)]
pub struct WorkspacesBenchArgs {
    /// Workspaces to create.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Creations (POSTs) in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Create a tree three levels deep under root:bench instead of siblings.
    #[arg(long)]
    tree: bool,
    /// Run kplex on these etcd endpoints instead of the embedded store.
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    #[command(flatten)]
    kplex: KplexBinary,
    /// LIST requests per latency measurement.
    #[arg(long, default_value_t = 2000)]
    lists: u64,
}

/// Every created workspace lives under this one (type organization, child of root).
const BASE: &str = "root:bench";
const WORKSPACES: &str = "/apis/tenancy.kcp.io/v1alpha1/workspaces";
/// The LIST latency is measured first with this many workspaces present.
const FIRST: usize = 100;
/// How long without any workspace becoming Ready counts as a hang.
const STALL: Duration = Duration::from_secs(60);

/// One workspace to create; `parent` None = directly under BASE.
struct Node {
    parent: Option<usize>,
    name: String,
    path: String,
    children: Vec<usize>,
}

impl Node {
    fn parent_path<'a>(&self, nodes: &'a [Node]) -> &'a str {
        self.parent.map_or(BASE, |p| nodes[p].path.as_str())
    }
}

/// The workspaces in creation order (parents before children).
fn plan(count: usize, tree: bool) -> Vec<Node> {
    let leaf = |parent: Option<usize>, name: String, nodes: &[Node]| {
        let parent_path = parent.map_or(BASE, |p| nodes[p].path.as_str());
        Node {
            parent,
            path: format!("{parent_path}:{name}"),
            name,
            children: Vec::new(),
        }
    };
    let mut nodes: Vec<Node> = Vec::with_capacity(count);
    if !tree {
        for i in 0..count {
            nodes.push(leaf(None, format!("w{i}"), &nodes));
        }
        return nodes;
    }
    // Branching b with b + b² + b³ ≥ count; the last level takes the remainder, spread over
    // the second level, so the total is exactly `count`.
    let b = (1..)
        .find(|b: &usize| b + b * b + b * b * b >= count)
        .unwrap_or(1);
    let level1 = b.min(count);
    let level2 = (b * b).min(count - level1);
    let level3 = count - level1 - level2;
    let add = |nodes: &mut Vec<Node>, parent: Option<usize>, name: String| {
        let node = leaf(parent, name, nodes);
        let i = nodes.len();
        nodes.push(node);
        if let Some(p) = parent {
            nodes[p].children.push(i);
        }
    };
    for i in 0..level1 {
        add(&mut nodes, None, format!("a{i}"));
    }
    for j in 0..level2 {
        add(&mut nodes, Some(j % level1), format!("b{j}"));
    }
    for k in 0..level3 {
        add(
            &mut nodes,
            Some(level1 + k % level2.max(1)),
            format!("c{k}"),
        );
    }
    nodes
}

/// Creation state shared by the POSTing workers and the watch.
struct Queue {
    /// Workspaces whose parent is Ready and that are not yet POSTed.
    ready: VecDeque<usize>,
    posted: usize,
    /// Stop POSTing at this many (the current phase).
    limit: usize,
}

struct Shared {
    nodes: Vec<Node>,
    queue: Mutex<Queue>,
    changed: Notify,
    /// Nanoseconds since `epoch` at which each POST was sent.
    sent: Vec<AtomicU64>,
    epoch: Instant,
}

enum Next {
    /// The phase's limit is reached.
    Done,
    /// Every remaining workspace waits for its parent to become Ready.
    Wait,
    Post(usize),
}

impl Shared {
    fn next(&self) -> anyhow::Result<Next> {
        let mut q = self
            .queue
            .lock()
            .map_err(|_| anyhow::anyhow!("queue poisoned"))?;
        if q.posted >= q.limit {
            return Ok(Next::Done);
        }
        let Some(i) = q.ready.pop_front() else {
            return Ok(Next::Wait);
        };
        q.posted += 1;
        if q.posted == q.limit {
            // Wake workers waiting for parents so that they see the phase is over.
            self.changed.notify_waiters();
        }
        Ok(Next::Post(i))
    }
}

fn workspace(name: &str) -> Bytes {
    let obj = json!({"apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "Workspace", "metadata": {"name": name}});
    Bytes::from(serde_json::to_vec(&obj).unwrap_or_default())
}

/// POSTs workspaces until the phase's limit; returns each POST's latency.
async fn post_worker(shared: Arc<Shared>, client: Client) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    loop {
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let i = match shared.next()? {
            Next::Done => return Ok(latencies),
            Next::Wait => {
                tokio::time::timeout(STALL, changed)
                    .await
                    .map_err(|_| anyhow::anyhow!("no workspace became Ready in {STALL:?}"))?;
                continue;
            }
            Next::Post(i) => i,
        };
        let node = &shared.nodes[i];
        let path = format!("/clusters/{}{WORKSPACES}", node.parent_path(&shared.nodes));
        let t = Instant::now();
        shared.sent[i].store(shared.epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
        expect(
            &client,
            Method::POST,
            &path,
            workspace(&node.name),
            StatusCode::CREATED,
        )
        .await?;
        latencies.push(t.elapsed());
    }
}

/// Follows one watch until every workspace is Ready: records when each became Ready, and
/// releases its children for creation. Returns the Ready times (since `epoch`).
async fn observe(
    shared: Arc<Shared>,
    body: hyper::body::Incoming,
    ready_count: watch::Sender<usize>,
) -> anyhow::Result<Vec<Duration>> {
    let index: HashMap<&str, usize> = shared
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.path.as_str(), i))
        .collect();
    let mut ready_at: Vec<Option<Duration>> = vec![None; shared.nodes.len()];
    let mut count = 0;
    let mut frames = body.into_data_stream();
    let mut buf = Vec::new();
    while count < shared.nodes.len() {
        let chunk = match tokio::time::timeout(STALL, frames.next()).await {
            Ok(Some(chunk)) => chunk?,
            Ok(None) => anyhow::bail!("the watch ended after {count} Ready workspaces"),
            Err(_) => anyhow::bail!("no watch event in {STALL:?} ({count} Ready)"),
        };
        let now = shared.epoch.elapsed();
        buf.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            let line = &buf[start..start + pos];
            start += pos + 1;
            let event: Value = serde_json::from_slice(line)?;
            let obj = &event["object"];
            anyhow::ensure!(event["type"] != "ERROR", "watch error: {obj}");
            if obj.pointer("/status/phase").and_then(Value::as_str) != Some("Ready") {
                continue;
            }
            // spec.URL ends in the workspace's path: the same key for the flat and the
            // wildcard watch, with no need to map logical cluster names back to paths.
            let Some(i) = obj
                .pointer("/spec/URL")
                .and_then(Value::as_str)
                .and_then(|u| u.rsplit_once("/clusters/"))
                .and_then(|(_, path)| index.get(path).copied())
            else {
                continue;
            };
            if ready_at[i].is_some() {
                continue;
            }
            ready_at[i] = Some(now);
            count += 1;
            let children = &shared.nodes[i].children;
            if !children.is_empty() {
                if let Ok(mut q) = shared.queue.lock() {
                    q.ready.extend(children.iter().copied());
                }
                shared.changed.notify_waiters();
            }
            let _ = ready_count.send(count);
        }
        buf.drain(..start);
    }
    Ok(ready_at
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// Creates workspaces until `limit` exist and are Ready; returns the POST latencies and how
/// long it took.
async fn phase(
    shared: &Arc<Shared>,
    client: &Client,
    workers: usize,
    limit: usize,
    ready: &mut watch::Receiver<usize>,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let start = Instant::now();
    if let Ok(mut q) = shared.queue.lock() {
        q.limit = limit;
    }
    let mut tasks = Vec::new();
    for _ in 0..workers {
        tasks.push(tokio::spawn(post_worker(shared.clone(), client.clone())));
    }
    let mut posts = Vec::new();
    for t in tasks {
        posts.extend(t.await??);
    }
    loop {
        if *ready.borrow_and_update() >= limit {
            break;
        }
        tokio::time::timeout(STALL, ready.changed())
            .await
            .map_err(|_| anyhow::anyhow!("no workspace became Ready in {STALL:?}"))??;
    }
    Ok((posts, start.elapsed()))
}

/// `resourceVersion` of a list: the store revision, so its growth counts writes.
fn list_revision(body: &[u8]) -> u64 {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/metadata/resourceVersion")?
                .as_str()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Sequential LISTs of the (empty) ConfigMaps of one workspace, after a short warm-up.
async fn list_latency(client: &Client, path: &str, lists: u64) -> anyhow::Result<Sample> {
    let path = format!("/clusters/{path}/api/v1/namespaces/default/configmaps");
    for _ in 0..lists / 10 {
        expect(client, Method::GET, &path, Bytes::new(), StatusCode::OK).await?;
    }
    let c = client.clone();
    concurrently(1, lists, move |_, _| {
        let (c, path) = (c.clone(), path.clone());
        async move {
            expect(&c, Method::GET, &path, Bytes::new(), StatusCode::OK)
                .await
                .map(drop)
        }
    })
    .await
}

pub(super) async fn wait_ready(client: &Client, parent: &str, name: &str) -> anyhow::Result<()> {
    let path = format!("/clusters/{parent}{WORKSPACES}/{name}");
    let deadline = Instant::now() + STALL;
    loop {
        let body = expect(client, Method::GET, &path, Bytes::new(), StatusCode::OK).await?;
        let ws: Value = serde_json::from_slice(&body)?;
        if ws.pointer("/status/phase").and_then(Value::as_str) == Some("Ready") {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{parent}:{name} never became Ready"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub async fn run(args: WorkspacesBenchArgs) -> anyhow::Result<()> {
    let count = args.count.max(1);
    let conc = args.concurrency.max(1);
    let server = Server::start(&args.kplex, &args.etcd_servers).await?;
    let client = server.client(8).await?;
    let (parent, base) = BASE.rsplit_once(':').unwrap_or(("root", BASE));
    expect(
        &client,
        Method::POST,
        &format!("/clusters/{parent}{WORKSPACES}"),
        workspace(base),
        StatusCode::CREATED,
    )
    .await?;
    wait_ready(&client, parent, base).await?;
    // Let start-up work and the base workspace's follow-up reconciles finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = server.rss_kib();
    let store_before = server.store_bytes();
    let self_stat = std::path::Path::new("/proc/self/stat");
    let (server_cpu_before, bench_cpu_before) = (server.cpu_time(), cpu_time(self_stat));

    let nodes = plan(count, args.tree);
    let first_list = nodes[0].path.clone();
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            ready: nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.parent.is_none())
                .map(|(i, _)| i)
                .collect(),
            posted: 0,
            limit: 0,
        }),
        sent: nodes.iter().map(|_| AtomicU64::new(0)).collect(),
        nodes,
        changed: Notify::new(),
        epoch: Instant::now(),
    });
    // One watch sees every workspace become Ready: on the base for siblings, across all
    // logical clusters for a tree.
    let watch_cluster = if args.tree { "*" } else { BASE };
    let watch_path = format!("/clusters/{watch_cluster}{WORKSPACES}");
    let list = expect(
        &client,
        Method::GET,
        &watch_path,
        Bytes::new(),
        StatusCode::OK,
    )
    .await?;
    let revision_before = list_revision(&list);
    let watch_client = server.client(1).await?;
    let body = watch_client
        .stream(&format!(
            "{watch_path}?watch=true&resourceVersion={revision_before}"
        ))
        .await?;
    let (ready_tx, mut ready_rx) = watch::channel(0);
    let observer = tokio::spawn(observe(shared.clone(), body, ready_tx));

    let first = FIRST.min(count);
    eprintln!("creating {first} workspaces …");
    let (mut posts, mut creating) = phase(&shared, &client, conc, first, &mut ready_rx).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    eprintln!("LIST with {first} workspaces …");
    let list_first = list_latency(&client, &first_list, args.lists).await?;
    let rss_first = server.rss_kib();
    eprintln!("creating {} more …", count - first);
    let (more, took) = phase(&shared, &client, conc, count, &mut ready_rx).await?;
    posts.extend(more);
    creating += took;
    let ready_at = observer.await??;
    let (server_cpu, bench_cpu) = (
        server.cpu_time().saturating_sub(server_cpu_before),
        cpu_time(self_stat).saturating_sub(bench_cpu_before),
    );
    // Follow-up reconciles of the last workspaces finish before memory is read.
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!("LIST with {count} workspaces …");
    let list_all = list_latency(&client, &first_list, args.lists).await?;
    let rss_after = server.rss_kib();
    let store_after = server.store_bytes();
    let revision_after = list_revision(
        &expect(
            &client,
            Method::GET,
            &watch_path,
            Bytes::new(),
            StatusCode::OK,
        )
        .await?,
    );

    // What /metrics holds once every workspace exists: workspaces must add no series. The
    // first scrape also counts the stored objects and phases (at most every 10 s); the
    // second reads what the first counted.
    let scrape = || {
        expect(
            &client,
            Method::GET,
            "/metrics",
            Bytes::new(),
            StatusCode::OK,
        )
    };
    let t = Instant::now();
    let metrics = scrape().await?;
    let counting_scrape = t.elapsed();
    let t = Instant::now();
    scrape().await?;
    let cached_scrape = t.elapsed();
    let series = count_series(&metrics);

    let to_ready: Vec<Duration> = ready_at
        .iter()
        .zip(&shared.sent)
        .map(|(r, s)| r.saturating_sub(Duration::from_nanos(s.load(Ordering::Relaxed))))
        .collect();
    let to_ready = Sample {
        ops: count as u64,
        elapsed: creating,
        latencies: to_ready,
    };
    let posts = Sample {
        ops: count as u64,
        elapsed: creating,
        latencies: posts,
    };

    let shape = if args.tree {
        let levels = |d: usize| {
            shared
                .nodes
                .iter()
                .filter(|n| n.path.matches(':').count() == d + 1)
                .count()
        };
        format!(
            "tree under {BASE}: {} + {} + {} on three levels",
            levels(1),
            levels(2),
            levels(3)
        )
    } else {
        format!("{count} siblings under {BASE}")
    };
    println!(
        "\nkplex bench workspaces ({}; {shape}; {conc} concurrent creations)",
        if args.etcd_servers.is_empty() {
            "embedded store"
        } else {
            "etcd"
        }
    );
    let header = format!(
        "{:<44} | {:>10} {:>9} {:>9}",
        "workload", "ops", "p50", "p99"
    );
    println!("{header}\n{}", "-".repeat(header.chars().count()));
    let row = |name: &str, s: &Sample| {
        println!(
            "{name:<44} | {:>10} {:>9} {:>9}",
            fmt_rate(s.ops_per_sec()),
            fmt_duration(s.percentile(50.0)),
            fmt_duration(s.percentile(99.0))
        );
    };
    row("POST Workspace (answer 201)", &posts);
    row(
        &format!("POST → Ready (one watch), {count} workspaces"),
        &to_ready,
    );
    row(
        &format!("LIST in one workspace, {first} exist"),
        &list_first,
    );
    row(&format!("LIST in one workspace, {count} exist"), &list_all);

    let per_ws_kib = rss_after.saturating_sub(rss_before) as f64 / count as f64;
    println!(
        "RSS: before {}, with {first} workspaces {}, with {count} {} → {per_ws_kib:.1} KiB per workspace",
        mib(rss_before),
        mib(rss_first),
        mib(rss_after),
    );
    if count > first {
        println!(
            "     marginal ({first} → {count}): {:.1} KiB per workspace",
            rss_after.saturating_sub(rss_first) as f64 / (count - first) as f64
        );
    }
    if let (Some(before), Some(after)) = (store_before, store_after) {
        println!(
            "store.db: before {}, after {} → {:.1} KiB per workspace (history included: the embedded store keeps old revisions until compaction)",
            mib(before / 1024),
            mib(after / 1024),
            after.saturating_sub(before) as f64 / 1024.0 / count as f64
        );
    }
    println!(
        "store writes (revisions): {:.1} per workspace",
        revision_after.saturating_sub(revision_before) as f64 / count as f64
    );
    // Both processes share the machine's cores: this shows which one the time went to.
    println!(
        "CPU while creating ({:.1} s wall): kplex {:.1} s = {:.0} µs per workspace, this bench {:.1} s",
        creating.as_secs_f64(),
        server_cpu.as_secs_f64(),
        server_cpu.as_secs_f64() * 1e6 / count as f64,
        bench_cpu.as_secs_f64()
    );

    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let rate = to_ready.ops_per_sec();
    let p99 = to_ready.percentile(99.0);
    let drift = |p: f64| {
        list_all.percentile(p).as_secs_f64() / list_first.percentile(p).as_secs_f64().max(1e-9)
            - 1.0
    };
    println!("\ngoals");
    println!(
        "  creations/s ≥ 1,000                     {:>10}  {}",
        fmt_rate(rate),
        verdict(rate >= 1000.0)
    );
    println!(
        "  time-to-Ready p99 < 50 ms               {:>10}  {}",
        fmt_duration(p99),
        verdict(p99 < Duration::from_millis(50))
    );
    println!(
        "  RSS per workspace ≤ 16 KiB              {:>7.1} KiB  {}",
        per_ws_kib,
        verdict(per_ws_kib <= 16.0)
    );
    println!(
        "  LIST p50 at {count} within 10% of {first} {:>+9.1}%  {} (p99 {:+.1}%)",
        drift(50.0) * 100.0,
        verdict(drift(50.0) <= 0.10),
        drift(99.0) * 100.0
    );
    println!(
        "  /metrics series ≤ 5,000                 {series:>10}  {}",
        verdict(series <= 5000)
    );
    println!(
        "/metrics scrape at {count} workspaces: {} when it counts objects and phases (at most every 10 s), {} otherwise",
        fmt_duration(counting_scrape),
        fmt_duration(cached_scrape)
    );
    Ok(())
}

/// Series in a Prometheus text exposition: the lines that are not comments.
fn count_series(text: &[u8]) -> usize {
    String::from_utf8_lossy(text)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_the_lines_that_are_not_comments() {
        let text = b"# HELP a A.\n# TYPE a counter\na_total 1\nb{x=\"y\"} 2\n\n# EOF\n";
        assert_eq!(count_series(text), 2);
    }

    #[test]
    fn trees_have_exactly_count_nodes_parents_first() {
        for count in [1, 3, 100, 10_000] {
            let nodes = plan(count, true);
            assert_eq!(nodes.len(), count);
            for (i, n) in nodes.iter().enumerate() {
                assert!(n.parent.is_none_or(|p| p < i));
                assert!(n.path.starts_with(n.parent_path(&nodes)));
                assert!(n.path.matches(':').count() <= 4);
            }
        }
        let flat = plan(5, false);
        assert_eq!(flat[4].path, "root:bench:w4");
    }
}

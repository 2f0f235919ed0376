//! `kplex-bench apis`: an APIExport bound into many workspaces — how long until every binding
//! is Bound, then the provider's virtual workspace: a LIST across all consumers, and how fast
//! a consumer's write reaches the provider's wildcard watch.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use futures::StreamExt;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::api::sent_time;
use super::client::Client;
use super::report::{Better, Row, Sample, concurrently, fmt_duration, print_table};
use super::server::{KplexBinary, Server, expect};
use super::workspaces::wait_ready;

#[derive(Args)]
pub struct ApisBenchArgs {
    /// Consumer workspaces that bind the export.
    #[arg(long, default_value_t = 1000)]
    workspaces: usize,
    /// Requests in flight at once while setting up and binding.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Virtual-workspace LISTs to time.
    #[arg(long, default_value_t = 100)]
    lists: u64,
    /// Consumer writes whose delivery to the provider's watch is timed.
    #[arg(long, default_value_t = 2000)]
    events: u64,
    /// Run kplex on these etcd endpoints instead of the embedded store.
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    #[command(flatten)]
    kplex: KplexBinary,
}

pub(super) const WORKSPACES: &str = "/apis/tenancy.kcp.io/v1alpha1/workspaces";
const STALL: Duration = Duration::from_secs(60);

pub(super) fn body(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

pub(super) fn workspace(name: &str) -> Bytes {
    body(
        &json!({"apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "Workspace", "metadata": {"name": name}}),
    )
}

fn schema() -> Bytes {
    body(
        &json!({"apiVersion": "apis.kcp.io/v1alpha1", "kind": "APIResourceSchema",
        "metadata": {"name": "v1.widgets.example.dev"},
        "spec": {"group": "example.dev", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {"payload": {"type": "string"}}}}}}]}}),
    )
}

fn export() -> Bytes {
    body(
        &json!({"apiVersion": "apis.kcp.io/v1alpha2", "kind": "APIExport", "metadata": {"name": "widgets"},
        "spec": {"resources": [{"name": "widgets", "group": "example.dev", "schema": "v1.widgets.example.dev", "storage": {"crd": {}}}]}}),
    )
}

fn binding() -> Bytes {
    body(
        &json!({"apiVersion": "apis.kcp.io/v1alpha2", "kind": "APIBinding", "metadata": {"name": "widgets"},
        "spec": {"reference": {"export": {"path": "root:provider", "name": "widgets"}}}}),
    )
}

fn widget(name: &str, payload: &str) -> Bytes {
    body(&json!({"apiVersion": "example.dev/v1", "kind": "Widget",
        "metadata": {"name": name, "namespace": "default"}, "spec": {"payload": payload}}))
}

fn consumer(i: usize) -> String {
    format!("root:c{i}")
}

/// Runs `op(i)` for every i in 0..n, op `i` starting `i / rate` seconds after the first
/// whatever the others are doing: an open loop, as load from many users is — a slow answer
/// does not slow the load down (where [`each`], a closed loop, would wait for it).
pub(super) async fn paced<F, Fut>(rate: f64, n: usize, op: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        tasks.spawn(op(i));
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Runs `op(i)` for every i in 0..n, `conc` at a time.
pub(super) async fn each<F, Fut>(conc: usize, n: usize, op: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let op = Arc::new(op);
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (next, op) = (next.clone(), op.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(());
                }
                op(i).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Creates `n` consumer workspaces under root and waits until all are Ready.
async fn consumers(client: &Client, n: usize, conc: usize) -> anyhow::Result<()> {
    let c = client.clone();
    each(conc, n, move |i| {
        let c = c.clone();
        async move {
            let path = format!("/clusters/root{WORKSPACES}");
            expect(
                &c,
                Method::POST,
                &path,
                workspace(&format!("c{i}")),
                StatusCode::CREATED,
            )
            .await
            .map(drop)
        }
    })
    .await?;
    for i in 0..n {
        wait_ready(client, "root", &format!("c{i}")).await?;
    }
    Ok(())
}

/// The next complete watch event lines, and when they arrived.
pub(super) async fn next_lines(
    frames: &mut (impl futures::Stream<Item = Result<Bytes, hyper::Error>> + Unpin),
    buf: &mut Vec<u8>,
) -> anyhow::Result<(Vec<Vec<u8>>, Instant)> {
    let chunk = tokio::time::timeout(STALL, frames.next())
        .await
        .map_err(|_| anyhow::anyhow!("no watch event in {STALL:?}"))?
        .ok_or_else(|| anyhow::anyhow!("the watch ended"))??;
    let now = Instant::now();
    buf.extend_from_slice(&chunk);
    let mut lines = Vec::new();
    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
        lines.push(buf.drain(..=pos).collect());
    }
    Ok((lines, now))
}

/// Binds the export in every consumer; returns (time until all Bound, per-binding POST →
/// Bound latencies) as the wildcard watch of bindings sees them.
async fn bind_all(
    server: &Server,
    client: &Client,
    n: usize,
    conc: usize,
) -> anyhow::Result<(Duration, Sample)> {
    let watch = server.client(1).await?;
    let stream = watch
        .stream("/clusters/*/apis/apis.kcp.io/v1alpha2/apibindings?watch=true")
        .await?;
    let sent: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
    let observer = {
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut frames = stream.into_data_stream();
            let mut buf = Vec::new();
            let mut bound: HashMap<String, Instant> = HashMap::new();
            while bound.len() < n {
                let (lines, now) = next_lines(&mut frames, &mut buf).await?;
                for line in lines {
                    let event: Value = serde_json::from_slice(&line)?;
                    let obj = &event["object"];
                    if obj.pointer("/status/phase").and_then(Value::as_str) == Some("Bound")
                        && let Some(c) = obj
                            .pointer("/metadata/annotations/kcp.io~1cluster")
                            .and_then(Value::as_str)
                    {
                        bound.entry(c.to_string()).or_insert(now);
                    }
                }
            }
            let sent = sent.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            anyhow::Ok(
                bound
                    .into_iter()
                    .filter_map(|(c, at)| Some(at.saturating_duration_since(*sent.get(&c)?)))
                    .collect::<Vec<_>>(),
            )
        })
    };
    let start = Instant::now();
    let c = client.clone();
    let s = sent.clone();
    each(conc, n, move |i| {
        let (c, s) = (c.clone(), s.clone());
        async move {
            let path = format!(
                "/clusters/{}/apis/apis.kcp.io/v1alpha2/apibindings",
                consumer(i)
            );
            let t = Instant::now();
            let resp = expect(&c, Method::POST, &path, binding(), StatusCode::CREATED).await?;
            let created: Value = serde_json::from_slice(&resp)?;
            if let Some(cluster) = created
                .pointer("/metadata/annotations/kcp.io~1cluster")
                .and_then(Value::as_str)
                && let Ok(mut s) = s.lock()
            {
                s.insert(cluster.to_string(), t);
            }
            Ok(())
        }
    })
    .await?;
    let latencies = observer.await??;
    let all = start.elapsed();
    Ok((
        all,
        Sample {
            ops: n as u64,
            elapsed: all,
            latencies,
        },
    ))
}

/// Consumer writes → the provider's wildcard watch on the virtual workspace.
async fn event_latency(
    server: &Server,
    client: &Client,
    vw: &str,
    n: usize,
    events: u64,
) -> anyhow::Result<Sample> {
    let watch = server.client(1).await?;
    let stream = watch
        .stream(&format!(
            "{vw}/clusters/*/apis/example.dev/v1/widgets?watch=true"
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
                if let Some(sent) = sent_time(&line).filter(|s| *s > 0) {
                    latencies.push(
                        now.duration_since(epoch)
                            .saturating_sub(Duration::from_nanos(sent)),
                    );
                }
            }
        }
        anyhow::Ok(latencies)
    });
    // Let the watch's initial (rv=0) ADDED events of existing widgets (payload 0) go by.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    let c = client.clone();
    each(8, events as usize, move |i| {
        let c = c.clone();
        async move {
            let path = format!(
                "/clusters/{}/apis/example.dev/v1/namespaces/default/widgets",
                consumer(i % n)
            );
            let sent = epoch.elapsed().as_nanos().max(1).to_string();
            expect(
                &c,
                Method::POST,
                &path,
                widget(&format!("e{i}"), &sent),
                StatusCode::CREATED,
            )
            .await
            .map(drop)
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

pub async fn run(args: ApisBenchArgs) -> anyhow::Result<()> {
    let n = args.workspaces.max(1);
    let conc = args.concurrency.max(1);
    let server = Server::start(&args.kplex, &args.etcd_servers).await?;
    let client = server.client(8).await?;
    println!("setting up: a provider workspace and {n} consumer workspaces…");
    expect(
        &client,
        Method::POST,
        &format!("/clusters/root{WORKSPACES}"),
        workspace("provider"),
        StatusCode::CREATED,
    )
    .await?;
    wait_ready(&client, "root", "provider").await?;
    let provider = "/clusters/root:provider/apis/apis.kcp.io/v1alpha1";
    expect(
        &client,
        Method::POST,
        &format!("{provider}/apiresourceschemas"),
        schema(),
        StatusCode::CREATED,
    )
    .await?;
    expect(
        &client,
        Method::POST,
        "/clusters/root:provider/apis/apis.kcp.io/v1alpha2/apiexports",
        export(),
        StatusCode::CREATED,
    )
    .await?;
    consumers(&client, n, conc).await?;
    let deadline = Instant::now() + STALL;
    let export_cluster = loop {
        let e: Value = serde_json::from_slice(
            &expect(
                &client,
                Method::GET,
                "/clusters/root:provider/apis/apis.kcp.io/v1alpha2/apiexports/widgets",
                Bytes::new(),
                StatusCode::OK,
            )
            .await?,
        )?;
        if e.pointer("/status/identityHash")
            .and_then(Value::as_str)
            .is_some_and(|h| !h.is_empty())
        {
            break e
                .pointer("/metadata/annotations/kcp.io~1cluster")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the export never got an identity"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    let (all_bound, binds) = bind_all(&server, &client, n, conc).await?;
    println!(
        "\n{n} APIBindings: all Bound in {:.2} s (goal < 10 s); POST → Bound p50 {} p99 {}",
        all_bound.as_secs_f64(),
        fmt_duration(binds.percentile(50.0)),
        fmt_duration(binds.percentile(99.0))
    );

    // One widget per consumer, then LISTs of all of them through the provider's view.
    let c = client.clone();
    each(conc, n, move |i| {
        let c = c.clone();
        async move {
            let path = format!(
                "/clusters/{}/apis/example.dev/v1/namespaces/default/widgets",
                consumer(i)
            );
            expect(
                &c,
                Method::POST,
                &path,
                widget("w", "0"),
                StatusCode::CREATED,
            )
            .await
            .map(drop)
        }
    })
    .await?;
    let vw = format!("/services/apiexport/{export_cluster}/widgets");
    let list_path = format!("{vw}/clusters/*/apis/example.dev/v1/widgets");
    let first: Value = serde_json::from_slice(
        &expect(
            &client,
            Method::GET,
            &list_path,
            Bytes::new(),
            StatusCode::OK,
        )
        .await?,
    )?;
    let items = first["items"].as_array().map_or(0, Vec::len);
    anyhow::ensure!(items == n, "the view listed {items} widgets, want {n}");
    let c = client.clone();
    let lists = concurrently(1, args.lists, move |_, _| {
        let (c, p) = (c.clone(), list_path.clone());
        async move {
            expect(&c, Method::GET, &p, Bytes::new(), StatusCode::OK)
                .await
                .map(drop)
        }
    })
    .await?;
    let events = event_latency(&server, &client, &vw, n, args.events).await?;
    print_table(
        &format!("APIExport virtual workspace across {n} bound workspaces"),
        &["kplex"],
        &[
            Row {
                name: "APIBinding POST → Bound".into(),
                better: Better::Latency,
                samples: vec![binds],
            },
            Row {
                name: format!("view LIST ({n} widgets)"),
                better: Better::Latency,
                samples: vec![lists],
            },
            Row {
                name: "consumer create → view watch event".into(),
                better: Better::Latency,
                samples: vec![events],
            },
        ],
    );
    println!("\ngoals: all Bound < 10 s; cross-workspace event delivery p99 < 20 ms");
    Ok(())
}

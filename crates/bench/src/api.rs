//! `kplex-bench api`: kplex as kubectl and controllers see it — a `kplex start` child process
//! over TLS and HTTP/2 with keep-alive, loaded from inside this process. Baselines measured in
//! the same run: a bare hyper+rustls server answering a fixed body of the same size (the GET
//! ceiling of this machine), and the embedded store's own concurrent put rate (the CREATE
//! ceiling).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use futures::StreamExt;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use kplex_store::{EmbeddedOptions, EmbeddedStore, Store};
use serde_json::json;

use super::client::{Client, bare_server};
use super::report::{Sample, concurrently, fmt_duration, fmt_rate};
use super::server::{KplexBinary, Server, expect};

#[derive(Args)]
pub struct ApiBenchArgs {
    /// Run kplex on these etcd endpoints instead of the embedded store.
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    #[command(flatten)]
    kplex: KplexBinary,
    /// Scale every workload by this factor (1.0 = the documented sizes).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Concurrent requests.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Concurrent watch streams.
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
}

/// A ~1 KiB ConfigMap.
fn configmap(name: &str, payload: &str) -> Bytes {
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": "bench"}}, "data": {"payload": payload}});
    Bytes::from(serde_json::to_vec(&obj).unwrap_or_default())
}

struct Row {
    name: String,
    sample: Sample,
    baseline: Option<(String, f64)>,
}

pub async fn run(args: ApiBenchArgs) -> anyhow::Result<()> {
    let n = |v: f64| ((v * args.scale).max(1.0)) as u64;
    let conc = args.concurrency.max(1);
    let server = Server::start(&args.kplex, &args.etcd_servers).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = server.rss_kib();
    let client = server.client(8).await?;
    let cm_path = |ns: &str| format!("/api/v1/namespaces/{ns}/configmaps");
    let payload = "x".repeat(900);
    for ns in ["bench", "list1k", "list10k", "watch"] {
        let body = Bytes::from(serde_json::to_vec(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )?);
        expect(
            &client,
            Method::POST,
            "/api/v1/namespaces",
            body,
            StatusCode::CREATED,
        )
        .await?;
    }
    let mut rows = Vec::new();

    eprintln!("GET …");
    let target = expect(
        &client,
        Method::POST,
        &cm_path("bench"),
        configmap("target", &payload),
        StatusCode::CREATED,
    )
    .await?;
    let get_path = format!("{}/target", cm_path("bench"));
    let get_body = expect(
        &client,
        Method::GET,
        &get_path,
        Bytes::new(),
        StatusCode::OK,
    )
    .await?;
    let _ = target;
    let c = client.clone();
    let p = get_path.clone();
    let get = concurrently(conc, n(40_000.0), move |_, _| {
        let (c, p) = (c.clone(), p.clone());
        async move {
            expect(&c, Method::GET, &p, Bytes::new(), StatusCode::OK)
                .await
                .map(drop)
        }
    })
    .await?;
    let (bare_addr, bare_ca) = bare_server(get_body.clone()).await?;
    let bare_client = Client::connect(bare_addr, &bare_ca, None, 8).await?;
    let bare = concurrently(conc, n(40_000.0), move |_, _| {
        let c = bare_client.clone();
        async move {
            expect(&c, Method::GET, "/", Bytes::new(), StatusCode::OK)
                .await
                .map(drop)
        }
    })
    .await?;
    rows.push(Row {
        name: format!("GET one object ({} B)", get_body.len()),
        baseline: Some((
            "bare hyper+rustls".into(),
            get.ops_per_sec() / bare.ops_per_sec().max(1e-9),
        )),
        sample: get,
    });
    rows.push(Row {
        name: "GET, bare hyper+rustls server".into(),
        sample: bare,
        baseline: None,
    });

    eprintln!("CREATE …");
    let creates = n(10_000.0);
    let (c, path, pl) = (client.clone(), cm_path("bench"), payload.clone());
    let create = concurrently(conc, creates, move |w, i| {
        let (c, path, body) = (
            c.clone(),
            path.clone(),
            configmap(&format!("cm-{w}-{i}"), &pl),
        );
        async move {
            expect(&c, Method::POST, &path, body, StatusCode::CREATED)
                .await
                .map(drop)
        }
    })
    .await?;
    let store_put = store_put_rate(creates, conc, payload.len() + 300).await?;
    rows.push(Row {
        name: "CREATE".into(),
        baseline: Some((
            "embedded store put".into(),
            create.ops_per_sec() / store_put.ops_per_sec().max(1e-9),
        )),
        sample: create,
    });
    rows.push(Row {
        name: "embedded store put (same run)".into(),
        sample: store_put,
        baseline: None,
    });

    eprintln!("UPDATE …");
    let (c, path, pl) = (client.clone(), cm_path("bench"), payload.replace('x', "y"));
    let per_worker = creates / conc as u64;
    let update = concurrently(conc, creates, move |w, i| {
        let name = format!("cm-{w}-{}", i % per_worker.max(1));
        let (c, path, body) = (c.clone(), format!("{path}/{name}"), configmap(&name, &pl));
        async move {
            expect(&c, Method::PUT, &path, body, StatusCode::OK)
                .await
                .map(drop)
        }
    })
    .await?;
    rows.push(Row {
        name: "UPDATE (PUT)".into(),
        sample: update,
        baseline: None,
    });

    for (ns, count, reads) in [("list1k", 1_000u64, n(200.0)), ("list10k", 10_000, n(20.0))] {
        eprintln!("LIST of {count} …");
        let (c, path, pl) = (client.clone(), cm_path(ns), payload.clone());
        concurrently(conc, count, move |w, i| {
            let (c, path, body) = (
                c.clone(),
                path.clone(),
                configmap(&format!("o-{w}-{i}"), &pl),
            );
            async move {
                expect(&c, Method::POST, &path, body, StatusCode::CREATED)
                    .await
                    .map(drop)
            }
        })
        .await?;
        let (c, path) = (client.clone(), cm_path(ns));
        let list = concurrently(4, reads, move |_, _| {
            let (c, path) = (c.clone(), path.clone());
            async move {
                expect(&c, Method::GET, &path, Bytes::new(), StatusCode::OK)
                    .await
                    .map(drop)
            }
        })
        .await?;
        rows.push(Row {
            name: format!("LIST {} objects", count - count % conc as u64),
            sample: list,
            baseline: None,
        });
    }

    eprintln!("server-side apply …");
    rows.extend(apply_rows(&server, &client, conc, n(20_000.0), n(5_000.0)).await?);

    eprintln!("watch with {} watchers …", args.watchers);
    rows.push(Row {
        name: format!("watch delivery, {} watchers", args.watchers),
        sample: watch_latency(&server, &client, args.watchers, n(200.0)).await?,
        baseline: None,
    });
    let loaded_rss = server.rss_kib();

    println!(
        "\nkplex bench api ({}; TLS, HTTP/2, {conc} concurrent requests)",
        if args.etcd_servers.is_empty() {
            "embedded store"
        } else {
            "etcd"
        }
    );
    println!(
        "ready in {} after start; RSS idle {:.1} MiB, after the run {:.1} MiB",
        fmt_duration(server.started_in),
        idle_rss as f64 / 1024.0,
        loaded_rss as f64 / 1024.0
    );
    let header = format!(
        "{:<36} | {:>10} {:>9} {:>9} | {:<22} {:>7}",
        "workload", "ops", "p50", "p99", "vs", "ratio"
    );
    println!("{header}\n{}", "-".repeat(header.chars().count()));
    for r in rows {
        let (vs, ratio) = r
            .baseline
            .map(|(n, x)| (n, format!("{:.0}%", x * 100.0)))
            .unwrap_or_default();
        println!(
            "{:<36} | {:>10} {:>9} {:>9} | {:<22} {:>7}",
            r.name,
            fmt_rate(r.sample.ops_per_sec()),
            fmt_duration(r.sample.percentile(50.0)),
            fmt_duration(r.sample.percentile(99.0)),
            vs,
            ratio
        );
    }
    Ok(())
}

/// The embedded store's concurrent, durable put rate for values of `size` bytes.
async fn store_put_rate(total: u64, writers: usize, size: usize) -> anyhow::Result<Sample> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(EmbeddedStore::open(EmbeddedOptions::new(
        dir.path().join("db"),
    ))?);
    let value = Bytes::from(vec![b'x'; size]);
    concurrently(writers, total, move |w, i| {
        let (s, v) = (store.clone(), value.clone());
        async move { Ok(s.put(&format!("/bench/{w}/{i}"), v).await.map(drop)?) }
    })
    .await
}

/// `watchers` watch streams on one namespace; a writer updates a ConfigMap carrying its
/// send time; each watcher records write → event latency.
pub(super) async fn watch_latency(
    server: &Server,
    client: &Client,
    watchers: usize,
    events: u64,
) -> anyhow::Result<Sample> {
    let path = "/api/v1/namespaces/watch/configmaps";
    expect(
        client,
        Method::POST,
        path,
        configmap("ticker", "0"),
        StatusCode::CREATED,
    )
    .await?;
    let list: serde_json::Value = serde_json::from_slice(
        &expect(client, Method::GET, path, Bytes::new(), StatusCode::OK).await?,
    )?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let watch_client = server.client(16).await?;
    let epoch = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let body = watch_client
            .stream(&format!("{path}?watch=true&resourceVersion={rv}"))
            .await?;
        tasks.push(tokio::spawn(async move {
            let mut frames = body.into_data_stream();
            let mut buf = Vec::new();
            let mut latencies = Vec::with_capacity(events as usize);
            while (latencies.len() as u64) < events {
                let Ok(Some(Ok(chunk))) =
                    tokio::time::timeout(Duration::from_secs(30), frames.next()).await
                else {
                    break;
                };
                let now = epoch.elapsed();
                buf.extend_from_slice(&chunk);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    // Only the send time is needed: find it rather than parse the event, so
                    // that the client's own work stays out of the measured latency.
                    if let Some(sent) = sent_time(&line) {
                        latencies.push(now.saturating_sub(Duration::from_nanos(sent)));
                    }
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    for _ in 0..events {
        let sent = epoch.elapsed().as_nanos().to_string();
        expect(
            client,
            Method::PUT,
            &format!("{path}/ticker"),
            configmap("ticker", &sent),
            StatusCode::OK,
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut latencies = Vec::new();
    for t in tasks {
        let got = t.await?;
        anyhow::ensure!(
            got.len() as u64 == events,
            "a watcher saw {} of {events} events",
            got.len()
        );
        latencies.extend(got);
    }
    Ok(Sample {
        ops: latencies.len() as u64,
        elapsed: start.elapsed(),
        latencies,
    })
}

/// The nanosecond timestamp in `"payload":"<digits>"` of a watch event line.
pub(super) fn sent_time(line: &[u8]) -> Option<u64> {
    const NEEDLE: &[u8] = b"\"payload\":\"";
    let start = line.windows(NEEDLE.len()).position(|w| w == NEEDLE)? + NEEDLE.len();
    let digits = &line[start..];
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

const APPLY_PATH: &str = "/apis/apps/v1/namespaces/bench/deployments/applied?fieldManager=bench";

fn apply_path(name: &str) -> String {
    format!("/apis/apps/v1/namespaces/bench/deployments/{name}?fieldManager=bench")
}

/// A ~5 KB Deployment manifest (many env entries) for the server-side apply rows.
fn deployment(note: &str) -> Bytes {
    deployment_named("applied", note)
}

fn deployment_named(name: &str, note: &str) -> Bytes {
    let env: Vec<serde_json::Value> = (0..60).map(|i| json!({"name": format!("SETTING_{i:02}"), "value": format!("value-{i:02}-abcdefghijklmnopqrstuvwxyz")})).collect();
    let obj = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "annotations": {"note": note}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "applied"}},
            "template": {"metadata": {"labels": {"app": "applied"}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.25", "ports": [{"containerPort": 80}], "env": env}]}}},
    });
    Bytes::from(serde_json::to_vec(&obj).unwrap_or_default())
}

/// SSA rows: GET of a 5 KB Deployment, a no-op apply of it (must not write: same
/// resourceVersion afterwards), and applies that change it.
async fn apply_rows(
    server: &Server,
    client: &Client,
    conc: usize,
    reads: u64,
    changes: u64,
) -> anyhow::Result<Vec<Row>> {
    let apply = |c: Client, body: Bytes| async move {
        let (status, resp) = c
            .send(
                Method::PATCH,
                APPLY_PATH,
                Some("application/apply-patch+yaml"),
                body,
            )
            .await?;
        anyhow::ensure!(
            status.is_success(),
            "apply: {status}: {}",
            String::from_utf8_lossy(&resp)
        );
        Ok(resp)
    };
    let first = apply(client.clone(), deployment("fixed")).await?;
    let rv = |b: &Bytes| {
        serde_json::from_slice::<serde_json::Value>(b)
            .ok()
            .and_then(|v| v["metadata"]["resourceVersion"].as_str().map(String::from))
    };
    let before = rv(&first);
    let get_path = "/apis/apps/v1/namespaces/bench/deployments/applied";
    let c = client.clone();
    let cpu_before_get = server.cpu_time();
    let get = concurrently(conc, reads, move |_, _| {
        let c = c.clone();
        async move {
            expect(&c, Method::GET, get_path, Bytes::new(), StatusCode::OK)
                .await
                .map(drop)
        }
    })
    .await?;
    let get_cpu = server.cpu_time().saturating_sub(cpu_before_get);
    let c = client.clone();
    let cpu_before_noop = server.cpu_time();
    let noop = concurrently(conc, reads, move |_, _| {
        let c = c.clone();
        async move { apply(c, deployment("fixed")).await.map(drop) }
    })
    .await?;
    let noop_cpu = server.cpu_time().saturating_sub(cpu_before_noop);
    // The server's own work per request, without the bench client's (which shares the
    // machine and, for apply, encodes and sends a 5 KB body).
    let per_op = |cpu: Duration, s: &Sample| cpu.as_secs_f64() * 1e6 / s.ops.max(1) as f64;
    println!(
        "server CPU per request: GET 5 KB Deployment {:.0} µs, no-op apply {:.0} µs ({:.2}×)",
        per_op(get_cpu, &get),
        per_op(noop_cpu, &noop),
        per_op(noop_cpu, &noop) / per_op(get_cpu, &get).max(1e-9)
    );
    let after = rv(&expect(client, Method::GET, get_path, Bytes::new(), StatusCode::OK).await?);
    anyhow::ensure!(
        before == after,
        "a no-op apply wrote: resourceVersion {before:?} → {after:?}"
    );
    // Changes go to one Deployment per worker (as GitOps tools apply many objects): 64
    // writers on a single object would measure conflict retries instead.
    let c = client.clone();
    let changed = concurrently(conc, changes, move |w, i| {
        let c = c.clone();
        async move {
            let name = format!("applied-{w}");
            let (status, resp) = c
                .send(
                    Method::PATCH,
                    &apply_path(&name),
                    Some("application/apply-patch+yaml"),
                    deployment_named(&name, &i.to_string()),
                )
                .await?;
            anyhow::ensure!(
                status.is_success(),
                "apply: {status}: {}",
                String::from_utf8_lossy(&resp)
            );
            Ok(())
        }
    })
    .await?;
    let cost = noop.percentile(50.0).as_secs_f64() / get.percentile(50.0).as_secs_f64().max(1e-9);
    Ok(vec![
        Row {
            name: "GET 5 KB Deployment".into(),
            sample: get,
            baseline: None,
        },
        Row {
            name: "apply, unchanged (no write)".into(),
            baseline: Some(("GET, p50 latency".into(), cost)),
            sample: noop,
        },
        Row {
            name: "apply, changed".into(),
            sample: changed,
            baseline: None,
        },
    ])
}

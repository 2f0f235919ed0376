//! `kplex-bench store`: the store's own speed, and the embedded backend against etcd.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use futures::StreamExt;
use kplex_store::{
    EmbeddedOptions, EmbeddedStore, EtcdOptions, EtcdStore, KeyRange, RangeRequest, Store,
};

use super::report::{Better, Row, Sample, concurrently, print_table};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    Embedded,
    Etcd,
}

#[derive(Args)]
pub struct StoreBenchArgs {
    /// Which backend to measure; with --etcd-servers and no --backend, both side by side.
    #[arg(long, value_enum)]
    backend: Option<Backend>,
    /// etcd endpoints (comma-separated URLs).
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// Directory for the embedded store (default: a temporary directory, removed afterwards).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Scale every workload by this factor (1.0 = the documented sizes).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
}

struct Sizes {
    sequential_puts: u64,
    concurrent_puts: u64,
    gets: u64,
    range_keys: u64,
    range_reads: u64,
    watchers: usize,
    watch_events: u64,
}

impl Sizes {
    fn scaled(f: f64) -> Self {
        let n = |v: f64| (v * f).max(1.0) as u64;
        Self {
            sequential_puts: n(2_000.0),
            concurrent_puts: n(30_000.0),
            gets: n(100_000.0),
            range_keys: 10_000,
            range_reads: n(20.0),
            watchers: 1_000,
            watch_events: n(300.0),
        }
    }
}

const WRITERS: usize = 64;
const READERS: usize = 64;
const VALUE: usize = 256;

pub async fn run(args: StoreBenchArgs) -> anyhow::Result<()> {
    let backends = match (args.backend, args.etcd_servers.is_empty()) {
        (Some(Backend::Etcd), true) => anyhow::bail!("--backend etcd needs --etcd-servers"),
        (Some(b), _) => vec![b],
        (None, true) => vec![Backend::Embedded],
        (None, false) => vec![Backend::Embedded, Backend::Etcd],
    };
    let sizes = Sizes::scaled(args.scale);
    let mut columns = Vec::new();
    let mut results: Vec<Vec<Sample>> = Vec::new();
    for backend in backends {
        let (store, _dir) = open(backend, &args).await?;
        eprintln!("measuring {backend:?} …");
        columns.push(match backend {
            Backend::Embedded => "embedded",
            Backend::Etcd => "etcd",
        });
        results.push(measure(store, &sizes).await?);
    }
    let names = [
        ("sequential put".to_string(), Better::Throughput),
        (
            format!("put, {WRITERS} concurrent writers"),
            Better::Throughput,
        ),
        (
            format!("point get, {READERS} concurrent readers"),
            Better::Throughput,
        ),
        (
            format!("prefix range of {} keys", sizes.range_keys),
            Better::Throughput,
        ),
        (
            format!("watch delivery, {} watchers", sizes.watchers),
            Better::Latency,
        ),
    ];
    let rows: Vec<Row> = names
        .into_iter()
        .enumerate()
        .map(|(i, (name, better))| Row {
            name,
            better,
            samples: results.iter().map(|r| r[i].clone()).collect(),
        })
        .collect();
    print_table(
        &format!(
            "kplex bench store ({VALUE}-byte values; latencies per operation; watch: write → event)"
        ),
        &columns,
        &rows,
    );
    Ok(())
}

async fn open(
    backend: Backend,
    args: &StoreBenchArgs,
) -> anyhow::Result<(Arc<dyn Store>, Option<tempfile::TempDir>)> {
    match backend {
        Backend::Embedded => {
            let (dir, temp) = match &args.dir {
                Some(d) => (d.clone(), None),
                None => {
                    let t = tempfile::tempdir().context("create temporary directory")?;
                    (t.path().to_path_buf(), Some(t))
                }
            };
            let store = EmbeddedStore::open(EmbeddedOptions::new(dir.join("bench.db")))
                .context("open embedded store")?;
            Ok((Arc::new(store), temp))
        }
        Backend::Etcd => {
            let store = EtcdStore::connect(EtcdOptions::new(args.etcd_servers.clone()))
                .await
                .context("connect to etcd")?;
            Ok((Arc::new(store), None))
        }
    }
}

async fn measure(store: Arc<dyn Store>, sizes: &Sizes) -> anyhow::Result<Vec<Sample>> {
    // Each run gets its own prefix so a reused etcd does not skew counts.
    let base = format!("/bench/{}", std::process::id());
    let value = Bytes::from(vec![b'x'; VALUE]);
    let mut out = Vec::new();
    out.push(sequential_puts(&store, &base, &value, sizes.sequential_puts).await?);
    out.push(concurrent_puts(&store, &base, &value, sizes.concurrent_puts).await?);
    out.push(point_gets(&store, &base, sizes.gets).await?);
    out.push(prefix_ranges(&store, &base, &value, sizes.range_keys, sizes.range_reads).await?);
    out.push(watch_delivery(&store, &base, sizes.watchers, sizes.watch_events).await?);
    Ok(out)
}

async fn timed<F: std::future::Future<Output = kplex_store::Result<T>>, T>(
    f: F,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    f.await?;
    Ok(start.elapsed())
}

async fn sequential_puts(
    store: &Arc<dyn Store>,
    base: &str,
    value: &Bytes,
    n: u64,
) -> anyhow::Result<Sample> {
    let start = Instant::now();
    let mut latencies = Vec::with_capacity(n as usize);
    for i in 0..n {
        latencies.push(timed(store.put(&format!("{base}/seq/{i}"), value.clone())).await?);
    }
    Ok(Sample {
        ops: n,
        elapsed: start.elapsed(),
        latencies,
    })
}

async fn concurrent_puts(
    store: &Arc<dyn Store>,
    base: &str,
    value: &Bytes,
    n: u64,
) -> anyhow::Result<Sample> {
    let (store, base, value) = (store.clone(), base.to_string(), value.clone());
    concurrently(WRITERS, n, move |w, i| {
        let (store, key, value) = (store.clone(), format!("{base}/conc/{w}/{i}"), value.clone());
        async move { Ok(store.put(&key, value).await.map(drop)?) }
    })
    .await
}

async fn point_gets(store: &Arc<dyn Store>, base: &str, n: u64) -> anyhow::Result<Sample> {
    // Reads the keys the concurrent-put workload wrote.
    let (store, base) = (store.clone(), base.to_string());
    concurrently(READERS, n, move |w, i| {
        let (store, key) = (store.clone(), format!("{base}/conc/{w}/{}", i % 100));
        async move {
            match store.get(&key).await? {
                Some(_) => Ok(()),
                None => Err(anyhow::anyhow!("missing {key}")),
            }
        }
    })
    .await
}

async fn prefix_ranges(
    store: &Arc<dyn Store>,
    base: &str,
    value: &Bytes,
    keys: u64,
    reads: u64,
) -> anyhow::Result<Sample> {
    let prefix = format!("{base}/range/");
    let (s, p, v) = (store.clone(), prefix.clone(), value.clone());
    concurrently(WRITERS, keys, move |w, i| {
        let (s, key, v) = (s.clone(), format!("{p}{w:02}-{i:05}"), v.clone());
        async move { Ok(s.put(&key, v).await.map(drop)?) }
    })
    .await?;
    let start = Instant::now();
    let mut latencies = Vec::new();
    for _ in 0..reads {
        let t = Instant::now();
        let resp = store.range(RangeRequest::prefix(prefix.clone())).await?;
        latencies.push(t.elapsed());
        anyhow::ensure!(
            resp.count == keys - keys % WRITERS as u64,
            "range returned {} keys",
            resp.count
        );
    }
    Ok(Sample {
        ops: reads,
        elapsed: start.elapsed(),
        latencies,
    })
}

/// `watchers` watches on one prefix; each write carries its send time, and every watcher
/// records how long each event took to reach it.
async fn watch_delivery(
    store: &Arc<dyn Store>,
    base: &str,
    watchers: usize,
    events: u64,
) -> anyhow::Result<Sample> {
    let prefix = format!("{base}/watch/");
    let epoch = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let mut stream = store.watch(KeyRange::prefix(prefix.clone()), 0).await?;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(events as usize);
            while (latencies.len() as u64) < events {
                let event = match tokio::time::timeout(Duration::from_secs(30), stream.next()).await
                {
                    Ok(Some(Ok(e))) => e,
                    _ => break,
                };
                let mut sent = [0u8; 16];
                if event.kv.value.len() == 16 {
                    sent.copy_from_slice(&event.kv.value);
                }
                let sent = Duration::from_nanos(u128::from_le_bytes(sent) as u64);
                latencies.push(epoch.elapsed().saturating_sub(sent));
            }
            latencies
        }));
    }
    let start = Instant::now();
    for i in 0..events {
        let sent = epoch.elapsed().as_nanos().to_le_bytes();
        store
            .put(
                &format!("{prefix}{}", i % 10),
                Bytes::copy_from_slice(&sent),
            )
            .await?;
        // Paced: this row measures delivery latency, not write throughput.
        tokio::time::sleep(Duration::from_millis(2)).await;
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

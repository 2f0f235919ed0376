//! `kplex-bench`: benchmarks that print a table, with ratios against a baseline measured in
//! the same run. The API benchmarks start the `kplex` binary (`kplex start`) as a child
//! process: by default the one next to this executable in the same target directory (build
//! both with `cargo build --release -p kplex -p kplex-bench`), or the one `--kplex-binary`
//! names.

mod api;
mod apis;
mod client;
mod fleet;
mod placement;
mod replicas;
mod report;
mod server;
mod snapshot;
mod store;
mod workspaces;

use clap::{Parser, Subcommand};

// The same allocator as the `kplex` binary: the store benchmark and the in-process baselines
// (the embedded store's put rate, the bare hyper server) ran under it when they lived in
// `kplex bench`, and their figures are compared with kplex's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "kplex-bench",
    version,
    about = "Measure kplex on this machine and print a table"
)]
struct Cli {
    #[command(subcommand)]
    target: BenchTarget,
}

#[derive(Subcommand)]
enum BenchTarget {
    /// The key-value store: embedded, etcd, or both side by side.
    Store(store::StoreBenchArgs),
    /// The API server over TLS: GET, LIST, CREATE, UPDATE, watch; against baselines.
    Api(api::ApiBenchArgs),
    /// Many workspaces: creations/s, time to Ready, memory and storage per workspace.
    Workspaces(workspaces::WorkspacesBenchArgs),
    /// An APIExport bound into many workspaces: time to Bound, the provider's view.
    Apis(apis::ApisBenchArgs),
    /// Workloads placed on simulated clusters through `kplex syncer` processes.
    Placement(placement::PlacementBenchArgs),
    /// Placement across a fleet of simulated targets (in this process): scheduling,
    /// fan-out, aggregated status, failover.
    Fleet(fleet::FleetBenchArgs),
    /// One workspace at a time: snapshot, export, restore and fork.
    Snapshot(snapshot::SnapshotBenchArgs),
    /// Replicas on one etcd: write → watch across replicas, one more replica's memory,
    /// leader failover, throughput through 1 vs 3 replicas.
    Replicas(replicas::ReplicasBenchArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.target {
            BenchTarget::Store(args) => store::run(args).await,
            BenchTarget::Api(args) => api::run(args).await,
            BenchTarget::Workspaces(args) => workspaces::run(args).await,
            BenchTarget::Apis(args) => apis::run(args).await,
            BenchTarget::Placement(args) => placement::run(args).await,
            BenchTarget::Fleet(args) => fleet::run(args).await,
            BenchTarget::Snapshot(args) => snapshot::run(args).await,
            BenchTarget::Replicas(args) => replicas::run(args).await,
        }
    })
}

//! `kplex bench`: benchmarks that print a table, with ratios against a baseline measured in
//! the same run.

mod api;
mod apis;
mod client;
mod report;
mod server;
mod store;
mod workspaces;

use clap::{Args, Subcommand};

#[derive(Args)]
pub struct BenchArgs {
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
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.target {
        BenchTarget::Store(args) => store::run(args).await,
        BenchTarget::Api(args) => api::run(args).await,
        BenchTarget::Workspaces(args) => workspaces::run(args).await,
        BenchTarget::Apis(args) => apis::run(args).await,
    }
}

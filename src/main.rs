//! `kplex`: the control plane (`kplex start`). Its benchmarks are the `kplex-bench` binary
//! (`crates/bench`).

mod debug;
mod snapshot;
mod start;

use clap::{Parser, Subcommand};

// The server allocates and frees many small JSON values per request; glibc's malloc spent a
// quarter of the CPU of a workspace-creation run and kept freed memory fragmented.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "kplex",
    version,
    about = "A Kubernetes-compatible control plane for many logical clusters"
)]
struct Cli {
    /// How log lines are written to standard error: `text` for people, `json` (one object
    /// per line: timestamp, level, target, message and fields) for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Logs to standard error at `RUST_LOG`'s levels (default `info`), in `format`; with a
/// tracing configuration, also exports kplex's spans — every level to debug, whatever
/// `RUST_LOG` says, so each request has its span — to that collector.
fn init_logging(format: LogFormat, traces: Option<&kplex_telemetry::TracingConfig>) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Text => logs.with_filter(filter).boxed(),
        LogFormat::Json => logs.json().flatten_event(true).with_filter(filter).boxed(),
    };
    let spans = traces.map(|config| {
        kplex_telemetry::OtlpLayer::new(config).with_filter(tracing_subscriber::filter::filter_fn(
            |meta| {
                meta.is_span()
                    && meta.target().starts_with("kplex")
                    && *meta.level() <= tracing::Level::DEBUG
            },
        ))
    });
    tracing_subscriber::registry().with(logs).with(spans).init();
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane.
    Start(Box<start::StartArgs>),
    /// Sync the workloads placed on a SyncTarget to this cluster (the placement agent).
    Syncer(kplex_syncer::SyncerArgs),
    /// Simulate a cluster's nodes, kubelets and controllers (a test and demo tool).
    Sim(kplex_sim::SimArgs),
    /// Back up and restore the store (kplex's snapshot format).
    Snapshot(snapshot::SnapshotArgs),
    /// Tools for the test suite (not for users).
    #[command(hide = true)]
    Debug(debug::DebugArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let traces = match &cli.command {
        Command::Start(args) => args
            .limits_and_audit
            .tracing_config_file
            .as_deref()
            .map(kplex_telemetry::TracingConfig::load)
            .transpose()?,
        _ => None,
    };
    init_logging(cli.log_format, traces.as_ref());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Start(args) => start::run(*args).await,
            Command::Debug(args) => debug::run(args).await,
            Command::Syncer(args) => Ok(kplex_syncer::run(args).await?),
            Command::Sim(args) => Ok(kplex_sim::run(args).await?),
            Command::Snapshot(args) => snapshot::run(args).await,
        }
    })
}

//! `kplex snapshot save|restore|status`: backups of a kplex store in kplex's own snapshot
//! format (`proto/kplex/snapshot/v1/snapshot.proto`, crate `kplex-snapshot`).
//!
//! - `save FILE` from a running kplex (its `/snapshot`, for cluster admins; the kubeconfig
//!   says which) or, with `--root-directory`, from a stopped one's store;
//! - `restore FILE --root-directory DIR` writes the store of a new root directory (`kplex
//!   start --root-directory DIR` then serves every object at its resourceVersion);
//! - `status FILE` checks a file and prints what it holds.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kplex_store::{EmbeddedOptions, EmbeddedStore};

#[derive(Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    command: SnapshotCommand,
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Save the whole store, consistent at one revision, to FILE.
    Save {
        file: PathBuf,
        /// Read a stopped kplex's store in this root directory (embedded storage).
        #[arg(long, conflicts_with_all = ["kubeconfig", "context"])]
        root_directory: Option<PathBuf>,
        /// The kubeconfig of a cluster admin of the running kplex (default: $KUBECONFIG,
        /// then ~/.kube/config).
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Its context.
        #[arg(long)]
        context: Option<String>,
    },
    /// Write the store of a new root directory from FILE (embedded storage).
    Restore {
        file: PathBuf,
        /// The root directory to create it in (its store must not exist yet).
        #[arg(long)]
        root_directory: PathBuf,
    },
    /// Check FILE and print what it holds.
    Status { file: PathBuf },
}

const WRITTEN_BY: &str = concat!("kplex ", env!("CARGO_PKG_VERSION"));

pub async fn run(args: SnapshotArgs) -> anyhow::Result<()> {
    match args.command {
        SnapshotCommand::Save {
            file,
            root_directory: Some(root),
            ..
        } => save_stopped(&root, &file).await,
        SnapshotCommand::Save {
            file,
            kubeconfig,
            context,
            ..
        } => save_running(kubeconfig, context, &file).await,
        SnapshotCommand::Restore {
            file,
            root_directory,
        } => restore(&file, &root_directory),
        SnapshotCommand::Status { file } => {
            let snapshot = read(&file)?;
            println!("{}", describe(&snapshot));
            Ok(())
        }
    }
}

fn store_path(root: &Path) -> PathBuf {
    root.join("store.db")
}

async fn save_stopped(root: &Path, file: &Path) -> anyhow::Result<()> {
    let path = store_path(root);
    if !path.exists() {
        bail!("no kplex store at {}", path.display());
    }
    let store = EmbeddedStore::open(EmbeddedOptions::new(&path)).map_err(|e| match e {
        kplex_store::Error::InUse { .. } => anyhow::anyhow!(
            "a kplex is running on {}: save through it (kplex snapshot save FILE --kubeconfig …)",
            root.display()
        ),
        e => anyhow::anyhow!("opening {}: {e}", path.display()),
    })?;
    let snapshot = kplex_snapshot::take(&store, &root.display().to_string(), WRITTEN_BY).await?;
    store.close().await?;
    write(&snapshot, file)?;
    println!("saved {}", describe(&snapshot));
    Ok(())
}

async fn save_running(
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    file: &Path,
) -> anyhow::Result<()> {
    let options = kube::config::KubeConfigOptions {
        context,
        ..Default::default()
    };
    let mut config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &options).await?
        }
        None => kube::Config::from_kubeconfig(&options).await?,
    };
    // `/snapshot` is at the server's root, whatever workspace the kubeconfig points into.
    let server = config.cluster_url.clone();
    let origin = format!(
        "{}://{}",
        server.scheme_str().unwrap_or("https"),
        server.authority().map(|a| a.as_str()).unwrap_or_default()
    );
    config.cluster_url = origin.parse().context("the kubeconfig's server URL")?;
    let client = kube::Client::try_from(config)?;
    let request = http::Request::get("/snapshot").body(kube::client::Body::empty())?;
    let response = client.send(request).await?;
    let status = response.status();
    let body = response.into_body().collect_bytes().await?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|s| s.get("message").and_then(|m| m.as_str()).map(String::from))
            .unwrap_or_else(|| text.to_string());
        bail!("{origin}/snapshot: {status}: {message}");
    }
    // Checked before it is kept: a truncated transfer is refused, not saved.
    let mut snapshot = kplex_snapshot::read(&mut body.as_ref())?;
    snapshot.header.source = origin;
    write(&snapshot, file)?;
    println!("saved {}", describe(&snapshot));
    Ok(())
}

fn restore(file: &Path, root: &Path) -> anyhow::Result<()> {
    let snapshot = read(file)?;
    let revision = snapshot.revision();
    let written = EmbeddedStore::restore(
        &EmbeddedOptions::new(store_path(root)),
        revision,
        &snapshot.entries,
    )?;
    println!(
        "restored {written} keys at revision {revision} into {}; start it with `kplex start --root-directory {}`",
        root.display(),
        root.display()
    );
    Ok(())
}

fn read(file: &Path) -> anyhow::Result<kplex_snapshot::Snapshot> {
    let mut f = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    kplex_snapshot::read(&mut f).with_context(|| format!("reading {}", file.display()))
}

/// Written to a temporary file first, then renamed: an interrupted save leaves no
/// half-written FILE behind.
fn write(snapshot: &kplex_snapshot::Snapshot, file: &Path) -> anyhow::Result<()> {
    let partial = file.with_extension("partial");
    {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&partial)
                .with_context(|| format!("creating {}", partial.display()))?,
        );
        kplex_snapshot::write(snapshot, &mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    std::fs::rename(&partial, file).with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}

fn describe(s: &kplex_snapshot::Snapshot) -> String {
    let h = &s.header;
    let of = match h.logical_cluster.as_str() {
        "" => String::new(),
        cluster => format!(
            " of workspace {} (logical cluster {cluster}; restore it with kubectl ws restore)",
            h.workspace
        ),
    };
    format!(
        "snapshot{of}: revision {}, {} keys, {} bytes of values, from {}, written by {}, at {} (format {})",
        h.revision,
        s.entries.len(),
        s.entries.iter().map(|e| e.value.len()).sum::<usize>(),
        h.source,
        h.written_by,
        kplex_gocompat::format_rfc3339(h.created_unix),
        h.format_version
    )
}

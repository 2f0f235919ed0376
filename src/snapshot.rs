//! `kplex snapshot save|restore|status`: backups of a kplex store in kplex's own snapshot
//! format (`proto/kplex/snapshot/v1/snapshot.proto`, crate `kplex-snapshot`).
//!
//! - `save FILE` from a running kplex (its `/snapshot`, for cluster admins; the kubeconfig
//!   says which) or, with `--root-directory`, from a stopped one's store;
//! - `restore FILE --root-directory DIR` writes the store of a new root directory (`kplex
//!   start --root-directory DIR` then serves every object at its resourceVersion);
//! - `status FILE` checks a file and prints what it holds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use http_body_util::BodyExt;
use kplex_snapshot::proto::Header;
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
            let header = open(&file)?.header().clone();
            println!("{}", describe(&file, &header)?);
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
    let store = Arc::new(EmbeddedStore::open(EmbeddedOptions::new(&path)).map_err(
        |e| match e {
            kplex_store::Error::InUse { .. } => anyhow::anyhow!(
                "a kplex is running on {}: save through it (kplex snapshot save FILE --kubeconfig …)",
                root.display()
            ),
            e => anyhow::anyhow!("opening {}: {e}", path.display()),
        },
    )?);
    let mut pages =
        kplex_snapshot::Pages::open(store.clone(), &root.display().to_string(), WRITTEN_BY).await?;
    let mut partial = Partial::create(file)?;
    let filled = async {
        while let Some(chunk) = pages.next_chunk().await? {
            partial.out.write_all(&chunk)?;
        }
        anyhow::Ok(pages.header().clone())
    }
    .await;
    let saved = partial.keep(filled);
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().await?;
    }
    let header = saved?;
    println!("saved {}", describe(file, &header)?);
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
    let mut body = response.into_body();
    if !status.is_success() {
        let body = body.collect_bytes().await?;
        let text = String::from_utf8_lossy(&body);
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|s| s.get("message").and_then(|m| m.as_str()).map(String::from))
            .unwrap_or_else(|| text.to_string());
        bail!("{origin}/snapshot: {status}: {message}");
    }
    // The server streams the file; it lands on disk as it comes, then is copied through
    // the checker into FILE with this URL as its source: a truncated transfer is refused,
    // not saved, and memory holds one piece at a time.
    let download = file.with_extension("download");
    let received = async {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&download)
                .with_context(|| format!("creating {}", download.display()))?,
        );
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                out.write_all(data.as_ref())?;
            }
        }
        out.flush()?;
        anyhow::Ok(())
    }
    .await;
    let copied = match received {
        Ok(()) => copy_checked(&download, file, &origin),
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&download);
    let header = copied.with_context(|| format!("saving {origin}/snapshot"))?;
    println!("saved {}", describe(file, &header)?);
    Ok(())
}

/// Copies the snapshot `from` into `to`, entry by entry through the checks of
/// [`kplex_snapshot::Reader`], with `source` as its header's source.
fn copy_checked(from: &Path, to: &Path, source: &str) -> anyhow::Result<Header> {
    let mut reader = open(from)?;
    let mut header = reader.header().clone();
    header.source = source.to_string();
    let mut partial = Partial::create(to)?;
    let mut copy = || {
        let mut encoder = kplex_snapshot::Encoder::new(&header);
        let mut buf = Vec::new();
        encoder.start(&header, &mut buf);
        while let Some(kv) = reader.next_entry()? {
            encoder.entry(&kv, &mut buf)?;
            partial.out.write_all(&buf)?;
            buf.clear();
        }
        encoder.finish(&mut buf)?;
        partial.out.write_all(&buf)?;
        anyhow::Ok(header.clone())
    };
    let copied = copy();
    partial.keep(copied)
}

fn restore(file: &Path, root: &Path) -> anyhow::Result<()> {
    let mut reader = open(file)?;
    let revision = reader.header().revision;
    let written = EmbeddedStore::restore_from(
        &EmbeddedOptions::new(store_path(root)),
        revision,
        &mut reader,
    )
    .with_context(|| format!("restoring {}", file.display()))?;
    println!(
        "restored {written} keys at revision {revision} into {}; start it with `kplex start --root-directory {}`",
        root.display(),
        root.display()
    );
    Ok(())
}

fn open(file: &Path) -> anyhow::Result<kplex_snapshot::Reader<std::io::BufReader<std::fs::File>>> {
    let f = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    kplex_snapshot::Reader::open(f).with_context(|| format!("reading {}", file.display()))
}

/// A file written beside its destination, made durable and renamed onto it only once it
/// is whole: an interrupted save leaves no half-written FILE behind.
struct Partial {
    path: PathBuf,
    file: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

impl Partial {
    fn create(file: &Path) -> anyhow::Result<Self> {
        let path = file.with_extension("partial");
        let out = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        Ok(Self {
            path,
            file: file.to_path_buf(),
            out,
        })
    }

    /// Renames it onto its destination if `filled` succeeded; removes it otherwise.
    fn keep<T>(self, filled: anyhow::Result<T>) -> anyhow::Result<T> {
        let Self { path, file, out } = self;
        let done = filled.and_then(|t| {
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&path, &file).with_context(|| format!("writing {}", file.display()))?;
            Ok(t)
        });
        if done.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        done
    }
}

/// Checks `file` through to its trailer and says what it holds.
fn describe(file: &Path, h: &Header) -> anyhow::Result<String> {
    let mut reader = open(file)?;
    let (mut keys, mut bytes) = (0u64, 0usize);
    while let Some(kv) = reader.next_entry()? {
        keys += 1;
        bytes += kv.value.len();
    }
    let of = match h.logical_cluster.as_str() {
        "" => String::new(),
        cluster => format!(
            " of workspace {} (logical cluster {cluster}; restore it with kubectl ws restore)",
            h.workspace
        ),
    };
    Ok(format!(
        "snapshot{of}: revision {}, {keys} keys, {bytes} bytes of values, from {}, written by {}, at {} (format {})",
        h.revision,
        h.source,
        h.written_by,
        kplex_gocompat::format_rfc3339(h.created_unix),
        h.format_version
    ))
}

//! Hidden helpers the test suite drives as child processes.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use clap::{Args, Subcommand};
use kplex_store::{EmbeddedOptions, EmbeddedStore, Precondition, Store, TxnOutcome};

#[derive(Args)]
pub struct DebugArgs {
    #[command(subcommand)]
    command: DebugCommand,
}

#[derive(Subcommand)]
enum DebugCommand {
    /// Write to an embedded store from many concurrent writers until killed, printing
    /// `ack <key> <value length>` once each write is acknowledged (the crash-safety test reads it).
    StoreWriter {
        #[arg(long)]
        path: PathBuf,
        #[arg(long, default_value_t = 64)]
        writers: usize,
        /// Distinguishes the keys of one run from the previous runs on the same store.
        #[arg(long)]
        run: u32,
    },
    /// Print a service-account token signed with the server's key (`<root>/sa.key`) that
    /// expired an hour ago, for the ServiceAccount JSON on stdin (tests of token expiry,
    /// which a TokenRequest cannot give: its minimum lifetime is ten minutes).
    ExpiredToken {
        #[arg(long)]
        root_directory: PathBuf,
        /// The logical cluster the token is bound to.
        #[arg(long)]
        cluster: String,
    },
}

pub async fn run(args: DebugArgs) -> anyhow::Result<()> {
    match args.command {
        DebugCommand::StoreWriter { path, writers, run } => store_writer(path, writers, run).await,
        DebugCommand::ExpiredToken {
            root_directory,
            cluster,
        } => expired_token(&root_directory, &cluster),
    }
}

fn expired_token(root: &std::path::Path, cluster: &str) -> anyhow::Result<()> {
    use kplex_apiserver::serviceaccount::{ISSUER, Signer, claims};
    let sa: serde_json::Value =
        serde_json::from_reader(std::io::stdin()).context("a ServiceAccount as JSON on stdin")?;
    let signer = Signer::load_or_create(&root.join("sa.key"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let token = signer.sign(&claims(
        cluster,
        &sa,
        &[ISSUER.to_string()],
        now - 7200,
        3600,
    ))?;
    println!("{token}");
    Ok(())
}

/// A self-checking value for `/crash/<run>/<writer>/<seq>`: 8 bytes of FNV-1a over the rest,
/// then a payload whose size varies so writes cross page boundaries. A torn or mixed-up value
/// fails the check.
fn crash_value(run: u32, writer: usize, seq: u64) -> Bytes {
    let len = 16 + ((seq as usize * 7919 + writer * 131) % 12_000);
    let seed = (run as u64) << 40 | (writer as u64) << 24 | seq;
    let payload: Vec<u8> = (0..len)
        .map(|i| (seed.wrapping_mul(31).wrapping_add(i as u64) % 251) as u8)
        .collect();
    let mut value = fnv1a(&payload).to_le_bytes().to_vec();
    value.extend_from_slice(&payload);
    Bytes::from(value)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}

async fn store_writer(path: PathBuf, writers: usize, run: u32) -> anyhow::Result<()> {
    let store = Arc::new(EmbeddedStore::open(EmbeddedOptions::new(&path)).context("open store")?);
    let (acks, mut acked) = tokio::sync::mpsc::unbounded_channel::<(String, usize)>();
    for writer in 0..writers {
        let (store, acks) = (store.clone(), acks.clone());
        tokio::spawn(async move {
            let latest = format!("/crash/latest/{run}/{writer}");
            for seq in 0.. {
                let key = format!("/crash/{run}/{writer}/{seq}");
                let value = crash_value(run, writer, seq);
                let len = value.len();
                if store.create(&key, value).await.is_err() {
                    return;
                }
                // A CAS-updated key per writer: after a crash it must hold at least the last
                // acknowledged sequence number.
                let current = store.get(&latest).await.ok().flatten();
                let precondition = current.map_or(Precondition::Absent, |kv| {
                    Precondition::ModRevision(kv.mod_revision)
                });
                let op = kplex_store::Op::put(&latest, Bytes::from(seq.to_string()), precondition);
                if !matches!(store.txn(op).await, Ok(TxnOutcome::Succeeded { .. })) {
                    return;
                }
                if acks.send((key, len)).is_err() {
                    return;
                }
            }
        });
    }
    drop(acks);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    while let Some((key, len)) = acked.recv().await {
        writeln!(out, "ack {key} {len}")?;
        out.flush()?;
    }
    Ok(())
}

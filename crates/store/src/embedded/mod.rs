//! The embedded backend: redb underneath, etcd's revision model on top.
//!
//! Tables (all written in one redb transaction per batch, so they never disagree):
//! - `kv`:   key → current record (create/mod revision, version, value);
//! - `log`:  revision → event (the change and the value it replaced), the history that
//!   watches replay and past-revision reads undo; trimmed by compaction;
//! - `meta`: the current and compacted revisions.
//!
//! Writes go through one writer thread that takes every request waiting in its queue and
//! commits them in a single durable transaction (group commit): concurrent writers share one
//! fsync, and each still gets its own revision. Reads open redb read transactions directly.

mod codec;
mod read;
mod watch;
mod writer;
mod written;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use async_trait::async_trait;
use redb::{Database, TableDefinition};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::{
    Error, Event, KeyRange, KeyValue, Op, RangeRequest, RangeResponse, Result, Revision, Store,
    StoreStatus, TxnOutcome, WatchStream,
};

const KV: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";

/// The default of [`EmbeddedOptions::cache_bytes`].
pub const DEFAULT_CACHE_BYTES: usize = 32 << 20;

/// How to open an [`EmbeddedStore`].
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// The database file (created if absent).
    pub path: PathBuf,
    /// Most writes committed in one transaction.
    pub max_batch: usize,
    /// Memory redb may keep for pages it read or wrote. Its own default (1 GiB) lets every
    /// page written stay resident, so RSS would grow with the store; the kernel's page
    /// cache holds the file anyway, so a modest cache costs few reads.
    pub cache_bytes: usize,
}

impl EmbeddedOptions {
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            max_batch: 1024,
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// State shared by the handle, the writer thread and the watchers.
struct Shared {
    db: Database,
    path: PathBuf,
    /// Committed batches of events, in revision order, for live watchers.
    events: broadcast::Sender<Arc<[Event]>>,
    /// Mirrors `meta` after each commit, so watchers can check compaction without a read.
    compacted: AtomicI64,
    /// Where the log has writes, so resumed watches skip replays that would find nothing.
    written: written::Written,
    /// Told of every commit: (writes in the batch, time to apply and make it durable).
    commit_observer: std::sync::OnceLock<CommitObserver>,
}

/// See [`EmbeddedStore::observe_commits`].
pub type CommitObserver = Box<dyn Fn(usize, std::time::Duration) + Send + Sync>;

/// The durable, pure-Rust default backend.
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    commands: mpsc::Sender<writer::Command>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// Holds the database open while it runs: `close` waits for it.
    indexer: Option<std::thread::JoinHandle<()>>,
}

impl EmbeddedStore {
    /// Opens (or creates) the store. A store that was killed mid-write opens as of its last
    /// durable commit; redb repairs its own file on open.
    pub fn open(options: EmbeddedOptions) -> Result<Self> {
        if let Some(dir) = options.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Engine(format!("create {dir:?}: {e}")))?;
        }
        // redb locks the file: a second process gets `DatabaseAlreadyOpen` before reading
        // or writing anything.
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(&options.path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => Error::InUse {
                    path: options.path.display().to_string(),
                },
                e => e.into(),
            })?;
        let (revision, compacted) = writer::init_tables(&db)?;
        let (events, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            db,
            path: options.path.clone(),
            events,
            compacted: AtomicI64::new(compacted),
            written: written::Written::new(revision),
            commit_observer: std::sync::OnceLock::new(),
        });
        // The log is indexed in the background: opening does not wait for a read of the
        // whole history, and until the index is complete every replay reads the log.
        let indexing = Arc::downgrade(&shared);
        let indexer = std::thread::Builder::new()
            .name("store-log-index".into())
            .spawn(move || written::index_log(indexing))
            .map_err(|e| Error::Engine(format!("spawn the log indexer: {e}")))?;
        let (commands, rx) = mpsc::channel(options.max_batch * 4);
        let writer = writer::spawn(shared.clone(), rx, revision, options.max_batch.max(1))?;
        Ok(Self {
            shared,
            commands,
            writer: Some(writer),
            indexer: Some(indexer),
        })
    }

    /// Calls `observer` after every commit with the batch's size (group commit: the queued
    /// writes made durable together) and how long it took; for `/metrics`. Set once; a
    /// second observer is ignored.
    pub fn observe_commits(&self, observer: CommitObserver) {
        let _ = self.shared.commit_observer.set(observer);
    }

    /// Creates a store at `options.path` holding exactly `kvs` (each with its own revisions)
    /// at revision `revision`: what a snapshot restore writes. The history before `revision`
    /// is not restored, so it is also the compacted revision (a watch from an older one
    /// answers 410, as after etcd's `snapshot restore`). Refuses a file that holds anything.
    /// Returns how many keys it wrote.
    pub fn restore(options: &EmbeddedOptions, revision: Revision, kvs: &[KeyValue]) -> Result<u64> {
        Self::restore_from(
            options,
            revision,
            kvs.iter().map(|kv| Ok::<_, Error>(kv.clone())),
        )
    }

    /// [`Self::restore`] from entries read one at a time (a snapshot file streamed from
    /// disk). Everything is written in one transaction, committed only once the last entry
    /// came without an error: an entry refused, or an error from `kvs` (a damaged file
    /// found at its end), leaves no file behind.
    pub fn restore_from<E: std::fmt::Display>(
        options: &EmbeddedOptions,
        revision: Revision,
        kvs: impl IntoIterator<Item = std::result::Result<KeyValue, E>>,
    ) -> Result<u64> {
        let store_path = options.path.display().to_string();
        if options.path.exists() {
            return Err(Error::Engine(format!(
                "{store_path} exists: restore into a new root directory"
            )));
        }
        if let Some(dir) = options.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Engine(format!("create {dir:?}: {e}")))?;
        }
        let written = Self::write_restored(options, revision, kvs);
        if written.is_err() {
            let _ = std::fs::remove_file(&options.path);
        }
        written
    }

    fn write_restored<E: std::fmt::Display>(
        options: &EmbeddedOptions,
        revision: Revision,
        kvs: impl IntoIterator<Item = std::result::Result<KeyValue, E>>,
    ) -> Result<u64> {
        let db = Database::builder()
            .set_cache_size(options.cache_bytes)
            .create(&options.path)?;
        writer::init_tables(&db)?;
        let txn = db.begin_write()?;
        let mut written = 0;
        {
            let mut kv_table = txn.open_table(KV)?;
            for kv in kvs {
                let kv = kv.map_err(|e| Error::Engine(e.to_string()))?;
                if kv.mod_revision > revision || kv.create_revision > kv.mod_revision {
                    return Err(Error::Engine(format!(
                        "key {} has revisions {}..{} beyond the store's {revision}",
                        kv.key, kv.create_revision, kv.mod_revision
                    )));
                }
                kv_table.insert(kv.key.as_str(), codec::encode_kv(&kv).as_slice())?;
                written += 1;
            }
            let mut meta = txn.open_table(META)?;
            meta.insert(META_REVISION, revision)?;
            meta.insert(META_COMPACTED, revision)?;
        }
        txn.commit()?;
        Ok(written)
    }

    /// Waits until every acknowledged write is on disk and the writer has stopped. Watches
    /// still open keep the file open until they are dropped.
    pub async fn close(mut self) -> Result<()> {
        let (reply, done) = oneshot::channel();
        if self
            .commands
            .send(writer::Command::Close(reply))
            .await
            .is_ok()
        {
            let _ = done.await;
        }
        for (handle, what) in [
            (self.writer.take(), "writer"),
            (self.indexer.take(), "log indexer"),
        ] {
            let Some(handle) = handle else { continue };
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
                .map_err(|_| Error::Internal(format!("{what} thread panicked")))?;
        }
        Ok(())
    }

    async fn submit<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T>>) -> writer::Command,
    ) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        // Point reads are a few microseconds; only scans go to the blocking pool.
        if req.range.end.is_none() {
            return read::range(&self.shared.db, &req);
        }
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || read::range(&shared.db, &req))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    }

    async fn txn(&self, op: Op) -> Result<TxnOutcome> {
        self.submit(|reply| writer::Command::Write(op, reply)).await
    }

    async fn watch(&self, range: KeyRange, start_revision: Revision) -> Result<WatchStream> {
        watch::start(&self.shared, range, start_revision)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.submit(|reply| writer::Command::Compact(revision, reply))
            .await
    }

    fn written_since(&self, range: &KeyRange, revision: Revision) -> Option<bool> {
        Some(self.shared.written.since(range, revision))
    }

    async fn status(&self) -> Result<StoreStatus> {
        let (revision, compacted_revision) = read::revisions(&self.shared.db)?;
        let db_size = std::fs::metadata(&self.shared.path)
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(StoreStatus {
            revision,
            compacted_revision,
            db_size,
        })
    }
}

fn load_compacted(shared: &Shared) -> Revision {
    shared.compacted.load(Ordering::Acquire)
}

//! The MVCC key-value store under kplex, with etcd v3's semantics.
//!
//! Every object of every logical cluster lives in one [`Store`]. The contract is etcd's:
//! one store-wide revision bumped by every write, per-key create/mod revision and version,
//! compare-and-swap transactions, ranges at past revisions, watches that resume from a
//! revision, and compaction of old history.
//!
//! Two backends implement it:
//! - [`EmbeddedStore`]: durable, pure Rust (redb underneath), the default;
//! - [`EtcdStore`]: a real etcd cluster, for production and scale-out.
//!
//! Architecture invariant: nothing in this crate knows about Kubernetes. Keys are opaque
//! strings, values opaque bytes.

mod embedded;
mod error;
mod etcd;
mod keys;
mod types;

pub use embedded::{CommitObserver, EmbeddedOptions, EmbeddedStore};
pub use error::{Error, Result};
pub use etcd::{EtcdOptions, EtcdStore, EtcdTls};
pub use keys::prefix_end;
pub use types::{
    Event, EventKind, KeyRange, KeyValue, Op, Precondition, RangeRequest, RangeResponse, Revision,
    StoreStatus, TxnOutcome, WatchStream,
};

use async_trait::async_trait;
use bytes::Bytes;

/// The key-value contract every backend fulfils (etcd v3's KV + Watch + Compact).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads a key or a range of keys, at the current revision or at a past one.
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse>;

    /// Applies one write if its precondition holds; on a failed compare, returns the key's
    /// current value so callers can answer a conflict without a second read.
    async fn txn(&self, op: Op) -> Result<TxnOutcome>;

    /// Streams every change in `range` from `start_revision` (inclusive; 0 = from now on).
    /// Fails with [`Error::Compacted`] when that revision is no longer in history.
    async fn watch(&self, range: KeyRange, start_revision: Revision) -> Result<WatchStream>;

    /// Drops history older than `revision`: later reads and watches before it fail with
    /// [`Error::Compacted`].
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// Current revision, compacted revision and size on disk.
    async fn status(&self) -> Result<StoreStatus>;

    /// Whether a key in `range` may have been written at `revision` or later, if the
    /// backend can tell without a read (the embedded store keeps an index of where it
    /// writes; etcd cannot: None). A write being committed counts as written.
    fn written_since(&self, _range: &KeyRange, _revision: Revision) -> Option<bool> {
        None
    }

    /// Reads one key at the current revision.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let resp = self.range(RangeRequest::key(key)).await?;
        Ok(resp.kvs.into_iter().next())
    }

    /// Writes `value` under `key` unconditionally.
    async fn put(&self, key: &str, value: Bytes) -> Result<Revision> {
        match self.txn(Op::put(key, value, Precondition::None)).await? {
            TxnOutcome::Succeeded { revision, .. } => Ok(revision),
            TxnOutcome::Failed { .. } => Err(Error::Internal("unconditional put failed".into())),
        }
    }

    /// Creates `key` only if it does not exist.
    async fn create(&self, key: &str, value: Bytes) -> Result<TxnOutcome> {
        self.txn(Op::put(key, value, Precondition::Absent)).await
    }

    /// Replaces `key` only if its mod revision is still `mod_revision`.
    async fn update(&self, key: &str, value: Bytes, mod_revision: Revision) -> Result<TxnOutcome> {
        self.txn(Op::put(key, value, Precondition::ModRevision(mod_revision)))
            .await
    }

    /// Deletes `key` if `precondition` holds.
    async fn delete(&self, key: &str, precondition: Precondition) -> Result<TxnOutcome> {
        self.txn(Op::delete(key, precondition)).await
    }
}

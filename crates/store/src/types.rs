use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

use crate::keys::prefix_end;

/// A store-wide revision: every write bumps it by one. 0 means "none" / "current".
pub type Revision = i64;

/// One key with its value and revisions, as etcd reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision of the write that created this incarnation of the key.
    pub create_revision: Revision,
    /// Revision of the last write to the key.
    pub mod_revision: Revision,
    /// Number of writes since creation (1 on creation).
    pub version: i64,
}

/// A set of keys: one key, or the half-open interval `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    pub start: String,
    /// `None`: just `start`. `Some("\0")`: every key from `start` on (etcd's convention).
    pub end: Option<String>,
}

impl KeyRange {
    pub fn key(key: impl Into<String>) -> Self {
        Self {
            start: key.into(),
            end: None,
        }
    }

    /// Every key that starts with `prefix`. Callers that mean a directory end it with `/`,
    /// so that `/a/b/` never covers `/a/bc`.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        let start = prefix.into();
        let end = prefix_end(&start);
        Self {
            start,
            end: Some(end),
        }
    }

    pub fn between(start: impl Into<String>, end: impl Into<String>) -> Self {
        Self {
            start: start.into(),
            end: Some(end.into()),
        }
    }

    /// Whether `key` falls in this range.
    pub fn contains(&self, key: &str) -> bool {
        match &self.end {
            None => key == self.start,
            Some(end) if end == "\0" => key >= self.start.as_str(),
            Some(end) => key >= self.start.as_str() && key < end.as_str(),
        }
    }
}

/// A read of a key range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeRequest {
    pub range: KeyRange,
    /// At most this many keys (0 = no limit). `count` still counts them all.
    pub limit: usize,
    /// Read as of this revision (0 = current).
    pub revision: Revision,
    /// Return only `count`, no keys.
    pub count_only: bool,
    /// Stop at the first key past `limit`: `count` is then no more than `limit + 1`, and
    /// `more` still says whether keys remain. For readers that page through a range and
    /// need no total (a store that counts by scanning would otherwise read every later
    /// key for every page).
    pub skip_count: bool,
}

impl RangeRequest {
    pub fn key(key: impl Into<String>) -> Self {
        Self::new(KeyRange::key(key))
    }

    pub fn prefix(prefix: impl Into<String>) -> Self {
        Self::new(KeyRange::prefix(prefix))
    }

    pub fn new(range: KeyRange) -> Self {
        Self {
            range,
            limit: 0,
            revision: 0,
            count_only: false,
            skip_count: false,
        }
    }

    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub fn at_revision(mut self, revision: Revision) -> Self {
        self.revision = revision;
        self
    }

    pub fn count_only(mut self) -> Self {
        self.count_only = true;
        self
    }
}

/// The answer to a [`RangeRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResponse {
    /// Matching keys in key order, at most `limit` of them.
    pub kvs: Vec<KeyValue>,
    /// The revision the read was served at (the store's current revision for a current read).
    pub revision: Revision,
    /// How many keys the range holds in all, ignoring `limit`.
    pub count: u64,
    /// Whether keys beyond `limit` exist.
    pub more: bool,
}

/// The condition a write needs to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Always apply.
    None,
    /// Apply only if the key does not exist (create).
    Absent,
    /// Apply only if the key exists with this mod revision (update / delete).
    ModRevision(Revision),
    /// Apply only if the key exists (any revision).
    Exists,
}

/// One write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Put {
        key: String,
        value: Bytes,
        precondition: Precondition,
    },
    Delete {
        key: String,
        precondition: Precondition,
    },
}

impl Op {
    pub fn put(key: impl Into<String>, value: Bytes, precondition: Precondition) -> Self {
        Op::Put {
            key: key.into(),
            value,
            precondition,
        }
    }

    pub fn delete(key: impl Into<String>, precondition: Precondition) -> Self {
        Op::Delete {
            key: key.into(),
            precondition,
        }
    }

    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key, .. } => key,
        }
    }

    pub fn precondition(&self) -> Precondition {
        match self {
            Op::Put { precondition, .. } | Op::Delete { precondition, .. } => *precondition,
        }
    }
}

/// The result of a conditional write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOutcome {
    /// The write happened at `revision`. `kv` is the key as written (`None` for a delete);
    /// `prev` is what it replaced.
    Succeeded {
        revision: Revision,
        kv: Option<KeyValue>,
        prev: Option<KeyValue>,
    },
    /// The precondition failed; `current` is the key as it is now (`None` if absent).
    Failed { current: Option<KeyValue> },
}

impl TxnOutcome {
    pub fn succeeded(&self) -> bool {
        matches!(self, TxnOutcome::Succeeded { .. })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// The key after the change. For a delete: empty value, `mod_revision` = the delete's
    /// revision, create revision and version 0 (as etcd reports it).
    pub kv: KeyValue,
    /// The key before the change, if it existed.
    pub prev: Option<KeyValue>,
}

impl Event {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A stream of changes in revision order. An `Err` item ends it (e.g. [`crate::Error::Compacted`]
/// when a slow watcher fell behind compaction).
pub type WatchStream = Pin<Box<dyn Stream<Item = crate::Result<Event>> + Send>>;

/// Facts about a store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStatus {
    pub revision: Revision,
    pub compacted_revision: Revision,
    /// Bytes on disk (the database file).
    pub db_size: u64,
}

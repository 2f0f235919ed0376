use crate::Revision;

/// What can go wrong talking to a store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The requested revision is older than the compacted revision (the API server answers
    /// 410 Gone).
    #[error("required revision {requested} has been compacted (compacted at {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The requested revision is newer than anything the store has written.
    #[error("required revision {requested} is a future revision (current {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    /// A key or request the store cannot accept.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The embedded store's file is open in another process: one process owns it.
    #[error(
        "the embedded store {path} is in use by another kplex process; replicas share one etcd \
         (--etcd-servers), not an embedded store"
    )]
    InUse { path: String },
    /// The embedded engine failed (I/O, corruption).
    #[error("embedded store: {0}")]
    Engine(String),
    /// etcd could not be reached or answered with an error.
    #[error("etcd: {0}")]
    Etcd(String),
    /// The store is shutting down.
    #[error("store is closed")]
    Closed,
    /// A broken invariant inside the store.
    #[error("internal store error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Self {
        Error::Engine(e.to_string())
    }
}

macro_rules! engine_error {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Engine(e.to_string())
            }
        }
    )*};
}
engine_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

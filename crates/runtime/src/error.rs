//! The crate's one error type.

use std::time::Duration;

/// What can go wrong in the runtime itself. A reconciler's own errors are its own type
/// ([`crate::Reconciler::Error`]): the controller handles them (logs once, backs off), so
/// they never become this type.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A lease configuration that could not work (see [`crate::LeaseConfig`]).
    #[error("invalid lease configuration: {0}")]
    InvalidConfig(String),
    /// The store failed while reading or writing the Lease.
    #[error("{action} lease {key}: {source}")]
    Store {
        action: &'static str,
        key: String,
        #[source]
        source: kplex_store::Error,
    },
    /// The stored object at the Lease key could not be decoded or is not a Lease.
    #[error("decoding lease {key}: {reason}")]
    Malformed { key: String, reason: String },
    /// Encoding the Lease for storage failed.
    #[error("encoding lease {key}: {reason}")]
    Encode { key: String, reason: String },
    /// A store call did not answer in time.
    #[error("{action} lease {key}: no answer within {after:?}")]
    Timeout {
        action: &'static str,
        key: String,
        after: Duration,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

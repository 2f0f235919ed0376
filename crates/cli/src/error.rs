//! Errors of the plugins; their Display is what `Error: ...` prints, as cobra does for kcp.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A message kcp's plugin prints verbatim (not found, denied, bad usage, ...).
    #[error("{0}")]
    Msg(String),
    /// A Kubernetes Status from the server; like client-go, its message is the error text.
    #[error("{}", .0.message)]
    Status(Box<ApiStatus>),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },
    #[error("{0}")]
    Transport(String),
    /// Writing to stdout or stderr failed (e.g. a closed pipe).
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    pub fn msg(s: impl Into<String>) -> Self {
        Error::Msg(s.into())
    }

    /// The HTTP code of a server Status, if this is one.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Status(s) => Some(s.code),
            _ => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Error::Status(s) => Some(s.reason.as_str()),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    pub fn is_forbidden(&self) -> bool {
        self.code() == Some(403)
    }

    pub fn is_already_exists(&self) -> bool {
        // As client-go: by reason only (a 409 may also be a Conflict).
        self.reason() == Some("AlreadyExists")
    }
}

/// The parts of a metav1.Status the plugins look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiStatus {
    pub code: u16,
    pub reason: String,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

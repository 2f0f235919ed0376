//! kubectl plugins for kplex: `kubectl ws` and `kubectl create workspace` for workspaces, and
//! `kubectl kplex` (bind APIExports, permission claims, CRD snapshots), behaving like kcp's
//! plugins (github.com/kcp-dev/cli).

pub mod apis;
pub mod cli;
pub mod crd_snapshot;
pub mod error;
pub mod flags;
pub mod kubeconfig;
pub mod path;
pub mod server;
pub mod workload;
pub mod workspace;
mod workspace_copy;

pub use apis::kplex_main;
pub use cli::{create_workspace_main, ws_main};
pub use error::{Error, Result};

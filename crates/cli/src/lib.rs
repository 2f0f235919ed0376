//! kubectl plugins for kplex workspaces: `kubectl ws` and `kubectl create workspace`,
//! behaving like kcp's plugins (github.com/kcp-dev/cli).

pub mod cli;
pub mod client;
pub mod error;
pub mod kubeconfig;
pub mod path;
pub mod workspace;

pub use cli::{create_workspace_main, ws_main};
pub use error::{Error, Result};

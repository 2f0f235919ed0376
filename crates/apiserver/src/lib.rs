//! The Kubernetes API server of kplex: HTTP, and the assembly of the features.
//!
//! Request path: [`server`] (TLS, HTTP) → [`chain`] (parse with [`request`], then one stage
//! per file under [`filters`]) → [`endpoints`] (discovery, OpenAPI, virtual resources, the
//! generic [`registry`]) → the store. Features plug in at assembly (`start.rs`): kinds,
//! admission plugins, virtual resources and workspaces, authorization and create hooks, and
//! controllers (one store watch feeds them all).

// ApiError is a Kubernetes Status with details: large, but only on the error path.
#![allow(clippy::result_large_err)]

pub mod admission;
pub mod audit;
pub mod body;
pub mod chain;
pub mod discovery;
pub mod encryption;
pub mod endpoints;
pub mod filters;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod pki;
pub mod request;
pub mod response;
pub mod server;
pub mod storage_metrics;
pub mod store_metrics;
pub mod table;
pub mod workspace_metrics;
pub mod workspace_snapshot;

mod start;

pub use kplex_apis as apis;
pub use kplex_auth::{authn, authz, https, oidc, serviceaccount};
pub use kplex_builtins as builtins;
pub use kplex_registry::{catalog, crd, object, quota, registry, served};
pub use kplex_tenancy as tenancy;

pub use start::{Config, Running, StartError, StoreConfig, kinds, start};

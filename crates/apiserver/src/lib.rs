//! The Kubernetes API server of kplex.
//!
//! Request path (each step a module): [`server`] (TLS, HTTP) → [`handler`] (parse with
//! [`request`], authenticate, resolve the logical cluster against [`served`], dispatch) →
//! [`discovery`] / [`openapi`] / the generic [`registry`] (driven by [`catalog`]
//! descriptions; objects kept as bytes by [`object`]) → the store. [`controllers`] run
//! in-process over the same store.

// ApiError is a Kubernetes Status with details: large, but only on the error path.
#![allow(clippy::result_large_err)]

pub mod admission;
pub mod audit;
pub mod body;
pub mod chain;
pub mod controllers;
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
pub mod table;

mod start;

pub use kplex_apis as apis;
pub use kplex_auth::{authn, authz, https, oidc, serviceaccount};
pub use kplex_builtins as builtins;
pub use kplex_registry::{catalog, crd, object, quota, registry, served};
pub use kplex_tenancy as tenancy;

pub use start::{Config, Running, StartError, StoreConfig, kinds, start};

//! Who may do what: authentication (client certificates, static and admin tokens, OIDC ID
//! tokens, service-account JWTs), impersonation, per-workspace RBAC with escalation checks,
//! and the reviews that answer questions about them (TokenReview, SelfSubjectReview, access
//! reviews, TokenRequest) — as plugins the server assembles: admission plugins and virtual
//! resources. Nothing here serves HTTP; [`https`] is the client for outgoing calls (OIDC
//! discovery, webhooks).

// ApiError is a Kubernetes Status with details: large, but only on the error path.
#![allow(clippy::result_large_err)]

pub mod authn;
pub mod authz;
pub mod https;
pub mod oidc;
pub mod serviceaccount;

// The registry's modules under the names this crate's code uses.
pub(crate) use kplex_registry::{codec, object, registry, served};

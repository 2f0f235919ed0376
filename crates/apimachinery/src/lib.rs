//! Kubernetes object rules independent of HTTP and storage.
//!
//! - [`status`]: `metav1.Status` errors with kube-apiserver's codes, reasons and messages.
//! - [`names`]: name/label/annotation/ObjectMeta validation and `generateName` suffixes.
//! - [`selector`]: label and field selectors (parsing, matching, canonical strings).
//! - [`continue_token`]: kube-apiserver's opaque list `continue` tokens.
//! - [`patch`]: JSON patch, JSON merge patch and strategic merge patch.
//! - [`patch_schema`]: the built-in types' patch strategies and list types.
//! - [`meta`]: tolerant accessors for `metadata` on JSON objects, and timestamps.
//! - [`user`]: who made a request (`UserInfo`) and the groups with built-in meaning.

// ApiError mirrors metav1.Status field for field and is the error type the
// API server passes around; boxing it would only move the allocation.
#![allow(clippy::result_large_err)]

pub mod continue_token;
pub mod meta;
pub mod names;
pub mod patch;
pub mod patch_schema;
pub mod selector;
pub mod status;
pub mod user;
pub mod version;

pub use status::{ApiError, BadValue, StatusCause, StatusDetails};
pub use user::UserInfo;

//! Structural OpenAPI schemas for custom resources, as kube-apiserver uses them.
//!
//! Works purely on [`serde_json::Value`]; no I/O, no HTTP.
//!
//! - [`Schema`]: a compiled structural schema ([`Schema::compile`] checks the CRD
//!   structural rules), with [`Schema::validate`], [`Schema::prune`],
//!   [`Schema::default`] and [`Schema::lookup`] plus read-only accessors.
//! - [`FieldError`] / [`ErrorType`]: errors in Kubernetes' `field.Error` format.
//! - [`SchemaType`], [`ListType`], [`MapType`], [`ValidationRule`]: schema vocabulary.
//! - [`jsonpath`]: the JSONPath subset of printer columns, and table cell formatting.
//!
//! `x-kubernetes-validations` (CEL) rules are parsed and kept, never evaluated.

mod compile;
mod default;
mod error;
mod formats;
pub mod jsonpath;
mod meta;
mod prune;
mod schema;
mod validate;

pub use error::{ErrorType, FieldError};
pub use schema::{ListType, MapType, Schema, SchemaType, ValidationRule};

//! OpenAPI documents for kplex: what `kubectl explain`, `kubectl apply`
//! (client-side strategic merge patch) and field-validation detection read
//! from `/openapi/v3` and `/openapi/v2`, plus structural schemas of built-in
//! kinds for server-side validation.
//!
//! - [`ResourceSpec`]: one served resource (built-in or custom).
//! - [`group_version_document`]: the OpenAPI 3.0 document of one group-version.
//! - [`v2_document`]: a Swagger 2.0 document covering all resources.
//! - [`v2_protobuf`]: that document as gnostic's `openapi.v2.Document`
//!   protobuf, for `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
//!   ([`V2_PROTOBUF_DEPRECATED`]), answered as [`V2_PROTOBUF`].
//! - [`document_hash`]: stable hash for `?hash=` in the `/openapi/v3` listing.
//! - [`builtin_schema`]: a `$ref`-free structural schema of a built-in kind,
//!   for `kplex_schema::Schema::compile`.
//!
//! # Where the built-in schemas come from
//!
//! `examples/generate.rs` (feature `generate`) walks the `k8s-openapi` crate's
//! `schemars` impls (schemars 1.x, OpenAPI 3 settings: kube's schema names,
//! `$ref`s to `#/components/schemas/`, described references as `allOf`) and
//! writes `data/builtin.json` (~0.5 MB: the kinds and the ~300 schemas they
//! reach). The library compiles that file in and parses it on first use
//! (a few milliseconds), adding `x-kubernetes-patch-*` and
//! `x-kubernetes-list-*` from `kplex_apimachinery::patch_schema` and the
//! `x-kubernetes-group-version-kind` tags. So normal builds do not compile
//! k8s-openapi with schemars (a heavy crate), and server start does no work.
//! Regenerate with
//! `cargo run -p kplex-openapi --example generate --features generate`
//! (about 35 s for k8s-openapi with schemars in a dev build) and commit the
//! data file with the change; `cargo test -p kplex-openapi --features
//! generate` checks the committed file matches.

mod builtin;
#[cfg(feature = "generate")]
#[doc(hidden)]
pub mod generate;
mod hash;
mod inline;
mod times;
mod v2;
mod v2proto;
mod v3;

pub use times::{Step, TimeField, time_fields};

use serde_json::Value;

/// One served resource, as the document generator needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSpec {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    /// Has a `/status` subresource.
    pub status: bool,
    /// Has a `/scale` subresource.
    pub scale: bool,
    /// Accepts `application/strategic-merge-patch+json` (built-ins only).
    pub strategic_patch: bool,
    /// The CRD version's `openAPIV3Schema`; `None` means a built-in kind,
    /// whose schema comes from the built-in data.
    pub schema: Option<Value>,
}

/// The OpenAPI 3.0 document for one group-version (`""` is the core group),
/// covering the `resources` of that group-version (others are ignored).
pub fn group_version_document(group: &str, version: &str, resources: &[ResourceSpec]) -> Value {
    v3::document(group, version, resources)
}

/// A Swagger 2.0 document with the paths and definitions of all `resources`.
pub fn v2_document(resources: &[ResourceSpec]) -> Value {
    v2::document(resources)
}

/// The content type of [`v2_protobuf`] answers, as kube-openapi's handler
/// sends it (Go's `mime.ParseMediaType`, which kubectl runs on the response,
/// rejects the `@` of [`V2_PROTOBUF_DEPRECATED`]). Also accepted in `Accept`.
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The `Accept` media type client-go (kubectl) sends for `/openapi/v2`;
/// answer it with [`v2_protobuf`] and content type [`V2_PROTOBUF`].
pub const V2_PROTOBUF_DEPRECATED: &str =
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// A Swagger 2.0 JSON document (such as [`v2_document`]'s) encoded as the
/// protobuf message `openapi.v2.Document` of google/gnostic: the body
/// kube-apiserver sends for `/openapi/v2` with content type [`V2_PROTOBUF`]
/// when asked for it or [`V2_PROTOBUF_DEPRECATED`]. Plain message
/// bytes, no envelope. Unknown keys and values of the wrong JSON type are
/// skipped; never panics. See the `v2proto` module docs for the fields covered.
pub fn v2_protobuf(doc: &Value) -> Vec<u8> {
    v2proto::document(doc)
}

/// A stable upper-case hex hash of a document, for `?hash=`.
pub fn document_hash(doc: &Value) -> String {
    hash::document_hash(doc)
}

/// The structural, fully inlined OpenAPI schema of a built-in kind, or `None`
/// for kinds without built-in data. Root `metadata` is `{type: object}`
/// (kplex-schema treats it as ObjectMeta); nested ObjectMeta (pod templates)
/// is spelled out. No `required` or descriptions: see the module docs of the
/// inliner.
pub fn builtin_schema(group: &str, version: &str, kind: &str) -> Option<Value> {
    inline::builtin_schema(group, version, kind)
}

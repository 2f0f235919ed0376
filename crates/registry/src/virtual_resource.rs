//! Resources answered without being stored: kube's access and token reviews, TokenRequest
//! (`serviceaccounts/token`), kcp's `workspaces/~`. A feature hands the server its
//! [`VirtualResource`]s; the server asks each whether it answers a request before the
//! generic registry sees it, and renders the [`Answer`] in the format the client wants.

use std::sync::Arc;

use async_trait::async_trait;
use kplex_apimachinery::{ApiError, UserInfo};
use serde_json::Value;

use crate::catalog::ResourceDesc;

/// A request to a virtual resource.
#[derive(Clone, Copy, Debug)]
pub struct VirtualRequest<'a> {
    /// `None`: the wildcard (`/clusters/*`) view.
    pub cluster: Option<&'a str>,
    /// The resource addressed (its description serves discovery like any other).
    pub desc: &'a Arc<ResourceDesc>,
    /// kube's verb: `create`, `get`, `list`, …
    pub verb: &'a str,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    pub subresource: Option<&'a str>,
    pub user: &'a UserInfo,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// What a virtual resource answers: an HTTP code and an object. The server renders it as
/// the addressed resource's kind when it is of that kind (tables, protobuf), else as plain
/// JSON, YAML or protobuf.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub code: u16,
    pub object: Value,
}

#[async_trait]
pub trait VirtualResource: Send + Sync + 'static {
    /// Whether this answers `req` (decided from what it addresses, before any decoding).
    fn handles(&self, req: &VirtualRequest<'_>) -> bool;

    /// Answers the request (wrong verbs included: it says which it takes).
    async fn serve(&self, req: &VirtualRequest<'_>) -> Result<Answer, ApiError>;
}

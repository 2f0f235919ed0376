//! Virtual workspaces: purpose-built views of logical clusters under
//! `/services/<name>/<prefix…>/clusters/<cluster|*>/…` (kcp's APIExport view, its
//! initializing workspaces, a syncer's view of its sync target). A feature hands the server
//! its [`VirtualWorkspace`]s; the server parses the URL generically, asks the virtual
//! workspace named in it how to serve each request ([`Decision`]), and serves it through
//! the same discovery and resource endpoints as any request — or renders its [`Answer`].
//!
//! A prefix segment cannot be `clusters`: the URL splits at the first such segment.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use kplex_apimachinery::{ApiError, UserInfo};

use crate::catalog::ResourceDesc;
use crate::registry::Predicate;
pub use crate::virtual_resource::Answer;

/// The resource a request addresses (kube's RequestInfo for a resource URL).
#[derive(Clone, Copy, Debug)]
pub struct ResourceRef<'a> {
    /// kube's verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, …
    pub verb: &'a str,
    /// "" for the core group.
    pub group: &'a str,
    pub version: &'a str,
    /// The plural (with `:<identityHash>` for a bound resource across clusters).
    pub resource: &'a str,
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    pub subresource: Option<&'a str>,
}

/// One request to a virtual workspace.
#[derive(Clone, Copy, Debug)]
pub struct VirtualWorkspaceRequest<'a> {
    /// The decoded segments between `/services/<name>/` and `/clusters/` (checked by
    /// [`VirtualWorkspace::accepts`]).
    pub prefix: &'a [String],
    /// The logical cluster (resolved to its name); `None`: `/clusters/*`.
    pub cluster: Option<&'a str>,
    /// `None`: discovery or OpenAPI.
    pub resource: Option<ResourceRef<'a>>,
    pub user: &'a UserInfo,
    /// The body's content type (a patch's type included).
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// Who authorizes a virtual workspace's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authorization {
    /// The addressed workspace's RBAC and the features' authorization hooks, before
    /// [`VirtualWorkspace::serve`] is asked, as for any request.
    Workspace,
    /// The virtual workspace itself, inside [`VirtualWorkspace::serve`] (an `Err` there is
    /// the answer); the workspace's RBAC is not asked.
    Own,
}

/// How the server serves a request through the generic endpoints.
#[derive(Clone, Default)]
pub struct Serve {
    /// The description to serve instead of the one the cluster serves under that name.
    pub desc: Option<Arc<ResourceDesc>>,
    /// Objects outside it do not exist for this request (get, list, watch).
    pub predicate: Option<Predicate>,
    /// A label every object the predicate admits carries: watches are then woken only by
    /// events of objects with that label (see `Selectors::trigger`).
    pub trigger: Option<String>,
    /// Labels stamped on objects created through the view (the body is re-encoded as JSON).
    pub labels_on_create: Option<BTreeMap<String, String>>,
    /// What discovery and OpenAPI list; `None`: what the cluster serves.
    pub discovery: Option<Vec<Arc<ResourceDesc>>>,
}

/// What a virtual workspace makes of a request.
#[derive(Clone)]
pub enum Decision {
    /// Answered here; rendered as the addressed resource's kind when it is one.
    Answer(Answer),
    /// Served by the generic endpoints, as this says.
    Serve(Serve),
}

#[async_trait]
pub trait VirtualWorkspace: Send + Sync + 'static {
    /// The `/services/<name>/` segment.
    fn name(&self) -> &str;

    /// Whether `prefix` has this workspace's shape (its arity); otherwise the URL is a 404
    /// before anything else runs.
    fn accepts(&self, prefix: &[String]) -> bool;

    /// Who authorizes its requests.
    fn authorization(&self) -> Authorization;

    /// The logical cluster (name or path) whose service-account tokens authenticate
    /// requests to the view at `prefix` (a syncer's SyncTarget workspace); `None`: the
    /// addressed cluster's, as for any request.
    fn home_cluster(&self, _prefix: &[String]) -> Option<String> {
        None
    }

    /// How to serve `req` (after the workspace's RBAC when [`Authorization::Workspace`]).
    async fn serve(&self, req: &VirtualWorkspaceRequest<'_>) -> Result<Decision, ApiError>;
}

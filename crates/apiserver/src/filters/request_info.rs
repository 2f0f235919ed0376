//! Request info: the query parameters, read as kube reads them (the URL's shape is
//! `request.rs`).

use std::collections::HashMap;

use crate::request::{self, ClusterTarget, RequestInfo, ResourceRequest, Target, Verb};
use crate::served::Served;

pub(crate) type Query = HashMap<String, String>;

pub(crate) fn parse_query(q: Option<&str>) -> Query {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// A boolean query parameter, read as kube does (Go's strconv.ParseBool): the Python client
/// sends `watch=True`.
pub(crate) fn flag(q: &Query, key: &str) -> bool {
    q.get(key)
        .and_then(|v| kplex_gocompat::parse_bool(v))
        .unwrap_or(false)
}

/// What the chain knows of a request before it is authenticated: parsed once, read by every
/// later stage (kube's RequestInfo plus the query and the workspace named).
pub(crate) struct RequestContext {
    pub info: RequestInfo,
    pub query: Query,
    /// The resource request, when the URL is one.
    pub resource_request: Option<ResourceRequest>,
    /// kube's verb (`get`, `list`, `watch`, …), or the HTTP method for non-resource URLs.
    pub verb: String,
    /// The resource's plural ("" for non-resource URLs), for metrics.
    pub resource: String,
    pub is_watch: bool,
    /// The logical cluster named (resolved if known), or `*`: service-account tokens
    /// authenticate only in their own.
    pub workspace: String,
    /// The request body once read, kept (a reference count, not a copy) when the audit level
    /// records it.
    pub audited_body: std::sync::OnceLock<bytes::Bytes>,
}

/// The request-info stage: the URL's shape, verb and query.
pub(crate) fn request_info(parts: &http::request::Parts, served: &Served) -> RequestContext {
    let query = parse_query(parts.uri.query());
    let info = request::parse(&parts.method, parts.uri.path(), flag(&query, "watch"));
    let resource_request = match &info.target {
        Target::Resource(r) => Some(r.clone()),
        _ => None,
    };
    let verb = match &resource_request {
        Some(r) => r.verb.as_str().to_string(),
        None => parts.method.as_str().to_ascii_lowercase(),
    };
    let resource = resource_request
        .as_ref()
        .map(|r| r.resource.clone())
        .unwrap_or_default();
    let is_watch = resource_request
        .as_ref()
        .is_some_and(|r| r.verb == Verb::Watch);
    let workspace = match &info.cluster {
        ClusterTarget::Named(name) => served.resolve(name).unwrap_or_else(|| name.clone()),
        ClusterTarget::Wildcard => "*".to_string(),
    };
    RequestContext {
        info,
        query,
        resource_request,
        verb,
        resource,
        is_watch,
        workspace,
        audited_body: std::sync::OnceLock::new(),
    }
}

//! Request info: the query parameters, read as kube reads them (the URL's shape is
//! `request.rs`), and whether a `/services/<name>/…` URL names a virtual workspace that is
//! there, with a prefix of its shape.

use std::collections::HashMap;
use std::sync::Arc;

use kplex_registry::virtual_workspace::VirtualWorkspace;

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
    /// Whose service-account tokens authenticate the request: `workspace`, or a virtual
    /// workspace's home cluster (see `VirtualWorkspace::home_cluster`).
    pub authn_workspace: String,
    /// The request body once read, kept (a reference count, not a copy) when the audit level
    /// records it.
    pub audited_body: std::sync::OnceLock<bytes::Bytes>,
}

/// The request-info stage: the URL's shape, verb and query.
pub(crate) fn request_info(
    parts: &http::request::Parts,
    served: &Served,
    virtual_workspaces: &[Arc<dyn VirtualWorkspace>],
) -> RequestContext {
    let query = parse_query(parts.uri.query());
    let info = request::parse(&parts.method, parts.uri.path(), flag(&query, "watch"));
    let info = mounted(info, virtual_workspaces);
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
    let home = find_virtual_workspace(&info, virtual_workspaces).and_then(|vw| {
        let prefix = &info.virtual_workspace.as_ref()?.prefix;
        vw.home_cluster(prefix)
    });
    let authn_workspace = home
        .map(|h| served.resolve(&h).unwrap_or(h))
        .unwrap_or_else(|| workspace.clone());
    RequestContext {
        info,
        query,
        resource_request,
        verb,
        resource,
        is_watch,
        workspace,
        authn_workspace,
        audited_body: std::sync::OnceLock::new(),
    }
}

impl RequestContext {
    /// kube-apiserver's metric verb for this request (`CleanVerb`: LIST and WATCH for
    /// collection reads, APPLY for server-side apply, the HTTP method for non-resource URLs;
    /// static names only, so a made-up method adds no series).
    pub(crate) fn metric_verb(
        &self,
        method: &http::Method,
        headers: &http::HeaderMap,
    ) -> &'static str {
        let Some(r) = &self.resource_request else {
            return match *method {
                http::Method::GET => "GET",
                http::Method::HEAD => "HEAD",
                http::Method::POST => "POST",
                http::Method::PUT => "PUT",
                http::Method::PATCH => "PATCH",
                http::Method::DELETE => "DELETE",
                http::Method::OPTIONS => "OPTIONS",
                _ => "other",
            };
        };
        let apply = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/apply-patch"));
        match r.verb {
            Verb::Get => "GET",
            Verb::List => "LIST",
            Verb::Watch => "WATCH",
            Verb::Create => "POST",
            Verb::Update => "PUT",
            Verb::Patch if apply => "APPLY",
            Verb::Patch => "PATCH",
            Verb::Delete | Verb::DeleteCollection => "DELETE",
        }
    }

    /// The request's metric labels, copied (for a watch's long-running gauge).
    pub(crate) fn metric_labels(&self, verb: &'static str) -> crate::metrics::RequestLabels {
        let r = self.resource_request.as_ref();
        self.labels_of(
            verb,
            r.map(|r| {
                (
                    r.group.clone(),
                    r.version.clone(),
                    r.resource.clone(),
                    r.subresource.clone(),
                )
            }),
        )
    }

    /// The request's metric labels, moved out of the context once it is no longer needed
    /// (the request's end: no copy on the hot path).
    pub(crate) fn take_metric_labels(
        &mut self,
        verb: &'static str,
    ) -> crate::metrics::RequestLabels {
        let r = self.resource_request.as_mut().map(|r| {
            (
                std::mem::take(&mut r.group),
                std::mem::take(&mut r.version),
                std::mem::take(&mut r.resource),
                r.subresource.take(),
            )
        });
        self.labels_of(verb, r)
    }

    fn labels_of(
        &self,
        verb: &'static str,
        resource: Option<(String, String, String, Option<String>)>,
    ) -> crate::metrics::RequestLabels {
        let dry_run = match self.query.get("dryRun").map(String::as_str) {
            Some("All") => "All",
            _ => "",
        };
        let scope = match &self.resource_request {
            None => "",
            Some(r) if r.name.is_some() => "resource",
            Some(r) if r.namespace.is_some() => "namespace",
            Some(_) => "cluster",
        };
        let (group, version, resource, subresource) = resource.unwrap_or_default();
        crate::metrics::RequestLabels {
            verb,
            dry_run,
            group,
            version,
            resource,
            subresource: subresource.unwrap_or_default(),
            scope,
            component: "apiserver",
        }
    }
}

/// The virtual workspace a request addresses, if it is one of `mounted` and takes its
/// prefix; a `/services/…` URL that is not is a 404 before anything else runs.
pub(crate) fn find_virtual_workspace<'a>(
    info: &RequestInfo,
    mounted: &'a [Arc<dyn VirtualWorkspace>],
) -> Option<&'a Arc<dyn VirtualWorkspace>> {
    let path = info.virtual_workspace.as_ref()?;
    mounted
        .iter()
        .find(|vw| vw.name() == path.name && vw.accepts(&path.prefix))
}

fn mounted(info: RequestInfo, virtual_workspaces: &[Arc<dyn VirtualWorkspace>]) -> RequestInfo {
    if info.virtual_workspace.is_some()
        && find_virtual_workspace(&info, virtual_workspaces).is_none()
    {
        return RequestInfo::not_found();
    }
    info
}

#[cfg(test)]
mod tests {
    use http::Method;
    use kplex_apimachinery::ApiError;
    use kplex_registry::virtual_workspace::{
        Authorization, Decision, Serve, VirtualWorkspaceRequest,
    };

    use super::*;

    /// A virtual workspace taking two prefix segments.
    struct Two;

    #[async_trait::async_trait]
    impl VirtualWorkspace for Two {
        fn name(&self) -> &str {
            "two"
        }
        fn accepts(&self, prefix: &[String]) -> bool {
            prefix.len() == 2
        }
        fn authorization(&self) -> Authorization {
            Authorization::Own
        }
        async fn serve(&self, _: &VirtualWorkspaceRequest<'_>) -> Result<Decision, ApiError> {
            Ok(Decision::Serve(Serve::default()))
        }
    }

    fn info(path: &str) -> RequestInfo {
        let vws: Vec<Arc<dyn VirtualWorkspace>> = vec![Arc::new(Two)];
        mounted(request::parse(&Method::GET, path, false), &vws)
    }

    #[test]
    fn only_mounted_virtual_workspaces_with_their_prefix() {
        assert!(
            info("/services/two/a/b/clusters/x/api")
                .virtual_workspace
                .is_some()
        );
        assert_eq!(
            info("/services/nope/a/b/clusters/x/api"),
            RequestInfo::not_found()
        );
        assert_eq!(
            info("/services/two/a/clusters/x/api"),
            RequestInfo::not_found()
        );
        assert_eq!(info("/api").target, Target::CoreVersions);
    }
}

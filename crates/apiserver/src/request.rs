//! What a request is about, read off its method, path and query — before anything else runs.
//!
//! Paths have an optional logical-cluster prefix (`/clusters/<name>`), then one of the
//! Kubernetes URL shapes (`/api/v1/namespaces/<ns>/<resource>/<name>/<subresource>`,
//! `/apis/<group>/<version>/…`, discovery, OpenAPI, health).

use http::Method;
use percent_encoding::percent_decode_str;

/// The logical cluster every bare path (no `/clusters/` prefix) addresses.
pub const ROOT_CLUSTER: &str = "root";

/// Which logical cluster(s) a request addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterTarget {
    /// One logical cluster, by name or path (`root`, `root:org:team`, `2v3xk…`).
    Named(String),
    /// `/clusters/*`: every logical cluster (list and watch only).
    Wildcard,
}

/// The verb of a resource request, as Kubernetes authorization names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// A request for a resource (or a subresource of one object).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRequest {
    pub verb: Verb,
    /// "" for the core group.
    pub group: String,
    pub version: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Everything a request can be about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Livez,
    Readyz,
    Healthz,
    Version,
    Metrics,
    /// `/snapshot`: the whole store, as a snapshot file (`kplex snapshot save`).
    Snapshot,
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/<group>`
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`
    GroupVersion {
        group: String,
        version: String,
    },
    /// `/openapi/v3`
    OpenApiV3Root,
    /// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`
    OpenApiV3 {
        group: String,
        version: String,
    },
    /// `/openapi/v2`
    OpenApiV2,
    Resource(ResourceRequest),
    NotFound,
}

/// A virtual workspace's part of the URL, `/services/<name>/<prefix…>/clusters/…`: which one
/// serves the request and what it is told (the segments before `/clusters/`). Which names
/// exist and what prefixes they take is theirs to say (`filters/request_info.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualWorkspacePath {
    pub name: String,
    /// Decoded; none of them is `clusters` (the URL splits at the first).
    pub prefix: Vec<String>,
}

/// The parsed request line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    pub cluster: ClusterTarget,
    pub target: Target,
    pub virtual_workspace: Option<VirtualWorkspacePath>,
    /// The path after any `/clusters/<name>` prefix (for non-resource authorization).
    pub path: String,
}

/// Splits off `/clusters/<name>`, then classifies the rest. `watch` is the `watch` query
/// parameter (true for `watch=true`/`1`).
pub fn parse(method: &Method, path: &str, watch: bool) -> RequestInfo {
    if let Some(rest) = path.strip_prefix("/services/") {
        return parse_virtual(method, rest, watch);
    }
    let (cluster, rest) = split_cluster(path);
    let target = match cluster {
        Some(_) if rest.starts_with("/clusters/") || rest == "/clusters" => Target::NotFound,
        _ => classify(method, rest, watch),
    };
    RequestInfo {
        cluster: cluster.unwrap_or_else(|| ClusterTarget::Named(ROOT_CLUSTER.to_string())),
        target,
        virtual_workspace: None,
        path: if rest.is_empty() {
            "/".to_string()
        } else {
            rest.to_string()
        },
    }
}

impl RequestInfo {
    /// A URL no route serves.
    pub fn not_found() -> Self {
        RequestInfo {
            cluster: ClusterTarget::Wildcard,
            target: Target::NotFound,
            virtual_workspace: None,
            path: String::new(),
        }
    }
}

/// `<name>/<prefix…>/clusters/<cluster>/…` after `/services/`.
fn parse_virtual(method: &Method, rest: &str, watch: bool) -> RequestInfo {
    let Some((name, mut tail)) = rest.split_once('/') else {
        return RequestInfo::not_found();
    };
    let mut prefix = Vec::new();
    loop {
        let Some((segment, after)) = tail.split_once('/') else {
            return RequestInfo::not_found();
        };
        if segment == "clusters" {
            break;
        }
        prefix.push(decode(segment));
        tail = after;
    }
    let mut info = parse(method, &format!("/{tail}"), watch);
    info.virtual_workspace = Some(VirtualWorkspacePath {
        name: decode(name),
        prefix,
    });
    info
}

fn split_cluster(path: &str) -> (Option<ClusterTarget>, &str) {
    let Some(after) = path.strip_prefix("/clusters/") else {
        return (None, path);
    };
    let (name, rest) = match after.find('/') {
        Some(i) => (&after[..i], &after[i..]),
        None => (after, ""),
    };
    let name = decode(name);
    let target = if name == "*" {
        ClusterTarget::Wildcard
    } else {
        ClusterTarget::Named(name)
    };
    (Some(target), rest)
}

fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

fn classify(method: &Method, path: &str, watch: bool) -> Target {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["livez", ..] => Target::Livez,
        ["readyz", ..] => Target::Readyz,
        ["healthz", ..] => Target::Healthz,
        ["version"] => Target::Version,
        ["metrics"] => Target::Metrics,
        ["snapshot"] => Target::Snapshot,
        ["api"] => Target::CoreVersions,
        ["apis"] => Target::Groups,
        ["apis", group] => Target::Group(group.to_string()),
        ["api", version] => Target::GroupVersion {
            group: String::new(),
            version: version.to_string(),
        },
        ["apis", group, version] => Target::GroupVersion {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["api", version, rest @ ..] => resource(method, "", version, rest, watch),
        ["apis", group, version, rest @ ..] => resource(method, group, version, rest, watch),
        ["openapi", "v3"] => Target::OpenApiV3Root,
        ["openapi", "v3", "api", version] => Target::OpenApiV3 {
            group: String::new(),
            version: version.to_string(),
        },
        ["openapi", "v3", "apis", group, version] => Target::OpenApiV3 {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["openapi", "v2"] => Target::OpenApiV2,
        _ => Target::NotFound,
    }
}

/// `rest` is what follows the group-version: `[namespaces/<ns>/]<resource>[/<name>[/<sub>]]`.
fn resource(method: &Method, group: &str, version: &str, rest: &[&str], watch: bool) -> Target {
    let (namespace, parts) = match rest {
        // `namespaces/<ns>/<resource>…` is a namespaced resource; `namespaces/<ns>[/<sub>]`
        // is the namespace object itself.
        ["namespaces", ns, resource, tail @ ..]
            if !(group.is_empty() && is_namespace_subresource(resource) && tail.is_empty()) =>
        {
            (Some(ns.to_string()), {
                let mut v = vec![*resource];
                v.extend_from_slice(tail);
                v
            })
        }
        _ => (None, rest.to_vec()),
    };
    let (resource, name, subresource) = match parts.as_slice() {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, sub] => (*resource, Some(*name), Some(*sub)),
        _ => return Target::NotFound,
    };
    let verb = match (method.as_str(), name.is_some()) {
        ("GET" | "HEAD", true) if watch => Verb::Watch,
        ("GET" | "HEAD", true) => Verb::Get,
        ("GET" | "HEAD", false) if watch => Verb::Watch,
        ("GET" | "HEAD", false) => Verb::List,
        ("POST", _) => Verb::Create,
        ("PUT", _) => Verb::Update,
        ("PATCH", _) => Verb::Patch,
        ("DELETE", true) => Verb::Delete,
        ("DELETE", false) => Verb::DeleteCollection,
        _ => return Target::NotFound,
    };
    Target::Resource(ResourceRequest {
        verb,
        group: group.to_string(),
        version: version.to_string(),
        resource: resource.to_string(),
        namespace,
        name: name.map(str::to_string),
        subresource: subresource.map(str::to_string),
    })
}

fn is_namespace_subresource(s: &str) -> bool {
    matches!(s, "status" | "finalize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(method: Method, path: &str) -> ResourceRequest {
        match parse(&method, path, false).target {
            Target::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn resource_paths() {
        let r = res(Method::GET, "/api/v1/namespaces/default/configmaps/x");
        assert_eq!(
            (
                r.verb,
                r.group.as_str(),
                r.resource.as_str(),
                r.namespace.as_deref(),
                r.name.as_deref()
            ),
            (Verb::Get, "", "configmaps", Some("default"), Some("x"))
        );
        let r = res(Method::GET, "/apis/apps/v1/deployments");
        assert_eq!(
            (r.verb, r.group.as_str(), r.namespace),
            (Verb::List, "apps", None)
        );
        let r = res(
            Method::PUT,
            "/apis/apps/v1/namespaces/ns/deployments/d/scale",
        );
        assert_eq!(
            (r.verb, r.subresource.as_deref()),
            (Verb::Update, Some("scale"))
        );
        let r = res(Method::GET, "/api/v1/namespaces/kube-system");
        assert_eq!(
            (r.resource.as_str(), r.name.as_deref(), r.namespace),
            ("namespaces", Some("kube-system"), None)
        );
        let r = res(Method::PUT, "/api/v1/namespaces/x/finalize");
        assert_eq!(
            (
                r.resource.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            ("namespaces", Some("x"), Some("finalize"))
        );
        let r = res(Method::DELETE, "/api/v1/namespaces/a/configmaps");
        assert_eq!(r.verb, Verb::DeleteCollection);
        let r = res(Method::POST, "/api/v1/namespaces");
        assert_eq!((r.verb, r.name), (Verb::Create, None));
    }

    #[test]
    fn clusters_prefix() {
        let info = parse(
            &Method::GET,
            "/clusters/root:org:team/api/v1/namespaces",
            false,
        );
        assert_eq!(info.cluster, ClusterTarget::Named("root:org:team".into()));
        let info = parse(&Method::GET, "/clusters/*/api/v1/configmaps", true);
        assert_eq!(info.cluster, ClusterTarget::Wildcard);
        assert!(matches!(
            info.target,
            Target::Resource(ResourceRequest {
                verb: Verb::Watch,
                ..
            })
        ));
        assert_eq!(
            parse(&Method::GET, "/api", false).cluster,
            ClusterTarget::Named("root".into())
        );
        assert_eq!(
            parse(&Method::GET, "/clusters/a/clusters/a/api", false).target,
            Target::NotFound
        );
        assert_eq!(
            parse(&Method::GET, "/clusters/root/version", false).target,
            Target::Version
        );
    }

    fn vw(name: &str, prefix: &[&str]) -> Option<VirtualWorkspacePath> {
        Some(VirtualWorkspacePath {
            name: name.into(),
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn virtual_workspace_paths() {
        let info = parse(
            &Method::GET,
            "/services/initializingworkspaces/root:org:init/clusters/*/apis/core.kcp.io/v1alpha1/logicalclusters",
            true,
        );
        assert_eq!(
            info.virtual_workspace,
            vw("initializingworkspaces", &["root:org:init"])
        );
        assert_eq!(info.cluster, ClusterTarget::Wildcard);
        assert!(matches!(
            info.target,
            Target::Resource(ResourceRequest {
                verb: Verb::Watch,
                ..
            })
        ));
        assert_eq!(
            parse(
                &Method::GET,
                "/services/initializingworkspaces/x/api",
                false
            )
            .target,
            Target::NotFound
        );
        let info = parse(
            &Method::POST,
            "/services/apiexport/root:org/widgets/clusters/abc/apis/example.dev/v1/namespaces/default/widgets",
            false,
        );
        assert_eq!(
            info.virtual_workspace,
            vw("apiexport", &["root:org", "widgets"])
        );
        assert_eq!(info.cluster, ClusterTarget::Named("abc".into()));
        // The prefix ends at the first `clusters` segment, however many came before
        // (whether that many fits is the virtual workspace's to say).
        let info = parse(
            &Method::GET,
            "/services/syncer/root:org/target/uid%201/clusters/*/api/v1/configmaps",
            false,
        );
        assert_eq!(
            info.virtual_workspace,
            vw("syncer", &["root:org", "target", "uid 1"])
        );
        assert_eq!(
            parse(
                &Method::GET,
                "/services/apiexport/root/clusters/*/api",
                false
            )
            .virtual_workspace,
            vw("apiexport", &["root"])
        );
        assert_eq!(
            parse(&Method::GET, "/services/apiexport/clusters", false).target,
            Target::NotFound
        );
    }

    #[test]
    fn discovery_and_openapi_paths() {
        assert_eq!(
            parse(&Method::GET, "/apis/apps", false).target,
            Target::Group("apps".into())
        );
        assert_eq!(
            parse(&Method::GET, "/openapi/v3/apis/apps/v1", false).target,
            Target::OpenApiV3 {
                group: "apps".into(),
                version: "v1".into()
            }
        );
        assert_eq!(parse(&Method::GET, "/nope", false).target, Target::NotFound);
        assert_eq!(
            parse(&Method::GET, "/api/v1/a/b/c/d", false).target,
            Target::NotFound
        );
    }
}

//! The request path, as one straight line: parse → public endpoints → authenticate →
//! resolve the logical cluster → dispatch (discovery, OpenAPI, or the generic registry).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Body as _, Frame, Incoming};
use kplex_apimachinery::{ApiError, StatusDetails, UserInfo, meta, status::success_status};
use serde_json::{Value, json};

use crate::catalog::ResourceDesc;
use crate::registry::{
    DeleteOptions, DeleteOutcome, ListOptions, PatchKind, Registry, Scope, Selectors, Stored,
    WatchEvent, WatchEventKind, WatchOptions, WriteOptions, list::render_list,
    write::FieldValidation,
};
use crate::request::{self, ClusterTarget, ResourceRequest, Target, Verb};
use crate::response::{self, Body, Format, Shape, Wanted};
use crate::served::Served;
use crate::table::{self, IncludeObject};
use crate::{body, discovery, metrics::Metrics, openapi};
use kplex_registry::virtual_resource::{Answer, VirtualRequest, VirtualResource};

/// Everything a request handler needs; shared by all connections.
pub struct Api {
    pub registry: Registry,
    pub served: Arc<Served>,
    pub authn: Arc<crate::authn::Authenticator>,
    pub metrics: Metrics,
    /// What `/metrics` serves: every component's metrics.
    pub exposition: crate::metrics::Exposition,
    /// Resources answered without being stored (reviews, TokenRequest, `workspaces/~`).
    pub virtual_resources: Vec<Arc<dyn VirtualResource>>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    pub openapi: openapi::Cache,
    pub tenancy: crate::tenancy::lifecycle::Tenancy,
    pub apis: crate::apis::Apis,
    pub authz: crate::authz::Authorizer,
    /// `None`: no audit log.
    pub audit: Option<crate::audit::Auditor>,
    pub limits: crate::limits::Limits,
}

type Query = HashMap<String, String>;

fn parse_query(q: Option<&str>) -> Query {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// A boolean query parameter, read as kube does (Go's strconv.ParseBool): the Python client
/// sends `watch=True`.
fn flag(q: &Query, key: &str) -> bool {
    q.get(key)
        .and_then(|v| kplex_gocompat::parse_bool(v))
        .unwrap_or(false)
}

impl Api {
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: Arc<crate::authn::ConnInfo>,
    ) -> Response<Body> {
        let start = Instant::now();
        let received = std::time::SystemTime::now();
        let (parts, body) = req.into_parts();
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
        // Authenticated once here: limits and audit need the user before routing, and `route`
        // answers 401 with the same result.
        let workspace = match &info.cluster {
            ClusterTarget::Named(name) => self.served.resolve(name).unwrap_or_else(|| name.clone()),
            ClusterTarget::Wildcard => "*".to_string(),
        };
        // Service-account tokens authenticate only in their own logical cluster.
        let authenticated = self.authenticate(&parts.headers, &conn, &workspace);
        let user = authenticated.as_ref().ok().map(|(user, _)| user.clone());
        let impersonator = authenticated
            .as_ref()
            .ok()
            .and_then(|(_, i)| i.as_ref().map(|i| i.by.clone()));
        let resource_attrs = resource_request
            .as_ref()
            .map(|r| crate::audit::ResourceAttributes {
                group: &r.group,
                resource: &r.resource,
                subresource: r.subresource.as_deref(),
                namespace: r.namespace.as_deref().unwrap_or(""),
                name: r.name.as_deref().unwrap_or(""),
            });
        let level = self.audit.as_ref().map_or(crate::audit::Level::None, |a| {
            a.level(&crate::audit::Attributes {
                user: user.as_ref(),
                verb: &verb,
                resource: resource_attrs.clone(),
                path: &info.path,
            })
        });
        // Watches are long-running: kube exempts them from the in-flight budget, and they are
        // capped per user instead.
        let admitted = if is_watch {
            let name = user
                .as_ref()
                .map_or("system:anonymous", |u| u.name.as_str());
            self.limits.admit_watch(name)
        } else {
            let mutating = !matches!(verb.as_str(), "get" | "list" | "watch");
            let privileged = user.as_ref().is_some_and(|u| u.is_master());
            self.limits.admit(mutating, privileged)
        };
        // Boxed: the future of a request is moved at least once (into hyper's stream task),
        // and unboxed this one made it ~100 KB, copied on every request.
        let routed = Box::pin(async {
            let permit = match admitted {
                Ok(permit) => permit,
                Err(e) => {
                    // Read the body first, as for a 401: an HTTP/2 stream answered before its
                    // body arrived is reset, and the client never sees the 429. Briefly only:
                    // a refused request must not hold the server with an endless body.
                    if !matches!(parts.method, Method::GET | Method::HEAD) {
                        let _ =
                            tokio::time::timeout(Duration::from_secs(1), body::read(body)).await;
                    }
                    return Err(e);
                }
            };
            let routed = self.route(
                info,
                &parts.method,
                &parts.headers,
                &query,
                body,
                authenticated,
            );
            let resp = if is_watch {
                routed.await?
            } else {
                self.limits.deadline(routed).await?
            };
            Ok::<_, ApiError>((resp, permit))
        });
        let (routed, request_body) = if level >= crate::audit::Level::Request {
            crate::audit::with_body_slot(routed).await
        } else {
            (routed.await, None)
        };
        let mut resp = match routed {
            // A watch stream counts against its user until the stream ends.
            Ok((resp, permit @ crate::limits::Permit::Watch(_))) => resp.map(|b| {
                b.map_frame(move |frame| {
                    let _ = &permit;
                    frame
                })
                .boxed_unsync()
            }),
            Ok((resp, _permit)) => resp,
            Err(e) => response::error(&e),
        };
        let mut response_body = None;
        if level >= crate::audit::Level::RequestResponse && !is_watch {
            // Non-watch answers are already whole in memory: buffering them costs nothing.
            let (parts, body) = resp.into_parts();
            resp = match body.collect().await {
                Ok(collected) => {
                    let bytes = collected.to_bytes();
                    response_body = Some(bytes.clone());
                    Response::from_parts(parts, response::full(bytes))
                }
                Err(_) => response::error(&ApiError::internal("response body failed")),
            };
        }
        let resp = maybe_gzip(&parts.headers, resp).await;
        if let Some(audit) = &self.audit
            && level > crate::audit::Level::None
        {
            let api_version = resource_request.as_ref().map_or("", |r| r.version.as_str());
            audit.record(&crate::audit::event(&crate::audit::EventData {
                level,
                request_uri: parts
                    .uri
                    .path_and_query()
                    .map_or(parts.uri.path(), |p| p.as_str()),
                verb: &verb,
                user: user.as_ref(),
                impersonator: impersonator.as_ref(),
                source_ip: conn.remote.ip(),
                user_agent: parts
                    .headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok()),
                resource: resource_attrs,
                api_version,
                workspace: Some(&workspace),
                code: resp.status().as_u16(),
                received,
                request_body: request_body.as_ref(),
                request_content_type: parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
                response_body: response_body.as_ref(),
            }));
        }
        self.metrics.record(
            &verb,
            &resource,
            resp.status().as_u16(),
            start.elapsed().as_secs_f64(),
        );
        resp
    }

    async fn route(
        &self,
        info: request::RequestInfo,
        method: &Method,
        headers: &HeaderMap,
        query: &Query,
        body: Incoming,
        authenticated: Result<(UserInfo, Option<crate::authn::Impersonation>), ApiError>,
    ) -> Result<Response<Body>, ApiError> {
        let (cluster, target) = (info.cluster, info.target);
        // Probes and the version answer anyone, as in kube-apiserver.
        match target {
            Target::Livez | Target::Healthz => {
                return Ok(response::with_body(StatusCode::OK, "text/plain", "ok"));
            }
            Target::Readyz => {
                return Ok(if *self.shutdown.borrow() {
                    response::with_body(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        "shutting down",
                    )
                } else {
                    response::with_body(StatusCode::OK, "text/plain", "ok")
                });
            }
            Target::Version => return Ok(response::json_value(StatusCode::OK, &version())),
            _ => {}
        }
        // Read the body before answering anything, a 401 included: an HTTP/2 stream answered
        // before its body arrived is reset, and the client never sees the answer.
        let body = match *method {
            Method::GET | Method::HEAD => Ok(Bytes::new()),
            _ => body::read(body).await,
        };
        let (user, impersonation) = authenticated?;
        let body = body?;
        crate::audit::capture_body(&body);
        if target == Target::Metrics {
            return Ok(response::with_body(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.exposition.encode(),
            ));
        }
        let cluster = match cluster {
            ClusterTarget::Named(name) => match self.served.resolve(&name) {
                Some(cluster) => Some(cluster),
                None => return Err(ApiError::not_found("", "workspaces", &name)),
            },
            ClusterTarget::Wildcard => None,
        };
        crate::serviceaccount::check_still_exists(self.accounts(), cluster.as_deref(), &user)
            .await?;
        if let Some(impersonation) = &impersonation {
            self.authorize_impersonation(cluster.as_deref(), impersonation)
                .await?;
        }
        if let Some(request::VirtualWorkspace::ApiExport {
            cluster: export_cluster,
            export,
        }) = &info.virtual_workspace
        {
            let view = crate::apis::view::ExportView::load(
                &self.registry,
                &self.served,
                export_cluster,
                export,
            )
            .await?;
            // Boxed here and below: an inline awaitee makes every request's future as large as
            // the largest one (see `handle`).
            return Box::pin(self.export_view(&view, cluster, target, headers, query, body, &user))
                .await;
        }
        self.authorize(cluster.as_deref(), &target, method, &info.path, &user)
            .await?;
        let mut predicate = None;
        if let Some(request::VirtualWorkspace::Initializing { initializer }) =
            &info.virtual_workspace
        {
            match Box::pin(self.initializing(
                initializer,
                cluster.as_deref(),
                &target,
                headers,
                &body,
            ))
            .await?
            {
                Initializing::Answer(resp) => return Ok(resp),
                Initializing::Filter(p) => predicate = p,
            }
        }
        let resources = || self.served.resources(cluster.as_deref());
        if let Some(answer) = self.discovery(cluster.as_deref(), &target, headers, resources) {
            return answer;
        }
        match target {
            Target::Resource(r) => {
                Box::pin(self.resource(cluster, r, None, &user, headers, query, body, predicate))
                    .await
            }
            _ => Err(not_found_path()),
        }
    }

    /// Discovery and OpenAPI documents over `resources` (None: not such a request).
    fn discovery(
        &self,
        cluster: Option<&str>,
        target: &Target,
        headers: &HeaderMap,
        resources: impl Fn() -> Vec<Arc<ResourceDesc>>,
    ) -> Option<Result<Response<Body>, ApiError>> {
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
        Some(match target {
            Target::CoreVersions => {
                let r = resources();
                Ok(discovery_response(
                    accept,
                    || discovery::api_versions(""),
                    || discovery::aggregated(&r, true),
                ))
            }
            Target::Groups => {
                let r = resources();
                Ok(discovery_response(
                    accept,
                    || discovery::api_group_list(&r),
                    || discovery::aggregated(&r, false),
                ))
            }
            Target::Group(g) => discovery::api_group(&resources(), g)
                .map(|doc| response::json_value(StatusCode::OK, &doc))
                .ok_or_else(not_found_path),
            Target::GroupVersion { group, version } => {
                discovery::api_resource_list(&resources(), group, version)
                    .map(|doc| response::json_value(StatusCode::OK, &doc))
                    .ok_or_else(not_found_path)
            }
            Target::OpenApiV3Root => Ok(self.openapi.root(cluster, &resources())),
            Target::OpenApiV3 { group, version } => {
                self.openapi
                    .group_version(cluster, &resources(), group, version)
            }
            Target::OpenApiV2 => self.openapi.v2(cluster, &resources(), accept),
            _ => return None,
        })
    }

    /// The APIExport virtual workspace (see `apis::view`): access by `apiexports/content`
    /// in the export's workspace, then the view's resources in `cluster` (None: all).
    #[allow(clippy::too_many_arguments)]
    async fn export_view(
        &self,
        view: &crate::apis::view::ExportView,
        cluster: Option<String>,
        target: Target,
        headers: &HeaderMap,
        query: &Query,
        body: Bytes,
        user: &UserInfo,
    ) -> Result<Response<Body>, ApiError> {
        let verb = match &target {
            Target::Resource(r) => r.verb.as_str(),
            _ => "get",
        };
        self.authz
            .authorize(
                Some(&view.export_cluster),
                &view.content_request(user, verb),
            )
            .await?;
        let resources = || view.resources(&self.served);
        if let Some(answer) = self.discovery(cluster.as_deref(), &target, headers, resources) {
            return answer;
        }
        let Target::Resource(r) = target else {
            return Err(not_found_path());
        };
        let plan = view.plan(&self.served, &self.apis.exports, cluster.as_deref(), &r)?;
        // Objects the provider creates under a claim with a selector carry its labels (the
        // body is re-encoded as JSON, whatever it came as).
        let mut headers = headers.clone();
        let body = match (&plan.labels, r.verb) {
            (Some(labels), Verb::Create) => {
                let mut obj = body::decode(content_type(&headers), &body)?;
                let mut all = meta::labels(&obj);
                for (k, v) in labels {
                    all.insert(k.clone(), Value::String(v.clone()));
                }
                meta::set_labels(&mut obj, all);
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(response::JSON),
                );
                Bytes::from(
                    serde_json::to_vec(&obj).map_err(|e| ApiError::internal(&e.to_string()))?,
                )
            }
            _ => body,
        };
        self.resource(
            cluster,
            r,
            Some(plan.desc),
            user,
            &headers,
            query,
            body,
            plan.predicate,
        )
        .await
    }

    /// A virtual resource's answer: as the addressed kind when it is one (tables, protobuf),
    /// else as a plain object in the format the client accepts.
    fn respond_answer(
        &self,
        desc: &ResourceDesc,
        headers: &HeaderMap,
        query: &Query,
        answer: &Answer,
    ) -> Result<Response<Body>, ApiError> {
        let code = StatusCode::from_u16(answer.code).unwrap_or(StatusCode::OK);
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
        let own_kind =
            answer.object.get("kind").and_then(Value::as_str) == Some(desc.kind.as_str());
        let protobuf_ok = kplex_protobuf::supports(
            answer
                .object
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or(""),
            answer
                .object
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or(""),
        );
        let shapes: &[Shape] = if own_kind {
            &[Shape::Table, Shape::PartialObjectMetadata]
        } else {
            &[]
        };
        let wanted = response::negotiate(accept, protobuf_ok, shapes)
            .ok_or_else(|| ApiError::not_acceptable(&response::acceptable_types(protobuf_ok)))?;
        let include = IncludeObject::parse(query.get("includeObject").map(String::as_str));
        Ok(respond_value(desc, wanted, include, code, &answer.object))
    }

    fn accounts(&self) -> crate::serviceaccount::Accounts<'_> {
        crate::serviceaccount::Accounts {
            registry: &self.registry,
            served: &self.served,
        }
    }

    /// Authenticators (see `authn`), then the `Impersonate-*` headers.
    fn authenticate(
        &self,
        headers: &HeaderMap,
        conn: &crate::authn::ConnInfo,
        cluster: &str,
    ) -> Result<(UserInfo, Option<crate::authn::Impersonation>), ApiError> {
        let user = self.authn.authenticate(headers, conn, Some(cluster))?;
        crate::authn::impersonate(user, headers)
    }

    /// 403 unless RBAC of the request's workspace lets the impersonator act as every
    /// impersonated attribute (never in the `*` view).
    async fn authorize_impersonation(
        &self,
        cluster: Option<&str>,
        impersonation: &crate::authn::Impersonation,
    ) -> Result<(), ApiError> {
        if crate::authn::may_impersonate(&impersonation.by) {
            return Ok(());
        }
        for req in impersonation.requests() {
            let allowed = match cluster {
                Some(cluster) => self.authz.rbac_allows(cluster, &req).await?,
                None => false,
            };
            if !allowed {
                return Err(crate::authz::denied(&req));
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn resource(
        &self,
        cluster: Option<String>,
        r: ResourceRequest,
        desc: Option<Arc<ResourceDesc>>,
        user: &UserInfo,
        headers: &HeaderMap,
        query: &Query,
        body: Bytes,
        predicate: Option<crate::registry::Predicate>,
    ) -> Result<Response<Body>, ApiError> {
        let desc = match desc {
            Some(d) => d,
            None => self
                .served
                .lookup(cluster.as_deref(), &r.group, &r.version, &r.resource)
                .ok_or_else(not_found_path)?,
        };
        let virtual_request = VirtualRequest {
            cluster: cluster.as_deref(),
            desc: &desc,
            verb: r.verb.as_str(),
            namespace: r.namespace.as_deref(),
            name: r.name.as_deref(),
            subresource: r.subresource.as_deref(),
            user,
            content_type: content_type(headers),
            body: &body,
        };
        if let Some(v) = self
            .virtual_resources
            .iter()
            .find(|v| v.handles(&virtual_request))
        {
            let answer = v.serve(&virtual_request).await?;
            return self.respond_answer(&desc, headers, query, &answer);
        }
        if cluster.is_none() && !matches!(r.verb, Verb::List | Verb::Watch) {
            return Err(ApiError::method_not_supported(
                &desc.group,
                &desc.plural,
                r.verb.as_str(),
            ));
        }
        if !desc.namespaced && r.namespace.is_some() {
            return Err(not_found_path());
        }
        let needs_namespace = !matches!(r.verb, Verb::List | Verb::Watch | Verb::DeleteCollection);
        if desc.namespaced && needs_namespace && r.namespace.is_none() {
            return Err(not_found_path());
        }
        let sub = r.subresource.as_deref();
        match sub {
            None => {}
            Some("status") if desc.status => {}
            Some("scale") if desc.scale.is_some() => {}
            Some("finalize") if desc.group.is_empty() && desc.plural == "namespaces" => {}
            Some(_) => return Err(not_found_path()),
        }
        if sub.is_some() && !matches!(r.verb, Verb::Get | Verb::Update | Verb::Patch) {
            return Err(ApiError::method_not_supported(
                &desc.group,
                &format!("{}/{}", desc.plural, sub.unwrap_or("")),
                r.verb.as_str(),
            ));
        }
        let scope = Scope {
            cluster,
            desc: desc.clone(),
            namespace: r.namespace.clone(),
        };
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
        let shapes: &[Shape] = match r.verb {
            Verb::List | Verb::Watch => &[Shape::Table, Shape::PartialObjectMetadataList],
            _ => &[Shape::Table, Shape::PartialObjectMetadata],
        };
        // Protobuf answers exist for built-in kinds (not for watch streams or CRs).
        let protobuf_ok = desc.origin == crate::catalog::Origin::Builtin
            && r.verb != Verb::Watch
            && sub != Some("scale")
            && kplex_protobuf::supports(&desc.api_version(), &desc.kind);
        let wanted = response::negotiate(accept, protobuf_ok, shapes)
            .ok_or_else(|| ApiError::not_acceptable(&response::acceptable_types(protobuf_ok)))?;
        let name = r.name.clone().unwrap_or_default();
        let include = IncludeObject::parse(query.get("includeObject").map(String::as_str));
        match (r.verb, sub) {
            (Verb::Get, Some("scale")) => {
                let obj = self.registry.get(&scope, &name).await?.decode()?;
                Ok(respond_value(
                    &desc,
                    wanted,
                    include,
                    StatusCode::OK,
                    &scale_of(&desc, &obj),
                ))
            }
            (Verb::Get, _) => {
                let stored = self.registry.get(&scope, &name).await?;
                // A virtual workspace's filter hides objects from GET as from LIST.
                if let Some(p) = &predicate
                    && !p(&stored.decode()?)
                {
                    return Err(scope.not_found(&name));
                }
                Ok(respond_stored(&desc, wanted, include, &stored)?)
            }
            (Verb::List, _) => {
                let mut opts = list_options(&desc, query)?;
                opts.selectors.predicate = predicate.clone();
                let result = self.registry.list(&scope, &opts).await?;
                respond_list(&desc, wanted, include, &result)
            }
            (Verb::Watch, _) => {
                let mut opts = watch_options(&desc, query)?;
                opts.selectors.predicate = predicate.clone();
                if let Some(name) = &r.name {
                    // `GET …/configmaps/x?watch=1` is a watch on one name.
                    let _ = name;
                }
                let stream = self.registry.watch(&scope, opts).await?;
                // Unset or 0: kube's default, a random 30–60 minutes.
                let seconds = match query.get("timeoutSeconds") {
                    None => 0,
                    Some(t) => t.parse::<i64>().map_err(|_| {
                        ApiError::bad_request(format!(
                            "timeoutSeconds: invalid value {t:?}: strconv.ParseInt: parsing {t:?}: invalid syntax"
                        ))
                    })?,
                };
                let timeout = if seconds > 0 {
                    Duration::from_secs(seconds as u64)
                } else {
                    Duration::from_secs(1800 + rand::random::<u64>() % 1800)
                };
                Ok(self.watch_response(desc, wanted, include, stream, timeout))
            }
            (Verb::Create, _) => {
                let obj = body::decode(content_type(headers), &body)?;
                let opts = write_options(query, None, headers, user)?;
                strict_json(&opts, headers, &body)?;
                let claim = self.claim_workspace(&scope, &opts, &obj);
                let mut result = self.registry.create(&scope, obj, &opts).await?;
                if let Some(scheduled) = self.schedule_created(claim).await {
                    result.object = scheduled;
                }
                let mut resp =
                    respond_value(&desc, wanted, include, StatusCode::CREATED, &result.object);
                add_warnings(&mut resp, &result.warnings);
                Ok(resp)
            }
            (Verb::Update, Some("scale")) => {
                let scale = body::decode(content_type(headers), &body)?;
                self.write_scale(
                    &scope,
                    &desc,
                    &name,
                    query,
                    headers,
                    wanted,
                    include,
                    user,
                    move |_| Ok(scale.clone()),
                )
                .await
            }
            (Verb::Patch, Some("scale")) => {
                let kind = patch_kind(headers)?;
                let patch = body;
                self.write_scale(
                    &scope,
                    &desc,
                    &name,
                    query,
                    headers,
                    wanted,
                    include,
                    user,
                    move |current| apply_patch(kind, current, &patch),
                )
                .await
            }
            (Verb::Update, _) => {
                let obj = body::decode(content_type(headers), &body)?;
                let opts = write_options(query, sub, headers, user)?;
                strict_json(&opts, headers, &body)?;
                let result = self.registry.update(&scope, &name, obj, &opts).await?;
                let mut resp =
                    respond_value(&desc, wanted, include, StatusCode::OK, &result.object);
                add_warnings(&mut resp, &result.warnings);
                Ok(resp)
            }
            (Verb::Patch, _) => {
                let kind = patch_kind(headers)?;
                let patch = body;
                let opts = write_options(query, sub, headers, user)?;
                if kind == PatchKind::Apply
                    && let Some(stored) = self
                        .registry
                        .cached_noop_apply(&scope, &name, &patch, &opts)
                        .await?
                {
                    // A re-applied, unchanged manifest: as cheap as a GET.
                    return respond_stored(&desc, wanted, include, &stored);
                }
                let result = self
                    .registry
                    .patch(&scope, &name, kind, &patch, &opts)
                    .await?;
                let mut resp =
                    respond_value(&desc, wanted, include, StatusCode::OK, &result.object);
                add_warnings(&mut resp, &result.warnings);
                Ok(resp)
            }
            (Verb::Delete, _) => {
                let opts = delete_options(headers, query, &body, user)?;
                match self.registry.delete(&scope, &name, &opts).await? {
                    DeleteOutcome::Deleted(obj) => Ok(delete_status(&desc, &obj)),
                    DeleteOutcome::Pending(obj) => {
                        Ok(respond_value(&desc, wanted, include, StatusCode::OK, &obj))
                    }
                }
            }
            (Verb::DeleteCollection, _) => {
                let opts = delete_options(headers, query, &body, user)?;
                let list_opts = list_options(&desc, query)?;
                let result = self
                    .registry
                    .list(
                        &scope,
                        &ListOptions {
                            limit: 0,
                            continue_token: None,
                            ..list_opts
                        },
                    )
                    .await?;
                let mut deleted = Vec::new();
                for item in &result.items {
                    let obj = item.decode()?;
                    let item_scope = Scope {
                        namespace: meta::namespace(&obj).map(String::from),
                        ..scope.clone()
                    };
                    match self
                        .registry
                        .delete(&item_scope, meta::name(&obj).unwrap_or(""), &opts)
                        .await
                    {
                        Ok(DeleteOutcome::Deleted(o) | DeleteOutcome::Pending(o)) => {
                            deleted.push(o)
                        }
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(e),
                    }
                }
                let list = json!({"kind": desc.list_kind(), "apiVersion": desc.api_version(), "metadata": {"resourceVersion": result.resource_version.to_string()}, "items": deleted});
                Ok(response::json_value(StatusCode::OK, &list))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_scale(
        &self,
        scope: &Scope,
        desc: &Arc<ResourceDesc>,
        name: &str,
        query: &Query,
        headers: &HeaderMap,
        wanted: Wanted,
        include: IncludeObject,
        user: &UserInfo,
        change: impl Fn(&Value) -> Result<Value, ApiError>,
    ) -> Result<Response<Body>, ApiError> {
        let opts = write_options(query, None, headers, user)?;
        let paths = desc.scale.clone().ok_or_else(not_found_path)?;
        let d = desc.clone();
        let result = self
            .registry
            .update_with(scope, name, &opts, move |current, _| {
                let scale = change(&scale_of(&d, current))?;
                let replicas = scale
                    .get("spec")
                    .and_then(|s| s.get("replicas"))
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if replicas < 0 {
                    return Err(ApiError::invalid(
                        "autoscaling",
                        "Scale",
                        name,
                        vec![kplex_apimachinery::StatusCause::invalid(
                            "spec.replicas",
                            kplex_apimachinery::status::BadValue::Int(replicas),
                            "must be greater than or equal to 0",
                        )],
                    ));
                }
                if let Some(rv) = meta::resource_version(&scale).filter(|rv| !rv.is_empty())
                    && Some(rv) != meta::resource_version(current)
                {
                    return Err(ApiError::optimistic_lock_conflict(
                        &d.group, &d.plural, name,
                    ));
                }
                let mut obj = current.clone();
                let path: Vec<&str> = paths
                    .spec_replicas
                    .trim_start_matches('.')
                    .split('.')
                    .collect();
                meta::set_path(&mut obj, &path, json!(replicas));
                Ok(obj)
            })
            .await?;
        Ok(respond_value(
            desc,
            wanted,
            include,
            StatusCode::OK,
            &scale_of(desc, &result.object),
        ))
    }

    fn watch_response(
        &self,
        desc: Arc<ResourceDesc>,
        wanted: Wanted,
        include: IncludeObject,
        stream: crate::registry::WatchStream,
        timeout: Duration,
    ) -> Response<Body> {
        let mut shutdown = self.shutdown.clone();
        let ended = async move {
            tokio::select! {
                _ = tokio::time::sleep(timeout) => {}
                _ = crate::server::stopped(&mut shutdown) => {}
            }
        };
        self.metrics.watches.inc();
        let gauge = WatchGauge(self.metrics.watches.clone());
        let frames = stream.take_until(Box::pin(ended)).map(move |event| {
            let _keep = &gauge;
            Ok::<_, std::io::Error>(Frame::data(Bytes::from(render_event(
                &desc, wanted, include, event,
            ))))
        });
        let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
        let ct = match wanted.format {
            Format::Yaml => response::YAML,
            _ => response::JSON,
        };
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        resp
    }
}

fn is_tenancy(desc: &ResourceDesc, plural: &str) -> bool {
    matches!(
        desc.group.as_str(),
        crate::tenancy::TENANCY | crate::tenancy::CORE
    ) && desc.plural == plural
}

impl Api {
    /// RBAC of the addressed workspace (see `authz`), for resource and non-resource requests.
    async fn authorize(
        &self,
        cluster: Option<&str>,
        target: &Target,
        method: &Method,
        path: &str,
        user: &UserInfo,
    ) -> Result<(), ApiError> {
        let mut req = crate::authz::Request {
            user: user.name.clone(),
            groups: user.groups.clone(),
            ..Default::default()
        };
        match target {
            Target::Resource(r) => {
                // Anyone signed in may ask for (and so create) their home workspace.
                if r.group == crate::tenancy::TENANCY
                    && r.resource == "workspaces"
                    && r.name.as_deref() == Some("~")
                {
                    return Ok(());
                }
                req.verb = r.verb.as_str().to_string();
                let namespace = match (r.group.as_str(), r.resource.as_str()) {
                    ("", "namespaces") => r.name.clone(),
                    _ => r.namespace.clone(),
                };
                req.resource = Some(crate::authz::ResourceAttrs {
                    namespace,
                    group: r.group.clone(),
                    resource: r.resource.clone(),
                    subresource: r.subresource.clone(),
                    name: r.name.clone(),
                });
            }
            _ => {
                req.verb = method.as_str().to_ascii_lowercase();
                req.path = Some(path.to_string());
            }
        }
        self.authz.authorize(cluster, &req).await?;
        self.maximal_permission_policy(cluster, target, &req).await
    }

    /// A bound resource whose export has a maximal permission policy: the request must also
    /// be allowed, for `apis.kcp.io:binding:<user>`, by RBAC in the export's workspace.
    async fn maximal_permission_policy(
        &self,
        cluster: Option<&str>,
        target: &Target,
        req: &crate::authz::Request,
    ) -> Result<(), ApiError> {
        let (Some(cluster), Target::Resource(r)) = (cluster, target) else {
            return Ok(());
        };
        if req
            .groups
            .iter()
            .any(|g| g == kplex_apimachinery::user::MASTERS)
        {
            return Ok(());
        }
        let Some(desc) = self
            .served
            .lookup(Some(cluster), &r.group, &r.version, &r.resource)
        else {
            return Ok(());
        };
        let Some(bound) = desc.bound().filter(|b| b.maximal_permission_policy) else {
            return Ok(());
        };
        let policy = crate::apis::view::policy_request(req);
        if self
            .authz
            .rbac_allows(&bound.export_cluster, &policy)
            .await?
        {
            Ok(())
        } else {
            Err(crate::authz::denied(req))
        }
    }
}

/// What the initializing virtual workspace makes of a request.
enum Initializing {
    /// Answered here (an initializer removing itself).
    Answer(Response<Body>),
    /// Served as usual, restricted to what the predicate lets through.
    Filter(Option<crate::registry::Predicate>),
}

fn has_initializer(lc: &Value, initializer: &str) -> bool {
    lc.pointer("/status/initializers")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|i| i.as_str() == Some(initializer)))
}

impl Api {
    /// The initializing-workspaces virtual workspace: across clusters, the LogicalClusters that
    /// still wait on `initializer`; inside one of them, its content, and the right to remove
    /// `initializer` (and only that) from its LogicalCluster's status.
    async fn initializing(
        &self,
        initializer: &str,
        cluster: Option<&str>,
        target: &Target,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Initializing, ApiError> {
        let lc_write = |r: &ResourceRequest| {
            r.group == crate::tenancy::CORE && r.resource == "logicalclusters"
        };
        let Some(cluster) = cluster else {
            if let Target::Resource(r) = target
                && !(lc_write(r) && matches!(r.verb, Verb::List | Verb::Watch))
            {
                return Err(not_found_path());
            }
            let init = initializer.to_string();
            let predicate: crate::registry::Predicate =
                Arc::new(move |lc: &Value| has_initializer(lc, &init));
            return Ok(Initializing::Filter(Some(predicate)));
        };
        let desc = self
            .served
            .lookup(
                Some(cluster),
                crate::tenancy::CORE,
                crate::tenancy::VERSION,
                "logicalclusters",
            )
            .ok_or_else(not_found_path)?;
        let scope = Scope {
            cluster: Some(cluster.to_string()),
            desc: desc.clone(),
            namespace: None,
        };
        let lc = self
            .registry
            .get(&scope, crate::tenancy::LOGICAL_CLUSTER)
            .await?
            .decode()?;
        if !has_initializer(&lc, initializer) {
            return Err(ApiError::forbidden(
                "",
                "",
                "",
                &format!("logical cluster {cluster} is not waiting on initializer {initializer}"),
            ));
        }
        let Target::Resource(r) = target else {
            return Ok(Initializing::Filter(None));
        };
        if !(lc_write(r) && matches!(r.verb, Verb::Update | Verb::Patch)) {
            return Ok(Initializing::Filter(None));
        }
        let patch = if r.verb == Verb::Patch {
            Some(patch_kind(headers)?)
        } else {
            None
        };
        let init = initializer.to_string();
        let opts = WriteOptions {
            system: true,
            ..Default::default()
        };
        let result = self
            .registry
            .update_with(&scope, crate::tenancy::LOGICAL_CLUSTER, &opts, |cur, _| {
                let new = match patch {
                    Some(kind) => apply_patch(kind, cur, body)?,
                    None => body::decode(content_type(headers), body)?,
                };
                let mut expected = cur.clone();
                if let Some(list) = expected
                    .pointer_mut("/status/initializers")
                    .and_then(Value::as_array_mut)
                {
                    list.retain(|i| i.as_str() != Some(init.as_str()));
                }
                let comparable = |v: &Value| {
                    let mut v = v.clone();
                    meta::remove(&mut v, "resourceVersion");
                    meta::remove(&mut v, "managedFields");
                    v
                };
                if comparable(&new) != comparable(&expected) {
                    return Err(ApiError::forbidden(
                        crate::tenancy::CORE,
                        "logicalclusters",
                        crate::tenancy::LOGICAL_CLUSTER,
                        &format!(
                            "only removing initializer {init} from status.initializers is allowed"
                        ),
                    ));
                }
                Ok(expected)
            })
            .await?;
        let wanted = Wanted {
            format: Format::Json,
            shape: Shape::Object,
        };
        Ok(Initializing::Answer(respond_value(
            &desc,
            wanted,
            IncludeObject::default(),
            StatusCode::OK,
            &result.object,
        )))
    }

    /// A Workspace about to be created is claimed for its own request, which schedules
    /// it right after the create (see `Tenancy::schedule_claimed`); the controller, woken
    /// by the creation, leaves it alone meanwhile.
    fn claim_workspace(
        &self,
        scope: &Scope,
        opts: &WriteOptions,
        obj: &Value,
    ) -> Option<crate::tenancy::lifecycle::Claim> {
        if !is_tenancy(&scope.desc, "workspaces") || opts.dry_run {
            return None;
        }
        self.tenancy
            .claim(scope.cluster.as_deref()?, meta::name(obj)?)
    }

    /// Schedules a claimed Workspace just created; returns it as now stored. A failure here
    /// is the controller's to retry: the creation itself succeeded.
    async fn schedule_created(
        &self,
        claim: Option<crate::tenancy::lifecycle::Claim>,
    ) -> Option<Value> {
        match self.tenancy.schedule_claimed(claim?).await {
            Ok(ws) => ws,
            Err(e) => {
                tracing::debug!(error = %e, "scheduling at creation failed; the controller retries");
                None
            }
        }
    }
}

/// Keeps the open-watch gauge right when a stream is dropped.
struct WatchGauge(prometheus_client::metrics::gauge::Gauge);

impl Drop for WatchGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn version() -> Value {
    json!({
        "major": "1", "minor": "33",
        "gitVersion": concat!("v1.33.0+kplex-", env!("CARGO_PKG_VERSION")),
        "gitCommit": "", "gitTreeState": "clean", "buildDate": "",
        "goVersion": "", "compiler": "rustc", "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

fn not_found_path() -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

fn patch_kind(headers: &HeaderMap) -> Result<PatchKind, ApiError> {
    content_type(headers)
        .and_then(PatchKind::from_content_type)
        .ok_or_else(|| {
            ApiError::unsupported_media_type(&[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
            ])
        })
}

fn delete_options(
    headers: &HeaderMap,
    query: &Query,
    bytes: &[u8],
    user: &UserInfo,
) -> Result<DeleteOptions, ApiError> {
    let from_body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        body::decode(content_type(headers), bytes)?
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(String::from);
    let dry_run = query.get("dryRun").is_some_and(|d| d == "All")
        || from_body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|d| d == "All"));
    let mut policy = query
        .get("propagationPolicy")
        .cloned()
        .or_else(|| text(from_body.get("propagationPolicy")));
    if policy.is_none() && from_body.get("orphanDependents").and_then(Value::as_bool) == Some(true)
    {
        policy = Some("Orphan".into());
    }
    let pre = from_body.get("preconditions");
    Ok(DeleteOptions {
        dry_run,
        propagation_policy: policy,
        precondition_uid: text(pre.and_then(|p| p.get("uid"))),
        precondition_resource_version: text(pre.and_then(|p| p.get("resourceVersion"))),
        user: Some(Arc::new(user.clone())),
    })
}

fn apply_patch(kind: PatchKind, current: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    use kplex_apimachinery::{patch, patch_schema};
    match kind {
        PatchKind::Json => patch::json_patch(current, patch),
        PatchKind::Merge => patch::merge_patch(current, patch),
        PatchKind::Apply => Err(ApiError::unsupported_media_type(&[
            "application/json-patch+json",
            "application/merge-patch+json",
        ])),
        PatchKind::Strategic => {
            patch::strategic_merge_patch(current, patch, patch_schema::untyped())
        }
    }
}

fn discovery_response(
    accept: Option<&str>,
    legacy: impl FnOnce() -> Value,
    aggregated: impl FnOnce() -> Value,
) -> Response<Body> {
    let wanted = response::negotiate(accept, false, &[Shape::DiscoveryV2]);
    if wanted.is_some_and(|w| w.shape == Shape::DiscoveryV2) {
        let mut resp = response::json_value(StatusCode::OK, &aggregated());
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            ),
        );
        return resp;
    }
    response::json_value(StatusCode::OK, &legacy())
}

fn list_options(desc: &ResourceDesc, q: &Query) -> Result<ListOptions, ApiError> {
    let limit = match q.get("limit") {
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?
            .max(0) as usize,
        None => 0,
    };
    Ok(ListOptions {
        selectors: Selectors::parse(
            desc,
            q.get("labelSelector").map(String::as_str),
            q.get("fieldSelector").map(String::as_str),
        )?,
        limit,
        continue_token: q.get("continue").cloned(),
        resource_version: q.get("resourceVersion").cloned(),
        resource_version_match: q.get("resourceVersionMatch").cloned(),
    })
}

fn watch_options(desc: &ResourceDesc, q: &Query) -> Result<WatchOptions, ApiError> {
    Ok(WatchOptions {
        selectors: Selectors::parse(
            desc,
            q.get("labelSelector").map(String::as_str),
            q.get("fieldSelector").map(String::as_str),
        )?,
        resource_version: q.get("resourceVersion").cloned(),
        allow_bookmarks: flag(q, "allowWatchBookmarks"),
        send_initial_events: flag(q, "sendInitialEvents"),
        bookmark_interval: None,
    })
}

/// The field manager kube-apiserver assumes when a client names none: its user agent's
/// program name (`kubectl/v1.32 (linux/amd64)` → `kubectl`).
fn default_manager(headers: &HeaderMap) -> Option<String> {
    let ua = headers.get(header::USER_AGENT)?.to_str().ok()?;
    ua.split('/')
        .next()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

fn write_options(
    q: &Query,
    sub: Option<&str>,
    headers: &HeaderMap,
    user: &UserInfo,
) -> Result<WriteOptions, ApiError> {
    let dry_run = match q.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid dryRun value {other:?}: supported values: \"All\""
            )));
        }
    };
    Ok(WriteOptions {
        dry_run,
        field_validation: FieldValidation::parse(q.get("fieldValidation").map(String::as_str))?,
        field_manager: q
            .get("fieldManager")
            .cloned()
            .filter(|m| !m.is_empty())
            .or_else(|| default_manager(headers)),
        subresource: sub.map(String::from),
        system: false,
        applied: false,
        force: flag(q, "force"),
        pin_resource_version: false,
        user: Some(Arc::new(user.clone())),
    })
}

/// `fieldValidation=Strict` refuses a JSON body that repeats a field (kube's strict
/// decoding); other modes take the last value, as JSON decoders do.
fn strict_json(opts: &WriteOptions, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let json = content_type(headers).is_none_or(|ct| ct.starts_with("application/json"));
    if opts.field_validation != crate::registry::write::FieldValidation::Strict || !json {
        return Ok(());
    }
    let duplicates = body::duplicate_fields(body);
    if duplicates.is_empty() {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "strict decoding error: {}",
        duplicates
            .iter()
            .map(|d| format!("duplicate field \"{d}\""))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

fn add_warnings(resp: &mut Response<Body>, warnings: &[String]) {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
}

/// The autoscaling/v1 Scale view of an object.
fn scale_of(desc: &ResourceDesc, obj: &Value) -> Value {
    let paths = desc
        .scale
        .clone()
        .unwrap_or_else(|| crate::catalog::ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: None,
        });
    let at = |p: &str| {
        p.trim_start_matches('.')
            .split('.')
            .try_fold(obj, |v, k| v.get(k))
            .cloned()
    };
    let selector = match paths.label_selector.as_deref().and_then(at) {
        Some(Value::String(s)) => s,
        Some(sel @ Value::Object(_)) => {
            kplex_apimachinery::selector::LabelSelector::from_json(&sel)
                .map(|s| s.to_string())
                .unwrap_or_default()
        }
        _ => obj
            .get("spec")
            .and_then(|s| s.get("selector"))
            .and_then(|s| kplex_apimachinery::selector::LabelSelector::from_json(s).ok())
            .map(|s| s.to_string())
            .unwrap_or_default(),
    };
    let m = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let pick = |k: &str| m.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": pick("name"), "namespace": pick("namespace"), "uid": pick("uid"), "resourceVersion": pick("resourceVersion"), "creationTimestamp": pick("creationTimestamp")},
        "spec": {"replicas": at(&paths.spec_replicas).and_then(|v| v.as_i64()).unwrap_or(0)},
        "status": {"replicas": at(&paths.status_replicas).and_then(|v| v.as_i64()).unwrap_or(0), "selector": selector},
    })
}

fn delete_status(desc: &ResourceDesc, obj: &Value) -> Response<Body> {
    let details = StatusDetails {
        name: meta::name(obj).unwrap_or("").to_string(),
        group: desc.group.clone(),
        kind: desc.plural.clone(),
        uid: meta::uid(obj).unwrap_or("").to_string(),
        ..Default::default()
    };
    response::json_value(StatusCode::OK, &success_status(&details))
}

fn serialize(format: Format, value: &Value) -> Result<Vec<u8>, ApiError> {
    match format {
        Format::Protobuf => kplex_protobuf::encode(value)
            .map_err(|e| ApiError::internal(&format!("encoding protobuf: {e}"))),
        Format::Yaml => serde_saphyr::to_string(value)
            .map(String::into_bytes)
            .map_err(|e| ApiError::internal(&e.to_string())),
        _ => {
            let mut v =
                serde_json::to_vec(value).map_err(|e| ApiError::internal(&e.to_string()))?;
            v.push(b'\n');
            Ok(v)
        }
    }
}

fn shaped<'a>(
    desc: &ResourceDesc,
    wanted: Wanted,
    include: IncludeObject,
    obj: &'a Value,
) -> std::borrow::Cow<'a, Value> {
    use std::borrow::Cow;
    match wanted.shape {
        Shape::Table => {
            let rv = meta::resource_version(obj).unwrap_or("").to_string();
            Cow::Owned(table::table(
                desc,
                std::slice::from_ref(obj),
                include,
                json!({"resourceVersion": rv}),
            ))
        }
        Shape::PartialObjectMetadata => Cow::Owned(table::partial_metadata(obj)),
        _ => Cow::Borrowed(obj),
    }
}

fn respond_value(
    desc: &ResourceDesc,
    wanted: Wanted,
    include: IncludeObject,
    code: StatusCode,
    obj: &Value,
) -> Response<Body> {
    match serialize(wanted.format, &shaped(desc, wanted, include, obj)) {
        Ok(body) => response::with_body(code, wanted.format.content_type(), body),
        Err(e) => response::error(&e),
    }
}

fn respond_stored(
    desc: &ResourceDesc,
    wanted: Wanted,
    include: IncludeObject,
    stored: &Stored,
) -> Result<Response<Body>, ApiError> {
    if wanted.format == Format::Json && wanted.shape == Shape::Object {
        // The fast path: stored bytes with the resource version spliced in.
        let mut body = stored.render_as(desc);
        body.push(b'\n');
        return Ok(response::with_body(StatusCode::OK, response::JSON, body));
    }
    Ok(respond_value(
        desc,
        wanted,
        include,
        StatusCode::OK,
        &stored.decode_as(desc)?,
    ))
}

fn respond_list(
    desc: &ResourceDesc,
    wanted: Wanted,
    include: IncludeObject,
    result: &crate::registry::ListResult,
) -> Result<Response<Body>, ApiError> {
    if wanted.format == Format::Json && wanted.shape == Shape::Object {
        let mut body = render_list(desc, result);
        body.push(b'\n');
        return Ok(response::with_body(StatusCode::OK, response::JSON, body));
    }
    let mut list_meta = json!({"resourceVersion": result.resource_version.to_string()});
    if let Some(c) = &result.continue_token {
        list_meta["continue"] = json!(c);
    }
    if let Some(r) = result.remaining.filter(|r| *r > 0) {
        list_meta["remainingItemCount"] = json!(r);
    }
    let items = result
        .items
        .iter()
        .map(Stored::decode)
        .collect::<Result<Vec<_>, _>>()?;
    let doc = match wanted.shape {
        Shape::Table => table::table(desc, &items, include, list_meta),
        Shape::PartialObjectMetadataList => json!({
            "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
            "items": items.iter().map(table::partial_metadata).collect::<Vec<_>>(),
        }),
        _ => {
            json!({"kind": desc.list_kind(), "apiVersion": desc.api_version(), "metadata": list_meta, "items": items})
        }
    };
    Ok(response::with_body(
        StatusCode::OK,
        wanted.format.content_type(),
        serialize(wanted.format, &doc)?,
    ))
}

/// One watch event as a JSON line (`{"type":…,"object":…}\n`).
fn render_event(
    desc: &ResourceDesc,
    wanted: Wanted,
    include: IncludeObject,
    event: WatchEvent,
) -> Vec<u8> {
    let (kind, object): (&str, Result<Vec<u8>, ApiError>) = match event {
        WatchEvent::Object(kind, stored) => {
            let body = if wanted.shape == Shape::Object {
                Ok(stored.render_as(desc))
            } else {
                stored.decode_as(desc).and_then(|obj| {
                    serde_json::to_vec(&shaped(desc, wanted, include, &obj))
                        .map_err(|e| ApiError::internal(&e.to_string()))
                })
            };
            (kind.as_str(), body)
        }
        WatchEvent::Shared(kind, shared) => {
            let body = if wanted.shape == Shape::Object {
                Ok(if desc.conversion.is_some() {
                    shared.stored.render_as(desc)
                } else if desc.is_custom() {
                    crate::object::with_api_version(shared.json().to_vec(), &desc.api_version())
                } else {
                    shared.json().to_vec()
                })
            } else {
                shared.stored.decode_as(desc).and_then(|obj| {
                    serde_json::to_vec(&shaped(desc, wanted, include, &obj))
                        .map_err(|e| ApiError::internal(&e.to_string()))
                })
            };
            (kind.as_str(), body)
        }
        WatchEvent::Bookmark {
            resource_version,
            initial_events_end,
        } => {
            let mut metadata = json!({"resourceVersion": resource_version.to_string()});
            if initial_events_end {
                metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            let obj =
                json!({"kind": desc.kind, "apiVersion": desc.api_version(), "metadata": metadata});
            (
                WatchEventKind::Bookmark.as_str(),
                serde_json::to_vec(&obj).map_err(|e| ApiError::internal(&e.to_string())),
            )
        }
        WatchEvent::Error(e) => (
            WatchEventKind::Error.as_str(),
            serde_json::to_vec(&e.to_status()).map_err(|e| ApiError::internal(&e.to_string())),
        ),
    };
    let object = object.unwrap_or_else(|e| serde_json::to_vec(&e.to_status()).unwrap_or_default());
    let mut out = Vec::with_capacity(object.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(&object);
    out.extend_from_slice(b"}\n");
    if wanted.format == Format::Yaml {
        // YAML watch streams are JSON documents too (kube sends JSON framing for watches).
        return out;
    }
    out
}

/// gzip large responses for clients that accept it (kube-apiserver does above 128 KiB).
async fn maybe_gzip(req_headers: &HeaderMap, resp: Response<Body>) -> Response<Body> {
    const THRESHOLD: usize = 128 * 1024;
    let accepts = req_headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let small_or_stream = resp
        .body()
        .size_hint()
        .exact()
        .is_none_or(|n| (n as usize) < THRESHOLD);
    if !accepts || small_or_stream {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(collected) = body.collect().await else {
        return response::error(&ApiError::internal("response body failed"));
    };
    let raw = collected.to_bytes();
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(raw.len() / 4),
        flate2::Compression::fast(),
    );
    if std::io::Write::write_all(&mut enc, &raw).is_err() {
        return Response::from_parts(parts, response::full(raw));
    }
    match enc.finish() {
        Ok(gz) => {
            parts
                .headers
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, response::full(gz))
        }
        Err(_) => Response::from_parts(parts, response::full(raw)),
    }
}

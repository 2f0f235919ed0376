//! The request chain, read top to bottom in the order of Kubernetes'
//! `DefaultBuildHandlerChain` (apiserver/pkg/server/config.go) and kcp's
//! `BuildHandlerChainFunc` (pkg/server/config.go); each stage is a file under `filters/`:
//!
//! ```text
//! request info   filters/request_info.rs    the URL: logical cluster, resource, verb; query
//! authentication filters/authentication.rs  who (kept; a 401 is answered after the body)
//! audit          filters/audit.rs           the policy's level; the event written at the end
//! limits         filters/limits.rs          in-flight and watch budgets (429), deadline (504)
//! body           filters/body.rs            read it (≤ 3 MiB, 413) before any answer
//! cluster        filters/cluster.rs         /clusters/<path|name> → logical cluster (404)
//! impersonation  filters/impersonation.rs   Impersonate-* allowed by that workspace's RBAC
//! authorization  filters/authorization.rs   RBAC of the workspace, around it the features'
//!                                           AuthorizationHooks (home workspaces, maximal
//!                                           permission policy); skipped for a virtual
//!                                           workspace that authorizes on its own terms
//! virtual ws     filters/virtual_workspaces.rs  /services/<name>/…: the feature's
//!                                           VirtualWorkspace answers, or says how to serve
//! dispatch       endpoints/                 discovery, OpenAPI, virtual resources, the registry
//! ```
//!
//! Request state travels explicitly (the parsed request, the user, the body), never in a
//! task-local. Large awaitees are boxed where they are awaited: a request's future is moved
//! at least once (into hyper's task), and unboxed it was ~100 KB.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use kplex_apimachinery::{ApiError, UserInfo};
use kplex_auth::authz::AuthorizationHook;
use kplex_registry::registry::create_hook::CreateHook;
use kplex_registry::virtual_resource::VirtualResource;
use kplex_registry::virtual_workspace::{Authorization, Decision, Serve, VirtualWorkspace};

use crate::audit::Level;
use crate::endpoints::{render::*, resource::*};
use crate::filters::audit::AuditRecord;
use crate::filters::body::read_body;
use crate::filters::limits::{hold_while_streaming, refuse_after_body};
use crate::filters::request_info::{RequestContext, find_virtual_workspace, request_info};
use crate::filters::virtual_workspaces::with_labels_on_create;
use crate::registry::Registry;
use crate::request::Target;
use crate::response::{self, Body};
use crate::served::Served;
use crate::{metrics::Metrics, openapi, workspace_snapshot};

/// The largest workspace snapshot a restore accepts (an authorized admin's upload).
const MAX_RESTORE: usize = 1024 * 1024 * 1024;

/// Everything a request handler needs; shared by all connections.
pub struct Api {
    pub registry: Registry,
    pub served: Arc<Served>,
    pub authn: Arc<crate::authn::Authenticator>,
    pub metrics: Metrics,
    /// Per-workspace request figures, when an operator asked for them.
    pub workspace_requests: Option<Arc<crate::workspace_metrics::WorkspaceRequests>>,
    /// What `/metrics` serves: every component's metrics.
    pub exposition: crate::metrics::Exposition,
    /// Counted from the store when `/metrics` is read.
    pub storage_metrics: crate::storage_metrics::StorageMetrics,
    /// Resources answered without being stored (reviews, TokenRequest, `workspaces/~`).
    pub virtual_resources: Vec<Arc<dyn VirtualResource>>,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    pub openapi: openapi::Cache,
    /// The features' views under `/services/<name>/…`.
    pub virtual_workspaces: Vec<Arc<dyn VirtualWorkspace>>,
    /// The features' rules around RBAC (home workspaces, the maximal permission policy).
    pub authorization_hooks: Vec<Arc<dyn AuthorizationHook>>,
    /// The features' work around a create (workspace scheduling).
    pub create_hooks: Vec<Arc<dyn CreateHook>>,
    /// Where a logical cluster missing from the index is looked for before a 404.
    pub cluster_lookups: Vec<Arc<dyn kplex_registry::clusters::ClusterLookup>>,
    pub authz: crate::authz::Authorizer,
    /// `None`: no audit log.
    pub audit: Option<crate::audit::Auditor>,
    pub limits: crate::limits::Limits,
}

impl Api {
    /// The outer chain: what every request passes, probes included.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: Arc<crate::authn::ConnInfo>,
    ) -> Response<Body> {
        let start = Instant::now();
        let received = std::time::SystemTime::now();
        let (parts, body) = req.into_parts();
        // 1. Request info.
        let mut ctx = request_info(&parts, &self.served, &self.virtual_workspaces);
        // 2. Authentication, once, here: limits and audit need the user before routing;
        //    `route` answers a 401 from the same result after reading the body.
        let authenticated = self.authenticate(&parts.headers, &conn, &ctx.authn_workspace);
        let user = authenticated.as_ref().ok().map(|(user, _)| user.clone());
        let impersonator = authenticated
            .as_ref()
            .ok()
            .and_then(|(_, i)| i.as_ref().map(|i| i.by.clone()));
        // 3. Audit: the policy's level for this request.
        let level = self.audit_level(&ctx, user.as_ref());
        // 4. Limits: in-flight budgets (watches: per user), then the request deadline.
        let admitted = self.admit(&ctx, user.as_ref());
        let verb = ctx.metric_verb(&parts.method, &parts.headers);
        let in_flight = match ctx.is_watch {
            true => self.metrics.start_long_running(&ctx.metric_labels(verb)),
            false => self.metrics.start(verb),
        };
        // Boxed: the future of a request is moved at least once (into hyper's stream task),
        // and unboxed this one made it ~100 KB, copied on every request.
        let routed = Box::pin(async {
            let permit = match admitted {
                Ok(permit) => permit,
                Err(e) => {
                    refuse_after_body(&parts.method, body).await;
                    return Err(e);
                }
            };
            let routed = self.route(&ctx, &parts.method, &parts.headers, body, authenticated);
            let resp = if ctx.is_watch {
                routed.await?
            } else {
                self.limits.deadline(routed).await?
            };
            Ok::<_, ApiError>((resp, permit))
        });
        // One span per request (debug level: free unless asked for with RUST_LOG), so what
        // the registry, admission and the store log is tied to who asked for what, where.
        // A caller's W3C `traceparent` makes this span part of its trace (when traces
        // are exported: `--tracing-config-file`).
        let traceparent = parts
            .headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let span = tracing::debug_span!(
            "request",
            cluster = %ctx.workspace,
            verb = %ctx.verb,
            resource = %ctx.resource,
            user = user.as_ref().map_or("", |u| u.name.as_str()),
            traceparent,
        );
        let routed = tracing::Instrument::instrument(routed, span).await;
        let request_body = ctx.audited_body.get().filter(|_| level >= Level::Request);
        let resp = match routed {
            Ok((resp, permit)) => hold_while_streaming(resp, permit),
            Err(e) => response::error(&e),
        };
        let (resp, response_body) = self.buffer_for_audit(level, &ctx, resp).await;
        let resp = maybe_pretty(wants_pretty(&ctx.query, &parts.headers), resp).await;
        let resp = maybe_gzip(&parts.headers, resp).await;
        self.record_audit(&AuditRecord {
            ctx: &ctx,
            parts: &parts,
            conn: &conn,
            level,
            user: user.as_ref(),
            impersonator: impersonator.as_ref(),
            received,
            code: resp.status().as_u16(),
            request_body,
            response_body: response_body.as_ref(),
        });
        let size = hyper::body::Body::size_hint(resp.body()).exact();
        let seconds = start.elapsed().as_secs_f64();
        if let Some(w) = &self.workspace_requests {
            w.record(&ctx.workspace, seconds);
        }
        self.metrics.record(
            ctx.take_metric_labels(verb),
            resp.status().as_u16(),
            seconds,
            size,
        );
        // A watch is long-running while it streams; other requests were in flight while
        // their handler ran.
        match ctx.is_watch {
            true => keep_while_streaming(resp, in_flight),
            false => resp,
        }
    }

    /// The inner chain: body → cluster → impersonation → authorization → virtual workspaces
    /// → dispatch.
    pub(crate) async fn route(
        &self,
        ctx: &RequestContext,
        method: &Method,
        headers: &HeaderMap,
        body: Incoming,
        authenticated: Result<(UserInfo, Option<crate::authn::Impersonation>), ApiError>,
    ) -> Result<Response<Body>, ApiError> {
        let (info, query) = (&ctx.info, &ctx.query);
        let target = info.target.clone();
        // Probes and the version answer anyone, as in kube-apiserver.
        if let Some(answer) = self.probe(&target) {
            return Ok(answer);
        }
        // 5. Body: read before answering anything, a 401 included — but a workspace
        //    restore's (which may be far larger than any object) only once its sender is
        //    known to be allowed to send it (step 8).
        let (body, restore_body) = match target == Target::Snapshot && method == Method::PUT {
            true => (Ok(Bytes::new()), Some(body)),
            false => (read_body(method, body).await, None),
        };
        let (user, impersonation) = match authenticated {
            Ok(authenticated) => authenticated,
            Err(e) => {
                if let Some(body) = restore_body {
                    refuse_after_body(method, body).await;
                }
                return Err(e);
            }
        };
        let body = body?;
        if self.audit.is_some() {
            let _ = ctx.audited_body.set(body.clone());
        }
        // 6. Cluster: the logical cluster addressed (None: the wildcard view).
        let cluster = self.resolve_cluster(&info.cluster).await?;
        //    A service account's token is good only while the account exists, where it
        //    authenticated (a virtual workspace's home cluster, else the one addressed).
        let authn_cluster = match &cluster {
            Some(c) if ctx.authn_workspace == ctx.workspace => Some(c.as_str()),
            _ if ctx.authn_workspace == "*" => None,
            _ => Some(ctx.authn_workspace.as_str()),
        };
        crate::serviceaccount::check_still_exists(self.accounts(), authn_cluster, &user).await?;
        // 7. Impersonation, allowed by that workspace's RBAC.
        if let Some(impersonation) = &impersonation {
            self.authorize_impersonation(cluster.as_deref(), impersonation)
                .await?;
        }
        // 8. Authorization: RBAC of the workspace and the features' hooks — unless the
        //    virtual workspace addressed authorizes on its own terms (in step 9).
        let vw = find_virtual_workspace(info, &self.virtual_workspaces);
        if vw.is_none_or(|vw| vw.authorization() == Authorization::Workspace) {
            self.authorize(cluster.as_deref(), &target, method, &info.path, &user)
                .await?;
        }
        // Metrics, for whom RBAC allows `get` on `/metrics` (kube's `system:monitoring`),
        // checked just above: in a workspace, that workspace's object counts (its admins
        // see nothing of others); in the root, the whole process's.
        if target == Target::Metrics
            && let Some(workspace) = cluster
                .as_deref()
                .filter(|c| *c != crate::request::ROOT_CLUSTER)
        {
            let text = crate::storage_metrics::workspace_exposition(
                self.registry.store.as_ref(),
                &self.served,
                workspace,
            )
            .await;
            return Ok(response::with_body(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                text,
            ));
        }
        if target == Target::Metrics {
            self.storage_metrics
                .refresh(&self.registry, &self.served)
                .await;
            return Ok(response::with_body(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.exposition.encode(),
            ));
        }
        if target == Target::Snapshot {
            return self
                .snapshot(cluster.as_deref(), method, query, &user, restore_body)
                .await;
        }
        // 9. Virtual workspaces: the one addressed answers, or says how to serve.
        let serve = match vw {
            // Boxed here and below: an inline awaitee makes every request's future as large
            // as the largest one (see `handle`).
            Some(vw) => match Box::pin(self.virtual_workspace(
                vw.as_ref(),
                info,
                cluster.as_deref(),
                headers,
                &body,
                &user,
            ))
            .await?
            {
                Decision::Answer(answer) => {
                    return self.respond_virtual_answer(
                        cluster.as_deref(),
                        &target,
                        headers,
                        query,
                        &answer,
                    );
                }
                Decision::Serve(serve) => serve,
            },
            None => Serve::default(),
        };
        // 10. Dispatch: discovery and OpenAPI, else the resource verbs.
        let resources = || match &serve.discovery {
            Some(resources) => resources.clone(),
            None => self.served.resources(cluster.as_deref()),
        };
        if let Some(answer) = self.discovery(cluster.as_deref(), &target, headers, resources) {
            return answer;
        }
        let Target::Resource(r) = target else {
            return Err(not_found_path());
        };
        let (headers, body) = with_labels_on_create(&serve, &r, headers, body)?;
        Box::pin(self.resource(
            cluster,
            r,
            serve.desc,
            &user,
            &headers,
            query,
            body,
            serve.predicate,
            serve.trigger,
        ))
        .await
    }

    /// `/snapshot`, allowed by the workspace's RBAC just before (`get`, or `put` to
    /// restore): in the root workspace without `?scope=workspace`, a backup of the whole
    /// store (`kplex snapshot save`; root's admins are the cluster's); otherwise the
    /// workspace addressed — its snapshot (`kubectl ws snapshot`), its objects as YAML
    /// manifests with `?format=yaml` (`kubectl ws export`), or a PUT of a workspace
    /// snapshot to restore into it (`kubectl ws restore`, `kubectl ws fork`).
    async fn snapshot(
        &self,
        cluster: Option<&str>,
        method: &Method,
        query: &crate::filters::request_info::Query,
        user: &UserInfo,
        restore_body: Option<Incoming>,
    ) -> Result<Response<Body>, ApiError> {
        let Some(cluster) = cluster else {
            return Err(ApiError::no_such_path());
        };
        let path = self
            .served
            .path_of(cluster)
            .unwrap_or_else(|| cluster.to_string());
        let path = path.as_str();
        let failed = |e: kplex_snapshot::Error| ApiError::internal(&e.to_string());
        let written_by = concat!("kplex ", env!("CARGO_PKG_VERSION"));
        let whole_store = cluster == crate::request::ROOT_CLUSTER
            && query.get("scope").map(String::as_str) != Some("workspace");
        let store = self.registry.store.clone();
        let snapshot = match (method, restore_body) {
            (&Method::GET, _) if whole_store => {
                let pages = kplex_snapshot::Pages::open(store, "a running kplex", written_by)
                    .await
                    .map_err(failed)?;
                return Ok(stream_snapshot(pages));
            }
            (&Method::GET, _) => {
                workspace_snapshot::take(store.as_ref(), &self.served, cluster, path, written_by)
                    .await?
            }
            (&Method::PUT, Some(body)) => {
                // A restore writes below admission (no bind checks on APIBindings, no
                // webhooks, no quota): a workspace's own admin could use it to reach what
                // admission would refuse them, so it is the cluster administrators' alone.
                if !user.is_master() {
                    refuse_after_body(method, body).await;
                    return Err(ApiError::forbidden(
                        "",
                        "",
                        "",
                        &format!(
                            "User \"{}\" cannot restore a workspace: a restore writes below admission, so only cluster administrators (system:masters) may",
                            user.name
                        ),
                    ));
                }
                let body = crate::body::read_up_to(body, MAX_RESTORE).await?;
                let snapshot = kplex_snapshot::read(&mut body.as_ref())
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                let restored =
                    workspace_snapshot::restore(&store, &self.served, cluster, &snapshot).await?;
                let answer = serde_json::json!({
                    "workspace": path,
                    "written": restored.written,
                    "unchanged": restored.unchanged,
                    "deleted": restored.deleted,
                });
                return Ok(response::with_body(
                    StatusCode::OK,
                    "application/json",
                    answer.to_string(),
                ));
            }
            _ => {
                return Err(ApiError::method_not_supported(
                    "",
                    "snapshot",
                    method.as_str(),
                ));
            }
        };
        if query.get("format").map(String::as_str) == Some("yaml") && !whole_store {
            let yaml = workspace_snapshot::export(&snapshot)?;
            return Ok(response::with_body(
                StatusCode::OK,
                "application/yaml",
                yaml,
            ));
        }
        let mut file = Vec::new();
        kplex_snapshot::write(&snapshot, &mut file).map_err(failed)?;
        Ok(response::with_body(
            StatusCode::OK,
            "application/octet-stream",
            file,
        ))
    }

    /// `/livez`, `/healthz`, `/readyz` and `/version`.
    fn probe(&self, target: &Target) -> Option<Response<Body>> {
        Some(match target {
            Target::Livez | Target::Healthz => {
                response::with_body(StatusCode::OK, "text/plain", "ok")
            }
            Target::Readyz if *self.shutdown.borrow() => response::with_body(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "shutting down",
            ),
            Target::Readyz => response::with_body(StatusCode::OK, "text/plain", "ok"),
            Target::Version => response::json_value(StatusCode::OK, &version()),
            _ => return None,
        })
    }
}

/// Keeps `keep` (an in-flight count) alive until the response body is done: a watch is
/// long-running while it streams, not while its handler ran.
fn keep_while_streaming<T: Send + 'static>(resp: Response<Body>, keep: T) -> Response<Body> {
    resp.map(|b| {
        http_body_util::BodyExt::boxed_unsync(http_body_util::BodyExt::map_frame(b, move |frame| {
            let _ = &keep;
            frame
        }))
    })
}

/// The whole store's snapshot as a streamed answer, a page at a time: memory holds one
/// page, whatever the store's size. A read that fails midway (the revision compacted away
/// by then) aborts the connection, so the client has a file without its trailer, which
/// every reader refuses.
fn stream_snapshot(pages: kplex_snapshot::Pages) -> Response<Body> {
    use http_body_util::{BodyExt, StreamBody};
    // Pulled by the connection: the next page is read when the last one was sent.
    let frames = futures::stream::unfold(Some(pages), |pages| async move {
        let mut pages = pages?;
        match pages.next_chunk().await {
            Ok(Some(chunk)) => Some((
                Ok(hyper::body::Frame::data(bytes::Bytes::from(chunk))),
                Some(pages),
            )),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "snapshot: the stream stopped");
                Some((Err(std::io::Error::other(e.to_string())), None))
            }
        }
    });
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/octet-stream"),
    );
    resp
}

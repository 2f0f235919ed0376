//! The resource verbs: get, list, watch, create, update, patch, delete, deletecollection,
//! and the status/scale subresources, over the generic registry.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use kplex_apimachinery::{ApiError, UserInfo, meta};
use serde_json::{Value, json};

use crate::body;
use crate::catalog::ResourceDesc;
use crate::registry::{DeleteOutcome, ListOptions, PatchKind, Scope};
use crate::request::{ResourceRequest, Verb};
use crate::response::{self, Body, Format, Shape, Wanted};
use crate::table::IncludeObject;
use kplex_registry::virtual_resource::VirtualRequest;

use crate::chain::Api;
use crate::endpoints::{options::*, render::*};
use crate::filters::request_info::*;

/// Keeps the open-watch gauge right when a stream is dropped.
pub(crate) struct WatchGauge(prometheus_client::metrics::gauge::Gauge);

pub(crate) fn version() -> Value {
    json!({
        "major": "1", "minor": "33",
        "gitVersion": concat!("v1.33.0+kplex-", env!("CARGO_PKG_VERSION")),
        "gitCommit": "", "gitTreeState": "clean", "buildDate": "",
        "goVersion": "", "compiler": "rustc", "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

pub(crate) fn not_found_path() -> ApiError {
    ApiError::no_such_path()
}

impl Api {
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn resource(
        &self,
        cluster: Option<String>,
        r: ResourceRequest,
        desc: Option<Arc<ResourceDesc>>,
        user: &UserInfo,
        headers: &HeaderMap,
        query: &Query,
        body: Bytes,
        predicate: Option<crate::registry::Predicate>,
        trigger: Option<String>,
    ) -> Result<Response<Body>, ApiError> {
        let desc = match desc {
            Some(d) => d,
            None => self
                .served
                .lookup(cluster.as_deref(), &r.group, &r.version, &r.resource)
                .ok_or_else(not_found_path)?,
        };
        let mut resp = self
            .serve_resource(
                cluster, r, &desc, user, headers, query, body, predicate, trigger,
            )
            .await?;
        if let Some(warning) = &desc.deprecation_warning {
            add_warnings(&mut resp, std::slice::from_ref(warning));
        }
        Ok(resp)
    }

    #[allow(clippy::too_many_arguments)]
    async fn serve_resource(
        &self,
        cluster: Option<String>,
        r: ResourceRequest,
        desc: &Arc<ResourceDesc>,
        user: &UserInfo,
        headers: &HeaderMap,
        query: &Query,
        body: Bytes,
        predicate: Option<crate::registry::Predicate>,
        trigger: Option<String>,
    ) -> Result<Response<Body>, ApiError> {
        let desc = desc.clone();
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
            Some(own) if desc.strategy.subresources().contains(&own) => {}
            Some(_) => return Err(not_found_path()),
        }
        if sub.is_some() && !matches!(r.verb, Verb::Get | Verb::Update | Verb::Patch) {
            return Err(ApiError::method_not_supported(
                &desc.group,
                &format!("{}/{}", desc.plural, sub.unwrap_or("")),
                r.verb.as_str(),
            ));
        }
        let predicate = match cluster {
            None if desc.is_custom() => Some(self.serving_clusters_only(&desc, predicate)),
            _ => predicate,
        };
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
                view_filter(&mut opts.selectors, &predicate, &trigger);
                let result = self.registry.list(&scope, &opts).await?;
                respond_list(&desc, wanted, include, &result)
            }
            (Verb::Watch, _) => {
                let mut opts = watch_options(&desc, query, r.name.as_deref())?;
                view_filter(&mut opts.selectors, &predicate, &trigger);
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
                opts.timeout = Some(timeout);
                let stream = self.registry.watch(&scope, opts).await?;
                let stream = match scope.cluster.as_deref() {
                    Some(cluster) => self.ends_with_cluster(cluster, stream),
                    None => stream,
                };
                Ok(self.watch_response(desc, wanted, include, stream, timeout))
            }
            (Verb::Create, _) => {
                let obj = body::decode_object(&desc.kind, content_type(headers), &body)?;
                let opts = write_options(query, None, headers, user)?;
                strict_json(&opts, headers, &body)?;
                let begun: Vec<_> = self
                    .create_hooks
                    .iter()
                    .filter_map(|h| h.begin_create(&scope, &opts, &obj))
                    .collect();
                let mut result = self.registry.create(&scope, obj, &opts).await?;
                for finish in begun {
                    if let Some(object) = finish.finish().await {
                        result.object = object;
                    }
                }
                let mut resp =
                    respond_value(&desc, wanted, include, StatusCode::CREATED, &result.object);
                add_warnings(&mut resp, &result.warnings);
                Ok(resp)
            }
            (Verb::Update, Some("scale")) => {
                let scale = body::decode_object("Scale", content_type(headers), &body)?;
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
                    move |current| kind.apply_untyped(current, &patch),
                )
                .await
            }
            (Verb::Update, _) => {
                let obj = body::decode_object(&desc.kind, content_type(headers), &body)?;
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
                    if scope.is_shared_item(meta::name(&obj).unwrap_or(""), item) {
                        continue;
                    }
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
    pub(crate) async fn write_scale(
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

    /// Across logical clusters a custom resource is shown only from clusters that serve it
    /// at the version asked: one workspace's CRD may serve `v1` and another's `v2` of the
    /// same group and resource, and an object is never shown in a version its own workspace
    /// does not serve (`predicate`: a further condition the request already carries).
    fn serving_clusters_only(
        &self,
        desc: &ResourceDesc,
        predicate: Option<crate::registry::Predicate>,
    ) -> crate::registry::Predicate {
        let served = self.served.clone();
        let (group, version, plural) = (
            desc.group.clone(),
            desc.version.clone(),
            desc.plural.clone(),
        );
        // A bound resource's objects come from clusters bound to the same export.
        let identity = desc.bound().map(|b| b.identity.clone());
        Arc::new(move |obj: &serde_json::Value| {
            let serves =
                meta::annotation(obj, crate::object::CLUSTER_ANNOTATION).is_some_and(|c| {
                    served
                        .lookup(Some(c), &group, &version, &plural)
                        .is_some_and(|d| d.bound().map(|b| &b.identity) == identity.as_ref())
                });
            serves && predicate.as_ref().is_none_or(|p| p(obj))
        })
    }

    /// A watch in one logical cluster ends when the cluster is deleted, with an error event
    /// saying so (as a client would otherwise wait forever on a workspace that is gone; its
    /// next request gets the 404).
    fn ends_with_cluster(
        &self,
        cluster: &str,
        stream: crate::registry::WatchStream,
    ) -> crate::registry::WatchStream {
        let path = self
            .served
            .path_of(cluster)
            .unwrap_or_else(|| cluster.to_string());
        let removed = self.served.clusters().removal_of(cluster);
        let gone = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = gone.clone();
        let until = async move {
            removed.await;
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        };
        let last = futures::stream::once(async move {
            gone.load(std::sync::atomic::Ordering::Relaxed).then(|| {
                crate::registry::WatchEvent::Error(ApiError::not_found("", "workspaces", &path))
            })
        })
        .filter_map(futures::future::ready);
        Box::pin(stream.take_until(Box::pin(until)).chain(last))
    }

    pub(crate) fn watch_response(
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
        let kind = crate::metrics::KindLabels {
            group: desc.group.clone(),
            version: desc.version.clone(),
            kind: desc.kind.clone(),
        };
        let gauge = WatchGauge(self.metrics.watchers.get_or_create_owned(&kind));
        gauge.0.inc();
        let events = self.metrics.watch_events.get_or_create_owned(&kind);
        let frames = stream.take_until(Box::pin(ended)).map(move |event| {
            let _keep = &gauge;
            if matches!(
                event,
                crate::registry::WatchEvent::Object(..) | crate::registry::WatchEvent::Shared(..)
            ) {
                events.inc();
            }
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

impl Drop for WatchGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A virtual workspace's filter, applied to a list's or a watch's selectors alike: its
/// predicate, and the label every object it admits carries — the watch cache finds those
/// objects by that label, and a store scan parses only those (lists once lacked it: a
/// hundred syncers relisting after a restart parsed every namespace of every workspace).
fn view_filter(
    selectors: &mut crate::registry::Selectors,
    predicate: &Option<crate::registry::Predicate>,
    trigger: &Option<String>,
) {
    selectors.predicate = predicate.clone();
    selectors.trigger = trigger.clone();
}

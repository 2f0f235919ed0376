//! Virtual workspaces, `/services/<name>/<prefix…>/clusters/{*|<cluster>}/…`: the
//! features' [`VirtualWorkspace`]s (kcp's APIExport view in `kplex-apis`, initializing
//! workspaces in `kplex-tenancy`) decide how each request is served; this stage asks the one
//! the URL names and carries out what it says — render its answer, or hand the generic
//! endpoints its description, predicate and discovery, stamping its labels on creates.
//! Who authorizes is also theirs to say (see `chain.rs`).

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use kplex_apimachinery::{ApiError, UserInfo, meta};
use kplex_registry::virtual_workspace::{
    Answer, Decision, ResourceRef, Serve, VirtualWorkspace, VirtualWorkspaceRequest,
};
use serde_json::Value;

use crate::body;
use crate::request::{RequestInfo, ResourceRequest, Target, Verb};
use crate::response::{self, Body};

use crate::chain::Api;
use crate::endpoints::{options::*, resource::not_found_path};
use crate::filters::request_info::Query;

impl Api {
    /// What the virtual workspace `vw` makes of the request.
    pub(crate) async fn virtual_workspace(
        &self,
        vw: &dyn VirtualWorkspace,
        info: &RequestInfo,
        cluster: Option<&str>,
        headers: &HeaderMap,
        body: &Bytes,
        user: &UserInfo,
    ) -> Result<Decision, ApiError> {
        let prefix = info
            .virtual_workspace
            .as_ref()
            .map_or(&[][..], |p| &p.prefix[..]);
        let req = VirtualWorkspaceRequest {
            prefix,
            cluster,
            resource: match &info.target {
                Target::Resource(r) => Some(resource_ref(r)),
                _ => None,
            },
            user,
            content_type: content_type(headers),
            body,
        };
        vw.serve(&req).await
    }

    /// A virtual workspace's answer, as the addressed resource's kind when it is one.
    pub(crate) fn respond_virtual_answer(
        &self,
        cluster: Option<&str>,
        target: &Target,
        headers: &HeaderMap,
        query: &Query,
        answer: &Answer,
    ) -> Result<Response<Body>, ApiError> {
        let Target::Resource(r) = target else {
            let code = StatusCode::from_u16(answer.code).unwrap_or(StatusCode::OK);
            return Ok(response::json_value(code, &answer.object));
        };
        let desc = self
            .served
            .lookup(cluster, &r.group, &r.version, &r.resource)
            .ok_or_else(not_found_path)?;
        self.respond_answer(&desc, headers, query, answer)
    }
}

fn resource_ref(r: &ResourceRequest) -> ResourceRef<'_> {
    ResourceRef {
        verb: r.verb.as_str(),
        group: &r.group,
        version: &r.version,
        resource: &r.resource,
        namespace: r.namespace.as_deref(),
        name: r.name.as_deref(),
        subresource: r.subresource.as_deref(),
    }
}

/// The headers and body a create through `serve` is written with: its labels added to the
/// object (re-encoded as JSON, whatever it came as); anything else as it came.
pub(crate) fn with_labels_on_create<'h>(
    serve: &Serve,
    r: &ResourceRequest,
    headers: &'h HeaderMap,
    body: Bytes,
) -> Result<(Cow<'h, HeaderMap>, Bytes), ApiError> {
    let (Some(labels), Verb::Create) = (&serve.labels_on_create, r.verb) else {
        return Ok((Cow::Borrowed(headers), body));
    };
    let mut obj = body::decode(content_type(headers), &body)?;
    let mut all = meta::labels(&obj);
    for (k, v) in labels {
        all.insert(k.clone(), Value::String(v.clone()));
    }
    meta::set_labels(&mut obj, all);
    let mut headers = headers.clone();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(response::JSON),
    );
    let body = serde_json::to_vec(&obj).map_err(|e| ApiError::internal(&e.to_string()))?;
    Ok((Cow::Owned(headers), Bytes::from(body)))
}

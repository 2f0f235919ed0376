//! Audit: the policy decides a level per request before it runs; at the end one event is
//! written (off the request path, see `audit.rs`), with the request and response bodies when
//! the level asks for them.

use bytes::Bytes;
use http::{Response, header};
use http_body_util::BodyExt;
use kplex_apimachinery::{ApiError, UserInfo};

use crate::audit::Level;
use crate::chain::Api;
use crate::filters::request_info::RequestContext;
use crate::response::{self, Body};

/// What one audit event is made of, gathered along the chain.
pub(crate) struct AuditRecord<'a> {
    pub ctx: &'a RequestContext,
    pub parts: &'a http::request::Parts,
    pub conn: &'a crate::authn::ConnInfo,
    pub level: Level,
    pub user: Option<&'a UserInfo>,
    /// Who impersonated `user`, if anyone did.
    pub impersonator: Option<&'a UserInfo>,
    pub received: std::time::SystemTime,
    pub code: u16,
    pub request_body: Option<&'a Bytes>,
    pub response_body: Option<&'a Bytes>,
}

fn resource_attrs(ctx: &RequestContext) -> Option<crate::audit::ResourceAttributes<'_>> {
    ctx.resource_request
        .as_ref()
        .map(|r| crate::audit::ResourceAttributes {
            group: &r.group,
            resource: &r.resource,
            subresource: r.subresource.as_deref(),
            namespace: r.namespace.as_deref().unwrap_or(""),
            name: r.name.as_deref().unwrap_or(""),
        })
}

impl Api {
    /// The audit policy's level for this request (None without an audit log).
    pub(crate) fn audit_level(&self, ctx: &RequestContext, user: Option<&UserInfo>) -> Level {
        self.audit.as_ref().map_or(Level::None, |a| {
            a.level(&crate::audit::Attributes {
                user,
                verb: &ctx.verb,
                resource: resource_attrs(ctx),
                path: &ctx.info.path,
            })
        })
    }

    /// At `RequestResponse`, the answer's body for the event (non-watch answers are already
    /// whole in memory: buffering them costs nothing).
    pub(crate) async fn buffer_for_audit(
        &self,
        level: Level,
        ctx: &RequestContext,
        resp: Response<Body>,
    ) -> (Response<Body>, Option<Bytes>) {
        if level < Level::RequestResponse || ctx.is_watch {
            return (resp, None);
        }
        let (parts, body) = resp.into_parts();
        match body.collect().await {
            Ok(collected) => {
                let bytes = collected.to_bytes();
                (
                    Response::from_parts(parts, response::full(bytes.clone())),
                    Some(bytes),
                )
            }
            Err(_) => (
                response::error(&ApiError::internal("response body failed")),
                None,
            ),
        }
    }

    /// Writes the request's event, if its level asks for one.
    pub(crate) fn record_audit(&self, r: &AuditRecord<'_>) {
        let Some(audit) = &self.audit else { return };
        if r.level == Level::None {
            return;
        }
        let (parts, ctx) = (r.parts, r.ctx);
        let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let api_version = ctx
            .resource_request
            .as_ref()
            .map_or("", |r| r.version.as_str());
        audit.record(&crate::audit::event(&crate::audit::EventData {
            level: r.level,
            request_uri: parts
                .uri
                .path_and_query()
                .map_or(parts.uri.path(), |p| p.as_str()),
            verb: &ctx.verb,
            user: r.user,
            impersonator: r.impersonator,
            source_ip: r.conn.remote.ip(),
            user_agent: header(header::USER_AGENT),
            resource: resource_attrs(ctx),
            api_version,
            workspace: Some(&ctx.workspace),
            code: r.code,
            received: r.received,
            request_body: r.request_body,
            request_content_type: header(header::CONTENT_TYPE),
            response_body: r.response_body,
        }));
    }
}

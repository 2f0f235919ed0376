//! Limits: the in-flight budgets (mutating and not; masters exempt) and, for watches, a
//! budget per user instead (kube exempts long-running requests from in-flight limits); the
//! request deadline is applied around the rest of the chain (`chain.rs`).

use std::time::Duration;

use http::{Method, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use kplex_apimachinery::{ApiError, UserInfo};

use crate::chain::Api;
use crate::filters::request_info::RequestContext;
use crate::limits::Permit;
use crate::response::Body;

impl Api {
    /// A permit for this request, or 429.
    pub(crate) fn admit(
        &self,
        ctx: &RequestContext,
        user: Option<&UserInfo>,
    ) -> Result<Permit, ApiError> {
        if ctx.is_watch {
            let name = user.map_or("system:anonymous", |u| u.name.as_str());
            return self.limits.admit_watch(name);
        }
        let mutating = !matches!(ctx.verb.as_str(), "get" | "list" | "watch");
        let privileged = user.is_some_and(UserInfo::is_master);
        self.limits.admit(mutating, privileged)
    }
}

/// Reads the body of a refused request first, as for a 401: an HTTP/2 stream answered before
/// its body arrived is reset, and the client never sees the 429. Briefly only: a refused
/// request must not hold the server with an endless body.
pub(crate) async fn refuse_after_body(method: &Method, body: Incoming) {
    if !matches!(*method, Method::GET | Method::HEAD) {
        let _ = tokio::time::timeout(Duration::from_secs(1), crate::body::read(body)).await;
    }
}

/// A watch stream counts against its user until the stream ends: its permit lives as long as
/// the body. Other permits end with the answer.
pub(crate) fn hold_while_streaming(resp: Response<Body>, permit: Permit) -> Response<Body> {
    match permit {
        permit @ Permit::Watch(_) => resp.map(|b| {
            b.map_frame(move |frame| {
                let _ = &permit;
                frame
            })
            .boxed_unsync()
        }),
        _ => resp,
    }
}

//! Virtual workspaces: `/services/apiexport/<cluster>/<export>/…` (a provider's view over
//! every consumer, authorized by `apiexports/content` in the export's workspace) and
//! `/services/initializingworkspaces/<initializer>/…` (what an initializer may see and do).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use kplex_apimachinery::{ApiError, UserInfo, meta};
use serde_json::Value;

use crate::body;
use crate::registry::{Scope, WriteOptions};
use crate::request::{ResourceRequest, Target, Verb};
use crate::response::{self, Body, Format, Shape, Wanted};
use crate::table::IncludeObject;

use crate::chain::Api;
use crate::endpoints::{options::*, render::*, resource::*};
use crate::filters::request_info::*;

/// What the initializing virtual workspace makes of a request.
pub(crate) enum Initializing {
    /// Answered here (an initializer removing itself).
    Answer(Response<Body>),
    /// Served as usual, restricted to what the predicate lets through.
    Filter(Option<crate::registry::Predicate>),
}

pub(crate) fn has_initializer(lc: &Value, initializer: &str) -> bool {
    lc.pointer("/status/initializers")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|i| i.as_str() == Some(initializer)))
}

impl Api {
    /// The APIExport virtual workspace (see `apis::view`): access by `apiexports/content`
    /// in the export's workspace, then the view's resources in `cluster` (None: all).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn export_view(
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
        let view_request = crate::apis::view::ViewRequest {
            group: &r.group,
            version: &r.version,
            resource: &r.resource,
            verb: r.verb.as_str(),
            name: r.name.as_deref(),
        };
        let plan = view.plan(
            &self.served,
            &self.apis.exports,
            cluster.as_deref(),
            &view_request,
        )?;
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

    /// The initializing-workspaces virtual workspace: across clusters, the LogicalClusters that
    /// still wait on `initializer`; inside one of them, its content, and the right to remove
    /// `initializer` (and only that) from its LogicalCluster's status.
    pub(crate) async fn initializing(
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
}

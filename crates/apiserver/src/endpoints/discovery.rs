//! Discovery (`/api`, `/apis`, group and group-version documents, aggregated v2) and
//! OpenAPI (v3 root and per group-version, v2) over the resources a request sees.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use kplex_apimachinery::ApiError;
use serde_json::Value;

use crate::catalog::ResourceDesc;
use crate::discovery;
use crate::request::Target;
use crate::response::{self, Body, Shape};

use crate::chain::Api;
use crate::endpoints::resource::*;

pub(crate) fn discovery_response(
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

impl Api {
    /// Discovery and OpenAPI documents over `resources` (None: not such a request).
    pub(crate) fn discovery(
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
}

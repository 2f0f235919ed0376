//! `/openapi/v3` and `/openapi/v2`, per logical cluster: built-in group-versions are the same
//! everywhere and built once; group-versions served by CRDs are built per request (they are
//! small).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::{HeaderValue, Response, StatusCode, header};
use kplex_apimachinery::ApiError;
use kplex_openapi::ResourceSpec;
use serde_json::json;

use crate::catalog::{Origin, ResourceDesc};
use crate::discovery;
use crate::response::{self, Body};

/// A built document: (hash, JSON bytes).
type Document = Arc<(String, Vec<u8>)>;

/// Built-in group-version documents, built on first use: (hash, JSON bytes).
#[derive(Default)]
pub struct Cache {
    builtin: Mutex<HashMap<(String, String), Document>>,
}

fn spec(d: &ResourceDesc) -> ResourceSpec {
    ResourceSpec {
        group: d.group.clone(),
        version: d.version.clone(),
        kind: d.kind.clone(),
        plural: d.plural.clone(),
        namespaced: d.namespaced,
        status: d.status,
        scale: d.scale.is_some(),
        strategic_patch: d.strategic_patch(),
        schema: match d.origin {
            Origin::Builtin => None,
            Origin::System | Origin::Crd { .. } | Origin::Bound(_) => {
                Some(d.schema.as_ref().map(|s| s.raw().clone()).unwrap_or_else(
                    || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                ))
            }
        },
    }
}

fn path_of(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

impl Cache {
    /// The (hash, body) of one group-version document.
    fn document(
        &self,
        resources: &[Arc<ResourceDesc>],
        group: &str,
        version: &str,
    ) -> Option<Document> {
        let in_gv: Vec<&Arc<ResourceDesc>> = resources
            .iter()
            .filter(|d| d.group == group && d.version == version)
            .collect();
        if in_gv.is_empty() {
            return None;
        }
        // Built-in and system kinds are the same in every logical cluster: build once.
        let builtin = in_gv.iter().all(|d| !d.is_custom());
        let key = (group.to_string(), version.to_string());
        if builtin && let Some(hit) = self.builtin.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Some(hit);
        }
        let specs: Vec<ResourceSpec> = in_gv.iter().map(|d| spec(d)).collect();
        let doc = kplex_openapi::group_version_document(group, version, &specs);
        let entry = Arc::new((
            kplex_openapi::document_hash(&doc),
            serde_json::to_vec(&doc).unwrap_or_default(),
        ));
        if builtin && let Ok(mut c) = self.builtin.lock() {
            c.insert(key, entry.clone());
        }
        Some(entry)
    }

    pub fn root(&self, _cluster: Option<&str>, resources: &[Arc<ResourceDesc>]) -> Response<Body> {
        let mut paths = serde_json::Map::new();
        let mut gvs = vec![(String::new(), "v1".to_string())];
        for (g, versions) in discovery::groups(resources) {
            gvs.extend(versions.into_iter().map(|v| (g.clone(), v)));
        }
        for (g, v) in gvs {
            if let Some(doc) = self.document(resources, &g, &v) {
                // Relative to /openapi/v3 so that clients keep their /clusters/<name> prefix.
                let url = format!("/openapi/v3/{}?hash={}", path_of(&g, &v), doc.0);
                paths.insert(path_of(&g, &v), json!({"serverRelativeURL": url}));
            }
        }
        response::json_value(StatusCode::OK, &json!({"paths": paths}))
    }

    pub fn group_version(
        &self,
        _cluster: Option<&str>,
        resources: &[Arc<ResourceDesc>],
        group: &str,
        version: &str,
    ) -> Result<Response<Body>, ApiError> {
        let doc = self
            .document(resources, group, version)
            .ok_or_else(ApiError::no_such_path)?;
        let mut resp = response::with_body(StatusCode::OK, response::JSON, doc.1.clone());
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, immutable"),
        );
        if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", doc.0)) {
            resp.headers_mut().insert(header::ETAG, etag);
        }
        Ok(resp)
    }

    pub fn v2(
        &self,
        _cluster: Option<&str>,
        resources: &[Arc<ResourceDesc>],
        accept: Option<&str>,
    ) -> Result<Response<Body>, ApiError> {
        // kubectl (client-go's OpenAPISchema) accepts only the gnostic protobuf form;
        // other clients ask for JSON. The first acceptable media range wins.
        use kplex_openapi::{V2_PROTOBUF, V2_PROTOBUF_DEPRECATED};
        let mut protobuf = None;
        for m in accept.unwrap_or("application/json").split(',') {
            let m = m.split(';').next().unwrap_or("").trim();
            if m == V2_PROTOBUF || m == V2_PROTOBUF_DEPRECATED {
                protobuf = Some(true);
                break;
            }
            if m == "application/json" || m == "*/*" || m == "application/*" {
                protobuf = Some(false);
                break;
            }
        }
        let Some(protobuf) = protobuf else {
            return Err(ApiError::not_acceptable(&[response::JSON, V2_PROTOBUF]));
        };
        let specs: Vec<ResourceSpec> = resources.iter().map(|d| spec(d)).collect();
        let doc = kplex_openapi::v2_document(&specs);
        if protobuf {
            return Ok(response::with_body(
                StatusCode::OK,
                V2_PROTOBUF,
                kplex_openapi::v2_protobuf(&doc),
            ));
        }
        Ok(response::json_value(StatusCode::OK, &doc))
    }
}

//! Answers: objects, lists and watch events in the negotiated format and shape (JSON, YAML,
//! protobuf; Table, PartialObjectMetadata), Status for deletions, gzip.

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Body as _;
use kplex_apimachinery::{ApiError, StatusDetails, meta, status::success_status};
use serde_json::{Value, json};

use crate::catalog::ResourceDesc;
use crate::registry::{Stored, WatchEvent, WatchEventKind, list::render_list};
use crate::response::{self, Body, Format, Shape, Wanted};
use crate::table::{self, IncludeObject};
use kplex_registry::virtual_resource::Answer;

use crate::chain::Api;
use crate::filters::request_info::*;

pub(crate) fn add_warnings(resp: &mut Response<Body>, warnings: &[String]) {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
}

/// The autoscaling/v1 Scale view of an object.
pub(crate) fn scale_of(desc: &ResourceDesc, obj: &Value) -> Value {
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

pub(crate) fn delete_status(desc: &ResourceDesc, obj: &Value) -> Response<Body> {
    let details = StatusDetails {
        name: meta::name(obj).unwrap_or("").to_string(),
        group: desc.group.clone(),
        kind: desc.plural.clone(),
        uid: meta::uid(obj).unwrap_or("").to_string(),
        ..Default::default()
    };
    response::json_value(StatusCode::OK, &success_status(&details))
}

pub(crate) fn serialize(format: Format, value: &Value) -> Result<Vec<u8>, ApiError> {
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

pub(crate) fn shaped<'a>(
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

pub(crate) fn respond_value(
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

pub(crate) fn respond_stored(
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

pub(crate) fn respond_list(
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
        .map(|item| item.decode_as(desc))
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
pub(crate) fn render_event(
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
/// Whether the client asked for indented JSON, as kube-apiserver decides it: `?pretty=`
/// (Go's ParseBool) when given, else a user agent that is a person at a terminal or a
/// browser (`curl`, `Wget`, `Mozilla/5.0`).
pub(crate) fn wants_pretty(query: &Query, req_headers: &HeaderMap) -> bool {
    if let Some(value) = query.get("pretty").filter(|v| !v.is_empty()) {
        return kplex_gocompat::parse_bool(value).unwrap_or(false);
    }
    req_headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| {
            ["curl", "Wget", "Mozilla/5.0"]
                .iter()
                .any(|p| ua.starts_with(p))
        })
}

/// Indents a whole JSON answer (two spaces, as Go's `json.MarshalIndent`); streams
/// (watches) and other formats pass as they are.
pub(crate) async fn maybe_pretty(pretty: bool, resp: Response<Body>) -> Response<Body> {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(response::JSON));
    let whole = resp.body().size_hint().exact().is_some();
    if !pretty || !is_json || !whole {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(collected) = body.collect().await else {
        return response::error(&ApiError::internal("response body failed"));
    };
    let raw = collected.to_bytes();
    let indented = serde_json::from_slice::<Value>(&raw)
        .ok()
        .and_then(|v| serde_json::to_vec_pretty(&v).ok());
    match indented {
        Some(mut body) => {
            body.push(b'\n');
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, response::full(body))
        }
        None => Response::from_parts(parts, response::full(raw)),
    }
}

pub(crate) async fn maybe_gzip(req_headers: &HeaderMap, resp: Response<Body>) -> Response<Body> {
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

impl Api {
    /// A virtual resource's answer: as the addressed kind when it is one (tables, protobuf),
    /// else as a plain object in the format the client accepts.
    pub(crate) fn respond_answer(
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
        let own_list =
            answer.object.get("kind").and_then(Value::as_str) == Some(desc.list_kind().as_str());
        let shapes: &[Shape] = match (own_kind, own_list) {
            (true, _) => &[Shape::Table, Shape::PartialObjectMetadata],
            (_, true) => &[Shape::Table, Shape::PartialObjectMetadataList],
            _ => &[],
        };
        let wanted = response::negotiate(accept, protobuf_ok, shapes)
            .ok_or_else(|| ApiError::not_acceptable(&response::acceptable_types(protobuf_ok)))?;
        let include = IncludeObject::parse(query.get("includeObject").map(String::as_str));
        if own_list {
            // A list of the kind renders as stored lists do (tables for kubectl).
            return respond_list(desc, wanted, include, &answer_list(&answer.object)?);
        }
        Ok(respond_value(desc, wanted, include, code, &answer.object))
    }
}

/// A virtual resource's list answer as the registry's list result.
fn answer_list(list: &Value) -> Result<crate::registry::ListResult, ApiError> {
    let items = list["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|item| {
            Ok(Stored {
                bytes: kplex_registry::object::encode(item)?,
                resource_version: 0,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(crate::registry::ListResult {
        items,
        ..Default::default()
    })
}

//! Building responses: bodies, Status errors, and content negotiation (JSON, YAML, protobuf,
//! `as=Table`, `as=PartialObjectMetadata`, aggregated discovery).

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use kplex_apimachinery::ApiError;

/// Every response body: a full buffer or a stream (watch).
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub const JSON: &str = "application/json";
pub const YAML: &str = "application/yaml";
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// A response with `content_type` and `body`.
pub fn with_body(code: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = code;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// JSON with kube-apiserver's trailing newline.
pub fn json_bytes(code: StatusCode, mut body: Vec<u8>) -> Response<Body> {
    body.push(b'\n');
    with_body(code, JSON, body)
}

pub fn json_value(code: StatusCode, value: &serde_json::Value) -> Response<Body> {
    json_bytes(code, serde_json::to_vec(value).unwrap_or_default())
}

/// A `Status` error response.
pub fn error(err: &ApiError) -> Response<Body> {
    let code = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = json_value(code, &err.to_status());
    // As kube: no header for a zero suggestion (clients would retry at once).
    if let Some(secs) = err.details.as_ref().and_then(|d| d.retry_after_seconds)
        && secs > 0
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// The wire format of a response body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    Protobuf,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => JSON,
            Format::Yaml => YAML,
            Format::Protobuf => PROTOBUF,
        }
    }
}

/// What shape of object the client asked for (`;as=…` in Accept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Object,
    Table,
    PartialObjectMetadata,
    PartialObjectMetadataList,
    DiscoveryV2,
}

/// One acceptable media range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub format: Format,
    pub shape: Shape,
}

/// Picks the first media range of `accept` this server can produce. `protobuf_ok` says
/// whether protobuf is available for this response; `shapes` which `as=` forms are.
/// None means 406 Not Acceptable.
pub fn negotiate(accept: Option<&str>, protobuf_ok: bool, shapes: &[Shape]) -> Option<Wanted> {
    let accept = match accept {
        None | Some("") => {
            return Some(Wanted {
                format: Format::Json,
                shape: Shape::Object,
            });
        }
        Some(a) => a,
    };
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut as_ = None;
        let mut group = None;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                match k.trim() {
                    "as" => as_ = Some(v.trim().to_string()),
                    "g" => group = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        let format = match media.as_str() {
            "application/json" | "application/*" | "*/*" => Format::Json,
            "application/yaml" => Format::Yaml,
            "application/vnd.kubernetes.protobuf" if protobuf_ok => Format::Protobuf,
            _ => continue,
        };
        let shape = match (as_.as_deref(), group.as_deref()) {
            (None, _) => Shape::Object,
            (Some("Table"), Some("meta.k8s.io")) => Shape::Table,
            (Some("PartialObjectMetadata"), Some("meta.k8s.io")) => Shape::PartialObjectMetadata,
            (Some("PartialObjectMetadataList"), Some("meta.k8s.io")) => {
                Shape::PartialObjectMetadataList
            }
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io")) => Shape::DiscoveryV2,
            _ => continue,
        };
        // Tables and metadata-only objects exist in JSON (and YAML) only here.
        if shape != Shape::Object && (format == Format::Protobuf || !shapes.contains(&shape)) {
            continue;
        }
        return Some(Wanted { format, shape });
    }
    None
}

/// The media types to name in a 406.
pub fn acceptable_types(protobuf_ok: bool) -> Vec<&'static str> {
    let mut v = vec![JSON, YAML];
    if protobuf_ok {
        v.push(PROTOBUF);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[Shape] = &[
        Shape::Table,
        Shape::PartialObjectMetadata,
        Shape::PartialObjectMetadataList,
        Shape::DiscoveryV2,
    ];

    #[test]
    fn kubectl_get_asks_for_a_table() {
        let a = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(
            negotiate(Some(a), false, ALL),
            Some(Wanted {
                format: Format::Json,
                shape: Shape::Table
            })
        );
        assert_eq!(
            negotiate(Some(a), false, &[]),
            Some(Wanted {
                format: Format::Json,
                shape: Shape::Object
            })
        );
    }

    #[test]
    fn protobuf_only_when_available() {
        let a = "application/vnd.kubernetes.protobuf,application/json";
        assert_eq!(
            negotiate(Some(a), true, ALL).map(|w| w.format),
            Some(Format::Protobuf)
        );
        assert_eq!(
            negotiate(Some(a), false, ALL).map(|w| w.format),
            Some(Format::Json)
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf"), false, ALL),
            None
        );
        assert_eq!(negotiate(Some("text/html"), false, ALL), None);
        assert_eq!(
            negotiate(None, false, ALL).map(|w| w.format),
            Some(Format::Json)
        );
        assert_eq!(
            negotiate(Some("*/*"), false, ALL).map(|w| w.format),
            Some(Format::Json)
        );
    }

    #[test]
    fn aggregated_discovery() {
        let a =
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        assert_eq!(
            negotiate(Some(a), false, ALL).map(|w| w.shape),
            Some(Shape::DiscoveryV2)
        );
    }
}

//! Request bodies: read with kube-apiserver's size limit, then decoded by
//! [`kplex_registry::codec`] (re-exported here).

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use kplex_apimachinery::ApiError;

/// kube-apiserver's limit on request bodies.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// How much of an oversized body is read and thrown away before answering 413, so that the
/// client sees the answer instead of a reset stream; beyond this the stream is reset.
const MAX_DISCARD: usize = 32 * 1024 * 1024;

/// Reads the whole body, refusing more than [`MAX_BODY`] with 413.
pub async fn read(body: Incoming) -> Result<Bytes, ApiError> {
    read_up_to(body, MAX_BODY).await
}

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub async fn read_up_to(mut body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    let discard = limit.max(MAX_DISCARD);
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen > discard {
            break;
        }
        if seen <= limit {
            buf.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(ApiError::request_entity_too_large(&format!(
            "the request body is too large (limit {limit} bytes)"
        )));
    }
    Ok(buf.freeze())
}

pub use kplex_registry::codec::*;

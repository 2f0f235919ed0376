//! Body: read whole (≤ 3 MiB, else 413) before anything is answered, a 401 included: an
//! HTTP/2 stream answered before its body arrived is reset, and the client never sees the
//! answer.

use bytes::Bytes;
use http::Method;
use hyper::body::Incoming;
use kplex_apimachinery::ApiError;

pub(crate) async fn read_body(method: &Method, body: Incoming) -> Result<Bytes, ApiError> {
    match *method {
        Method::GET | Method::HEAD => Ok(Bytes::new()),
        _ => crate::body::read(body).await,
    }
}

//! Query parameters and bodies → the registry's options (list, watch, write, delete).

use std::sync::Arc;

use http::{HeaderMap, header};
use kplex_apimachinery::{ApiError, UserInfo};
use serde_json::Value;

use crate::body;
use crate::catalog::ResourceDesc;
use crate::registry::{
    DeleteOptions, ListOptions, PatchKind, Selectors, WatchOptions, WriteOptions,
    write::FieldValidation,
};

use crate::filters::request_info::*;

pub(crate) fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

pub(crate) fn patch_kind(headers: &HeaderMap) -> Result<PatchKind, ApiError> {
    PatchKind::of_request(content_type(headers))
}

pub(crate) fn delete_options(
    headers: &HeaderMap,
    query: &Query,
    bytes: &[u8],
    user: &UserInfo,
) -> Result<DeleteOptions, ApiError> {
    let from_body = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        body::decode(content_type(headers), bytes)?
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(String::from);
    let dry_run = query.get("dryRun").is_some_and(|d| d == "All")
        || from_body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|d| d == "All"));
    let mut policy = query
        .get("propagationPolicy")
        .cloned()
        .or_else(|| text(from_body.get("propagationPolicy")));
    if policy.is_none() && from_body.get("orphanDependents").and_then(Value::as_bool) == Some(true)
    {
        policy = Some("Orphan".into());
    }
    let pre = from_body.get("preconditions");
    Ok(DeleteOptions {
        dry_run,
        propagation_policy: policy,
        precondition_uid: text(pre.and_then(|p| p.get("uid"))),
        precondition_resource_version: text(pre.and_then(|p| p.get("resourceVersion"))),
        user: Some(Arc::new(user.clone())),
    })
}

pub(crate) fn list_options(desc: &ResourceDesc, q: &Query) -> Result<ListOptions, ApiError> {
    let limit = match q.get("limit") {
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?
            .max(0) as usize,
        None => 0,
    };
    Ok(ListOptions {
        selectors: Selectors::parse(
            desc,
            q.get("labelSelector").map(String::as_str),
            q.get("fieldSelector").map(String::as_str),
        )?,
        limit,
        continue_token: q.get("continue").cloned(),
        resource_version: q.get("resourceVersion").cloned(),
        resource_version_match: q.get("resourceVersionMatch").cloned(),
    })
}

/// `name`: the watch is on one object (`GET …/configmaps/x?watch=1`), which kube turns
/// into a `metadata.name` field selector.
pub(crate) fn watch_options(
    desc: &ResourceDesc,
    q: &Query,
    name: Option<&str>,
) -> Result<WatchOptions, ApiError> {
    let fields = q.get("fieldSelector").map(String::as_str).unwrap_or("");
    let fields = match name {
        Some(name) if fields.is_empty() => format!("metadata.name={name}"),
        Some(name) => format!("{fields},metadata.name={name}"),
        None => fields.to_string(),
    };
    Ok(WatchOptions {
        selectors: Selectors::parse(
            desc,
            q.get("labelSelector").map(String::as_str),
            Some(&fields),
        )?,
        resource_version: q.get("resourceVersion").cloned(),
        allow_bookmarks: flag(q, "allowWatchBookmarks"),
        send_initial_events: flag(q, "sendInitialEvents"),
        bookmark_interval: None,
        timeout: None,
    })
}

/// The field manager kube-apiserver assumes when a client names none: its user agent's
/// program name (`kubectl/v1.32 (linux/amd64)` → `kubectl`).
pub(crate) fn default_manager(headers: &HeaderMap) -> Option<String> {
    let ua = headers.get(header::USER_AGENT)?.to_str().ok()?;
    ua.split('/')
        .next()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

pub(crate) fn write_options(
    q: &Query,
    sub: Option<&str>,
    headers: &HeaderMap,
    user: &UserInfo,
) -> Result<WriteOptions, ApiError> {
    let dry_run = match q.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid dryRun value {other:?}: supported values: \"All\""
            )));
        }
    };
    Ok(WriteOptions {
        dry_run,
        field_validation: FieldValidation::parse(q.get("fieldValidation").map(String::as_str))?,
        field_manager: q
            .get("fieldManager")
            .cloned()
            .filter(|m| !m.is_empty())
            .or_else(|| default_manager(headers)),
        subresource: sub.map(String::from),
        system: false,
        applied: false,
        force: flag(q, "force"),
        pin_resource_version: false,
        user: Some(Arc::new(user.clone())),
    })
}

/// `fieldValidation=Strict` refuses a JSON body that repeats a field (kube's strict
/// decoding); other modes take the last value, as JSON decoders do.
pub(crate) fn strict_json(
    opts: &WriteOptions,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    let json = content_type(headers).is_none_or(|ct| ct.starts_with("application/json"));
    if opts.field_validation != crate::registry::write::FieldValidation::Strict || !json {
        return Ok(());
    }
    let duplicates = body::duplicate_fields(body);
    if duplicates.is_empty() {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "strict decoding error: {}",
        duplicates
            .iter()
            .map(|d| format!("duplicate field \"{d}\""))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

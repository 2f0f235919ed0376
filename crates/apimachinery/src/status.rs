//! `metav1.Status` errors with kube-apiserver's codes, reasons and messages
//! (k8s.io/apimachinery/pkg/api/errors).

use serde_json::{Map, Value, json};
use std::fmt;

/// Message kube-apiserver uses for optimistic-concurrency conflicts.
pub const OPTIMISTIC_LOCK_ERROR_MSG: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// One field-level problem (`metav1.StatusCause`). `message` is the body
/// without the field, as Kubernetes puts it in `details.causes`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusCause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// A value shown in a field error, rendered the way Go's field.Error does
/// (strings quoted, numbers bare).
#[derive(Debug, Clone, PartialEq)]
pub enum BadValue<'a> {
    Str(&'a str),
    Int(i64),
    Json(&'a Value),
}

impl fmt::Display for BadValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadValue::Str(s) => write!(f, "{}", go_quote(s)),
            BadValue::Int(i) => write!(f, "{i}"),
            BadValue::Json(Value::String(s)) => write!(f, "{}", go_quote(s)),
            BadValue::Json(v) => write!(f, "{v}"),
        }
    }
}

impl StatusCause {
    fn with_body(reason: &str, field: &str, body: String, detail: &str) -> Self {
        let message = if detail.is_empty() {
            body
        } else {
            format!("{body}: {detail}")
        };
        StatusCause {
            reason: reason.to_string(),
            message,
            field: field.to_string(),
        }
    }

    /// field.Invalid: `Invalid value: "x": detail`.
    pub fn invalid(field: &str, value: BadValue<'_>, detail: &str) -> Self {
        Self::with_body(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {value}"),
            detail,
        )
    }

    /// field.Required: `Required value[: detail]`.
    pub fn required(field: &str, detail: &str) -> Self {
        Self::with_body("FieldValueRequired", field, "Required value".into(), detail)
    }

    /// field.Forbidden: `Forbidden[: detail]`.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self::with_body("FieldValueForbidden", field, "Forbidden".into(), detail)
    }

    /// field.Duplicate: `Duplicate value: "x"`.
    pub fn duplicate(field: &str, value: BadValue<'_>) -> Self {
        Self::with_body(
            "FieldValueDuplicate",
            field,
            format!("Duplicate value: {value}"),
            "",
        )
    }

    /// field.NotSupported: `Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported(field: &str, value: BadValue<'_>, valid: &[&str]) -> Self {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::with_body(
            "FieldValueNotSupported",
            field,
            format!("Unsupported value: {value}"),
            &detail,
        )
    }

    /// field.TooLong with a byte limit: `Too long: may not be more than N bytes`.
    pub fn too_long(field: &str, max_bytes: usize) -> Self {
        let unit = if max_bytes == 1 { "byte" } else { "bytes" };
        Self::with_body(
            "FieldValueTooLong",
            field,
            "Too long".into(),
            &format!("may not be more than {max_bytes} {unit}"),
        )
    }

    /// field.NotFound: `Not found: "x"`.
    pub fn not_found(field: &str, value: BadValue<'_>) -> Self {
        Self::with_body(
            "FieldValueNotFound",
            field,
            format!("Not found: {value}"),
            "",
        )
    }
}

impl fmt::Display for StatusCause {
    /// `field: message`, as field.Error.Error() prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// `metav1.StatusDetails`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusDetails {
    pub name: String,
    pub group: String,
    pub kind: String,
    pub uid: String,
    pub causes: Vec<StatusCause>,
    pub retry_after_seconds: Option<u32>,
}

impl StatusDetails {
    /// Renders with empty fields omitted, as Go's `omitempty` does.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        put_str(&mut m, "name", &self.name);
        put_str(&mut m, "group", &self.group);
        put_str(&mut m, "kind", &self.kind);
        put_str(&mut m, "uid", &self.uid);
        if !self.causes.is_empty() {
            let causes = self.causes.iter().map(cause_json).collect();
            m.insert("causes".into(), Value::Array(causes));
        }
        if let Some(s) = self.retry_after_seconds.filter(|s| *s > 0) {
            m.insert("retryAfterSeconds".into(), json!(s));
        }
        Value::Object(m)
    }
}

fn cause_json(c: &StatusCause) -> Value {
    let mut m = Map::new();
    put_str(&mut m, "reason", &c.reason);
    put_str(&mut m, "message", &c.message);
    put_str(&mut m, "field", &c.field);
    Value::Object(m)
}

fn put_str(m: &mut Map<String, Value>, key: &str, v: &str) {
    if !v.is_empty() {
        m.insert(key.into(), Value::String(v.into()));
    }
}

/// An API error that renders as a `Status` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    pub details: Option<StatusDetails>,
    /// `metadata.continue` of the Status: where a list whose continue token expired may
    /// go on, inconsistently, from the latest revision (kube's handleCompactedErrorForPaging).
    pub continue_token: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// `resource.group`, or just `resource` for the core group (GroupResource.String()).
fn qualified(group: &str, name: &str) -> String {
    if group.is_empty() {
        name.to_string()
    } else {
        format!("{name}.{group}")
    }
}

/// Go's `%q` for the strings we print: escapes quotes, backslashes and
/// control characters so a hostile name cannot forge message structure.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn resource_details(group: &str, resource: &str, name: &str) -> Option<StatusDetails> {
    Some(StatusDetails {
        name: name.into(),
        group: group.into(),
        kind: resource.into(),
        ..Default::default()
    })
}

impl ApiError {
    /// 404 NotFound (client-go's `IsNotFound`).
    pub fn is_not_found(&self) -> bool {
        self.code == 404
    }

    /// 409 AlreadyExists: a create lost to an object of the same name.
    pub fn is_already_exists(&self) -> bool {
        self.code == 409 && self.reason == "AlreadyExists"
    }

    /// 409 Conflict: a compare-and-swap lost (a stale resourceVersion, a failed precondition).
    pub fn is_conflict(&self) -> bool {
        self.code == 409 && self.reason == "Conflict"
    }

    /// 403 Forbidden.
    pub fn is_forbidden(&self) -> bool {
        self.code == 403
    }

    /// A bare error with no details.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.into(),
            message: message.into(),
            details: None,
            continue_token: None,
        }
    }

    /// kube's 404 for a URL that names nothing it serves (no resource, no object).
    pub fn no_such_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        ApiError {
            details: resource_details(group, resource, name),
            ..Self::new(
                404,
                "NotFound",
                format!(
                    "{} {} not found",
                    qualified(group, resource),
                    go_quote(name)
                ),
            )
        }
    }

    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        ApiError {
            details: resource_details(group, resource, name),
            ..Self::new(
                409,
                "AlreadyExists",
                format!(
                    "{} {} already exists",
                    qualified(group, resource),
                    go_quote(name)
                ),
            )
        }
    }

    /// `err_msg` is the cause, usually [`OPTIMISTIC_LOCK_ERROR_MSG`].
    pub fn conflict(group: &str, resource: &str, name: &str, err_msg: &str) -> Self {
        ApiError {
            details: resource_details(group, resource, name),
            ..Self::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} {}: {err_msg}",
                    qualified(group, resource),
                    go_quote(name)
                ),
            )
        }
    }

    /// The standard "object has been modified" conflict.
    pub fn optimistic_lock_conflict(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(group, resource, name, OPTIMISTIC_LOCK_ERROR_MSG)
    }

    /// 422 Invalid; `kind` is the Kind (e.g. `ConfigMap`), not the resource.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<StatusCause>) -> Self {
        let prefix = format!("{} {} is invalid", qualified(group, kind), go_quote(name));
        let message = match aggregate(&causes) {
            Some(agg) => format!("{prefix}: {agg}"),
            None => prefix,
        };
        ApiError {
            details: Some(StatusDetails {
                name: name.into(),
                group: group.into(),
                kind: kind.into(),
                causes,
                ..Default::default()
            }),
            ..Self::new(422, "Invalid", message)
        }
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", msg)
    }

    pub fn method_not_supported(group: &str, resource: &str, verb: &str) -> Self {
        ApiError {
            details: resource_details(group, resource, ""),
            ..Self::new(
                405,
                "MethodNotAllowed",
                format!(
                    "{verb} is not supported on resources of kind {}",
                    go_quote(&qualified(group, resource))
                ),
            )
        }
    }

    pub fn gone(msg: impl Into<String>) -> Self {
        Self::new(410, "Gone", msg)
    }

    pub fn resource_expired(msg: impl Into<String>) -> Self {
        Self::new(410, "Expired", msg)
    }

    /// `err_msg` explains why (e.g. an authorizer's reason).
    pub fn forbidden(group: &str, resource: &str, name: &str, err_msg: &str) -> Self {
        let message = if group.is_empty() && resource.is_empty() {
            format!("forbidden: {err_msg}")
        } else if name.is_empty() {
            format!("{} is forbidden: {err_msg}", qualified(group, resource))
        } else {
            format!(
                "{} {} is forbidden: {err_msg}",
                qualified(group, resource),
                go_quote(name)
            )
        };
        ApiError {
            details: resource_details(group, resource, name),
            ..Self::new(403, "Forbidden", message)
        }
    }

    pub fn unauthorized(msg: &str) -> Self {
        let msg = if msg.is_empty() {
            "not authorized"
        } else {
            msg
        };
        Self::new(401, "Unauthorized", msg)
    }

    pub fn request_entity_too_large(msg: &str) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: {msg}"),
        )
    }

    /// `accepted` lists the media types the endpoint would take.
    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// `accepted` lists the media types the endpoint can produce.
    pub fn not_acceptable(accepted: &[&str]) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!(
                "only the following media types are accepted: {}",
                accepted.join(", ")
            ),
        )
    }

    pub fn too_many_requests(msg: &str, retry_after_seconds: u32) -> Self {
        ApiError {
            details: Some(StatusDetails {
                retry_after_seconds: Some(retry_after_seconds),
                ..Default::default()
            }),
            ..Self::new(429, "TooManyRequests", msg)
        }
    }

    pub fn timeout(msg: &str, retry_after_seconds: u32) -> Self {
        ApiError {
            details: Some(StatusDetails {
                retry_after_seconds: Some(retry_after_seconds),
                ..Default::default()
            }),
            ..Self::new(504, "Timeout", format!("Timeout: {msg}"))
        }
    }

    pub fn internal(msg: &str) -> Self {
        ApiError {
            details: Some(StatusDetails {
                causes: vec![StatusCause {
                    message: msg.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Self::new(
                500,
                "InternalError",
                format!("Internal error occurred: {msg}"),
            )
        }
    }

    pub fn service_unavailable(msg: &str) -> Self {
        Self::new(503, "ServiceUnavailable", msg)
    }

    /// The `Status` object kube-apiserver writes for this error.
    pub fn to_status(&self) -> Value {
        let mut m = status_base("Failure");
        if let Some(token) = &self.continue_token {
            m.insert("metadata".into(), json!({"continue": token}));
        }
        put_str(&mut m, "message", &self.message);
        put_str(&mut m, "reason", &self.reason);
        if let Some(d) = &self.details {
            m.insert("details".into(), d.to_json());
        }
        m.insert("code".into(), json!(self.code));
        Value::Object(m)
    }
}

fn status_base(status: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("kind".into(), json!("Status"));
    m.insert("apiVersion".into(), json!("v1"));
    m.insert("metadata".into(), json!({}));
    m.insert("status".into(), json!(status));
    m
}

/// `Status` with `status: Success` and code 200, as returned by DELETE when
/// the object is gone immediately and no object can be returned.
pub fn success_status(details: &StatusDetails) -> Value {
    let mut m = status_base("Success");
    m.insert("details".into(), details.to_json());
    m.insert("code".into(), json!(200));
    Value::Object(m)
}

/// utilerrors.Aggregate's message: one error bare, several in brackets,
/// duplicates dropped.
fn aggregate(causes: &[StatusCause]) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    for c in causes {
        let msg = c.to_string();
        if !seen.contains(&msg) {
            seen.push(msg);
        }
    }
    match seen.len() {
        0 => None,
        1 => seen.pop(),
        _ => Some(format!("[{}]", seen.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_continue_carries_the_token_to_go_on_with() {
        let mut err = ApiError::resource_expired("too old");
        assert_eq!(err.to_status()["metadata"], json!({}));
        err.continue_token = Some("abc".into());
        let status = err.to_status();
        assert_eq!(status["metadata"], json!({"continue": "abc"}));
        assert_eq!(
            (status["code"].clone(), status["reason"].clone()),
            (json!(410), json!("Expired"))
        );
    }

    #[test]
    fn messages_match_kube() {
        let cases = [
            (
                ApiError::not_found("", "configmaps", "x"),
                404,
                "NotFound",
                r#"configmaps "x" not found"#,
            ),
            (
                ApiError::not_found("apps", "deployments", "x"),
                404,
                "NotFound",
                r#"deployments.apps "x" not found"#,
            ),
            (
                ApiError::already_exists("", "pods", "p"),
                409,
                "AlreadyExists",
                r#"pods "p" already exists"#,
            ),
            (
                ApiError::optimistic_lock_conflict("", "configmaps", "x"),
                409,
                "Conflict",
                "Operation cannot be fulfilled on configmaps \"x\": the object has been modified; please apply your changes to the latest version and try again",
            ),
            (
                ApiError::method_not_supported("", "pods", "deletecollection"),
                405,
                "MethodNotAllowed",
                r#"deletecollection is not supported on resources of kind "pods""#,
            ),
            (
                ApiError::forbidden("", "pods", "", "User \"u\" cannot list"),
                403,
                "Forbidden",
                r#"pods is forbidden: User "u" cannot list"#,
            ),
            (
                ApiError::unauthorized(""),
                401,
                "Unauthorized",
                "not authorized",
            ),
            (ApiError::timeout("x", 1), 504, "Timeout", "Timeout: x"),
            (
                ApiError::internal("boom"),
                500,
                "InternalError",
                "Internal error occurred: boom",
            ),
            (
                ApiError::request_entity_too_large("limit is 3145728"),
                413,
                "RequestEntityTooLarge",
                "Request entity too large: limit is 3145728",
            ),
        ];
        for (err, code, reason, msg) in cases {
            assert_eq!(err.code, code, "{msg}");
            assert_eq!(err.reason, reason);
            assert_eq!(err.message, msg);
        }
    }

    #[test]
    fn invalid_aggregates_like_kube() {
        let one = vec![StatusCause::required(
            "metadata.name",
            "name or generateName is required",
        )];
        let e = ApiError::invalid("", "ConfigMap", "", one);
        assert_eq!(
            e.message,
            r#"ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required"#
        );
        let two = vec![
            StatusCause::invalid("metadata.name", BadValue::Str("A"), "bad"),
            StatusCause::forbidden("metadata.namespace", "not allowed on this type"),
        ];
        let e = ApiError::invalid("apps", "Deployment", "A", two);
        assert_eq!(
            e.message,
            r#"Deployment.apps "A" is invalid: [metadata.name: Invalid value: "A": bad, metadata.namespace: Forbidden: not allowed on this type]"#
        );
        let status = e.to_status();
        assert_eq!(
            status["details"]["causes"][0]["reason"],
            "FieldValueInvalid"
        );
        assert_eq!(
            status["details"]["causes"][0]["message"],
            r#"Invalid value: "A": bad"#
        );
        assert_eq!(status["details"]["kind"], "Deployment");
        assert_eq!(status["code"], 422);
    }

    #[test]
    fn to_status_shape() {
        let s = ApiError::not_found("", "configmaps", "x").to_status();
        assert_eq!(
            s,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
                "message":"configmaps \"x\" not found","reason":"NotFound",
                "details":{"name":"x","kind":"configmaps"},"code":404})
        );
        let s = ApiError::bad_request("nope").to_status();
        assert!(s.get("details").is_none());
        let s = ApiError::too_many_requests("slow down", 1).to_status();
        assert_eq!(s["details"], json!({"retryAfterSeconds": 1}));
        let ok = success_status(&StatusDetails {
            name: "x".into(),
            kind: "pods".into(),
            uid: "u1".into(),
            ..Default::default()
        });
        assert_eq!(
            ok,
            json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success",
                "details":{"name":"x","kind":"pods","uid":"u1"},"code":200})
        );
    }

    #[test]
    fn quoting_escapes() {
        assert_eq!(go_quote("a\"b\n"), r#""a\"b\n""#);
        assert_eq!(BadValue::Int(-1).to_string(), "-1");
    }
}

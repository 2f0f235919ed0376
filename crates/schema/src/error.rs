//! Kubernetes-style field errors (`k8s.io/apimachinery/pkg/util/validation/field`).

use std::fmt;

use serde_json::Value;

/// The kind of a [`FieldError`], mirroring `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// A required field is missing.
    Required,
    /// A value is malformed or out of range.
    Invalid,
    /// A value is not one of an enumerated set.
    NotSupported,
    /// A value has the wrong JSON type (rendered "Invalid value" like Kubernetes).
    TypeInvalid,
    /// A value repeats inside a set or map list.
    Duplicate,
    /// A string is longer than allowed.
    TooLong,
    /// A list or map has too many entries.
    TooMany,
    /// A field must not be set.
    Forbidden,
}

impl ErrorType {
    /// The human text Kubernetes prints (`ErrorType.String()`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Required => "Required value",
            ErrorType::Invalid | ErrorType::TypeInvalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Forbidden => "Forbidden",
        }
    }

    /// The `StatusCause.reason` string (`metav1.CauseType`).
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::Forbidden => "FieldValueForbidden",
        }
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One validation error on one field, formatted exactly like Kubernetes' `field.Error`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Dotted field path, e.g. `spec.containers[0].name`.
    pub field: String,
    /// What went wrong.
    pub error_type: ErrorType,
    /// The offending value; `None` when Kubernetes omits it from the message.
    pub bad_value: Option<Value>,
    /// Free-form explanation (may be empty).
    pub detail: String,
}

impl FieldError {
    fn new(
        field: impl Into<String>,
        error_type: ErrorType,
        bad_value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            error_type,
            bad_value,
            detail: detail.into(),
        }
    }

    /// `field.Required`.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Required, None, detail)
    }

    /// `field.Invalid`.
    pub fn invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Invalid, Some(value), detail)
    }

    /// `field.TypeInvalid`.
    pub fn type_invalid(field: impl Into<String>, value: Value, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::TypeInvalid, Some(value), detail)
    }

    /// `field.NotSupported`: the detail lists the supported values, each quoted.
    pub fn not_supported(field: impl Into<String>, value: Value, supported: &[String]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(field, ErrorType::NotSupported, Some(value), detail)
    }

    /// `field.Duplicate`.
    pub fn duplicate(field: impl Into<String>, value: Value) -> Self {
        Self::new(field, ErrorType::Duplicate, Some(value), "")
    }

    /// `field.TooLong`: Kubernetes never echoes the over-long value.
    pub fn too_long(field: impl Into<String>, max: u64) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        Self::new(
            field,
            ErrorType::TooLong,
            None,
            format!("may not be more than {max} {unit}"),
        )
    }

    /// `field.TooMany`.
    pub fn too_many(field: impl Into<String>, actual: u64, max: u64) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        Self::new(
            field,
            ErrorType::TooMany,
            Some(Value::from(actual)),
            format!("must have at most {max} {unit}"),
        )
    }

    /// `field.Forbidden`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Forbidden, None, detail)
    }

    /// The `StatusCause.reason` for this error.
    pub fn reason(&self) -> &'static str {
        self.error_type.reason()
    }

    /// The message without the field path (`field.Error.ErrorBody()`), used as
    /// `StatusCause.message`.
    pub fn error_body(&self) -> String {
        let mut s = self.error_type.as_str().to_string();
        let shows_value = !matches!(
            self.error_type,
            ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong
        );
        if shows_value && let Some(v) = &self.bad_value {
            s.push_str(": ");
            s.push_str(&render_value(v));
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    /// Prepends `prefix` to the field path (e.g. a CRD version's schema path).
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.field = join_path(prefix, &self.field);
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.error_body())
    }
}

impl std::error::Error for FieldError {}

/// Joins two path fragments the way `field.Path` prints them.
pub(crate) fn join_path(prefix: &str, rest: &str) -> String {
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (_, true) => prefix.to_string(),
        _ if rest.starts_with('[') => format!("{prefix}{rest}"),
        _ => format!("{prefix}.{rest}"),
    }
}

/// Renders a bad value like Go's `%v`/`%q` does in `field.Error`; composite
/// values are shown as JSON, which is what readers of the message need.
fn render_value(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::String(s) => go_quote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// Quotes a string like Go's `strconv.Quote` for the characters that matter
/// in practice (quotes, backslashes, control characters).
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
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn display_matches_kubernetes() {
        let cases = [
            (
                FieldError::type_invalid(
                    "spec.replicas",
                    json!("string"),
                    "spec.replicas in body must be of type integer: \"string\"",
                ),
                r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#,
            ),
            (
                FieldError::not_supported("spec.size", json!("XL"), &["S".into(), "M".into()]),
                r#"spec.size: Unsupported value: "XL": supported values: "S", "M""#,
            ),
            (
                FieldError::required("spec.name", ""),
                "spec.name: Required value",
            ),
            (
                FieldError::invalid(
                    "spec.count",
                    json!(11),
                    "spec.count in body should be less than or equal to 10",
                ),
                "spec.count: Invalid value: 11: spec.count in body should be less than or equal to 10",
            ),
            (
                FieldError::too_long("spec.name", 5),
                "spec.name: Too long: may not be more than 5 bytes",
            ),
            (
                FieldError::too_many("spec.list", 4, 3),
                "spec.list: Too many: 4: must have at most 3 items",
            ),
            (
                FieldError::duplicate("spec.list[1]", json!("a")),
                r#"spec.list[1]: Duplicate value: "a""#,
            ),
            (
                FieldError::forbidden("spec.x", "must not be set"),
                "spec.x: Forbidden: must not be set",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn reasons() {
        assert_eq!(FieldError::required("a", "").reason(), "FieldValueRequired");
        assert_eq!(
            FieldError::type_invalid("a", json!("x"), "").reason(),
            "FieldValueTypeInvalid"
        );
        assert_eq!(
            FieldError::too_many("a", 2, 1).reason(),
            "FieldValueTooMany"
        );
    }

    #[test]
    fn prefixing() {
        let e = FieldError::required("properties[spec].type", "")
            .with_prefix("spec.versions[0].schema.openAPIV3Schema");
        assert_eq!(
            e.field,
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].type"
        );
        assert_eq!(join_path("a", "[0]"), "a[0]");
    }
}

//! The bits of ObjectMeta this crate needs: its field names (for pruning
//! `metadata`) and name validation (for embedded resources).

use serde_json::Value;

use crate::error::{FieldError, join_path};

/// JSON field names of `metav1.ObjectMeta`; anything else in `metadata` is dropped.
pub(crate) const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

const DNS1123_SUBDOMAIN_MAX: usize = 253;
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// Validates `apiVersion`, `kind` and `metadata` of an embedded resource the
/// way kube-apiserver does for `x-kubernetes-embedded-resource` values.
pub(crate) fn validate_embedded(
    obj: &serde_json::Map<String, Value>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for k in ["apiVersion", "kind"] {
        let p = join_path(path, k);
        match obj.get(k) {
            None => errs.push(FieldError::required(p, "must not be empty")),
            Some(Value::String(s)) if s.is_empty() => errs.push(FieldError::invalid(
                p,
                Value::String(String::new()),
                "must not be empty",
            )),
            Some(Value::String(_)) => {}
            Some(other) => errs.push(FieldError::invalid(p, other.clone(), "must be a string")),
        }
    }
    if let Some(meta) = obj.get("metadata") {
        errs.extend(validate_meta_names(meta, &join_path(path, "metadata")));
    }
    errs
}

fn validate_meta_names(meta: &Value, path: &str) -> Vec<FieldError> {
    let Some(meta) = meta.as_object() else {
        return vec![FieldError::invalid(path, meta.clone(), "must be an object")];
    };
    let mut errs = Vec::new();
    if let Some(name) = meta.get("name").and_then(Value::as_str) {
        errs.extend(dns_subdomain_errors(name, name, &join_path(path, "name")));
    }
    if let Some(gen_name) = meta.get("generateName").and_then(Value::as_str) {
        // A random suffix is appended later, so a trailing dash is fine here.
        let masked = gen_name
            .strip_suffix('-')
            .map_or_else(|| gen_name.to_string(), |s| format!("{s}a"));
        errs.extend(dns_subdomain_errors(
            &masked,
            gen_name,
            &join_path(path, "generateName"),
        ));
    }
    errs
}

fn dns_subdomain_errors(checked: &str, shown: &str, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if checked.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(FieldError::invalid(
            path,
            Value::String(shown.into()),
            format!("must be no more than {DNS1123_SUBDOMAIN_MAX} characters"),
        ));
    }
    if !is_dns1123_subdomain(checked) {
        errs.push(FieldError::invalid(
            path,
            Value::String(shown.into()),
            DNS1123_SUBDOMAIN_MSG,
        ));
    }
    errs
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`
pub(crate) fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_label)
}

fn is_label(l: &str) -> bool {
    let b = l.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(f), Some(e)) => alnum(f) && alnum(e) && b.iter().all(|c| alnum(c) || *c == b'-'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subdomains() {
        for (s, ok) in [
            ("example.com", true),
            ("a", true),
            ("a-b.c", true),
            ("", false),
            ("A", false),
            ("-a", false),
            ("a.", false),
            ("a..b", false),
            ("a_b", false),
        ] {
            assert_eq!(is_dns1123_subdomain(s), ok, "{s}");
        }
    }

    #[test]
    fn embedded() {
        let cases = [
            (json!({"apiVersion": "v1", "kind": "Pod"}), vec![]),
            (
                json!({"kind": "Pod"}),
                vec!["x.apiVersion: Required value: must not be empty"],
            ),
            (
                json!({"apiVersion": "v1", "kind": "", "metadata": {"generateName": "foo-"}}),
                vec![r#"x.kind: Invalid value: "": must not be empty"#],
            ),
            (
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Foo"}}),
                vec![
                    r#"x.metadata.name: Invalid value: "Foo": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#,
                ],
            ),
        ];
        for (obj, want) in cases {
            let got: Vec<String> = validate_embedded(obj.as_object().expect("object"), "x")
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, want, "{obj}");
        }
    }
}

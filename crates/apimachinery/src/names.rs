//! Name, label and annotation validation with kube's exact messages
//! (k8s.io/apimachinery/pkg/util/validation and pkg/api/validation), plus
//! `generateName` suffixes.

use crate::status::{BadValue, StatusCause};
use serde_json::{Map, Value};

pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// Total size of all annotation keys and values.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_B: usize = 256 * 1024;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// validation.RegexError: message, examples and the regex shown to users.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let shown: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{fmt}')",
        shown.join(" or ")
    )
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            is_alnum_lower(*f)
                && is_alnum_lower(*l)
                && b.iter().all(|c| is_alnum_lower(*c) || *c == b'-')
        }
        _ => false,
    }
}

fn matches_dns_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns_label)
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            is_alnum(*f)
                && is_alnum(*l)
                && b.iter()
                    .all(|c| is_alnum(*c) || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// IsDNS1123Subdomain.
pub fn validate_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// IsDNS1123Label.
pub fn validate_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns_label(value) {
        // A valid subdomain that is not a label can only be failing on dots.
        if matches_dns_subdomain(value) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// IsValidPathSegmentName: names that are safe as one URL path segment.
pub fn validate_path_segment_name(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    validate_path_segment_prefix(name)
}

fn validate_path_segment_prefix(name: &str) -> Vec<String> {
    ["/", "%"]
        .iter()
        .filter(|bad| name.contains(*bad))
        .map(|bad| format!("may not contain '{bad}'"))
        .collect()
}

/// IsQualifiedName: `[prefix/]name` as used by label keys and finalizers.
pub fn validate_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    validate_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_qualified_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// IsValidLabelValue.
pub fn validate_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !matches_qualified_name(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// A name validator as kube's ValidateNameFunc: `(name, is_prefix)`; the
/// prefix form is used for `generateName`.
pub type NameValidator = fn(&str, bool) -> Vec<String>;

/// NameIsDNSSubdomain (most resources).
pub fn dns_subdomain_name(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        validate_dns1123_subdomain(&mask_trailing_dash(name))
    } else {
        validate_dns1123_subdomain(name)
    }
}

/// NameIsDNSLabel (namespaces, services).
pub fn dns_label_name(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        validate_dns1123_label(&mask_trailing_dash(name))
    } else {
        validate_dns1123_label(name)
    }
}

/// ValidatePathSegmentName (RBAC objects and others with free-form names).
pub fn path_segment_name(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        validate_path_segment_prefix(name)
    } else {
        validate_path_segment_name(name)
    }
}

/// A generateName may end in '-' because a suffix follows.
fn mask_trailing_dash(name: &str) -> String {
    match name.strip_suffix('-') {
        Some(rest) if !rest.is_empty() => format!("{rest}a"),
        _ => name.to_string(),
    }
}

const RAND_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const RANDOM_LENGTH: usize = 5;
const MAX_GENERATED_PREFIX: usize = 63 - RANDOM_LENGTH;

/// SimpleNameGenerator: prefix (cut to 58 bytes) plus 5 random characters
/// from an alphabet without vowels, so no words are formed.
pub fn generate_name(prefix: &str) -> String {
    use rand::Rng;
    let mut cut = prefix.len().min(MAX_GENERATED_PREFIX);
    while !prefix.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut rng = rand::rng();
    let mut out = String::with_capacity(cut + RANDOM_LENGTH);
    out.push_str(&prefix[..cut]);
    for _ in 0..RANDOM_LENGTH {
        let i = rng.random_range(0..RAND_ALPHABET.len());
        out.push(char::from(RAND_ALPHABET[i]));
    }
    out
}

fn as_str(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// ValidateLabels: every key a qualified name, every value a label value.
/// Causes carry `path` (e.g. `metadata.labels`) as their field, as kube does.
pub fn validate_labels_at(labels: &Map<String, Value>, path: &str) -> Vec<StatusCause> {
    let mut out = Vec::new();
    for (k, v) in labels {
        for msg in validate_qualified_name(k) {
            out.push(StatusCause::invalid(path, BadValue::Str(k), &msg));
        }
        let value = as_str(v);
        for msg in validate_label_value(value) {
            out.push(StatusCause::invalid(path, BadValue::Str(value), &msg));
        }
    }
    out
}

/// [`validate_labels_at`] for `metadata.labels`, as `(field, message body)` pairs.
pub fn validate_labels(labels: &Map<String, Value>) -> Vec<(String, String)> {
    pairs(validate_labels_at(labels, "metadata.labels"))
}

/// ValidateAnnotations: keys are case-insensitive qualified names and the
/// total size of keys and values is at most 256 KiB.
pub fn validate_annotations_at(annotations: &Map<String, Value>, path: &str) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations {
        for msg in validate_qualified_name(&k.to_lowercase()) {
            out.push(StatusCause::invalid(path, BadValue::Str(k), &msg));
        }
        total = total
            .saturating_add(k.len())
            .saturating_add(as_str(v).len());
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_B {
        out.push(StatusCause::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT_B));
    }
    out
}

/// [`validate_annotations_at`] for `metadata.annotations`.
pub fn validate_annotations(annotations: &Map<String, Value>) -> Vec<(String, String)> {
    pairs(validate_annotations_at(annotations, "metadata.annotations"))
}

fn pairs(causes: Vec<StatusCause>) -> Vec<(String, String)> {
    causes.into_iter().map(|c| (c.field, c.message)).collect()
}

/// ValidateObjectMetaAccessor for a JSON `metadata` object.
pub fn validate_object_meta(
    meta: &Value,
    namespaced: bool,
    name_validator: NameValidator,
) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let field = |k: &str| meta.get(k).map(as_str).unwrap_or("");
    validate_names(
        field("name"),
        field("generateName"),
        name_validator,
        &mut out,
    );
    validate_namespace(field("namespace"), namespaced, &mut out);
    if let Some(g) = meta
        .get("generation")
        .and_then(Value::as_i64)
        .filter(|g| *g < 0)
    {
        out.push(StatusCause::invalid(
            "metadata.generation",
            BadValue::Int(g),
            "must be greater than or equal to 0",
        ));
    }
    if let Some(labels) = meta.get("labels").and_then(Value::as_object) {
        out.extend(validate_labels_at(labels, "metadata.labels"));
    }
    if let Some(ann) = meta.get("annotations").and_then(Value::as_object) {
        out.extend(validate_annotations_at(ann, "metadata.annotations"));
    }
    if let Some(refs) = meta.get("ownerReferences").and_then(Value::as_array) {
        validate_owner_references(refs, &mut out);
    }
    if let Some(fins) = meta.get("finalizers").and_then(Value::as_array) {
        for f in fins.iter().map(as_str) {
            for msg in validate_qualified_name(f) {
                out.push(StatusCause::invalid(
                    "metadata.finalizers",
                    BadValue::Str(f),
                    &msg,
                ));
            }
        }
    }
    out
}

fn validate_names(name: &str, generate: &str, v: NameValidator, out: &mut Vec<StatusCause>) {
    if !generate.is_empty() {
        for msg in v(generate, true) {
            out.push(StatusCause::invalid(
                "metadata.generateName",
                BadValue::Str(generate),
                &msg,
            ));
        }
    }
    if name.is_empty() {
        out.push(StatusCause::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for msg in v(name, false) {
            out.push(StatusCause::invalid(
                "metadata.name",
                BadValue::Str(name),
                &msg,
            ));
        }
    }
}

fn validate_namespace(ns: &str, namespaced: bool, out: &mut Vec<StatusCause>) {
    if namespaced {
        if ns.is_empty() {
            out.push(StatusCause::required("metadata.namespace", ""));
        }
        let errs = if ns.is_empty() {
            Vec::new()
        } else {
            dns_label_name(ns, false)
        };
        for msg in errs {
            out.push(StatusCause::invalid(
                "metadata.namespace",
                BadValue::Str(ns),
                &msg,
            ));
        }
    } else if !ns.is_empty() {
        out.push(StatusCause::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
}

fn validate_owner_references(refs: &[Value], out: &mut Vec<StatusCause>) {
    const P: &str = "metadata.ownerReferences";
    let mut controller: Option<String> = None;
    for r in refs {
        let get = |k: &str| r.get(k).map(as_str).unwrap_or("");
        let api_version = get("apiVersion");
        // schema.FromAPIVersionAndKind: the version is what follows the last '/'.
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            out.push(StatusCause::invalid(
                &format!("{P}.apiVersion"),
                BadValue::Str(api_version),
                "version must not be empty",
            ));
        }
        for key in ["kind", "name", "uid"] {
            if get(key).is_empty() {
                out.push(StatusCause::invalid(
                    &format!("{P}.{key}"),
                    BadValue::Str(""),
                    "must not be empty",
                ));
            }
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{}/{}", get("kind"), get("name"));
            match &controller {
                Some(prev) => out.push(StatusCause::invalid(
                    P,
                    BadValue::Json(&Value::Array(refs.to_vec())),
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {prev} and {current}"
                    ),
                )),
                None => controller = Some(current),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

    #[test]
    fn subdomain() {
        for ok in ["a", "example.com", "a-b.c-d", "0", "a.b.c"] {
            assert!(validate_dns1123_subdomain(ok).is_empty(), "{ok}");
        }
        for bad in ["", "A", "-a", "a-", "a..b", ".a", "a_b", "a.", "é"] {
            assert_eq!(
                validate_dns1123_subdomain(bad),
                vec![SUBDOMAIN_MSG],
                "{bad}"
            );
        }
        let long = "a".repeat(254);
        assert_eq!(
            validate_dns1123_subdomain(&long),
            vec!["must be no more than 253 characters".to_string()]
        );
    }

    #[test]
    fn label() {
        assert!(validate_dns1123_label("my-name").is_empty());
        assert_eq!(validate_dns1123_label("a.b"), vec!["must not contain dots"]);
        assert_eq!(
            validate_dns1123_label("Ab"),
            vec![
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
        assert_eq!(validate_dns1123_label(&"a".repeat(64)).len(), 1);
    }

    #[test]
    fn path_segment() {
        assert_eq!(validate_path_segment_name(".."), vec!["may not be '..'"]);
        assert_eq!(
            validate_path_segment_name("a/b%"),
            vec!["may not contain '/'", "may not contain '%'"]
        );
        assert!(validate_path_segment_name("system:admin").is_empty());
    }

    #[test]
    fn qualified_names() {
        assert!(validate_qualified_name("app.kubernetes.io/name").is_empty());
        assert!(validate_qualified_name("MyName").is_empty());
        assert_eq!(
            validate_qualified_name("a_"),
            vec![
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            ]
        );
        assert_eq!(
            validate_qualified_name("/a"),
            vec!["prefix part must be non-empty"]
        );
        assert_eq!(validate_qualified_name("").len(), 2);
        assert!(validate_qualified_name("a/b/c")[0].starts_with("a qualified name must consist"));
        assert_eq!(validate_label_value(""), Vec::<String>::new());
        assert_eq!(validate_label_value("-x").len(), 1);
    }

    #[test]
    fn generated_names() {
        let n = generate_name("web-");
        assert_eq!(n.len(), 9);
        assert!(n.starts_with("web-"));
        assert!(n[4..].bytes().all(|b| RAND_ALPHABET.contains(&b)));
        assert_eq!(generate_name(&"x".repeat(100)).len(), 63);
        // Multi-byte characters must not be split.
        assert!(generate_name(&"é".repeat(40)).len() <= 63);
    }

    #[test]
    fn object_meta() {
        let causes = validate_object_meta(&json!({"name": "Bad_Name"}), true, dns_subdomain_name);
        let msgs: Vec<String> = causes.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                format!("metadata.name: Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}"),
                "metadata.namespace: Required value".to_string(),
            ]
        );
        let causes = validate_object_meta(&json!({"namespace": "x"}), false, dns_subdomain_name);
        let msgs: Vec<String> = causes.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                "metadata.name: Required value: name or generateName is required",
                "metadata.namespace: Forbidden: not allowed on this type",
            ]
        );
        assert!(
            validate_object_meta(
                &json!({"generateName": "web-", "namespace": "d"}),
                true,
                dns_subdomain_name
            )
            .iter()
            .all(|c| c.field == "metadata.name")
        );
        let causes = validate_object_meta(
            &json!({"name": "a", "labels": {"ok": "-bad"}, "generation": -1,
                    "ownerReferences": [{"apiVersion": "v1", "kind": "K", "name": "n"}]}),
            false,
            dns_subdomain_name,
        );
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "metadata.generation",
                "metadata.labels",
                "metadata.ownerReferences.uid"
            ]
        );
        let big = json!({"a": "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_B)});
        let errs = validate_annotations(big.as_object().unwrap_or(&Map::new()));
        assert_eq!(
            errs,
            vec![(
                "metadata.annotations".to_string(),
                "Too long: may not be more than 262144 bytes".to_string()
            )]
        );
    }
}

//! Request bodies as the registry reads them: JSON, YAML or Kubernetes protobuf into a JSON
//! value, with kube's errors; typed decoding of kinds answered without storage; duplicate
//! fields for strict decoding.

use kplex_apimachinery::ApiError;
use serde_json::Value;

/// Deepest nesting accepted in a JSON/YAML body (a guard against stack exhaustion).
const MAX_DEPTH: usize = 100;

/// Decodes an object body by its content type.
pub fn decode(content_type: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    let media = content_type
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim();
    let value = match media {
        "application/json" | "" | "*/*" => decode_json(body)?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => decode_yaml(body)?,
        "application/vnd.kubernetes.protobuf" => kplex_protobuf::decode(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding protobuf body: {e}")))?,
        _ => {
            return Err(ApiError::unsupported_media_type(&[
                "application/json",
                "application/yaml",
                "application/vnd.kubernetes.protobuf",
            ]));
        }
    };
    if depth(&value) > MAX_DEPTH {
        return Err(ApiError::bad_request(format!(
            "the object is nested more than {MAX_DEPTH} levels deep"
        )));
    }
    Ok(value)
}

/// Decodes the body of a write of `kind`; a body that does not decode gets kube's answer
/// (`transformDecodeError`): "the object provided is unrecognized (must be of type
/// <kind>): <cause> (<the body's first bytes>)".
pub fn decode_object(
    kind: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Value, ApiError> {
    decode(content_type, body).map_err(|e| match e.code {
        400 => ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {kind}): {} ({})",
            e.message,
            summarize(body, 30)
        )),
        _ => e,
    })
}

/// kube's `summarizeData`: a JSON-looking body as text, anything else in hex, cut at `max`
/// bytes.
fn summarize(body: &[u8], max: usize) -> String {
    if body.is_empty() {
        return "<empty>".into();
    }
    let head = &body[..body.len().min(max)];
    let shown = match body[0] {
        b'{' => String::from_utf8_lossy(head).into_owned(),
        _ => head.iter().map(|b| format!("{b:02x}")).collect(),
    };
    match body.len() > max {
        true => format!("{shown} ..."),
        false => shown,
    }
}

pub fn decode_json(body: &[u8]) -> Result<Value, ApiError> {
    // serde_json refuses nesting beyond 128 levels itself, so this cannot overflow the stack.
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
    })
}

pub fn decode_yaml(body: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the YAML body is not UTF-8"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_bodies_are_unrecognized_objects() {
        let e = decode_object(
            "Namespace",
            Some("application/json"),
            b"apiVersion: v1\nkind: Pod\n",
        )
        .unwrap_err();
        assert_eq!(e.code, 400);
        assert!(
            e.message.starts_with(
                "the object provided is unrecognized (must be of type Namespace): couldn't get version/kind; json parse error:"
            ),
            "{}",
            e.message
        );
        assert!(
            e.message
                .ends_with("(61706956657273696f6e3a2076310a6b696e643a20506f640a)"),
            "{}",
            e.message
        );
        assert_eq!(summarize(b"{\"a\":1}", 30), "{\"a\":1}");
        assert_eq!(
            summarize(&[b'x'; 40], 30),
            format!("{} ...", "78".repeat(30))
        );
    }

    #[test]
    fn decodes_json_and_yaml() {
        assert_eq!(
            decode(Some("application/json"), br#"{"a":1}"#).unwrap()["a"],
            1
        );
        assert_eq!(
            decode(Some("application/yaml"), b"a: 1\nb: [x]\n").unwrap()["b"][0],
            "x"
        );
        assert_eq!(
            decode(Some("application/json"), b"{not json")
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            decode(Some("application/yaml"), b"a: [").unwrap_err().code,
            400
        );
        assert_eq!(decode(Some("text/html"), b"<p>").unwrap_err().code, 415);
        let deep = format!("{}1{}", "[".repeat(120), "]".repeat(120));
        assert_eq!(
            decode(Some("application/json"), deep.as_bytes())
                .unwrap_err()
                .code,
            400
        );
    }
}

/// Decodes the body of a request answered without being stored (reviews, TokenRequest) as
/// kube's typed decoder reads `group/version` `kind`: an object whose fields have the kind's
/// types, or 400 naming the first field that does not (the handlers can then rely on it).
pub fn decode_typed(
    content_type: Option<&str>,
    body: &[u8],
    (group, version, kind): (&str, &str, &str),
) -> Result<Value, ApiError> {
    let obj = decode(content_type, body)?;
    let refuse = |why: String| {
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {why}"
        ))
    };
    if !obj.is_object() {
        return Err(refuse("the body must be a JSON object".into()));
    }
    if let Some(metadata) = obj.get("metadata").filter(|m| !m.is_null()) {
        if !metadata.is_object() {
            return Err(refuse("metadata must be an object".into()));
        }
        if let Some(e) = kplex_apimachinery::meta::type_error(metadata) {
            return Err(refuse(e));
        }
    }
    if let Some(schema) = typed_schema(group, version, kind)
        && let Some(e) = schema
            .validate(&obj)
            .into_iter()
            .find(|e| e.error_type == kplex_schema::ErrorType::TypeInvalid)
    {
        return Err(refuse(format!("{}: {}", e.field, e.error_body())));
    }
    Ok(obj)
}

/// The compiled schema of a built-in kind, compiled once per kind.
fn typed_schema(
    group: &str,
    version: &str,
    kind: &str,
) -> Option<std::sync::Arc<kplex_schema::Schema>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type Cache = Mutex<HashMap<(String, String, String), Option<Arc<kplex_schema::Schema>>>>;
    static SCHEMAS: OnceLock<Cache> = OnceLock::new();
    let cache = SCHEMAS.get_or_init(Mutex::default);
    let key = (group.to_string(), version.to_string(), kind.to_string());
    if let Some(hit) = cache.lock().ok()?.get(&key) {
        return hit.clone();
    }
    let compiled = kplex_openapi::builtin_schema(group, version, kind)
        .and_then(|raw| kplex_schema::Schema::compile(&raw).ok())
        .map(Arc::new);
    cache.lock().ok()?.insert(key, compiled.clone());
    compiled
}

/// Fields given more than once in one object of a JSON body (`metadata.name`, `spec.x[0].y`),
/// which `fieldValidation=Strict` refuses as kube does. Invalid JSON yields what was found
/// before the error (decoding reports the error itself).
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    use serde::de::DeserializeSeed;
    let found = std::cell::RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(body);
    let _ = Duplicates {
        path: String::new(),
        found: &found,
    }
    .deserialize(&mut de);
    found.into_inner()
}

/// Walks a JSON document, recording the paths of repeated keys.
struct Duplicates<'a> {
    path: String,
    found: &'a std::cell::RefCell<Vec<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Duplicates<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Duplicates<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Duplicates {
                path: format!("{}[{i}]", self.path),
                found: self.found,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                self.found.borrow_mut().push(path.clone());
            }
            map.next_value_seed(Duplicates {
                path,
                found: self.found,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod duplicate_tests {
    use super::duplicate_fields;

    #[test]
    fn repeated_keys_are_found_at_any_depth() {
        let body = br#"{"metadata":{"name":"a","name":"b"},"spec":{"x":[{"y":1,"y":2}]},"kind":"K","kind":"K"}"#;
        assert_eq!(
            duplicate_fields(body),
            vec!["metadata.name", "spec.x[0].y", "kind"]
        );
        assert!(duplicate_fields(br#"{"a":{"b":1},"c":{"b":1}}"#).is_empty());
    }
}

//! Where a built-in kind holds times: the paths to its `metav1.Time` and `MicroTime` fields,
//! found from the kind's schema (`$ref`s to those two types), so the registry can return
//! them as kube's Go types marshal them (UTC, whole seconds or microseconds).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::builtin::{REF_PREFIX, builtin};

const TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Time";
const MICRO_TIME: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime";

/// One step from an object to a time field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Field(String),
    /// Every element of an array, or every value of a map.
    Each,
}

/// A time field of a kind: its path, and whether it is a `MicroTime`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeField {
    pub path: Vec<Step>,
    pub micro: bool,
}

/// group → version → kind → fields: looked up by `&str` at each level, so a write's lookup
/// allocates nothing.
type Index = HashMap<String, HashMap<String, HashMap<String, Arc<[TimeField]>>>>;

/// The time fields of built-in kind `group/version/kind` (empty for other kinds).
pub fn time_fields(group: &str, version: &str, kind: &str) -> Arc<[TimeField]> {
    static ALL: OnceLock<Index> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        let b = builtin();
        let mut index = Index::new();
        for k in &b.kinds {
            let mut out = Vec::new();
            if let Some(schema) = b.schemas.get(&k.schema) {
                walk(
                    schema,
                    &mut Vec::new(),
                    &mut vec![k.schema.clone()],
                    &mut out,
                );
            }
            index
                .entry(k.group.clone())
                .or_default()
                .entry(k.version.clone())
                .or_default()
                .insert(k.kind.clone(), out.into());
        }
        index
    });
    all.get(group)
        .and_then(|v| v.get(version))
        .and_then(|k| k.get(kind))
        .cloned()
        .unwrap_or_else(|| Arc::from(Vec::new()))
}

/// The schema name a node refers to (`$ref`, or the single `allOf` kube wraps refs in).
fn reference(schema: &Value) -> Option<&str> {
    let r = schema
        .get("$ref")
        .or_else(|| schema.get("allOf")?.get(0)?.get("$ref"))?;
    r.as_str()?.strip_prefix(REF_PREFIX)
}

/// Collects time fields under `schema`; `seen`: the named schemas on the way here (recursive
/// types such as JSONSchemaProps end there).
fn walk(schema: &Value, path: &mut Vec<Step>, seen: &mut Vec<String>, out: &mut Vec<TimeField>) {
    if let Some(name) = reference(schema) {
        match name {
            TIME | MICRO_TIME => out.push(TimeField {
                path: path.clone(),
                micro: name == MICRO_TIME,
            }),
            _ if seen.iter().any(|s| s == name) => {}
            _ => {
                if let Some(target) = builtin().schemas.get(name) {
                    seen.push(name.to_string());
                    walk(target, path, seen, out);
                    seen.pop();
                }
            }
        }
        return;
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            path.push(Step::Field(name.clone()));
            walk(sub, path, seen, out);
            path.pop();
        }
    }
    for each in ["items", "additionalProperties"] {
        if let Some(sub) = schema.get(each).filter(|s| s.is_object()) {
            path.push(Step::Each);
            walk(sub, path, seen, out);
            path.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(fields: &[TimeField], path: &[&str], micro: bool) -> bool {
        fields.iter().any(|f| {
            f.micro == micro
                && f.path
                    == path
                        .iter()
                        .map(|p| match *p {
                            "*" => Step::Each,
                            name => Step::Field(name.to_string()),
                        })
                        .collect::<Vec<_>>()
        })
    }

    #[test]
    fn finds_times_and_micro_times() {
        let pod = time_fields("", "v1", "Pod");
        assert!(has(&pod, &["metadata", "creationTimestamp"], false));
        assert!(has(
            &pod,
            &["status", "conditions", "*", "lastTransitionTime"],
            false
        ));
        assert!(has(
            &pod,
            &[
                "status",
                "containerStatuses",
                "*",
                "state",
                "running",
                "startedAt"
            ],
            false
        ));
        let lease = time_fields("coordination.k8s.io", "v1", "Lease");
        assert!(has(&lease, &["spec", "renewTime"], true));
        assert!(time_fields("example.com", "v1", "Widget").is_empty());
        // Recursive schemas end.
        assert!(!time_fields("apiextensions.k8s.io", "v1", "CustomResourceDefinition").is_empty());
    }
}

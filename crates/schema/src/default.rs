//! Defaulting: filling in `default` values, as kube-apiserver does when
//! decoding a custom resource (after pruning, before validation).

use serde_json::Value;

use crate::schema::{Additional, MAX_DEPTH, Schema};

impl Schema {
    /// Sets `default` values for absent properties, recursing into objects,
    /// list items and map values (including freshly defaulted ones). A `null`
    /// is replaced by the default unless the field is `nullable`, in which case
    /// the explicit null is kept.
    #[allow(clippy::should_implement_trait)]
    pub fn default(&self, obj: &mut Value) {
        default_value(self, obj, 0);
    }
}

fn needs_default(v: &Value, s: &Schema) -> bool {
    v.is_null() && !s.nullable
}

fn default_value(s: &Schema, v: &mut Value, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(o) => {
            for (k, prop) in &s.properties {
                let Some(d) = &prop.default else { continue };
                if o.get(k).is_none_or(|cur| needs_default(cur, prop)) {
                    o.insert(k.clone(), d.clone());
                }
            }
            let additional = match &s.additional {
                Some(Additional::Schema(a)) => Some(a.as_ref()),
                _ => None,
            };
            for (k, child) in o.iter_mut() {
                if let Some(prop) = s.properties.get(k) {
                    default_value(prop, child, depth + 1);
                } else if let Some(a) = additional {
                    fill_null(a, child);
                    default_value(a, child, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            let Some(schema) = s.items.as_deref() else {
                return;
            };
            for item in items {
                fill_null(schema, item);
                default_value(schema, item, depth + 1);
            }
        }
        _ => {}
    }
}

fn fill_null(s: &Schema, v: &mut Value) {
    if let Some(d) = &s.default
        && needs_default(v, s)
    {
        *v = d.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_like_kube() {
        let s = Schema::compile(&json!({"type": "object", "properties": {
            "spec": {"type": "object", "default": {}, "properties": {
                "replicas": {"type": "integer", "default": 1},
                "mode": {"type": "string", "default": "auto"},
                "opt": {"type": "string", "nullable": true, "default": "x"},
                "nested": {"type": "object", "default": {}, "properties": {"on": {"type": "boolean", "default": true}}},
                "list": {"type": "array", "items": {"type": "object", "properties": {"p": {"type": "integer", "default": 80}}}},
                "map": {"type": "object", "additionalProperties": {"type": "string", "default": "d"}}
            }}
        }}))
        .expect("compiles");
        let cases = [
            (
                json!({}),
                json!({"spec": {"replicas": 1, "mode": "auto", "opt": "x", "nested": {"on": true}}}),
            ),
            (
                json!({"spec": {"replicas": 3, "mode": null, "opt": null, "list": [{}, {"p": 1}], "map": {"a": null, "b": "c"}}}),
                json!({"spec": {"replicas": 3, "mode": "auto", "opt": null, "nested": {"on": true},
                                "list": [{"p": 80}, {"p": 1}], "map": {"a": "d", "b": "c"}}}),
            ),
        ];
        for (mut obj, want) in cases {
            s.default(&mut obj);
            assert_eq!(obj, want);
        }
    }
}

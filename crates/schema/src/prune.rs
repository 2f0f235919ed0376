//! Pruning: dropping fields a schema does not specify, as kube-apiserver does
//! before storing a custom resource.

use serde_json::{Map, Value};

use crate::meta::OBJECT_META_FIELDS;
use crate::schema::{Additional, MAX_DEPTH, Schema};

impl Schema {
    /// Removes fields the schema does not specify and returns their paths
    /// (`.spec.foo`, `.spec.list[0].bar`), sorted. Top-level `apiVersion`,
    /// `kind` and `metadata` are kept; unknown keys inside `metadata` (here and
    /// in embedded resources) are dropped since metadata is always ObjectMeta.
    /// `x-kubernetes-preserve-unknown-fields` subtrees keep unknown fields but
    /// their specified children are still pruned.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        prune_value(self, obj, true, 0)
    }
}

/// Prunes `v` against `s`; `root` marks a resource root (meta fields kept).
pub(crate) fn prune_value(s: &Schema, v: &mut Value, root: bool, depth: usize) -> Vec<String> {
    let mut p = Pruner::default();
    p.value(Some(s), v, "", root, depth);
    p.removed.sort();
    p.removed
}

#[derive(Default)]
struct Pruner {
    removed: Vec<String>,
}

impl Pruner {
    fn value(&mut self, s: Option<&Schema>, v: &mut Value, path: &str, root: bool, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        match v {
            Value::Object(o) => self.object(s, o, path, root, depth),
            Value::Array(a) => {
                // Without a schema nothing inside is known; with preserve-unknown
                // and no items schema everything is kept.
                if s.is_some_and(|s| s.preserve_unknown_fields && s.items.is_none()) {
                    return;
                }
                let items = s.and_then(|s| s.items.as_deref());
                for (i, item) in a.iter_mut().enumerate() {
                    self.value(items, item, &format!("{path}[{i}]"), false, depth + 1);
                }
            }
            _ => {}
        }
    }

    fn object(
        &mut self,
        s: Option<&Schema>,
        o: &mut Map<String, Value>,
        path: &str,
        root: bool,
        depth: usize,
    ) {
        let is_resource = root || s.is_some_and(|s| s.embedded_resource);
        let preserve = s.is_some_and(|s| s.preserve_unknown_fields);
        let mut unknown = Vec::new();
        for (k, child) in o.iter_mut() {
            let child_path = format!("{path}.{k}");
            if is_resource && self.resource_meta(k, child, &child_path, root) {
                continue;
            }
            let sub = s.and_then(|s| match s.properties.get(k) {
                Some(p) => Some(Some(p)),
                None => match &s.additional {
                    Some(Additional::Schema(a)) => Some(Some(a.as_ref())),
                    Some(Additional::Any) => Some(None),
                    _ => None,
                },
            });
            match sub {
                Some(Some(sub)) => self.value(Some(sub), child, &child_path, false, depth + 1),
                // additionalProperties: true keeps any value as is.
                Some(None) => {}
                None if preserve => {}
                None => unknown.push(k.clone()),
            }
        }
        // retain keeps the remaining fields in their original order.
        o.retain(|k, _| !unknown.contains(k));
        for k in unknown {
            self.removed.push(format!("{path}.{k}"));
        }
    }

    /// Handles apiVersion/kind/metadata of a resource; true if `k` was one of them.
    fn resource_meta(&mut self, k: &str, v: &mut Value, path: &str, root: bool) -> bool {
        match (k, v) {
            ("apiVersion" | "kind", Value::String(_)) => true,
            ("apiVersion" | "kind", _) => root,
            ("metadata", Value::Object(meta)) => {
                let unknown: Vec<String> = meta
                    .keys()
                    .filter(|mk| !OBJECT_META_FIELDS.contains(&mk.as_str()))
                    .cloned()
                    .collect();
                meta.retain(|mk, _| !unknown.contains(mk));
                for mk in unknown {
                    self.removed.push(format!("{path}.{mk}"));
                }
                true
            }
            ("metadata", _) => root,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prunes_like_kube() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "a": {"type": "string"},
                "list": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}}},
                "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {"x": {"type": "integer"}}}},
                "any": {"type": "object", "additionalProperties": true},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {"strict": {"type": "object", "properties": {"k": {"type": "string"}}}}},
                "res": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
                "ios": {"x-kubernetes-int-or-string": true}
            }},
            "status": {"type": "object"}
        }});
        let s = Schema::compile(&schema).expect("compiles");
        let cases = [
            (
                json!({"apiVersion": "g/v1", "kind": "K", "metadata": {"name": "n", "bogus": 1},
                       "extra": true, "spec": {"a": "x", "b": "y"}, "status": {"c": 1}}),
                json!({"apiVersion": "g/v1", "kind": "K", "metadata": {"name": "n"},
                       "spec": {"a": "x"}, "status": {}}),
                vec![".extra", ".metadata.bogus", ".spec.b", ".status.c"],
            ),
            (
                json!({"spec": {"list": [{"n": "a", "z": 1}, {"n": "b"}],
                                "map": {"k": {"x": 1, "y": 2}},
                                "any": {"k": {"deep": [1]}},
                                "free": {"u": {"v": 1}, "strict": {"k": "a", "drop": 1}},
                                "res": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "nope": 1}, "spec": {}},
                                "ios": 3}}),
                json!({"spec": {"list": [{"n": "a"}, {"n": "b"}],
                                "map": {"k": {"x": 1}},
                                "any": {"k": {"deep": [1]}},
                                "free": {"u": {"v": 1}, "strict": {"k": "a"}},
                                "res": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}},
                                "ios": 3}}),
                vec![
                    ".spec.free.strict.drop",
                    ".spec.list[0].z",
                    ".spec.map.k.y",
                    ".spec.res.metadata.nope",
                ],
            ),
            // A scalar field holding an object has no known keys; validation
            // then reports the type mismatch.
            (
                json!({"spec": {"a": {"nested": 1}}}),
                json!({"spec": {"a": {}}}),
                vec![".spec.a.nested"],
            ),
        ];
        for (mut obj, want, removed) in cases {
            let got = s.prune(&mut obj);
            assert_eq!(obj, want);
            assert_eq!(got, removed);
        }
    }

    #[test]
    fn preserve_unknown_at_root_keeps_everything() {
        let s = Schema::compile(
            &json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        )
        .expect("compiles");
        let mut obj = json!({"spec": {"x": [1, {"y": 2}]}, "other": 1});
        let before = obj.clone();
        assert!(s.prune(&mut obj).is_empty());
        assert_eq!(obj, before);
    }
}

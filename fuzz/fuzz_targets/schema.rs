//! Structural schemas from `kplex_schema`: compiling an arbitrary `openAPIV3Schema`, pruning,
//! defaulting and validating arbitrary objects, and JSONPath printer-column expressions.
//!
//! Input: one byte choosing the variant (byte % 3), then
//! - 0: a schema as JSON, a NUL byte, an object as JSON (without a NUL the object is `{}`):
//!   compile the schema and, if it compiles, prune, default and validate the object;
//! - 1: an object as JSON, pruned, defaulted and validated against a fixed CRD-like schema;
//! - 2: a JSONPath expression, evaluated on a fixed object and formatted as a table cell.
#![no_main]

use std::sync::LazyLock;

use kplex_schema::{Schema, jsonpath};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

static FIXED: LazyLock<Schema> = LazyLock::new(|| {
    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "size": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                    "color": {"type": "string", "enum": ["red", "green", "blue"]},
                    "name": {"type": "string", "maxLength": 20, "pattern": "^[a-z]+(-[a-z]+)*$"},
                    "created": {"type": "string", "format": "date-time"},
                    "port": {"x-kubernetes-int-or-string": true},
                    "ratio": {"type": "number", "exclusiveMinimum": true, "minimum": 0,
                              "multipleOf": 0.5},
                    "tags": {"type": "array", "maxItems": 5, "x-kubernetes-list-type": "set",
                             "items": {"type": "string", "minLength": 1}},
                    "ports": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name", "protocol"],
                        "items": {
                            "type": "object",
                            "required": ["name"],
                            "properties": {
                                "name": {"type": "string"},
                                "protocol": {"type": "string", "default": "TCP"},
                                "port": {"type": "integer", "format": "int32"}
                            }
                        }
                    },
                    "labels": {"type": "object", "additionalProperties": {"type": "string"},
                               "maxProperties": 4},
                    "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                               "properties": {"known": {"type": "boolean", "default": false}}},
                    "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                                 "x-kubernetes-preserve-unknown-fields": true},
                    "choice": {"type": "object",
                               "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                               "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
                    "maybe": {"type": "string", "nullable": true},
                    "rules": {"type": "object", "x-kubernetes-validations":
                              [{"rule": "self.x > 0", "message": "x must be positive"}],
                              "properties": {"x": {"type": "integer"}}}
                }
            },
            "status": {
                "type": "object",
                "properties": {
                    "conditions": {"type": "array", "items": {"type": "object",
                        "properties": {"type": {"type": "string"}, "status": {"type": "string"},
                                       "lastTransitionTime": {"type": "string",
                                                              "format": "date-time"}}}}
                }
            }
        }
    });
    Schema::compile(&schema).unwrap_or_else(|e| panic!("fixed schema compiles: {e:?}"))
});

static OBJECT: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "apiVersion": "example.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default", "labels": {"app": "web"},
                     "creationTimestamp": "2024-01-02T03:04:05Z"},
        "spec": {"size": 3, "color": "red", "tags": ["a", "b"], "ratio": 1.5,
                 "ports": [{"name": "http", "port": 80}, {"name": "dns", "protocol": "UDP",
                                                          "port": 53}]},
        "status": {"conditions": [{"type": "Ready", "status": "True",
                                   "lastTransitionTime": "2024-01-02T03:04:05Z"},
                                  {"type": "Synced", "status": "False"}]}
    })
});

/// Prune (twice: pruning is idempotent), default, validate.
fn exercise(schema: &Schema, mut obj: Value) {
    schema.prune(&mut obj);
    let again = schema.prune(&mut obj);
    assert!(again.is_empty(), "second prune removed {again:?}");
    schema.default(&mut obj);
    for e in schema.validate(&obj) {
        let _ = e.error_body();
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            let (schema, obj) = match rest.iter().position(|&b| b == 0) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &b"{}"[..]),
            };
            let Ok(schema) = serde_json::from_slice::<Value>(schema) else {
                return;
            };
            let Ok(compiled) = Schema::compile(&schema) else {
                return;
            };
            compiled.lookup(&["spec", "x"]);
            if let Ok(obj) = serde_json::from_slice::<Value>(obj) {
                exercise(&compiled, obj);
            }
        }
        1 => {
            if let Ok(obj) = serde_json::from_slice::<Value>(rest) {
                exercise(&FIXED, obj);
            }
        }
        _ => {
            let Ok(expr) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(path) = jsonpath::parse(expr) {
                let found = path.find(&OBJECT);
                for column_type in ["string", "integer", "number", "boolean", "date"] {
                    jsonpath::format_cell(&found, column_type);
                }
            }
        }
    }
});

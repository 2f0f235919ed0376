//! Request bodies: `kplex_registry::codec::decode` by content type (JSON with its depth limit,
//! YAML, Kubernetes protobuf). Input: one byte choosing the content type, then the body.
#![no_main]

use kplex_registry::codec as body;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/yaml"),
    Some("application/vnd.kubernetes.protobuf"),
    Some("application/json; charset=utf-8"),
    Some("text/yaml"),
    Some("application/x-yaml"),
    Some("*/*"),
    Some(""),
    Some("text/html"),
];

/// The depth limit `decode` enforces (body.rs MAX_DEPTH).
const MAX_DEPTH: usize = 100;

/// Nesting depth without recursion, so the check itself cannot overflow.
fn depth(v: &Value) -> usize {
    let mut max = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(m) => Box::new(m.values()),
            _ => continue,
        };
        max = max.max(d + 1);
        stack.extend(children.map(|c| (c, d + 1)));
    }
    max
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(which) % CONTENT_TYPES.len()];
    match body::decode(content_type, body) {
        Ok(value) => {
            assert!(
                depth(&value) <= MAX_DEPTH,
                "decode accepted a too deep body"
            );
            // Whatever was decoded serializes as JSON that parses again (not necessarily to an
            // equal value: without serde_json's float_roundtrip feature a float may move by one
            // ulp, e.g. 22222166666666666666666666666666666666666666666666666666666666666).
            let text = serde_json::to_vec(&value).expect("decoded value serializes");
            let again: Value = serde_json::from_slice(&text).expect("re-serialized JSON parses");
            assert_eq!(depth(&again), depth(&value));
        }
        Err(e) => assert!(
            e.code == 400 || e.code == 415,
            "unexpected error code {}",
            e.code
        ),
    }
});

//! Patches: JSON patch, JSON merge patch and strategic merge patch (built-in schemas and the
//! untyped one) from `kplex_apimachinery::patch`.
//!
//! Input: one byte choosing the patch type (byte % 3: 0 JSON patch, 1 merge patch, 2 strategic
//! merge patch) and, for strategic merge, the schema ((byte / 3) % SCHEMAS.len()); then the
//! original document as JSON, a NUL byte, and the patch body. Without a NUL the document is `{}`.
#![no_main]

use kplex_apimachinery::patch::{json_patch, merge_patch, strategic_merge_patch};
use kplex_apimachinery::patch_schema::{PatchSchema, builtin_patch_schema, untyped};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// (group, kind) of the built-in schemas to patch with; "" kind means untyped.
const SCHEMAS: &[(&str, &str)] = &[
    ("", ""),
    ("", "Pod"),
    ("apps", "Deployment"),
    ("", "ConfigMap"),
    ("", "Service"),
    ("", "Node"),
    ("apps", "StatefulSet"),
    ("batch", "Job"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("networking.k8s.io", "NetworkPolicy"),
];

fn schema(i: usize) -> &'static dyn PatchSchema {
    let (group, kind) = SCHEMAS[i % SCHEMAS.len()];
    builtin_patch_schema(group, kind).unwrap_or_else(untyped)
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let (doc, patch) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&b"{}"[..], rest),
    };
    let Ok(doc) = serde_json::from_slice::<Value>(doc) else {
        return;
    };
    let which = usize::from(which);
    match which % 3 {
        0 => {
            if let Err(e) = json_patch(&doc, patch) {
                assert!(
                    matches!(e.code, 400 | 413 | 422),
                    "json patch: code {}",
                    e.code
                );
            }
        }
        1 => match merge_patch(&doc, patch) {
            Ok(out) => {
                // RFC 7396 patches are idempotent; an object patch yields an object.
                let parsed: Value = serde_json::from_slice(patch).expect("accepted patch parses");
                if parsed.is_object() {
                    assert!(out.is_object(), "merge patch with an object gave {out}");
                    let again = merge_patch(&out, patch).expect("second merge succeeds");
                    assert_eq!(again, out, "merge patch is not idempotent");
                }
            }
            Err(e) => assert_eq!(e.code, 400),
        },
        _ => match strategic_merge_patch(&doc, patch, schema(which / 3)) {
            Ok(out) => assert!(out.is_object(), "strategic merge patch gave {out}"),
            Err(e) => assert!(
                matches!(e.code, 400 | 422 | 500),
                "strategic merge: code {}",
                e.code
            ),
        },
    }
});

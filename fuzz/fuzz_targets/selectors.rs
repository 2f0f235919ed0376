//! Label and field selector parsers, `LabelSelector::from_json`, name/label/annotation
//! validation and continue tokens from `kplex_apimachinery`.
//!
//! Input: one byte choosing the function (byte % 6), then its argument (text, or JSON for
//! `from_json` and `validate_object_meta`).
#![no_main]

use kplex_apimachinery::selector::{FieldRequirement, FieldSelector, LabelSelector};
use kplex_apimachinery::{continue_token, names};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fn labels() -> serde_json::Map<String, Value> {
    let v = json!({"app": "web", "tier": "frontend", "a": "b", "e": "x", "version": "10"});
    v.as_object().cloned().unwrap_or_default()
}

fn label_selector(s: &str) {
    let Ok(sel) = LabelSelector::parse(s) else {
        return;
    };
    sel.matches(&labels());
    sel.matches(&serde_json::Map::new());
    // The canonical string parses back to the same selector.
    let canonical = sel.to_string();
    let again = LabelSelector::parse(&canonical)
        .unwrap_or_else(|e| panic!("canonical {canonical:?} of {s:?} does not parse: {e:?}"));
    assert_eq!(
        again, sel,
        "canonical {canonical:?} of {s:?} parses differently"
    );
}

fn field_selector(s: &str) {
    let Ok(sel) = FieldSelector::parse(s) else {
        return;
    };
    sel.requires_exact_match("metadata.name");
    sel.matches(|f| (f == "metadata.name").then(|| "x".to_string()));
    // The canonical string parses back to the same requirements. Like kube's, the parser
    // sorts the raw terms, so the order may differ ("==b" sorts before "=a").
    let canonical = sel.to_string();
    let again = FieldSelector::parse(&canonical)
        .unwrap_or_else(|e| panic!("canonical {canonical:?} of {s:?} does not parse: {e:?}"));
    let key = |r: &FieldRequirement| (r.field.clone(), r.not_equals, r.value.clone());
    let sorted = |sel: &FieldSelector| {
        let mut v: Vec<_> = sel.requirements().iter().map(key).collect();
        v.sort();
        v
    };
    assert_eq!(
        sorted(&again),
        sorted(&sel),
        "canonical {canonical:?} of {s:?} parses differently"
    );
}

fn label_selector_json(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(sel) = LabelSelector::from_json(&v) {
        sel.matches(&labels());
        let _ = sel.to_string();
    }
}

fn name_validation(s: &str) {
    names::validate_dns1123_subdomain(s);
    names::validate_dns1123_label(s);
    names::validate_path_segment_name(s);
    names::validate_qualified_name(s);
    names::validate_label_value(s);
    for prefix in [false, true] {
        names::dns_subdomain_name(s, prefix);
        names::dns_label_name(s, prefix);
        names::path_segment_name(s, prefix);
    }
    let generated = names::generate_name(s);
    assert!(generated.len() <= s.len() + 5);
}

fn object_meta(data: &[u8]) {
    let Ok(meta) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    for namespaced in [false, true] {
        names::validate_object_meta(&meta, namespaced, names::dns_subdomain_name);
    }
    if let Some(labels) = meta.get("labels").and_then(Value::as_object) {
        names::validate_labels(labels);
    }
    if let Some(annotations) = meta.get("annotations").and_then(Value::as_object) {
        names::validate_annotations(annotations);
    }
}

fn continue_tokens(s: &str) {
    if let Ok((rv, start)) = continue_token::decode(s) {
        let token = continue_token::encode(rv, &start);
        let again = continue_token::decode(&token).expect("re-encoded token decodes");
        assert_eq!(again, (rv, start));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 6 {
        0 => label_selector(&text),
        1 => field_selector(&text),
        2 => label_selector_json(rest),
        3 => name_validation(&text),
        4 => object_meta(rest),
        _ => continue_tokens(&text),
    }
});

//! The official Python client (`kubernetes` package, Debian's python3-kubernetes) against a
//! real kplex: list, create, read, patch, delete, watch, and kube's error codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Kplex};
use serde_json::{Value, json};

#[test]
fn python_client_round_trip() {
    let k = Kplex::start(Backend::Embedded);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client.py");
    // Debian's interpreter, where python3-kubernetes is installed (not a pyenv shim).
    let out = std::process::Command::new("/usr/bin/python3")
        .arg(script)
        .arg(k.kubeconfig())
        .env("HOME", k.home())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        k.log()
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    let namespaces = seen["namespaces"].as_array().unwrap();
    assert!(namespaces.contains(&json!("default")), "{seen}");
    assert!(namespaces.contains(&json!("kube-system")), "{seen}");
    assert!(!seen["created_rv"].as_str().unwrap().is_empty());
    assert_eq!(seen["read"], json!({"k": "v"}));
    assert_eq!(seen["duplicate"], json!([409, "AlreadyExists"]));
    assert_eq!(seen["missing"], json!([404, "NotFound"]));
    assert_eq!(seen["patched"], json!({"k": "w"}));
    assert_eq!(
        seen["events"],
        json!([["DELETED", "py"]]),
        "{seen}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

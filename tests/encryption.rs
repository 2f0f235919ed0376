//! Encryption of Secrets at rest (`--encryption-provider-config`): kubectl sees plaintext,
//! the store file does not; keys rotate; unsupported providers are refused at start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{Backend, Kplex, path_str};

const KEY1: &str = "zej3LMczoHz2wkot6+mtoxuM6bg2d75+aA16/dqTLik=";
const KEY2: &str = "4+WEUHJzBWW9cqTK47Lf1DWhiXJ6ChBgNwoSdm4z05E=";

const S1: &str = "s1-plaintext-marker-4f2a9c";
const S1_BASE64: &str = "czEtcGxhaW50ZXh0LW1hcmtlci00ZjJhOWM";
const S2: &str = "s2-plaintext-marker-8b1d7e";
const S2_BASE64: &str = "czItcGxhaW50ZXh0LW1hcmtlci04YjFkN2U";
const CM: &str = "cm-plaintext-marker-93e0aa";

fn write_config(path: &Path, keys: &[(&str, &str)]) {
    let mut yaml = String::from(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n\
         - resources: [secrets]\n  providers:\n  - aesgcm:\n      keys:\n",
    );
    for (name, secret) in keys {
        yaml.push_str(&format!("      - name: {name}\n        secret: {secret}\n"));
    }
    yaml.push_str("  - identity: {}\n");
    std::fs::write(path, yaml).unwrap();
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn secret_value(k: &Kplex, name: &str) -> String {
    k.ok(&[
        "get",
        "secret",
        name,
        "-o",
        "go-template={{.data.password | base64decode}}",
    ])
}

/// The embedded store's file, read while kplex is stopped.
fn store_bytes(k: &Kplex) -> Vec<u8> {
    std::fs::read(k.root().join("store.db")).unwrap()
}

#[test]
fn secrets_encrypted_at_rest_and_keys_rotate() {
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("encryption.yaml");
    write_config(&cfg, &[("key1", KEY1)]);
    let mut k = Kplex::start_with_args(
        Backend::Embedded,
        &["--encryption-provider-config", path_str(&cfg)],
    );

    k.ok(&[
        "create",
        "secret",
        "generic",
        "s1",
        &format!("--from-literal=password={S1}"),
    ]);
    k.ok(&[
        "create",
        "configmap",
        "c1",
        &format!("--from-literal=v={CM}"),
    ]);
    assert_eq!(secret_value(&k, "s1"), S1);
    let listed = k.ok(&["get", "secrets", "-o", "name"]);
    assert!(listed.contains("secret/s1"), "{listed}");

    k.stop();
    let db = store_bytes(&k);
    assert!(
        !contains(&db, S1) && !contains(&db, S1_BASE64),
        "secret in plaintext"
    );
    assert!(contains(&db, "k8s:enc:aesgcm:v1:key1:"));
    assert!(contains(&db, CM), "config maps are not encrypted");

    // Rotation step 1: a new first key, the old one second — old secrets still read, new
    // writes use the new key.
    write_config(&cfg, &[("key2", KEY2), ("key1", KEY1)]);
    k.restart();
    assert_eq!(secret_value(&k, "s1"), S1);
    k.ok(&[
        "create",
        "secret",
        "generic",
        "s2",
        &format!("--from-literal=password={S2}"),
    ]);
    // Rewriting every secret re-encrypts it with the new key. Unlike kube-apiserver, an
    // unchanged `kubectl replace` is a no-op here (no staleness signal from the store), so
    // the rewrite changes something.
    k.ok(&["annotate", "secrets", "--all", "rotated=key2"]);
    k.stop();
    let db = store_bytes(&k);
    assert!(contains(&db, "k8s:enc:aesgcm:v1:key2:"));
    assert!(
        !contains(&db, S2) && !contains(&db, S2_BASE64),
        "secret in plaintext"
    );

    // Rotation step 2: the old key gone, everything still reads.
    write_config(&cfg, &[("key2", KEY2)]);
    k.restart();
    assert_eq!(secret_value(&k, "s1"), S1);
    assert_eq!(secret_value(&k, "s2"), S2);
}

#[test]
fn unsupported_provider_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("encryption.yaml");
    std::fs::write(
        &cfg,
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n\
         - resources: [secrets]\n  providers:\n  - secretbox:\n      keys:\n      \
         - name: k\n        secret: AAAA\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kplex"))
        .arg("start")
        .arg("--root-directory")
        .arg(dir.path().join("root"))
        .arg("--secure-port")
        .arg(kplex_testing::free_port().to_string())
        .arg("--encryption-provider-config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("secretbox"), "{stderr}");
}

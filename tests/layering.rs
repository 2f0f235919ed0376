//! The architecture's invariants that a machine can check (see `docs/architecture.md`):
//! crate arrows point one way, down the layers listed here, the crates below the server
//! know no feature's API group by name, and the server names features only at assembly.
//!
//! To add a crate: give it a layer here and list what it may depend on. A new dependency
//! that is not listed fails this test on purpose: decide whether the arrow is right first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Each kplex crate and the kplex crates it may depend on (normal dependencies; dev-only
/// dependencies may also use `kplex-testing`, and the end-to-end tests anything).
const ALLOWED: &[(&str, &[&str])] = &[
    // Pure building blocks: no kplex dependencies, or only each other.
    ("kplex-gocompat", &[]),
    ("kplex-testing", &[]),
    ("kplex-apimachinery", &["kplex-gocompat"]),
    ("kplex-schema", &["kplex-gocompat"]),
    ("kplex-store", &[]),
    // Span export (OTLP) and W3C trace context.
    ("kplex-telemetry", &[]),
    // The backup file format, over any store.
    ("kplex-snapshot", &["kplex-store"]),
    ("kplex-protobuf", &["kplex-gocompat"]),
    ("kplex-openapi", &["kplex-apimachinery", "kplex-schema"]),
    ("kplex-ssa", &["kplex-openapi", "kplex-schema"]),
    // The generic registry: below HTTP, above storage and object rules.
    (
        "kplex-registry",
        &[
            "kplex-apimachinery",
            "kplex-gocompat",
            "kplex-store",
            "kplex-schema",
            "kplex-openapi",
            "kplex-ssa",
            "kplex-protobuf",
        ],
    ),
    // Beside each other, on the registry.
    (
        "kplex-runtime",
        &["kplex-apimachinery", "kplex-registry", "kplex-store"],
    ),
    ("kplex-auth", &["kplex-apimachinery", "kplex-registry"]),
    // The plugin interface: what a feature hands the server.
    (
        "kplex-feature",
        &["kplex-auth", "kplex-registry", "kplex-runtime"],
    ),
    // Features: each plugs its kinds, strategies, plugins and controllers into the server.
    (
        "kplex-builtins",
        &[
            "kplex-apimachinery",
            "kplex-auth",
            "kplex-feature",
            "kplex-registry",
            "kplex-runtime",
            "kplex-schema",
        ],
    ),
    (
        "kplex-tenancy",
        &[
            "kplex-apimachinery",
            "kplex-auth",
            "kplex-feature",
            "kplex-registry",
            "kplex-runtime",
        ],
    ),
    // The one arrow between features: apis builds on tenancy.
    (
        "kplex-apis",
        &[
            "kplex-apimachinery",
            "kplex-auth",
            "kplex-feature",
            "kplex-registry",
            "kplex-runtime",
            "kplex-tenancy",
        ],
    ),
    // Placement builds on workspaces as the APIs do.
    (
        "kplex-workload",
        &[
            "kplex-apimachinery",
            "kplex-auth",
            "kplex-feature",
            "kplex-registry",
            "kplex-runtime",
            "kplex-tenancy",
        ],
    ),
    // The server: HTTP, the request chain, and (for now) the features it assembles.
    (
        "kplex-apiserver",
        &[
            "kplex-apimachinery",
            "kplex-apis",
            "kplex-auth",
            "kplex-feature",
            "kplex-builtins",
            "kplex-gocompat",
            "kplex-openapi",
            "kplex-protobuf",
            "kplex-registry",
            "kplex-runtime",
            "kplex-schema",
            "kplex-snapshot",
            "kplex-store",
            "kplex-telemetry",
            "kplex-tenancy",
            "kplex-workload",
        ],
    ),
    // The kubectl plugins talk to a server over HTTP only.
    ("kplex-cli", &["kplex-gocompat"]),
    // The agent talks to kplex over HTTP only.
    ("kplex-syncer", &[]),
    // The cluster simulator too.
    ("kplex-sim", &[]),
    // Binaries.
    // The benchmarks reach the server only as clients do (the store bench opens a store;
    // the simulated targets format their heartbeat times with Go's RFC 3339).
    ("kplex-bench", &["kplex-store", "kplex-gocompat"]),
    (
        "kplex",
        &[
            "kplex-apiserver",
            "kplex-cli",
            "kplex-gocompat",
            "kplex-sim",
            "kplex-snapshot",
            "kplex-store",
            "kplex-syncer",
            "kplex-telemetry",
        ],
    ),
];

/// `cargo metadata`: each workspace package's kplex dependencies, by kind.
fn workspace_edges() -> BTreeMap<String, Vec<(String, Option<String>)>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut edges = BTreeMap::new();
    for pkg in meta["packages"].as_array().unwrap() {
        let name = pkg["name"].as_str().unwrap().to_string();
        let deps = pkg["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["name"].as_str().unwrap().starts_with("kplex"))
            .map(|d| {
                (
                    d["name"].as_str().unwrap().to_string(),
                    d["kind"].as_str().map(String::from),
                )
            })
            .collect();
        edges.insert(name, deps);
    }
    edges
}

/// Every crate `krate` reaches through allowed arrows.
fn below<'a>(allowed: &BTreeMap<&str, BTreeSet<&'a str>>, krate: &str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = allowed
        .get(krate)
        .map(|d| d.iter().copied().collect())
        .unwrap_or_default();
    while let Some(next) = todo.pop() {
        if seen.insert(next) {
            todo.extend(allowed.get(next).into_iter().flatten().copied());
        }
    }
    seen
}

#[test]
fn crate_arrows_point_down_the_layers() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(c, deps)| (*c, deps.iter().copied().collect()))
        .collect();
    let mut wrong = Vec::new();
    for (krate, deps) in workspace_edges() {
        let Some(ok) = allowed.get(krate.as_str()) else {
            wrong.push(format!("{krate} has no layer in tests/layering.rs"));
            continue;
        };
        for (dep, kind) in deps {
            let dev = kind.as_deref() == Some("dev");
            // Tests may use the test support anywhere and any crate below their own (a
            // feature's unit test opens a real store); the end-to-end tests (the root
            // package's) may use any crate as a client would.
            let test_only = dev
                && (dep == "kplex-testing"
                    || krate == "kplex"
                    || below(&allowed, &krate).contains(dep.as_str()));
            if !ok.contains(dep.as_str()) && !test_only {
                wrong.push(format!(
                    "{krate} → {dep} ({})",
                    kind.as_deref().unwrap_or("normal")
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "arrows outside the layering: {wrong:#?}");
}

/// Features' API groups the crates below the server must not name: they stay generic, and
/// a feature plugs its kinds, strategies and plugins in at assembly.
const FEATURE_GROUPS: &[&str] = &["\"tenancy.kcp.io\"", "\"core.kcp.io\"", "\"apis.kcp.io\""];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn generic_crates_name_no_feature_group() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for krate in [
        "registry",
        "runtime",
        "auth",
        "feature",
        "store",
        "apimachinery",
    ] {
        let mut files = Vec::new();
        rust_files(&root.join("crates").join(krate).join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                if FEATURE_GROUPS.iter().any(|g| line.contains(g)) {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "feature groups named below the server: {found:#?}"
    );
}

/// Where the server may use a feature crate: assembly (`start.rs`) and the re-exports of
/// `lib.rs`.
/// Everywhere else it reaches features only through the seams they implement
/// (`VirtualResource`, `VirtualWorkspace`, `AuthorizationHook`, `CreateHook`, …).
const SERVER_FEATURE_USERS: &[&str] = &["start.rs", "lib.rs"];

#[test]
fn the_server_names_features_only_at_assembly() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/apiserver/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if SERVER_FEATURE_USERS.contains(&relative.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let names_feature = ["tenancy::", "apis::", "kplex_tenancy", "kplex_apis"]
                .iter()
                .any(|f| line.contains(f))
                || FEATURE_GROUPS.iter().any(|g| line.contains(g));
            if names_feature {
                found.push(format!("{relative}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "features named by the server outside assembly: {found:#?}"
    );
}

//! Object-count quotas: the per-workspace cap (`--logical-cluster-total-object-limit` and the
//! LogicalCluster's `core.kcp.io/max-total-objects`), and ResourceQuota object counts, each
//! confined to its own workspace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Kplex, Raw, create_workspace, eventually, json, ws_ok as ok, ws_ok_stdin};

/// POSTs config maps `<prefix>-<i>` until one is refused; returns how many were created and
/// the refusal.
fn fill(k: &Kplex, raw: &Raw, ws: &str, prefix: &str, max: usize) -> (usize, Option<String>) {
    let headers = [
        ("Authorization", format!("Bearer {}", k.token())),
        ("Content-Type", "application/json".to_string()),
    ];
    for i in 0..max {
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{prefix}-{i}"}}}}"#
        );
        let a = raw
            .request(
                "POST",
                &format!("/clusters/{ws}/api/v1/namespaces/default/configmaps"),
                &headers,
                body.as_bytes(),
            )
            .unwrap();
        if a.code != 201 {
            assert_eq!(a.code, 403, "{}", String::from_utf8_lossy(&a.body));
            return (i, Some(String::from_utf8_lossy(&a.body).into_owned()));
        }
    }
    (max, None)
}

#[test]
fn a_workspace_holds_at_most_its_object_limit() {
    let k = Kplex::start_with_args(
        Backend::Embedded,
        &["--logical-cluster-total-object-limit", "60"],
    );
    create_workspace(&k, "root", "capped", None);
    create_workspace(&k, "root", "roomy", None);
    ok(
        &k,
        "root:roomy",
        &[
            "annotate",
            "logicalcluster",
            "cluster",
            "core.kcp.io/max-total-objects=100",
        ],
    );
    let raw = Raw::new(&k);
    // The server-wide limit: a few objects exist already (LogicalCluster, namespace, …).
    let (made, refused) = fill(&k, &raw, "root:capped", "cm", 80);
    assert!((50..60).contains(&made), "created {made}");
    let refused = refused.unwrap();
    assert!(
        refused.contains("the workspace has reached its limit of 60 objects"),
        "{refused}"
    );
    // Deleting makes room again.
    ok(&k, "root:capped", &["delete", "configmap", "cm-0"]);
    let (again, _) = fill(&k, &raw, "root:capped", "again", 5);
    assert_eq!(again, 1);
    // The annotation overrides the flag, for its own workspace only.
    let (more, refused) = fill(&k, &raw, "root:roomy", "cm", 120);
    assert!((90..100).contains(&more), "created {more}");
    assert!(refused.unwrap().contains("limit of 100 objects"));
    // A restart recounts from the store.
    drop(raw);
    let mut k = k;
    k.restart();
    let raw = Raw::new(&k);
    assert_eq!(fill(&k, &raw, "root:capped", "after", 5).0, 0);
}

const QUOTA: &str = r#"
apiVersion: v1
kind: ResourceQuota
metadata: {name: small, namespace: default}
spec:
  hard: {count/configmaps: "3", secrets: "1", requests.cpu: "1"}
"#;

#[test]
fn resource_quota_counts_objects_per_namespace_and_workspace() {
    let k = Kplex::start(Backend::Embedded);
    create_workspace(&k, "root", "limited", None);
    create_workspace(&k, "root", "free", None);
    ws_ok_stdin(&k, "root:limited", &["apply", "-f", "-"], QUOTA);
    let existing = json(&ok(
        &k,
        "root:limited",
        &["get", "configmaps", "-o", "json"],
    ))["items"]
        .as_array()
        .unwrap()
        .len();
    let raw = Raw::new(&k);
    let (made, refused) = fill(&k, &raw, "root:limited", "cm", 10);
    assert_eq!(made, 3 - existing);
    let refused = refused.unwrap();
    assert!(
        refused.contains(
            "exceeded quota: small, requested: count/configmaps=1, used: count/configmaps=3, limited: count/configmaps=3"
        ),
        "{refused}"
    );
    ok(&k, "root:limited", &["create", "secret", "generic", "one"]);
    let out = k.kubectl(&[
        "--server",
        &k.url("/clusters/root:limited"),
        "create",
        "secret",
        "generic",
        "two",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("exceeded quota: small"));
    // The quota reports its usage.
    eventually(15, "status.used", || {
        let q = json(&ok(
            &k,
            "root:limited",
            &["get", "resourcequota", "small", "-o", "json"],
        ));
        (q["status"]["used"]["count/configmaps"] == "3" && q["status"]["used"]["secrets"] == "1")
            .then_some(())
    });
    // Another workspace's default namespace is not limited by it.
    assert_eq!(fill(&k, &raw, "root:free", "cm", 6).0, 6);
}

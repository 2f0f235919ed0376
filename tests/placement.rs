//! Placement, server side, with the real kubectl: SyncTargets and Locations in a compute
//! workspace, a Placement in a team's workspace, namespaces and their objects labelled for
//! the chosen target, and the syncer virtual workspace serving exactly those objects to the
//! target's service account only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Kplex, create_workspace, eventually, json, ws_ok, ws_ok_stdin};

const COMPUTE: &str = r#"
apiVersion: workload.kcp.io/v1alpha1
kind: SyncTarget
metadata: {name: east, labels: {region: east}}
spec: {}
---
apiVersion: scheduling.kcp.io/v1alpha1
kind: Location
metadata: {name: default}
spec:
  resource: {group: workload.kcp.io, version: v1alpha1, resource: synctargets}
  instanceSelector: {}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: syncer-east, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: syncer-east}
rules:
- {apiGroups: [workload.kcp.io], resources: [synctargets], resourceNames: [east], verbs: [sync]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: syncer-east}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: syncer-east}
subjects: [{kind: ServiceAccount, name: syncer-east, namespace: default}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: stranger, namespace: default}
"#;

const PLACEMENT: &str = r#"
apiVersion: scheduling.kcp.io/v1alpha1
kind: Placement
metadata: {name: default}
spec:
  locationWorkspace: root:compute
  locationSelectors: [{}]
  namespaceSelector: {}
"#;

fn condition(obj: &serde_json::Value, type_: &str) -> String {
    obj["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == type_)
        .map(|c| c["status"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

#[test]
fn placements_schedule_namespaces_and_the_syncer_view_serves_them() {
    let k = Kplex::start(Backend::Embedded);
    create_workspace(&k, "root", "compute", None);
    create_workspace(&k, "root", "team", None);
    create_workspace(&k, "root", "other", None);
    ws_ok_stdin(&k, "root:compute", &["apply", "-f", "-"], COMPUTE);

    // The target gets its key and the syncer's URL; without heartbeats it is not Ready.
    let target = eventually(10, "the sync target's key and URL", || {
        let t = json(&ws_ok(
            &k,
            "root:compute",
            &["get", "synctarget", "east", "-o", "json"],
        ));
        (t["metadata"]["labels"]["internal.workload.kcp.io/key"].is_string()
            && t["status"]["virtualWorkspaces"][0]["syncerURL"].is_string())
        .then_some(t)
    });
    assert_eq!(condition(&target, "HeartbeatHealthy"), "False", "{target}");
    let key = target["metadata"]["labels"]["internal.workload.kcp.io/key"]
        .as_str()
        .unwrap()
        .to_string();
    let url = target["status"]["virtualWorkspaces"][0]["syncerURL"]
        .as_str()
        .unwrap()
        .to_string();
    // A heartbeat makes it Ready, and the location counts it available.
    common::heartbeat(&k, "root:compute", "east");
    eventually(10, "the location to count one available target", || {
        let l = json(&ws_ok(
            &k,
            "root:compute",
            &["get", "location", "default", "-o", "json"],
        ));
        (l["status"]["availableInstances"] == 1 && l["status"]["instances"] == 1).then_some(())
    });

    // Objects from before the placement are labelled too; new ones at once.
    ws_ok(
        &k,
        "root:team",
        &["create", "configmap", "before", "--from-literal=a=b"],
    );
    ws_ok(
        &k,
        "root:other",
        &["create", "configmap", "elsewhere", "--from-literal=a=b"],
    );
    ws_ok_stdin(&k, "root:team", &["apply", "-f", "-"], PLACEMENT);
    let state = format!("state.workload.kcp.io/{key}");
    eventually(10, "the placement to be Bound", || {
        let p = json(&ws_ok(
            &k,
            "root:team",
            &["get", "placement", "default", "-o", "json"],
        ));
        (p["status"]["phase"] == "Bound"
            && p["status"]["selectedLocation"]["path"] == "root:compute"
            && condition(&p, "Ready") == "True")
            .then_some(())
    });
    eventually(10, "the namespace and its objects to be labelled", || {
        let ns = json(&ws_ok(
            &k,
            "root:team",
            &["get", "ns", "default", "-o", "json"],
        ));
        let cm = json(&ws_ok(
            &k,
            "root:team",
            &["get", "cm", "before", "-o", "json"],
        ));
        (ns["metadata"]["labels"][&state] == "Sync" && cm["metadata"]["labels"][&state] == "Sync")
            .then_some(())
    });
    ws_ok(
        &k,
        "root:team",
        &["create", "deployment", "web", "--image=nginx"],
    );
    let d = json(&ws_ok(
        &k,
        "root:team",
        &["get", "deploy", "web", "-o", "json"],
    ));
    assert_eq!(d["metadata"]["labels"][&state], "Sync", "{d}");

    // The target's service account reads exactly the scheduled objects, across workspaces.
    let token = ws_ok(
        &k,
        "root:compute",
        &["create", "token", "syncer-east", "-n", "default"],
    );
    let token = token.trim();
    let view = |args: &[&str]| {
        let mut v = vec![
            "--server".to_string(),
            format!("{url}/clusters/*"),
            "--token".into(),
            token.to_string(),
        ];
        v.extend(args.iter().map(|s| s.to_string()));
        k.ok(&v.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let cms = view(&["get", "configmaps", "-A", "-o", "name"]);
    assert!(cms.contains("configmap/before"), "{cms}");
    assert!(
        !cms.contains("elsewhere"),
        "another workspace's object leaked: {cms}"
    );
    let deployments = view(&["get", "deployments", "-A", "-o", "name"]);
    assert!(deployments.contains("deployment.apps/web"), "{deployments}");
    // Status written back through the view, in the object's own workspace.
    let team_cluster = d["metadata"]["annotations"]["kcp.io/cluster"]
        .as_str()
        .unwrap()
        .to_string();
    let in_team = |args: &[&str]| {
        let mut v = vec![
            "--server".to_string(),
            format!("{url}/clusters/{team_cluster}"),
            "--token".into(),
            token.to_string(),
        ];
        v.extend(args.iter().map(|s| s.to_string()));
        k.kubectl(&v.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let out = in_team(&[
        "patch",
        "deployment",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":1,"readyReplicas":1}}"#,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = json(&ws_ok(
        &k,
        "root:team",
        &["get", "deploy", "web", "-o", "json"],
    ));
    assert_eq!(d["status"]["readyReplicas"], 1, "{d}");
    // It may not delete what the tenant placed.
    let out = in_team(&["delete", "configmap", "before"]);
    assert!(!out.status.success());

    // Any other identity is refused.
    let stranger = ws_ok(
        &k,
        "root:compute",
        &["create", "token", "stranger", "-n", "default"],
    );
    let out = k.kubectl(&[
        "--server",
        &format!("{url}/clusters/*"),
        "--token",
        stranger.trim(),
        "get",
        "configmaps",
        "-A",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Forbidden"),
        "{out:?}"
    );

    // So is a service account of another workspace, even one with the same name.
    ws_ok(
        &k,
        "root:team",
        &["create", "serviceaccount", "syncer-east", "-n", "default"],
    );
    let foreign = ws_ok(
        &k,
        "root:team",
        &["create", "token", "syncer-east", "-n", "default"],
    );
    let out = k.kubectl(&[
        "--server",
        &format!("{url}/clusters/*"),
        "--token",
        foreign.trim(),
        "get",
        "configmaps",
        "-A",
    ]);
    assert!(!out.status.success(), "a foreign service account got in");

    // Using another workspace's locations needs `bind` on them there.
    ws_ok_stdin(
        &k,
        "root:team",
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: planner, namespace: default}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: placements}\nrules: [{apiGroups: [scheduling.kcp.io], resources: [placements], verbs: ['*']}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: planner}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: placements}\nsubjects: [{kind: ServiceAccount, name: planner, namespace: default}]\n",
    );
    let planner = ws_ok(
        &k,
        "root:team",
        &["create", "token", "planner", "-n", "default"],
    );
    let team = k.url("/clusters/root:team");
    let second = PLACEMENT.replace("name: default", "name: second");
    let create = |expect_ok: bool| {
        let mut cmd = std::process::Command::new(common::kubectl_binary());
        cmd.args([
            "--server",
            &team,
            "--token",
            planner.trim(),
            "create",
            "-f",
            "-",
        ])
        .env("KUBECONFIG", k.kubeconfig());
        let out = common::output_with_stdin(&mut cmd, &second);
        assert_eq!(out.status.success(), expect_ok, "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = create(false);
    assert!(
        err.contains("no permission to bind locations in workspace root:compute"),
        "{err}"
    );
    ws_ok_stdin(
        &k,
        "root:compute",
        &["apply", "-f", "-"],
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: bind-locations}\nrules: [{apiGroups: [scheduling.kcp.io], resources: [locations], verbs: [bind]}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: team-planner}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: bind-locations}\nsubjects: [{kind: User, name: 'system:serviceaccount:default:planner'}]\n",
    );
    create(true);

    // A namespace and its objects created in one go: the objects get the labels too, even
    // those admitted before the namespace was scheduled.
    ws_ok_stdin(
        &k,
        "root:team",
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: burst}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: early, namespace: burst}\n",
    );
    eventually(10, "the early object to be labelled", || {
        let cm = json(&ws_ok(
            &k,
            "root:team",
            &["get", "cm", "early", "-n", "burst", "-o", "json"],
        ));
        (cm["metadata"]["labels"][&state] == "Sync").then_some(())
    });
}

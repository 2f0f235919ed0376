//! Per-workspace RBAC with kcp's access rules, driven with kubectl impersonating users
//! (the admin is in system:masters, so it may impersonate).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Backend, Kplex, eventually};

fn as_user(k: &Kplex, user: &str, path: &str, args: &[&str]) -> std::process::Output {
    let server = k.url(&format!("/clusters/{path}"));
    let mut v = vec!["--as", user, "--server", &server];
    v.extend_from_slice(args);
    k.kubectl(&v)
}

#[track_caller]
fn allowed(k: &Kplex, user: &str, path: &str, args: &[&str]) -> String {
    let out = as_user(k, user, path, args);
    assert!(
        out.status.success(),
        "{user} in {path}: {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn forbidden(k: &Kplex, user: &str, path: &str, args: &[&str]) -> String {
    let out = as_user(k, user, path, args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success() && err.contains("Forbidden") || err.contains("forbidden"),
        "{user} in {path}: {args:?} should be forbidden: {err}"
    );
    err
}

const CREATOR: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: workspace-creator}
rules:
- {verbs: [access], nonResourceURLs: ["/"]}
- {verbs: [create, get, list, watch], apiGroups: [tenancy.kcp.io], resources: [workspaces]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: alice-creates}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: workspace-creator}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}]
"#;

#[test]
fn workspace_access_creator_admin_bindings_and_escalation() {
    let k = Kplex::start(Backend::Embedded);
    // Strangers cannot even enter root.
    // (kubectl's discovery reports such a 403 as "unknown": ask a raw path for the message.)
    let err = forbidden(&k, "alice", "root", &["get", "--raw", "/api/v1/namespaces"]);
    assert!(err.contains("cannot access workspace"), "{err}");
    // Granted: alice may create workspaces in root, and becomes admin of hers.
    k.ok_stdin(&["apply", "-f", "-"], CREATOR);
    let ws = k.write_file("ws.yaml", "apiVersion: tenancy.kcp.io/v1alpha1\nkind: Workspace\nmetadata: {name: alices}\nspec: {type: {name: universal}}\n");
    allowed(
        &k,
        "alice",
        "root",
        &["create", "-f", common::path_str(&ws)],
    );
    eventually(20, "Ready", || {
        (k.ok(&["get", "ws", "alices", "-o", "jsonpath={.status.phase}"]) == "Ready").then_some(())
    });
    allowed(&k, "alice", "root:alices", &["create", "configmap", "hers"]);
    assert!(
        allowed(
            &k,
            "alice",
            "root:alices",
            &[
                "get",
                "clusterrolebinding",
                "workspace-admin",
                "-o",
                "jsonpath={.subjects[0].name}"
            ]
        )
        .contains("alice")
    );
    // Without `use` on organization, alice cannot create one.
    let org = k.write_file("org.yaml", "apiVersion: tenancy.kcp.io/v1alpha1\nkind: Workspace\nmetadata: {name: alices-org}\nspec: {type: {name: organization}}\n");
    let err = forbidden(
        &k,
        "alice",
        "root",
        &["create", "-f", common::path_str(&org)],
    );
    assert!(
        err.contains("unable to use workspace type root:organization"),
        "{err}"
    );
    // Bob has no access to alice's workspace until she grants it.
    let err = forbidden(
        &k,
        "bob",
        "root:alices",
        &["get", "--raw", "/api/v1/configmaps"],
    );
    assert!(err.contains("cannot access workspace"), "{err}");
    let view = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: bob-views}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: bob-enters}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kcp:workspace:access}\nsubjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]\n";
    allowed(
        &k,
        "alice",
        "root:alices",
        &[
            "apply",
            "-f",
            common::path_str(&k.write_file("view.yaml", view)),
        ],
    );
    assert!(
        allowed(
            &k,
            "bob",
            "root:alices",
            &["get", "configmaps", "-o", "name"]
        )
        .contains("configmap/hers")
    );
    let err = forbidden(&k, "bob", "root:alices", &["create", "configmap", "his"]);
    assert!(err.contains("User \"bob\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"default\""), "{err}");
    // kubectl auth can-i, and --list.
    assert_eq!(
        allowed(
            &k,
            "bob",
            "root:alices",
            &["auth", "can-i", "get", "configmaps"]
        )
        .trim(),
        "yes"
    );
    let out = as_user(
        &k,
        "bob",
        "root:alices",
        &["auth", "can-i", "create", "configmaps"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");
    let list = allowed(&k, "bob", "root:alices", &["auth", "can-i", "--list"]);
    // The view role: reads of workloads, never Secrets.
    let configmaps = list
        .lines()
        .find(|l| l.starts_with("configmaps "))
        .unwrap_or("");
    assert!(configmaps.contains("[get list watch]"), "{list}");
    assert!(list.contains("*.apps"), "{list}");
    assert!(!list.lines().any(|l| l.starts_with("secrets ")), "{list}");
    // Escalation: bob may write RBAC objects, but not grant more than he holds.
    let writer = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: rbac-writer}\nrules: [{verbs: [create], apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles, clusterrolebindings]}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: bob-writes-rbac}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rbac-writer}\nsubjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]\n";
    allowed(
        &k,
        "alice",
        "root:alices",
        &[
            "apply",
            "-f",
            common::path_str(&k.write_file("writer.yaml", writer)),
        ],
    );
    let small = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: cm-reader}\nrules: [{verbs: [get], apiGroups: [\"\"], resources: [configmaps]}]\n";
    allowed(
        &k,
        "bob",
        "root:alices",
        &[
            "create",
            "-f",
            common::path_str(&k.write_file("small.yaml", small)),
        ],
    );
    let wide = small
        .replace("cm-reader", "cm-writer")
        .replace("[get]", "[get, delete]");
    let err = forbidden(
        &k,
        "bob",
        "root:alices",
        &[
            "create",
            "-f",
            common::path_str(&k.write_file("wide.yaml", &wide)),
        ],
    );
    assert!(err.contains("not currently held"), "{err}");
    let grab = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: bob-edits}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}\nsubjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]\n";
    let err = forbidden(
        &k,
        "bob",
        "root:alices",
        &[
            "create",
            "-f",
            common::path_str(&k.write_file("grab.yaml", grab)),
        ],
    );
    assert!(err.contains("not currently held"), "{err}");
    // The wildcard view is for system:masters only.
    forbidden(&k, "alice", "*", &["get", "configmaps", "-A"]);
    // The admin (system:masters) may do anything anywhere.
    assert!(
        k.ok(&[
            "--server",
            &k.url("/clusters/root:alices"),
            "get",
            "configmaps",
            "-o",
            "name"
        ])
        .contains("configmap/hers")
    );
}

const AGGREGATION: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: monitoring}
aggregationRule:
  clusterRoleSelectors: [{matchLabels: {example.com/aggregate-to-monitoring: "true"}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: monitoring-endpoints, labels: {example.com/aggregate-to-monitoring: "true"}}
rules: [{verbs: [get, list, watch], apiGroups: [""], resources: [endpoints]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: users-enter}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kcp:workspace:access}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: users}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bob-views}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: carol-edits}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: carol}]
"#;

/// kube's clusterrole-aggregation controller, per workspace: an aggregating ClusterRole
/// gets the rules of the ClusterRoles its selectors match, and the shared `view`, `edit`
/// and `admin` grow with a workspace's `aggregate-to-*` roles (an operator's CRD roles).
#[test]
fn aggregated_cluster_roles_collect_their_workspaces_labelled_roles() {
    let k = Kplex::start(Backend::Embedded);
    common::create_workspace(&k, "root", "agg", None);
    let file = k.write_file("aggregation.yaml", AGGREGATION);
    common::ws_ok(&k, "root:agg", &["apply", "-f", common::path_str(&file)]);
    let rules = |role: &str| {
        common::ws_ok(
            &k,
            "root:agg",
            &["get", "clusterrole", role, "-o", "jsonpath={.rules}"],
        )
    };
    eventually(10, "monitoring aggregates the endpoints role", || {
        rules("monitoring").contains("endpoints").then_some(())
    });
    // The defaults carry kube's aggregation rules and labels.
    let view = common::json(&common::ws_ok(
        &k,
        "root:agg",
        &["get", "clusterrole", "view", "-o", "json"],
    ));
    assert_eq!(
        view["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]["rbac.authorization.k8s.io/aggregate-to-view"],
        "true"
    );
    assert_eq!(
        view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
        "true"
    );
    // view reads no RBAC and edit writes none — until a role aggregated into view says so.
    let users = ["--as-group", "users"];
    let reads_roles = |user: &str| {
        let mut args = vec!["auth", "can-i", "list", "roles.rbac.authorization.k8s.io"];
        args.extend(users);
        as_user(&k, user, "root:agg", &args).status.success()
    };
    assert!(!reads_roles("bob") && !reads_roles("carol"));
    let reader = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: rbac-reader, labels: {rbac.authorization.k8s.io/aggregate-to-view: \"true\"}}\nrules: [{verbs: [get, list], apiGroups: [rbac.authorization.k8s.io], resources: [roles]}]\n";
    let file = k.write_file("reader.yaml", reader);
    common::ws_ok(&k, "root:agg", &["apply", "-f", common::path_str(&file)]);
    assert!(reads_roles("bob"), "view holders read roles now");
    assert!(reads_roles("carol"), "edit aggregates view");
    // Only in that workspace.
    common::create_workspace(&k, "root", "other", None);
    let other = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: bob-views}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: bob-enters}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:kcp:workspace:access}\nsubjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]\n";
    let file = k.write_file("other.yaml", other);
    common::ws_ok(&k, "root:other", &["apply", "-f", common::path_str(&file)]);
    assert!(
        !as_user(
            &k,
            "bob",
            "root:other",
            &["auth", "can-i", "list", "roles.rbac.authorization.k8s.io"]
        )
        .status
        .success()
    );
    // Unlabel the source: the aggregate shrinks.
    common::ws_ok(
        &k,
        "root:agg",
        &[
            "label",
            "clusterrole",
            "monitoring-endpoints",
            "example.com/aggregate-to-monitoring-",
        ],
    );
    eventually(10, "monitoring drops the endpoints role", || {
        (!rules("monitoring").contains("endpoints")).then_some(())
    });
}

/// What kube's `test/cmd/rbac.sh` (`run_clusterroles_tests`, `run_role_tests`) checks,
/// written here: the `kubectl create clusterrole|role|clusterrolebinding|rolebinding` forms
/// build the rules and subjects kube builds, `kubectl set subject` (also `--all`) adds
/// subjects, and an unknown resource or group is refused with kube's message.
#[test]
fn kubectl_creates_roles_and_bindings_as_kube_test_cmd_expects() {
    let k = Kplex::start(Backend::Embedded);
    let field = |what: &str, path: &str| k.ok(&["get", what, "-o", &format!("jsonpath={path}")]);
    assert_eq!(
        field("clusterrole/cluster-admin", "{.metadata.name}"),
        "cluster-admin"
    );
    assert_eq!(
        field("clusterrolebinding/cluster-admin", "{.metadata.name}"),
        "cluster-admin"
    );
    let rule = |what: &str| {
        let r = |p: &str| {
            field(
                what,
                &format!("{{range .rules[*]}}{{range .{p}[*]}}{{@}}:{{end}}{{end}}"),
            )
        };
        (r("verbs"), r("resources"), r("apiGroups"))
    };
    k.ok(&[
        "create",
        "clusterrole",
        "pod-admin",
        "--verb=*",
        "--resource=pods",
    ]);
    assert_eq!(
        rule("clusterrole/pod-admin"),
        ("*:".into(), "pods:".into(), ":".into())
    );
    let deleted = k.ok(&["delete", "clusterrole", "pod-admin", "-n", "test"]);
    assert!(
        deleted.contains("clusterrole.rbac.authorization.k8s.io \"pod-admin\" deleted"),
        "{deleted}"
    );
    k.ok(&[
        "create",
        "clusterrole",
        "resource-reader",
        "--verb=get,list",
        "--resource=pods,deployments.apps",
    ]);
    assert_eq!(
        rule("clusterrole/resource-reader"),
        (
            "get:list:get:list:".into(),
            "pods:deployments:".into(),
            ":apps:".into()
        )
    );
    k.ok(&[
        "create",
        "clusterrole",
        "name-reader",
        "--verb=get",
        "--resource=pods",
        "--resource-name=foo",
    ]);
    assert_eq!(
        field("clusterrole/name-reader", "{.rules[0].resourceNames[0]}"),
        "foo"
    );
    k.ok(&[
        "create",
        "clusterrole",
        "url-reader",
        "--verb=get",
        "--non-resource-url=/logs/*",
        "--non-resource-url=/healthz/*",
    ]);
    assert_eq!(
        field("clusterrole/url-reader", "{.rules[0].nonResourceURLs}"),
        r#"["/logs/*","/healthz/*"]"#
    );
    k.ok(&[
        "create",
        "clusterrole",
        "aggregation-reader",
        "--aggregation-rule=foo1=foo2",
    ]);
    assert_eq!(
        field(
            "clusterrole/aggregation-reader",
            "{.aggregationRule.clusterRoleSelectors[0].matchLabels.foo1}"
        ),
        "foo2"
    );

    let subjects = |what: &str| field(what, "{range .subjects[*]}{.name}:{end}");
    k.ok(&[
        "create",
        "clusterrolebinding",
        "super-admin",
        "--clusterrole=admin",
        "--user=super-admin",
    ]);
    k.ok(&[
        "set",
        "subject",
        "clusterrolebinding",
        "super-admin",
        "--user=foo",
    ]);
    assert_eq!(
        subjects("clusterrolebinding/super-admin"),
        "super-admin:foo:"
    );
    k.ok(&[
        "create",
        "clusterrolebinding",
        "super-group",
        "--clusterrole=admin",
        "--group=group-1",
        "--group=group-2",
    ]);
    assert_eq!(
        subjects("clusterrolebinding/super-group"),
        "group-1:group-2:"
    );
    k.ok(&[
        "create",
        "clusterrolebinding",
        "super-sa",
        "--clusterrole=admin",
        "--serviceaccount=otherns:sa-name",
    ]);
    assert_eq!(
        field("clusterrolebinding/super-sa", "{.subjects[0].namespace}"),
        "otherns"
    );
    // `--all` reaches the shared bootstrap bindings too, which are read-only here (kube's
    // are stored, and take the subject): ours, selected by label, take it.
    let err = k.fails(&[
        "set",
        "subject",
        "clusterrolebinding",
        "--all",
        "--user=test-all-user",
    ]);
    assert!(
        err.contains("bootstrap policy every workspace shares"),
        "{err}"
    );
    k.ok(&[
        "label",
        "clusterrolebinding",
        "super-admin",
        "super-group",
        "super-sa",
        "test-cmd=rbac",
    ]);
    k.ok(&[
        "set",
        "subject",
        "clusterrolebinding",
        "-l",
        "test-cmd=rbac",
        "--user=test-all-user",
    ]);
    assert_eq!(
        subjects("clusterrolebinding/super-sa"),
        "sa-name:test-all-user:"
    );
    k.ok(&[
        "create",
        "rolebinding",
        "admin",
        "--clusterrole=admin",
        "--user=default-admin",
    ]);
    k.ok(&[
        "create",
        "rolebinding",
        "localrole",
        "--role=localrole",
        "--group=the-group",
    ]);
    assert_eq!(field("rolebinding/admin", "{.roleRef.kind}"), "ClusterRole");
    assert_eq!(field("rolebinding/localrole", "{.roleRef.kind}"), "Role");
    k.ok(&[
        "set",
        "subject",
        "rolebinding",
        "--all",
        "--user=test-all-user",
    ]);
    assert_eq!(
        subjects("rolebinding/localrole"),
        "the-group:test-all-user:"
    );

    k.ok(&[
        "create",
        "role",
        "subresource-reader",
        "--verb=get,list",
        "--resource=pods/status",
    ]);
    assert_eq!(rule("role/subresource-reader").1, "pods/status:");
    k.ok(&[
        "create",
        "role",
        "scale-reader",
        "--verb=get",
        "--resource=replicasets.apps/scale",
    ]);
    assert_eq!(
        rule("role/scale-reader"),
        ("get:".into(), "replicasets/scale:".into(), "apps:".into())
    );
    let err = k.fails(&[
        "create",
        "role",
        "bad",
        "--verb=*",
        "--resource=invalid-resource",
    ]);
    assert!(
        err.contains("the server doesn't have a resource type \"invalid-resource\""),
        "{err}"
    );
    let err = k.fails(&[
        "create",
        "role",
        "bad",
        "--verb=get",
        "--resource=deployments.invalid-group",
    ]);
    assert!(
        err.contains(
            "the server doesn't have a resource type \"deployments\" in group \"invalid-group\""
        ),
        "{err}"
    );
}

//! APIs as a service (kcp's apis.kcp.io), end to end with the real kubectl: a provider
//! exports `widgets.example.dev` from its workspace, consumers bind it, the provider's view
//! spans every consumer; conflicts, permissions, claims and the maximal permission policy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    Backend, Kplex, WIDGETS_SCHEMA, create_workspace, eventually, in_ws, json, wait_bound,
    ws_fails as fails, ws_ok as ok, ws_ok_stdin as ok_stdin,
};

/// A v1alpha1 export (latestResourceSchemas), read back at v1alpha2 too.
fn export(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: apis.kcp.io/v1alpha1\nkind: APIExport\nmetadata: {{name: {name}}}\nspec:\n  latestResourceSchemas: [v1.widgets.example.dev]\n{extra}"
    )
}

fn binding(name: &str, path: &str, export: &str, claims: &str) -> String {
    format!(
        "apiVersion: apis.kcp.io/v1alpha2\nkind: APIBinding\nmetadata: {{name: {name}}}\nspec:\n  reference: {{export: {{path: '{path}', name: {export}}}}}\n{claims}"
    )
}

fn widget(name: &str, size: u32) -> String {
    format!(
        "apiVersion: example.dev/v1\nkind: Widget\nmetadata: {{name: {name}, namespace: default}}\nspec: {{size: {size}}}\n"
    )
}

/// Publishes the widgets export in `path`; returns its identity hash.
fn publish(k: &Kplex, path: &str, name: &str, extra: &str) -> String {
    ok_stdin(k, path, &["apply", "-f", "-"], WIDGETS_SCHEMA);
    ok_stdin(k, path, &["apply", "-f", "-"], &export(name, extra));
    eventually(10, "the export's identity", || {
        let h = ok(
            k,
            path,
            &[
                "get",
                "apiexport",
                name,
                "-o",
                "jsonpath={.status.identityHash}",
            ],
        );
        (h.len() == 64).then_some(h)
    })
}

fn bind(k: &Kplex, path: &str, name: &str, export_path: &str, export: &str) {
    ok_stdin(
        k,
        path,
        &["create", "-f", "-"],
        &binding(name, export_path, export, ""),
    );
    wait_bound(k, path, name);
}

/// The logical cluster name of a workspace.
fn cluster_of(k: &Kplex, path: &str) -> String {
    let (parent, name) = path.rsplit_once(':').unwrap();
    ok(
        k,
        parent,
        &["get", "workspace", name, "-o", "jsonpath={.spec.cluster}"],
    )
}

/// kubectl against the export's virtual workspace, in `cluster` (`*` for all).
fn view(k: &Kplex, vw: &str, cluster: &str, args: &[&str]) -> std::process::Output {
    let server = format!("{vw}/clusters/{cluster}");
    let mut v = vec!["--server", server.as_str()];
    v.extend_from_slice(args);
    k.kubectl(&v)
}

#[track_caller]
fn view_ok(k: &Kplex, vw: &str, cluster: &str, args: &[&str]) -> String {
    let out = view(k, vw, cluster, args);
    assert!(
        out.status.success(),
        "{args:?} in view {cluster}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

on_both_backends!(provider_and_two_consumers);

fn provider_and_two_consumers(k: &Kplex) {
    for ws in ["provider", "team-a", "team-b"] {
        create_workspace(k, "root", ws, None);
    }
    let identity = publish(k, "root:provider", "widgets", "");
    // The export reads at v1alpha2 as kcp stores it.
    let v2 = json(&ok(
        k,
        "root:provider",
        &[
            "get",
            "apiexports.v1alpha2.apis.kcp.io",
            "widgets",
            "-o",
            "json",
        ],
    ));
    assert_eq!(
        v2["spec"]["resources"][0]["schema"],
        "v1.widgets.example.dev"
    );
    assert_eq!(v2["spec"]["resources"][0]["group"], "example.dev");
    // The identity secret is the provider's.
    ok(
        k,
        "root:provider",
        &["get", "secret", "-n", "kcp-system", "widgets"],
    );

    bind(k, "root:team-a", "widgets", "root:provider", "widgets");
    bind(k, "root:team-b", "widgets", "root:provider", "widgets");
    let b = json(&ok(
        k,
        "root:team-a",
        &["get", "apibinding", "widgets", "-o", "json"],
    ));
    assert_eq!(b["status"]["boundResources"][0]["resource"], "widgets");
    assert_eq!(
        b["status"]["boundResources"][0]["schema"]["identityHash"],
        identity.as_str()
    );
    assert_eq!(
        b["status"]["apiExportClusterName"],
        cluster_of(k, "root:provider")
    );

    // Consumers see widgets in discovery, OpenAPI and explain; the provider does not.
    let resources = ok(
        k,
        "root:team-a",
        &["api-resources", "--api-group", "example.dev"],
    );
    assert!(
        resources.contains("widgets") && resources.contains("wd"),
        "{resources}"
    );
    let explain = ok(k, "root:team-a", &["explain", "widgets.spec.size"]);
    assert!(explain.contains("size of the widget"), "{explain}");
    let provider = ok(
        k,
        "root:provider",
        &["api-resources", "--api-group", "example.dev"],
    );
    assert!(!provider.contains("widgets"), "{provider}");

    // Objects are isolated per consumer and validated by the schema.
    ok_stdin(k, "root:team-a", &["apply", "-f", "-"], &widget("a1", 1));
    ok_stdin(k, "root:team-b", &["apply", "-f", "-"], &widget("b1", 2));
    let a = ok(k, "root:team-a", &["get", "widgets", "-A"]);
    assert!(a.contains("a1") && !a.contains("b1"), "{a}");
    assert!(a.contains("SIZE"), "printer columns: {a}");
    let err = fails(
        k,
        "root:team-a",
        &[
            "patch",
            "widget",
            "a1",
            "--type=merge",
            "-p",
            r#"{"spec":{"size":"big"}}"#,
        ],
    );
    assert!(err.contains("Invalid value"), "{err}");

    // Wildcard lists of a bound resource name the identity.
    let raw = k.ok(&[
        "get",
        "--raw",
        &format!("/clusters/*/apis/example.dev/v1/widgets:{identity}"),
    ]);
    let items = json(&raw)["items"].as_array().unwrap().len();
    assert_eq!(items, 2, "{raw}");
    let err = k.fails(&["get", "--raw", "/clusters/*/apis/example.dev/v1/widgets"]);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );

    // The endpoint slice lists the virtual workspace once there are consumers.
    let vw = eventually(10, "the endpoint slice URL", || {
        let url = ok(
            k,
            "root:provider",
            &[
                "get",
                "apiexportendpointslice",
                "widgets",
                "-o",
                "jsonpath={.status.endpoints[0].url}",
            ],
        );
        (!url.is_empty()).then_some(url)
    });
    assert!(vw.contains("/services/apiexport/"), "{vw}");

    // The provider's view: every consumer's widgets, and the bindings.
    let all = view_ok(k, &vw, "*", &["get", "widgets", "-A", "-o", "name"]);
    assert!(all.contains("a1") && all.contains("b1"), "{all}");
    let bindings = view_ok(k, &vw, "*", &["get", "apibindings", "-o", "name"]);
    assert_eq!(bindings.lines().count(), 2, "{bindings}");
    // Writes in one consumer: status, merge patch and server-side apply.
    let team_a = cluster_of(k, "root:team-a");
    view_ok(
        k,
        &vw,
        &team_a,
        &[
            "patch",
            "widget",
            "a1",
            "-n",
            "default",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"ready":true}}"#,
        ],
    );
    assert_eq!(
        ok(
            k,
            "root:team-a",
            &["get", "widget", "a1", "-o", "jsonpath={.status.ready}"]
        ),
        "true"
    );
    let applied = {
        let server = format!("{vw}/clusters/{team_a}");
        k.ok_stdin(
            &[
                "--server",
                &server,
                "apply",
                "--server-side",
                "--field-manager=provider",
                "-f",
                "-",
            ],
            &widget("from-provider", 7),
        )
    };
    assert!(applied.contains("serverside-applied"), "{applied}");
    assert_eq!(
        ok(
            k,
            "root:team-a",
            &[
                "get",
                "widget",
                "from-provider",
                "-o",
                "jsonpath={.spec.size}"
            ]
        ),
        "7"
    );
    // Not across all consumers at once, and not in a workspace that does not bind the export.
    let out = view(k, &vw, "*", &["delete", "widget", "a1", "-n", "default"]);
    assert!(!out.status.success());
    let provider_cluster = cluster_of(k, "root:provider");
    let out = view(k, &vw, &provider_cluster, &["get", "widgets", "-A"]);
    assert!(
        !out.status.success(),
        "the provider's own workspace does not bind the export"
    );

    // A schema an export uses cannot be deleted.
    let err = fails(
        k,
        "root:provider",
        &["delete", "apiresourceschema", "v1.widgets.example.dev"],
    );
    assert!(err.contains("in use by APIExport widgets"), "{err}");
    // The reference of a binding is immutable.
    let err = fails(
        k,
        "root:team-a",
        &[
            "patch",
            "apibinding",
            "widgets",
            "--type=merge",
            "-p",
            r#"{"spec":{"reference":{"export":{"name":"other"}}}}"#,
        ],
    );
    assert!(err.contains("must not be changed"), "{err}");

    // Unbinding removes the resource and its objects.
    ok(k, "root:team-b", &["delete", "apibinding", "widgets"]);
    let gone = ok(
        k,
        "root:team-b",
        &["api-resources", "--api-group", "example.dev"],
    );
    assert!(!gone.contains("widgets"), "{gone}");
    let all = view_ok(k, &vw, "*", &["get", "widgets", "-A", "-o", "name"]);
    assert!(all.contains("a1") && !all.contains("b1"), "{all}");
}

#[test]
fn naming_conflicts_and_crds() {
    let k = Kplex::start(Backend::Embedded);
    for ws in ["p1", "p2", "consumer"] {
        create_workspace(&k, "root", ws, None);
    }
    publish(&k, "root:p1", "widgets", "");
    publish(&k, "root:p2", "widgets", "");
    bind(&k, "root:consumer", "first", "root:p1", "widgets");
    ok_stdin(
        &k,
        "root:consumer",
        &["create", "-f", "-"],
        &binding("second", "root:p2", "widgets", ""),
    );
    let reason = eventually(10, "the naming conflict", || {
        let b = json(&ok(
            &k,
            "root:consumer",
            &["get", "apibinding", "second", "-o", "json"],
        ));
        let c = b["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "BindingUpToDate")?
            .clone();
        (c["status"] == "False").then_some(c)
    });
    assert_eq!(reason["reason"], "NamingConflicts");
    let message = reason["message"].as_str().unwrap();
    assert!(
        message
            .contains("naming conflict with APIBinding first bound to APIExport root:p1:widgets"),
        "{message}"
    );
    assert_eq!(
        ok(
            &k,
            "root:consumer",
            &[
                "get",
                "apibinding",
                "second",
                "-o",
                "jsonpath={.status.phase}"
            ]
        ),
        "Binding"
    );
    // A CRD cannot take a bound resource.
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.dev}\nspec:\n  group: example.dev\n  scope: Namespaced\n  names: {plural: widgets, kind: Widget}\n  versions:\n  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}\n";
    let out = k.kubectl(&[
        "--server",
        &k.url("/clusters/root:consumer"),
        "create",
        "-f",
        common::path_str(&k.write_file("crd.yaml", crd)),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot create because resource is bound by APIBinding \"first\""),
        "{err}"
    );
    // A binding over an existing CRD conflicts with it; once the first binding goes, the
    // second one binds.
    create_workspace(&k, "root", "has-crd", None);
    ok_stdin(&k, "root:has-crd", &["create", "-f", "-"], crd);
    ok_stdin(
        &k,
        "root:has-crd",
        &["create", "-f", "-"],
        &binding("widgets", "root:p1", "widgets", ""),
    );
    eventually(10, "the CRD conflict", || {
        let b = ok(
            &k,
            "root:has-crd",
            &["get", "apibinding", "widgets", "-o", "json"],
        );
        b.contains("naming conflict with CustomResourceDefinition widgets.example.dev")
            .then_some(())
    });
    ok(&k, "root:consumer", &["delete", "apibinding", "first"]);
    wait_bound(&k, "root:consumer", "second");
}

const BINDER: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: widgets-binder}
rules:
- {verbs: [bind], apiGroups: [apis.kcp.io], resources: [apiexports], resourceNames: [widgets]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bob-binds}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: widgets-binder}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
"#;

const BOB_ADMIN: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bob-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}]
"#;

/// kubectl as `user` in `path`.
fn as_user(k: &Kplex, user: &str, path: &str, args: &[&str]) -> std::process::Output {
    let v = in_ws(k, path, args);
    let mut all = vec!["--as", user];
    all.extend(v.iter().map(String::as_str));
    k.kubectl(&all)
}

#[test]
fn bind_permission_and_maximal_permission_policy() {
    let k = Kplex::start(Backend::Embedded);
    create_workspace(&k, "root", "provider", None);
    create_workspace(&k, "root", "bobs", None);
    ok_stdin(&k, "root:bobs", &["apply", "-f", "-"], BOB_ADMIN);
    // The policy lets consumers read and create widgets, not update them.
    let policy = "  maximalPermissionPolicy: {local: {}}\n";
    publish(&k, "root:provider", "widgets", policy);
    ok_stdin(
        &k,
        "root:provider",
        &["apply", "-f", "-"],
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: widgets-policy}
rules:
- {verbs: [get, list, watch, create], apiGroups: [example.dev], resources: [widgets]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: widgets-policy}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: widgets-policy}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "apis.kcp.io:binding:system:authenticated"}]
"#,
    );
    let b = k.write_file(
        "b.yaml",
        &binding("widgets", "root:provider", "widgets", ""),
    );
    // Without `bind` on the export, bob (admin of his workspace) cannot bind it.
    let out = as_user(
        &k,
        "bob",
        "root:bobs",
        &["create", "-f", common::path_str(&b)],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no permission to bind to export root:provider:widgets"),
        "{err}"
    );
    ok_stdin(&k, "root:provider", &["apply", "-f", "-"], BINDER);
    let out = as_user(
        &k,
        "bob",
        "root:bobs",
        &["create", "-f", common::path_str(&b)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_bound(&k, "root:bobs", "widgets");
    let w = k.write_file("w.yaml", &widget("w1", 1));
    let out = as_user(
        &k,
        "bob",
        "root:bobs",
        &["create", "-f", common::path_str(&w)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_user(&k, "bob", "root:bobs", &["get", "widgets", "-A"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The policy denies bob the update his own RBAC would allow.
    let out = as_user(
        &k,
        "bob",
        "root:bobs",
        &[
            "patch",
            "widget",
            "w1",
            "-n",
            "default",
            "--type=merge",
            "-p",
            r#"{"spec":{"size":2}}"#,
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("forbidden"), "{err}");
    // Once the export is gone, its policy no longer applies.
    ok(&k, "root:provider", &["delete", "apiexport", "widgets"]);
    eventually(10, "the update to be allowed", || {
        let out = as_user(
            &k,
            "bob",
            "root:bobs",
            &[
                "patch",
                "widget",
                "w1",
                "-n",
                "default",
                "--type=merge",
                "-p",
                r#"{"spec":{"size":3}}"#,
            ],
        );
        out.status.success().then_some(())
    });
}

#[test]
fn permission_claims_are_invisible_until_accepted() {
    let k = Kplex::start(Backend::Embedded);
    create_workspace(&k, "root", "provider", None);
    create_workspace(&k, "root", "consumer", None);
    let claims = "  permissionClaims:\n  - {group: '', resource: configmaps, all: true}\n";
    publish(&k, "root:provider", "widgets", claims);
    ok_stdin(
        &k,
        "root:consumer",
        &["create", "-f", "-"],
        &binding("widgets", "root:provider", "widgets", ""),
    );
    wait_bound(&k, "root:consumer", "widgets");
    ok(
        &k,
        "root:consumer",
        &["create", "configmap", "mine", "--from-literal=a=b"],
    );
    let provider = cluster_of(&k, "root:provider");
    let consumer = cluster_of(&k, "root:consumer");
    let vw = k.url(&format!("/services/apiexport/{provider}/widgets"));
    let none = view_ok(&k, &vw, "*", &["get", "configmaps", "-A", "-o", "name"]);
    assert!(!none.contains("mine"), "not accepted yet: {none}");
    let out = view(&k, &vw, &consumer, &["get", "configmap", "mine"]);
    assert!(!out.status.success());
    // Accepting the claim (list and get only) makes the consumer's config maps visible.
    ok(
        &k,
        "root:consumer",
        &[
            "patch",
            "apibinding",
            "widgets",
            "--type=merge",
            "-p",
            r#"{"spec":{"permissionClaims":[{"group":"","resource":"configmaps","verbs":["get","list"],"selector":{"matchAll":true},"state":"Accepted"}]}}"#,
        ],
    );
    let seen = eventually(10, "the claimed config map in the view", || {
        let out = view_ok(&k, &vw, "*", &["get", "configmaps", "-A", "-o", "name"]);
        out.contains("mine").then_some(out)
    });
    assert!(seen.contains("configmap/mine"), "{seen}");
    view_ok(
        &k,
        &vw,
        &consumer,
        &["get", "configmap", "mine", "-n", "default"],
    );
    // Verbs the binding did not grant stay denied.
    let out = view(
        &k,
        &vw,
        &consumer,
        &["delete", "configmap", "mine", "-n", "default"],
    );
    assert!(!out.status.success());
    ok(&k, "root:consumer", &["get", "configmap", "mine"]);

    // A selector limits the claim to the objects it matches.
    create_workspace(&k, "root", "picky", None);
    ok_stdin(
        &k,
        "root:picky",
        &["create", "-f", "-"],
        &binding(
            "widgets",
            "root:provider",
            "widgets",
            "  permissionClaims: [{group: '', resource: configmaps, verbs: ['*'], selector: {matchLabels: {share: 'yes'}}, state: Accepted}]\n",
        ),
    );
    wait_bound(&k, "root:picky", "widgets");
    ok(&k, "root:picky", &["create", "configmap", "private"]);
    ok(&k, "root:picky", &["create", "configmap", "shared"]);
    ok(
        &k,
        "root:picky",
        &["label", "configmap", "shared", "share=yes"],
    );
    let picky = cluster_of(&k, "root:picky");
    let seen = eventually(10, "the shared config map in the view", || {
        let out = view_ok(
            &k,
            &vw,
            &picky,
            &["get", "configmaps", "-n", "default", "-o", "name"],
        );
        out.contains("shared").then_some(out)
    });
    assert!(!seen.contains("private"), "{seen}");
    let out = view(
        &k,
        &vw,
        &picky,
        &["get", "configmap", "private", "-n", "default"],
    );
    assert!(!out.status.success(), "GET is filtered too");
    // Objects the provider creates get the selector's labels.
    view_ok(
        &k,
        &vw,
        &picky,
        &["create", "configmap", "from-provider", "-n", "default"],
    );
    let labels = ok(
        &k,
        "root:picky",
        &[
            "get",
            "configmap",
            "from-provider",
            "-o",
            "jsonpath={.metadata.labels.share}",
        ],
    );
    assert_eq!(labels, "yes");
}

#[test]
fn default_api_bindings_of_a_workspace_type() {
    let mut k = Kplex::start(Backend::Embedded);
    create_workspace(&k, "root", "provider", None);
    publish(&k, "root:provider", "widgets", "");
    k.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: tenancy.kcp.io/v1alpha1\nkind: WorkspaceType\nmetadata: {name: widgety}\nspec:\n  defaultAPIBindings: [{path: 'root:provider', export: widgets}]\n",
    );
    create_workspace(&k, "root", "gets-widgets", Some("widgety"));
    wait_bound(&k, "root:gets-widgets", "widgets");
    ok_stdin(
        &k,
        "root:gets-widgets",
        &["apply", "-f", "-"],
        &widget("w", 3),
    );

    // After a restart the bound resource is served from the first request on.
    k.restart();
    let size = ok(
        &k,
        "root:gets-widgets",
        &["get", "widget", "w", "-o", "jsonpath={.spec.size}"],
    );
    assert_eq!(size, "3");
}

const CONTENT_READER: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: widgets-content}
rules:
- {verbs: [access], nonResourceURLs: ["/"]}
- {verbs: [get, list, watch], apiGroups: [apis.kcp.io], resources: [apiexports/content], resourceNames: [widgets]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bot-reads-widgets}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: widgets-content}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: bot}]
"#;

const GADGETS: &str = r#"
apiVersion: apis.kcp.io/v1alpha1
kind: APIResourceSchema
metadata: {name: v2.gadgets.example.dev}
spec:
  group: example.dev
  scope: Cluster
  names: {plural: gadgets, singular: gadget, kind: Gadget, listKind: GadgetList}
  versions:
  - {name: v1, served: true, storage: true, schema: {type: object, properties: {spec: {type: object, x-kubernetes-preserve-unknown-fields: true}}}}
"#;

#[test]
fn view_access_by_content_verbs_watch_and_export_updates() {
    let k = Kplex::start(Backend::Embedded);
    create_workspace(&k, "root", "provider", None);
    create_workspace(&k, "root", "consumer", None);
    publish(&k, "root:provider", "widgets", "");
    bind(&k, "root:consumer", "widgets", "root:provider", "widgets");
    let provider = cluster_of(&k, "root:provider");
    let consumer = cluster_of(&k, "root:consumer");
    let vw = k.url(&format!("/services/apiexport/{provider}/widgets"));
    let as_bot = |cluster: &str, args: &[&str]| {
        let mut v = vec!["--as", "bot"];
        v.extend_from_slice(args);
        view(&k, &vw, cluster, &v)
    };
    // Nothing without `apiexports/content` in the provider's workspace.
    let raw =
        format!("/services/apiexport/{provider}/widgets/clusters/*/apis/example.dev/v1/widgets");
    let out = k.kubectl(&["--as", "bot", "get", "--raw", &raw]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Forbidden"), "{err}");
    ok_stdin(&k, "root:provider", &["apply", "-f", "-"], CONTENT_READER);
    let out = as_bot("*", &["get", "widgets", "-A"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Reading is not writing.
    let w = k.write_file("w.yaml", &widget("w1", 1));
    let out = as_bot(&consumer, &["create", "-f", common::path_str(&w)]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("forbidden"));
    ok(
        &k,
        "root:provider",
        &[
            "patch",
            "clusterrole",
            "widgets-content",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/rules/1/verbs/-","value":"create"}]"#,
        ],
    );
    let out = as_bot(&consumer, &["create", "-f", common::path_str(&w)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A wildcard watch in the view sees a consumer's new object.
    let server = format!("{vw}/clusters/*");
    let mut watch = k.spawn_kubectl(&[
        "--server", &server, "get", "widgets", "-A", "--watch", "-o", "name",
    ]);
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    ok_stdin(
        &k,
        "root:consumer",
        &["apply", "-f", "-"],
        &widget("late", 2),
    );
    let seen = eventually(10, "the watch event", || {
        rx.try_iter().find(|l| l.contains("late"))
    });
    assert!(seen.contains("widget.example.dev/late"), "{seen}");
    let _ = watch.kill();
    let _ = watch.wait();

    // A resource added to the export reaches the existing binding.
    ok_stdin(&k, "root:provider", &["apply", "-f", "-"], GADGETS);
    ok(
        &k,
        "root:provider",
        &[
            "patch",
            "apiexport.v1alpha2.apis.kcp.io",
            "widgets",
            "--type=json",
            "-p",
            r#"[{"op":"add","path":"/spec/resources/-","value":{"name":"gadgets","group":"example.dev","schema":"v2.gadgets.example.dev","storage":{"crd":{}}}}]"#,
        ],
    );
    eventually(10, "gadgets in the consumer", || {
        let r = ok(
            &k,
            "root:consumer",
            &["api-resources", "--api-group", "example.dev"],
        );
        r.contains("gadgets").then_some(())
    });
    ok_stdin(
        &k,
        "root:consumer",
        &["create", "-f", "-"],
        "apiVersion: example.dev/v1\nkind: Gadget\nmetadata: {name: g}\nspec: {x: 1}\n",
    );

    // The export's extra.apis.kcp.io/ annotations reach its bindings.
    ok(
        &k,
        "root:provider",
        &[
            "annotate",
            "apiexport",
            "widgets",
            "extra.apis.kcp.io/owner=widget-team",
        ],
    );
    eventually(10, "the annotation on the binding", || {
        let a = ok(
            &k,
            "root:consumer",
            &[
                "get",
                "apibinding",
                "widgets",
                "-o",
                "jsonpath={.metadata.annotations.extra\\.apis\\.kcp\\.io/owner}",
            ],
        );
        (a == "widget-team").then_some(())
    });
    // An endpoint slice made elsewhere lists the view too.
    ok_stdin(
        &k,
        "root:consumer",
        &["create", "-f", "-"],
        "apiVersion: apis.kcp.io/v1alpha1\nkind: APIExportEndpointSlice\nmetadata: {name: mine}\nspec: {export: {path: 'root:provider', name: widgets}}\n",
    );
    eventually(10, "the slice's endpoint", || {
        let url = ok(
            &k,
            "root:consumer",
            &[
                "get",
                "apiexportendpointslice",
                "mine",
                "-o",
                "jsonpath={.status.endpoints[0].url}",
            ],
        );
        url.ends_with(&format!("/services/apiexport/{provider}/widgets"))
            .then_some(())
    });
}

/// Export `name` of gadgets that claims `claim` (one permissionClaims entry, YAML flow).
fn gadget_export(name: &str, claim: &str) -> String {
    format!(
        "apiVersion: apis.kcp.io/v1alpha2\nkind: APIExport\nmetadata: {{name: {name}}}\nspec:\n  resources: [{{name: gadgets, group: example.dev, schema: v2.gadgets.example.dev, storage: {{crd: {{}}}}}}]\n  permissionClaims: [{claim}]\n"
    )
}

#[test]
fn a_claim_on_another_exports_resource_names_its_identity() {
    let k = Kplex::start(Backend::Embedded);
    for ws in ["widgets", "gadgets", "consumer"] {
        create_workspace(&k, "root", ws, None);
    }
    let identity = publish(&k, "root:widgets", "widgets", "");
    ok_stdin(&k, "root:gadgets", &["apply", "-f", "-"], GADGETS);
    let with_identity = format!(
        "{{group: example.dev, resource: widgets, identityHash: {identity}, verbs: [get, list, watch]}}"
    );
    ok_stdin(
        &k,
        "root:gadgets",
        &["apply", "-f", "-"],
        &gadget_export("gadgets", &with_identity),
    );
    // Without the identity, the claim cannot be honoured.
    ok_stdin(
        &k,
        "root:gadgets",
        &["apply", "-f", "-"],
        &gadget_export(
            "careless",
            "{group: example.dev, resource: widgets, verbs: [get, list, watch]}",
        ),
    );
    bind(&k, "root:consumer", "widgets", "root:widgets", "widgets");
    ok_stdin(
        &k,
        "root:consumer",
        &["apply", "-f", "-"],
        &widget("mine", 1),
    );
    let accepted = format!(
        "  permissionClaims: [{{group: example.dev, resource: widgets, identityHash: {identity}, verbs: ['*'], selector: {{matchAll: true}}, state: Accepted}}]\n"
    );
    ok_stdin(
        &k,
        "root:consumer",
        &["create", "-f", "-"],
        &binding("gadgets", "root:gadgets", "gadgets", &accepted),
    );
    wait_bound(&k, "root:consumer", "gadgets");
    let gadgets = cluster_of(&k, "root:gadgets");
    let vw = k.url(&format!("/services/apiexport/{gadgets}/gadgets"));
    let seen = eventually(10, "the claimed widget in the gadgets view", || {
        let out = view_ok(&k, &vw, "*", &["get", "widgets", "-A", "-o", "name"]);
        out.contains("mine").then_some(out)
    });
    assert!(seen.contains("widget.example.dev/mine"), "{seen}");

    // The careless export's claim is reported invalid on a binding to it (in a workspace
    // without a gadgets binding yet).
    create_workspace(&k, "root", "other", None);
    ok_stdin(
        &k,
        "root:other",
        &["create", "-f", "-"],
        &binding("careless", "root:gadgets", "careless", ""),
    );
    wait_bound(&k, "root:other", "careless");
    let b = json(&ok(
        &k,
        "root:other",
        &["get", "apibinding", "careless", "-o", "json"],
    ));
    let valid = b["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "PermissionClaimsValid")
        .unwrap()
        .clone();
    assert_eq!(valid["status"], "False", "{valid}");
    assert_eq!(valid["reason"], "InvalidPermissionClaims");
}

/// `kcp.io/cluster` names the workspace an object is stored in, whatever a client sends: no
/// verb, encoding or subresource lets a tenant in one workspace make its object pass for
/// another's in wildcard lists or a provider's APIExport view (which trust the annotation).
#[test]
fn the_cluster_annotation_cannot_be_forged() {
    let k = Kplex::start(Backend::Embedded);
    for ws in ["provider", "victim", "tenant"] {
        create_workspace(&k, "root", ws, None);
    }
    publish(&k, "root:provider", "widgets", "");
    bind(&k, "root:victim", "widgets", "root:provider", "widgets");
    bind(&k, "root:tenant", "widgets", "root:provider", "widgets");
    ok_stdin(&k, "root:tenant", &["apply", "-f", "-"], CRD_GADGETS);
    ok(
        &k,
        "root:tenant",
        &[
            "wait",
            "--for=condition=Established",
            "crd/gadgets.example.com",
        ],
    );
    let victim = cluster_of(&k, "root:victim");
    let tenant = cluster_of(&k, "root:tenant");
    let forged_meta = format!(
        "{{name: forged, namespace: default, annotations: {{kcp.io/cluster: '{victim}'}}}}"
    );
    // (resource, manifest with the forged annotation)
    let objects = [
        (
            "configmaps",
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {forged_meta}\ndata: {{a: b}}\n"),
        ),
        (
            "gadgets.example.com",
            format!("apiVersion: example.com/v1\nkind: Gadget\nmetadata: {forged_meta}\n"),
        ),
        (
            "widgets.example.dev",
            format!(
                "apiVersion: example.dev/v1\nkind: Widget\nmetadata: {forged_meta}\nspec: {{size: 1}}\n"
            ),
        ),
    ];
    let check = |resource: &str, how: &str| {
        let got = json(&ok(
            &k,
            "root:tenant",
            &["get", resource, "forged", "-n", "default", "-o", "json"],
        ));
        assert_eq!(
            got["metadata"]["annotations"]["kcp.io/cluster"], tenant,
            "{resource} after {how}: {got}"
        );
    };
    let forged_patch =
        format!(r#"{{"metadata":{{"annotations":{{"kcp.io/cluster":"{victim}"}}}}}}"#);
    let json_patch = format!(
        r#"[{{"op":"add","path":"/metadata/annotations/kcp.io~1cluster","value":"{victim}"}}]"#
    );
    for (resource, manifest) in &objects {
        let file = k.write_file(&format!("{resource}.yaml"), manifest);
        let file = common::path_str(&file);
        ok(&k, "root:tenant", &["create", "-f", file]);
        check(resource, "create");
        let mut verbs: Vec<(&str, Vec<&str>)> = vec![
            (
                "annotate",
                vec![
                    "annotate",
                    "--overwrite",
                    resource,
                    "forged",
                    "-n",
                    "default",
                ],
            ),
            (
                "merge patch",
                vec![
                    "patch",
                    resource,
                    "forged",
                    "-n",
                    "default",
                    "--type=merge",
                    "-p",
                    &forged_patch,
                ],
            ),
            (
                "json patch",
                vec![
                    "patch",
                    resource,
                    "forged",
                    "-n",
                    "default",
                    "--type=json",
                    "-p",
                    &json_patch,
                ],
            ),
            (
                "server-side apply",
                vec!["apply", "--server-side", "--force-conflicts", "-f", file],
            ),
            ("client-side apply", vec!["apply", "-f", file]),
        ];
        let annotation = format!("kcp.io/cluster={victim}");
        verbs[0].1.push(&annotation);
        if *resource == "configmaps" {
            verbs.push((
                "strategic merge patch",
                vec![
                    "patch",
                    resource,
                    "forged",
                    "-n",
                    "default",
                    "--type=strategic",
                    "-p",
                    &forged_patch,
                ],
            ));
        }
        if resource.starts_with("widgets") {
            verbs.push((
                "status patch",
                vec![
                    "patch",
                    resource,
                    "forged",
                    "-n",
                    "default",
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    &forged_patch,
                ],
            ));
        }
        for (how, args) in verbs {
            ok(&k, "root:tenant", &args);
            check(resource, how);
        }
        // A PUT of the whole object as read (custom resources need its resourceVersion).
        let mut current = json(&ok(
            &k,
            "root:tenant",
            &["get", resource, "forged", "-n", "default", "-o", "json"],
        ));
        current["metadata"]["annotations"]["kcp.io/cluster"] = victim.clone().into();
        ok_stdin(
            &k,
            "root:tenant",
            &["replace", "-f", "-"],
            &current.to_string(),
        );
        check(resource, "replace");
    }

    // Other encodings of a PUT: YAML and protobuf.
    let path = "/clusters/root:tenant/api/v1/namespaces/default/configmaps/forged";
    let current = json(&ok(
        &k,
        "root:tenant",
        &["get", "configmap", "forged", "-n", "default", "-o", "json"],
    ));
    let mut body = current.clone();
    body["metadata"]["annotations"]["kcp.io/cluster"] = victim.clone().into();
    body["metadata"]["resourceVersion"] = serde_json::Value::Null;
    let (code, answer) = k.http(
        "PUT",
        path,
        "application/yaml",
        serde_json::to_string(&body).unwrap().as_bytes(),
    );
    assert_eq!(code, 200, "{answer}");
    check("configmaps", "a YAML PUT");
    body["data"] = serde_json::json!({"a": "protobuf"});
    let (code, answer) = k.http(
        "PUT",
        path,
        "application/vnd.kubernetes.protobuf",
        &kplex_protobuf::encode(&body).unwrap(),
    );
    assert_eq!(code, 200, "{answer}");
    check("configmaps", "a protobuf PUT");

    // Wildcard lists and the provider's view show the tenant's objects as the tenant's.
    let provider = cluster_of(&k, "root:provider");
    let vw = k.url(&format!("/services/apiexport/{provider}/widgets"));
    let seen = view_ok(&k, &vw, "*", &["get", "widgets", "-A", "-o", "json"]);
    let wildcard = k.ok(&["get", "--raw", "/clusters/*/api/v1/configmaps"]);
    for list in [seen, wildcard] {
        for item in json(&list)["items"].as_array().unwrap() {
            if item["metadata"]["name"] == "forged" {
                assert_eq!(item["metadata"]["annotations"]["kcp.io/cluster"], tenant);
            }
        }
    }
    let victims = view_ok(&k, &vw, &victim, &["get", "widgets", "-A", "-o", "name"]);
    assert!(!victims.contains("forged"), "{victims}");
}

const CRD_GADGETS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, kind: Gadget}
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
"#;

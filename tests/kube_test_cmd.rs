//! The behaviours kube's own kubectl suite (`test/cmd/*.sh`) checks that need no kubelet,
//! each with the real kubectl against a workspace — written here, not copied.
//! `docs/kubectl-test-cmd.md` maps kube's functions to these tests and to the others.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;

use common::{Backend, Kplex, json};

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: valid-pod, labels: {name: valid-pod}}\nspec: {containers: [{name: kubernetes-serve-hostname, image: registry.k8s.io/serve_hostname}]}\n";

const RC: &str = r#"apiVersion: v1
kind: ReplicationController
metadata: {name: frontend, labels: {app: guestbook, tier: frontend}}
spec:
  replicas: 3
  selector: {app: guestbook, tier: frontend}
  template:
    metadata: {labels: {app: guestbook, tier: frontend}}
    spec: {containers: [{name: php-redis, image: gb-frontend:v4, ports: [{containerPort: 80}]}]}
"#;

fn jsonpath(k: &Kplex, what: &[&str], path: &str) -> String {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    let path = format!("jsonpath={path}");
    args.extend_from_slice(&["-o", &path]);
    k.ok(&args)
}

fn managers(k: &Kplex, what: &[&str]) -> String {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&[
        "--show-managed-fields",
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    k.ok(&args)
}

/// Each kubectl command records its own field manager, server dry runs change nothing,
/// a mistyped strategic merge patch gets kube's words, binary data and raw writes work.
#[test]
fn field_managers_dry_runs_and_raw_writes_as_kube_test_cmd_expects() {
    let k = Kplex::start(Backend::Embedded);
    // Field managers per command (kube's `kubectl-<command>` names).
    k.ok(&["create", "cm", "m", "--from-literal=x=hello"]);
    k.ok(&["label", "cm", "m", "a=b"]);
    k.ok(&["annotate", "cm", "m", "n=v"]);
    k.ok(&["patch", "cm", "m", "-p", r#"{"data":{"p":"q"}}"#]);
    let editor = k.write_file(
        "editor.sh",
        "#!/bin/sh\nsed -i 's/x: hello/x: edited/' \"$1\"\n",
    );
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = k
        .kubectl_command(&["edit", "cm", "m"])
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Sorted as kube sorts them (time, then name), so compare as a set.
    let mut seen: Vec<String> = managers(&k, &["cm", "m"])
        .split_whitespace()
        .map(String::from)
        .collect();
    seen.sort();
    assert_eq!(
        seen.join(" "),
        "kubectl-annotate kubectl-create kubectl-edit kubectl-label kubectl-patch"
    );
    let live = k.ok(&["get", "cm", "m", "-o", "yaml"]);
    k.ok_stdin(
        &["replace", "-f", "-"],
        &live.replace("x: edited", "x: replaced"),
    );
    assert!(managers(&k, &["cm", "m"]).contains("kubectl-replace"));

    // A strategic merge patch that leaves metadata of the wrong type: 422 with kube's text.
    k.ok_stdin(&["create", "-f", "-"], POD);
    let err = k.fails(&[
        "patch",
        "pod",
        "valid-pod",
        "-p",
        r#"{"metadata":{"labels":"invalid"}}"#,
    ]);
    assert!(err.contains("cannot restore map from string"), "{err}");
    assert!(err.contains("map[metadata:map[labels:invalid]]"), "{err}");

    // Server dry run of every write kubectl offers: nothing changes, nothing is created.
    let rv = jsonpath(&k, &["cm", "m"], "{.metadata.resourceVersion}");
    k.ok(&["label", "cm", "m", "dry=run", "--dry-run=server"]);
    k.ok(&["annotate", "cm", "m", "dry=run", "--dry-run=server"]);
    k.ok(&[
        "patch",
        "cm",
        "m",
        "-p",
        r#"{"data":{"dry":"run"}}"#,
        "--dry-run=server",
    ]);
    assert_eq!(
        jsonpath(&k, &["cm", "m"], "{.metadata.resourceVersion}"),
        rv
    );
    k.ok(&["create", "service", "clusterip", "s", "--tcp=80"]);
    k.ok(&["set", "selector", "svc", "s", "role=x", "--dry-run=server"]);
    assert_eq!(
        jsonpath(&k, &["svc", "s"], "{.spec.selector}"),
        r#"{"app":"s"}"#
    );
    k.ok(&["create", "deployment", "d", "--image=nginx"]);
    k.ok(&[
        "set",
        "resources",
        "deploy",
        "d",
        "-c",
        "nginx",
        "--limits=cpu=400m",
        "--dry-run=server",
    ]);
    assert_eq!(
        jsonpath(
            &k,
            &["deploy", "d"],
            "{.spec.template.spec.containers[0].resources}"
        ),
        "{}"
    );
    for create in [
        &["namespace", "dry-ns"][..],
        &["serviceaccount", "dry-sa"],
        &["priorityclass", "dry-pc"],
        &["quota", "dry-quota"],
        &["pdb", "dry-pdb", "--selector=a=b", "--min-available=1"],
        &["secret", "generic", "dry-secret", "--from-literal=a=b"],
    ] {
        let mut args = vec!["create"];
        args.extend_from_slice(create);
        args.push("--dry-run=server");
        assert!(k.ok(&args).contains("(server dry run)"));
    }
    let left = k.kubectl(&[
        "get",
        "ns/dry-ns",
        "sa/dry-sa",
        "pc/dry-pc",
        "quota/dry-quota",
        "pdb/dry-pdb",
        "secret/dry-secret",
        "-o",
        "name",
    ]);
    assert!(String::from_utf8_lossy(&left.stdout).trim().is_empty());
    let pod_file = k.write_file("pod.yaml", POD);
    let pod_file = pod_file.to_str().unwrap();
    k.ok(&[
        "apply",
        "set-last-applied",
        "--create-annotation",
        "-f",
        pod_file,
        "--dry-run=server",
    ]);
    let annotations = jsonpath(&k, &["pod", "valid-pod"], "{.metadata.annotations}");
    assert!(!annotations.contains("last-applied"), "{annotations}");
    k.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Node\nmetadata: {name: node-1, labels: {a: b}}\n",
    );
    let node_rv = jsonpath(&k, &["node", "node-1"], "{.metadata.resourceVersion}");
    let node = k
        .ok(&["get", "node", "node-1", "-o", "json"])
        .replace(r#""a": "b""#, r#""a": "c""#);
    k.ok_stdin(&["replace", "--dry-run=server", "-f", "-"], &node);
    assert_eq!(
        jsonpath(
            &k,
            &["node", "node-1"],
            "{.metadata.resourceVersion} {.metadata.labels.a}"
        ),
        format!("{node_rv} b")
    );

    // Last-applied: create and replace leave none; set-last-applied adds it; view shows it.
    k.ok(&["replace", "-f", pod_file]);
    assert!(
        !jsonpath(&k, &["pod", "valid-pod"], "{.metadata.annotations}").contains("last-applied")
    );
    k.ok(&[
        "apply",
        "set-last-applied",
        "--create-annotation=true",
        "-f",
        pod_file,
    ]);
    let view = json(&k.ok(&["apply", "view-last-applied", "pod/valid-pod", "-o", "json"]));
    assert_eq!(view["metadata"]["name"], "valid-pod");

    // Binary ConfigMaps keep every byte.
    let blob: Vec<u8> = (0..=255u8).rev().collect();
    let blob_file = k.write_file("blob", "");
    std::fs::write(&blob_file, &blob).unwrap();
    k.ok(&[
        "create",
        "configmap",
        "b",
        &format!("--from-file={}", blob_file.display()),
    ]);
    let stored = jsonpath(&k, &["cm", "b"], "{.binaryData.blob}");
    assert_eq!(stored.trim(), common::base64(&blob));

    // Raw writes: create, replace (answered with the object), get, delete.
    let path = "/clusters/root/api/v1/namespaces/default/configmaps";
    let cm = k.ok(&["create", "configmap", "t", "-o", "json", "--dry-run=client"]);
    k.ok_stdin(&["create", "--raw", path, "-f", "-"], &cm);
    let new = k.ok(&[
        "create",
        "configmap",
        "t",
        "-o",
        "json",
        "--dry-run=client",
        "--from-literal=k=v",
    ]);
    let new_file = k.write_file("new.json", &new);
    let replaced = json(&k.ok(&[
        "replace",
        "--raw",
        &format!("{path}/t"),
        "-f",
        new_file.to_str().unwrap(),
    ]));
    assert!(replaced["metadata"]["uid"].is_string(), "{replaced}");
    assert_eq!(
        json(&k.ok(&["get", "--raw", &format!("{path}/t")]))["data"]["k"],
        "v"
    );
    k.ok(&["delete", "--raw", &format!("{path}/t")]);
    assert!(k.fails(&["get", "cm", "t"]).contains("NotFound"));
}

/// ReplicationControllers scale with preconditions, `expose` derives Services from what is
/// stored, Services keep their cluster IP, HPAs get kube's defaults, `set resources` works.
#[test]
fn controllers_services_and_autoscalers_as_kube_test_cmd_expects() {
    let k = Kplex::start(Backend::Embedded);
    let rc_file = k.write_file("rc.yaml", RC);
    let rc_file = rc_file.to_str().unwrap();
    k.ok(&["create", "-f", rc_file]);
    let replicas = |name: &str| jsonpath(&k, &["rc", name], "{.spec.replicas}");
    k.ok(&[
        "scale",
        "--current-replicas=3",
        "--replicas=2",
        "rc/frontend",
    ]);
    assert_eq!(replicas("frontend"), "2");
    let err = k.fails(&[
        "scale",
        "--current-replicas=3",
        "--replicas=1",
        "rc/frontend",
    ]);
    assert!(err.contains("Expected replicas to be 3, was 2"), "{err}");
    assert_eq!(replicas("frontend"), "2");
    k.ok_stdin(
        &["create", "-f", "-"],
        &RC.replace("name: frontend,", "name: frontend-b,"),
    );
    k.ok(&["scale", "rc/frontend", "rc/frontend-b", "--replicas=4"]);
    assert_eq!(replicas("frontend") + " " + &replicas("frontend-b"), "4 4");
    k.ok(&["scale", "--replicas=2", "-f", rc_file]);
    assert_eq!(replicas("frontend"), "2");

    // `expose` from stored objects.
    let ports = |svc: &str| {
        jsonpath(
            &k,
            &["svc", svc],
            "{.spec.ports[*].name}|{.spec.ports[*].port}|{.spec.selector}",
        )
    };
    k.ok(&["expose", "rc", "frontend", "--port=80"]);
    assert_eq!(
        ports("frontend"),
        r#"|80|{"app":"guestbook","tier":"frontend"}"#
    );
    k.ok(&[
        "expose",
        "service",
        "frontend",
        "--port=443",
        "--name=frontend-2",
    ]);
    assert!(ports("frontend-2").starts_with("|443|"));
    k.ok(&["expose", "service", "frontend", "--name=frontend-4"]);
    assert!(ports("frontend-4").starts_with("|80|"));
    k.ok_stdin(&["create", "-f", "-"], POD);
    k.ok(&[
        "expose",
        "pod",
        "valid-pod",
        "--port=444",
        "--name=frontend-3",
    ]);
    assert!(ports("frontend-3").starts_with("|444|"));
    k.ok(&[
        "create",
        "deployment",
        "nginx-deployment",
        "--image=nginx",
        "--port=8080",
    ]);
    k.ok(&["expose", "deployment/nginx-deployment"]);
    assert!(ports("nginx-deployment").starts_with("|8080|"));
    let multi = k.write_file("multi.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: etcd-pod, labels: {test: etcd}}\nspec: {containers: [{name: etcd, image: etcd, ports: [{containerPort: 2380}, {containerPort: 2379}]}]}\n");
    k.ok(&["create", "-f", multi.to_str().unwrap()]);
    k.ok(&[
        "expose",
        "-f",
        multi.to_str().unwrap(),
        "--selector=test=etcd",
    ]);
    assert!(ports("etcd-pod").starts_with("port-1 port-2|2380 2379|"));
    let long = "invalid-large-service-name-that-has-more-than-sixty-three-characters";
    let err = k.fails(&[
        "expose",
        "pod",
        "valid-pod",
        &format!("--name={long}"),
        "--port=8081",
    ]);
    assert!(err.contains("metadata.name: Invalid value"), "{err}");

    // Services of every type; selectors with resourceVersion preconditions; replace keeps
    // the cluster IP; `run --expose`; `--overrides`; custom columns.
    k.ok(&[
        "create",
        "service",
        "externalname",
        "beep-boop",
        "--external-name",
        "bar.com",
    ]);
    for t in ["clusterip", "nodeport", "loadbalancer"] {
        k.ok(&["create", "service", t, &format!("svc-{t}"), "--tcp=8080"]);
    }
    let types = jsonpath(
        &k,
        &[
            "svc",
            "beep-boop",
            "svc-clusterip",
            "svc-nodeport",
            "svc-loadbalancer",
        ],
        "{.items[*].spec.type}",
    );
    assert_eq!(types, "ExternalName ClusterIP NodePort LoadBalancer");
    k.ok(&["set", "selector", "svc", "frontend", "role=padawan"]);
    let rv = jsonpath(&k, &["svc", "frontend"], "{.metadata.resourceVersion}");
    k.ok(&[
        "set",
        "selector",
        "svc",
        "frontend",
        "role=padawan2",
        &format!("--resource-version={rv}"),
    ]);
    let err = k.fails(&[
        "set",
        "selector",
        "svc",
        "frontend",
        "role=x",
        "--resource-version=1",
    ]);
    assert!(err.contains("Conflict"), "{err}");
    assert_eq!(
        jsonpath(&k, &["svc", "frontend"], "{.spec.selector}"),
        r#"{"role":"padawan2"}"#
    );
    let ip = jsonpath(&k, &["svc", "frontend"], "{.spec.clusterIP}");
    let live = k.ok(&["get", "svc", "frontend", "-o", "json"]);
    k.ok_stdin(&["replace", "-f", "-"], &live);
    assert_eq!(jsonpath(&k, &["svc", "frontend"], "{.spec.clusterIP}"), ip);
    k.ok(&["run", "web", "--image=nginx", "--port=80", "--expose"]);
    assert!(ports("web").starts_with("|80|"));
    k.ok(&[
        "expose",
        "pod",
        "web",
        "--port=1000",
        "--target-port=80",
        "--type=NodePort",
        "--name=web-np",
        "--overrides",
        r#"{"metadata":{"annotations":{"zone-context":"work"}}}"#,
    ]);
    assert_eq!(
        jsonpath(
            &k,
            &["svc", "web-np"],
            "{.metadata.annotations.zone-context}"
        ),
        "work"
    );
    assert_eq!(managers(&k, &["svc", "web"]), "kubectl-run");
    assert!(managers(&k, &["svc", "frontend"]).contains("kubectl-set"));
    assert!(managers(&k, &["svc", "web-np"]).contains("kubectl-expose"));
    let cols = k.ok(&[
        "get",
        "svc",
        "web",
        "-o",
        "custom-columns=NAME:.metadata.name,RSRC:.metadata.resourceVersion",
    ]);
    assert!(
        cols.lines().nth(1).unwrap_or("").starts_with("web "),
        "{cols}"
    );

    // A chosen cluster IP is listed in clusterIPs, may not change, and `apply --force`
    // recreates the Service with the new one; one outside the service range is refused.
    let svc = |ip: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: fixed-ip}}\nspec: {{clusterIP: {ip}, ports: [{{port: 80}}], selector: {{a: b}}}}\n"
        )
    };
    k.ok_stdin(&["apply", "-f", "-"], &svc("10.96.10.10"));
    assert_eq!(
        jsonpath(&k, &["svc", "fixed-ip"], "{.spec.clusterIPs}"),
        r#"["10.96.10.10"]"#
    );
    let err = k.fails_stdin(&["apply", "-f", "-"], &svc("10.96.10.11"));
    assert!(err.contains("may not change once set"), "{err}");
    k.ok_stdin(&["apply", "--force", "-f", "-"], &svc("10.96.10.11"));
    assert_eq!(
        jsonpath(&k, &["svc", "fixed-ip"], "{.spec.clusterIP}"),
        "10.96.10.11"
    );
    let err = k.fails_stdin(
        &["create", "-f", "-"],
        &svc("1.2.3.4").replace("fixed-ip", "outside"),
    );
    assert!(err.contains("not in the valid range"), "{err}");

    // HorizontalPodAutoscalers: kube's defaults, and the same object at autoscaling/v1.
    let hpa = |k: &Kplex| {
        jsonpath(
            k,
            &["hpa", "frontend"],
            "{.spec.minReplicas} {.spec.maxReplicas} {.spec.metrics[0].resource.target.averageUtilization}",
        )
    };
    k.ok(&["autoscale", "rc", "frontend", "--min=2", "--max=3"]);
    assert_eq!(hpa(&k), "2 3 80");
    k.ok(&["delete", "hpa", "frontend"]);
    k.ok(&["autoscale", "-f", rc_file, "--max=2", "--cpu-percent=70"]);
    assert_eq!(hpa(&k), "1 2 70");
    let v1 = json(&k.ok(&[
        "get",
        "--raw",
        "/clusters/root/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/frontend",
    ]));
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 70);
    assert_eq!(v1["spec"]["minReplicas"], 1);
    assert!(v1["spec"].get("metrics").is_none(), "{v1}");

    // `set resources` on every container, one container, and from a file.
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: sr}\nspec:\n  selector: {matchLabels: {app: sr}}\n  template:\n    metadata: {labels: {app: sr}}\n    spec: {containers: [{name: nginx, image: nginx}, {name: perl, image: perl}]}\n";
    let deploy_file = k.write_file("deploy.yaml", deploy);
    k.ok(&["create", "-f", deploy_file.to_str().unwrap()]);
    let cpu = || {
        jsonpath(
            &k,
            &["deploy", "sr"],
            "{.spec.template.spec.containers[*].resources.limits.cpu}",
        )
    };
    k.ok(&["set", "resources", "deployment", "sr", "--limits=cpu=100m"]);
    assert_eq!(cpu(), "100m 100m");
    k.ok(&[
        "set",
        "resources",
        "deployment",
        "sr",
        "-c",
        "nginx",
        "--limits=cpu=200m",
    ]);
    assert_eq!(cpu(), "200m 100m");
    k.ok(&[
        "set",
        "resources",
        "-f",
        deploy_file.to_str().unwrap(),
        "-c",
        "perl",
        "--limits=cpu=300m",
        "--requests=cpu=300m",
    ]);
    assert_eq!(cpu(), "200m 300m");
}

/// Nodes described and patched, `describe` paging, `kubectl debug` copies, profiles and
/// node pods — with no kubelet, these are writes and reads of stored objects.
#[test]
fn nodes_describe_and_debug_as_kube_test_cmd_expects() {
    let k = Kplex::start(Backend::Embedded);
    k.ok_stdin(&["create", "-f", "-"], r#"apiVersion: v1
kind: Node
metadata: {name: n1, labels: {kubernetes.io/hostname: n1}}
status:
  conditions: [{type: Ready, status: "True", reason: KubeletReady, message: ready, lastHeartbeatTime: "2026-01-01T00:00:00Z", lastTransitionTime: "2026-01-01T00:00:00Z"}]
  addresses: [{type: InternalIP, address: 10.0.0.1}]
  capacity: {cpu: "4", memory: 8Gi, pods: "110"}
  allocatable: {cpu: "4", memory: 8Gi, pods: "110"}
"#);
    k.ok(&[
        "run",
        "on-node",
        "--image=nginx",
        "--overrides",
        r#"{"spec":{"nodeName":"n1"}}"#,
    ]);
    let described = k.ok(&["describe", "node", "n1"]);
    for want in [
        "Conditions:",
        "KubeletReady",
        "Addresses:",
        "InternalIP:  10.0.0.1",
        "Capacity:",
        "on-node",
    ] {
        assert!(described.contains(want), "{want} in {described}");
    }
    k.ok(&[
        "patch",
        "node",
        "n1",
        "-p",
        r#"{"spec":{"unschedulable":true}}"#,
    ]);
    assert_eq!(
        jsonpath(&k, &["node", "n1"], "{.spec.unschedulable}"),
        "true"
    );
    k.ok(&[
        "patch",
        "node",
        "n1",
        "-p",
        r#"{"spec":{"unschedulable":null}}"#,
    ]);
    assert_eq!(jsonpath(&k, &["node", "n1"], "{.spec}"), "{}");
    let review = r#"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","spec":{"token":"test-token"}}"#;
    k.ok_stdin(&["create", "-f", "-", "--validate=false"], review);

    // describe with paging: every pod, and paged requests for pods and their events.
    k.ok(&["create", "namespace", "paged"]);
    for i in 1..=3 {
        k.ok(&["run", &format!("p{i}"), "-n", "paged", "--image=nginx"]);
    }
    let out = k.kubectl(&["describe", "pods", "-n", "paged", "--chunk-size=1", "-v=6"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("\nName:").count() + usize::from(stdout.starts_with("Name:")),
        3,
        "{stdout}"
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("pods?limit=1") && log.contains("continue="),
        "{log}"
    );
    assert!(
        log.contains("/events?fieldSelector=") && log.contains("limit=1"),
        "{log}"
    );

    // debug: copies, replace, a changed image and command, every profile, a custom one.
    k.ok(&["run", "target", "--image=nginx"]);
    let names = |pod: &str| jsonpath(&k, &["pod", pod], "{.spec.containers[*].name}");
    k.ok(&[
        "debug",
        "target",
        "--copy-to=target-copy",
        "--image=busybox",
        "--container=debug-container",
        "--attach=false",
    ]);
    assert_eq!(names("target-copy"), "target debug-container");
    k.ok(&["delete", "pod", "target-copy"]);
    k.ok(&[
        "debug",
        "target",
        "--copy-to=target-copy",
        "--container=target",
        "--image=busybox",
        "--attach=false",
        "--replace",
        "--",
        "sleep",
        "1m",
    ]);
    assert_eq!(
        jsonpath(
            &k,
            &["pod", "target-copy"],
            "{.spec.containers[*].name} {.spec.containers[*].image}"
        ),
        "target busybox"
    );
    assert!(
        k.fails(&["get", "pod", "target"]).contains("NotFound"),
        "--replace deletes the original"
    );
    k.ok(&["run", "target", "--image=nginx"]);
    for (profile, want) in [
        ("general", r#""add":["SYS_PTRACE"]"#),
        ("netadmin", r#""add":["NET_ADMIN","NET_RAW"]"#),
        ("restricted", r#""drop":["ALL"]"#),
    ] {
        k.ok(&[
            "debug",
            "target",
            "--image=busybox",
            "--attach=false",
            &format!("--profile={profile}"),
            &format!("--container=dbg-{profile}"),
            "--",
            "true",
        ]);
        let ctx = jsonpath(
            &k,
            &["pod", "target"],
            &format!("{{.spec.ephemeralContainers[?(@.name=='dbg-{profile}')].securityContext}}"),
        );
        assert!(ctx.contains(want), "{profile}: {ctx}");
        k.ok(&[
            "debug",
            "target",
            &format!("--copy-to=copy-{profile}"),
            "--image=busybox",
            "--attach=false",
            &format!("--profile={profile}"),
            "--container=d",
            "--",
            "true",
        ]);
        let copy = jsonpath(
            &k,
            &["pod", &format!("copy-{profile}")],
            "{.spec.shareProcessNamespace} {.spec.containers[?(@.name=='d')].securityContext}",
        );
        assert!(
            copy.starts_with("true ") && copy.contains(want),
            "{profile}: {copy}"
        );
    }
    let restricted = jsonpath(
        &k,
        &["pod", "target"],
        "{.spec.ephemeralContainers[?(@.name=='dbg-restricted')].securityContext}",
    );
    assert!(
        restricted.contains(r#""runAsNonRoot":true"#) && restricted.contains("RuntimeDefault"),
        "{restricted}"
    );
    let custom = k.write_file(
        "custom.json",
        r#"{"env":[{"name":"ENV_VAR1","value":"value1"},{"name":"ENV_VAR2","value":"value2"}]}"#,
    );
    k.ok(&[
        "debug",
        "target",
        "--image=busybox",
        "--attach=false",
        &format!("--custom={}", custom.display()),
        "--container=dbg-custom",
        "--",
        "true",
    ]);
    let env = jsonpath(
        &k,
        &["pod", "target"],
        "{.spec.ephemeralContainers[?(@.name=='dbg-custom')].env[*].name}",
    );
    assert_eq!(env, "ENV_VAR1 ENV_VAR2");

    // debug node/…: a pod already bound to the node, with host namespaces and / at /host
    // under `general`, none of that under `baseline`.
    for (profile, want) in [
        ("general", "true true true /host|"),
        ("baseline", "   |"),
        (
            "restricted",
            r#"   |{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}}"#,
        ),
        (
            "netadmin",
            r#"true true true |{"capabilities":{"add":["NET_ADMIN","NET_RAW"]}}"#,
        ),
    ] {
        let out = k.ok(&[
            "debug",
            "node/n1",
            "--image=busybox",
            "--attach=false",
            &format!("--profile={profile}"),
            "--",
            "true",
        ]);
        let pod = out
            .split_whitespace()
            .find(|w| w.starts_with("node-debugger-n1-"))
            .unwrap()
            .to_string();
        let host = jsonpath(
            &k,
            &["pod", &pod],
            "{.spec.nodeName} {.spec.hostIPC} {.spec.hostNetwork} {.spec.hostPID} {.spec.containers[0].volumeMounts[*].mountPath}|{.spec.containers[0].securityContext}",
        );
        assert_eq!(host, format!("n1 {want}"), "{profile}");
        k.ok(&["delete", "--force", "pod", &pod]);
    }
}

/// `apply`: pruning in its variants, `$retainKeys`, partial failures, and client- and
/// server-side apply on one object.
#[test]
fn apply_and_prune_as_kube_test_cmd_expects() {
    let k = Kplex::start(Backend::Embedded);
    let pods = |ns: &str| {
        k.ok(&["get", "pods", "-n", ns, "-o", "name"])
            .trim()
            .to_string()
    };
    let pod = |name: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{prune-group: \"true\"}}}}\nspec: {{containers: [{{name: c, image: nginx}}]}}\n"
        )
    };
    let a = k.write_file("a.yaml", &pod("a"));
    let b = k.write_file("b.yaml", &pod("b"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());

    // --prune with a selector touches the namespace applied to only.
    k.ok(&["create", "namespace", "nsa"]);
    k.ok(&["create", "namespace", "nsb"]);
    k.ok(&["apply", "-n", "nsa", "-f", a]);
    k.ok(&["apply", "-n", "nsb", "-f", a]);
    k.ok(&[
        "apply",
        "--namespace",
        "nsb",
        "--prune",
        "-l",
        "prune-group=true",
        "-f",
        b,
    ]);
    assert_eq!(pods("nsa") + " " + &pods("nsb"), "pod/a pod/b");
    // --prune needs --all or a selector; an allowlist limits what is pruned.
    let err = k.fails(&["apply", "--prune", "-n", "nsb", "-f", a]);
    assert!(err.contains("without explicitly passing --all"), "{err}");
    k.ok(&["delete", "pod", "b", "-n", "nsb"]);
    k.ok(&["apply", "-n", "nsb", "-f", a]);
    let svc = k.write_file("svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s1, labels: {prune-group: \"true\"}}\nspec: {ports: [{port: 80}]}\n");
    let svc = svc.to_str().unwrap();
    let prune_with = |extra: &[&str]| {
        let mut args = vec![
            "apply",
            "-n",
            "nsb",
            "-l",
            "prune-group=true",
            "-f",
            svc,
            "--prune",
        ];
        args.extend_from_slice(extra);
        k.ok(&args);
    };
    prune_with(&["--prune-allowlist=core/v1/Service"]);
    assert_eq!(pods("nsb"), "pod/a");
    prune_with(&[]);
    assert_eq!(pods("nsb"), "");
    // --all --prune over claims: the second file's claim replaces the first's.
    let pvc = |n: &str| {
        format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {n}}}\nspec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n"
        )
    };
    k.ok(&["create", "namespace", "claims"]);
    k.ok_stdin(
        &["apply", "-n", "claims", "--all", "--prune", "-f", "-"],
        &pvc("a-pvc"),
    );
    k.ok_stdin(
        &["apply", "-n", "claims", "--all", "--prune", "-f", "-"],
        &pvc("b-pvc"),
    );
    assert_eq!(
        k.ok(&["get", "pvc", "-n", "claims", "-o", "name"]).trim(),
        "persistentvolumeclaim/b-pvc"
    );

    // $retainKeys: a new strategy type and volume source replace the old ones whole.
    let deploy = |strategy: &str, volume: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: rk}}\nspec:\n  {strategy}\n  selector: {{matchLabels: {{app: rk}}}}\n  template:\n    metadata: {{labels: {{app: rk}}}}\n    spec:\n      containers: [{{name: c, image: nginx, volumeMounts: [{{name: v, mountPath: /v}}]}}]\n      volumes: [{{name: v, {volume}}}]\n"
        )
    };
    k.ok_stdin(
        &["apply", "-f", "-"],
        &deploy("replicas: 1", "emptyDir: {}"),
    );
    k.ok_stdin(
        &["apply", "-f", "-"],
        &deploy("strategy: {type: Recreate}", "hostPath: {path: /tmp}"),
    );
    let live = jsonpath(
        &k,
        &["deploy", "rk"],
        "{.spec.strategy}|{.spec.template.spec.volumes}",
    );
    assert_eq!(
        live,
        r#"{"type":"Recreate"}|[{"hostPath":{"path":"/tmp","type":""},"name":"v"}]"#
    );

    // Partial failures: the valid objects of one apply are written; the invalid one is named.
    let three: String = ["pod-a", "POD-B", "pod-c"]
        .iter()
        .map(|n| format!("---\n{}", pod(n)))
        .collect();
    let err = k.fails_stdin(&["apply", "-f", "-"], &three);
    assert!(err.contains(r#"The Pod "POD-B" is invalid"#), "{err}");
    k.ok(&["get", "pod", "pod-a", "pod-c"]);
    // A namespace and a pod in it, applied together.
    k.ok_stdin(&["apply", "-f", "-"], "apiVersion: v1\nkind: Namespace\nmetadata: {name: multi-resource-ns}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: in-new-ns, namespace: multi-resource-ns}\nspec: {containers: [{name: c, image: nginx}]}\n");
    assert_eq!(pods("multi-resource-ns"), "pod/in-new-ns");

    // Client-side then server-side apply: a conflict for another manager, success for
    // kubectl's own, the last-applied annotation follows, and a later client-side apply works.
    let test_pod = |label: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: test-pod, labels: {{name: {label}}}}}\nspec: {{containers: [{{name: c, image: nginx}}]}}\n"
        )
    };
    k.ok_stdin(&["apply", "-f", "-"], &test_pod("test-pod-label"));
    let err = k.fails_stdin(
        &[
            "apply",
            "--server-side",
            "--field-manager=not-kubectl",
            "-f",
            "-",
        ],
        &test_pod("test-pod-applied"),
    );
    assert!(err.contains("conflict"), "{err}");
    k.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &test_pod("test-pod-applied"),
    );
    let view = k.ok(&["apply", "view-last-applied", "pod/test-pod", "-o", "json"]);
    assert!(view.contains("test-pod-applied"), "{view}");
    k.ok_stdin(&["apply", "-f", "-"], &test_pod("test-pod-label"));
    assert_eq!(
        jsonpath(&k, &["pod", "test-pod"], "{.metadata.labels.name}"),
        "test-pod-label"
    );
    let cm = |data: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: ssa}}\ndata: {{{data}}}\n")
    };
    k.ok_stdin(&["apply", "-f", "-"], &cm("key: v, legacy: v"));
    k.ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        &cm("key: v, legacy: v"),
    );
    k.ok_stdin(&["apply", "--server-side", "-f", "-"], &cm("key: v"));
    assert_eq!(jsonpath(&k, &["cm", "ssa"], "{.data}"), r#"{"key":"v"}"#);
}

const CRDS: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: resources.mygroup.example.com}
spec:
  group: mygroup.example.com
  names: {kind: Kind, plural: resources, singular: resource}
  scope: Namespaced
  versions: [{name: v1alpha1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: foos.company.com}
spec:
  group: company.com
  names: {kind: Foo, plural: foos, singular: foo}
  scope: Namespaced
  versions:
  - {name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
  - {name: v1beta1, served: true, storage: false, deprecated: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
  - {name: v1alpha1, served: true, storage: false, deprecated: true, deprecationWarning: "foos v1alpha1 goes away soon", schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: bars.company.com}
spec:
  group: company.com
  names: {kind: Bar, plural: bars, singular: bar}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]
"#;

/// Custom resources through every kubectl form: names by resource, kind and version,
/// bulk labels, watches, cascades, `apply` of Lists, dry runs, deprecated versions.
#[test]
fn custom_resources_as_kube_test_cmd_expects() {
    let k = Kplex::start(Backend::Embedded);
    // A CRD and its CR in one file: the CR needs a second apply once the CRD is served.
    let crd_and_cr = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  names: {kind: Widget, plural: widgets, singular: widget}\n  scope: Namespaced\n  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}]\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\n";
    let err = k.fails_stdin(&["apply", "-f", "-"], crd_and_cr);
    assert!(
        err.contains(r#"no matches for kind "Widget" in version "example.com/v1""#),
        "{err}"
    );
    common::eventually(20, "the CR applied", || {
        common::output_with_stdin(&mut k.kubectl_command(&["apply", "-f", "-"]), crd_and_cr)
            .status
            .success()
            .then_some(())
    });
    // Server dry runs of a custom resource create nothing.
    let myobj = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: myobj}\n";
    k.ok_stdin(&["apply", "--dry-run=server", "-f", "-"], myobj);
    k.ok_stdin(
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        myobj,
    );
    assert!(k.fails(&["get", "widget", "myobj"]).contains("NotFound"));

    k.ok_stdin(&["create", "-f", "-"], CRDS);
    common::eventually(20, "the CRDs served", || {
        k.ok(&["api-resources"]);
        k.kubectl(&["get", "foos,bars,resources"])
            .status
            .success()
            .then_some(())
    });
    k.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: mygroup.example.com/v1alpha1\nkind: Kind\nmetadata: {name: myobj}\n",
    );
    for form in [
        "resource/myobj",
        "resources/myobj",
        "kind.mygroup.example.com/myobj",
    ] {
        assert_eq!(
            k.ok(&["get", form, "-o", "name"]).trim(),
            "kind.mygroup.example.com/myobj"
        );
    }
    let foo = |fields: &str| {
        format!(
            "apiVersion: company.com/v1\nkind: Foo\nmetadata: {{name: test}}\nsomeField: field1\nnestedField: {{{fields}}}\n"
        )
    };
    k.ok_stdin(
        &["apply", "-f", "-"],
        &foo("someSubfield: a, otherSubfield: b"),
    );
    k.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: company.com/v1\nkind: Bar\nmetadata: {name: test}\nsomeField: field1\n",
    );
    assert!(k.ok(&["get", "foos.v1.company.com"]).contains("test"));
    k.ok(&["label", "foos", "--all", "listlabel=true"]);
    k.ok(&["annotate", "foos", "--all", "listannotation=true"]);
    assert!(k.ok(&["describe", "foos"]).contains("listlabel=true"));
    // Re-applying drops the subfields the manifest no longer has.
    k.ok_stdin(
        &["apply", "-f", "-"],
        &foo("someSubfield: modifiedValue, newSubfield: c"),
    );
    assert_eq!(
        jsonpath(&k, &["foo", "test"], "{.nestedField}"),
        r#"{"newSubfield":"c","someSubfield":"modifiedValue"}"#
    );
    // A watch sees a merge patch.
    let mut watch = k.spawn_kubectl(&[
        "get",
        "bars",
        "--watch-only",
        "-o",
        "name",
        "--request-timeout=5s",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    k.ok(&[
        "patch",
        "bars",
        "test",
        "--type=merge",
        "-p",
        r#"{"patched":"value"}"#,
    ]);
    let _ = watch.wait();
    let mut seen = String::new();
    watch
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut seen)
        .unwrap();
    assert_eq!(seen.trim(), "bar.company.com/test");
    k.ok(&["delete", "foos", "test", "--cascade=background"]);
    k.ok(&["delete", "bars", "test", "--cascade=orphan"]);

    // A List of custom resources: kubectl validates it against /openapi/v2 (where kube
    // publishes no properties for schemas that keep unknown fields), then applies each.
    let list = |extra: &str| {
        format!(
            "apiVersion: v1\nkind: List\nitems:\n- {{apiVersion: company.com/v1, kind: Foo, metadata: {{name: lf}}, someField: a{extra}}}\n- {{apiVersion: company.com/v1, kind: Bar, metadata: {{name: lb}}, someField: a{extra}}}\n"
        )
    };
    k.ok_stdin(&["apply", "-f", "-"], &list(", otherField: b"));
    k.ok_stdin(&["apply", "-f", "-"], &list(""));
    assert_eq!(
        jsonpath(&k, &["foo", "lf"], "{.someField}|{.otherField}"),
        "a|"
    );
    assert_eq!(
        jsonpath(&k, &["bar", "lb"], "{.someField}|{.otherField}"),
        "a|"
    );

    // --prune over custom resources named in allowlists.
    let crs = |bar: bool| {
        let mut out = "apiVersion: company.com/v1\nkind: Foo\nmetadata: {name: pf, labels: {pruneGroup: \"true\"}}\n".to_string();
        if bar {
            out.push_str("---\napiVersion: company.com/v1\nkind: Bar\nmetadata: {name: pb, labels: {pruneGroup: \"true\"}}\n");
        }
        out
    };
    let prune = [
        "apply",
        "--prune",
        "-l",
        "pruneGroup=true",
        "--prune-allowlist=company.com/v1/Foo",
        "--prune-allowlist=company.com/v1/Bar",
        "-f",
        "-",
    ];
    k.ok_stdin(&prune, &crs(true));
    assert!(
        k.ok_stdin(&prune, &crs(false))
            .contains("bar.company.com/pb pruned")
    );
    assert_eq!(
        k.ok(&["get", "foos,bars", "-l", "pruneGroup=true", "-o", "name"])
            .trim(),
        "foo.company.com/pf"
    );

    // Custom resources go with their namespace.
    k.ok(&["create", "namespace", "nn"]);
    k.ok_stdin(
        &["create", "-n", "nn", "-f", "-"],
        "apiVersion: company.com/v1\nkind: Bar\nmetadata: {name: test}\n",
    );
    k.ok(&["delete", "namespace", "nn"]);
    assert_eq!(k.ok(&["get", "bars", "-n", "nn", "-o", "name"]).trim(), "");

    // Deprecated versions warn, in kube's words or the CRD's own.
    let out = k.kubectl(&["get", "foos.v1beta1.company.com"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success());
    assert!(
        err.contains("Warning: company.com/v1beta1 Foo is deprecated; use company.com/v1 Foo"),
        "{err}"
    );
    let err = String::from_utf8_lossy(&k.kubectl(&["get", "foos.v1alpha1.company.com"]).stderr)
        .into_owned();
    assert!(
        err.contains("Warning: foos v1alpha1 goes away soon"),
        "{err}"
    );
    let err = k.fails(&["get", "foos.v1beta1.company.com", "--warnings-as-errors"]);
    assert!(err.contains("1 warning received"), "{err}");
}

/// Discovery entries and OpenAPI as kube writes them, reviews sent without a content type,
/// and watches of one object.
#[test]
fn discovery_reviews_and_watches_as_kube_test_cmd_expects() {
    let k = Kplex::start(Backend::Embedded);
    let core = k.ok(&["get", "--raw", "/clusters/root/api/v1"]);
    assert!(core.contains(r#"{"name":"configmaps","singularName":"configmap","namespaced":true,"kind":"ConfigMap","verbs":["create","delete","deletecollection","get","list","patch","update","watch"],"shortNames":["cm"],"storageVersionHash":"qFsyl6wFWjQ="}"#), "{core}");
    let pods = json(&core)["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods")
        .cloned()
        .unwrap();
    assert_eq!(pods["categories"], serde_json::json!(["all"]));
    // Reviews are not stored: no storage version hash (as kube).
    let authz = json(&k.ok(&[
        "get",
        "--raw",
        "/clusters/root/apis/authorization.k8s.io/v1",
    ]));
    assert!(
        authz["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r.get("storageVersionHash").is_none())
    );
    let v2 = k.ok(&["get", "--raw", "/clusters/root/openapi/v2"]);
    for want in [
        "list of returned",
        "List of services",
        "Watch for changes to the described resources",
    ] {
        assert!(v2.contains(want), "{want}");
    }

    // A SubjectAccessReview about another user; POSTed with no Content-Type, read as JSON.
    let sar = |user: &str| {
        format!(
            r#"{{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1","spec":{{"user":"{user}","groups":["{user}-group"],"resourceAttributes":{{"namespace":"ns","verb":"create","group":"autoscaling","resource":"hpa"}}}}}}"#
        )
    };
    assert_eq!(
        k.ok_stdin(
            &["create", "-f", "-", "-o", "jsonpath={.status.allowed}"],
            &sar("nobody")
        ),
        "false"
    );
    let body = k.write_file(
        "sar.json",
        &sar("admin").replace("admin-group", "system:masters"),
    );
    let (out, err) = k.curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type:",
        "--data-binary",
        &format!("@{}", body.display()),
        &k.url("/clusters/root/apis/authorization.k8s.io/v1/subjectaccessreviews"),
    ]);
    assert_eq!(json(&out)["status"]["allowed"], true, "{out} {err}");

    // The Service kube-apiserver makes for itself, in every workspace's `default` namespace;
    // made again when deleted.
    let api = || {
        jsonpath(
            &k,
            &["svc", "kubernetes", "-n", "default"],
            "{.spec.clusterIP} {.spec.ports[0].name} {.spec.ports[0].port} {.metadata.labels.component}",
        )
    };
    assert_eq!(api(), "10.96.0.1 https 443 apiserver");
    k.ok_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Node\nmetadata: {name: 127.0.0.1}\n",
    );
    let both = k.ok(&["get", "nodes/127.0.0.1", "service/kubernetes", "-o", "name"]);
    assert_eq!(both.trim(), "node/127.0.0.1\nservice/kubernetes");
    k.ok(&["delete", "svc", "kubernetes"]);
    common::eventually(20, "the kubernetes Service made again", || {
        k.kubectl(&["get", "svc", "kubernetes"])
            .status
            .success()
            .then_some(())
    });
    assert_eq!(api(), "10.96.0.1 https 443 apiserver");
    k.ok(&["create", "namespace", "other"]);
    common::eventually(20, "the other namespace's defaults", || {
        k.kubectl(&["get", "sa", "default", "-n", "other"])
            .status
            .success()
            .then_some(())
    });
    assert_eq!(
        k.ok(&["get", "svc", "-n", "other", "-o", "name"]).trim(),
        "",
        "only in default"
    );

    // Commands whose answers the template-output tests print: a Job from a CronJob,
    // `auth reconcile` adding and removing rules.
    k.ok(&[
        "create",
        "cronjob",
        "pi",
        "--image=perl",
        "--schedule=*/1 * * * *",
    ]);
    assert_eq!(
        k.ok(&[
            "create",
            "job",
            "test-job",
            "--from=cronjob/pi",
            "--template={{.metadata.name}}"
        ]),
        "test-job"
    );
    assert_eq!(
        jsonpath(
            &k,
            &["job", "test-job"],
            "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name} {.metadata.annotations.cronjob\\.kubernetes\\.io/instantiate}"
        ),
        "CronJob/pi manual"
    );
    let role = |verb: &str| {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: reconciled}}\nrules: [{{apiGroups: [\"\"], resources: [pods], verbs: [{verb}]}}]\n"
        )
    };
    assert_eq!(
        k.ok_stdin(
            &[
                "auth",
                "reconcile",
                "-f",
                "-",
                "--template={{.metadata.name}}"
            ],
            &role("get")
        ),
        "reconciled"
    );
    k.ok_stdin(&["auth", "reconcile", "-f", "-"], &role("list"));
    let verbs = || jsonpath(&k, &["clusterrole", "reconciled"], "{.rules[*].verbs[*]}");
    assert_eq!(verbs(), "get list");
    k.ok_stdin(
        &["auth", "reconcile", "-f", "-", "--remove-extra-permissions"],
        &role("list"),
    );
    assert_eq!(verbs(), "list");

    // Watching one object by name; a missing one is NotFound; a paged watch works.
    k.ok_stdin(&["create", "-f", "-"], POD);
    assert_eq!(
        k.ok(&[
            "get",
            "pods/valid-pod",
            "-w",
            "--request-timeout=1",
            "-o",
            "name"
        ])
        .trim(),
        "pod/valid-pod"
    );
    assert!(
        k.ok(&[
            "get",
            "pods/valid-pod",
            "-w",
            "--request-timeout=1",
            "-o",
            "yaml"
        ])
        .contains("name: valid-pod")
    );
    let err = k.fails(&["get", "pods/invalid-pod", "-w", "--request-timeout=1"]);
    assert!(err.contains(r#""invalid-pod" not found"#), "{err}");
    for i in 1..=3 {
        k.ok(&["create", "configmap", &format!("one-{i}")]);
    }
    k.ok(&[
        "get",
        "configmap",
        "--chunk-size=1",
        "--watch",
        "--request-timeout=1s",
    ]);
}

//! Built-in schemas compile with kplex-schema and catch what kube catches.

use kplex_openapi::builtin_schema;
use kplex_schema::Schema;
use serde_json::json;

const KINDS: &[(&str, &str, &str)] = &[
    ("", "v1", "Namespace"),
    ("", "v1", "ConfigMap"),
    ("", "v1", "Secret"),
    ("", "v1", "ServiceAccount"),
    ("", "v1", "Event"),
    ("", "v1", "LimitRange"),
    ("", "v1", "ResourceQuota"),
    ("", "v1", "Pod"),
    ("", "v1", "Service"),
    ("", "v1", "Endpoints"),
    ("", "v1", "PersistentVolumeClaim"),
    ("apps", "v1", "Deployment"),
    ("apps", "v1", "ReplicaSet"),
    ("apps", "v1", "StatefulSet"),
    ("apps", "v1", "DaemonSet"),
    ("batch", "v1", "Job"),
    ("batch", "v1", "CronJob"),
    ("networking.k8s.io", "v1", "Ingress"),
    ("networking.k8s.io", "v1", "NetworkPolicy"),
    ("autoscaling", "v1", "HorizontalPodAutoscaler"),
    ("autoscaling", "v2", "HorizontalPodAutoscaler"),
    ("autoscaling", "v1", "Scale"),
    ("policy", "v1", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io", "v1", "Role"),
    ("rbac.authorization.k8s.io", "v1", "ClusterRole"),
    ("rbac.authorization.k8s.io", "v1", "RoleBinding"),
    ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
    ("coordination.k8s.io", "v1", "Lease"),
    ("events.k8s.io", "v1", "Event"),
    (
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
    ),
    ("certificates.k8s.io", "v1", "CertificateSigningRequest"),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
];

fn compile(group: &str, version: &str, kind: &str) -> Schema {
    let raw =
        builtin_schema(group, version, kind).unwrap_or_else(|| panic!("{group}/{version} {kind}"));
    assert!(
        !raw.to_string().contains("\"$ref\":\""),
        "{kind} has a $ref"
    );
    Schema::compile(&raw).unwrap_or_else(|e| {
        panic!(
            "{group}/{version} {kind}: {:?}",
            e.iter().take(5).map(|e| e.to_string()).collect::<Vec<_>>()
        )
    })
}

#[test]
fn every_kind_compiles() {
    for (g, v, k) in KINDS {
        compile(g, v, k);
    }
    assert!(builtin_schema("example.com", "v1", "Widget").is_none());
}

fn deployment() -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
            "annotations": {"a": "b"}, "creationTimestamp": null},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}, "creationTimestamp": null},
                "spec": {
                    "containers": [{
                        "name": "nginx",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "env": [{"name": "A", "value": "1"}],
                        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": 1}},
                        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}}
                    }],
                    "volumes": [{"name": "data", "emptyDir": {}}],
                    "tolerations": [{"key": "k", "operator": "Exists"}]
                }
            }
        },
        "status": {}
    })
}

#[test]
fn deployment_validates_and_prunes() {
    let s = compile("apps", "v1", "Deployment");
    let mut obj = deployment();
    let errs = s.validate(&obj);
    assert!(errs.is_empty(), "{errs:?}");
    assert!(s.prune(&mut obj).is_empty());
    assert_eq!(obj, deployment());

    let mut bad = deployment();
    bad["spec"]["replicas"] = json!("x");
    let errs = s.validate(&bad);
    assert!(
        errs.iter().any(|e| e.to_string().contains("spec.replicas")),
        "{errs:?}"
    );

    let mut unknown = deployment();
    unknown["spec"]["bogus"] = json!(1);
    unknown["spec"]["template"]["spec"]["containers"][0]["imagePull"] = json!("x");
    unknown["spec"]["template"]["metadata"]["bogus"] = json!("x");
    assert_eq!(
        s.prune(&mut unknown),
        vec![
            ".spec.bogus".to_string(),
            ".spec.template.metadata.bogus".to_string(),
            ".spec.template.spec.containers[0].imagePull".to_string(),
        ]
    );
}

#[test]
fn free_form_fields_are_preserved() {
    let s = compile("apiextensions.k8s.io", "v1", "CustomResourceDefinition");
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {"type": "object", "default": {"a": 1},
                        "properties": {"n": {"type": "integer", "enum": [1, 2]}}}},
                    "x-kubernetes-validations": [{"rule": "true"}]
                }}
            }]
        }
    });
    let mut pruned = crd.clone();
    assert!(s.validate(&crd).is_empty(), "{:?}", s.validate(&crd));
    assert!(s.prune(&mut pruned).is_empty());
    assert_eq!(pruned, crd);

    let s = compile("", "v1", "Service");
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}]}});
    assert!(s.validate(&svc).is_empty(), "{:?}", s.validate(&svc));
}

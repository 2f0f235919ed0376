//! kube's bootstrap RBAC policy, shared by every workspace: the default ClusterRoles and
//! the ClusterRoleBindings every signed-in user has. It exists once, in memory — the
//! authorizer falls back to it, and the registry serves it read-only in every logical
//! cluster ([`SharedObjects`]) — so `kubectl get clusterrole cluster-admin` works in an
//! empty workspace that stores nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use kplex_registry::shared::SharedObjects;
use serde_json::{Value, json};

use super::RBAC;

/// The default ClusterRoles' names, in the order kube lists them.
const ROLES: &[&str] = &[
    "admin",
    "cluster-admin",
    "edit",
    "system:basic-user",
    "system:discovery",
    "system:kcp:workspace:access",
    "view",
];

/// (binding, role, group): what every workspace grants without storing it.
const BINDINGS: &[(&str, &str, &str)] = &[
    (
        "cluster-admin",
        "cluster-admin",
        kplex_apimachinery::user::MASTERS,
    ),
    (
        "system:basic-user",
        "system:basic-user",
        "system:authenticated",
    ),
    (
        "system:discovery",
        "system:discovery",
        "system:authenticated",
    ),
];

/// kube marks its bootstrap objects so; tools (and people) recognise them by it.
fn bootstrap_metadata(name: &str) -> Value {
    json!({
        "name": name,
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    })
}

/// kube's user-facing roles aggregate: a workspace's ClusterRoles labelled
/// `aggregate-to-view` extend `view`, and so on up. (aggregating role, label it selects,
/// label it carries itself): `view` feeds `edit`, which feeds `admin`, as in kube.
const AGGREGATING: &[(&str, &str, Option<&str>)] = &[
    ("admin", "aggregate-to-admin", None),
    ("edit", "aggregate-to-edit", Some("aggregate-to-admin")),
    ("view", "aggregate-to-view", Some("aggregate-to-edit")),
];

fn aggregation_label(name: &str) -> String {
    format!("{RBAC}/{name}")
}

fn cluster_role_object(name: &str, rules: Value) -> Value {
    let mut role = json!({"apiVersion": format!("{RBAC}/v1"), "kind": "ClusterRole",
        "metadata": bootstrap_metadata(name), "rules": rules});
    if let Some((_, selects, carries)) = AGGREGATING.iter().find(|(n, ..)| *n == name) {
        role["aggregationRule"] = json!({"clusterRoleSelectors": [
            {"matchLabels": {aggregation_label(selects): "true"}}]});
        if let Some(label) = carries {
            role["metadata"]["labels"][aggregation_label(label)] = json!("true");
        }
    }
    role
}

static CLUSTER_ROLES: LazyLock<BTreeMap<&'static str, Value>> = LazyLock::new(|| {
    ROLES
        .iter()
        .filter_map(|name| Some((*name, cluster_role_object(name, role_rules(name)?))))
        .collect()
});

static BINDING_OBJECTS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    BINDINGS
        .iter()
        .map(|(name, role, group)| {
            json!({"apiVersion": format!("{RBAC}/v1"), "kind": "ClusterRoleBinding",
                "metadata": bootstrap_metadata(name),
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role},
                "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": group}]})
        })
        .collect()
});

/// A default ClusterRole by name.
pub fn cluster_role(name: &str) -> Option<&'static Value> {
    CLUSTER_ROLES.get(name)
}

/// Every default ClusterRole.
pub fn cluster_roles() -> impl Iterator<Item = &'static Value> {
    CLUSTER_ROLES.values()
}

/// The ClusterRoleBindings every workspace has.
pub fn bindings() -> &'static [Value] {
    &BINDING_OBJECTS
}

/// The default ClusterRoles as the registry serves them in every logical cluster.
pub fn shared_cluster_roles() -> Arc<SharedObjects> {
    static SHARED: LazyLock<Arc<SharedObjects>> =
        LazyLock::new(|| Arc::new(SharedObjects::new(CLUSTER_ROLES.values().cloned())));
    SHARED.clone()
}

/// The default ClusterRoleBindings as the registry serves them in every logical cluster.
pub fn shared_cluster_role_bindings() -> Arc<SharedObjects> {
    static SHARED: LazyLock<Arc<SharedObjects>> =
        LazyLock::new(|| Arc::new(SharedObjects::new(BINDING_OBJECTS.iter().cloned())));
    SHARED.clone()
}

/// The API groups of namespaced workloads that `edit` and `view` cover (core first).
const WORKLOAD_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "networking.k8s.io",
    "discovery.k8s.io",
    "coordination.k8s.io",
    "events.k8s.io",
];

/// The core resources kube's `view` reads: everything but Secrets.
const VIEW_CORE: &[&str] = &[
    "bindings",
    "configmaps",
    "endpoints",
    "events",
    "limitranges",
    "namespaces",
    "namespaces/status",
    "persistentvolumeclaims",
    "persistentvolumeclaims/status",
    "pods",
    "pods/log",
    "pods/status",
    "replicationcontrollers",
    "replicationcontrollers/scale",
    "replicationcontrollers/status",
    "resourcequotas",
    "resourcequotas/status",
    "serviceaccounts",
    "services",
    "services/status",
];

/// The rules of each default ClusterRole.
fn role_rules(name: &str) -> Option<Value> {
    let read = ["get", "list", "watch"];
    let write = kplex_registry::catalog::ALL_VERBS;
    let rules = match name {
        "cluster-admin" => {
            json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, {"verbs": ["*"], "nonResourceURLs": ["*"]}])
        }
        "admin" => json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]),
        // As kube's: no roles or role bindings.
        "edit" => json!([
            {"verbs": write, "apiGroups": WORKLOAD_GROUPS, "resources": ["*"]},
        ]),
        // As kube's: no Secrets (their contents are credentials), no RBAC, no custom
        // resources unless a role grants them.
        "view" => json!([
            {"verbs": read, "apiGroups": [""], "resources": VIEW_CORE},
            {"verbs": read, "apiGroups": &WORKLOAD_GROUPS[1..], "resources": ["*"]},
        ]),
        "system:discovery" => {
            json!([{"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version", "/version/", "/healthz", "/livez", "/readyz"]}])
        }
        "system:basic-user" => json!([
            {"verbs": ["create"], "apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]},
            {"verbs": ["create"], "apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"]},
        ]),
        "system:kcp:workspace:access" => json!([{"verbs": ["access"], "nonResourceURLs": ["/"]}]),
        _ => return None,
    };
    Some(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_a_binding_names_exists() {
        for b in bindings() {
            let role = b["roleRef"]["name"].as_str().unwrap();
            assert!(cluster_role(role).is_some(), "{role}");
        }
        assert_eq!(CLUSTER_ROLES.len(), ROLES.len());
        assert!(shared_cluster_roles().contains("cluster-admin"));
        assert!(shared_cluster_role_bindings().contains("system:discovery"));
    }
}

//! RBAC rule evaluation: does a set of Roles, ClusterRoles and their bindings allow one
//! request? Pure functions over the RBAC objects as JSON, so they are cheap to test.

use serde_json::Value;

/// What is being asked for (kube's authorizer.Attributes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub user: String,
    pub groups: Vec<String>,
    pub verb: String,
    /// A resource request, or a non-resource one (`path`).
    pub resource: Option<ResourceAttrs>,
    pub path: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceAttrs {
    pub namespace: Option<String>,
    pub group: String,
    pub resource: String,
    pub subresource: Option<String>,
    pub name: Option<String>,
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn has(list: &[&str], want: &str) -> bool {
    list.iter().any(|v| *v == "*" || *v == want)
}

/// Whether one PolicyRule covers the request.
pub fn rule_allows(rule: &Value, req: &Request) -> bool {
    let verbs = strings(rule.get("verbs"));
    if !has(&verbs, &req.verb) {
        return false;
    }
    match (&req.resource, &req.path) {
        (Some(r), _) => {
            let groups = strings(rule.get("apiGroups"));
            let resources = strings(rule.get("resources"));
            let names = strings(rule.get("resourceNames"));
            let full = match &r.subresource {
                Some(sub) => format!("{}/{sub}", r.resource),
                None => r.resource.clone(),
            };
            let resource_ok = resources.iter().any(|res| {
                *res == "*"
                    || *res == full
                    || (r.subresource.is_some()
                        && *res == format!("*/{}", r.subresource.as_deref().unwrap_or("")))
            });
            let name_ok = names.is_empty() || r.name.as_deref().is_some_and(|n| names.contains(&n));
            has(&groups, &r.group) && resource_ok && name_ok
        }
        (None, Some(path)) => strings(rule.get("nonResourceURLs")).iter().any(|u| {
            *u == "*"
                || *u == path
                || u.strip_suffix('*')
                    .is_some_and(|prefix| path.starts_with(prefix))
        }),
        (None, None) => false,
    }
}

/// Whether a binding's subjects include the requester.
pub fn subject_matches(subject: &Value, req: &Request, binding_namespace: Option<&str>) -> bool {
    let kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = subject.get("name").and_then(Value::as_str).unwrap_or("");
    match kind {
        "User" => name == req.user,
        "Group" => req.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = subject
                .get("namespace")
                .and_then(Value::as_str)
                .or(binding_namespace)
                .unwrap_or("");
            req.user == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

pub fn binding_matches(binding: &Value, req: &Request) -> bool {
    let ns = binding
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    binding
        .get("subjects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|s| subject_matches(s, req, ns))
}

/// The rules of a role (aggregated ClusterRoles are flattened by the caller).
pub fn rules(role: &Value) -> &[Value] {
    role.get("rules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// kube-apiserver's wording of a denial.
pub fn forbidden_message(req: &Request) -> String {
    let who = format!("User \"{}\"", req.user);
    match &req.resource {
        Some(r) => {
            let res = match &r.subresource {
                Some(s) => format!("{}/{s}", r.resource),
                None => r.resource.clone(),
            };
            let scope = match &r.namespace {
                Some(ns) => format!("in the namespace \"{ns}\""),
                None => "at the cluster scope".into(),
            };
            format!(
                "{who} cannot {} resource \"{res}\" in API group \"{}\" {scope}",
                req.verb, r.group
            )
        }
        None => format!(
            "{who} cannot {} path \"{}\"",
            req.verb,
            req.path.as_deref().unwrap_or("")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(
        verb: &str,
        group: &str,
        resource: &str,
        ns: Option<&str>,
        name: Option<&str>,
    ) -> Request {
        Request {
            user: "alice".into(),
            groups: vec!["dev".into(), "system:authenticated".into()],
            verb: verb.into(),
            resource: Some(ResourceAttrs {
                namespace: ns.map(String::from),
                group: group.into(),
                resource: resource.into(),
                subresource: None,
                name: name.map(String::from),
            }),
            path: None,
        }
    }

    #[test]
    fn rules_match_verbs_groups_resources_and_names() {
        let rule = json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"]});
        assert!(rule_allows(
            &rule,
            &req("get", "", "configmaps", Some("ns"), Some("a"))
        ));
        assert!(!rule_allows(
            &rule,
            &req("get", "", "configmaps", Some("ns"), Some("b"))
        ));
        assert!(
            !rule_allows(&rule, &req("list", "", "configmaps", Some("ns"), None)),
            "resourceNames need a name"
        );
        assert!(!rule_allows(
            &rule,
            &req("delete", "", "configmaps", Some("ns"), Some("a"))
        ));
        let star = json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]});
        assert!(rule_allows(
            &star,
            &req("delete", "apps", "deployments", None, None)
        ));
        let mut status = req("update", "apps", "deployments", Some("x"), Some("d"));
        if let Some(r) = status.resource.as_mut() {
            r.subresource = Some("status".into());
        }
        assert!(!rule_allows(
            &json!({"verbs": ["update"], "apiGroups": ["apps"], "resources": ["deployments"]}),
            &status
        ));
        assert!(rule_allows(
            &json!({"verbs": ["update"], "apiGroups": ["apps"], "resources": ["deployments/status"]}),
            &status
        ));
    }

    #[test]
    fn non_resource_urls_and_subjects() {
        let rule = json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*", "/version"]});
        let mut r = Request {
            user: "u".into(),
            verb: "get".into(),
            path: Some("/apis/apps/v1".into()),
            ..Default::default()
        };
        assert!(rule_allows(&rule, &r));
        r.path = Some("/metrics".into());
        assert!(!rule_allows(&rule, &r));
        let binding = json!({"metadata": {"namespace": "team"}, "subjects": [{"kind": "ServiceAccount", "name": "robot"}, {"kind": "Group", "name": "dev"}]});
        assert!(binding_matches(
            &binding,
            &req("get", "", "pods", None, None)
        ));
        let sa = Request {
            user: "system:serviceaccount:team:robot".into(),
            ..Default::default()
        };
        assert!(binding_matches(&binding, &sa));
        assert_eq!(
            forbidden_message(&req("list", "", "configmaps", Some("default"), None)),
            "User \"alice\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""
        );
    }
}

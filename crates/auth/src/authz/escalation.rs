//! RBAC escalation prevention: nobody grants what they do not hold. Writing a Role or
//! ClusterRole needs every permission in it (or the `escalate` verb); writing a binding needs
//! the `bind` verb on the role, or every permission the role grants.

use kplex_apimachinery::{ApiError, meta};
use serde_json::Value;

use super::{Authorizer, Request, ResourceAttrs, rbac};
use crate::registry::admission::{AdmissionPlugin, Attributes};

impl Authorizer {
    /// Whether `user` holds every permission of `rules` in `cluster` (and `namespace`).
    async fn holds(
        &self,
        cluster: &str,
        base: &Request,
        namespace: Option<&str>,
        rules: &[Value],
    ) -> Result<bool, ApiError> {
        for rule in rules {
            let verbs = meta::strings(rule.get("verbs"));
            if let Some(urls) = rule.get("nonResourceURLs") {
                for (verb, path) in verbs.iter().flat_map(|v| {
                    meta::strings(Some(urls))
                        .into_iter()
                        .map(move |u| (v.clone(), u))
                }) {
                    let req = Request {
                        verb,
                        resource: None,
                        path: Some(path),
                        ..base.clone()
                    };
                    if !self.rbac_allows(cluster, &req).await? {
                        return Ok(false);
                    }
                }
                continue;
            }
            let names = meta::strings(rule.get("resourceNames"));
            let names: Vec<Option<String>> = if names.is_empty() {
                vec![None]
            } else {
                names.into_iter().map(Some).collect()
            };
            for verb in &verbs {
                for group in meta::strings(rule.get("apiGroups")) {
                    for resource in meta::strings(rule.get("resources")) {
                        let (resource, subresource) = match resource.split_once('/') {
                            Some((r, s)) => (r.to_string(), Some(s.to_string())),
                            None => (resource, None),
                        };
                        for name in &names {
                            let req = Request {
                                verb: verb.clone(),
                                resource: Some(ResourceAttrs {
                                    namespace: namespace.map(String::from),
                                    group: group.clone(),
                                    resource: resource.clone(),
                                    subresource: subresource.clone(),
                                    name: name.clone(),
                                }),
                                path: None,
                                ..base.clone()
                            };
                            if !self.rbac_allows(cluster, &req).await? {
                                return Ok(false);
                            }
                        }
                    }
                }
            }
        }
        Ok(true)
    }

    fn allowed_verb(
        base: &Request,
        verb: &str,
        resource: &str,
        name: &str,
        namespace: Option<&str>,
    ) -> Request {
        Request {
            verb: verb.into(),
            resource: Some(ResourceAttrs {
                namespace: namespace.map(String::from),
                group: "rbac.authorization.k8s.io".into(),
                resource: resource.into(),
                subresource: None,
                name: Some(name.into()),
            }),
            path: None,
            ..base.clone()
        }
    }

    /// Refuses a Role/ClusterRole/binding write that would grant more than `base.user` holds.
    pub async fn check_escalation(
        &self,
        cluster: &str,
        base: &Request,
        resource: &str,
        obj: &Value,
    ) -> Result<(), ApiError> {
        if base.groups.iter().any(|g| g == super::MASTERS) {
            return Ok(());
        }
        let namespace = obj.pointer("/metadata/namespace").and_then(Value::as_str);
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let denied = |what: &str| {
            ApiError::forbidden(
                "rbac.authorization.k8s.io",
                resource,
                name,
                &format!(
                    "user \"{}\" (groups={:?}) is attempting to grant RBAC permissions not currently held: {what}",
                    base.user, base.groups
                ),
            )
        };
        match resource {
            "roles" | "clusterroles" => {
                let escalate = Self::allowed_verb(base, "escalate", resource, name, namespace);
                if self.rbac_allows(cluster, &escalate).await? {
                    return Ok(());
                }
                if !self
                    .holds(cluster, base, namespace, rbac::rules(obj))
                    .await?
                {
                    return Err(denied("the role's rules"));
                }
            }
            "rolebindings" | "clusterrolebindings" => {
                let kind = obj
                    .pointer("/roleRef/kind")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let role = obj
                    .pointer("/roleRef/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let role_resource = if kind == "Role" {
                    "roles"
                } else {
                    "clusterroles"
                };
                let bind = Self::allowed_verb(base, "bind", role_resource, role, namespace);
                if self.rbac_allows(cluster, &bind).await? {
                    return Ok(());
                }
                let cluster_roles = self.objects("clusterroles", cluster, None).await?;
                let rules = self.role_rules(cluster, obj, &cluster_roles).await?;
                if !self.holds(cluster, base, namespace, &rules).await? {
                    return Err(denied(&format!("the rules of {kind} {role:?}")));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// RBAC escalation prevention as an admission plugin: a Role, ClusterRole or binding about
/// to be created or updated by someone outside `system:masters`.
pub struct EscalationCheck(pub Authorizer);

#[async_trait::async_trait]
impl AdmissionPlugin for EscalationCheck {
    fn name(&self) -> &'static str {
        "rbac-escalation"
    }

    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let (Some(user), Some(obj)) = (attrs.user, obj) else {
            return Ok(());
        };
        if attrs.scope.desc.group != super::RBAC || user.is_master() {
            return Ok(());
        }
        let base = Request {
            user: user.name.clone(),
            groups: user.groups.clone(),
            ..Default::default()
        };
        self.0
            .check_escalation(attrs.cluster, &base, &attrs.scope.desc.plural, obj)
            .await
    }
}

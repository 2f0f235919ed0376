//! Access reviews (`authorization.k8s.io/v1`): SelfSubjectAccessReview (`kubectl auth can-i`),
//! SubjectAccessReview, and SelfSubjectRulesReview (`kubectl auth can-i --list`). Answered
//! from the same authorizer as real requests; never stored.

use kplex_apimachinery::ApiError;
use serde_json::{Value, json};

use kplex_registry::virtual_resource::{Answer, VirtualRequest, VirtualResource};

use super::{Authorizer, MASTERS, Request, ResourceAttrs, bootstrap, rbac};

/// Where reviews sent to the wildcard view are answered.
const ROOT_CLUSTER: &str = "root";

fn s(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

/// The request an access review asks about.
fn reviewed_request(spec: &Value, user: &str, groups: &[String]) -> Request {
    let mut req = Request {
        user: user.to_string(),
        groups: groups.to_vec(),
        ..Default::default()
    };
    if let Some(ra) = spec.get("resourceAttributes") {
        req.verb = s(ra, "verb");
        req.resource = Some(ResourceAttrs {
            namespace: Some(s(ra, "namespace")).filter(|n| !n.is_empty()),
            group: s(ra, "group"),
            resource: s(ra, "resource"),
            subresource: Some(s(ra, "subresource")).filter(|n| !n.is_empty()),
            name: Some(s(ra, "name")).filter(|n| !n.is_empty()),
        });
    } else if let Some(nra) = spec.get("nonResourceAttributes") {
        req.verb = s(nra, "verb");
        req.path = Some(s(nra, "path"));
    }
    req
}

impl Authorizer {
    async fn decide(&self, cluster: &str, req: &Request) -> Result<Value, ApiError> {
        Ok(match self.authorize(Some(cluster), req).await {
            Ok(()) => json!({"allowed": true, "reason": "allowed by RBAC"}),
            // kube's RBAC authorizer gives no reason for "no opinion"; kubectl prints just "no".
            Err(e) if e.is_forbidden() => json!({"allowed": false}),
            Err(e) => return Err(e),
        })
    }

    /// Answers an access review posted by `user` in `cluster`; `resource` is the review's
    /// plural. None if `resource` is not an access review.
    pub async fn review(
        &self,
        cluster: &str,
        resource: &str,
        user: &str,
        groups: &[String],
        mut body: Value,
    ) -> Result<Option<Value>, ApiError> {
        let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
        let status = match resource {
            "selfsubjectaccessreviews" => {
                self.decide(cluster, &reviewed_request(&spec, user, groups))
                    .await?
            }
            "subjectaccessreviews" | "localsubjectaccessreviews" => {
                let groups: Vec<String> = spec
                    .get("groups")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect();
                self.decide(
                    cluster,
                    &reviewed_request(&spec, &s(&spec, "user"), &groups),
                )
                .await?
            }
            "selfsubjectrulesreviews" => {
                self.rules(cluster, user, groups, &s(&spec, "namespace"))
                    .await?
            }
            _ => return Ok(None),
        };
        if let Some(m) = body.as_object_mut() {
            m.insert("status".into(), status);
            m.entry("metadata")
                .or_insert_with(|| json!({"creationTimestamp": null}));
        }
        Ok(Some(body))
    }

    /// Every rule `user` holds in `cluster` (cluster-wide plus `namespace`).
    async fn rules(
        &self,
        cluster: &str,
        user: &str,
        groups: &[String],
        namespace: &str,
    ) -> Result<Value, ApiError> {
        if groups.iter().any(|g| g == MASTERS) {
            return Ok(json!({
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": false,
            }));
        }
        let req = Request {
            user: user.to_string(),
            groups: groups.to_vec(),
            ..Default::default()
        };
        let cluster_roles = self.objects("clusterroles", cluster, None).await?;
        let mut bindings = bootstrap::bindings().to_vec();
        bindings.extend(self.objects("clusterrolebindings", cluster, None).await?);
        if !namespace.is_empty() {
            bindings.extend(
                self.objects("rolebindings", cluster, Some(namespace))
                    .await?,
            );
        }
        let (mut resource_rules, mut non_resource_rules) = (Vec::new(), Vec::new());
        for binding in bindings.iter().filter(|b| rbac::binding_matches(b, &req)) {
            for rule in self.role_rules(cluster, binding, &cluster_roles).await? {
                if rule.get("nonResourceURLs").is_some() {
                    non_resource_rules.push(
                        json!({"verbs": rule["verbs"], "nonResourceURLs": rule["nonResourceURLs"]}),
                    );
                } else {
                    let mut r = json!({"verbs": rule["verbs"], "apiGroups": rule["apiGroups"], "resources": rule["resources"]});
                    if let Some(names) = rule.get("resourceNames") {
                        r["resourceNames"] = names.clone();
                    }
                    resource_rules.push(r);
                }
            }
        }
        Ok(
            json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false}),
        )
    }
}

/// SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview and
/// SelfSubjectRulesReview (create only), answered in the addressed logical cluster (root for
/// the wildcard view).
pub struct AccessReviews(pub Authorizer);

#[async_trait::async_trait]
impl VirtualResource for AccessReviews {
    fn handles(&self, req: &VirtualRequest<'_>) -> bool {
        req.desc.group == "authorization.k8s.io"
    }

    async fn serve(&self, req: &VirtualRequest<'_>) -> Result<Answer, ApiError> {
        let desc = req.desc;
        if req.verb != "create" {
            return Err(ApiError::method_not_supported(
                &desc.group,
                &desc.plural,
                req.verb,
            ));
        }
        let review = kplex_registry::codec::decode_typed(
            req.content_type,
            req.body,
            (&desc.group, &desc.version, &desc.kind),
        )?;
        let cluster = req.cluster.unwrap_or(ROOT_CLUSTER);
        let user = req.user;
        match self
            .0
            .review(cluster, &desc.plural, &user.name, &user.groups, review)
            .await?
        {
            Some(object) => Ok(Answer { code: 201, object }),
            None => Err(ApiError::method_not_supported(
                &desc.group,
                &desc.plural,
                req.verb,
            )),
        }
    }
}

//! ClusterRole aggregation (kube's clusterrole-aggregation controller): a stored ClusterRole
//! with an `aggregationRule` gets, as its `.rules`, the rules of the workspace's ClusterRoles
//! its selectors match — the shared bootstrap roles included. The authorizer already grants
//! the aggregate at once; this makes it visible to clients (`kubectl describe clusterrole`).

use kplex_apimachinery::{ApiError, meta};
use kplex_auth::authz::aggregation;
use kplex_registry::registry::{ListOptions, WriteOptions};
use serde_json::Value;

use super::Builtins;

impl Builtins {
    /// Rewrites the rules of every aggregating ClusterRole stored in `cluster` that differ
    /// from what it aggregates now.
    pub(super) async fn reconcile_aggregation(&self, cluster: &str) -> Result<bool, ApiError> {
        let Some(desc) = self.desc(cluster, "rbac.authorization.k8s.io", "v1", "clusterroles")
        else {
            return Ok(true);
        };
        let scope = self.scope(cluster, desc, None);
        let list = self.registry.list(&scope, &ListOptions::default()).await?;
        let mut roles = Vec::with_capacity(list.items.len());
        let mut stored = Vec::new();
        for item in &list.items {
            let role = item.decode()?;
            let name = meta::name(&role).unwrap_or("").to_string();
            if aggregation::aggregates(&role) && !scope.is_shared_item(&name, item) {
                stored.push(roles.len());
            }
            roles.push(role);
        }
        let all: Vec<&Value> = roles.iter().collect();
        for &i in &stored {
            let role = &roles[i];
            let rules = Value::Array(aggregation::aggregated_rules(role, &all));
            if role.get("rules").unwrap_or(&Value::Null) == &rules
                || (role.get("rules").is_none() && rules == Value::Array(Vec::new()))
            {
                continue;
            }
            let name = meta::name(role).unwrap_or("");
            let result = self
                .registry
                .update_with(&scope, name, &WriteOptions::default(), move |cur, _| {
                    let mut next = cur.clone();
                    next["rules"] = rules.clone();
                    Ok(next)
                })
                .await;
            match result {
                // Deleted meanwhile: nothing to aggregate into.
                Err(e) if e.is_not_found() => {}
                other => {
                    other?;
                }
            }
        }
        Ok(true)
    }
}

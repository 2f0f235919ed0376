//! ClusterRole aggregation (kube's clusterrole-aggregation controller): a ClusterRole with
//! an `aggregationRule` holds the rules of every ClusterRole of its workspace whose labels
//! one of its `clusterRoleSelectors` matches. Pure functions over the roles as JSON: the
//! authorizer applies them when it evaluates a binding (so aggregation takes effect at once,
//! and for the shared bootstrap roles too), and the built-ins' controller writes the result
//! into stored roles' `.rules`, as kube does, so clients see it.

use std::collections::BTreeSet;

use kplex_apimachinery::meta;
use kplex_apimachinery::selector::LabelSelector;
use serde_json::Value;

use super::rbac;

/// The role's label selectors, or None when it does not aggregate. A selector that does not
/// parse selects nothing (kube's controller skips it).
fn selectors(role: &Value) -> Option<Vec<LabelSelector>> {
    let list = role
        .pointer("/aggregationRule/clusterRoleSelectors")?
        .as_array()?;
    Some(
        list.iter()
            .filter_map(|s| LabelSelector::from_json(s).ok())
            .collect(),
    )
}

/// Whether a ClusterRole's rules are made by aggregation.
pub fn aggregates(role: &Value) -> bool {
    role.get("aggregationRule").is_some_and(|r| !r.is_null())
}

/// The rules `role` aggregates from `roles` (every ClusterRole of its workspace, itself
/// included or not), in kube's order: the matching roles by name, each rule once. A
/// matching role that aggregates in turn contributes what it aggregates (kube reaches the
/// same fixpoint over several passes; a cycle is cut where it closes).
pub fn aggregated_rules(role: &Value, roles: &[&Value]) -> Vec<Value> {
    let mut visiting = BTreeSet::new();
    let mut rules = Vec::new();
    collect(role, roles, &mut visiting, &mut rules);
    rules
}

fn collect<'a>(
    role: &'a Value,
    roles: &[&'a Value],
    visiting: &mut BTreeSet<&'a str>,
    out: &mut Vec<Value>,
) {
    let Some(selectors) = selectors(role) else {
        return;
    };
    visiting.insert(meta::name(role).unwrap_or(""));
    let mut matching: Vec<&Value> = roles
        .iter()
        .copied()
        .filter(|r| !visiting.contains(meta::name(r).unwrap_or("")))
        .filter(|r| selectors.iter().any(|s| s.matches_object(r)))
        .collect();
    matching.sort_by_key(|r| meta::name(r).unwrap_or(""));
    for source in matching {
        if aggregates(source) {
            collect(source, roles, visiting, out);
        }
        for rule in rbac::rules(source) {
            if !out.contains(rule) {
                out.push(rule.clone());
            }
        }
    }
}

/// What a ClusterRole grants when evaluated: its own rules, and for an aggregating role what
/// it aggregates now (a stored role's `.rules` may lag the controller by a moment).
pub fn effective_rules(role: &Value, roles: &[&Value]) -> Vec<Value> {
    let mut rules = rbac::rules(role).to_vec();
    if aggregates(role) {
        for rule in aggregated_rules(role, roles) {
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(name: &str, labels: Value, rules: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "rules": rules})
    }

    fn rule(resource: &str) -> Value {
        json!({"verbs": ["get"], "apiGroups": ["x.io"], "resources": [resource]})
    }

    #[test]
    fn matching_roles_give_their_rules_in_name_order_once() {
        let mut agg = role("monitoring", json!({}), json!([]));
        agg["aggregationRule"] =
            json!({"clusterRoleSelectors": [{"matchLabels": {"aggregate-to-monitoring": "true"}}]});
        let b = role(
            "b",
            json!({"aggregate-to-monitoring": "true"}),
            json!([rule("bs"), rule("as")]),
        );
        let a = role(
            "a",
            json!({"aggregate-to-monitoring": "true"}),
            json!([rule("as")]),
        );
        let other = role("c", json!({"team": "x"}), json!([rule("cs")]));
        let all = [&agg, &b, &a, &other];
        assert_eq!(
            aggregated_rules(&agg, &all),
            vec![rule("as"), rule("bs")],
            "a's rule first, b's duplicate dropped, c not selected"
        );
        assert!(
            aggregated_rules(&a, &all).is_empty(),
            "a does not aggregate"
        );
    }

    #[test]
    fn aggregation_chains_and_cycles_end() {
        let selecting = |name: &str, label: &str, labels: Value| {
            let mut r = role(name, labels, json!([rule(name)]));
            r["aggregationRule"] =
                json!({"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]});
            r
        };
        // admin ← edit ← view ← crd-viewer, as kube's defaults chain; view also selects admin
        // (a cycle someone could write).
        let admin = selecting("admin", "to-admin", json!({"to-view": "true"}));
        let edit = selecting("edit", "to-edit", json!({"to-admin": "true"}));
        let view = selecting("view", "to-view", json!({"to-edit": "true"}));
        let crd = role(
            "crd-viewer",
            json!({"to-view": "true"}),
            json!([rule("widgets")]),
        );
        let all = [&admin, &edit, &view, &crd];
        let got = effective_rules(&admin, &all);
        for want in ["admin", "edit", "view", "widgets"] {
            assert!(got.contains(&rule(want)), "{want} in {got:?}");
        }
        let view_rules = effective_rules(&view, &all);
        assert!(view_rules.contains(&rule("widgets")));
        assert!(
            view_rules.contains(&rule("admin")),
            "the cycle is followed once"
        );
    }

    #[test]
    fn a_role_without_a_rule_or_with_a_bad_selector_aggregates_nothing() {
        let plain = role("p", json!({}), json!([rule("ps")]));
        assert_eq!(effective_rules(&plain, &[&plain]), vec![rule("ps")]);
        let mut bad = role("bad", json!({}), json!([]));
        bad["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchExpressions": [{"key": "k", "operator": "Nope"}]}]});
        assert!(aggregated_rules(&bad, &[&bad, &plain]).is_empty());
    }
}

//! CRD establishing (names accepted, conditions, served resources) and cleanup (custom
//! resources deleted before the CRD's finalizer is released).

use std::sync::Arc;

use kplex_apimachinery::{ApiError, meta};
use kplex_registry::catalog::Origin;
use kplex_registry::crd::{self, CLEANUP_FINALIZER};
use kplex_registry::registry::{Scope, WriteOptions};
use serde_json::{Value, json};

use super::Builtins;

impl Builtins {
    /// Establishes a CRD (conditions, served resources) or, when it is being deleted, removes
    /// its custom resources and then its finalizer. Ok(false) = try again later.
    pub(super) async fn reconcile_crd(&self, cluster: &str, name: &str) -> Result<bool, ApiError> {
        let Some(desc) = self.desc(
            cluster,
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
        ) else {
            return Ok(true);
        };
        let scope = self.scope(cluster, desc, None);
        let crd = match self.registry.get(&scope, name).await {
            Ok(s) => s.decode()?,
            Err(e) if e.is_not_found() => {
                self.served.remove_crd(cluster, name);
                return Ok(true);
            }
            Err(e) => return Err(e),
        };
        if meta::deletion_timestamp(&crd).is_some() {
            return self.cleanup_crd(&scope, cluster, name, &crd).await;
        }
        let status = self.crd_status(cluster, name, &crd);
        if crd.get("status") != Some(&status) {
            let status = status.clone();
            let opts = WriteOptions {
                subresource: Some("status".into()),
                ..Default::default()
            };
            self.registry
                .update_with(&scope, name, &opts, move |cur, _| {
                    let mut next = cur.clone();
                    next["status"] = status.clone();
                    Ok(next)
                })
                .await?;
        }
        if crd::condition_true(&json!({"status": status}), "Established") {
            self.served.set_crd(cluster, name, crd::descriptions(&crd));
        }
        Ok(true)
    }

    fn crd_status(&self, cluster: &str, name: &str, crd: &Value) -> Value {
        let spec = crd.get("spec").cloned().unwrap_or(Value::Null);
        let group = spec.get("group").and_then(Value::as_str).unwrap_or("");
        let mut names = spec.get("names").cloned().unwrap_or_else(|| json!({}));
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if names.get("singular").is_none() {
            names["singular"] = json!(kind.to_ascii_lowercase());
        }
        if names.get("listKind").is_none() {
            names["listKind"] = json!(format!("{kind}List"));
        }
        let plural = names.get("plural").and_then(Value::as_str).unwrap_or("");
        let conflict = self.served.resources(Some(cluster)).iter().any(|d| {
            d.group == group
                && d.plural == plural
                && !matches!(&d.origin, Origin::Crd { name: n, .. } if n == name)
        });
        let now = meta::now_rfc3339();
        let previous = |t: &str| -> Option<String> {
            crd.get("status")?
                .get("conditions")?
                .as_array()?
                .iter()
                .find(|c| c["type"] == t)?
                .get("lastTransitionTime")?
                .as_str()
                .map(String::from)
        };
        let condition = |t: &str, ok: bool, reason: &str, message: &str| json!({"type": t, "status": if ok { "True" } else { "False" }, "lastTransitionTime": previous(t).unwrap_or_else(|| now.clone()), "reason": reason, "message": message});
        let storage: Vec<Value> = spec
            .get("versions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .filter_map(|v| v.get("name").cloned())
            .collect();
        let mut stored_versions: Vec<Value> = crd
            .get("status")
            .and_then(|s| s.get("storedVersions"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for v in storage {
            if !stored_versions.contains(&v) {
                stored_versions.push(v);
            }
        }
        let conditions = if conflict {
            vec![
                condition(
                    "NamesAccepted",
                    false,
                    "NameConflict",
                    &format!("\"{plural}\" is already in use"),
                ),
                condition(
                    "Established",
                    false,
                    "NotAccepted",
                    "not all names are accepted",
                ),
            ]
        } else {
            vec![
                condition("NamesAccepted", true, "NoConflicts", "no conflicts found"),
                condition(
                    "Established",
                    true,
                    "InitialNamesAccepted",
                    "the initial names have been accepted",
                ),
            ]
        };
        json!({"conditions": conditions, "acceptedNames": names, "storedVersions": stored_versions})
    }

    async fn cleanup_crd(
        &self,
        scope: &Scope,
        cluster: &str,
        name: &str,
        crd: &Value,
    ) -> Result<bool, ApiError> {
        self.served.remove_crd(cluster, name);
        let descs = crd::descriptions(crd);
        if let Some(d) = descs.into_iter().next() {
            // Every version shares one storage location: deleting through one is enough.
            let remaining = self.delete_all(cluster, Arc::new(d), None).await?;
            if remaining > 0 {
                return Ok(false);
            }
        }
        self.registry
            .remove_finalizer(scope, name, CLEANUP_FINALIZER)
            .await?;
        Ok(true)
    }
}

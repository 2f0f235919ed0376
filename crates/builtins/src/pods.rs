//! The pod subresources that are requests rather than fields: `binding` (how a scheduler
//! places a pod on a node) and `eviction` (a delete that respects disruption budgets).
//! Both are POST-only and answer kube's `Status` of success.

use std::sync::Arc;

use async_trait::async_trait;
use kplex_apimachinery::selector::LabelSelector;
use kplex_apimachinery::{ApiError, StatusCause, StatusDetails, meta};
use kplex_registry::codec::decode_typed;
use kplex_registry::registry::{DeleteOptions, ListOptions, Registry, Scope, WriteOptions};
use kplex_registry::served::Served;
use kplex_registry::virtual_resource::{Answer, VirtualRequest, VirtualResource};
use serde_json::{Value, json};

/// `pods/binding` and `pods/eviction`.
pub struct PodRequests {
    pub registry: Registry,
    pub served: Arc<Served>,
}

#[async_trait]
impl VirtualResource for PodRequests {
    fn handles(&self, req: &VirtualRequest<'_>) -> bool {
        req.desc.group.is_empty()
            && req.desc.plural == "pods"
            && matches!(req.subresource, Some("binding" | "eviction"))
    }

    async fn serve(&self, req: &VirtualRequest<'_>) -> Result<Answer, ApiError> {
        let sub = req.subresource.unwrap_or_default();
        if req.verb != "create" || req.cluster.is_none() {
            return Err(ApiError::method_not_supported(
                "",
                &format!("pods/{sub}"),
                req.verb,
            ));
        }
        let scope = Scope {
            cluster: req.cluster.map(String::from),
            desc: req.desc.clone(),
            namespace: req.namespace.map(String::from),
        };
        let name = req.name.unwrap_or_default();
        if sub == "binding" {
            self.bind(&scope, name, req).await?;
        } else {
            self.evict(&scope, name, req).await?;
        }
        Ok(Answer {
            code: 201,
            object: json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Success", "code": 201,
            }),
        })
    }
}

impl PodRequests {
    /// kube's BindingREST: sets `spec.nodeName` (once: a bound pod stays where it is) and the
    /// `PodScheduled` condition, and copies the binding's annotations onto the pod.
    async fn bind(
        &self,
        scope: &Scope,
        name: &str,
        req: &VirtualRequest<'_>,
    ) -> Result<(), ApiError> {
        let binding = decode_typed(req.content_type, req.body, ("", "v1", "Binding"))?;
        if let Some(other) = meta::name(&binding).filter(|n| !n.is_empty() && *n != name) {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({other}) does not match the name on the URL ({name})"
            )));
        }
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = binding.pointer("/target/kind").and_then(Value::as_str);
        if node.is_empty() || kind.is_some_and(|k| !k.is_empty() && k != "Node") {
            return Err(ApiError::invalid(
                "",
                "Binding",
                name,
                vec![StatusCause::required(
                    "target.name",
                    "a binding's target must name a Node",
                )],
            ));
        }
        let annotations = meta::annotations(&binding);
        let opts = WriteOptions {
            subresource: Some("binding".into()),
            system: true,
            user: Some(Arc::new(req.user.clone())),
            ..Default::default()
        };
        let conflict = |why: String| ApiError::conflict("", "pods/binding", name, &why);
        self.registry
            .update_with(scope, name, &opts, |pod, _| {
                if meta::deletion_timestamp(pod).is_some() {
                    return Err(conflict(format!(
                        "pod {name} is being deleted, cannot be assigned to a host"
                    )));
                }
                let current = pod.pointer("/spec/nodeName").and_then(Value::as_str);
                if let Some(current) = current.filter(|n| !n.is_empty()) {
                    return Err(conflict(format!(
                        "pod {name} is already assigned to node \"{current}\""
                    )));
                }
                let mut pod = pod.clone();
                meta::set_path(&mut pod, &["spec", "nodeName"], json!(node));
                set_scheduled(&mut pod);
                if !annotations.is_empty() {
                    let mut merged = meta::annotations(&pod);
                    merged.extend(annotations.clone());
                    meta::set_annotations(&mut pod, merged);
                }
                Ok(pod)
            })
            .await?;
        Ok(())
    }

    /// kube's EvictionREST: deletes the pod unless a PodDisruptionBudget that selects it
    /// allows no disruption now (429, so that `kubectl drain` retries).
    async fn evict(
        &self,
        scope: &Scope,
        name: &str,
        req: &VirtualRequest<'_>,
    ) -> Result<(), ApiError> {
        let eviction = if req.body.is_empty() {
            json!({})
        } else {
            decode_typed(req.content_type, req.body, ("policy", "v1", "Eviction"))?
        };
        let pod = self.registry.get(scope, name).await?.decode()?;
        let terminal = matches!(
            pod.pointer("/status/phase").and_then(Value::as_str),
            Some("Succeeded" | "Failed")
        );
        if !terminal {
            self.check_budgets(scope, &pod).await?;
        }
        let options = eviction.get("deleteOptions");
        let string_at = |field: &str| {
            options
                .and_then(|o| o.pointer(field))
                .and_then(Value::as_str)
                .map(String::from)
        };
        let opts = DeleteOptions {
            dry_run: options
                .and_then(|o| o.get("dryRun"))
                .and_then(Value::as_array)
                .is_some_and(|d| !d.is_empty()),
            propagation_policy: string_at("/propagationPolicy"),
            precondition_uid: string_at("/preconditions/uid"),
            precondition_resource_version: string_at("/preconditions/resourceVersion"),
            user: Some(Arc::new(req.user.clone())),
        };
        self.registry.delete(scope, name, &opts).await?;
        Ok(())
    }

    async fn check_budgets(&self, scope: &Scope, pod: &Value) -> Result<(), ApiError> {
        let Some(desc) = self.served.lookup(
            scope.cluster.as_deref(),
            "policy",
            "v1",
            "poddisruptionbudgets",
        ) else {
            return Ok(());
        };
        let budgets = Scope {
            desc,
            ..scope.clone()
        };
        let labels = meta::labels(pod);
        let list = self
            .registry
            .list(&budgets, &ListOptions::default())
            .await?;
        let mut matching = Vec::new();
        for stored in &list.items {
            let pdb = stored.decode()?;
            let selects = pdb
                .pointer("/spec/selector")
                .and_then(|s| LabelSelector::from_json(s).ok())
                .is_some_and(|s| !s.is_empty() && s.matches(&labels));
            if selects {
                matching.push(pdb);
            }
        }
        match matching.as_slice() {
            [] => Ok(()),
            [pdb] => budget_allows(pdb),
            _ => Err(ApiError::new(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            )),
        }
    }
}

fn budget_allows(pdb: &Value) -> Result<(), ApiError> {
    let name = meta::name(pdb).unwrap_or_default();
    let int = |path: &str| pdb.pointer(path).and_then(Value::as_i64).unwrap_or(0);
    if int("/status/observedGeneration") < meta::generation(pdb) {
        return Err(budget_violation(
            format!("The disruption budget {name} is still being processed by the server."),
            10,
        ));
    }
    if int("/status/disruptionsAllowed") <= 0 {
        return Err(budget_violation(
            format!(
                "The disruption budget {name} needs {} healthy pods and has {} currently",
                int("/status/desiredHealthy"),
                int("/status/currentHealthy"),
            ),
            0,
        ));
    }
    Ok(())
}

/// kube's answer to an eviction a budget forbids: 429 with a `DisruptionBudget` cause (a
/// retry suggestion only while the budget is being processed).
fn budget_violation(why: String, retry_after_seconds: u32) -> ApiError {
    ApiError {
        details: Some(StatusDetails {
            causes: vec![StatusCause {
                reason: "DisruptionBudget".into(),
                message: why,
                field: String::new(),
            }],
            retry_after_seconds: (retry_after_seconds > 0).then_some(retry_after_seconds),
            ..Default::default()
        }),
        ..ApiError::new(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
        )
    }
}

/// The `PodScheduled=True` condition a binding adds (replacing an earlier one).
fn set_scheduled(pod: &mut Value) {
    let condition = json!({
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": meta::now_rfc3339(),
    });
    let mut conditions: Vec<Value> = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    conditions.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
    conditions.push(condition);
    meta::set_path(pod, &["status", "conditions"], Value::Array(conditions));
}

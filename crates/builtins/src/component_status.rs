//! `componentstatuses` (deprecated in kube since 1.19, still served): the health of the
//! control plane's parts, probed on each request as kube-apiserver probes its etcd servers,
//! scheduler and controller manager. kplex's parts run in one process, so what can fail on
//! its own is the store; the controllers and placement's scheduler answer when the process
//! does.

use std::sync::Arc;

use async_trait::async_trait;
use kplex_apimachinery::ApiError;
use kplex_registry::registry::Registry;
use kplex_registry::virtual_resource::{Answer, VirtualRequest, VirtualResource};
use serde_json::{Value, json};

/// Answers GET and LIST of `componentstatuses` in every workspace.
pub struct ComponentStatuses {
    pub registry: Registry,
}

/// The components, in kube's order of names.
const COMPONENTS: &[&str] = &["controller-manager", "scheduler", "storage"];

#[async_trait]
impl VirtualResource for ComponentStatuses {
    fn handles(&self, req: &VirtualRequest<'_>) -> bool {
        req.desc.group.is_empty() && req.desc.plural == "componentstatuses"
    }

    async fn serve(&self, req: &VirtualRequest<'_>) -> Result<Answer, ApiError> {
        match (req.verb, req.name) {
            ("get", Some(name)) => {
                if !COMPONENTS.contains(&name) {
                    return Err(ApiError::not_found("", "componentstatuses", name));
                }
                Ok(Answer {
                    code: 200,
                    object: self.probe(name).await,
                })
            }
            ("list", _) => {
                let mut items = Vec::new();
                for name in COMPONENTS {
                    items.push(self.probe(name).await);
                }
                Ok(Answer {
                    code: 200,
                    object: json!({"kind": "ComponentStatusList", "apiVersion": "v1",
                        "metadata": {}, "items": items}),
                })
            }
            (verb, _) => Err(ApiError::method_not_supported(
                "",
                "componentstatuses",
                verb,
            )),
        }
    }
}

impl ComponentStatuses {
    pub fn new(registry: Registry) -> Arc<Self> {
        Arc::new(Self { registry })
    }

    /// One component's status now: the store must answer a status read; the in-process
    /// parts are as healthy as the process answering.
    async fn probe(&self, name: &str) -> Value {
        let result = match name {
            "storage" => self
                .registry
                .store
                .status()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            _ => Ok(()),
        };
        let (status, message, error) = match result {
            Ok(()) => ("True", "ok", String::new()),
            Err(e) => ("False", "", e),
        };
        json!({
            "kind": "ComponentStatus", "apiVersion": "v1",
            "metadata": {"name": name},
            "conditions": [{"type": "Healthy", "status": status, "message": message, "error": error}],
        })
    }
}

//! Dynamic admission: the `MutatingWebhookConfiguration` and `ValidatingWebhookConfiguration`
//! objects *of the logical cluster being written to* call out to webhooks, in
//! kube-apiserver's order: the server's own defaulting → mutating webhooks (configurations
//! and webhooks in name order, each may answer a JSONPatch) → schema and validation →
//! validating webhooks (concurrently).

pub mod webhook;

use std::time::{Duration, Instant};

use base64::Engine;
use kplex_apimachinery::selector::LabelSelector;
use kplex_apimachinery::{ApiError, meta, patch};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use serde_json::{Map, Value, json};

use std::sync::Arc;

use async_trait::async_trait;
use kplex_store::Store;

use crate::object::keys;
use crate::registry::admission::{AdmissionPlugin, Attributes, Operation};
use crate::registry::cache::WatchCaches;
use crate::registry::{Registry, Scope, store_error};

const GROUP: &str = "admissionregistration.k8s.io";
const MUTATING: &str = "mutatingwebhookconfigurations";
const VALIDATING: &str = "validatingwebhookconfigurations";

/// Calls a logical cluster's admission webhooks (an [`AdmissionPlugin`]). Stateless:
/// configurations are read from the watch cache at each write, so a new configuration applies
/// as soon as the cache has it.
pub struct Webhooks {
    caches: Arc<WatchCaches>,
    store: Arc<dyn Store>,
    durations: WebhookDurations,
}

/// kube-apiserver's `apiserver_admission_webhook_admission_duration_seconds`: each call's
/// latency by webhook `name`, `operation`, `rejected` and `type` (`admit` or `validating`).
/// One series per webhook — configured by tenants, so its count follows their webhooks, not
/// their workspaces.
type WebhookDurations = Family<Vec<(&'static str, String)>, Histogram, fn() -> Histogram>;

fn webhook_histogram() -> Histogram {
    Histogram::new([0.005, 0.025, 0.1, 0.5, 1.0, 2.5, 10.0, 25.0])
}

impl Webhooks {
    pub fn new(registry: &Registry, metrics: &mut prometheus_client::registry::Registry) -> Self {
        let durations = WebhookDurations::new_with_constructor(webhook_histogram);
        metrics.register_with_unit(
            "apiserver_admission_webhook_admission_duration",
            "Admission webhook latency, identified by name and broken out for each operation and API resource and type (validating or admit)",
            prometheus_client::registry::Unit::Seconds,
            durations.clone(),
        );
        Self {
            caches: registry.caches.clone(),
            store: registry.store.clone(),
            durations,
        }
    }

    /// Calls `hook` and records how long it took and whether it rejected the request.
    async fn timed_call(
        &self,
        hook: &Hook,
        review: &Value,
        kind: &'static str,
        operation: Operation,
    ) -> Result<Value, String> {
        let started = Instant::now();
        let result = call(hook, review).await;
        let rejected = match &result {
            Ok(resp) => resp.get("allowed").and_then(Value::as_bool) != Some(true),
            Err(_) => true,
        };
        let labels = vec![
            ("name", hook.name.clone()),
            ("operation", operation.as_str().to_string()),
            ("rejected", rejected.to_string()),
            ("type", kind.to_string()),
        ];
        self.durations
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
        result
    }
}

#[async_trait]
impl AdmissionPlugin for Webhooks {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    /// Mutating webhooks for a CREATE or UPDATE; `obj` is replaced by their patches.
    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if exempt(attrs.scope) {
            return Ok(());
        }
        let configs = self.configurations(MUTATING, attrs.cluster).await?;
        if configs.is_empty() {
            return Ok(());
        }
        for hook in webhooks(&configs) {
            if !self.matches(attrs, &hook, Some(obj), old).await? {
                continue;
            }
            let review = review(attrs, Some(obj), old);
            match self
                .timed_call(&hook, &review, "admit", attrs.operation)
                .await
            {
                Ok(resp) => {
                    check_allowed(&hook, &resp)?;
                    if let Some(patched) = apply_patch(&hook, &resp, obj)? {
                        *obj = patched;
                    }
                }
                Err(e) => hook.on_failure(e)?,
            }
        }
        Ok(())
    }

    /// Validating webhooks, all at once as kube-apiserver calls them; the first rejection
    /// in name order wins.
    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if exempt(attrs.scope) {
            return Ok(());
        }
        self.validate_with(attrs, obj, old).await
    }
}

impl Webhooks {
    async fn validate_with(
        &self,
        attrs: &Attributes<'_>,
        obj: Option<&Value>,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let configs = self.configurations(VALIDATING, attrs.cluster).await?;
        if configs.is_empty() {
            return Ok(());
        }
        let mut matching = Vec::new();
        for hook in webhooks(&configs) {
            if self.matches(attrs, &hook, obj, old).await? {
                matching.push(hook);
            }
        }
        // All at once, as kube-apiserver does; the first rejection in name order wins.
        let calls = matching.iter().map(|hook| async move {
            let review = review(attrs, obj, old);
            match self
                .timed_call(hook, &review, "validating", attrs.operation)
                .await
            {
                Ok(resp) => check_allowed(hook, &resp),
                Err(e) => hook.on_failure(e),
            }
        });
        for outcome in futures::future::join_all(calls).await {
            outcome?;
        }
        Ok(())
    }

    /// The configurations of one kind in `cluster`, in name order.
    async fn configurations(&self, resource: &str, cluster: &str) -> Result<Vec<Value>, ApiError> {
        let (items, _) = self
            .caches
            .list(
                &keys::resource_prefix(GROUP, resource),
                &keys::cluster_prefix(GROUP, resource, cluster),
                None,
            )
            .await?;
        let mut objs = items
            .iter()
            .map(|s| s.decode())
            .collect::<Result<Vec<_>, _>>()?;
        objs.sort_by(|a, b| meta::name(a).cmp(&meta::name(b)));
        Ok(objs)
    }

    /// Rules, scope, namespaceSelector and objectSelector.
    async fn matches(
        &self,
        attrs: &Attributes<'_>,
        hook: &Hook,
        obj: Option<&Value>,
        old: Option<&Value>,
    ) -> Result<bool, ApiError> {
        if attrs.dry_run && !hook.dry_run_safe() {
            return Ok(false);
        }
        let desc = &attrs.scope.desc;
        let rules = hook.spec.get("rules").and_then(Value::as_array);
        if !rules
            .into_iter()
            .flatten()
            .any(|r| rule_matches(r, attrs, desc))
        {
            return Ok(false);
        }
        let object_selector = hook.selector("objectSelector")?;
        if !object_selector.is_empty()
            && !obj
                .into_iter()
                .chain(old)
                .any(|o| object_selector.matches_object(o))
        {
            return Ok(false);
        }
        let ns_selector = hook.selector("namespaceSelector")?;
        if ns_selector.is_empty() {
            return Ok(true);
        }
        if desc.group.is_empty() && desc.plural == "namespaces" {
            // A Namespace is matched by its own labels.
            return Ok(obj.or(old).is_some_and(|o| ns_selector.matches_object(o)));
        }
        if !desc.namespaced {
            return Ok(true);
        }
        let ns = attrs.scope.namespace.as_deref().unwrap_or("");
        let key = keys::object("", "namespaces", attrs.cluster, None, ns);
        let labels = match self.store.get(&key).await.map_err(store_error)? {
            Some(kv) => meta::labels(&crate::object::decode(&kv.value, kv.mod_revision)?),
            None => Map::new(),
        };
        Ok(ns_selector.matches(&labels))
    }
}

/// Webhook configurations are never subject to webhooks (as in kube-apiserver), so a broken
/// webhook can always be removed.
fn exempt(scope: &Scope) -> bool {
    scope.desc.group == GROUP && (scope.desc.plural == MUTATING || scope.desc.plural == VALIDATING)
}

/// One webhook of a configuration.
struct Hook {
    name: String,
    spec: Value,
}

fn webhooks(configs: &[Value]) -> Vec<Hook> {
    configs
        .iter()
        .flat_map(|c| {
            c.get("webhooks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .map(|w| Hook {
            name: w
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            spec: w.clone(),
        })
        .collect()
}

impl Hook {
    fn str(&self, field: &str) -> Option<&str> {
        self.spec.get(field).and_then(Value::as_str)
    }

    fn dry_run_safe(&self) -> bool {
        matches!(self.str("sideEffects"), Some("None" | "NoneOnDryRun"))
    }

    /// An absent selector selects everything.
    fn selector(&self, field: &str) -> Result<LabelSelector, ApiError> {
        match self.spec.get(field) {
            None | Some(Value::Null) => Ok(LabelSelector::everything()),
            Some(v) => LabelSelector::from_json(v).map_err(|e| {
                ApiError::internal(&format!(
                    "webhook {:?}: invalid {field}: {}",
                    self.name, e.0
                ))
            }),
        }
    }

    fn timeout(&self) -> Duration {
        let secs = self
            .spec
            .get("timeoutSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(10)
            .clamp(1, 30);
        Duration::from_secs(secs)
    }

    /// `failurePolicy`: Fail (the default) turns a failed call into a 500, Ignore proceeds.
    fn on_failure(&self, reason: String) -> Result<(), ApiError> {
        if self.str("failurePolicy") == Some("Ignore") {
            tracing::warn!(webhook = %self.name, %reason, "failed calling webhook, ignoring");
            return Ok(());
        }
        Err(ApiError::internal(&format!(
            "failed calling webhook \"{}\": {reason}",
            self.name
        )))
    }
}

fn rule_matches(rule: &Value, attrs: &Attributes<'_>, desc: &crate::catalog::ResourceDesc) -> bool {
    let list = |field: &str| -> Vec<&str> {
        rule.get(field)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    let has = |field: &str, want: &str| list(field).iter().any(|v| *v == "*" || *v == want);
    let scope_ok = match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Cluster" => !desc.namespaced,
        "Namespaced" => desc.namespaced,
        _ => true,
    };
    let resource_ok = list("resources").iter().any(|r| {
        // kube's splitResource: "pods" has subresource "", so "pods/*" covers pods too.
        let (res, sub) = r.split_once('/').unwrap_or((r, ""));
        (res == "*" || res == desc.plural) && (sub == "*" || sub == attrs.subresource)
    });
    scope_ok
        && has("operations", attrs.operation.as_str())
        && has("apiGroups", &desc.group)
        && has("apiVersions", &desc.version)
        && resource_ok
}

/// The `AdmissionReview` sent to a webhook.
fn review(attrs: &Attributes<'_>, obj: Option<&Value>, old: Option<&Value>) -> Value {
    let desc = &attrs.scope.desc;
    let user = attrs.user.cloned().unwrap_or_default();
    let kind = json!({"group": desc.group, "version": desc.version, "kind": desc.kind});
    let resource = json!({"group": desc.group, "version": desc.version, "resource": desc.plural});
    let name = obj.or(old).and_then(meta::name).unwrap_or("");
    let mut request = json!({
        "uid": uuid::Uuid::new_v4().to_string(),
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": name,
        "operation": attrs.operation.as_str(),
        "userInfo": crate::authn::user_info(&user),
        "object": obj.cloned().unwrap_or(Value::Null),
        "oldObject": old.cloned().unwrap_or(Value::Null),
        "dryRun": attrs.dry_run,
        "options": options(attrs),
    });
    if !attrs.subresource.is_empty() {
        request["subResource"] = json!(attrs.subresource);
    }
    if desc.namespaced
        && let Some(ns) = attrs.scope.namespace.as_deref()
    {
        request["namespace"] = json!(ns);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// The operation's options as a review carries them.
fn options(attrs: &Attributes<'_>) -> Value {
    let kind = match attrs.operation {
        Operation::Create => "CreateOptions",
        Operation::Update => "UpdateOptions",
        Operation::Delete => "DeleteOptions",
    };
    let mut options = json!({"apiVersion": "meta.k8s.io/v1", "kind": kind});
    if attrs.dry_run {
        options["dryRun"] = json!(["All"]);
    }
    if let Some(m) = attrs.field_manager {
        options["fieldManager"] = json!(m);
    }
    if let Some(p) = attrs.propagation_policy {
        options["propagationPolicy"] = json!(p);
    }
    options
}

/// Calls the webhook; its `response`, checked to answer this very request.
async fn call(hook: &Hook, review: &Value) -> Result<Value, String> {
    let cfg = hook
        .spec
        .get("clientConfig")
        .cloned()
        .unwrap_or(Value::Null);
    let target = webhook::Target::from_client_config(&cfg, hook.timeout())?;
    let reply = webhook::call(&target, review).await?;
    let resp = reply
        .get("response")
        .cloned()
        .ok_or("webhook response was absent")?;
    let want = review.pointer("/request/uid").and_then(Value::as_str);
    let got = resp.get("uid").and_then(Value::as_str);
    if want != got {
        return Err(format!(
            "expected response.uid={:?}, got {:?}",
            want.unwrap_or(""),
            got.unwrap_or("")
        ));
    }
    Ok(resp)
}

/// A rejection as kube-apiserver returns it: the webhook's code (at least 400) and reason,
/// its message prefixed with who denied.
fn check_allowed(hook: &Hook, resp: &Value) -> Result<(), ApiError> {
    if resp.get("allowed").and_then(Value::as_bool) == Some(true) {
        return Ok(());
    }
    let status = resp.get("status").cloned().unwrap_or(Value::Null);
    let code = status
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c >= 400)
        .unwrap_or(400);
    let reason = status.get("reason").and_then(Value::as_str).unwrap_or("");
    let message = status.get("message").and_then(Value::as_str).unwrap_or("");
    let denied_by = format!("admission webhook \"{}\" denied the request", hook.name);
    let message = if !message.is_empty() {
        format!("{denied_by}: {message}")
    } else if !reason.is_empty() {
        format!("{denied_by}: {reason}")
    } else {
        format!("{denied_by} without explanation")
    };
    Err(ApiError::new(code, reason, message))
}

/// The object after the webhook's JSONPatch, if it sent one.
fn apply_patch(hook: &Hook, resp: &Value, obj: &Value) -> Result<Option<Value>, ApiError> {
    let Some(b64) = resp
        .get("patch")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
    else {
        return Ok(None);
    };
    match resp.get("patchType").and_then(Value::as_str) {
        Some("JSONPatch") => {}
        other => {
            return Err(ApiError::internal(&format!(
                "webhook {:?}: unsupported patch type {:?}",
                hook.name,
                other.unwrap_or("")
            )));
        }
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| ApiError::internal(&format!("webhook {:?}: invalid patch: {e}", hook.name)))?;
    patch::json_patch(obj, &bytes)
        .map(Some)
        .map_err(|e| ApiError::internal(&e.message))
}

//! The few kinds with rules of their own (Kubernetes' per-kind "strategies"): namespaces,
//! secrets, config maps, workloads, CRDs. Everything else is fully generic.

use base64::Engine;
use kplex_apimachinery::names::{self, NameValidator};
use kplex_apimachinery::status::BadValue;
use kplex_apimachinery::{ApiError, StatusCause, meta};
use serde_json::{Map, Value, json};

use crate::catalog::ResourceDesc;

fn is(desc: &ResourceDesc, group: &str, plural: &str) -> bool {
    desc.group == group && desc.plural == plural
}

fn is_workload(desc: &ResourceDesc) -> bool {
    desc.group == "apps"
        && matches!(
            desc.plural.as_str(),
            "deployments" | "replicasets" | "statefulsets" | "daemonsets"
        )
}

/// How `metadata.name` is validated for this kind.
pub fn name_validator(desc: &ResourceDesc) -> NameValidator {
    match (desc.group.as_str(), desc.plural.as_str()) {
        ("", "namespaces") | ("", "services") => names::dns_label_name,
        ("rbac.authorization.k8s.io", _) => names::path_segment_name,
        _ => names::dns_subdomain_name,
    }
}

/// Defaults and derived fields on create.
pub fn prepare_create(desc: &ResourceDesc, obj: &mut Value) -> Result<(), ApiError> {
    if is(desc, "", "namespaces") {
        set_path(obj, &["status", "phase"], json!("Active"));
        set_path(obj, &["spec", "finalizers"], json!(["kubernetes"]));
    }
    // kcp: a new Workspace waits in Scheduling until it has a logical cluster.
    if is(desc, "tenancy.kcp.io", "workspaces")
        && obj.pointer("/status/phase").is_none_or(Value::is_null)
    {
        set_path(obj, &["status", "phase"], json!("Scheduling"));
    }
    prepare_common(desc, obj)
}

/// Defaults and derived fields on every update.
pub fn prepare_update(desc: &ResourceDesc, _old: &Value, obj: &mut Value) -> Result<(), ApiError> {
    prepare_common(desc, obj)
}

fn prepare_common(desc: &ResourceDesc, obj: &mut Value) -> Result<(), ApiError> {
    if is(desc, "", "secrets") {
        secret_string_data(obj);
    }
    if is_workload(desc) {
        default_workload(desc, obj);
    }
    if is(desc, "", "services") {
        default_service(obj);
    }
    if is(desc, "", "pods")
        && let Some(spec) = obj.get_mut("spec")
    {
        default_pod_spec(spec);
    }
    Ok(())
}

/// Marks a namespace Terminating when its deletion starts.
pub fn prepare_delete(desc: &ResourceDesc, obj: &mut Value) {
    if is(desc, "", "namespaces") {
        set_path(obj, &["status", "phase"], json!("Terminating"));
    }
}

/// Finalizers beyond metadata.finalizers that keep an object alive: a namespace lives
/// until its `spec.finalizers` are emptied through `/finalize`.
pub fn finalizers_done(desc: &ResourceDesc, obj: &Value) -> bool {
    let metadata_done = meta::finalizers(obj).is_empty();
    if !is(desc, "", "namespaces") {
        return metadata_done;
    }
    let spec_done = obj
        .get("spec")
        .and_then(|s| s.get("finalizers"))
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty());
    metadata_done && spec_done
}

/// The kind's own validation.
pub fn validate(desc: &ResourceDesc, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
    let mut out = Vec::new();
    if is(desc, "", "configmaps") {
        for field in ["data", "binaryData"] {
            for key in obj
                .get(field)
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(Map::keys)
            {
                if !valid_config_key(key) {
                    out.push(StatusCause::invalid(
                        &format!("{field}[{key}]"),
                        BadValue::Str(key),
                        "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                    ));
                }
            }
        }
    }
    if is(desc, "", "secrets") {
        for (key, value) in obj
            .get("data")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if !valid_config_key(key) {
                out.push(StatusCause::invalid(
                    &format!("data[{key}]"),
                    BadValue::Str(key),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                ));
            }
            let ok = value
                .as_str()
                .is_some_and(|s| base64::engine::general_purpose::STANDARD.decode(s).is_ok());
            if !ok {
                out.push(StatusCause::invalid(
                    &format!("data[{key}]"),
                    BadValue::Json(value),
                    "must be base64-encoded",
                ));
            }
        }
    }
    if is_workload(desc) {
        validate_workload(obj, &mut out);
    }
    if is(desc, "apiextensions.k8s.io", "customresourcedefinitions") {
        out.extend(crate::crd::validate(obj));
    }
    out.extend(crate::apis::admission::validate(desc, obj, old));
    out
}

fn valid_config_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `stringData` is write-only: merged into `data` (base64) and dropped.
fn secret_string_data(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    if !map.contains_key("type") {
        map.insert("type".into(), json!("Opaque"));
    }
    let Some(Value::Object(string_data)) = map.remove("stringData") else {
        return;
    };
    let data = map
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(data) = data.as_object_mut() {
        for (k, v) in string_data {
            if let Some(s) = v.as_str() {
                data.insert(
                    k,
                    Value::String(base64::engine::general_purpose::STANDARD.encode(s)),
                );
            }
        }
    }
}

fn validate_workload(obj: &Value, out: &mut Vec<StatusCause>) {
    let spec = obj.get("spec");
    let selector = spec.and_then(|s| s.get("selector"));
    let Some(selector) = selector.filter(|s| !s.is_null()) else {
        out.push(StatusCause::required("spec.selector", ""));
        return;
    };
    let labels = spec
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match kplex_apimachinery::selector::LabelSelector::from_json(selector) {
        Ok(sel) if sel.is_empty() => out.push(StatusCause::invalid(
            "spec.selector",
            BadValue::Json(selector),
            "empty selector is invalid for deployment",
        )),
        Ok(sel) if !sel.matches(&labels) => out.push(StatusCause::invalid(
            "spec.template.metadata.labels",
            BadValue::Json(&Value::Object(labels)),
            "`selector` does not match template `labels`",
        )),
        Ok(_) => {}
        Err(e) => out.push(StatusCause::invalid(
            "spec.selector",
            BadValue::Json(selector),
            &e.0,
        )),
    }
    let containers = spec
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("spec"))
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    if containers.is_none_or(|c| c.is_empty()) {
        out.push(StatusCause::required("spec.template.spec.containers", ""));
    }
}

/// kube-apiserver's defaults for the fields users most often leave out, so that objects
/// read back as they would from Kubernetes (and client-side apply diffs stay small).
fn default_workload(desc: &ResourceDesc, obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if desc.plural != "daemonsets" {
        spec.entry("replicas").or_insert(json!(1));
    }
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    match desc.plural.as_str() {
        "deployments" => {
            spec.entry("progressDeadlineSeconds").or_insert(json!(600));
            spec.entry("strategy").or_insert(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}));
        }
        "statefulsets" => {
            spec.entry("podManagementPolicy")
                .or_insert(json!("OrderedReady"));
            spec.entry("updateStrategy")
                .or_insert(json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
        }
        "daemonsets" => {
            spec.entry("updateStrategy").or_insert(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}));
        }
        _ => {}
    }
    if let Some(pod) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
        default_pod_spec(pod);
    }
}

fn default_pod_spec(pod: &mut Value) {
    let Some(pod) = pod.as_object_mut() else {
        return;
    };
    pod.entry("restartPolicy").or_insert(json!("Always"));
    pod.entry("terminationGracePeriodSeconds")
        .or_insert(json!(30));
    pod.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
    pod.entry("securityContext").or_insert(json!({}));
    pod.entry("schedulerName")
        .or_insert(json!("default-scheduler"));
    for field in ["containers", "initContainers"] {
        for c in pod
            .get_mut(field)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(c) = c.as_object_mut() else { continue };
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            let tag_latest = !image.contains('@')
                && image
                    .rsplit('/')
                    .next()
                    .is_none_or(|last| !last.contains(':') || last.ends_with(":latest"));
            c.entry("imagePullPolicy").or_insert(json!(if tag_latest {
                "Always"
            } else {
                "IfNotPresent"
            }));
            c.entry("terminationMessagePath")
                .or_insert(json!("/dev/termination-log"));
            c.entry("terminationMessagePolicy").or_insert(json!("File"));
            c.entry("resources").or_insert(json!({}));
            for p in c
                .get_mut("ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(p) = p.as_object_mut() {
                    p.entry("protocol").or_insert(json!("TCP"));
                }
            }
        }
    }
}

fn default_service(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.entry("type").or_insert(json!("ClusterIP"));
    spec.entry("sessionAffinity").or_insert(json!("None"));
    for p in spec
        .get_mut("ports")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        if let Some(p) = p.as_object_mut() {
            p.entry("protocol").or_insert(json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                p.entry("targetPort").or_insert(port);
            }
        }
    }
}

/// Sets `obj.a.b.c = value`, creating objects on the way.
pub fn set_path(obj: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for p in parents {
        let Some(map) = cur.as_object_mut() else {
            return;
        };
        cur = map
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
    }
    if let Some(map) = cur.as_object_mut() {
        map.insert(last.to_string(), value);
    }
}

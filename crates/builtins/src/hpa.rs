//! HorizontalPodAutoscalers are one resource in two versions, as in kube: stored as
//! `autoscaling/v2` and served also as `autoscaling/v1`, whose spec has a single CPU target
//! (`targetCPUUtilizationPercentage`). What v1 cannot say — other metrics, behavior,
//! conditions, current metrics — travels in kube's `autoscaling.alpha.kubernetes.io/*`
//! annotations, so a v1 client that reads and writes back loses nothing. Those annotations
//! carry the v2 JSON shapes (kube's carry v1's own metric shapes for metrics).

use serde_json::{Map, Value, json};

const V1: &str = "autoscaling/v1";
const V2: &str = "autoscaling/v2";

/// kube's `autoscaling.DefaultCPUUtilization`: the target when none is given.
const DEFAULT_CPU_UTILIZATION: i64 = 80;

const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";

/// An `autoscaling/v1` HPA as the `autoscaling/v2` object it is stored as; objects already
/// in v2 form are left alone.
pub fn to_v2(obj: &mut Value) {
    if api_version(obj) == V2 {
        return;
    }
    let mut annotations = take_annotations(obj, &[METRICS, BEHAVIOR, CONDITIONS, CURRENT_METRICS]);
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    o.insert("apiVersion".into(), V2.into());
    if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
        let mut metrics: Vec<Value> = Vec::new();
        if let Some(cpu) = spec
            .remove("targetCPUUtilizationPercentage")
            .filter(|v| !v.is_null())
        {
            metrics.push(cpu_target(cpu));
        }
        if let Some(Value::Array(more)) = annotations.remove(METRICS) {
            metrics.extend(more);
        }
        if metrics.is_empty() {
            metrics.push(cpu_target(json!(DEFAULT_CPU_UTILIZATION)));
        }
        spec.insert("metrics".into(), Value::Array(metrics));
        if let Some(behavior) = annotations.remove(BEHAVIOR) {
            spec.insert("behavior".into(), behavior);
        }
    }
    if let Some(status) = o.get_mut("status").and_then(Value::as_object_mut) {
        let mut current: Vec<Value> = Vec::new();
        if let Some(cpu) = status
            .remove("currentCPUUtilizationPercentage")
            .filter(|v| !v.is_null())
        {
            current.push(json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu}}}));
        }
        if let Some(Value::Array(more)) = annotations.remove(CURRENT_METRICS) {
            current.extend(more);
        }
        if !current.is_empty() {
            status.insert("currentMetrics".into(), Value::Array(current));
        }
        if let Some(conditions) = annotations.remove(CONDITIONS) {
            status.insert("conditions".into(), conditions);
        }
    }
}

/// A stored (`autoscaling/v2`) HPA as `version` serves it; the signature is the registry's
/// [`Conversion`](kplex_registry::catalog::Conversion).
pub fn to_version(obj: &mut Value, version: &str) {
    if version != "v1" || api_version(obj) != V2 {
        return;
    }
    let mut annotations: Vec<(&str, Value)> = Vec::new();
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    o.insert("apiVersion".into(), V1.into());
    if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
        let metrics = match spec.remove("metrics") {
            Some(Value::Array(m)) => m,
            _ => Vec::new(),
        };
        let (target, others) = split_cpu(metrics, "target");
        if let Some(target) = target {
            spec.insert("targetCPUUtilizationPercentage".into(), target);
        }
        if !others.is_empty() {
            annotations.push((METRICS, Value::Array(others)));
        }
        if let Some(behavior) = spec.remove("behavior").filter(|v| !v.is_null()) {
            annotations.push((BEHAVIOR, behavior));
        }
    }
    if let Some(status) = o.get_mut("status").and_then(Value::as_object_mut) {
        let current = match status.remove("currentMetrics") {
            Some(Value::Array(m)) => m,
            _ => Vec::new(),
        };
        let (now, others) = split_cpu(current, "current");
        if let Some(now) = now {
            status.insert("currentCPUUtilizationPercentage".into(), now);
        }
        if !others.is_empty() {
            annotations.push((CURRENT_METRICS, Value::Array(others)));
        }
        if let Some(conditions) = status.remove("conditions").filter(|v| !v.is_null()) {
            annotations.push((CONDITIONS, conditions));
        }
    }
    for (key, value) in annotations {
        kplex_apimachinery::meta::set_path(
            obj,
            &["metadata", "annotations", key],
            Value::String(value.to_string()),
        );
    }
}

/// kube's v2 defaults (`SetDefaults_HorizontalPodAutoscaler`): one replica at least, a CPU
/// target of 80% when no metric is named, and the scaling rules a given `behavior` leaves
/// out. v1 objects get the replica default here and the CPU one when stored ([`to_v2`]).
pub fn apply_defaults(obj: &mut Value) {
    let v2 = api_version(obj) == V2;
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.entry("minReplicas").or_insert(json!(1));
    if !v2 {
        return;
    }
    let no_metrics = spec
        .get("metrics")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if no_metrics {
        spec.insert(
            "metrics".into(),
            json!([cpu_target(json!(DEFAULT_CPU_UTILIZATION))]),
        );
    }
    if let Some(behavior) = spec.get_mut("behavior").and_then(Value::as_object_mut) {
        let up = json!({"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15}]});
        let down = json!({"stabilizationWindowSeconds": 300, "selectPolicy": "Max", "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 15}]});
        for (direction, defaults) in [("scaleUp", up), ("scaleDown", down)] {
            let rules = behavior
                .entry(direction)
                .or_insert_with(|| Value::Object(Map::new()));
            if let (Some(rules), Value::Object(defaults)) = (rules.as_object_mut(), defaults) {
                for (k, v) in defaults {
                    rules.entry(k).or_insert(v);
                }
            }
        }
    }
}

fn api_version(obj: &Value) -> &str {
    obj.get("apiVersion").and_then(Value::as_str).unwrap_or("")
}

fn cpu_target(utilization: Value) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": utilization}}})
}

/// The first CPU utilization among `metrics` (v1's own field) and the metrics v1 keeps in
/// an annotation: all the others.
fn split_cpu(mut metrics: Vec<Value>, side: &str) -> (Option<Value>, Vec<Value>) {
    match metrics
        .iter()
        .position(|m| cpu_utilization(m, side).is_some())
    {
        Some(i) => {
            let cpu = cpu_utilization(&metrics.remove(i), side);
            (cpu, metrics)
        }
        None => (None, metrics),
    }
}

/// The CPU utilization a v2 metric (`target`) or metric status (`current`) holds, if it is
/// a CPU resource metric by utilization — the one thing v1 spells in its own fields.
fn cpu_utilization(metric: &Value, side: &str) -> Option<Value> {
    let resource = metric.get("resource")?;
    if metric.get("type")?.as_str()? != "Resource" || resource.get("name")?.as_str()? != "cpu" {
        return None;
    }
    let value = resource.get(side)?;
    if side == "target" && value.get("type").and_then(Value::as_str) != Some("Utilization") {
        return None;
    }
    value
        .get("averageUtilization")
        .filter(|v| !v.is_null())
        .cloned()
}

/// Removes these annotations, returning those whose values parse as JSON (kube's
/// conversion ignores what does not).
fn take_annotations(obj: &mut Value, keys: &[&'static str]) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(annotations) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    else {
        return out;
    };
    for key in keys {
        if let Some(Value::String(raw)) = annotations.remove(*key)
            && let Ok(parsed) = serde_json::from_str::<Value>(&raw)
        {
            out.insert((*key).into(), parsed);
        }
    }
    if annotations.is_empty()
        && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.remove("annotations");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_round_trips_through_v2_losing_nothing() {
        let mut v1 = json!({"apiVersion": V1, "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "annotations": {
                METRICS: r#"[{"type":"Pods","pods":{"metric":{"name":"qps"},"target":{"type":"AverageValue","averageValue":"10"}}}]"#}},
            "spec": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 70,
                "scaleTargetRef": {"kind": "Deployment", "name": "d"}},
            "status": {"currentReplicas": 1, "desiredReplicas": 1, "currentCPUUtilizationPercentage": 12}});
        let original = v1.clone();
        to_v2(&mut v1);
        assert_eq!(v1["apiVersion"], V2);
        assert_eq!(
            v1["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            70
        );
        assert_eq!(v1["spec"]["metrics"][1]["type"], "Pods");
        assert_eq!(
            v1["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
            12
        );
        assert!(v1["metadata"].get("annotations").is_none());
        to_version(&mut v1, "v1");
        assert_eq!(v1["spec"], original["spec"]);
        assert_eq!(v1["status"], original["status"]);
        let metrics: Value =
            serde_json::from_str(v1["metadata"]["annotations"][METRICS].as_str().unwrap()).unwrap();
        assert_eq!(metrics[0]["pods"]["metric"]["name"], "qps");
    }

    #[test]
    fn defaults_are_kubes() {
        let mut v1 = json!({"apiVersion": V1, "spec": {"maxReplicas": 3}});
        apply_defaults(&mut v1);
        to_v2(&mut v1);
        assert_eq!(v1["spec"]["minReplicas"], 1);
        assert_eq!(
            v1["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );

        let mut v2 = json!({"apiVersion": V2, "spec": {"maxReplicas": 3, "behavior": {"scaleDown": {"selectPolicy": "Min"}}}});
        apply_defaults(&mut v2);
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            80
        );
        assert_eq!(v2["spec"]["behavior"]["scaleDown"]["selectPolicy"], "Min");
        assert_eq!(
            v2["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
            300
        );
        assert_eq!(v2["spec"]["behavior"]["scaleUp"]["policies"][0]["value"], 4);
    }
}

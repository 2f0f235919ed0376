//! Events are one resource seen in two versions, as in kube: `events.k8s.io/v1` Events are
//! stored as core/v1 Events, so an event written through either API is read through both
//! (`kubectl get events`, `kubectl events`, `kubectl describe`). These are kube's field
//! mappings between the two (`pkg/apis/events/v1` conversion).

use serde_json::{Map, Value};

const EVENTS_V1: &str = "events.k8s.io/v1";
const CORE_V1: &str = "v1";

/// (core/v1 field, events.k8s.io/v1 field) where the names differ.
const RENAMED: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// An events.k8s.io/v1 Event as the core/v1 Event it is stored as.
pub fn to_core(obj: &mut Value) {
    convert(obj, EVENTS_V1, CORE_V1, |(core, events)| (events, core));
}

/// A stored (core/v1) Event as `events.k8s.io/v1` serves it; the version argument is the
/// registry's [`Conversion`](kplex_registry::catalog::Conversion) signature.
pub fn to_events_v1(obj: &mut Value, _version: &str) {
    convert(obj, CORE_V1, EVENTS_V1, |pair| pair);
}

/// Renames the fields of an object in `from` form and sets `to` as its apiVersion; objects
/// already in `to` form are left alone.
fn convert(
    obj: &mut Value,
    from: &str,
    to: &str,
    direction: fn((&'static str, &'static str)) -> (&'static str, &'static str),
) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let current = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or(from);
    if current == to {
        return;
    }
    let mut renamed = Map::new();
    for (key, value) in std::mem::take(map) {
        let new_key = RENAMED
            .iter()
            .map(|pair| direction(*pair))
            .find(|(old, _)| *old == key)
            .map_or(key, |(_, new)| new.to_string());
        renamed.insert(new_key, value);
    }
    renamed.insert("apiVersion".into(), Value::String(to.into()));
    *map = renamed;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_forms_round_trip() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "hi", "count": 2,
            "source": {"component": "kubelet"}, "reason": "Pulled", "type": "Normal",
            "reportingComponent": "kubelet"});
        let mut v1 = core.clone();
        to_events_v1(&mut v1, "v1");
        assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
        assert_eq!(v1["regarding"]["name"], "p");
        assert_eq!(v1["note"], "hi");
        assert_eq!(v1["deprecatedCount"], 2);
        assert_eq!(v1["deprecatedSource"]["component"], "kubelet");
        assert_eq!(v1["reportingController"], "kubelet");
        assert_eq!(v1["reason"], "Pulled");
        assert!(v1.get("involvedObject").is_none());
        // Converting twice changes nothing.
        let again = {
            let mut o = v1.clone();
            to_events_v1(&mut o, "v1");
            o
        };
        assert_eq!(again, v1);
        to_core(&mut v1);
        assert_eq!(v1, core);
    }
}

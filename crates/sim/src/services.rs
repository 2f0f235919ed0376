//! What kube runs for Services besides the API server's own work: a cluster IP when the
//! server did not allocate one (kube-apiserver and kplex do at create; a minimal server may
//! not), and the endpoints controllers — an Endpoints object of the Service's name and
//! EndpointSlices (`<service>-<hash of the ports>`, when the server serves them) listing
//! the pods its selector picks, ready or not, on the ports its target ports resolve to.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value, json};

use crate::Error;
use crate::client::{self, Cluster};
use crate::object::{hash, matches_labels, name, namespace, pod_ready, terminating, text, uid};
use crate::world::World;

const SERVICE_NAME: &str = "kubernetes.io/service-name";
const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const CONTROLLER: &str = "endpointslice-controller.k8s.io";

/// The first address of 10.96.0.0/16 after `start` that no Service has.
pub fn free_cluster_ip(used: &HashSet<String>, start: u32) -> Option<String> {
    (1..(1u32 << 16)).find_map(|i| {
        let n = (start + i) % (1 << 16);
        let ip = format!("10.96.{}.{}", n >> 8, n & 0xff);
        let usable = n & 0xff != 0 && n & 0xff != 0xff && n > 10;
        (usable && !used.contains(&ip)).then_some(ip)
    })
}

fn wants_cluster_ip(svc: &Value) -> bool {
    text(svc, "/spec/type") != "ExternalName" && text(svc, "/spec/clusterIP").is_empty()
}

/// An endpoint port: (name, port, protocol).
pub type Port = (String, i64, String);

/// The Service's ports as `pod` serves them: a numeric target port as is, a named one
/// looked up in the pod's container ports (left out if the pod has no such port), none
/// given: the service port.
pub fn resolve_ports(svc: &Value, pod: &Value) -> Vec<Port> {
    let container_ports: Vec<&Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("ports").and_then(Value::as_array))
        .flatten()
        .collect();
    let service_ports = svc.pointer("/spec/ports").and_then(Value::as_array);
    let mut out: Vec<Port> = service_ports
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let port = match p.get("targetPort") {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(s)) => s.parse().ok().or_else(|| {
                    container_ports
                        .iter()
                        .find(|cp| text(cp, "/name") == s)
                        .and_then(|cp| cp.get("containerPort").and_then(Value::as_i64))
                }),
                _ => p.get("port").and_then(Value::as_i64),
            }?;
            let protocol = match text(p, "/protocol") {
                "" => "TCP",
                other => other,
            };
            Some((text(p, "/name").to_string(), port, protocol.to_string()))
        })
        .collect();
    out.sort();
    out
}

/// The pods a Service selects that have an IP, grouped by the ports they serve
/// (kube's subsets and slices are per port set).
pub fn groups<'a>(svc: &Value, pods: &'a [Value]) -> BTreeMap<Vec<Port>, Vec<&'a Value>> {
    let mut out: BTreeMap<Vec<Port>, Vec<&Value>> = BTreeMap::new();
    let Some(selector) = svc.pointer("/spec/selector").and_then(Value::as_object) else {
        return out;
    };
    let selected = pods.iter().filter(|p| {
        namespace(p) == namespace(svc)
            && !terminating(p)
            && !text(p, "/status/podIP").is_empty()
            && matches_labels(p, selector)
    });
    for p in selected {
        out.entry(resolve_ports(svc, p)).or_default().push(p);
    }
    out
}

fn target_ref(p: &Value) -> Value {
    json!({"kind": "Pod", "name": name(p), "namespace": namespace(p), "uid": uid(p)})
}

fn port_json(p: &Port) -> Value {
    let mut v = json!({"port": p.1, "protocol": p.2});
    if !p.0.is_empty() {
        v["name"] = json!(p.0);
    }
    v
}

fn labels_of(svc: &Value) -> Map<String, Value> {
    crate::object::labels(svc)
}

/// The Endpoints object of a Service.
pub fn endpoints(svc: &Value, groups: &BTreeMap<Vec<Port>, Vec<&Value>>) -> Value {
    let address = |p: &&Value| {
        json!({"ip": text(p, "/status/podIP"), "nodeName": text(p, "/spec/nodeName"),
            "targetRef": target_ref(p)})
    };
    let subsets: Vec<Value> = groups
        .iter()
        .map(|(ports, pods)| {
            let (ready, not_ready): (Vec<&Value>, Vec<&Value>) =
                pods.iter().partition(|p| pod_ready(p));
            let mut subset = json!({"ports": ports.iter().map(port_json).collect::<Vec<_>>()});
            if !ready.is_empty() {
                subset["addresses"] = ready.iter().map(address).collect();
            }
            if !not_ready.is_empty() {
                subset["notReadyAddresses"] = not_ready.iter().map(address).collect();
            }
            subset
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": name(svc), "labels": labels_of(svc)}, "subsets": subsets})
}

/// The EndpointSlices of a Service: one per port set (one with no endpoints when no pod
/// is selected, as kube keeps).
pub fn endpoint_slices(svc: &Value, groups: &BTreeMap<Vec<Port>, Vec<&Value>>) -> Vec<Value> {
    let mut labels = labels_of(svc);
    labels.insert(SERVICE_NAME.into(), json!(name(svc)));
    labels.insert(MANAGED_BY.into(), json!(CONTROLLER));
    let slice = |ports: &[Port], pods: &[&Value]| {
        let suffix: String = hash(&json!([name(svc), ports])).chars().take(5).collect();
        let endpoints: Vec<Value> = pods
            .iter()
            .map(|p| {
                let ready = pod_ready(p);
                json!({"addresses": [text(p, "/status/podIP")],
                    "conditions": {"ready": ready, "serving": ready, "terminating": false},
                    "nodeName": text(p, "/spec/nodeName"), "targetRef": target_ref(p)})
            })
            .collect();
        let ports: Vec<Value> = ports
            .iter()
            .map(|p| json!({"name": p.0, "port": p.1, "protocol": p.2}))
            .collect();
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{}-{suffix}", name(svc)), "labels": labels,
                "ownerReferences": crate::object::owner_ref(svc)},
            "addressType": "IPv4", "endpoints": endpoints, "ports": ports})
    };
    if groups.is_empty() {
        return vec![slice(&[], &[])];
    }
    groups
        .iter()
        .map(|(ports, pods)| slice(ports, pods))
        .collect()
}

pub async fn reconcile(c: &Cluster, w: &World, slices_served: bool) -> Result<(), Error> {
    let mut used: HashSet<String> = w
        .services
        .iter()
        .map(|s| text(s, "/spec/clusterIP").to_string())
        .collect();
    for svc in w.services.iter().filter(|s| !terminating(s)) {
        let ns = namespace(svc);
        if wants_cluster_ip(svc) {
            let start = rand::random::<u32>() % (1 << 16);
            if let Some(ip) = free_cluster_ip(&used, start) {
                let patch = json!({"spec": {"clusterIP": ip, "clusterIPs": [ip]}});
                c.patch(&client::services(), ns, name(svc), patch, false)
                    .await?;
                used.insert(ip);
            }
        }
        let selects = svc
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .is_some_and(|s| !s.is_empty());
        if !selects || text(svc, "/spec/type") == "ExternalName" {
            continue;
        }
        let groups = groups(svc, &w.pods);
        let wanted = endpoints(svc, &groups);
        let current = w
            .endpoints
            .iter()
            .find(|e| namespace(e) == ns && name(e) == name(svc));
        match current {
            None => c.create(&client::endpoints(), ns, wanted).await?,
            Some(e) if e.get("subsets").unwrap_or(&json!([])) != &wanted["subsets"] => {
                let patch = json!({"subsets": wanted["subsets"]});
                c.patch(&client::endpoints(), ns, name(svc), patch, false)
                    .await?;
            }
            Some(_) => {}
        }
        if slices_served {
            reconcile_slices(c, w, svc, endpoint_slices(svc, &groups)).await?;
        }
    }
    Ok(())
}

async fn reconcile_slices(
    c: &Cluster,
    w: &World,
    svc: &Value,
    wanted: Vec<Value>,
) -> Result<(), Error> {
    let ns = namespace(svc);
    let ours: Vec<&Value> = w
        .endpoint_slices
        .iter()
        .filter(|s| {
            let labels = crate::object::labels(s);
            namespace(s) == ns
                && labels.get(SERVICE_NAME) == Some(&json!(name(svc)))
                && labels.get(MANAGED_BY) == Some(&json!(CONTROLLER))
        })
        .collect();
    for slice in &ours {
        if !wanted.iter().any(|s| name(s) == name(slice)) {
            c.delete(&client::endpoint_slices(), ns, name(slice))
                .await?;
        }
    }
    for slice in wanted {
        match ours.iter().find(|s| name(s) == name(&slice)) {
            None => c.create(&client::endpoint_slices(), ns, slice).await?,
            Some(s)
                if s.get("endpoints").unwrap_or(&json!([])) != &slice["endpoints"]
                    || s.get("ports").unwrap_or(&json!([])) != &slice["ports"] =>
            {
                let patch = json!({"endpoints": slice["endpoints"], "ports": slice["ports"]});
                c.patch(&client::endpoint_slices(), ns, name(&slice), patch, false)
                    .await?;
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc() -> Value {
        json!({"metadata": {"name": "web", "namespace": "d", "uid": "s"},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": 8080},
                {"name": "named", "port": 81, "targetPort": "metrics"}]}})
    }

    fn pod(name: &str, ip: &str, ready: bool, metrics: bool) -> Value {
        let ports = if metrics {
            json!([{"name": "metrics", "containerPort": 9090}])
        } else {
            json!([])
        };
        json!({"metadata": {"name": name, "namespace": "d", "uid": name, "labels": {"app": "web"}},
            "spec": {"nodeName": "n0", "containers": [{"name": "c", "ports": ports}]},
            "status": {"phase": "Running", "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    #[test]
    fn target_ports_resolve_per_pod() {
        let p = pod("a", "10.244.0.1", true, true);
        let ports = resolve_ports(&svc(), &p);
        assert_eq!(
            ports,
            vec![
                ("http".into(), 8080, "TCP".into()),
                ("named".into(), 9090, "TCP".into()),
            ]
        );
        let bare = pod("b", "10.244.0.2", true, false);
        assert_eq!(resolve_ports(&svc(), &bare).len(), 1);
        let no_target = json!({"spec": {"ports": [{"port": 53, "protocol": "UDP"}]}});
        assert_eq!(
            resolve_ports(&no_target, &bare),
            vec![(String::new(), 53, "UDP".into())]
        );
    }

    #[test]
    fn endpoints_and_slices_list_selected_pods() {
        let pods = vec![
            pod("a", "10.244.0.1", true, true),
            pod("b", "10.244.0.2", false, true),
            json!({"metadata": {"name": "other", "namespace": "d", "labels": {"app": "x"}},
                "status": {"podIP": "10.244.0.3"}}),
        ];
        let g = groups(&svc(), &pods);
        let e = endpoints(&svc(), &g);
        assert_eq!(e["subsets"][0]["addresses"][0]["ip"], "10.244.0.1");
        assert_eq!(e["subsets"][0]["notReadyAddresses"][0]["ip"], "10.244.0.2");
        assert_eq!(e["subsets"][0]["ports"][0]["port"], 8080);
        let slices = endpoint_slices(&svc(), &g);
        assert_eq!(slices.len(), 1);
        let s = &slices[0];
        assert_eq!(s["metadata"]["labels"][SERVICE_NAME], "web");
        assert_eq!(s["addressType"], "IPv4");
        assert_eq!(s["endpoints"][0]["conditions"]["ready"], true);
        assert_eq!(s["endpoints"][1]["conditions"]["ready"], false);
        let n = s["metadata"]["name"].as_str().unwrap_or_default();
        assert!(n.starts_with("web-") && n.len() == 9, "{n}");
        // No pods: no subsets, one empty slice.
        let none = groups(&svc(), &[]);
        assert_eq!(endpoints(&svc(), &none)["subsets"], json!([]));
        assert_eq!(endpoint_slices(&svc(), &none)[0]["endpoints"], json!([]));
    }

    #[test]
    fn cluster_ips_are_free_ones_of_the_service_range() {
        let used: HashSet<String> = ["10.96.0.11".to_string()].into();
        assert_eq!(free_cluster_ip(&used, 10).as_deref(), Some("10.96.0.12"));
        assert!(wants_cluster_ip(&json!({"spec": {}})));
        assert!(!wants_cluster_ip(&json!({"spec": {"clusterIP": "None"}})));
        assert!(!wants_cluster_ip(
            &json!({"spec": {"type": "ExternalName"}})
        ));
    }
}

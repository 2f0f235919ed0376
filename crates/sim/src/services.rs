//! kube's endpoints controllers: a Service with a selector lists its ready pods in an
//! Endpoints object of its name and in an EndpointSlice (when the cluster serves them).
//! (Cluster IPs are the API server's: kube-apiserver and kplex allocate them at create.)

use serde_json::{Value, json};

use crate::Error;
use crate::client::{self, Cluster, condition_true, name, namespace, text};

pub async fn reconcile(c: &Cluster) -> Result<(), Error> {
    let services = c.list(&client::services()).await?;
    if services.is_empty() {
        return Ok(());
    }
    let pods = c.list(&client::pods()).await?;
    let endpoints = c.list(&client::endpoints()).await?;
    let slices = c.list(&client::endpoint_slices()).await?;
    for s in &services {
        let Some(selector) = s.pointer("/spec/selector").and_then(Value::as_object) else {
            continue;
        };
        if selector.is_empty() || client::terminating(s) {
            continue;
        }
        let ns = namespace(s);
        let ready: Vec<&Value> = pods
            .iter()
            .filter(|p| namespace(p) == ns && !client::terminating(p))
            .filter(|p| text(p, "/status/phase") == "Running" && condition_true(p, "Ready"))
            .filter(|p| {
                selector.iter().all(|(k, v)| {
                    p.pointer(&format!(
                        "/metadata/labels/{}",
                        k.replace('~', "~0").replace('/', "~1")
                    )) == Some(v)
                })
            })
            .collect();
        let ports = ports(s);
        let wanted = endpoints_for(s, &ready, &ports);
        let current = endpoints
            .iter()
            .find(|e| namespace(e) == ns && name(e) == name(s));
        match current {
            None => c.create(&client::endpoints(), ns, wanted.clone()).await?,
            Some(e) if e.get("subsets") != wanted.get("subsets") => {
                c.patch(
                    &client::endpoints(),
                    ns,
                    name(s),
                    json!({"subsets": wanted["subsets"]}),
                    false,
                )
                .await?;
            }
            Some(_) => {}
        }
        let slice = slice_for(s, &ready, &ports);
        let slice_name = text(&slice, "/metadata/name").to_string();
        match slices
            .iter()
            .find(|e| namespace(e) == ns && name(e) == slice_name)
        {
            None => c.create(&client::endpoint_slices(), ns, slice).await?,
            Some(e)
                if e.get("endpoints") != slice.get("endpoints")
                    || e.get("ports") != slice.get("ports") =>
            {
                c.patch(
                    &client::endpoint_slices(),
                    ns,
                    &slice_name,
                    json!({"endpoints": slice["endpoints"], "ports": slice["ports"]}),
                    false,
                )
                .await?;
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// (name, port, protocol) the endpoints expose: the target port when it is a number.
fn ports(s: &Value) -> Vec<(String, i64, String)> {
    s.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let port = p
                .get("targetPort")
                .and_then(Value::as_i64)
                .or_else(|| p.get("port").and_then(Value::as_i64))
                .unwrap_or(0);
            (
                text(p, "/name").to_string(),
                port,
                text(p, "/protocol").to_string(),
            )
        })
        .collect()
}

fn protocol(p: &str) -> &str {
    if p.is_empty() { "TCP" } else { p }
}

pub fn endpoints_for(s: &Value, ready: &[&Value], ports: &[(String, i64, String)]) -> Value {
    let addresses: Vec<Value> = ready
        .iter()
        .map(|p| json!({"ip": text(p, "/status/podIP"), "nodeName": text(p, "/spec/nodeName"),
            "targetRef": {"kind": "Pod", "name": name(p), "namespace": namespace(p), "uid": client::uid(p)}}))
        .collect();
    let ports: Vec<Value> = ports
        .iter()
        .map(|(n, port, proto)| {
            let mut p = json!({"port": port, "protocol": protocol(proto)});
            if !n.is_empty() {
                p["name"] = json!(n);
            }
            p
        })
        .collect();
    let subsets = if addresses.is_empty() {
        json!([])
    } else {
        json!([{"addresses": addresses, "ports": ports}])
    };
    json!({"apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": name(s), "labels": s.pointer("/metadata/labels").cloned().unwrap_or_else(|| json!({}))},
        "subsets": subsets})
}

pub fn slice_for(s: &Value, ready: &[&Value], ports: &[(String, i64, String)]) -> Value {
    let endpoints: Vec<Value> = ready
        .iter()
        .map(|p| json!({"addresses": [text(p, "/status/podIP")], "conditions": {"ready": true, "serving": true, "terminating": false},
            "nodeName": text(p, "/spec/nodeName"),
            "targetRef": {"kind": "Pod", "name": name(p), "namespace": namespace(p), "uid": client::uid(p)}}))
        .collect();
    let ports: Vec<Value> = ports
        .iter()
        .map(|(n, port, proto)| json!({"name": n, "port": port, "protocol": protocol(proto)}))
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{}-sim", name(s)),
            "labels": {"kubernetes.io/service-name": name(s), "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": "IPv4", "endpoints": endpoints, "ports": ports})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_list_ready_pods_on_the_target_port() {
        let svc = json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
        let pod = json!({"metadata": {"name": "p", "namespace": "d", "uid": "u"}, "spec": {"nodeName": "n"}, "status": {"podIP": "10.244.0.9"}});
        let ports = ports(&svc);
        let e = endpoints_for(&svc, &[&pod], &ports);
        assert_eq!(e["subsets"][0]["addresses"][0]["ip"], "10.244.0.9");
        assert_eq!(e["subsets"][0]["ports"][0]["port"], 8080);
        assert_eq!(endpoints_for(&svc, &[], &ports)["subsets"], json!([]));
        let slice = slice_for(&svc, &[&pod], &ports);
        assert_eq!(
            slice["metadata"]["labels"]["kubernetes.io/service-name"],
            "web"
        );
        assert_eq!(slice["endpoints"][0]["conditions"]["ready"], true);
    }
}

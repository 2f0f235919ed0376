//! **Namespace mode** (vcluster-style): a target that is one namespace of a shared host
//! cluster. Every workspace namespace placed on it maps into that one downstream namespace,
//! so the agent needs rights in that namespace only, and one host cluster serves many
//! tenants, each of whom sees a whole cluster (its workspace).
//!
//! Objects are renamed `<name>-x-<namespace>-x-<workspace>` (vcluster's scheme; past 63
//! characters, the first 52 and a hash), annotated with where they come from, and what
//! they refer to by name is renamed alike: a pod template's ConfigMaps, Secrets (volumes,
//! env, envFrom, image pull secrets) and ServiceAccount, a StatefulSet's service, an
//! Ingress's backends and TLS secrets. Pods of different tenants share the namespace, so
//! workloads' pod labels and selectors, and Services' selectors, gain a label naming the
//! upstream namespace: a Service never selects another tenant's pods.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// On a downstream object: `<cluster>/<namespace>/<name>` of its upstream original.
pub const UPSTREAM_ANNOTATION: &str = "workload.kplex.io/upstream";
/// On pods, pod templates and selectors: which upstream namespace they belong to.
pub const TENANT_LABEL: &str = "workload.kplex.io/tenant";

/// A downstream name no longer than a DNS label: vcluster's safe concatenation.
pub fn translated_name(name: &str, namespace: &str, cluster: &str) -> String {
    let full = format!("{name}-x-{namespace}-x-{cluster}");
    if full.len() <= 63 {
        return full;
    }
    let digest = hex(&Sha256::digest(full.as_bytes()));
    let mut cut = full[..52].to_string();
    // Never end the kept part on a separator: `-` then the hash would read as one.
    while cut.ends_with(['-', '.']) {
        cut.pop();
    }
    format!("{cut}-{}", &digest[..10])
}

/// The tenant label's value for upstream (cluster, namespace).
pub fn tenant(cluster: &str, namespace: &str) -> String {
    hex(&Sha256::digest(format!("{cluster}/{namespace}").as_bytes()))[..16].to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The upstream (cluster, namespace, name) a downstream object was made from.
pub fn upstream_key(down: &Value) -> Option<(String, String, String)> {
    let text = down
        .pointer("/metadata/annotations")?
        .get(UPSTREAM_ANNOTATION)?
        .as_str()?;
    let mut parts = text.splitn(3, '/');
    let (c, n, name) = (parts.next()?, parts.next()?, parts.next()?);
    Some((c.to_string(), n.to_string(), name.to_string()))
}

/// Turns a downstream copy (already in the shared namespace) into its namespace-mode form.
pub fn translate(obj: &mut Value, cluster: &str, namespace: &str) {
    let rename = |name: &str| translated_name(name, namespace, cluster);
    let tenant = tenant(cluster, namespace);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("name".into(), json!(rename(&name)));
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| json!({}))
            .as_object_mut();
        if let Some(a) = annotations {
            a.insert(
                UPSTREAM_ANNOTATION.into(),
                json!(format!("{cluster}/{namespace}/{name}")),
            );
        }
    }
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    match kind.as_str() {
        "Deployment" | "StatefulSet" | "Job" | "ReplicaSet" | "DaemonSet" => {
            if let Some(selector) = spec.get_mut("selector").and_then(|s| s.as_object_mut()) {
                add_label(selector, "matchLabels", &tenant);
            }
            if kind == "StatefulSet" {
                rename_at(spec, &["serviceName"], &rename);
            }
            if let Some(template) = spec.get_mut("template").and_then(Value::as_object_mut) {
                if let Some(meta) = template
                    .entry("metadata")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                {
                    add_label(meta, "labels", &tenant);
                }
                if let Some(pod) = template.get_mut("spec").and_then(Value::as_object_mut) {
                    translate_pod_spec(pod, &rename);
                }
            }
        }
        // A Service without a selector (endpoints managed by hand) keeps none.
        "Service" if spec.get("selector").is_some_and(|s| !s.is_null()) => {
            add_label(spec, "selector", &tenant);
        }
        "Ingress" => {
            rename_at(spec, &["defaultBackend", "service", "name"], &rename);
            for rule in array_mut(spec, "rules") {
                for path in rule
                    .pointer_mut("/http/paths")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if let Some(p) = path.as_object_mut() {
                        rename_at(p, &["backend", "service", "name"], &rename);
                    }
                }
            }
            for tls in array_mut(spec, "tls") {
                if let Some(t) = tls.as_object_mut() {
                    rename_at(t, &["secretName"], &rename);
                }
            }
        }
        _ => {}
    }
}

/// A pod spec's references to ConfigMaps, Secrets and its ServiceAccount.
fn translate_pod_spec(pod: &mut Map<String, Value>, rename: &dyn Fn(&str) -> String) {
    // The namespace's own `default` service account is the host namespace's.
    let sa = pod
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && *s != "default")
        .map(rename);
    if let Some(sa) = sa {
        pod.insert("serviceAccountName".into(), json!(sa));
        pod.remove("serviceAccount");
    }
    for secret in array_mut(pod, "imagePullSecrets") {
        if let Some(s) = secret.as_object_mut() {
            rename_at(s, &["name"], rename);
        }
    }
    for volume in array_mut(pod, "volumes") {
        let Some(v) = volume.as_object_mut() else {
            continue;
        };
        rename_at(v, &["configMap", "name"], rename);
        rename_at(v, &["secret", "secretName"], rename);
        for source in v
            .get_mut("projected")
            .and_then(|p| p.get_mut("sources"))
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if let Some(s) = source.as_object_mut() {
                rename_at(s, &["configMap", "name"], rename);
                rename_at(s, &["secret", "name"], rename);
            }
        }
    }
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for container in array_mut(pod, list) {
            let Some(c) = container.as_object_mut() else {
                continue;
            };
            for env in array_mut(c, "env") {
                if let Some(e) = env.as_object_mut() {
                    rename_at(e, &["valueFrom", "configMapKeyRef", "name"], rename);
                    rename_at(e, &["valueFrom", "secretKeyRef", "name"], rename);
                }
            }
            for from in array_mut(c, "envFrom") {
                if let Some(f) = from.as_object_mut() {
                    rename_at(f, &["configMapRef", "name"], rename);
                    rename_at(f, &["secretRef", "name"], rename);
                }
            }
        }
    }
}

fn array_mut<'a>(
    obj: &'a mut Map<String, Value>,
    field: &str,
) -> impl Iterator<Item = &'a mut Value> {
    obj.get_mut(field)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

/// Renames the string at `path` (if there is one).
fn rename_at(obj: &mut Map<String, Value>, path: &[&str], rename: &dyn Fn(&str) -> String) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = obj;
    for p in parents {
        match at.get_mut(*p).and_then(Value::as_object_mut) {
            Some(next) => at = next,
            None => return,
        }
    }
    if let Some(name) = at
        .get(*last)
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        let renamed = rename(name);
        at.insert((*last).to_string(), json!(renamed));
    }
}

fn add_label(obj: &mut Map<String, Value>, field: &str, tenant: &str) {
    if let Some(labels) = obj
        .entry(field)
        .or_insert_with(|| json!({}))
        .as_object_mut()
    {
        labels.insert(TENANT_LABEL.into(), json!(tenant));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_vclusters_scheme_and_stay_dns_labels() {
        assert_eq!(
            translated_name("web", "default", "abc"),
            "web-x-default-x-abc"
        );
        let long = translated_name(&"a".repeat(40), "team-namespace", "1qxa9avux1nt5729");
        assert!(long.len() <= 63, "{long}");
        assert!(long.starts_with(&"a".repeat(40)));
        // Distinct long names stay distinct; the same name maps the same way.
        let other = translated_name(&"a".repeat(40), "team-namespace2", "1qxa9avux1nt5729");
        assert_ne!(long, other);
        assert_eq!(
            long,
            translated_name(&"a".repeat(40), "team-namespace", "1qxa9avux1nt5729")
        );
        assert!(!long.contains("--"), "{long}");
    }

    #[test]
    fn references_and_selectors_are_translated() {
        let mut d = json!({
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "host"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "serviceAccountName": "runner",
                        "imagePullSecrets": [{"name": "pull"}],
                        "volumes": [
                            {"name": "a", "configMap": {"name": "settings"}},
                            {"name": "b", "secret": {"secretName": "token"}},
                            {"name": "c", "projected": {"sources": [{"configMap": {"name": "p"}}]}},
                            {"name": "d", "emptyDir": {}}
                        ],
                        "containers": [{"name": "web", "image": "nginx",
                            "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "token", "key": "t"}}},
                                    {"name": "Y", "value": "plain"}],
                            "envFrom": [{"configMapRef": {"name": "settings"}}]}]
                    }
                }
            }
        });
        translate(&mut d, "ws1", "default");
        let t = tenant("ws1", "default");
        let n = |s: &str| format!("{s}-x-default-x-ws1");
        assert_eq!(d["metadata"]["name"], n("web"));
        assert_eq!(
            d["metadata"]["annotations"][UPSTREAM_ANNOTATION],
            "ws1/default/web"
        );
        assert_eq!(
            upstream_key(&d),
            Some(("ws1".into(), "default".into(), "web".into()))
        );
        assert_eq!(
            d["spec"]["selector"]["matchLabels"][TENANT_LABEL],
            t.as_str()
        );
        assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web");
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(
            d["spec"]["template"]["metadata"]["labels"][TENANT_LABEL],
            t.as_str()
        );
        assert_eq!(pod["serviceAccountName"], n("runner"));
        assert_eq!(pod["imagePullSecrets"][0]["name"], n("pull"));
        assert_eq!(pod["volumes"][0]["configMap"]["name"], n("settings"));
        assert_eq!(pod["volumes"][1]["secret"]["secretName"], n("token"));
        assert_eq!(
            pod["volumes"][2]["projected"]["sources"][0]["configMap"]["name"],
            n("p")
        );
        let c = &pod["containers"][0];
        assert_eq!(c["env"][0]["valueFrom"]["secretKeyRef"]["name"], n("token"));
        assert_eq!(c["env"][1]["value"], "plain");
        assert_eq!(c["envFrom"][0]["configMapRef"]["name"], n("settings"));

        let mut svc = json!({"kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
        translate(&mut svc, "ws1", "default");
        assert_eq!(
            svc["spec"]["selector"],
            json!({"app": "web", TENANT_LABEL: t})
        );
        // A Service without a selector (its endpoints managed by hand) keeps none.
        let mut bare =
            json!({"kind": "Service", "metadata": {"name": "ext"}, "spec": {"ports": []}});
        translate(&mut bare, "ws1", "default");
        assert!(bare["spec"].get("selector").is_none());

        let mut ing = json!({"kind": "Ingress", "metadata": {"name": "web"}, "spec": {
            "tls": [{"secretName": "cert"}],
            "rules": [{"http": {"paths": [{"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
        translate(&mut ing, "ws1", "default");
        assert_eq!(
            ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
            n("web")
        );
        assert_eq!(ing["spec"]["tls"][0]["secretName"], n("cert"));
        // The default service account stays the host namespace's.
        let mut plain = json!({"kind": "Deployment", "metadata": {"name": "x"},
            "spec": {"template": {"spec": {"serviceAccountName": "default", "containers": []}}}});
        translate(&mut plain, "ws1", "default");
        assert_eq!(
            plain["spec"]["template"]["spec"]["serviceAccountName"],
            "default"
        );
    }
}

//! Discovery documents, per logical cluster: legacy (`/api`, `/apis`, per group-version
//! `APIResourceList`) and aggregated (`apidiscovery.k8s.io/v2`).

use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::catalog::{Origin, ResourceDesc};

pub use kplex_apimachinery::version::compare_versions;

/// Groups in serving order, each with its versions in priority order: the server's own
/// groups in their order, then CRD and bound groups by name — kube gives every CRD group the
/// same priority (1000) and breaks the tie by name, and kubectl resolves a short name to the
/// first group that has it.
pub fn groups(resources: &[Arc<ResourceDesc>]) -> Vec<(String, Vec<String>)> {
    // (group, versions, custom)
    let mut out: Vec<(String, Vec<String>, bool)> = Vec::new();
    for d in resources.iter().filter(|d| !d.group.is_empty()) {
        let custom = matches!(d.origin, Origin::Crd { .. } | Origin::Bound(_));
        match out.iter_mut().find(|(g, _, _)| *g == d.group) {
            Some((_, versions, c)) => {
                *c |= custom;
                if !versions.contains(&d.version) {
                    versions.push(d.version.clone());
                }
            }
            None => out.push((d.group.clone(), vec![d.version.clone()], custom)),
        }
    }
    for (_, versions, _) in &mut out {
        versions.sort_by(|a, b| compare_versions(a, b));
    }
    // Stable: the server's own groups keep their order.
    out.sort_by(|a, b| match (a.2, b.2) {
        (false, false) => Ordering::Equal,
        (true, true) => a.0.cmp(&b.0),
        (own, _) => own.cmp(&b.2),
    });
    out.into_iter().map(|(g, v, _)| (g, v)).collect()
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

pub fn api_group_list(resources: &[Arc<ResourceDesc>]) -> Value {
    let groups: Vec<Value> = groups(resources)
        .iter()
        .map(|(g, v)| group_json(g, v))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn api_group(resources: &[Arc<ResourceDesc>], group: &str) -> Option<Value> {
    let (g, v) = groups(resources).into_iter().find(|(g, _)| g == group)?;
    let mut doc = group_json(&g, &v);
    if let Some(m) = doc.as_object_mut() {
        m.insert("kind".into(), json!("APIGroup"));
        m.insert("apiVersion".into(), json!("v1"));
    }
    Some(doc)
}

fn in_group_version<'a>(
    resources: &'a [Arc<ResourceDesc>],
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'a Arc<ResourceDesc>> {
    resources
        .iter()
        .filter(move |d| d.group == group && d.version == version)
}

pub fn api_resource_list(
    resources: &[Arc<ResourceDesc>],
    group: &str,
    version: &str,
) -> Option<Value> {
    let mut list = Vec::new();
    for d in in_group_version(resources, group, version) {
        let mut entry = json!({
            "name": d.plural, "singularName": d.singular, "namespaced": d.namespaced, "kind": d.kind,
            "verbs": d.verbs,
        });
        // Go's `omitempty`: kube leaves out empty short names and categories.
        if let Some(m) = entry.as_object_mut() {
            if !d.short_names.is_empty() {
                m.insert("shortNames".into(), json!(d.short_names));
            }
            if !d.categories.is_empty() {
                m.insert("categories".into(), json!(d.categories));
            }
            // Only stored kinds have one (kube leaves it out for reviews and the like);
            // every stored kind can be watched.
            if d.verbs.contains(&"watch") {
                m.insert("storageVersionHash".into(), json!(d.storage_version_hash()));
            }
        }
        list.push(entry);
        for Sub {
            name,
            kind,
            group: g,
            version: v,
            verbs,
        } in subresources(d)
        {
            let mut entry = json!({"name": format!("{}/{name}", d.plural), "singularName": "", "namespaced": d.namespaced, "kind": kind, "verbs": verbs});
            if !g.is_empty()
                && let Some(m) = entry.as_object_mut()
            {
                m.insert("group".into(), json!(g));
                m.insert("version".into(), json!(v));
            }
            list.push(entry);
        }
    }
    if list.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}),
    )
}

/// A subresource as discovery shows it: name, response kind, the kind's group and version
/// (empty: the parent's), verbs.
struct Sub<'a> {
    name: &'a str,
    kind: String,
    group: &'a str,
    version: &'a str,
    verbs: &'a [&'a str],
}

const SUB_VERBS: &[&str] = &["get", "patch", "update"];

fn subresources(d: &ResourceDesc) -> Vec<Sub<'_>> {
    let own = |name| Sub {
        name,
        kind: d.kind.clone(),
        group: "",
        version: "",
        verbs: SUB_VERBS,
    };
    let mut out = Vec::new();
    if d.status {
        out.push(own("status"));
    }
    if d.scale.is_some() {
        out.push(Sub {
            name: "scale",
            kind: "Scale".into(),
            group: "autoscaling",
            version: "v1",
            verbs: SUB_VERBS,
        });
    }
    for s in &d.subresources {
        out.push(match s.kind {
            None => Sub {
                verbs: s.verbs,
                ..own(s.name)
            },
            Some((group, version, kind)) => Sub {
                name: s.name,
                kind: kind.into(),
                group,
                version,
                verbs: s.verbs,
            },
        });
    }
    out
}

fn discovery_resource(d: &ResourceDesc) -> Value {
    let subs: Vec<Value> = subresources(d)
        .into_iter()
        .map(|Sub { name, kind, group: g, version: v, verbs }| {
            let (g, v) = if g.is_empty() { (d.group.as_str(), d.version.as_str()) } else { (g, v) };
            json!({"subresource": name, "responseKind": {"group": g, "version": v, "kind": kind}, "verbs": verbs})
        })
        .collect();
    let mut r = json!({
        "resource": d.plural,
        "responseKind": {"group": d.group, "version": d.version, "kind": d.kind},
        "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": d.singular,
        "verbs": d.verbs,
    });
    if let Some(m) = r.as_object_mut() {
        if !d.short_names.is_empty() {
            m.insert("shortNames".into(), json!(d.short_names));
        }
        if !d.categories.is_empty() {
            m.insert("categories".into(), json!(d.categories));
        }
        if !subs.is_empty() {
            m.insert("subresources".into(), Value::Array(subs));
        }
    }
    r
}

/// `APIGroupDiscoveryList` for `/api` (core = true) or `/apis`.
pub fn aggregated(resources: &[Arc<ResourceDesc>], core: bool) -> Value {
    let items: Vec<Value> = if core {
        let rs: Vec<Value> = in_group_version(resources, "", "v1")
            .map(|d| discovery_resource(d))
            .collect();
        vec![
            json!({"metadata": {"creationTimestamp": null}, "versions": [{"version": "v1", "resources": rs, "freshness": "Current"}]}),
        ]
    } else {
        groups(resources)
            .into_iter()
            .map(|(g, versions)| {
                let vs: Vec<Value> = versions
                    .iter()
                    .map(|v| {
                        let rs: Vec<Value> = in_group_version(resources, &g, v)
                            .map(|d| discovery_resource(d))
                            .collect();
                        json!({"version": v, "resources": rs, "freshness": "Current"})
                    })
                    .collect();
                json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": vs})
            })
            .collect()
    };
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtins;

    #[test]
    fn version_priority() {
        let mut v = vec!["v1alpha1", "v1", "v2beta1", "v2", "v1beta2", "foo"];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(v, vec!["v2", "v1", "v2beta1", "v1beta2", "v1alpha1", "foo"]);
    }

    #[test]
    fn documents() {
        let all: Vec<_> = builtins::all().into_iter().map(Arc::new).collect();
        let list = api_group_list(&all);
        let autoscaling = list["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == "autoscaling")
            .unwrap();
        assert_eq!(autoscaling["preferredVersion"]["version"], "v2");
        let core = api_resource_list(&all, "", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"configmaps")
                && names.contains(&"namespaces/status")
                && names.contains(&"namespaces/finalize")
        );
        let agg = aggregated(&all, false);
        let apps = agg["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "apps")
            .unwrap();
        let deploy = apps["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap();
        assert_eq!(deploy["categories"], json!(["all"]));
        // Empty short names and categories are left out, as Go's `omitempty` does.
        let resource = |name: &str| {
            core["resources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == name)
                .unwrap()
                .clone()
        };
        let secrets = resource("secrets");
        assert!(secrets.get("categories").is_none() && secrets.get("shortNames").is_none());
        assert_eq!(resource("pods")["categories"], json!(["all"]));
        assert_eq!(resource("configmaps")["shortNames"], json!(["cm"]));
        assert_eq!(deploy["subresources"][1]["responseKind"]["kind"], "Scale");
        assert!(api_resource_list(&all, "nope", "v1").is_none());
    }

    #[test]
    fn crd_groups_follow_the_servers_own_by_name() {
        let crd = |group: &str| {
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": format!("things.{group}")},
                "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "things", "kind": "Thing", "shortNames": ["th"]},
                    "versions": [{"name": "v1", "served": true, "storage": true,
                        "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
        };
        let mut all: Vec<_> = builtins::all().into_iter().map(Arc::new).collect();
        // Served in whatever order the CRD index yields them.
        for group in ["zeta.example.com", "alpha.example.com"] {
            all.extend(
                crate::crd::descriptions(&crd(group))
                    .into_iter()
                    .map(Arc::new),
            );
        }
        let names: Vec<String> = groups(&all).into_iter().map(|(g, _)| g).collect();
        let builtin_count = names.len() - 2;
        assert_eq!(
            names[builtin_count..],
            ["alpha.example.com", "zeta.example.com"]
        );
        // The server's own groups keep their order.
        let own: Vec<_> = builtins::all().into_iter().map(Arc::new).collect();
        let own: Vec<String> = groups(&own).into_iter().map(|(g, _)| g).collect();
        assert_eq!(names[..builtin_count], own[..]);
    }
}

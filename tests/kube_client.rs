//! The `kube` crate, as a controller author uses it, against kplex: a watcher on the
//! wildcard view `/clusters/*` sees every workspace's objects, each annotated with its
//! logical cluster, and follows new ones live.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Backend, Kplex, eventually};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};

async fn client_for(k: &Kplex, path: &str) -> kube::Client {
    kube::Client::try_from(common::kube_config(k, path).await).unwrap()
}

fn create_workspace(k: &Kplex, name: &str) {
    let manifest = format!(
        "apiVersion: tenancy.kcp.io/v1alpha1\nkind: Workspace\nmetadata: {{name: {name}}}\nspec: {{type: {{name: universal}}}}\n"
    );
    k.ok_stdin(&["create", "-f", "-"], &manifest);
    eventually(20, "workspace Ready", || {
        (k.ok(&["get", "workspace", name, "-o", "jsonpath={.status.phase}"]) == "Ready")
            .then_some(())
    });
}

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_watcher_sees_every_workspace() {
    let k = Kplex::start(Backend::Embedded);
    create_workspace(&k, "one");
    create_workspace(&k, "two");
    let one: Api<ConfigMap> =
        Api::namespaced(client_for(&k, "/clusters/root:one").await, "default");
    let two: Api<ConfigMap> =
        Api::namespaced(client_for(&k, "/clusters/root:two").await, "default");
    one.create(&PostParams::default(), &configmap("in-one"))
        .await
        .unwrap();
    two.create(&PostParams::default(), &configmap("in-two"))
        .await
        .unwrap();

    let all: Api<ConfigMap> = Api::all(client_for(&k, "/clusters/*").await);
    let mut stream = watcher(all, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut seen = HashSet::new();
    while !(seen.iter().any(|(n, _): &(String, String)| n == "in-one")
        && seen.iter().any(|(n, _)| n == "in-two"))
    {
        seen.insert(next(&mut stream).await);
    }
    let clusters: HashSet<&String> = seen
        .iter()
        .filter(|(n, _)| n.starts_with("in-"))
        .map(|(_, c)| c)
        .collect();
    assert_eq!(
        clusters.len(),
        2,
        "objects from two logical clusters, each annotated: {seen:?}"
    );
    // Live: an object created afterwards in one workspace arrives.
    two.create(&PostParams::default(), &configmap("later"))
        .await
        .unwrap();
    loop {
        let (name, cluster) = next(&mut stream).await;
        if name == "later" {
            assert!(!cluster.is_empty());
            break;
        }
    }
}

/// The next object from the watcher: (name, its `kcp.io/cluster`).
async fn next(
    stream: &mut futures::stream::BoxStream<'_, Result<ConfigMap, watcher::Error>>,
) -> (String, String) {
    let cm = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let cluster = cm
        .metadata
        .annotations
        .unwrap_or_default()
        .get("kcp.io/cluster")
        .cloned()
        .unwrap_or_default();
    (cm.metadata.name.unwrap_or_default(), cluster)
}

//! Chaos: three kplex replicas on a three-member etcd cluster, under 16 writers, 4 watchers
//! and a workspace maker rotating over the replicas, while replicas, etcd members and the
//! controllers' leader are killed (`kill -9`) and restarted, and one etcd member is frozen
//! (SIGSTOP: cut off from clients and peers alike) for 10 s. Afterwards every acknowledged
//! write is there once, every watcher saw every write once and in order across its
//! reconnects, every workspace made meanwhile is Ready with one logical cluster, and the
//! replicas serve the same discovery everywhere.
//!
//! `KPLEX_CHAOS_SECONDS` (default 60) sets how long the load runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Kplex, create_workspace, eventually, json};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kplex_testing::EtcdCluster;
use kube::api::{Api, DynamicObject, PostParams, WatchEvent, WatchParams};
use kube::discovery::ApiResource;

const WRITERS: usize = 16;
const WATCHERS: usize = 4;
const WORKSPACE: &str = "root:chaos";

/// A client of each replica, for one workspace path.
async fn clients(replicas: &[&Kplex], path: &str) -> Vec<kube::Client> {
    let mut out = Vec::new();
    for k in replicas {
        let mut config = common::kube_config(k, &format!("/clusters/{path}")).await;
        config.connect_timeout = Some(Duration::from_secs(2));
        config.read_timeout = Some(Duration::from_secs(15));
        out.push(kube::Client::try_from(config).unwrap());
    }
    out
}

/// What the load saw: acknowledged writes (name → resourceVersion), each watcher's events
/// (name, resourceVersion) in arrival order, workspaces made, and anything wrong.
#[derive(Default)]
struct Seen {
    acked: BTreeMap<String, i64>,
    watched: Vec<Vec<(String, i64)>>,
    workspaces: Vec<String>,
    errors: Vec<String>,
    retries: usize,
}

fn rv(cm: &ConfigMap) -> i64 {
    cm.metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Creates ConfigMaps `w<id>-<n>` until `stop`, each through the next replica; a create
/// that fails without an answer is sent again (through the next one) until one answers:
/// 201, or 409 when an earlier try had gone through.
async fn writer(
    id: usize,
    clients: Arc<Vec<kube::Client>>,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) {
    let mut turn = id;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let name = format!("w{id}-{n}");
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name}, "data": {"writer": id.to_string()}}))
        .unwrap();
        loop {
            turn += 1;
            let api: Api<ConfigMap> =
                Api::namespaced(clients[turn % clients.len()].clone(), "default");
            match api.create(&PostParams::default(), &cm).await {
                Ok(made) => {
                    seen.lock().unwrap().acked.insert(name.clone(), rv(&made));
                    break;
                }
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    // Made by an earlier try whose answer was lost.
                    if let Ok(made) = api.get(&name).await {
                        seen.lock().unwrap().acked.insert(name.clone(), rv(&made));
                        break;
                    }
                }
                Err(_) => {}
            }
            seen.lock().unwrap().retries += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        n += 1;
    }
}

/// Watches the namespace's ConfigMaps from `from` until `done`, resuming each time from
/// the last resourceVersion it saw, through the next replica.
async fn watcher(
    id: usize,
    clients: Arc<Vec<kube::Client>>,
    from: String,
    done: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) {
    let mut last = from;
    let mut turn = id;
    while !done.load(Ordering::Relaxed) {
        turn += 1;
        let api: Api<ConfigMap> = Api::namespaced(clients[turn % clients.len()].clone(), "default");
        let params = WatchParams::default().timeout(5);
        let Ok(stream) = api.watch(&params, &last).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let mut stream = stream.boxed();
        while let Some(event) = stream.next().await {
            match event {
                Ok(WatchEvent::Added(cm) | WatchEvent::Modified(cm) | WatchEvent::Deleted(cm)) => {
                    let v = rv(&cm);
                    let name = cm.metadata.name.clone().unwrap_or_default();
                    seen.lock().unwrap().watched[id].push((name, v));
                    last = v.to_string();
                }
                Ok(WatchEvent::Bookmark(b)) => last = b.metadata.resource_version,
                Ok(WatchEvent::Error(e)) => {
                    seen.lock()
                        .unwrap()
                        .errors
                        .push(format!("watcher {id}: {} {}", e.code, e.message));
                    break;
                }
                Err(_) => break,
            }
        }
    }
}

/// Creates a workspace every two seconds until `stop`, through the next replica.
async fn workspace_maker(
    clients: Arc<Vec<kube::Client>>,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) {
    let resource = ApiResource {
        group: "tenancy.kcp.io".into(),
        version: "v1alpha1".into(),
        api_version: "tenancy.kcp.io/v1alpha1".into(),
        kind: "Workspace".into(),
        plural: "workspaces".into(),
    };
    let mut turn = 0;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let name = format!("made-{n}");
        let ws: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "tenancy.kcp.io/v1alpha1", "kind": "Workspace",
            "metadata": {"name": name}}))
        .unwrap();
        loop {
            turn += 1;
            let api: Api<DynamicObject> =
                Api::all_with(clients[turn % clients.len()].clone(), &resource);
            match api.create(&PostParams::default(), &ws).await {
                Ok(_) => break,
                Err(kube::Error::Api(e)) if e.code == 409 => break,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        seen.lock().unwrap().workspaces.push(name);
        n += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The replica that holds the controllers' Lease, by its port.
fn leader_port(k: &Kplex) -> Option<u16> {
    let (code, body) = k.http(
        "GET",
        "/clusters/root/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kplex-controllers",
        "",
        b"",
    );
    (code == 200)
        .then(|| {
            json(&body)["spec"]["holderIdentity"]
                .as_str()
                .map(String::from)
        })
        .flatten()
        .and_then(|h| h.rsplit('_').next().and_then(|p| p.parse().ok()))
}

#[test]
fn replicas_keep_every_write_through_kills_of_replicas_etcd_members_and_the_leader() {
    let seconds: u64 = std::env::var("KPLEX_CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut etcd = EtcdCluster::start(3);
    let first = Kplex::start_on_etcd(&etcd.endpoints(), &[]);
    let mut replicas = vec![first];
    for _ in 0..2 {
        let r = replicas[0].replica();
        replicas.push(r);
    }
    create_workspace(&replicas[0], "root", "chaos", None);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let refs: Vec<&Kplex> = replicas.iter().collect();
    let in_chaos = Arc::new(rt.block_on(clients(&refs, WORKSPACE)));
    let in_root = Arc::new(rt.block_on(clients(&refs, "root")));
    let start_rv = rt.block_on(async {
        let api: Api<ConfigMap> = Api::namespaced(in_chaos[0].clone(), "default");
        api.list(&Default::default())
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap()
    });

    let seen = Arc::new(Mutex::new(Seen {
        watched: vec![Vec::new(); WATCHERS],
        ..Default::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for id in 0..WRITERS {
        writers.push(rt.spawn(writer(id, in_chaos.clone(), stop.clone(), seen.clone())));
    }
    let mut watchers = Vec::new();
    for id in 0..WATCHERS {
        watchers.push(rt.spawn(watcher(
            id,
            in_chaos.clone(),
            start_rv.clone(),
            done.clone(),
            seen.clone(),
        )));
    }
    writers.push(rt.spawn(workspace_maker(in_root.clone(), stop.clone(), seen.clone())));

    // The chaos, at fractions of the run: a replica, an etcd member, the leader, a freeze.
    let began = Instant::now();
    let at = |fraction: f64| {
        let when = Duration::from_secs_f64(seconds as f64 * fraction);
        if let Some(wait) = when.checked_sub(began.elapsed()) {
            std::thread::sleep(wait);
        }
    };
    let mut log = Vec::new();
    at(0.15);
    replicas[2].crash();
    log.push("killed replica 2");
    at(0.30);
    replicas[2].restart();
    log.push("restarted replica 2");
    at(0.35);
    etcd.kill(2);
    log.push("killed etcd member 2");
    at(0.50);
    etcd.restart(2);
    log.push("restarted etcd member 2");
    at(0.55);
    let leader = replicas
        .iter()
        .find_map(leader_port)
        .and_then(|port| replicas.iter().position(|k| k.port == port))
        .expect("a leader");
    replicas[leader].crash();
    log.push("killed the leader");
    at(0.70);
    replicas[leader].restart();
    log.push("restarted the old leader");
    at(0.75);
    etcd.freeze(1, true);
    log.push("froze etcd member 1");
    std::thread::sleep(Duration::from_secs(10).min(Duration::from_secs(seconds / 5)));
    etcd.freeze(1, false);
    log.push("thawed etcd member 1");
    at(1.0);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        rt.block_on(w).unwrap();
    }

    // Every watcher catches up with every acknowledged write (or 30 s pass).
    let acked = seen.lock().unwrap().acked.clone();
    let newest = acked.values().copied().max().unwrap_or(0);
    let caught_up = Instant::now();
    while caught_up.elapsed() < Duration::from_secs(30) {
        let behind = seen
            .lock()
            .unwrap()
            .watched
            .iter()
            .any(|w| w.last().map_or(0, |e| e.1) < newest);
        if !behind {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    done.store(true, Ordering::Relaxed);
    for w in watchers {
        rt.block_on(w).unwrap();
    }
    let seen = Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap();
    eprintln!(
        "{seconds} s: {} writes acknowledged ({} retries), {} workspaces made; {}",
        acked.len(),
        seen.retries,
        seen.workspaces.len(),
        log.join(", ")
    );
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    assert!(acked.len() > 100, "only {} writes", acked.len());

    // Every acknowledged write is stored once, at the version it was acknowledged with.
    let stored: HashMap<String, i64> = rt.block_on(async {
        let api: Api<ConfigMap> = Api::namespaced(in_chaos[0].clone(), "default");
        api.list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|cm| (cm.metadata.name.clone().unwrap_or_default(), rv(cm)))
            .collect()
    });
    for (name, version) in &acked {
        assert_eq!(
            stored.get(name),
            Some(version),
            "{name} acknowledged at {version}"
        );
    }
    // Each watcher saw every acknowledged write, once, in resourceVersion order.
    for (id, events) in seen.watched.iter().enumerate() {
        let mut previous = 0;
        for (name, version) in events {
            assert!(
                *version > previous,
                "watcher {id}: {name} at {version} after {previous}"
            );
            previous = *version;
        }
        let by_name: HashMap<&str, i64> = events.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        assert_eq!(by_name.len(), events.len(), "watcher {id} saw a duplicate");
        for (name, version) in &acked {
            assert_eq!(
                by_name.get(name.as_str()),
                Some(version),
                "watcher {id} missed {name}"
            );
        }
        assert!(
            previous >= newest,
            "watcher {id} stopped at {previous} < {newest}"
        );
    }

    // Every workspace made during the chaos is Ready with exactly one logical cluster.
    for name in &seen.workspaces {
        eventually(30, &format!("workspace {name} Ready"), || {
            let (_, body) = replicas[0].http(
                "GET",
                &format!("/clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces/{name}"),
                "",
                b"",
            );
            (json(&body)["status"]["phase"] == "Ready").then_some(())
        });
    }
    let (code, body) = replicas[0].http(
        "GET",
        "/clusters/*/apis/core.kcp.io/v1alpha1/logicalclusters",
        "",
        b"",
    );
    assert_eq!(code, 200, "{body}");
    let mut per_path: HashMap<String, usize> = HashMap::new();
    for lc in json(&body)["items"].as_array().unwrap() {
        if let Some(path) = lc["metadata"]["annotations"]["kcp.io/path"].as_str() {
            *per_path.entry(path.to_string()).or_default() += 1;
        }
    }
    for name in &seen.workspaces {
        assert_eq!(
            per_path.get(&format!("root:{name}")),
            Some(&1),
            "root:{name}: {per_path:?}"
        );
    }

    // The replicas serve the same discovery for every workspace.
    let mut paths = vec!["root".to_string(), WORKSPACE.to_string()];
    paths.extend(seen.workspaces.iter().map(|n| format!("root:{n}")));
    for path in &paths {
        for discovery in ["/api", "/apis"] {
            let answers: Vec<(u16, String)> = replicas
                .iter()
                .map(|k| k.http("GET", &format!("/clusters/{path}{discovery}"), "", b""))
                .collect();
            assert_eq!(answers[0].0, 200, "{path}{discovery}");
            assert!(
                answers.iter().all(|a| a == &answers[0]),
                "{path}{discovery} differs between replicas"
            );
        }
    }
}

//! The generic registry on a real embedded store: watch-cache semantics that kubectl alone
//! does not pin down (watch from a past revision, selector transitions, lists at
//! resourceVersion 0, watches older than the cache window).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kplex_apiserver::registry::{
    ListOptions, Registry, Scope, Selectors, WatchEvent, WatchEventKind, WatchOptions, WatchStream,
    WriteOptions,
};
use kplex_apiserver::served::Served;
use kplex_store::{EmbeddedOptions, EmbeddedStore};
use serde_json::{Value, json};

struct Fixture {
    registry: Registry,
    scope: Scope,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(EmbeddedOptions::new(dir.path().join("db"))).unwrap());
    let registry = Registry::new(store);
    let served = Served::new(kplex_apiserver::kinds());
    let ns = Scope {
        cluster: Some("c1".into()),
        desc: served.lookup(Some("c1"), "", "v1", "namespaces").unwrap(),
        namespace: None,
    };
    registry
        .create(
            &ns,
            json!({"metadata": {"name": "default"}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    let scope = Scope {
        cluster: Some("c1".into()),
        desc: served.lookup(Some("c1"), "", "v1", "configmaps").unwrap(),
        namespace: Some("default".into()),
    };
    Fixture {
        registry,
        scope,
        _dir: dir,
    }
}

impl Fixture {
    async fn create(&self, name: &str, labels: Value) -> i64 {
        let obj = json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}});
        let r = self
            .registry
            .create(&self.scope, obj, &WriteOptions::default())
            .await
            .unwrap();
        r.object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    async fn relabel(&self, name: &str, labels: Value) {
        let patch = serde_json::to_vec(&json!({"metadata": {"labels": labels}})).unwrap();
        self.registry
            .patch(
                &self.scope,
                name,
                kplex_apiserver::registry::PatchKind::Merge,
                &patch,
                &WriteOptions::default(),
            )
            .await
            .unwrap();
    }

    async fn watch(&self, rv: Option<i64>, labels: &str) -> WatchStream {
        let opts = WatchOptions {
            selectors: Selectors::parse(&self.scope.desc, Some(labels), None).unwrap(),
            resource_version: rv.map(|r| r.to_string()),
            ..Default::default()
        };
        self.registry.watch(&self.scope, opts).await.unwrap()
    }
}

async fn next(w: &mut WatchStream) -> (WatchEventKind, String) {
    let e = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap()
        .unwrap();
    let (kind, stored) = match e {
        WatchEvent::Object(k, s) => (k, s),
        WatchEvent::Shared(k, o) => (k, o.stored.clone()),
        other => panic!("unexpected {other:?}"),
    };
    (
        kind,
        stored.decode().unwrap()["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_past_revision_replays_what_followed() {
    let f = fixture().await;
    let r1 = f.create("a", json!({})).await;
    f.create("b", json!({})).await;
    let mut w = f.watch(Some(r1), "").await;
    assert_eq!(next(&mut w).await, (WatchEventKind::Added, "b".into()));
    f.create("c", json!({})).await;
    assert_eq!(next(&mut w).await, (WatchEventKind::Added, "c".into()));
}

/// A bookmark announces only what has gone out: a client reading a long replay slowly,
/// with bookmarks due all the while, never gets one ahead of an event still to come (it
/// would resume past that event, or see it go backwards).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmarks_never_run_ahead_of_the_events_still_to_come() {
    let f = fixture().await;
    let first = f.create("first", json!({})).await;
    for i in 0..40 {
        f.create(&format!("cm-{i}"), json!({})).await;
    }
    for from in [Some(first.to_string()), None] {
        let opts = WatchOptions {
            resource_version: from.clone(),
            allow_bookmarks: true,
            bookmark_interval: Some(Duration::from_millis(1)),
            ..Default::default()
        };
        let mut w = f.registry.watch(&f.scope, opts).await.unwrap();
        let (mut delivered, mut bookmarked, mut objects) = (0, 0, 0);
        while objects < 40 {
            let event = tokio::time::timeout(Duration::from_secs(5), w.next())
                .await
                .unwrap()
                .unwrap();
            match event {
                WatchEvent::Bookmark {
                    resource_version, ..
                } => {
                    assert!(
                        resource_version >= delivered,
                        "{from:?}: bookmark went back"
                    );
                    bookmarked = resource_version;
                }
                WatchEvent::Object(_, s) => {
                    let rv = s.resource_version;
                    assert!(
                        rv > bookmarked,
                        "{from:?}: {rv} after a bookmark at {bookmarked}"
                    );
                    delivered = rv;
                    objects += 1;
                }
                WatchEvent::Shared(_, o) => {
                    let rv = o.stored.resource_version;
                    assert!(
                        rv > bookmarked,
                        "{from:?}: {rv} after a bookmark at {bookmarked}"
                    );
                    delivered = rv;
                    objects += 1;
                }
                WatchEvent::Error(e) => panic!("{e:?}"),
            }
            // A slow reader: the bookmark timer fires between the events.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
}

/// A watch resumed from a revision its resource's cache has not reached (the cache follows
/// its own resource; on a replica it may also lag etcd) gets bookmarks at that revision or
/// later, never before it: a client resuming from a lower one would get events again.
/// Found by `tests/chaos.rs` (a replica whose etcd member was frozen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_watch_is_never_bookmarked_below_its_start() {
    let f = fixture().await;
    f.create("cm", json!({})).await;
    // Start the ConfigMaps' cache, then move the store on elsewhere.
    drop(f.watch(Some(0), "").await);
    let secrets = Scope {
        desc: Served::new(kplex_apiserver::kinds())
            .lookup(Some("c1"), "", "v1", "secrets")
            .unwrap(),
        ..f.scope.clone()
    };
    let mut ahead = 0;
    for i in 0..3 {
        let r = f
            .registry
            .create(
                &secrets,
                json!({"metadata": {"name": format!("s{i}")}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        ahead = r.object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
    }
    let opts = WatchOptions {
        resource_version: Some(ahead.to_string()),
        allow_bookmarks: true,
        bookmark_interval: Some(Duration::from_millis(5)),
        ..Default::default()
    };
    let mut w = f.registry.watch(&f.scope, opts).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap()
        .unwrap();
    match first {
        WatchEvent::Bookmark {
            resource_version, ..
        } => assert!(
            resource_version >= ahead,
            "bookmark at {resource_version} < {ahead}"
        ),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_turn_transitions_into_added_and_deleted() {
    let f = fixture().await;
    f.create("x", json!({"app": "other"})).await;
    let mut w = f.watch(None, "app=web").await;
    f.relabel("x", json!({"app": "web"})).await;
    assert_eq!(next(&mut w).await, (WatchEventKind::Added, "x".into()));
    f.relabel("x", json!({"app": "web", "v": "2"})).await;
    assert_eq!(next(&mut w).await, (WatchEventKind::Modified, "x".into()));
    f.relabel("x", json!({"app": "gone"})).await;
    assert_eq!(next(&mut w).await, (WatchEventKind::Deleted, "x".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_version_zero_starts_with_current_objects_and_lists_from_the_cache() {
    let f = fixture().await;
    f.create("one", json!({"tier": "a"})).await;
    f.create("two", json!({"tier": "b"})).await;
    let mut w = f.watch(Some(0), "").await;
    let mut initial = vec![next(&mut w).await.1, next(&mut w).await.1];
    initial.sort();
    assert_eq!(initial, vec!["one", "two"]);
    let opts = ListOptions {
        resource_version: Some("0".into()),
        selectors: Selectors::parse(&f.scope.desc, Some("tier=b"), None).unwrap(),
        ..Default::default()
    };
    let list = f.registry.list(&f.scope, &opts).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.resource_version > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_older_than_the_window_come_from_the_store_and_compaction_is_410() {
    let f = fixture().await;
    let first = f.create("early", json!({})).await;
    // The cache starts after the early revision: its window does not reach it.
    let mut w = f.watch(None, "").await;
    let _ = next(&mut w).await;
    let bulk = |from: usize, to: usize| {
        let store = f.registry.store.clone();
        async move {
            for i in from..to {
                store
                    .put(
                        &format!("/registry/configmaps/c1/default/bulk-{i}"),
                        bytes::Bytes::from_static(b"{}"),
                    )
                    .await
                    .unwrap();
            }
        }
    };
    bulk(0, 100).await;
    let mut old = f.watch(Some(first - 1), "").await;
    assert_eq!(
        next(&mut old).await,
        (WatchEventKind::Added, "early".into()),
        "served from the store's history"
    );
    let compacted = f.registry.store.status().await.unwrap().revision;
    f.registry.store.compact(compacted).await.unwrap();
    expect_expired(f.watch(Some(first - 1), "").await).await;
    // Further back than the replay limit (though not compacted): 410, and the client
    // relists, as from kube-apiserver, whose limit is its cache's window.
    let limit = kplex_apiserver::registry::watch::MAX_STORE_REPLAY as usize;
    bulk(100, limit + 300).await;
    assert!(
        f.registry
            .store
            .watch(kplex_store::KeyRange::prefix("/registry/"), compacted + 1)
            .await
            .is_ok(),
        "the store still has that history"
    );
    expect_expired(f.watch(Some(compacted), "").await).await;
}

async fn expect_expired(mut w: WatchStream) {
    match tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap()
        .unwrap()
    {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
}

/// A whole list of one label's objects without a resourceVersion is consistent (every
/// acknowledged write is in it) though the watch cache may answer it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_lists_of_one_label_see_every_acknowledged_write() {
    let f = fixture().await;
    let opts = ListOptions {
        selectors: Selectors::parse(&f.scope.desc, Some("placed=Sync"), None).unwrap(),
        ..Default::default()
    };
    // The cache exists (and follows the store) before the writes.
    assert!(
        f.registry
            .list(&f.scope, &opts)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    for i in 0..200 {
        f.create(&format!("noise{i}"), json!({"other": "x"})).await;
        let rv = f
            .create(&format!("mine{i}"), json!({"placed": "Sync"}))
            .await;
        let list = f.registry.list(&f.scope, &opts).await.unwrap();
        assert_eq!(list.items.len(), i + 1, "after write {rv}");
        assert!(list.resource_version >= rv);
    }
    f.relabel("mine0", json!({"placed": "Upsync"})).await;
    let list = f.registry.list(&f.scope, &opts).await.unwrap();
    assert_eq!(list.items.len(), 199);
}

/// A watch with a trigger label (the syncer view's) follows its label's channel: it sees
/// the objects that carry the label, their changes and the loss of the label, and nothing
/// else, interleaved with events of unlabelled objects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggered_watches_see_their_labels_objects_only() {
    let f = fixture().await;
    let selectors = Selectors {
        predicate: Some(Arc::new(|o: &Value| {
            o.pointer("/metadata/labels/placed").and_then(Value::as_str) == Some("Sync")
        })),
        trigger: Some("placed".into()),
        ..Default::default()
    };
    let opts = WatchOptions {
        selectors,
        ..Default::default()
    };
    let mut w = f.registry.watch(&f.scope, opts).await.unwrap();
    for i in 0..50 {
        f.create(&format!("noise{i}"), json!({"other": "x"})).await;
    }
    f.create("mine", json!({"placed": "Sync"})).await;
    assert_eq!(next(&mut w).await, (WatchEventKind::Added, "mine".into()));
    // Labelled but not admitted by the predicate: nothing; then admitted: ADDED.
    f.create("later", json!({"placed": "Upsync"})).await;
    f.relabel("later", json!({"placed": "Sync"})).await;
    assert_eq!(next(&mut w).await, (WatchEventKind::Added, "later".into()));
    // Losing the label is seen (the previous state had it).
    f.relabel("mine", json!({"placed": null})).await;
    assert_eq!(next(&mut w).await, (WatchEventKind::Deleted, "mine".into()));
    f.relabel("noise1", json!({"placed": "Sync"})).await;
    assert_eq!(next(&mut w).await, (WatchEventKind::Added, "noise1".into()));
}

/// A watch of a resource nothing has written to for a long while (a syncer's Jobs while
/// only ConfigMaps change) gets bookmarks at the store's head, and resumes from however far
/// back without 410: after a restart such watches reconnect without relisting, as
/// kube-apiserver's do thanks to etcd's progress notifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_resource_is_bookmarked_at_the_head_and_resumes_from_far_back() {
    let f = fixture().await;
    let secrets = Scope {
        desc: Served::new(kplex_apiserver::kinds())
            .lookup(Some("c1"), "", "v1", "secrets")
            .unwrap(),
        ..f.scope.clone()
    };
    let create_secret = |name: &'static str| {
        let (registry, secrets) = (&f.registry, &secrets);
        async move {
            let r = registry
                .create(
                    secrets,
                    json!({"metadata": {"name": name}}),
                    &WriteOptions::default(),
                )
                .await
                .unwrap();
            r.object["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap()
        }
    };
    let quiet_since = create_secret("before").await;
    // More writes elsewhere than a store replay may read.
    let limit = kplex_apiserver::registry::watch::MAX_STORE_REPLAY as usize;
    for i in 0..limit + 100 {
        f.registry
            .store
            .put(
                &format!("/registry/configmaps/c1/default/bulk-{i}"),
                bytes::Bytes::from_static(b"{}"),
            )
            .await
            .unwrap();
    }
    let head = f.registry.store.status().await.unwrap().revision;
    let mut bookmarked = f
        .registry
        .watch(&secrets, bookmarked_from(quiet_since))
        .await
        .unwrap();
    match next_event(&mut bookmarked).await {
        WatchEvent::Bookmark {
            resource_version, ..
        } => assert_eq!(resource_version, head, "bookmarked at the store's head"),
        other => panic!("expected a bookmark, got {other:?}"),
    }
    let opts = WatchOptions {
        allow_bookmarks: false,
        ..bookmarked_from(quiet_since)
    };
    let mut resumed = f.registry.watch(&secrets, opts).await.unwrap();
    create_secret("after").await;
    assert_eq!(
        next(&mut resumed).await,
        (WatchEventKind::Added, "after".into()),
        "resumed, not expired"
    );
    // Progress follows the store wherever it writes: a ConfigMaps watch from the head is
    // bookmarked, without an event of its own, at a later Secret's revision.
    let mut configmaps = f
        .registry
        .watch(&f.scope, bookmarked_from(head))
        .await
        .unwrap();
    let later = create_secret("later").await;
    loop {
        match next_event(&mut configmaps).await {
            WatchEvent::Bookmark {
                resource_version, ..
            } if resource_version == later => break,
            WatchEvent::Bookmark {
                resource_version, ..
            } => assert!((head..later).contains(&resource_version)),
            other => panic!("expected a bookmark, got {other:?}"),
        }
    }
}

/// A watch from `rv` with a bookmark due every 5 ms.
fn bookmarked_from(rv: i64) -> WatchOptions {
    WatchOptions {
        resource_version: Some(rv.to_string()),
        allow_bookmarks: true,
        bookmark_interval: Some(Duration::from_millis(5)),
        ..Default::default()
    }
}

async fn next_event(w: &mut WatchStream) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap()
        .unwrap()
}

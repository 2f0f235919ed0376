//! The shared informer over a real (embedded) store: start objects at one revision, then
//! every change handed to the handlers that want it, deletions to all, and the search for
//! work a restart left unfinished.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kplex_runtime::{CancellationToken, EventHandler, Informer};
use kplex_store::{EmbeddedOptions, EmbeddedStore, Precondition, Store};
use serde_json::{Value, json};

/// Records what it was handed; wants the keys under its prefix.
struct Recorder {
    prefix: &'static str,
    start: bool,
    seen: Mutex<Vec<String>>,
}

impl Recorder {
    fn new(prefix: &'static str, start: bool) -> Arc<Self> {
        Arc::new(Self {
            prefix,
            start,
            seen: Mutex::default(),
        })
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    fn record(&self, what: String) {
        self.seen.lock().unwrap().push(what);
    }
}

fn name(obj: &Value) -> String {
    obj["metadata"]["name"].as_str().unwrap_or("").to_string()
}

#[async_trait::async_trait]
impl EventHandler for Recorder {
    fn start_prefixes(&self) -> Vec<String> {
        if self.start {
            vec![self.prefix.to_string()]
        } else {
            vec![]
        }
    }
    async fn started(&self, objects: &[Value]) {
        self.record(format!("started {}", objects.len()));
    }
    fn wants(&self, key: &str, _value: &[u8]) -> bool {
        key.starts_with(self.prefix)
    }
    fn changed(&self, obj: &Value, created: bool) {
        self.record(format!("changed {} created={created}", name(obj)));
    }
    fn deleted(&self, old: &Value) {
        self.record(format!("deleted {}", name(old)));
    }
    fn unfinished(&self, key: &str, value: &[u8]) -> bool {
        self.wants(key, value) && value.windows(7).any(|w| w == b"pending")
    }
}

fn object(name: &str, note: &str) -> Bytes {
    Bytes::from(json!({"metadata": {"name": name}, "note": note}).to_string())
}

async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn handlers_see_start_objects_then_their_changes_and_every_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(EmbeddedOptions::new(dir.path().join("db"))).unwrap());
    store
        .put("/registry/a/one", object("one", "done"))
        .await
        .unwrap();
    store
        .put("/registry/b/old", object("old", "pending"))
        .await
        .unwrap();
    store
        .put("/registry/b/fine", object("fine", "done"))
        .await
        .unwrap();

    let a = Recorder::new("/registry/a/", true);
    let b = Recorder::new("/registry/b/", false);
    let handlers: Vec<Arc<dyn EventHandler>> = vec![a.clone(), b.clone()];
    let cancel = CancellationToken::new();
    Informer::new(store.clone(), handlers)
        .start(cancel.clone())
        .await
        .unwrap();
    // Start objects are handed over before `start` returns.
    assert_eq!(a.seen(), ["changed one created=false", "started 1"]);

    // Only b's unfinished object is resumed in the background.
    eventually("resume", || {
        b.seen().contains(&"changed old created=false".into())
    })
    .await;
    assert!(!b.seen().iter().any(|s| s.contains("fine")));

    store
        .put("/registry/a/two", object("two", "x"))
        .await
        .unwrap();
    store
        .put("/registry/c/other", object("other", "x"))
        .await
        .unwrap();
    store
        .delete("/registry/a/one", Precondition::None)
        .await
        .unwrap();
    eventually("changes", || a.seen().contains(&"deleted one".into())).await;
    assert_eq!(
        a.seen(),
        [
            "changed one created=false",
            "started 1",
            "changed two created=true",
            "deleted one"
        ]
    );
    // A write under another prefix reaches nobody; a deletion reaches everyone.
    eventually("b sees the deletion", || {
        b.seen().contains(&"deleted one".into())
    })
    .await;
    assert!(
        !a.seen()
            .iter()
            .chain(b.seen().iter())
            .any(|s| s.contains("other"))
    );

    // Once cancelled, nothing more is handed over.
    cancel.cancel();
    tokio::time::sleep(Duration::from_millis(50)).await;
    store
        .put("/registry/a/three", object("three", "x"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!a.seen().iter().any(|s| s.contains("three")));
}

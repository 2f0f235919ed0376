//! The conformance suite on the embedded backend, plus what only it can do: restart with
//! history intact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use kplex_store::{EmbeddedOptions, EmbeddedStore, KeyRange, RangeRequest, Store};

async fn store() -> (conformance::Dyn, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedOptions::new(dir.path().join("db"))).unwrap();
    (Arc::new(store), dir)
}

conformance_tests!(store);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_data_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let first = EmbeddedStore::open(EmbeddedOptions::new(&path)).unwrap();
    let r1 = first.put("/h/a", Bytes::from_static(b"1")).await.unwrap();
    let r2 = first.put("/h/a", Bytes::from_static(b"2")).await.unwrap();
    first.close().await.unwrap();

    let second = EmbeddedStore::open(EmbeddedOptions::new(&path)).unwrap();
    assert_eq!(second.status().await.unwrap().revision, r2);
    assert_eq!(
        second.get("/h/a").await.unwrap().unwrap().value,
        Bytes::from_static(b"2")
    );
    let old = second
        .range(RangeRequest::key("/h/a").at_revision(r1))
        .await
        .unwrap();
    assert_eq!(old.kvs[0].value, Bytes::from_static(b"1"));
    let mut w = second.watch(KeyRange::prefix("/h/"), r1).await.unwrap();
    assert_eq!(w.next().await.unwrap().unwrap().kv.mod_revision, r1);
    assert_eq!(w.next().await.unwrap().unwrap().kv.mod_revision, r2);
    let r3 = second.put("/h/b", Bytes::from_static(b"3")).await.unwrap();
    assert_eq!(r3, r2 + 1, "revisions continue after a restart");
    assert_eq!(w.next().await.unwrap().unwrap().kv.mod_revision, r3);
}

/// After a restart, resumed watches of ranges nothing wrote to skip the log (see
/// `embedded/written.rs`), and every watch still gets exactly its events.
#[tokio::test]
async fn resumed_watches_get_their_history_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let first = EmbeddedStore::open(EmbeddedOptions::new(&path)).unwrap();
    for i in 0..100 {
        let key = format!("/registry/configmaps/c1/ns/{i}");
        first.put(&key, Bytes::from_static(b"x")).await.unwrap();
    }
    let job = first
        .put("/registry/batch/jobs/c2/ns/j", Bytes::from_static(b"j"))
        .await
        .unwrap();
    first.close().await.unwrap();

    let second = EmbeddedStore::open(EmbeddedOptions::new(&path)).unwrap();
    let mut jobs = second
        .watch(KeyRange::prefix("/registry/batch/jobs/"), 1)
        .await
        .unwrap();
    assert_eq!(jobs.next().await.unwrap().unwrap().kv.mod_revision, job);
    let mut secrets = second
        .watch(KeyRange::prefix("/registry/secrets/"), 1)
        .await
        .unwrap();
    let mut some = second
        .watch(KeyRange::prefix("/registry/configmaps/c1/ns/"), 50)
        .await
        .unwrap();
    for revision in 50..=100 {
        assert_eq!(
            some.next().await.unwrap().unwrap().kv.mod_revision,
            revision
        );
    }
    let secret = second
        .put("/registry/secrets/c1/ns/s", Bytes::from_static(b"s"))
        .await
        .unwrap();
    assert_eq!(
        secrets.next().await.unwrap().unwrap().kv.mod_revision,
        secret
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watcher_catches_up_from_history() {
    // More batches than the live channel holds: the watcher must fall back to the log.
    let (s, _dir) = store().await;
    let mut w = s.watch(KeyRange::prefix("/slow/"), 0).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..3000 {
                s.put(&format!("/slow/{t}/{i}"), Bytes::from_static(b"x"))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut last = 0;
    for _ in 0..12000 {
        let e = w.next().await.unwrap().unwrap();
        assert!(e.kv.mod_revision > last);
        last = e.kv.mod_revision;
    }
}

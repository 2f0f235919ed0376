//! The store contract, as test functions run against every backend (see `embedded.rs` and
//! `etcd.rs`). Each test gets a fresh, empty store.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use kplex_store::{
    Error, EventKind, KeyRange, Precondition, RangeRequest, Store, TxnOutcome, WatchStream,
};

pub type Dyn = Arc<dyn Store>;

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

async fn rev_of(outcome: TxnOutcome) -> i64 {
    match outcome {
        TxnOutcome::Succeeded { revision, .. } => revision,
        TxnOutcome::Failed { current } => panic!("write failed, current = {current:?}"),
    }
}

async fn next_event(w: &mut WatchStream) -> kplex_store::Event {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("watch event in time")
        .expect("watch stream open")
        .expect("watch event ok")
}

pub async fn empty_store(s: Dyn) {
    let resp = s.range(RangeRequest::prefix("/")).await.unwrap();
    assert!(resp.kvs.is_empty());
    assert_eq!(resp.count, 0);
    assert!(!resp.more);
    assert_eq!(s.get("/missing").await.unwrap(), None);
    let status = s.status().await.unwrap();
    assert_eq!(status.revision, resp.revision);
}

pub async fn revisions_are_ordered(s: Dyn) {
    let r1 = rev_of(s.create("/k/a", b("1")).await.unwrap()).await;
    let r2 = rev_of(s.create("/k/b", b("1")).await.unwrap()).await;
    let r3 = rev_of(s.update("/k/a", b("2"), r1).await.unwrap()).await;
    assert_eq!(r2, r1 + 1);
    assert_eq!(r3, r2 + 1);
    let a = s.get("/k/a").await.unwrap().unwrap();
    assert_eq!((a.create_revision, a.mod_revision, a.version), (r1, r3, 2));
    assert_eq!(a.value, b("2"));
    let bkv = s.get("/k/b").await.unwrap().unwrap();
    assert_eq!(
        (bkv.create_revision, bkv.mod_revision, bkv.version),
        (r2, r2, 1)
    );
    let resp = s.range(RangeRequest::prefix("/k/")).await.unwrap();
    assert_eq!(resp.revision, r3);
    assert_eq!(s.status().await.unwrap().revision, r3);
    // Delete then re-create starts a new incarnation.
    let r4 = rev_of(
        s.delete("/k/b", Precondition::ModRevision(r2))
            .await
            .unwrap(),
    )
    .await;
    let r5 = rev_of(s.create("/k/b", b("again")).await.unwrap()).await;
    assert_eq!(r5, r4 + 1);
    let bkv = s.get("/k/b").await.unwrap().unwrap();
    assert_eq!((bkv.create_revision, bkv.version), (r5, 1));
}

pub async fn compare_and_swap(s: Dyn) {
    let r1 = rev_of(s.create("/cas", b("v1")).await.unwrap()).await;
    // Create over an existing key fails and reports what is there.
    match s.create("/cas", b("other")).await.unwrap() {
        TxnOutcome::Failed { current: Some(kv) } => {
            assert_eq!(kv.value, b("v1"));
            assert_eq!(kv.mod_revision, r1);
        }
        other => panic!("expected failed create, got {other:?}"),
    }
    let r2 = rev_of(s.update("/cas", b("v2"), r1).await.unwrap()).await;
    // A stale update fails with the current value.
    match s.update("/cas", b("stale"), r1).await.unwrap() {
        TxnOutcome::Failed { current: Some(kv) } => {
            assert_eq!((kv.value, kv.mod_revision), (b("v2"), r2))
        }
        other => panic!("expected failed update, got {other:?}"),
    }
    // Updating an absent key fails with no current value.
    match s.update("/absent", b("x"), 1).await.unwrap() {
        TxnOutcome::Failed { current: None } => {}
        other => panic!("expected failed update of absent key, got {other:?}"),
    }
    match s
        .delete("/cas", Precondition::ModRevision(r1))
        .await
        .unwrap()
    {
        TxnOutcome::Failed { current: Some(kv) } => assert_eq!(kv.value, b("v2")),
        other => panic!("expected failed delete, got {other:?}"),
    }
    match s
        .delete("/cas", Precondition::ModRevision(r2))
        .await
        .unwrap()
    {
        TxnOutcome::Succeeded {
            prev: Some(prev),
            kv: None,
            ..
        } => assert_eq!(prev.value, b("v2")),
        other => panic!("expected delete with prev, got {other:?}"),
    }
    let before = s.status().await.unwrap().revision;
    assert!(
        !s.delete("/cas", Precondition::None)
            .await
            .unwrap()
            .succeeded()
    );
    assert_eq!(
        s.status().await.unwrap().revision,
        before,
        "no-op delete must not bump the revision"
    );
    // Exists precondition.
    assert!(
        !s.txn(kplex_store::Op::put("/cas", b("x"), Precondition::Exists))
            .await
            .unwrap()
            .succeeded()
    );
    match s
        .txn(kplex_store::Op::put("/cas", b("y"), Precondition::None))
        .await
        .unwrap()
    {
        TxnOutcome::Succeeded {
            kv: Some(kv),
            prev: None,
            ..
        } => assert_eq!((kv.value, kv.version), (b("y"), 1)),
        other => panic!("expected unconditional put, got {other:?}"),
    }
}

pub async fn prefix_isolation(s: Dyn) {
    s.put("/a/b/x", b("1")).await.unwrap();
    s.put("/a/bc/y", b("2")).await.unwrap();
    s.put("/a/b", b("3")).await.unwrap();
    let resp = s.range(RangeRequest::prefix("/a/b/")).await.unwrap();
    let keys: Vec<_> = resp.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, vec!["/a/b/x"]);
    let mut w = s.watch(KeyRange::prefix("/a/b/"), 0).await.unwrap();
    s.put("/a/bc/z", b("4")).await.unwrap();
    s.put("/a/b/w", b("5")).await.unwrap();
    assert_eq!(next_event(&mut w).await.kv.key, "/a/b/w");
}

pub async fn range_limit_count_and_past_revisions(s: Dyn) {
    let mut revs = Vec::new();
    for i in 0..10 {
        revs.push(
            s.put(&format!("/r/{i:02}"), b(&format!("v{i}")))
                .await
                .unwrap(),
        );
    }
    let resp = s
        .range(RangeRequest::prefix("/r/").with_limit(3))
        .await
        .unwrap();
    assert_eq!(resp.kvs.len(), 3);
    assert_eq!(resp.count, 10);
    assert!(resp.more);
    assert_eq!(resp.kvs[0].key, "/r/00");
    let count = s
        .range(RangeRequest::prefix("/r/").count_only())
        .await
        .unwrap();
    assert_eq!((count.count, count.kvs.len()), (10, 0));
    // Continue from a key, as the API server's continue tokens do.
    let rest = s
        .range(
            RangeRequest::new(KeyRange::between("/r/03", kplex_store::prefix_end("/r/")))
                .with_limit(100),
        )
        .await
        .unwrap();
    assert_eq!(rest.kvs.len(), 7);
    // Change the world, then read as of before the change.
    let snapshot = *revs.last().unwrap();
    s.put("/r/00", b("changed")).await.unwrap();
    s.delete("/r/05", Precondition::None).await.unwrap();
    s.put("/r/99", b("new")).await.unwrap();
    let old = s
        .range(RangeRequest::prefix("/r/").at_revision(snapshot))
        .await
        .unwrap();
    assert_eq!(old.revision, snapshot);
    assert_eq!(old.count, 10);
    let values: Vec<_> = old
        .kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.value).to_string())
        .collect();
    assert_eq!(values, (0..10).map(|i| format!("v{i}")).collect::<Vec<_>>());
    let limited = s
        .range(
            RangeRequest::prefix("/r/")
                .at_revision(snapshot)
                .with_limit(6),
        )
        .await
        .unwrap();
    assert_eq!(limited.kvs.len(), 6);
    assert_eq!(
        limited.kvs[5].key, "/r/05",
        "a key deleted later is still there in the past"
    );
    assert_eq!(limited.count, 10);
    // Pages without a total (a snapshot's, a filtered list's): `more` is still right,
    // in the past as now, and the last page says there is nothing after it.
    for at in [snapshot, 0] {
        let mut page = RangeRequest::prefix("/r/").at_revision(at).with_limit(4);
        page.skip_count = true;
        let first = s.range(page.clone()).await.unwrap();
        assert_eq!(first.kvs.len(), 4);
        assert!(first.more && first.count >= 5, "{:?}", first.count);
        page.range.start = "/r/09".into();
        let last = s.range(page).await.unwrap();
        assert!(!last.more, "at {at}: {:?}", last.kvs);
    }
    let point = s
        .range(RangeRequest::key("/r/00").at_revision(revs[0]))
        .await
        .unwrap();
    assert_eq!(point.kvs[0].value, b("v0"));
    let now = s.range(RangeRequest::prefix("/r/")).await.unwrap();
    assert_eq!(now.count, 10);
    let future = s
        .range(RangeRequest::prefix("/r/").at_revision(now.revision + 100))
        .await;
    assert!(
        matches!(future, Err(Error::FutureRevision { .. })),
        "{future:?}"
    );
}

pub async fn watch_from_the_past(s: Dyn) {
    let r1 = s.put("/w/a", b("1")).await.unwrap();
    let r2 = s.put("/w/a", b("2")).await.unwrap();
    s.put("/other", b("x")).await.unwrap();
    let r4 = rev_of(s.delete("/w/a", Precondition::None).await.unwrap()).await;
    let mut w = s.watch(KeyRange::prefix("/w/"), r1).await.unwrap();
    let e1 = next_event(&mut w).await;
    assert_eq!(
        (e1.kind, e1.kv.mod_revision, e1.kv.value.clone()),
        (EventKind::Put, r1, b("1"))
    );
    assert!(e1.prev.is_none());
    let e2 = next_event(&mut w).await;
    assert_eq!((e2.kv.mod_revision, e2.kv.version), (r2, 2));
    assert_eq!(e2.prev.as_ref().map(|p| p.value.clone()), Some(b("1")));
    let e3 = next_event(&mut w).await;
    assert_eq!((e3.kind, e3.kv.mod_revision), (EventKind::Delete, r4));
    assert_eq!(e3.prev.as_ref().map(|p| p.value.clone()), Some(b("2")));
    // Then it goes live.
    let r5 = s.put("/w/b", b("live")).await.unwrap();
    assert_eq!(next_event(&mut w).await.kv.mod_revision, r5);
    // Watching one key.
    let mut one = s.watch(KeyRange::key("/w/b"), r5).await.unwrap();
    assert_eq!(next_event(&mut one).await.kv.key, "/w/b");
}

pub async fn watch_many_keys_concurrent_writers(s: Dyn) {
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 100;
    let mut w = s.watch(KeyRange::prefix("/c/"), 0).await.unwrap();
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..PER_WRITER {
                s.put(&format!("/c/{writer}/{i}"), b("x")).await.unwrap();
                s.put("/not-watched", b("y")).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut seen = HashSet::new();
    let mut last = 0;
    for _ in 0..WRITERS * PER_WRITER {
        let e = next_event(&mut w).await;
        assert!(e.kv.key.starts_with("/c/"), "unexpected key {}", e.kv.key);
        assert!(e.kv.mod_revision > last, "revisions must strictly increase");
        last = e.kv.mod_revision;
        assert!(
            seen.insert(e.kv.key.clone()),
            "duplicate event for {}",
            e.kv.key
        );
    }
    assert_eq!(seen.len(), WRITERS * PER_WRITER);
    let extra = tokio::time::timeout(Duration::from_millis(300), w.next()).await;
    assert!(extra.is_err(), "no further events expected, got {extra:?}");
}

pub async fn compaction(s: Dyn) {
    let r1 = s.put("/cp/a", b("1")).await.unwrap();
    let r2 = s.put("/cp/a", b("2")).await.unwrap();
    let r3 = s.put("/cp/a", b("3")).await.unwrap();
    s.compact(r2).await.unwrap();
    let watch = s.watch(KeyRange::prefix("/cp/"), r1).await;
    assert!(
        matches!(watch, Err(Error::Compacted { .. })),
        "watch from compacted revision"
    );
    let read = s.range(RangeRequest::prefix("/cp/").at_revision(r1)).await;
    assert!(
        matches!(read, Err(Error::Compacted { .. })),
        "read at compacted revision: {read:?}"
    );
    // The compaction revision itself is still readable and watchable.
    let at = s
        .range(RangeRequest::prefix("/cp/").at_revision(r2))
        .await
        .unwrap();
    assert_eq!(at.kvs[0].value, b("2"));
    let mut w = s.watch(KeyRange::prefix("/cp/"), r2).await.unwrap();
    assert_eq!(next_event(&mut w).await.kv.mod_revision, r2);
    assert_eq!(next_event(&mut w).await.kv.mod_revision, r3);
    // Current data survives compaction.
    assert_eq!(s.get("/cp/a").await.unwrap().unwrap().value, b("3"));
    assert!(matches!(s.compact(r1).await, Err(Error::Compacted { .. })));
    assert!(s.status().await.unwrap().compacted_revision >= r2);
}

pub async fn large_values(s: Dyn) {
    let big: Vec<u8> = (0..1536 * 1024).map(|i| (i % 251) as u8).collect();
    let big = Bytes::from(big);
    let mut w = s.watch(KeyRange::prefix("/big/"), 0).await.unwrap();
    let r = s.put("/big/one", big.clone()).await.unwrap();
    assert_eq!(s.get("/big/one").await.unwrap().unwrap().value, big);
    let e = next_event(&mut w).await;
    assert_eq!((e.kv.mod_revision, e.kv.value.len()), (r, big.len()));
    s.put("/big/two", big.clone()).await.unwrap();
    s.put("/big/three", big.clone()).await.unwrap();
    let all = s.range(RangeRequest::prefix("/big/")).await.unwrap();
    assert_eq!(all.kvs.len(), 3);
    assert!(all.kvs.iter().all(|kv| kv.value == big));
}

pub async fn watch_ends_with_consumer(s: Dyn) {
    // Dropping a watch must not disturb writers or other watches.
    let w1 = s.watch(KeyRange::prefix("/d/"), 0).await.unwrap();
    let mut w2 = s.watch(KeyRange::prefix("/d/"), 0).await.unwrap();
    drop(w1);
    let r = s.put("/d/x", b("1")).await.unwrap();
    assert_eq!(next_event(&mut w2).await.kv.mod_revision, r);
}

/// Expands to one `#[tokio::test]` per conformance case, each calling `$make().await` for a
/// fresh store (and keeping whatever guard it returns alive for the test's duration).
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@each $make;
            empty_store, revisions_are_ordered, compare_and_swap, prefix_isolation,
            range_limit_count_and_past_revisions, watch_from_the_past,
            watch_many_keys_concurrent_writers, compaction, large_values, watch_ends_with_consumer);
    };
    (@each $make:path; $($case:ident),*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let (store, _guard) = $make().await;
            conformance::$case(store).await;
        }
    )*};
}

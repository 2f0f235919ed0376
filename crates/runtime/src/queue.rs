//! The work queue: which key a worker reconciles next.
//!
//! Rules (the same as the in-process controllers' queue, generic over the key):
//! - **dedupe**: a key is waiting at most once; adding it again keeps the earlier due time;
//! - **one at a time**: a key handed out is not handed out again until its [`Claim`] ends;
//! - **dirty**: a key added while in flight is not queued beside it but remembered, and
//!   queued when the claim ends, so the change that came in meanwhile is seen by a run that
//!   starts after it (level-triggered: one more run covers any number of adds);
//! - **delays**: `add_after` queues a key for later; like kube-rs's scheduler, one entry per
//!   key, the earliest due time wins, so an event for a key waiting on a requeue runs it now.
//!
//! Keys come out in due-time order, first-added first among keys due at the same time.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a queue key must be: cheap enough to clone, hashable, printable in spans and logs.
pub trait QueueKey: Clone + Eq + Hash + Debug + Send + Sync + 'static {}
impl<K: Clone + Eq + Hash + Debug + Send + Sync + 'static> QueueKey for K {}

/// A de-duplicating, delaying work queue shared by event sources (which add keys) and
/// workers (which take them with [`WorkQueue::next`]). Cloning gives another handle to the
/// same queue.
pub struct WorkQueue<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<K> {
    state: Mutex<State<K>>,
    /// Woken on every add and every requeue, so a worker waiting for a key (or for a later
    /// due time) looks again.
    notify: Notify,
}

struct State<K> {
    /// Waiting keys by (due time, sequence): the sequence keeps first-added first.
    due: BTreeMap<(Instant, u64), K>,
    /// Each waiting key's place in `due`.
    waiting: HashMap<K, (Instant, u64)>,
    /// Keys handed out; `Some(due)` once the key was added again meanwhile (dirty).
    in_flight: HashMap<K, Option<Instant>>,
    seq: u64,
    /// Set to `len()` after every change (the controller's queue-depth metric).
    depth: Option<Gauge>,
    /// Counts every add (the controller's adds metric).
    adds: Option<Counter>,
}

impl<K: QueueKey> Default for WorkQueue<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: QueueKey> WorkQueue<K> {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    due: BTreeMap::new(),
                    waiting: HashMap::new(),
                    in_flight: HashMap::new(),
                    seq: 0,
                    depth: None,
                    adds: None,
                }),
                notify: Notify::new(),
            }),
        }
    }

    /// Queues `key` to be reconciled as soon as a worker is free.
    pub fn add(&self, key: K) {
        self.add_at(key, Instant::now());
    }

    /// Queues `key` to be reconciled `delay` from now (or sooner, if it is added again).
    pub fn add_after(&self, key: K, delay: Duration) {
        self.add_at(key, Instant::now() + delay);
    }

    /// Queues `key` to be reconciled at `at` (or sooner, if it is added again).
    pub fn add_at(&self, key: K, at: Instant) {
        let mut s = self.lock();
        if let Some(adds) = &s.adds {
            adds.inc();
        }
        if let Some(dirty) = s.in_flight.get_mut(&key) {
            *dirty = Some(dirty.map_or(at, |d| d.min(at)));
            s.publish_depth();
            return;
        }
        if !s.schedule(key, at) {
            return;
        }
        s.publish_depth();
        drop(s);
        self.inner.notify.notify_one();
    }

    /// Waits for the next due key that is not in flight and hands it out. The key stays
    /// in flight until the returned [`Claim`] is finished or dropped.
    ///
    /// Cancel-safe: dropping the future before it completes takes nothing off the queue.
    pub async fn next(&self) -> Claim<K> {
        loop {
            // Registered before looking, so an add between the look and the wait wakes us.
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake_at = {
                let mut s = self.lock();
                match s.take_due(Instant::now()) {
                    Ok(key) => {
                        s.publish_depth();
                        return Claim {
                            key,
                            queue: self.clone(),
                            requeue: None,
                        };
                    }
                    Err(next_due) => next_due,
                }
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Keys waiting to be reconciled, now or later, including keys in flight that were
    /// added again; keys in flight and not added again are not counted.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys handed out and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight.len()
    }

    /// Keeps `gauge` equal to [`WorkQueue::len`] from now on.
    pub fn set_depth_gauge(&self, gauge: Gauge) {
        let mut s = self.lock();
        s.depth = Some(gauge);
        s.publish_depth();
    }

    /// Reports the queue's depth into `depth` and counts its adds in `adds`.
    pub fn set_metrics(&self, depth: Gauge, adds: Counter) {
        self.set_depth_gauge(depth);
        self.lock().adds = Some(adds);
    }

    fn finish(&self, key: &K, requeue: Option<Instant>) {
        let mut s = self.lock();
        let Some((key, dirty)) = s.in_flight.remove_entry(key) else {
            return;
        };
        let next = match (dirty, requeue) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let notify = next.is_some_and(|at| s.schedule(key, at));
        s.publish_depth();
        drop(s);
        if notify {
            self.inner.notify.notify_one();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        // No code panics while holding the lock but a key's own Hash/Eq; the state stays
        // consistent enough to go on either way.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K: QueueKey> State<K> {
    /// Puts a key that is not in flight in the queue, due at `at` unless it is already
    /// due earlier. Whether anything changed.
    fn schedule(&mut self, key: K, at: Instant) -> bool {
        if let Some(&(due, seq)) = self.waiting.get(&key) {
            if due <= at {
                return false;
            }
            self.due.remove(&(due, seq));
        }
        self.seq += 1;
        let slot = (at, self.seq);
        self.due.insert(slot, key.clone());
        self.waiting.insert(key, slot);
        true
    }

    /// The first key due at `now`, now in flight; else when the next one is due.
    fn take_due(&mut self, now: Instant) -> Result<K, Option<Instant>> {
        match self.due.first_key_value() {
            Some((&(at, _), _)) if at <= now => {}
            Some((&(at, _), _)) => return Err(Some(at)),
            None => return Err(None),
        }
        let Some((_, key)) = self.due.pop_first() else {
            return Err(None);
        };
        self.waiting.remove(&key);
        self.in_flight.insert(key.clone(), None);
        Ok(key)
    }

    fn len(&self) -> usize {
        self.waiting.len() + self.in_flight.values().filter(|d| d.is_some()).count()
    }

    fn publish_depth(&self) {
        if let Some(g) = &self.depth {
            g.set(i64::try_from(self.len()).unwrap_or(i64::MAX));
        }
    }
}

/// A key handed out by [`WorkQueue::next`]: while it lives, no other worker gets the key.
/// Finishing it (or dropping it, e.g. when a reconcile panics) lets the key go; a key added
/// meanwhile is queued again then.
pub struct Claim<K: QueueKey> {
    key: K,
    queue: WorkQueue<K>,
    requeue: Option<Instant>,
}

impl<K: QueueKey> Claim<K> {
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The key is reconciled; it runs again only if it was added meanwhile (or is added).
    pub fn done(self) {}

    /// The key runs again after `delay` (sooner if it was or is added again).
    pub fn requeue_after(mut self, delay: Duration) {
        self.requeue = Some(Instant::now() + delay);
    }
}

impl<K: QueueKey> Drop for Claim<K> {
    fn drop(&mut self) {
        self.queue.finish(&self.key, self.requeue);
    }
}

impl<K: QueueKey> Debug for Claim<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim").field("key", &self.key).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next key if one is due right now.
    async fn ready(q: &WorkQueue<&'static str>) -> Option<Claim<&'static str>> {
        tokio::time::timeout(Duration::from_millis(20), q.next())
            .await
            .ok()
    }

    #[tokio::test]
    async fn dedupes_waiting_keys() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.len(), 2);
        let a = ready(&q).await.unwrap();
        let b = ready(&q).await.unwrap();
        assert_eq!((*a.key(), *b.key()), ("a", "b"), "first added, first out");
        assert!(ready(&q).await.is_none(), "a was queued once");
        assert_eq!((q.len(), q.in_flight()), (0, 2));
    }

    #[tokio::test]
    async fn key_in_flight_is_not_handed_out_and_reruns_once_after() {
        let q = WorkQueue::new();
        q.add("a");
        let a = ready(&q).await.unwrap();
        q.add("a");
        q.add("a");
        assert_eq!(
            q.len(),
            1,
            "added again while in flight: dirty, counted once"
        );
        assert!(ready(&q).await.is_none(), "never two at once");
        a.done();
        let again = ready(&q).await.unwrap();
        assert_eq!(*again.key(), "a");
        again.done();
        assert!(ready(&q).await.is_none(), "dirty reruns exactly once");
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn dropping_a_claim_lets_the_key_go() {
        let q = WorkQueue::new();
        q.add("a");
        drop(ready(&q).await.unwrap());
        assert_eq!(q.in_flight(), 0);
        assert!(ready(&q).await.is_none());
        q.add("a");
        assert!(ready(&q).await.is_some());
    }

    #[tokio::test]
    async fn delayed_keys_come_out_when_due_and_the_earliest_wins() {
        let q = WorkQueue::new();
        q.add_after("late", Duration::from_millis(60));
        q.add_after("soon", Duration::from_secs(3600));
        q.add_after("soon", Duration::from_millis(30));
        q.add_after("soon", Duration::from_secs(3600));
        assert_eq!(q.len(), 2);
        assert!(ready(&q).await.is_none(), "nothing due yet");
        let start = Instant::now();
        let first = tokio::time::timeout(Duration::from_secs(2), q.next())
            .await
            .unwrap();
        assert_eq!(*first.key(), "soon", "the earlier due time was kept");
        let second = tokio::time::timeout(Duration::from_secs(2), q.next())
            .await
            .unwrap();
        assert_eq!(*second.key(), "late");
        assert!(start.elapsed() < Duration::from_secs(1));
        // An add makes a key waiting on a delay due now.
        q.add_after("x", Duration::from_secs(3600));
        q.add("x");
        assert_eq!(*ready(&q).await.unwrap().key(), "x");
    }

    #[tokio::test]
    async fn requeue_after_and_dirty_take_the_earlier() {
        let q = WorkQueue::new();
        q.add("a");
        let a = ready(&q).await.unwrap();
        a.requeue_after(Duration::from_millis(40));
        assert_eq!(q.len(), 1);
        assert!(ready(&q).await.is_none(), "requeued for later");
        let a = tokio::time::timeout(Duration::from_secs(2), q.next())
            .await
            .unwrap();
        q.add("a");
        a.requeue_after(Duration::from_secs(3600));
        assert!(ready(&q).await.is_some(), "added while in flight: runs now");
    }

    #[tokio::test]
    async fn a_waiting_worker_wakes_on_add() {
        let q = WorkQueue::new();
        let worker = {
            let q = q.clone();
            tokio::spawn(async move { *q.next().await.key() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.add_after("later", Duration::from_secs(3600));
        q.add("now");
        let got = tokio::time::timeout(Duration::from_secs(2), worker)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, "now");
    }

    #[tokio::test]
    async fn depth_gauge_follows_len() {
        let q = WorkQueue::new();
        let g = Gauge::default();
        q.set_depth_gauge(g.clone());
        q.add("a");
        q.add("b");
        assert_eq!(g.get(), 2);
        let a = ready(&q).await.unwrap();
        assert_eq!(g.get(), 1);
        q.add("a");
        assert_eq!(g.get(), 2);
        a.done();
        assert_eq!(g.get(), 2);
    }
}

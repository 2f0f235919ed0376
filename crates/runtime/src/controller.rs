//! A controller: a named reconciler, its work queue and its workers.

use std::any::Any;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::metrics::{ControllerMetrics, Metrics};
use crate::queue::{Claim, WorkQueue};
use crate::reconciler::{Action, Reconciler};

/// Per-key exponential backoff after a failed reconcile: `base`, doubling per consecutive
/// failure of that key, at most `cap`; a success (any `Ok`) resets it.
///
/// Defaults: 5 ms to 1 s. The first retries come quickly because most failures are
/// transient (a lost compare-and-swap race, a store hiccup); the cap keeps a key that keeps
/// failing retried every second, which is what the in-process controllers did (they
/// retried every 500 ms) without letting a broken object spin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(5),
            cap: Duration::from_secs(1),
        }
    }
}

impl Backoff {
    /// Failures retried from a fifth of `retry` up to four times it: for controllers that
    /// look again every `retry` while waiting.
    pub fn around(retry: Duration) -> Self {
        Self {
            base: retry / 5,
            cap: retry * 4,
        }
    }

    /// The delay after the `failures`-th consecutive failure (1 = the first).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// A named [`Reconciler`] with its [`WorkQueue`] and workers. Event sources add keys
/// through [`Controller::queue`]; [`Controller::run`] reconciles them until cancelled.
pub struct Controller<R: Reconciler> {
    name: String,
    reconciler: Arc<R>,
    queue: WorkQueue<R::Key>,
    workers: usize,
    backoff: Backoff,
    metrics: Option<ControllerMetrics>,
}

impl<R: Reconciler> Controller<R> {
    /// A controller with its own queue, one worker and the default backoff.
    pub fn new(name: impl Into<String>, reconciler: Arc<R>) -> Self {
        Self {
            name: name.into(),
            reconciler,
            queue: WorkQueue::new(),
            workers: 1,
            backoff: Backoff::default(),
            metrics: None,
        }
    }

    /// Reconciles keys from `queue` instead of a queue of its own: a queue that outlives
    /// the controller keeps what was queued when, say, leadership moves away and back.
    pub fn with_queue(mut self, queue: WorkQueue<R::Key>) -> Self {
        if let Some(m) = &self.metrics {
            queue.set_depth_gauge(m.depth.clone());
        }
        self.queue = queue;
        self
    }

    /// How many keys are reconciled at once (at least 1; one key is never reconciled twice
    /// at once, whatever this is).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Reports into `metrics` under this controller's name.
    pub fn metrics(mut self, metrics: &Metrics) -> Self {
        let m = metrics.controller(&self.name);
        self.queue.set_metrics(m.depth.clone(), m.adds.clone());
        self.metrics = Some(m);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The queue to add keys to (clone it to keep a handle).
    pub fn queue(&self) -> &WorkQueue<R::Key> {
        &self.queue
    }

    /// Reconciles queued keys until `cancel` is cancelled; then workers take no new key,
    /// and this returns once the reconciles in flight have finished. Keys still queued stay
    /// in the queue. Dropping the future instead aborts the reconciles in flight.
    pub async fn run(self, cancel: CancellationToken) {
        let workers = self.workers;
        let name = self.name.clone();
        let shared = Arc::new(Shared {
            name: self.name,
            reconciler: self.reconciler,
            queue: self.queue,
            backoff: self.backoff,
            metrics: self.metrics,
            failures: Mutex::new(HashMap::new()),
        });
        let mut tasks = JoinSet::new();
        for _ in 0..workers {
            tasks.spawn(shared.clone().work(cancel.clone()));
        }
        tracing::debug!(controller = %name, workers, "controller started");
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                // Reconciler panics are caught per reconcile; this is the runtime's own.
                tracing::error!(controller = %name, error = %e, "controller worker failed");
            }
        }
        tracing::debug!(controller = %name, "controller stopped");
    }
}

struct Shared<R: Reconciler> {
    name: String,
    reconciler: Arc<R>,
    queue: WorkQueue<R::Key>,
    backoff: Backoff,
    metrics: Option<ControllerMetrics>,
    /// Consecutive failures per key, for the backoff; a key leaves on its first success.
    failures: Mutex<HashMap<R::Key, u32>>,
}

enum Failure<E> {
    Error(E),
    Panic(String),
}

impl<R: Reconciler> Shared<R> {
    async fn work(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let claim = tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                claim = self.queue.next() => claim,
            };
            self.reconcile(claim).await;
        }
    }

    async fn reconcile(&self, claim: Claim<R::Key>) {
        let span = tracing::info_span!("reconcile", controller = %self.name, key = ?claim.key());
        let start = Instant::now();
        let result = AssertUnwindSafe(self.reconciler.reconcile(claim.key()))
            .catch_unwind()
            .instrument(span.clone())
            .await;
        let _entered = span.enter();
        if let Some(m) = &self.metrics {
            m.duration.observe(start.elapsed().as_secs_f64());
        }
        let result = match result {
            Ok(Ok(action)) => Ok(action),
            Ok(Err(e)) => Err(Failure::Error(e)),
            Err(panic) => Err(Failure::Panic(panic_message(panic.as_ref()))),
        };
        match result {
            Ok(action) => {
                self.failures().remove(claim.key());
                match action {
                    Action::Done => {
                        self.count(|m| &m.ok);
                        claim.done();
                    }
                    Action::RequeueAfter(delay) => {
                        self.count(|m| &m.requeue);
                        self.count(|m| &m.retries);
                        claim.requeue_after(delay);
                    }
                }
            }
            Err(failure) => {
                self.count(|m| &m.error);
                self.count(|m| &m.retries);
                let failures = {
                    let mut all = self.failures();
                    let n = all.entry(claim.key().clone()).or_insert(0);
                    *n = n.saturating_add(1);
                    *n
                };
                let retry = self.backoff.delay(failures);
                // Logged here, where it is handled. Once a key has failed long enough to
                // reach the cap, say so once at warn; the rest is debug noise.
                let persistent = retry >= self.backoff.cap
                    && self.backoff.delay(failures.saturating_sub(1)) < self.backoff.cap;
                match failure {
                    Failure::Panic(msg) => {
                        tracing::warn!(failures, ?retry, panic = %msg, "reconcile panicked, retrying");
                    }
                    Failure::Error(e) if persistent => {
                        tracing::warn!(failures, ?retry, error = %e, "reconcile keeps failing, retrying");
                    }
                    Failure::Error(e) => {
                        tracing::debug!(failures, ?retry, error = %e, "reconcile failed, retrying");
                    }
                }
                claim.requeue_after(retry);
            }
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<R::Key, u32>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(
        &self,
        which: impl Fn(&ControllerMetrics) -> &prometheus_client::metrics::counter::Counter,
    ) {
        if let Some(m) = &self.metrics {
            which(m).inc();
        }
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string())
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use prometheus_client::registry::Registry;

    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let b = Backoff::default();
        let ms = |n| b.delay(n).as_millis();
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(8), ms(9), ms(40), ms(u32::MAX)],
            [5, 10, 20, 640, 1000, 1000, 1000]
        );
        assert_eq!(b.delay(0), b.base);
    }

    /// Counts reconciles per key and the most reconciling one key at once.
    #[derive(Default)]
    struct Probe {
        running: Mutex<HashMap<u32, usize>>,
        max_same_key: AtomicUsize,
        runs: Mutex<HashMap<u32, usize>>,
        /// Keys that fail this many more times.
        fail: Mutex<HashMap<u32, usize>>,
        requeue_once: Mutex<Vec<u32>>,
        hold: Duration,
        in_flight: AtomicUsize,
        finished: AtomicUsize,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("injected failure")]
    struct Injected;

    #[async_trait::async_trait]
    impl Reconciler for Probe {
        type Key = u32;
        type Error = Injected;

        async fn reconcile(&self, key: &u32) -> Result<Action, Injected> {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let now = {
                let mut r = self.running.lock().unwrap();
                let n = r.entry(*key).or_default();
                *n += 1;
                *n
            };
            self.max_same_key.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.hold).await;
            *self.running.lock().unwrap().get_mut(key).unwrap() -= 1;
            *self.runs.lock().unwrap().entry(*key).or_default() += 1;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.finished.fetch_add(1, Ordering::SeqCst);
            if let Some(n) = self.fail.lock().unwrap().get_mut(key).filter(|n| **n > 0) {
                *n -= 1;
                return Err(Injected);
            }
            let mut once = self.requeue_once.lock().unwrap();
            if let Some(i) = once.iter().position(|k| k == key) {
                once.remove(i);
                return Ok(Action::RequeueAfter(Duration::from_millis(30)));
            }
            Ok(Action::Done)
        }
    }

    impl Probe {
        fn runs(&self, key: u32) -> usize {
            self.runs.lock().unwrap().get(&key).copied().unwrap_or(0)
        }
    }

    async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn start(
        probe: Arc<Probe>,
        workers: usize,
    ) -> (
        WorkQueue<u32>,
        CancellationToken,
        tokio::task::JoinHandle<()>,
    ) {
        let c = Controller::new("probe", probe).workers(workers);
        let q = c.queue().clone();
        let cancel = CancellationToken::new();
        let run = tokio::spawn(c.run(cancel.clone()));
        (q, cancel, run)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_key_is_never_reconciled_twice_at_once() {
        let probe = Arc::new(Probe {
            hold: Duration::from_millis(2),
            ..Probe::default()
        });
        let (q, cancel, run) = start(probe.clone(), 8);
        // Hammer three keys from several tasks while eight workers take them.
        let mut adders = JoinSet::new();
        for _ in 0..4 {
            let q = q.clone();
            adders.spawn(async move {
                for i in 0..200u32 {
                    q.add(i % 3);
                    if i % 10 == 0 {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            });
        }
        while adders.join_next().await.is_some() {}
        eventually("queue drained", || q.is_empty() && q.in_flight() == 0).await;
        assert_eq!(probe.max_same_key.load(Ordering::SeqCst), 1);
        for k in 0..3 {
            assert!(probe.runs(k) >= 1, "key {k} reconciled");
        }
        assert!(
            probe.finished.load(Ordering::SeqCst) < 800,
            "adds were deduplicated"
        );
        cancel.cancel();
        run.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn added_while_in_flight_runs_once_more_after() {
        let probe = Arc::new(Probe {
            hold: Duration::from_millis(50),
            ..Probe::default()
        });
        let (q, cancel, run) = start(probe.clone(), 4);
        q.add(7);
        eventually("in flight", || probe.in_flight.load(Ordering::SeqCst) == 1).await;
        for _ in 0..10 {
            q.add(7);
        }
        eventually("two runs", || probe.runs(7) == 2).await;
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(probe.runs(7), 2, "ten adds in flight: exactly one more run");
        assert_eq!(probe.max_same_key.load(Ordering::SeqCst), 1);
        cancel.cancel();
        run.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requeue_after_runs_again_later() {
        let probe = Arc::new(Probe {
            requeue_once: Mutex::new(vec![1]),
            ..Probe::default()
        });
        let (q, cancel, run) = start(probe.clone(), 1);
        let t = Instant::now();
        q.add(1);
        eventually("first run", || probe.runs(1) == 1).await;
        eventually("requeued run", || probe.runs(1) == 2).await;
        assert!(t.elapsed() >= Duration::from_millis(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(probe.runs(1), 2, "Done: no further run");
        cancel.cancel();
        run.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn errors_back_off_per_key_and_reset_on_success() {
        let probe = Arc::new(Probe {
            fail: Mutex::new(HashMap::from([(1, 5)])),
            ..Probe::default()
        });
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let c = Controller::new("flaky", probe.clone())
            .backoff(Backoff {
                base: Duration::from_millis(10),
                cap: Duration::from_millis(400),
            })
            .metrics(&metrics);
        let q = c.queue().clone();
        let cancel = CancellationToken::new();
        let run = tokio::spawn(c.run(cancel.clone()));
        let t = Instant::now();
        q.add(1);
        eventually("five failures and a success", || probe.runs(1) == 6).await;
        // 10 + 20 + 40 + 80 + 160 ms between the runs.
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(310), "backed off: {took:?}");
        assert!(took < Duration::from_secs(3));
        eventually("the success finished", || q.in_flight() == 0).await;
        // After the success, a new failure starts from the base again (10 ms, not the
        // 320 ms a sixth consecutive failure would wait).
        probe.fail.lock().unwrap().insert(1, 1);
        let t = Instant::now();
        q.add(1);
        eventually("fail then succeed", || probe.runs(1) == 8).await;
        assert!(
            t.elapsed() < Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
        cancel.cancel();
        run.await.unwrap();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                r#"kplex_controller_reconcile_total{controller="flaky",result="error"} 6"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"kplex_controller_reconcile_total{controller="flaky",result="ok"} 2"#)
        );
        assert!(text.contains(r#"workqueue_work_duration_seconds_count{name="flaky"} 8"#));
        assert!(text.contains(r#"workqueue_depth{name="flaky"} 0"#));
        assert!(
            text.contains(r#"workqueue_retries_total{name="flaky"} 6"#),
            "{text}"
        );
        assert!(
            text.contains(r#"workqueue_adds_total{name="flaky"}"#),
            "{text}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancellation_drains_in_flight_and_returns() {
        let probe = Arc::new(Probe {
            hold: Duration::from_millis(100),
            ..Probe::default()
        });
        let (q, cancel, run) = start(probe.clone(), 2);
        for k in 0..5 {
            q.add(k);
        }
        eventually("two in flight", || {
            probe.in_flight.load(Ordering::SeqCst) == 2
        })
        .await;
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(2), run)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            probe.finished.load(Ordering::SeqCst),
            2,
            "in-flight reconciles finished, no new key was taken"
        );
        assert_eq!(probe.in_flight.load(Ordering::SeqCst), 0);
        assert_eq!(q.len(), 3, "the rest stays queued");
        assert_eq!(q.in_flight(), 0);
    }

    struct Panicky(AtomicUsize);

    #[async_trait::async_trait]
    impl Reconciler for Panicky {
        type Key = &'static str;
        type Error = Infallible;
        async fn reconcile(&self, _: &&'static str) -> Result<Action, Infallible> {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("boom");
            }
            Ok(Action::Done)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_is_an_error_and_the_worker_lives_on() {
        let r = Arc::new(Panicky(AtomicUsize::new(0)));
        let c = Controller::new("panicky", r.clone());
        let q = c.queue().clone();
        let cancel = CancellationToken::new();
        let run = tokio::spawn(c.run(cancel.clone()));
        q.add("k");
        eventually("retried after the panic", || {
            r.0.load(Ordering::SeqCst) == 2 && q.in_flight() == 0
        })
        .await;
        cancel.cancel();
        run.await.unwrap();
    }
}

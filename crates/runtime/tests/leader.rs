//! The leader gate against real stores: two gates (two "replicas") on one store, each
//! running a real controller only while it leads. The embedded store runs every scenario;
//! a real etcd runs the handover and a store outage.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kplex_runtime::{
    Action, CancellationToken, Controller, LeaderGate, LeaseConfig, LeaseDurations, LeaseRecord,
    Reconciler, lease,
};
use kplex_store::{EmbeddedOptions, EmbeddedStore, EtcdOptions, EtcdStore, Store};
use kplex_testing::EtcdServer;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const CLUSTER: &str = "root";
const NAMESPACE: &str = "kube-system";
const NAME: &str = "kplex-controllers";
const KEY: &str = "/registry/coordination.k8s.io/leases/root/kube-system/kplex-controllers";

/// A 2 s lease renewed every 100 ms: a released lease changes hands in about one retry
/// period, an abandoned one after about 2 s, so the two are told apart by timing.
const DURATIONS: LeaseDurations = LeaseDurations {
    lease: Duration::from_secs(2),
    renew_deadline: Duration::from_secs(1),
    retry_period: Duration::from_millis(100),
};

type DynStore = Arc<dyn Store>;

fn embedded() -> (DynStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedOptions::new(dir.path().join("db"))).unwrap();
    (Arc::new(store), dir)
}

async fn etcd() -> (DynStore, EtcdServer) {
    let server = EtcdServer::start();
    let store = EtcdStore::connect(EtcdOptions::new([server.endpoint()]))
        .await
        .unwrap();
    (Arc::new(store), server)
}

/// What every replica's gated controllers did.
#[derive(Default)]
struct Board {
    /// Replicas running their controllers right now, and the most ever at once.
    active: AtomicUsize,
    max_active: AtomicUsize,
    /// Who was handed leadership, in order.
    terms: Mutex<Vec<String>>,
    /// Reconciles per replica.
    reconciles: Mutex<HashMap<String, usize>>,
}

impl Board {
    fn reconciles(&self, id: &str) -> usize {
        self.reconciles
            .lock()
            .unwrap()
            .get(id)
            .copied()
            .unwrap_or(0)
    }
    /// Who led, in order. A leader whose renewals are slow (a loaded machine) may lose
    /// and at once win back its own lease: consecutive terms of one replica count once.
    fn holders(&self) -> Vec<String> {
        let mut terms = self.terms.lock().unwrap().clone();
        terms.dedup();
        terms
    }
}

/// A controller that records which replica reconciled.
struct Echo {
    id: String,
    board: Arc<Board>,
}

#[async_trait::async_trait]
impl Reconciler for Echo {
    type Key = u32;
    type Error = std::convert::Infallible;

    async fn reconcile(&self, _key: &u32) -> Result<Action, Self::Error> {
        *self
            .board
            .reconciles
            .lock()
            .unwrap()
            .entry(self.id.clone())
            .or_default() += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(Action::RequeueAfter(Duration::from_millis(20)))
    }
}

/// One replica: a gate whose gated work is an `Echo` controller kept busy by a requeue.
struct Replica {
    id: String,
    cancel: CancellationToken,
    leading: watch::Receiver<bool>,
    run: JoinHandle<()>,
}

impl Replica {
    fn start(store: &DynStore, id: &str, board: &Arc<Board>, release_on_cancel: bool) -> Self {
        // Shown with a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("kplex_runtime=debug")
            .with_test_writer()
            .try_init();
        let config = LeaseConfig::new(CLUSTER, NAMESPACE, NAME, id)
            .durations(DURATIONS)
            .release_on_cancel(release_on_cancel);
        let gate = LeaderGate::new(store.clone(), config).unwrap();
        assert_eq!(gate.key(), KEY);
        let leading = gate.subscribe();
        let cancel = CancellationToken::new();
        let (id_, board) = (id.to_string(), board.clone());
        let run = tokio::spawn(gate.run(cancel.clone(), move |token| {
            let (id, board) = (id_.clone(), board.clone());
            async move {
                let now = board.active.fetch_add(1, Ordering::SeqCst) + 1;
                board.max_active.fetch_max(now, Ordering::SeqCst);
                board.terms.lock().unwrap().push(id.clone());
                let echo = Echo {
                    id: id.clone(),
                    board: board.clone(),
                };
                let controller = Controller::new(format!("echo-{id}"), Arc::new(echo)).workers(2);
                controller.queue().add(1);
                controller.queue().add(2);
                controller.run(token).await;
                board.active.fetch_sub(1, Ordering::SeqCst);
            }
        }));
        Self {
            id: id.to_string(),
            cancel,
            leading,
            run,
        }
    }

    fn leads(&self) -> bool {
        *self.leading.borrow()
    }

    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.run)
            .await
            .expect("the gate returns once its controllers stopped")
            .unwrap();
    }
}

async fn eventually(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until exactly one of the two leads; returns (leader, follower).
async fn one_leader(a: Replica, b: Replica) -> (Replica, Replica) {
    eventually("a leader", Duration::from_secs(5), || {
        a.leads() || b.leads()
    })
    .await;
    assert!(!(a.leads() && b.leads()), "both lead");
    if a.leads() { (a, b) } else { (b, a) }
}

/// The stored Lease, decoded as the registry serves it.
async fn stored_lease(store: &DynStore) -> (Value, LeaseRecord) {
    let kv = store.get(KEY).await.unwrap().expect("lease stored");
    let obj = kplex_registry::object::decode(&kv.value, kv.mod_revision).unwrap();
    let record = LeaseRecord::from_object(&obj).unwrap();
    (obj, record)
}

fn assert_micro_time(t: Option<&str>) {
    let t = t.expect("time set");
    // 2006-01-02T15:04:05.000000Z
    assert_eq!(t.len(), 27, "{t}");
    assert_eq!((&t[10..11], &t[19..20], &t[26..]), ("T", ".", "Z"), "{t}");
}

/// Two replicas: one leads and alone runs its controllers; when it shuts down it releases
/// the Lease and the other takes over within a few retry periods, long before the lease
/// would have expired.
async fn release_hands_over_at_once(store: DynStore) {
    let board = Arc::new(Board::default());
    let a = Replica::start(&store, "replica-a", &board, true);
    let b = Replica::start(&store, "replica-b", &board, true);
    let (leader, follower) = one_leader(a, b).await;

    // Several renewals later: still one leader, and only its controller works.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(leader.leads() && !follower.leads());
    assert!(board.reconciles(&leader.id) > 0);
    assert_eq!(board.reconciles(&follower.id), 0);

    let (obj, first) = stored_lease(&store).await;
    let uid = obj["metadata"]["uid"].clone();
    assert_eq!(obj["apiVersion"], "coordination.k8s.io/v1");
    assert_eq!(obj["kind"], "Lease");
    assert_eq!(obj["metadata"]["name"], NAME);
    assert_eq!(obj["metadata"]["namespace"], NAMESPACE);
    assert_eq!(obj["metadata"]["annotations"]["kcp.io/cluster"], CLUSTER);
    assert_eq!(obj["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(
        obj["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(obj["spec"]["leaseDurationSeconds"], 2);
    assert_eq!(first.holder_identity.as_deref(), Some(leader.id.as_str()));
    assert_eq!(first.lease_transitions, 0);
    assert_micro_time(first.acquire_time.as_deref());
    assert_micro_time(first.renew_time.as_deref());
    assert_ne!(
        first.acquire_time, first.renew_time,
        "renewed since acquired"
    );

    let (leader_id, follower_id) = (leader.id.clone(), follower.id.clone());
    let stopped = Instant::now();
    leader.stop().await;
    let (_, released) = stored_lease(&store).await;
    assert_ne!(
        released.holder_identity.as_deref(),
        Some(leader_id.as_str())
    );
    let done_by_leader = board.reconciles(&leader_id);

    eventually("the follower takes over", Duration::from_secs(5), || {
        follower.leads()
    })
    .await;
    let took = stopped.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "a released lease changes hands at once, not after expiry: {took:?}"
    );
    eventually("the new leader works", Duration::from_secs(2), || {
        board.reconciles(&follower_id) > 0
    })
    .await;
    assert_eq!(
        board.reconciles(&leader_id),
        done_by_leader,
        "the old leader stopped"
    );

    let (obj, second) = stored_lease(&store).await;
    assert_eq!(
        second.holder_identity.as_deref(),
        Some(follower_id.as_str())
    );
    assert_eq!(second.lease_transitions, 1);
    assert_ne!(second.acquire_time, first.acquire_time);
    assert_eq!(obj["metadata"]["uid"], uid, "updated, never re-created");

    follower.stop().await;
    let (_, last) = stored_lease(&store).await;
    assert_eq!(last.holder_identity, None, "released at shutdown");
    assert_eq!(board.max_active.load(Ordering::SeqCst), 1);
    assert_eq!(board.active.load(Ordering::SeqCst), 0);
    assert_eq!(board.holders(), [leader_id, follower_id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_hands_over_at_once_embedded() {
    let (store, _dir) = embedded();
    release_hands_over_at_once(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_hands_over_at_once_etcd() {
    let (store, _etcd) = etcd().await;
    release_hands_over_at_once(store).await;
}

/// A leader that dies (its gate dropped: no release, no more renewals) is replaced only
/// once its lease has gone unrenewed for the lease duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_leader_is_replaced_after_the_lease_expires() {
    let (store, _dir) = embedded();
    let board = Arc::new(Board::default());
    let a = Replica::start(&store, "replica-a", &board, true);
    let b = Replica::start(&store, "replica-b", &board, true);
    let (leader, follower) = one_leader(a, b).await;
    let (_, before) = stored_lease(&store).await;

    leader.run.abort();
    let died = Instant::now();
    let _ = leader.run.await;
    assert!(
        !*leader.leading.borrow(),
        "a dropped gate reports that it does not lead"
    );
    // Its controllers stop (the gate's drop guard cancels their token) ...
    eventually(
        "the dead leader's controllers stop",
        Duration::from_secs(2),
        || board.active.load(Ordering::SeqCst) == 0,
    )
    .await;
    // ... but its lease still holds for a while.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(!follower.leads(), "took over an unexpired lease");
    let (_, held) = stored_lease(&store).await;
    assert_eq!(held.holder_identity, before.holder_identity);

    eventually("the follower takes over", Duration::from_secs(5), || {
        follower.leads()
    })
    .await;
    let took = died.elapsed();
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    let (_, after) = stored_lease(&store).await;
    assert_eq!(after.holder_identity.as_deref(), Some(follower.id.as_str()));
    assert_eq!(after.lease_transitions, before.lease_transitions + 1);
    assert_eq!(board.max_active.load(Ordering::SeqCst), 1);
    follower.stop().await;
}

/// `release_on_cancel(false)`: a clean shutdown that leaves the lease to expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_release_a_stopped_leader_is_replaced_after_expiry() {
    let (store, _dir) = embedded();
    let board = Arc::new(Board::default());
    let a = Replica::start(&store, "replica-a", &board, false);
    let b = Replica::start(&store, "replica-b", &board, false);
    let (leader, follower) = one_leader(a, b).await;
    let leader_id = leader.id.clone();
    let stopped = Instant::now();
    leader.stop().await;
    let (_, kept) = stored_lease(&store).await;
    assert_eq!(kept.holder_identity.as_deref(), Some(leader_id.as_str()));
    eventually("the follower takes over", Duration::from_secs(5), || {
        follower.leads()
    })
    .await;
    assert!(stopped.elapsed() >= Duration::from_millis(1500));
    assert_eq!(board.max_active.load(Ordering::SeqCst), 1);
    follower.stop().await;
}

/// Someone else takes the Lease (here: a compare-and-swap by the test, as a replica that
/// judged it expired would): the leader notices on its next renewal, cancels its
/// controllers, and competes again; when the intruder never renews, it wins again and
/// its controllers start again. leaseTransitions counts every change of holder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_lease_stops_the_controllers_until_won_back() {
    let (store, _dir) = embedded();
    let board = Arc::new(Board::default());
    let a = Replica::start(&store, "replica-a", &board, true);
    eventually("a leads", Duration::from_secs(5), || a.leads()).await;

    let kv = store.get(KEY).await.unwrap().unwrap();
    let mut obj = kplex_registry::object::decode(&kv.value, kv.mod_revision).unwrap();
    let record = LeaseRecord::from_object(&obj).unwrap();
    lease::hold(
        &mut obj,
        CLUSTER,
        &record,
        "intruder",
        Duration::from_secs(2),
        std::time::SystemTime::now(),
    );
    let value = kplex_registry::object::encode(&obj).unwrap();
    assert!(
        store
            .update(KEY, value, kv.mod_revision)
            .await
            .unwrap()
            .succeeded()
    );

    eventually("a steps down", Duration::from_secs(2), || !a.leads()).await;
    eventually("its controllers stop", Duration::from_secs(2), || {
        board.active.load(Ordering::SeqCst) == 0
    })
    .await;
    let (_, taken) = stored_lease(&store).await;
    assert_eq!(taken.holder_identity.as_deref(), Some("intruder"));
    assert_eq!(taken.lease_transitions, 1);

    eventually(
        "a wins the expired lease back",
        Duration::from_secs(5),
        || a.leads(),
    )
    .await;
    eventually("its controllers run again", Duration::from_secs(2), || {
        board.active.load(Ordering::SeqCst) == 1
    })
    .await;
    let (_, back) = stored_lease(&store).await;
    assert_eq!(back.holder_identity.as_deref(), Some("replica-a"));
    assert_eq!(back.lease_transitions, 2);
    assert!(
        board.terms.lock().unwrap().len() >= 2,
        "lead was called again"
    );
    a.stop().await;
}

/// The store goes away: the leader cannot renew, gives up within the renew deadline and
/// stops its controllers; when the store is back, it wins its own lease again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_steps_down_when_the_store_is_unreachable() {
    let (store, mut etcd) = etcd().await;
    let board = Arc::new(Board::default());
    let a = Replica::start(&store, "replica-a", &board, true);
    eventually("a leads", Duration::from_secs(5), || a.leads()).await;

    tokio::task::block_in_place(|| etcd.kill());
    let killed = Instant::now();
    eventually("a steps down", Duration::from_secs(3), || !a.leads()).await;
    assert!(killed.elapsed() <= DURATIONS.renew_deadline + Duration::from_millis(500));
    eventually("its controllers stop", Duration::from_secs(2), || {
        board.active.load(Ordering::SeqCst) == 0
    })
    .await;

    tokio::task::block_in_place(|| etcd.restart());
    eventually("a leads again", Duration::from_secs(8), || a.leads()).await;
    let (_, record) = stored_lease(&store).await;
    assert_eq!(record.holder_identity.as_deref(), Some("replica-a"));
    assert_eq!(
        record.lease_transitions, 0,
        "still its own lease: no transition"
    );
    a.stop().await;
}

/// Gated work that returns by itself while leading: the gate steps down (releases the
/// Lease), waits a retry period and competes again, calling `lead` again when it wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gated_work_that_returns_makes_the_gate_step_down_and_retry() {
    let (store, _dir) = embedded();
    let config = LeaseConfig::new(CLUSTER, NAMESPACE, NAME, "replica-a").durations(DURATIONS);
    let gate = LeaderGate::new(store.clone(), config).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let cancel = CancellationToken::new();
    let run = tokio::spawn(gate.run(cancel.clone(), {
        let calls = calls.clone();
        move |token| {
            let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if !first {
                    token.cancelled().await;
                }
            }
        }
    }));
    eventually("lead called again", Duration::from_secs(3), || {
        calls.load(Ordering::SeqCst) == 2
    })
    .await;
    let (_, record) = stored_lease(&store).await;
    assert_eq!(record.holder_identity.as_deref(), Some("replica-a"));
    assert_eq!(record.lease_transitions, 1, "released, then taken again");
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

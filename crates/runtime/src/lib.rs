//! kplex's controller runtime: a work queue, reconcilers, cancellation, one span and
//! metrics per reconcile, and a leader gate on a `coordination.k8s.io/v1` Lease.
//!
//! ```text
//! store ─watch─▶ Informer ─changed/deleted─▶ a feature's EventHandler
//!                                                  │ add(key)
//!                                                  ▼
//!                         ┌── requeue / backoff ── WorkQueue ──next()──▶ workers (Controller::run)
//!                         └──────────────────────────────────────────── reconcile(key) in a span
//!                                                      → Action::Done | RequeueAfter | Err
//! ```
//!
//! # The informer ([`Informer`], [`EventHandler`])
//!
//! One watch over the store for the whole process. Each feature hands it an
//! [`EventHandler`] that says, from the key and the raw bytes, which writes may concern it;
//! only those are parsed, once, and handed over. At start the informer reads what the
//! handlers ask for at one revision (so what CRDs and bindings serve is served before the
//! first request) and watches from the next; in the background it looks for work a restart
//! left unfinished.
//!
//! # The work queue ([`WorkQueue`])
//!
//! The in-process controllers' rules, generic over the key:
//! - a key is queued at most once: adding a waiting key again does nothing (dedupe);
//! - a key is never handed to two workers at once;
//! - a key added while a worker has it is marked dirty and queued again when that worker
//!   finishes: the change that came in meanwhile is always seen by a later run, and any
//!   number of adds meanwhile cost one run (level-triggered);
//! - `add_after` delays a key; a key has one due time and the earliest wins, so an event for
//!   a key waiting on a requeue or a backoff runs it now, and then its own result decides
//!   what comes next (kube-rs's scheduler does the same; client-go would run it twice).
//!
//! One difference from the in-process queue: when a run fails and the key was added while
//! it ran, the key runs again at once (it changed) instead of after the retry delay;
//! client-go's queue does the same. Its failure count still grows, so a key that keeps
//! failing still backs off.
//!
//! # Controllers ([`Controller`], [`Reconciler`])
//!
//! A controller is a name, a [`Reconciler`], a queue and a number of workers. Each
//! reconcile runs in a `reconcile` span with fields `controller` and `key`, and reports
//! into [`Metrics`]. `Ok(Action::Done)` lets the key rest until added again;
//! `Ok(Action::RequeueAfter(d))` looks again after `d`; an `Err` (or a panic) is logged
//! once, here, and retried after a per-key exponential [`Backoff`] that a success resets.
//! Cancelling the token given to [`Controller::run`] stops workers from taking new keys;
//! `run` returns once the reconciles in flight have finished.
//!
//! # Leader election ([`LeaderGate`])
//!
//! A gate runs a set of controllers only while it holds a Lease stored at
//! `/registry/coordination.k8s.io/leases/<cluster>/<namespace>/<name>`, the key kplex's
//! registry serves, so `kubectl get leases -n <namespace>` in that logical cluster shows
//! the holder. Semantics are client-go's `leaderelection` with a `LeaseLock`:
//!
//! ```text
//!  Candidate ── every retry period (+≤20% jitter): read the Lease; take it with a
//!     ▲         compare-and-swap if it is absent, released (no holder), already ours,
//!     │         or unchanged for its leaseDurationSeconds as timed on our clock
//!     │              │ won: acquireTime, renewTime, leaseTransitions + 1 (new holder)
//!     │              ▼
//!     │       Leader ── lead(token) spawned; every retry period: renew (renewTime)
//!     │              │
//!     │ lost: another holder found, or no renewal succeeded within the renew deadline
//!     │       → token cancelled, wait for the gated future, back to Candidate
//!     │              │
//!     │              │ lead's future returned by itself → token cancelled, release,
//!     └──────────────┘ wait a retry period, back to Candidate
//!
//!  cancelled (either state) → token cancelled, wait for the gated future, then release
//!  the Lease (holder "", leaseDurationSeconds 1) so another candidate takes it at once
//!  (`release_on_cancel`, on by default); run returns.
//! ```
//!
//! Expiry is judged as client-go judges it: a candidate times how long the Lease has
//! not changed on its own monotonic clock, not by comparing `renewTime` with its wall
//! clock, so replicas whose clocks disagree still never overlap. The cost: a candidate
//! that starts while a dead leader's Lease is in the store waits one lease duration even
//! if that Lease is long stale. Safety rests on `renew_deadline < lease`: a leader that
//! cannot renew stops its controllers before any other candidate can take over. Every
//! write the gated controllers make is still a compare-and-swap, so the reconciles that
//! are draining when leadership moves cannot corrupt state, only repeat work.

//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use kplex_runtime::{
//!     Action, CancellationToken, Controller, LeaderGate, LeaseConfig, Metrics, Reconciler,
//! };
//!
//! struct Namespaces;
//!
//! #[async_trait::async_trait]
//! impl Reconciler for Namespaces {
//!     type Key = (String, String); // (logical cluster, name)
//!     type Error = std::io::Error;
//!     async fn reconcile(&self, key: &Self::Key) -> Result<Action, Self::Error> {
//!         // read current state, write with compare-and-swap …
//!         Ok(Action::RequeueAfter(Duration::from_secs(30)))
//!     }
//! }
//!
//! # async fn example(store: Arc<dyn kplex_store::Store>) -> Result<(), kplex_runtime::Error> {
//! let mut registry = prometheus_client::registry::Registry::default();
//! let metrics = Metrics::register(&mut registry);
//! let config = LeaseConfig::new("root", "kube-system", "kplex-controllers", "host-1-a8f3");
//! let gate = LeaderGate::new(store, config)?;
//! let shutdown = CancellationToken::new();
//! gate.run(shutdown, move |leading| {
//!     let controller = Controller::new("namespaces", Arc::new(Namespaces))
//!         .workers(4)
//!         .metrics(&metrics);
//!     // … start the watches that feed `controller.queue().clone()`, stopped by `leading` …
//!     controller.run(leading)
//! })
//! .await;
//! # Ok(())
//! # }
//! ```

mod controller;
mod error;
mod informer;
mod leader;
pub mod lease;
mod metrics;
mod queue;
mod reconciler;

pub use controller::{Backoff, Controller};
pub use error::{Error, Result};
pub use informer::{ControllerSet, EventHandler, Informer, spawn_until};
pub use leader::{LeaderGate, LeaseConfig, LeaseDurations};
pub use lease::LeaseRecord;
pub use metrics::Metrics;
pub use queue::{Claim, QueueKey, WorkQueue};
pub use reconciler::{Action, Reconciler};
pub use tokio_util::sync::CancellationToken;

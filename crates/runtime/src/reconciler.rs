//! What a controller does with a key.

use std::time::Duration;

use async_trait::async_trait;

use crate::queue::QueueKey;

/// Brings the world in line with the desired state of one key, reading current state
/// (level-triggered: it is told *which* key, never *what* changed, so a missed or repeated
/// event is harmless).
///
/// `async-trait` rather than a native `async fn`: the trait stays usable as
/// `dyn Reconciler<Key = K, Error = E>`, and one box per reconcile is nothing next to the
/// store reads a reconcile makes.
#[async_trait]
pub trait Reconciler: Send + Sync + 'static {
    type Key: QueueKey;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Reconciles `key`. `Ok(action)` says when to look again; `Err` is logged by the
    /// controller and retried with per-key exponential backoff ([`crate::Backoff`]).
    async fn reconcile(&self, key: &Self::Key) -> Result<Action, Self::Error>;
}

/// What a successful reconcile asks for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing until the key is added again.
    Done,
    /// Look again after this long (e.g. waiting on a finalizer or a deadline), or sooner
    /// if the key is added again meanwhile.
    RequeueAfter(Duration),
}

impl Action {
    /// `Done` when `done`, else look again after `after`: the shape of reconcilers that
    /// answer "finished, or not yet".
    pub fn done_or_after(done: bool, after: Duration) -> Self {
        if done {
            Action::Done
        } else {
            Action::RequeueAfter(after)
        }
    }
}

//! The leader gate: runs a set of controllers only while this process holds a
//! `coordination.k8s.io/v1` Lease in the store (client-go's `leaderelection` with a
//! `LeaseLock`; the state machine is in the crate docs).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kplex_registry::object;
use kplex_store::{KeyValue, Store, TxnOutcome};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::lease::{self, LeaseRecord};

/// How long a lease lasts and how often it is renewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseDurations {
    /// How long after its last change a lease held by another stops counting
    /// (`leaseDurationSeconds`, rounded up to whole seconds).
    pub lease: Duration,
    /// The leader steps down if no renewal succeeded for this long; less than `lease`, so
    /// it stops before anyone else may start.
    pub renew_deadline: Duration,
    /// Time between attempts, for candidates (plus up to 20% jitter) and for renewals.
    pub retry_period: Duration,
}

impl Default for LeaseDurations {
    /// kube-controller-manager's defaults: 15 s, 10 s, 2 s.
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Which Lease to hold, as whom, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// The logical cluster the Lease lives in.
    pub cluster: String,
    pub namespace: String,
    pub name: String,
    /// This candidate's `holderIdentity`: unique per process (e.g. host name plus a random
    /// suffix). A process that finds its own identity in the Lease takes it at once.
    pub identity: String,
    pub durations: LeaseDurations,
    /// Whether cancelling [`LeaderGate::run`] lets the Lease go, so another candidate takes
    /// over at once instead of after the lease expires (client-go's `ReleaseOnCancel`).
    pub release_on_cancel: bool,
}

impl LeaseConfig {
    /// The default durations, released on cancel.
    pub fn new(
        cluster: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            cluster: cluster.into(),
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            durations: LeaseDurations::default(),
            release_on_cancel: true,
        }
    }

    pub fn durations(mut self, durations: LeaseDurations) -> Self {
        self.durations = durations;
        self
    }

    pub fn release_on_cancel(mut self, release: bool) -> Self {
        self.release_on_cancel = release;
        self
    }

    /// client-go's checks: a leader must give up (renew deadline) before anyone else may
    /// take over (lease), and must get more than one attempt in before giving up.
    fn validate(&self) -> Result<()> {
        let d = &self.durations;
        let invalid = |msg: &str| Err(Error::InvalidConfig(msg.to_string()));
        if self.identity.is_empty() || self.name.is_empty() || self.namespace.is_empty() {
            return invalid("identity, name and namespace must not be empty");
        }
        if self.cluster.is_empty() {
            return invalid("the logical cluster must not be empty");
        }
        if d.retry_period.is_zero() {
            return invalid("the retry period must be positive");
        }
        if d.lease <= d.renew_deadline {
            return invalid("the lease duration must be longer than the renew deadline");
        }
        if d.renew_deadline <= d.retry_period.mul_f64(1.2) {
            return invalid("the renew deadline must be longer than 1.2 retry periods");
        }
        Ok(())
    }
}

/// Runs what it gates only while it holds the Lease. See the crate docs for the states.
pub struct LeaderGate {
    store: Arc<dyn Store>,
    config: LeaseConfig,
    key: String,
    leading: watch::Sender<bool>,
    /// The Lease as last read, and when (on this process's monotonic clock) it last
    /// changed: a lease held by another counts until `changed + its duration`, so replicas'
    /// wall clocks need not agree (client-go's `observedTime`).
    observed: Option<Observed>,
}

struct Observed {
    mod_revision: i64,
    changed: Instant,
    record: LeaseRecord,
}

/// One try at taking or keeping the Lease.
enum Attempt {
    Held,
    /// Another candidate holds a lease that has not expired.
    Busy(String),
    /// Someone else wrote the Lease between our read and our compare-and-swap.
    Raced,
}

/// Why a term as leader ended.
enum End {
    Cancelled,
    Lost(String),
    /// The gated future returned while still leading.
    Returned,
}

impl LeaderGate {
    /// A candidate for the Lease `config` names; nothing happens until [`LeaderGate::run`].
    pub fn new(store: Arc<dyn Store>, config: LeaseConfig) -> Result<Self> {
        config.validate()?;
        let key = object::keys::object(
            lease::GROUP,
            lease::RESOURCE,
            &config.cluster,
            Some(&config.namespace),
            &config.name,
        );
        Ok(Self {
            store,
            config,
            key,
            leading: watch::Sender::new(false),
            observed: None,
        })
    }

    /// The Lease's store key.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Follows leadership (`true` while leading), e.g. for health reporting. Take it
    /// before [`LeaderGate::run`], which consumes the gate.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    /// Competes for the Lease until `cancel` is cancelled. Each time leadership is won,
    /// `lead` is called with a token that is cancelled when it is lost (or at shutdown),
    /// and the future it returns is spawned; it should run the gated controllers until
    /// that token is cancelled. The gate waits for that future to finish before competing
    /// again, or before releasing the Lease at shutdown; then `run` returns.
    ///
    /// A `lead` future that returns while still leading makes the gate step down (release
    /// the Lease) and compete again after a retry period. Dropping `run`'s future cancels
    /// the gated token but neither waits nor releases: the Lease then expires, like a
    /// crashed process's.
    pub async fn run<F, Fut>(mut self, cancel: CancellationToken, mut lead: F)
    where
        F: FnMut(CancellationToken) -> Fut + Send,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let span = tracing::info_span!(
            "leader_election",
            cluster = %self.config.cluster,
            lease = %format!("{}/{}", self.config.namespace, self.config.name),
            identity = %self.config.identity,
        );
        async move {
            loop {
                let Some(won_at) = self.campaign(&cancel).await else {
                    return;
                };
                tracing::info!("became leader");
                let leader = cancel.child_token();
                // Stops the gated controllers if this future is dropped mid-term.
                let guard = leader.clone().drop_guard();
                self.leading.send_replace(true);
                let mut task = Some(tokio::spawn(lead(leader.clone())));
                let end = self.hold(&cancel, &mut task, won_at).await;
                leader.cancel();
                self.leading.send_replace(false);
                if let Some(task) = task {
                    finish(task).await;
                }
                drop(guard);
                match end {
                    End::Cancelled => {
                        if self.config.release_on_cancel {
                            self.release().await;
                        }
                        tracing::info!("stopped leading: shutting down");
                        return;
                    }
                    End::Lost(why) => tracing::warn!(reason = %why, "lost leadership"),
                    End::Returned => {
                        tracing::warn!("gated controllers returned while leading; stepping down");
                        self.release().await;
                        tokio::select! {
                            () = cancel.cancelled() => return,
                            () = tokio::time::sleep(self.config.durations.retry_period) => {}
                        }
                    }
                }
            }
        }
        .instrument(span)
        .await;
    }

    /// Candidate: tries every retry period until the Lease is ours; `None` when cancelled.
    /// Returns when the winning attempt started (the lease runs from no earlier).
    async fn campaign(&mut self, cancel: &CancellationToken) -> Option<Instant> {
        let d = self.config.durations;
        let mut last_holder = None;
        loop {
            let started = Instant::now();
            let attempt = tokio::select! {
                biased;
                () = cancel.cancelled() => return None,
                r = tokio::time::timeout(d.renew_deadline, self.try_acquire_or_renew()) => r,
            };
            match attempt {
                Ok(Ok(Attempt::Held)) => return Some(started),
                Ok(Ok(Attempt::Busy(holder))) => {
                    if last_holder.as_ref() != Some(&holder) {
                        tracing::debug!(%holder, "lease held by another candidate");
                        last_holder = Some(holder);
                    }
                }
                Ok(Ok(Attempt::Raced)) => {}
                Ok(Err(e @ Error::Malformed { .. })) => {
                    tracing::warn!(error = %e, "cannot take the lease")
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "acquiring the lease failed"),
                Err(_) => tracing::debug!("acquiring the lease timed out"),
            }
            // Jitter keeps candidates that started together from trying in lockstep.
            let pause = d.retry_period.mul_f64(1.0 + 0.2 * rand::random::<f64>());
            tokio::select! {
                () = cancel.cancelled() => return None,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Leader: renews every retry period until cancelled, the gated task returns, or the
    /// lease is lost (another holder, or no renewal succeeded within the renew deadline).
    async fn hold(
        &mut self,
        cancel: &CancellationToken,
        task: &mut Option<JoinHandle<()>>,
        mut renewed: Instant,
    ) -> End {
        let d = self.config.durations;
        loop {
            let deadline = renewed + d.renew_deadline;
            {
                let Some(running) = task.as_mut() else {
                    return End::Returned;
                };
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return End::Cancelled,
                    done = running => {
                        *task = None;
                        if let Err(e) = done {
                            tracing::error!(error = %e, "gated controllers failed");
                        }
                        return End::Returned;
                    }
                    () = tokio::time::sleep_until(deadline) => {
                        return End::Lost("no renewal within the renew deadline".into());
                    }
                    () = tokio::time::sleep(d.retry_period) => {}
                }
            }
            let started = Instant::now();
            let left = deadline.saturating_duration_since(started);
            let attempt = tokio::select! {
                biased;
                () = cancel.cancelled() => return End::Cancelled,
                r = tokio::time::timeout(left, self.try_acquire_or_renew()) => r,
            };
            match attempt {
                Ok(Ok(Attempt::Held)) => renewed = started,
                Ok(Ok(Attempt::Busy(holder))) => {
                    return End::Lost(format!("the lease is held by {holder}"));
                }
                Ok(Ok(Attempt::Raced)) => tracing::debug!("lease written meanwhile; retrying"),
                Ok(Err(e)) => tracing::debug!(error = %e, "renewing the lease failed"),
                Err(_) => tracing::debug!("renewing the lease timed out"),
            }
        }
    }

    /// Reads the Lease and takes it if it is absent, released, expired or already ours,
    /// with a compare-and-swap on the revision read.
    async fn try_acquire_or_renew(&mut self) -> Result<Attempt> {
        let now = SystemTime::now();
        let Some(kv) = self.read().await? else {
            let obj = lease::new_object(
                &self.config.cluster,
                &self.config.namespace,
                &self.config.name,
                &self.config.identity,
                self.config.durations.lease,
                now,
            );
            let outcome = self
                .store
                .create(&self.key, self.encode(&obj)?)
                .await
                .map_err(|source| self.store_error("creating", source))?;
            return self.written(outcome);
        };
        let (mut obj, record) = self.decode(&kv)?;
        self.observe(kv.mod_revision, record.clone());
        if let Some(holder) = &record.holder_identity
            && *holder != self.config.identity
            && self.observed_valid()
        {
            return Ok(Attempt::Busy(holder.clone()));
        }
        lease::hold(
            &mut obj,
            &self.config.cluster,
            &record,
            &self.config.identity,
            self.config.durations.lease,
            now,
        );
        let outcome = self
            .store
            .update(&self.key, self.encode(&obj)?, kv.mod_revision)
            .await
            .map_err(|source| self.store_error("updating", source))?;
        self.written(outcome)
    }

    /// Notes what a compare-and-swap left in the store.
    fn written(&mut self, outcome: TxnOutcome) -> Result<Attempt> {
        match outcome {
            TxnOutcome::Succeeded { kv, .. } => {
                if let Some(kv) = kv {
                    let (_, record) = self.decode(&kv)?;
                    self.observe(kv.mod_revision, record);
                }
                Ok(Attempt::Held)
            }
            TxnOutcome::Failed { current } => {
                if let Some(kv) = current {
                    let (_, record) = self.decode(&kv)?;
                    self.observe(kv.mod_revision, record);
                }
                Ok(Attempt::Raced)
            }
        }
    }

    /// Lets the Lease go if it is still ours, so another candidate takes over at once.
    async fn release(&mut self) {
        let limit = self.config.durations.renew_deadline;
        match tokio::time::timeout(limit, self.try_release()).await {
            Ok(Ok(true)) => tracing::info!("released the lease"),
            Ok(Ok(false)) => tracing::debug!("the lease was no longer ours to release"),
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the lease failed"),
            Err(_) => tracing::warn!("releasing the lease timed out"),
        }
    }

    async fn try_release(&mut self) -> Result<bool> {
        // A concurrent write (say, a label added with kubectl) only costs a retry.
        for _ in 0..3 {
            let Some(kv) = self.read().await? else {
                return Ok(false);
            };
            let (mut obj, record) = self.decode(&kv)?;
            if record.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
                return Ok(false);
            }
            lease::release(&mut obj, &self.config.cluster, &record, SystemTime::now());
            let outcome = self
                .store
                .update(&self.key, self.encode(&obj)?, kv.mod_revision)
                .await
                .map_err(|source| self.store_error("releasing", source))?;
            if outcome.succeeded() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn observe(&mut self, mod_revision: i64, record: LeaseRecord) {
        if self
            .observed
            .as_ref()
            .is_some_and(|o| o.mod_revision == mod_revision)
        {
            return;
        }
        self.observed = Some(Observed {
            mod_revision,
            changed: Instant::now(),
            record,
        });
    }

    /// Whether the lease last observed is still held: it changed less than its duration ago.
    fn observed_valid(&self) -> bool {
        self.observed
            .as_ref()
            .is_some_and(|o| o.changed + o.record.duration() > Instant::now())
    }

    async fn read(&self) -> Result<Option<KeyValue>> {
        self.store
            .get(&self.key)
            .await
            .map_err(|source| self.store_error("reading", source))
    }

    fn decode(&self, kv: &KeyValue) -> Result<(serde_json::Value, LeaseRecord)> {
        let malformed = |reason: String| Error::Malformed {
            key: self.key.clone(),
            reason,
        };
        let obj = object::decode(&kv.value, kv.mod_revision).map_err(|e| malformed(e.message))?;
        let record = LeaseRecord::from_object(&obj).map_err(malformed)?;
        Ok((obj, record))
    }

    fn encode(&self, obj: &serde_json::Value) -> Result<bytes::Bytes> {
        object::encode(obj).map_err(|e| Error::Encode {
            key: self.key.clone(),
            reason: e.message,
        })
    }

    fn store_error(&self, action: &'static str, source: kplex_store::Error) -> Error {
        Error::Store {
            action,
            key: self.key.clone(),
            source,
        }
    }
}

impl Drop for LeaderGate {
    /// A gate dropped mid-term (its `run` future dropped) no longer leads: say so to
    /// subscribers, who would otherwise keep reading the last `true`.
    fn drop(&mut self) {
        self.leading.send_replace(false);
    }
}

/// Waits for the gated future to finish after its token was cancelled.
async fn finish(task: JoinHandle<()>) {
    if let Err(e) = task.await {
        tracing::error!(error = %e, "gated controllers failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(d: LeaseDurations) -> LeaseConfig {
        LeaseConfig::new("root", "kube-system", "kplex", "a").durations(d)
    }

    #[test]
    fn durations_must_let_the_leader_give_up_first() {
        let ms = Duration::from_millis;
        let ok = LeaseDurations {
            lease: ms(1000),
            renew_deadline: ms(500),
            retry_period: ms(100),
        };
        assert!(config(ok).validate().is_ok());
        assert!(config(LeaseDurations::default()).validate().is_ok());
        for bad in [
            LeaseDurations {
                renew_deadline: ms(1000),
                ..ok
            },
            LeaseDurations {
                retry_period: ms(450),
                ..ok
            },
            LeaseDurations {
                retry_period: ms(0),
                ..ok
            },
        ] {
            assert!(matches!(
                config(bad).validate(),
                Err(Error::InvalidConfig(_))
            ));
        }
        let nameless = LeaseConfig::new("root", "kube-system", "kplex", "");
        assert!(nameless.validate().is_err());
    }
}

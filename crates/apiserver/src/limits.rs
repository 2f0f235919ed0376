//! Overload protection, as kube-apiserver's max-in-flight filter: separate budgets for
//! read-only and mutating requests (answered 429 with `Retry-After: 1` when exhausted, never
//! queued), a per-user cap on concurrent watch streams, and a deadline for requests that
//! are not long-running (504).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kplex_apimachinery::ApiError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Clone, Debug)]
pub struct LimitsConfig {
    /// Concurrent non-mutating requests; 0 = unlimited (as in kube).
    pub max_requests_inflight: usize,
    /// Concurrent mutating requests; 0 = unlimited.
    pub max_mutating_requests_inflight: usize,
    /// Concurrent watch streams of one user; 0 = unlimited.
    pub max_watches_per_user: usize,
    /// Deadline of non-watch requests.
    pub request_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_requests_inflight: 400,
            max_mutating_requests_inflight: 200,
            max_watches_per_user: 1000,
            request_timeout: Duration::from_secs(60),
        }
    }
}

pub struct Limits {
    readonly: Option<Arc<Semaphore>>,
    mutating: Option<Arc<Semaphore>>,
    max_watches: usize,
    watches: Arc<Mutex<HashMap<String, usize>>>,
    pub request_timeout: Duration,
}

/// Held for as long as a request counts against a limit.
#[derive(Debug)]
pub enum Permit {
    Unlimited,
    InFlight(#[allow(dead_code)] OwnedSemaphorePermit),
    Watch(WatchPermit),
}

/// One watch stream of a user; the count drops when the stream ends.
#[derive(Debug)]
pub struct WatchPermit {
    user: String,
    watches: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for WatchPermit {
    fn drop(&mut self) {
        if let Ok(mut watches) = self.watches.lock()
            && let Some(n) = watches.get_mut(&self.user)
        {
            *n -= 1;
            if *n == 0 {
                watches.remove(&self.user);
            }
        }
    }
}

fn too_many() -> ApiError {
    ApiError::too_many_requests("Too many requests, please try again later.", 1)
}

impl Limits {
    pub fn new(config: &LimitsConfig) -> Self {
        let semaphore = |n: usize| (n > 0).then(|| Arc::new(Semaphore::new(n)));
        Self {
            readonly: semaphore(config.max_requests_inflight),
            mutating: semaphore(config.max_mutating_requests_inflight),
            max_watches: config.max_watches_per_user,
            watches: Arc::default(),
            request_timeout: config.request_timeout,
        }
    }

    /// Admits a non-watch request, or refuses it with 429 when its budget is spent.
    /// `privileged` (system:masters) is never limited, as in kube, so that an operator can
    /// always reach an overloaded server.
    pub fn admit(&self, mutating: bool, privileged: bool) -> Result<Permit, ApiError> {
        let budget = if mutating {
            &self.mutating
        } else {
            &self.readonly
        };
        match budget {
            Some(sem) if !privileged => sem
                .clone()
                .try_acquire_owned()
                .map(Permit::InFlight)
                .map_err(|_| too_many()),
            _ => Ok(Permit::Unlimited),
        }
    }

    /// Admits one more watch stream of `user`, or refuses it with 429.
    pub fn admit_watch(&self, user: &str) -> Result<Permit, ApiError> {
        if self.max_watches == 0 {
            return Ok(Permit::Unlimited);
        }
        let mut watches = self
            .watches
            .lock()
            .map_err(|_| ApiError::internal("watch accounting is unavailable"))?;
        let n = watches.entry(user.to_string()).or_insert(0);
        if *n >= self.max_watches {
            return Err(ApiError::too_many_requests(
                &format!(
                    "too many watches of user {user:?} (limit {})",
                    self.max_watches
                ),
                1,
            ));
        }
        *n += 1;
        Ok(Permit::Watch(WatchPermit {
            user: user.to_string(),
            watches: self.watches.clone(),
        }))
    }

    /// Runs `fut` under the request deadline; 504 Timeout when it passes.
    pub async fn deadline<T>(
        &self,
        fut: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        match tokio::time::timeout(self.request_timeout, fut).await {
            Ok(out) => out,
            Err(_) => Err(ApiError::timeout(
                &format!(
                    "request did not complete within {}s",
                    self.request_timeout.as_secs_f64()
                ),
                0,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(readonly: usize, mutating: usize, watches: usize) -> Limits {
        Limits::new(&LimitsConfig {
            max_requests_inflight: readonly,
            max_mutating_requests_inflight: mutating,
            max_watches_per_user: watches,
            request_timeout: Duration::from_millis(50),
        })
    }

    #[test]
    fn in_flight_budgets_are_separate_and_released() {
        let l = limits(1, 1, 0);
        let held = l.admit(false, false).unwrap();
        let err = l.admit(false, false).unwrap_err();
        assert_eq!(err.code, 429);
        assert_eq!(err.details.unwrap().retry_after_seconds, Some(1));
        // The mutating budget is its own; masters are never limited.
        let _m = l.admit(true, false).unwrap();
        assert!(l.admit(true, false).is_err());
        assert!(l.admit(false, true).is_ok());
        drop(held);
        assert!(l.admit(false, false).is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let l = limits(0, 0, 0);
        let _a: Vec<_> = (0..10).map(|_| l.admit(false, false).unwrap()).collect();
        let _w: Vec<_> = (0..10).map(|_| l.admit_watch("u").unwrap()).collect();
    }

    #[test]
    fn watches_are_counted_per_user() {
        let l = limits(0, 0, 2);
        let a = l.admit_watch("alice").unwrap();
        let _b = l.admit_watch("alice").unwrap();
        assert_eq!(l.admit_watch("alice").unwrap_err().code, 429);
        let _c = l.admit_watch("bob").unwrap();
        drop(a);
        assert!(l.admit_watch("alice").is_ok());
    }

    #[tokio::test]
    async fn slow_requests_time_out() {
        let l = limits(0, 0, 0);
        let err = l
            .deadline(async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok::<_, ApiError>(())
            })
            .await
            .unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (504, "Timeout"));
        assert!(l.deadline(async { Ok::<_, ApiError>(1) }).await.is_ok());
    }
}

//! WATCH: the store's watch turned into Kubernetes watch events, with initial ADDED events
//! for `resourceVersion` 0/unset, selector semantics, bookmarks and 410 for compacted
//! versions.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use futures::{Stream, StreamExt, stream};
use kplex_apimachinery::ApiError;
use kplex_store::{EventKind, KeyRange, Store};

use super::{
    ListOptions, Registry, Scope, Selectors, Stored, cache::Miss, list::parse_resource_version,
    store_error,
};

#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    pub selectors: Selectors,
    pub resource_version: Option<String>,
    pub allow_bookmarks: bool,
    /// `sendInitialEvents=true`: a streaming list, ended by an annotated bookmark.
    pub send_initial_events: bool,
    pub bookmark_interval: Option<Duration>,
    /// When the server ends the watch (`timeoutSeconds`): one bookmark goes out shortly
    /// before, as kube's cacher sends one, so a client resumes from a fresh revision.
    pub timeout: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchEventKind {
    Added,
    Modified,
    Deleted,
    Bookmark,
    Error,
}

impl WatchEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
            Self::Bookmark => "BOOKMARK",
            Self::Error => "ERROR",
        }
    }
}

/// One watch event: an object (stored bytes + version), a bookmark, or an error.
#[derive(Clone, Debug)]
pub enum WatchEvent {
    Object(WatchEventKind, Stored),
    /// An object from the watch cache, rendered once for all watchers.
    Shared(WatchEventKind, Arc<super::cache::SharedObject>),
    /// A bookmark at this resource version; `initial_events_end` marks the end of a streaming list.
    Bookmark {
        resource_version: i64,
        initial_events_end: bool,
    },
    Error(ApiError),
}

pub type WatchStream = Pin<Box<dyn Stream<Item = WatchEvent> + Send>>;

const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// How far behind the watch cache's head a watch may resume from the store's history.
/// Further back it gets 410 Expired and relists, as kube-apiserver answers any watch older
/// than its cache: a replay reads every revision in between (all keys' writes, not just the
/// resource's) and decodes each match once per watcher, so after a restart a fleet of agents
/// resuming from old revisions would read the same long history once each, while a relist
/// from the cache costs each only its own objects. A watch of something nothing has written
/// to since its revision resumes however old that is: the store skips such replays.
pub const MAX_STORE_REPLAY: i64 = 4096;

impl Registry {
    pub async fn watch(&self, scope: &Scope, opts: WatchOptions) -> Result<WatchStream, ApiError> {
        let unset = opts.resource_version.as_deref().is_none_or(str::is_empty);
        if unset && self.shared_store {
            return self.watch_consistent(scope, opts).await;
        }
        self.watch_from(scope, opts).await
    }

    /// From the watch cache when its window reaches `opts`' start, else from the store.
    async fn watch_from(&self, scope: &Scope, opts: WatchOptions) -> Result<WatchStream, ApiError> {
        match self.watch_cached(scope, &opts).await {
            Ok(stream) => Ok(stream),
            Err(Miss::Error(e)) => Err(*e),
            Err(Miss::BeforeWindow { head }) => {
                let from = resumed_from(&opts)?;
                if head - from > MAX_STORE_REPLAY && !self.quiet_since(scope, from) {
                    let err = ApiError::resource_expired(format!(
                        "too old resource version: {from} ({})",
                        head - MAX_STORE_REPLAY
                    ));
                    return Ok(Box::pin(stream::iter(vec![WatchEvent::Error(err)])));
                }
                self.watch_store(scope, opts).await
            }
            Err(Miss::Closed) => self.watch_store(scope, opts).await,
        }
    }

    /// A watch without a resourceVersion on a store other processes write: its initial
    /// state is a store read (every write acknowledged before the request, whichever
    /// replica took it, is in it — kube's "consistent" start), and its events follow from
    /// that read's revision, from the cache once it has caught up.
    async fn watch_consistent(
        &self,
        scope: &Scope,
        opts: WatchOptions,
    ) -> Result<WatchStream, ApiError> {
        let (head, revision) = self.initial_state(scope, &opts).await?;
        let then = WatchOptions {
            resource_version: Some(revision.to_string()),
            send_initial_events: false,
            ..opts
        };
        let events = self.watch_from(scope, then).await?;
        Ok(Box::pin(stream::iter(head).chain(events)))
    }

    /// A watch served by the watch cache (the common case).
    async fn watch_cached(&self, scope: &Scope, opts: &WatchOptions) -> Result<WatchStream, Miss> {
        // None: the current state first.
        let from =
            Some(resumed_from(opts).map_err(|e| Miss::Error(Box::new(e)))?).filter(|&rv| rv != 0);
        // What a bookmark may announce: a resumed watch's client has everything up to its
        // resourceVersion; the head's revision only once the head has gone out.
        let last = Arc::new(AtomicI64::new(from.unwrap_or(0)));
        let (mut head, at, events) = self
            .caches
            .watch(
                scope.desc.clone(),
                &scope.resource_prefix(),
                scope.prefix(),
                from,
                opts.selectors.clone(),
                last.clone(),
            )
            .await?;
        if from.is_none()
            && let Some(shared) = scope.shared_objects()
        {
            // The initial state includes what every workspace shares (in name order, first).
            let mut initial = Vec::new();
            for (_, stored) in shared.iter() {
                let obj = stored.decode().map_err(|e| Miss::Error(Box::new(e)))?;
                if opts.selectors.matches(&scope.desc, &obj) {
                    initial.push(WatchEvent::Object(WatchEventKind::Added, stored));
                }
            }
            initial.append(&mut head);
            head = initial;
        }
        if opts.send_initial_events && opts.allow_bookmarks {
            head.push(WatchEvent::Bookmark {
                resource_version: at,
                initial_events_end: true,
            });
        }
        let seen = last.clone();
        let events = after_head(head, &last, at).chain(events).inspect(move |e| {
            let rv = match e {
                WatchEvent::Object(_, s) => s.resource_version,
                WatchEvent::Shared(_, o) => o.stored.resource_version,
                _ => return,
            };
            seen.fetch_max(rv, Ordering::Relaxed);
        });
        Ok(with_bookmarks(events, opts, last, self.progress(scope)))
    }

    /// A watch's initial state read from the store: an ADDED event per object (then the
    /// bookmark that ends a streaming list, when asked for), and the read's revision.
    async fn initial_state(
        &self,
        scope: &Scope,
        opts: &WatchOptions,
    ) -> Result<(Vec<WatchEvent>, i64), ApiError> {
        let list = self
            .list(
                scope,
                &ListOptions {
                    selectors: opts.selectors.clone(),
                    ..Default::default()
                },
            )
            .await?;
        let mut head: Vec<WatchEvent> = list
            .items
            .into_iter()
            .map(|s| WatchEvent::Object(WatchEventKind::Added, s))
            .collect();
        if opts.send_initial_events && opts.allow_bookmarks {
            head.push(WatchEvent::Bookmark {
                resource_version: list.resource_version,
                initial_events_end: true,
            });
        }
        Ok((head, list.resource_version))
    }

    /// A watch straight on the store (revisions older than the cache's window).
    async fn watch_store(
        &self,
        scope: &Scope,
        opts: WatchOptions,
    ) -> Result<WatchStream, ApiError> {
        let rv = opts.resource_version.as_deref().filter(|rv| !rv.is_empty());
        let initial = opts.send_initial_events || matches!(rv, None | Some("0"));
        let (head, from) = if initial {
            self.initial_state(scope, &opts).await?
        } else {
            (vec![], parse_resource_version(rv.unwrap_or("0"))?)
        };
        let last = Arc::new(AtomicI64::new(if initial { 0 } else { from }));
        let upstream = match self
            .store
            .watch(KeyRange::prefix(scope.prefix()), from + 1)
            .await
        {
            Ok(s) => s,
            Err(kplex_store::Error::Compacted { compacted, .. }) => {
                let err = ApiError::resource_expired(format!(
                    "too old resource version: {from} ({compacted})"
                ));
                return Ok(Box::pin(stream::iter(vec![WatchEvent::Error(err)])));
            }
            Err(e) => return Err(store_error(e)),
        };
        let (desc, selectors, seen) = (scope.desc.clone(), opts.selectors.clone(), last.clone());
        let events = upstream.filter_map(move |item| {
            let event = match item {
                Ok(e) => e,
                Err(e) => return futures::future::ready(Some(WatchEvent::Error(store_error(e)))),
            };
            seen.fetch_max(event.kv.mod_revision, Ordering::Relaxed);
            futures::future::ready(convert(&desc, &selectors, event))
        });
        let events = after_head(head, &last, from).chain(events);
        Ok(with_bookmarks(events, &opts, last, self.progress(scope)))
    }

    /// Whether nothing the scope covers was written after `from`, as far as the store can
    /// tell without a read: a watch resuming from there misses nothing however old it is,
    /// and the store skips its replay (see [`MAX_STORE_REPLAY`]).
    fn quiet_since(&self, scope: &Scope, from: i64) -> bool {
        let range = KeyRange::prefix(scope.prefix());
        self.store.written_since(&range, from + 1) == Some(false)
    }

    fn progress(&self, scope: &Scope) -> Progress {
        Progress {
            store: self.store.clone(),
            range: KeyRange::prefix(scope.prefix()),
        }
    }
}

/// How far a watch's bookmarks may go past the last event it delivered: to the store's
/// head while nothing its scope covers was written since that event. kube-apiserver's
/// bookmarks advance the same way (etcd's progress notifications): a client watching a
/// quiet resource resumes after a restart from a recent revision, not one compacted away
/// or far behind, which would cost it a relist.
struct Progress {
    store: Arc<dyn Store>,
    range: KeyRange,
}

impl Progress {
    /// The revision a bookmark may announce for a watch that delivered everything up to
    /// `last`. The head is read first: a write at or below it was recorded in the store's
    /// index before it committed, so `written_since` sees it.
    async fn at(&self, last: i64) -> i64 {
        let Ok(status) = self.store.status().await else {
            return last;
        };
        match self.store.written_since(&self.range, last + 1) {
            Some(false) => status.revision.max(last),
            _ => last,
        }
    }
}

/// The revision a watch resumes after (0 when it starts from the current state).
fn resumed_from(opts: &WatchOptions) -> Result<i64, ApiError> {
    match opts.resource_version.as_deref() {
        _ if opts.send_initial_events => Ok(0),
        None | Some("") => Ok(0),
        Some(rv) => parse_resource_version(rv),
    }
}

/// `head` (a watch's initial or replayed events), then — once every one of them has gone
/// out — `last` raised to `revision`, the state they bring the client to. A bookmark taken
/// from `last` earlier would announce a revision whose events are still queued: a client
/// that resumed from it would miss them, and one that did not would see them go backwards.
fn after_head(
    head: Vec<WatchEvent>,
    last: &Arc<AtomicI64>,
    revision: i64,
) -> impl Stream<Item = WatchEvent> + Send + 'static {
    let last = last.clone();
    let reached = stream::once(async move {
        last.fetch_max(revision, Ordering::Relaxed);
        None
    })
    .filter_map(futures::future::ready);
    stream::iter(head).chain(reached)
}

/// When the next bookmark is due (kube's `nextBookmarkTime`): every `interval`, but at the
/// latest two seconds before the watch's deadline; none once that moment has passed.
fn next_bookmark(now: Instant, interval: Duration, deadline: Option<Instant>) -> Option<Instant> {
    let periodic = now + interval;
    let Some(deadline) = deadline else {
        return Some(periodic);
    };
    let before_deadline = deadline.checked_sub(Duration::from_secs(2))?;
    let at = periodic.min(before_deadline);
    (at > now).then_some(at)
}

/// Adds periodic BOOKMARK events when the client allows them: at the last revision seen,
/// or past it as far as [`Progress`] allows.
fn with_bookmarks(
    events: impl Stream<Item = WatchEvent> + Send + 'static,
    opts: &WatchOptions,
    last: Arc<AtomicI64>,
    progress: Progress,
) -> WatchStream {
    if !opts.allow_bookmarks {
        return Box::pin(events);
    }
    let interval = opts.bookmark_interval.unwrap_or(DEFAULT_BOOKMARK_INTERVAL);
    let deadline = opts.timeout.map(|t| Instant::now() + t);
    let progress = Arc::new(progress);
    let bookmarks = stream::unfold(last, move |last| {
        let progress = progress.clone();
        async move {
            match next_bookmark(Instant::now(), interval, deadline) {
                Some(at) => tokio::time::sleep_until(at).await,
                None => futures::future::pending::<()>().await,
            }
            // Nothing delivered yet: a bookmark would have no revision to give.
            let rv = loop {
                let rv = last.load(Ordering::Relaxed);
                if rv > 0 {
                    break rv;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            // Raised, so that no later bookmark goes back below what this one announces.
            let rv = progress.at(rv).await;
            let rv = last.fetch_max(rv, Ordering::Relaxed).max(rv);
            Some((
                WatchEvent::Bookmark {
                    resource_version: rv,
                    initial_events_end: false,
                },
                last,
            ))
        }
    });
    // Bookmarks must not end the stream, and must stop when events end.
    Box::pin(TakeUntilEnd::new(events, bookmarks))
}

/// Turns one store event into a Kubernetes event, applying selector semantics: an object
/// that stops matching is DELETED, one that starts matching is ADDED.
fn convert(
    desc: &crate::catalog::ResourceDesc,
    selectors: &Selectors,
    event: kplex_store::Event,
) -> Option<WatchEvent> {
    let new = Stored {
        bytes: event.kv.value.clone(),
        resource_version: event.kv.mod_revision,
    };
    let prev = event.prev.map(|p| Stored {
        bytes: p.value,
        resource_version: event.kv.mod_revision,
    });
    if selectors.is_empty() {
        return Some(match (event.kind, prev) {
            (EventKind::Delete, Some(prev)) => WatchEvent::Object(WatchEventKind::Deleted, prev),
            (EventKind::Delete, None) => return None,
            (EventKind::Put, None) => WatchEvent::Object(WatchEventKind::Added, new),
            (EventKind::Put, Some(_)) => WatchEvent::Object(WatchEventKind::Modified, new),
        });
    }
    let matches = |s: &Stored| selectors.admits(desc, s).unwrap_or(false);
    let old_match = prev.as_ref().is_some_and(matches);
    match event.kind {
        EventKind::Delete => old_match
            .then(|| prev.map(|p| WatchEvent::Object(WatchEventKind::Deleted, p)))
            .flatten(),
        EventKind::Put => match (old_match, matches(&new)) {
            (true, true) => Some(WatchEvent::Object(WatchEventKind::Modified, new)),
            (false, true) => Some(WatchEvent::Object(WatchEventKind::Added, new)),
            (true, false) => Some(WatchEvent::Object(WatchEventKind::Deleted, new)),
            (false, false) => None,
        },
    }
}

/// Merges a main stream with an endless side stream, ending when the main stream ends.
struct TakeUntilEnd<A, B> {
    main: Pin<Box<A>>,
    side: Pin<Box<B>>,
}

impl<A, B> TakeUntilEnd<A, B> {
    fn new(main: A, side: B) -> Self {
        Self {
            main: Box::pin(main),
            side: Box::pin(side),
        }
    }
}

impl<A, B> Stream for TakeUntilEnd<A, B>
where
    A: Stream<Item = WatchEvent>,
    B: Stream<Item = WatchEvent>,
{
    type Item = WatchEvent;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<WatchEvent>> {
        use std::task::Poll;
        match self.main.as_mut().poll_next(cx) {
            Poll::Ready(item) => return Poll::Ready(item),
            Poll::Pending => {}
        }
        match self.side.as_mut().poll_next(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            _ => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookmarks_come_periodically_and_once_just_before_the_deadline() {
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        assert_eq!(next_bookmark(now, minute, None), Some(now + minute));
        // A deadline before the next periodic one: two seconds before it.
        let deadline = now + Duration::from_secs(10);
        assert_eq!(
            next_bookmark(now, minute, Some(deadline)),
            Some(now + Duration::from_secs(8))
        );
        // A far deadline: periodic as usual.
        let far = now + Duration::from_secs(3600);
        assert_eq!(next_bookmark(now, minute, Some(far)), Some(now + minute));
        // Once sent (or within the last two seconds): no more.
        let at = now + Duration::from_secs(8);
        assert_eq!(next_bookmark(at, minute, Some(deadline)), None);
        assert_eq!(
            next_bookmark(now, minute, Some(now + Duration::from_secs(1))),
            None
        );
    }
}

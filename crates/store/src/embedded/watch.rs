//! Watches: replay history from the log, then follow live commits; when a watcher falls
//! behind the live channel it catches up from the log again, so slow watchers lose nothing
//! unless history they still need is compacted.

use std::sync::{Arc, Weak};

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::{Shared, load_compacted, read};
use crate::{Error, Event, KeyRange, Result, Revision, WatchStream};

/// Events buffered per watcher before its task waits for the consumer.
const WATCHER_BUFFER: usize = 1024;

pub fn start(
    shared: &Arc<Shared>,
    range: KeyRange,
    start_revision: Revision,
) -> Result<WatchStream> {
    let compacted = load_compacted(shared);
    if start_revision != 0 && start_revision < compacted {
        return Err(Error::Compacted {
            requested: start_revision,
            compacted,
        });
    }
    // Subscribe before reading the current revision: every commit after that read is then
    // certain to arrive on the channel.
    let live = shared.events.subscribe();
    let (current, _) = read::revisions(&shared.db)?;
    let next = if start_revision == 0 {
        current + 1
    } else {
        start_revision
    };
    let (tx, rx) = mpsc::channel(WATCHER_BUFFER);
    let watcher = Watcher {
        shared: Arc::downgrade(shared),
        range,
        next,
        tx,
    };
    tokio::spawn(watcher.run(live, current));
    Ok(Box::pin(ReceiverStream::new(rx)))
}

struct Watcher {
    /// Weak, so that dropping the store ends its watches instead of keeping the file open.
    shared: Weak<Shared>,
    range: KeyRange,
    /// The next revision this watcher must deliver.
    next: Revision,
    tx: mpsc::Sender<Result<Event>>,
}

impl Watcher {
    async fn run(
        mut self,
        mut live: broadcast::Receiver<Arc<[Event]>>,
        mut caught_up_to: Revision,
    ) {
        loop {
            if self.next <= caught_up_to && !self.replay(caught_up_to).await {
                return;
            }
            match self.follow(&mut live).await {
                // Fell behind the live channel: everything up to the store's current revision
                // is in the log, so replay it and resume.
                Some(revision) => caught_up_to = revision,
                None => return,
            }
        }
    }

    /// Sends history `[next, to]`. False when the watch is over.
    async fn replay(&mut self, to: Revision) -> bool {
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        let compacted = load_compacted(&shared);
        if self.next < compacted {
            let _ = self
                .tx
                .send(Err(Error::Compacted {
                    requested: self.next,
                    compacted,
                }))
                .await;
            return false;
        }
        if !shared.written.since(&self.range, self.next) {
            self.next = to + 1;
            return true;
        }
        let (range, from) = (self.range.clone(), self.next);
        let events =
            tokio::task::spawn_blocking(move || read::history(&shared.db, &range, from, to)).await;
        let events = match events {
            Ok(Ok(events)) => events,
            Ok(Err(e)) => return self.fail(e).await,
            Err(e) => return self.fail(Error::Internal(e.to_string())).await,
        };
        for event in events {
            if self.tx.send(Ok(event)).await.is_err() {
                return false;
            }
        }
        self.next = to + 1;
        true
    }

    /// Delivers live batches. Returns the revision to catch up to after lagging, or None when
    /// the watch is over (consumer gone or store closed).
    async fn follow(&mut self, live: &mut broadcast::Receiver<Arc<[Event]>>) -> Option<Revision> {
        loop {
            match live.recv().await {
                Ok(batch) => {
                    for event in batch.iter() {
                        if event.revision() < self.next || !self.range.contains(&event.kv.key) {
                            continue;
                        }
                        if self.tx.send(Ok(event.clone())).await.is_err() {
                            return None;
                        }
                    }
                    if let Some(last) = batch.last() {
                        self.next = self.next.max(last.revision() + 1);
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    let shared = self.shared.upgrade()?;
                    // Drain what the channel still holds later; history covers the gap.
                    *live = live.resubscribe();
                    return match read::revisions(&shared.db) {
                        Ok((current, _)) => Some(current),
                        Err(e) => {
                            self.fail(e).await;
                            None
                        }
                    };
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }

    async fn fail(&mut self, e: Error) -> bool {
        let _ = self.tx.send(Err(e)).await;
        false
    }
}

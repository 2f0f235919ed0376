//! The single writer: group commit of queued writes, one durable redb transaction per batch.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use redb::{Database, ReadableTable, Table};
use tokio::sync::{mpsc, oneshot};

use super::codec::{decode_kv, encode_event, encode_kv};
use super::{KV, LOG, META, META_COMPACTED, META_REVISION, Shared};
use crate::{Error, Event, EventKind, KeyValue, Op, Precondition, Result, Revision, TxnOutcome};

pub enum Command {
    Write(Op, oneshot::Sender<Result<TxnOutcome>>),
    Compact(Revision, oneshot::Sender<Result<()>>),
    Close(oneshot::Sender<Result<()>>),
}

/// Creates the tables on first open and returns (current, compacted) revisions.
pub fn init_tables(db: &Database) -> Result<(Revision, Revision)> {
    let txn = db.begin_write()?;
    let revisions = {
        txn.open_table(KV)?;
        txn.open_table(LOG)?;
        let meta = txn.open_table(META)?;
        let get = |k: &str| -> Result<i64> { Ok(meta.get(k)?.map(|g| g.value()).unwrap_or(0)) };
        (get(META_REVISION)?, get(META_COMPACTED)?)
    };
    txn.commit()?;
    Ok(revisions)
}

pub fn spawn(
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Command>,
    revision: Revision,
    max_batch: usize,
) -> Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("kplex-store-writer".into())
        .spawn(move || Writer { shared, revision }.run(rx, max_batch))
        .map_err(|e| Error::Engine(format!("spawn writer thread: {e}")))
}

struct Writer {
    shared: Arc<Shared>,
    /// The last committed revision.
    revision: Revision,
}

/// What one queued command turned into inside a batch, answered after the commit.
enum Pending {
    Write(oneshot::Sender<Result<TxnOutcome>>, TxnOutcome),
    Compact(oneshot::Sender<Result<()>>, Result<()>),
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Command>, max_batch: usize) {
        let mut batch = Vec::with_capacity(max_batch);
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            if let Some(close) = self.commit_batch(&mut batch) {
                let _ = close.send(Ok(()));
                return;
            }
        }
    }

    /// Applies and commits everything in `batch`, then answers each caller. Returns the
    /// close request if one was in the batch (everything before it is committed first).
    fn commit_batch(&mut self, batch: &mut Vec<Command>) -> Option<oneshot::Sender<Result<()>>> {
        let mut close = None;
        let mut pending = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        let start_revision = self.revision;
        let (size, started) = (batch.len(), std::time::Instant::now());
        let result = self.apply(batch, &mut pending, &mut events, &mut close);
        if let (Ok(()), Some(observe)) = (&result, self.shared.commit_observer.get()) {
            observe(size, started.elapsed());
        }
        match result {
            Ok(()) => {
                if !events.is_empty() {
                    // No receivers is fine: nobody is watching.
                    let _ = self.shared.events.send(events.into());
                }
                for p in pending {
                    match p {
                        Pending::Write(reply, outcome) => drop(reply.send(Ok(outcome))),
                        Pending::Compact(reply, result) => drop(reply.send(result)),
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "store commit failed");
                self.revision = start_revision;
                for p in pending {
                    match p {
                        Pending::Write(reply, _) => {
                            drop(reply.send(Err(Error::Engine(e.to_string()))))
                        }
                        Pending::Compact(reply, _) => {
                            drop(reply.send(Err(Error::Engine(e.to_string()))))
                        }
                    }
                }
            }
        }
        close
    }

    fn apply(
        &mut self,
        batch: &mut Vec<Command>,
        pending: &mut Vec<Pending>,
        events: &mut Vec<Event>,
        close: &mut Option<oneshot::Sender<Result<()>>>,
    ) -> Result<()> {
        let txn = self.shared.db.begin_write()?;
        let mut compacted_to = None;
        {
            let mut kv = txn.open_table(KV)?;
            let mut log = txn.open_table(LOG)?;
            let mut meta = txn.open_table(META)?;
            for cmd in batch.drain(..) {
                match cmd {
                    Command::Write(op, reply) => {
                        let outcome = self.write(&mut kv, &mut log, op, events)?;
                        pending.push(Pending::Write(reply, outcome));
                    }
                    Command::Compact(revision, reply) => {
                        let result = self.compact(&mut log, &mut meta, revision)?;
                        if result.is_ok() {
                            compacted_to = Some(revision);
                        }
                        pending.push(Pending::Compact(reply, result));
                    }
                    Command::Close(reply) => {
                        *close = Some(reply);
                        break;
                    }
                }
            }
            meta.insert(META_REVISION, self.revision)?;
        }
        // Before the commit: a watcher that reads the new revision finds it recorded.
        self.shared
            .written
            .record(events.iter().map(|e| (e.kv.key.as_str(), e.revision())));
        txn.commit()?;
        if let Some(revision) = compacted_to {
            self.shared.compacted.store(revision, Ordering::Release);
        }
        Ok(())
    }

    /// One conditional write inside the batch transaction. `Err` only for engine failures;
    /// a failed precondition is an `Ok(Failed)` outcome.
    fn write(
        &mut self,
        kv: &mut Table<&str, &[u8]>,
        log: &mut Table<u64, &[u8]>,
        op: Op,
        events: &mut Vec<Event>,
    ) -> Result<TxnOutcome> {
        let key = op.key().to_string();
        let current = match kv.get(key.as_str())? {
            Some(raw) => Some(decode_kv(&key, raw.value())?),
            None => None,
        };
        let holds = match (op.precondition(), &current) {
            (Precondition::None, _) => true,
            (Precondition::Absent, cur) => cur.is_none(),
            (Precondition::Exists, cur) => cur.is_some(),
            (Precondition::ModRevision(rev), Some(cur)) => cur.mod_revision == rev,
            (Precondition::ModRevision(_), None) => false,
        };
        // Deleting an absent key is a no-op in etcd: no revision, no event.
        let is_noop_delete = matches!(op, Op::Delete { .. }) && current.is_none();
        if !holds || is_noop_delete {
            return Ok(TxnOutcome::Failed { current });
        }
        let revision = self.revision + 1;
        let event = match op {
            Op::Put { value, .. } => {
                let new = KeyValue {
                    key: key.clone(),
                    value,
                    create_revision: current.as_ref().map_or(revision, |c| c.create_revision),
                    mod_revision: revision,
                    version: current.as_ref().map_or(1, |c| c.version + 1),
                };
                kv.insert(key.as_str(), encode_kv(&new).as_slice())?;
                Event {
                    kind: EventKind::Put,
                    kv: new,
                    prev: current,
                }
            }
            Op::Delete { .. } => {
                kv.remove(key.as_str())?;
                Event {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key,
                        value: Bytes::new(),
                        create_revision: 0,
                        mod_revision: revision,
                        version: 0,
                    },
                    prev: current,
                }
            }
        };
        log.insert(revision as u64, encode_event(&event).as_slice())?;
        self.revision = revision;
        let outcome = TxnOutcome::Succeeded {
            revision,
            kv: (event.kind == EventKind::Put).then(|| event.kv.clone()),
            prev: event.prev.clone(),
        };
        events.push(event);
        Ok(outcome)
    }

    fn compact(
        &mut self,
        log: &mut Table<u64, &[u8]>,
        meta: &mut Table<&str, i64>,
        revision: Revision,
    ) -> Result<Result<()>> {
        let compacted = meta.get(META_COMPACTED)?.map(|g| g.value()).unwrap_or(0);
        if revision <= compacted {
            return Ok(Err(Error::Compacted {
                requested: revision,
                compacted,
            }));
        }
        if revision > self.revision {
            return Ok(Err(Error::FutureRevision {
                requested: revision,
                current: self.revision,
            }));
        }
        log.retain_in(..revision as u64, |_, _| false)?;
        meta.insert(META_COMPACTED, revision)?;
        Ok(Ok(()))
    }
}

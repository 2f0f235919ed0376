//! The etcd backend: the [`Store`] contract over a real etcd v3 cluster (3.4+).

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions,
    Identity, KvClient, PutOptions, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchClient,
    WatchOptions,
};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    Error, Event, EventKind, KeyRange, KeyValue, Op, Precondition, RangeRequest, RangeResponse,
    Result, Revision, Store, StoreStatus, TxnOutcome, WatchStream,
};

/// Largest gRPC message accepted from etcd: a LIST of many large objects exceeds tonic's
/// 4 MiB default.
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

/// Client TLS for etcd (PEM files).
#[derive(Clone, Debug, Default)]
pub struct EtcdTls {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// How to reach etcd.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// `http://host:port` or `https://host:port` URLs.
    pub endpoints: Vec<String>,
    pub tls: Option<EtcdTls>,
    pub connect_timeout: Duration,
}

impl EtcdOptions {
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            tls: None,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A [`Store`] backed by etcd.
pub struct EtcdStore {
    kv: KvClient,
    watch: WatchClient,
    client: Client,
    /// etcd does not report its compacted revision; remember the last one we set.
    compacted: AtomicI64,
}

impl EtcdStore {
    pub async fn connect(options: EtcdOptions) -> Result<Self> {
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(options.connect_timeout)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        if let Some(tls) = &options.tls {
            connect = connect.with_tls(tls_options(tls)?);
        }
        let endpoints: Vec<String> = options
            .endpoints
            .iter()
            .map(|e| strip_scheme(e, options.tls.is_some()))
            .collect();
        let client = Client::connect(&endpoints, Some(connect))
            .await
            .map_err(etcd)?;
        let kv = client
            .kv_client()
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        let watch = client.watch_client().max_decoding_message_size(MAX_MESSAGE);
        Ok(Self {
            kv,
            watch,
            client,
            compacted: AtomicI64::new(0),
        })
    }

    async fn current_revision(&self) -> Result<Revision> {
        let resp = self
            .kv
            .clone()
            .get("\0", Some(GetOptions::new().with_count_only()))
            .await
            .map_err(etcd)?;
        Ok(resp.header().map_or(0, |h| h.revision()))
    }
}

/// tonic wants `http://` for plain and `https://` for TLS; accept bare `host:port` too.
fn strip_scheme(endpoint: &str, tls: bool) -> String {
    if endpoint.contains("://") {
        endpoint.to_string()
    } else if tls {
        format!("https://{endpoint}")
    } else {
        format!("http://{endpoint}")
    }
}

fn tls_options(tls: &EtcdTls) -> Result<TlsOptions> {
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| Error::Etcd(format!("read {p:?}: {e}")));
    let mut options = TlsOptions::new();
    if let Some(ca) = &tls.ca_file {
        options = options.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            options = options.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        (None, None) => {}
        _ => {
            return Err(Error::InvalidRequest(
                "etcd client certificate and key must be given together".into(),
            ));
        }
    }
    Ok(options)
}

fn etcd(e: etcd_client::Error) -> Error {
    let text = e.to_string();
    if text.contains("required revision has been compacted") {
        Error::Compacted {
            requested: 0,
            compacted: 0,
        }
    } else if text.contains("required revision is a future revision") {
        Error::FutureRevision {
            requested: 0,
            current: 0,
        }
    } else {
        Error::Etcd(text)
    }
}

fn convert(kv: &etcd_client::KeyValue) -> Result<KeyValue> {
    let key = std::str::from_utf8(kv.key())
        .map_err(|_| Error::Etcd("key is not UTF-8".into()))?
        .to_string();
    Ok(KeyValue {
        key,
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
    })
}

fn get_options(range: &KeyRange) -> GetOptions {
    match &range.end {
        None => GetOptions::new(),
        Some(end) => GetOptions::new().with_range(end.as_bytes().to_vec()),
    }
}

fn compare(key: &str, precondition: Precondition) -> Vec<Compare> {
    match precondition {
        Precondition::None => vec![],
        Precondition::Absent => vec![Compare::create_revision(key, CompareOp::Equal, 0)],
        Precondition::Exists => vec![Compare::create_revision(key, CompareOp::Greater, 0)],
        Precondition::ModRevision(rev) => vec![Compare::mod_revision(key, CompareOp::Equal, rev)],
    }
}

/// Fills in the revisions a delete event carries when the caller asked for the requested
/// revision in an error.
fn with_requested(e: Error, revision: Revision, compacted: Revision) -> Error {
    match e {
        Error::Compacted { .. } => Error::Compacted {
            requested: revision,
            compacted,
        },
        Error::FutureRevision { current, .. } => Error::FutureRevision {
            requested: revision,
            current,
        },
        other => other,
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        let mut options = get_options(&req.range);
        if req.limit > 0 {
            options = options.with_limit(req.limit as i64);
        }
        if req.revision > 0 {
            options = options.with_revision(req.revision);
        }
        if req.count_only {
            options = options.with_count_only();
        }
        let resp = self
            .kv
            .clone()
            .get(req.range.start.as_bytes().to_vec(), Some(options))
            .await
            .map_err(|e| {
                with_requested(
                    etcd(e),
                    req.revision,
                    self.compacted.load(Ordering::Relaxed),
                )
            })?;
        let kvs = resp.kvs().iter().map(convert).collect::<Result<Vec<_>>>()?;
        let header_revision = resp.header().map_or(0, |h| h.revision());
        Ok(RangeResponse {
            revision: if req.revision > 0 {
                req.revision
            } else {
                header_revision
            },
            count: resp.count().max(0) as u64,
            more: resp.more(),
            kvs,
        })
    }

    async fn txn(&self, op: Op) -> Result<TxnOutcome> {
        let key = op.key().to_string();
        let success = match &op {
            Op::Put { value, .. } => vec![
                TxnOp::put(
                    key.clone(),
                    value.to_vec(),
                    Some(PutOptions::new().with_prev_key()),
                ),
                TxnOp::get(key.clone(), None),
            ],
            Op::Delete { .. } => vec![TxnOp::delete(
                key.clone(),
                Some(DeleteOptions::new().with_prev_key()),
            )],
        };
        let txn = Txn::new()
            .when(compare(&key, op.precondition()))
            .and_then(success)
            .or_else(vec![TxnOp::get(key.clone(), None)]);
        let resp = self.kv.clone().txn(txn).await.map_err(etcd)?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let responses = resp.op_responses();
        if !resp.succeeded() {
            let current = match responses.first() {
                Some(TxnOpResponse::Get(get)) => get.kvs().first().map(convert).transpose()?,
                _ => None,
            };
            return Ok(TxnOutcome::Failed { current });
        }
        match (&op, responses.as_slice()) {
            (Op::Put { .. }, [TxnOpResponse::Put(put), TxnOpResponse::Get(get)]) => {
                Ok(TxnOutcome::Succeeded {
                    revision,
                    kv: get.kvs().first().map(convert).transpose()?,
                    prev: put.prev_key().map(convert).transpose()?,
                })
            }
            (Op::Delete { .. }, [TxnOpResponse::Delete(del)]) => {
                let prev = del.prev_kvs().first().map(convert).transpose()?;
                if del.deleted() == 0 {
                    // Deleting an absent key writes nothing.
                    return Ok(TxnOutcome::Failed { current: None });
                }
                Ok(TxnOutcome::Succeeded {
                    revision,
                    kv: None,
                    prev,
                })
            }
            _ => Err(Error::Internal("unexpected etcd txn response shape".into())),
        }
    }

    async fn watch(&self, range: KeyRange, start_revision: Revision) -> Result<WatchStream> {
        let current = self.current_revision().await?;
        let next = if start_revision == 0 {
            current + 1
        } else {
            if start_revision <= current {
                // etcd reports a compacted watch start only inside the stream; check up front so
                // callers get the error from this call, as with the embedded store.
                self.range(
                    RangeRequest::new(range.clone())
                        .at_revision(start_revision)
                        .count_only(),
                )
                .await?;
            }
            start_revision
        };
        let (tx, rx) = mpsc::channel(1024);
        let watcher = Watcher {
            client: self.watch.clone(),
            range,
            next,
            tx,
            compacted: self.compacted.load(Ordering::Relaxed),
        };
        tokio::spawn(watcher.run());
        Ok(Box::pin(ReceiverStream::new(rx)))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.kv.clone().compact(revision, None).await.map_err(|e| {
            with_requested(etcd(e), revision, self.compacted.load(Ordering::Relaxed))
        })?;
        self.compacted.fetch_max(revision, Ordering::Relaxed);
        Ok(())
    }

    async fn status(&self) -> Result<StoreStatus> {
        let mut maintenance = self.client.maintenance_client();
        let status = maintenance.status().await.map_err(etcd)?;
        Ok(StoreStatus {
            revision: status.header().map_or(0, |h| h.revision()),
            compacted_revision: self.compacted.load(Ordering::Relaxed),
            db_size: status.db_size().max(0) as u64,
        })
    }
}

/// Follows one etcd watch, re-establishing it from the next undelivered revision whenever
/// the connection drops, so a consumer sees every event exactly once across reconnects.
struct Watcher {
    client: WatchClient,
    range: KeyRange,
    next: Revision,
    tx: mpsc::Sender<Result<Event>>,
    compacted: Revision,
}

enum Ended {
    /// The consumer went away or a final error was delivered.
    Done,
    /// The connection broke; try again.
    Retry,
}

impl Watcher {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.follow().await {
                Ended::Done => return,
                Ended::Retry => {
                    tokio::select! {
                        _ = self.tx.closed() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    async fn follow(&mut self) -> Ended {
        let mut options = WatchOptions::new()
            .with_start_revision(self.next)
            .with_prev_key();
        if let Some(end) = &self.range.end {
            options = options.with_range(end.as_bytes().to_vec());
        }
        let mut stream = match self
            .client
            .watch(self.range.start.as_bytes().to_vec(), Some(options))
            .await
        {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "etcd watch: connect failed, retrying");
                return Ended::Retry;
            }
        };
        loop {
            let resp = tokio::select! {
                _ = self.tx.closed() => return Ended::Done,
                resp = stream.next() => resp,
            };
            let resp = match resp {
                Some(Ok(resp)) => resp,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "etcd watch: stream failed, resuming");
                    return Ended::Retry;
                }
                None => return Ended::Retry,
            };
            if resp.compact_revision() > 0 {
                let _ = self
                    .tx
                    .send(Err(Error::Compacted {
                        requested: self.next,
                        compacted: resp.compact_revision().max(self.compacted),
                    }))
                    .await;
                return Ended::Done;
            }
            if resp.canceled() {
                tracing::debug!(
                    reason = resp.cancel_reason(),
                    "etcd watch canceled, resuming"
                );
                return Ended::Retry;
            }
            // A transaction's events share one revision and come in one response: the
            // resume point moves past a revision only once all of its events went out.
            let resume_from = self.next;
            for event in resp.events() {
                let event = match to_event(event) {
                    Ok(event) => event,
                    Err(e) => {
                        let _ = self.tx.send(Err(e)).await;
                        return Ended::Done;
                    }
                };
                let revision = event.revision();
                if revision < resume_from {
                    continue;
                }
                if self.tx.send(Ok(event)).await.is_err() {
                    return Ended::Done;
                }
                self.next = revision + 1;
            }
        }
    }
}

fn to_event(event: &etcd_client::Event) -> Result<Event> {
    let kv = event
        .kv()
        .ok_or_else(|| Error::Etcd("watch event without kv".into()))?;
    Ok(Event {
        kind: match event.event_type() {
            EventType::Put => EventKind::Put,
            EventType::Delete => EventKind::Delete,
        },
        kv: convert(kv)?,
        prev: event.prev_kv().map(convert).transpose()?,
    })
}

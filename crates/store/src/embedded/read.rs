//! Reads: current ranges straight from `kv`; past revisions by undoing later `log` entries.

use std::collections::BTreeMap;
use std::ops::Bound;

use redb::{AccessGuard, Database, ReadTransaction, ReadableDatabase, ReadableTable};

use super::codec::{decode_event, decode_kv, event_key};
use super::{KV, LOG, META, META_COMPACTED, META_REVISION};
use crate::{Error, KeyRange, KeyValue, RangeRequest, RangeResponse, Result, Revision};

/// (current, compacted) revisions.
pub fn revisions(db: &Database) -> Result<(Revision, Revision)> {
    revisions_in(&db.begin_read()?)
}

fn revisions_in(txn: &ReadTransaction) -> Result<(Revision, Revision)> {
    let meta = txn.open_table(META)?;
    let get = |k: &str| -> Result<i64> { Ok(meta.get(k)?.map(|g| g.value()).unwrap_or(0)) };
    Ok((get(META_REVISION)?, get(META_COMPACTED)?))
}

/// A key of the `kv` table with its (not yet decoded) record.
type CurrentEntry = (String, AccessGuard<'static, &'static [u8]>);

pub fn range(db: &Database, req: &RangeRequest) -> Result<RangeResponse> {
    let txn = db.begin_read()?;
    let (current, compacted) = revisions_in(&txn)?;
    let revision = match req.revision {
        0 => current,
        r if r > current => {
            return Err(Error::FutureRevision {
                requested: r,
                current,
            });
        }
        r if r < compacted => {
            return Err(Error::Compacted {
                requested: r,
                compacted,
            });
        }
        r => r,
    };
    // For a past revision: the value each touched key had then (None = absent), taken from
    // the first log entry after `revision` that touched it.
    let overrides = if revision < current {
        undo_since(&txn, &req.range, revision, current)?
    } else {
        BTreeMap::new()
    };
    let kv = txn.open_table(KV)?;
    let mut out = RangeResponse {
        revision,
        ..Default::default()
    };
    let accept = |kv: Option<KeyValue>, out: &mut RangeResponse| {
        if let Some(kv) = kv {
            out.count += 1;
            if !req.count_only && (req.limit == 0 || out.kvs.len() < req.limit) {
                out.kvs.push(kv);
            }
        }
    };
    if is_empty_range(&req.range) {
        return Ok(out);
    }
    let mut current_keys = kv.range::<&str>(bounds(&req.range))?;
    let mut next_current = || -> Result<Option<CurrentEntry>> {
        match current_keys.next() {
            None => Ok(None),
            Some(item) => {
                let (k, v) = item?;
                Ok(Some((k.value().to_string(), v)))
            }
        }
    };
    let mut head = next_current()?;
    let mut overrides = overrides.into_iter().peekable();
    let counted_enough =
        |out: &RangeResponse| req.skip_count && req.limit > 0 && out.count > req.limit as u64;
    loop {
        if counted_enough(&out) {
            break;
        }
        let take_override = match (&head, overrides.peek()) {
            (None, None) => break,
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (Some((ck, _)), Some((ok, _))) => ok <= ck,
        };
        if take_override {
            let Some((ok, value)) = overrides.next() else {
                break;
            };
            if head.as_ref().is_some_and(|(ck, _)| *ck == ok) {
                head = next_current()?;
            }
            accept(value, &mut out);
        } else if let Some((ck, raw)) = head.take() {
            let wanted = !req.count_only && (req.limit == 0 || out.kvs.len() < req.limit);
            if wanted {
                accept(Some(decode_kv(&ck, raw.value())?), &mut out);
            } else {
                out.count += 1;
            }
            head = next_current()?;
        }
    }
    out.more = out.count > out.kvs.len() as u64 && !req.count_only;
    Ok(out)
}

fn undo_since(
    txn: &ReadTransaction,
    range: &KeyRange,
    revision: Revision,
    current: Revision,
) -> Result<BTreeMap<String, Option<KeyValue>>> {
    let log = txn.open_table(LOG)?;
    let mut overrides = BTreeMap::new();
    for item in log.range((revision + 1) as u64..=current as u64)? {
        let (_, raw) = item?;
        let event = decode_event(raw.value())?;
        if range.contains(&event.kv.key) && !overrides.contains_key(&event.kv.key) {
            overrides.insert(event.kv.key.clone(), event.prev);
        }
    }
    Ok(overrides)
}

/// `[start, end)` with `end <= start` holds nothing (and redb must not be asked for it).
fn is_empty_range(range: &KeyRange) -> bool {
    matches!(range.end.as_deref(), Some(end) if end != "\0" && end <= range.start.as_str())
}

/// redb bounds for a key range; `"\0"` as the end means unbounded, as in etcd.
fn bounds(range: &KeyRange) -> (Bound<&str>, Bound<&str>) {
    let start = Bound::Included(range.start.as_str());
    match range.end.as_deref() {
        None => (start, Bound::Included(range.start.as_str())),
        Some("\0") => (start, Bound::Unbounded),
        Some(end) => (start, Bound::Excluded(end)),
    }
}

/// Events with revisions in `[from, to]` that touch `range`, read from history.
pub fn history(
    db: &Database,
    range: &KeyRange,
    from: Revision,
    to: Revision,
) -> Result<Vec<crate::Event>> {
    if from > to {
        return Ok(Vec::new());
    }
    let txn = db.begin_read()?;
    let log = txn.open_table(LOG)?;
    let mut out = Vec::new();
    for item in log.range(from.max(1) as u64..=to as u64)? {
        let (_, raw) = item?;
        // Most of a long window is other keys': look at the key before decoding the rest.
        if range.contains(event_key(raw.value())?) {
            out.push(decode_event(raw.value())?);
        }
    }
    Ok(out)
}

/// Every log entry's key and revision, oldest first.
pub fn log_keys(db: &Database, mut each: impl FnMut(&str, Revision)) -> Result<()> {
    let txn = db.begin_read()?;
    let log = txn.open_table(LOG)?;
    for item in log.iter()? {
        let (revision, raw) = item?;
        each(event_key(raw.value())?, revision.value() as Revision);
    }
    Ok(())
}

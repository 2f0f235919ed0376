//! On-disk encodings of the embedded store's records. Fixed little-endian headers followed by
//! the raw value: no parsing on the read path beyond slicing.

use bytes::Bytes;

use crate::{Error, Event, EventKind, KeyValue, Result, Revision};

const KV_HEADER: usize = 24;

/// `kv` table value: create_revision, mod_revision, version, then the value bytes.
pub fn encode_kv(kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(KV_HEADER + kv.value.len());
    put_kv_fields(&mut out, kv);
    out.extend_from_slice(&kv.value);
    out
}

pub fn decode_kv(key: &str, raw: &[u8]) -> Result<KeyValue> {
    let (create_revision, mod_revision, version) = read_header(raw)?;
    Ok(KeyValue {
        key: key.to_string(),
        value: Bytes::copy_from_slice(&raw[KV_HEADER..]),
        create_revision,
        mod_revision,
        version,
    })
}

/// `log` table value: kind, key, the key's fields after the change, then optionally the
/// fields before it. Keeping `prev` in the record lets watches report previous values and
/// lets reads at a past revision undo later changes without another index.
pub fn encode_event(event: &Event) -> Vec<u8> {
    let prev_len = event
        .prev
        .as_ref()
        .map_or(0, |p| p.value.len() + KV_HEADER + 4);
    let mut out = Vec::with_capacity(
        1 + 4 + event.kv.key.len() + KV_HEADER + 4 + event.kv.value.len() + 1 + prev_len,
    );
    out.push(match event.kind {
        EventKind::Put => 0,
        EventKind::Delete => 1,
    });
    put_bytes(&mut out, event.kv.key.as_bytes());
    put_kv_fields(&mut out, &event.kv);
    put_bytes(&mut out, &event.kv.value);
    match &event.prev {
        None => out.push(0),
        Some(prev) => {
            out.push(1);
            put_kv_fields(&mut out, prev);
            put_bytes(&mut out, &prev.value);
        }
    }
    out
}

/// The key of an encoded event, without decoding the rest.
pub fn event_key(raw: &[u8]) -> Result<&str> {
    let mut r = Reader { raw, pos: 1 };
    std::str::from_utf8(r.take_bytes()?).map_err(|_| corrupt("event key is not UTF-8"))
}

pub fn decode_event(raw: &[u8]) -> Result<Event> {
    let mut r = Reader { raw, pos: 0 };
    let kind = match r.take(1)?[0] {
        0 => EventKind::Put,
        1 => EventKind::Delete,
        other => return Err(corrupt(format!("unknown event kind {other}"))),
    };
    let key = r.take_bytes()?;
    let key = std::str::from_utf8(key)
        .map_err(|_| corrupt("event key is not UTF-8"))?
        .to_string();
    let kv = r.take_kv(key.clone())?;
    let prev = match r.take(1)?[0] {
        0 => None,
        _ => Some(r.take_kv(key)?),
    };
    Ok(Event { kind, kv, prev })
}

fn put_kv_fields(out: &mut Vec<u8>, kv: &KeyValue) {
    out.extend_from_slice(&kv.create_revision.to_le_bytes());
    out.extend_from_slice(&kv.mod_revision.to_le_bytes());
    out.extend_from_slice(&kv.version.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Values are capped far below 4 GiB by the API server; the cast is checked there.
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn read_header(raw: &[u8]) -> Result<(Revision, Revision, i64)> {
    if raw.len() < KV_HEADER {
        return Err(corrupt("short kv record"));
    }
    let field = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[i * 8..i * 8 + 8]);
        i64::from_le_bytes(b)
    };
    Ok((field(0), field(1), field(2)))
}

fn corrupt(msg: impl Into<String>) -> Error {
    Error::Engine(format!("corrupt record: {}", msg.into()))
}

struct Reader<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.raw.len());
        let end = end.ok_or_else(|| corrupt("truncated event record"))?;
        let out = &self.raw[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn take_bytes(&mut self) -> Result<&'a [u8]> {
        let mut len = [0u8; 4];
        len.copy_from_slice(self.take(4)?);
        self.take(u32::from_le_bytes(len) as usize)
    }

    fn take_kv(&mut self, key: String) -> Result<KeyValue> {
        let (create_revision, mod_revision, version) = read_header(self.take(KV_HEADER)?)?;
        let value = Bytes::copy_from_slice(self.take_bytes()?);
        Ok(KeyValue {
            key,
            value,
            create_revision,
            mod_revision,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str, rev: i64) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Bytes::from(value.to_string()),
            create_revision: 1,
            mod_revision: rev,
            version: rev,
        }
    }

    #[test]
    fn kv_round_trip() {
        let original = kv("/a", "hello", 7);
        let raw = encode_kv(&original);
        assert_eq!(decode_kv("/a", &raw).ok(), Some(original));
    }

    #[test]
    fn event_round_trip_with_and_without_prev() {
        let put = Event {
            kind: EventKind::Put,
            kv: kv("/k", "new", 3),
            prev: Some(kv("/k", "old", 2)),
        };
        assert_eq!(decode_event(&encode_event(&put)).ok(), Some(put));
        let del = Event {
            kind: EventKind::Delete,
            kv: kv("/k", "", 4),
            prev: None,
        };
        assert_eq!(decode_event(&encode_event(&del)).ok(), Some(del));
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        let raw = encode_event(&Event {
            kind: EventKind::Put,
            kv: kv("/k", "value", 3),
            prev: Some(kv("/k", "old", 2)),
        });
        for cut in 0..raw.len() {
            assert!(decode_event(&raw[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_kv("/k", &[1, 2, 3]).is_err());
    }
}

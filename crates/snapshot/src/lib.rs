//! kplex's snapshot file: a whole store (every key, its value and revisions) consistent at
//! one revision, in the versioned protobuf schema `proto/kplex/snapshot/v1/snapshot.proto`,
//! so a backup outlives the binary that wrote it.
//!
//! [`take`] reads any [`Store`] (embedded or etcd) at one revision; [`write`] and [`read`]
//! move a [`Snapshot`] to and from bytes (checking the magic, the format version, the
//! count and a SHA-256 over the entries); `EmbeddedStore::restore` turns one back into a
//! store whose objects, resourceVersions and revision are the ones saved.

use std::io::{Read, Write};

use bytes::{Buf, Bytes};
use kplex_store::{KeyRange, KeyValue, RangeRequest, Revision, Store};
use prost::Message;
use sha2::{Digest, Sha256};

/// The generated messages of `kplex.snapshot.v1`.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/kplex.snapshot.v1.rs"));
}

/// What every snapshot file starts with.
pub const MAGIC: &[u8; 8] = b"KPLEXSNP";
/// The `Header.format_version` this code writes and reads.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the store: {0}")]
    Store(#[from] kplex_store::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a kplex snapshot: it does not start with {MAGIC:?}")]
    NotASnapshot,
    #[error(
        "snapshot format version {0} is not one this kplex reads ({FORMAT_VERSION}): use a newer kplex"
    )]
    UnknownVersion(u32),
    #[error("the snapshot is damaged: {0}")]
    Damaged(String),
}

/// A store at one revision.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub header: proto::Header,
    /// In key order.
    pub entries: Vec<KeyValue>,
}

impl Snapshot {
    pub fn revision(&self) -> Revision {
        self.header.revision
    }
}

/// Reads every key of `store` as of one revision (the current one), online: writes go on
/// meanwhile and are not in it.
pub async fn take(store: &dyn Store, source: &str, written_by: &str) -> Result<Snapshot, Error> {
    let all = store
        .range(RangeRequest::new(KeyRange::between("\0", "\0")))
        .await?;
    Ok(Snapshot {
        header: header(all.revision, all.kvs.len(), source, written_by),
        entries: all.kvs,
    })
}

/// Reads the keys under each of `prefixes` (disjoint) as of one revision — the current one
/// when the first is read — online, in key order: one workspace's storage locations.
pub async fn take_prefixes(
    store: &dyn Store,
    prefixes: &[String],
    source: &str,
    written_by: &str,
) -> Result<Snapshot, Error> {
    let mut revision = 0;
    let mut entries = Vec::new();
    for prefix in prefixes {
        let mut req = RangeRequest::new(KeyRange::prefix(prefix.clone()));
        req.revision = revision;
        let page = store.range(req).await?;
        revision = page.revision;
        entries.extend(page.kvs);
    }
    if revision == 0 {
        revision = store.status().await?.revision;
    }
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(Snapshot {
        header: header(revision, entries.len(), source, written_by),
        entries,
    })
}

fn header(revision: Revision, count: usize, source: &str, written_by: &str) -> proto::Header {
    let created_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    proto::Header {
        format_version: FORMAT_VERSION,
        revision,
        count: count as u64,
        source: source.to_string(),
        written_by: written_by.to_string(),
        created_unix,
        ..Default::default()
    }
}

fn entry(kv: &KeyValue) -> proto::Entry {
    proto::Entry {
        key: kv.key.clone(),
        value: kv.value.to_vec(),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
    }
}

/// Writes `snapshot` in the file format.
pub fn write(snapshot: &Snapshot, out: &mut impl Write) -> Result<(), Error> {
    let mut header = snapshot.header.clone();
    header.count = snapshot.entries.len() as u64;
    out.write_all(MAGIC)?;
    out.write_all(&header.encode_length_delimited_to_vec())?;
    let mut digest = Sha256::new();
    let mut buf = Vec::new();
    for kv in &snapshot.entries {
        let entry = entry(kv);
        buf.clear();
        entry
            .encode_length_delimited(&mut buf)
            .map_err(|e| Error::Damaged(e.to_string()))?;
        // The digest covers the messages, not their length prefixes.
        let prefix = prost::length_delimiter_len(entry.encoded_len());
        digest.update(&buf[prefix..]);
        out.write_all(&buf)?;
    }
    let trailer = proto::Trailer {
        sha256: digest.finalize().to_vec(),
    };
    out.write_all(&trailer.encode_length_delimited_to_vec())?;
    out.flush()?;
    Ok(())
}

/// Reads a snapshot written by [`write`], checking its magic, format version, entry count
/// and digest.
pub fn read(input: &mut impl Read) -> Result<Snapshot, Error> {
    let mut raw = Vec::new();
    input.read_to_end(&mut raw)?;
    let mut buf = Bytes::from(raw);
    if buf.len() < MAGIC.len() || &buf[..MAGIC.len()] != MAGIC {
        return Err(Error::NotASnapshot);
    }
    buf.advance(MAGIC.len());
    let damaged = |what: &str, e: prost::DecodeError| Error::Damaged(format!("{what}: {e}"));
    let header =
        proto::Header::decode_length_delimited(&mut buf).map_err(|e| damaged("header", e))?;
    if header.format_version != FORMAT_VERSION {
        return Err(Error::UnknownVersion(header.format_version));
    }
    let count = usize::try_from(header.count)
        .map_err(|_| Error::Damaged(format!("{} entries", header.count)))?;
    // The count comes from the file: allocate for what the bytes can hold at most.
    let mut entries = Vec::with_capacity(count.min(buf.len() / 2));
    let mut digest = Sha256::new();
    for i in 0..count {
        let len = prost::encoding::decode_varint(&mut buf).map_err(|e| damaged("entry", e))?;
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= buf.len())
            .ok_or_else(|| Error::Damaged(format!("entry {i} runs past the end of the file")))?;
        let bytes = buf.split_to(len);
        digest.update(&bytes);
        let e = proto::Entry::decode(bytes).map_err(|e| damaged("entry", e))?;
        entries.push(KeyValue {
            key: e.key,
            value: Bytes::from(e.value),
            create_revision: e.create_revision,
            mod_revision: e.mod_revision,
            version: e.version,
        });
    }
    let trailer =
        proto::Trailer::decode_length_delimited(&mut buf).map_err(|e| damaged("trailer", e))?;
    if trailer.sha256 != digest.finalize().as_slice() {
        return Err(Error::Damaged("its entries do not match its digest".into()));
    }
    if buf.has_remaining() {
        return Err(Error::Damaged("bytes after the trailer".into()));
    }
    Ok(Snapshot { header, entries })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kplex_store::{EmbeddedOptions, EmbeddedStore};

    async fn store_with_history(dir: &std::path::Path) -> EmbeddedStore {
        let store = EmbeddedStore::open(EmbeddedOptions::new(dir.join("a.db"))).unwrap();
        store
            .put("/registry/a", Bytes::from_static(b"1"))
            .await
            .unwrap();
        store
            .put("/registry/b", Bytes::from_static(b"2"))
            .await
            .unwrap();
        store
            .put("/registry/a", Bytes::from_static(b"3"))
            .await
            .unwrap();
        store
            .put("/registry/c", Bytes::from_static(b"\x00binary\xff"))
            .await
            .unwrap();
        let b = store.get("/registry/b").await.unwrap().unwrap();
        store
            .delete(
                "/registry/b",
                kplex_store::Precondition::ModRevision(b.mod_revision),
            )
            .await
            .unwrap();
        store
    }

    #[tokio::test]
    async fn a_restored_store_is_the_saved_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_history(dir.path()).await;
        let taken = take(&store, "test", "kplex test").await.unwrap();
        assert_eq!(taken.revision(), 5);
        assert_eq!(taken.entries.len(), 2);
        let mut file = Vec::new();
        write(&taken, &mut file).unwrap();
        let back = read(&mut file.as_slice()).unwrap();
        assert_eq!(back, taken);

        let restored_path = dir.path().join("b.db");
        let options = EmbeddedOptions::new(&restored_path);
        assert_eq!(
            EmbeddedStore::restore(&options, back.revision(), &back.entries).unwrap(),
            2
        );
        let restored = EmbeddedStore::open(options.clone()).unwrap();
        let again = take(&restored, "test", "kplex test").await.unwrap();
        assert_eq!(again.entries, taken.entries);
        assert_eq!(again.revision(), taken.revision());
        // Writes go on from the saved revision; the history before it is compacted.
        let next = restored
            .put("/registry/d", Bytes::from_static(b"4"))
            .await
            .unwrap();
        assert_eq!(next, 6);
        assert!(
            restored
                .watch(KeyRange::prefix("/registry/"), 3)
                .await
                .is_err()
        );
        // A store is never restored over.
        assert!(EmbeddedStore::restore(&options, 5, &[]).is_err());
        // Revisions beyond the snapshot's are refused, and leave no file behind.
        let bad = dir.path().join("c.db");
        assert!(EmbeddedStore::restore(&EmbeddedOptions::new(&bad), 1, &back.entries).is_err());
        assert!(!bad.exists());
    }

    #[tokio::test]
    async fn damaged_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_history(dir.path()).await;
        let mut file = Vec::new();
        write(&take(&store, "t", "k").await.unwrap(), &mut file).unwrap();

        assert!(matches!(
            read(&mut &b"PK\x03\x04 a zip"[..]),
            Err(Error::NotASnapshot)
        ));
        for cut in [9, file.len() / 2, file.len() - 1] {
            assert!(
                matches!(read(&mut &file[..cut]), Err(Error::Damaged(_))),
                "cut at {cut}"
            );
        }
        let mut flipped = file.clone();
        let at = flipped.len() - 40;
        flipped[at] ^= 1;
        assert!(read(&mut flipped.as_slice()).is_err());

        let mut newer = take(&store, "t", "k").await.unwrap();
        newer.header.format_version = 2;
        let mut file = Vec::new();
        write(&newer, &mut file).unwrap();
        assert!(matches!(
            read(&mut file.as_slice()),
            Err(Error::UnknownVersion(2))
        ));
    }
}

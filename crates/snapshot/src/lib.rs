//! kplex's snapshot file: a whole store (every key, its value and revisions) consistent at
//! one revision, in the versioned protobuf schema `proto/kplex/snapshot/v1/snapshot.proto`,
//! so a backup outlives the binary that wrote it.
//!
//! [`Pages`] reads any [`Store`] (embedded or etcd) at one revision a page at a time and
//! hands out the file in pieces; [`Reader`] reads one back an entry at a time (checking the
//! magic, the format version, the count and a SHA-256 over the entries), so neither side
//! holds a whole store in memory. `EmbeddedStore::restore` turns the entries back into a
//! store whose objects, resourceVersions and revision are the ones saved. [`write`],
//! [`read`] and [`take`] do the same with a [`Snapshot`] in memory (one workspace's).

use std::io::{Read, Write};
use std::sync::Arc;

use bytes::Bytes;
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

/// How many keys a page of [`Pages`] reads: the memory a whole-store save holds at once.
pub const PAGE: usize = 2_000;

/// The whole store as of one revision, read a page at a time and handed out as pieces of
/// the file, so a save of any size holds one page in memory (an online save of a running
/// server streams them as its answer).
pub struct Pages {
    store: Arc<dyn Store>,
    header: proto::Header,
    /// The first key of the next page; `None` once every page is read.
    next: Option<String>,
    encoder: Option<Encoder>,
    started: bool,
    page: usize,
}

impl Pages {
    /// Fixes the revision (the current one) and counts the keys at it; nothing else is read
    /// yet. Writes go on meanwhile and are not in it.
    pub async fn open(
        store: Arc<dyn Store>,
        source: &str,
        written_by: &str,
    ) -> Result<Self, Error> {
        let mut count = RangeRequest::new(everything("\0"));
        count.count_only = true;
        let counted = store.range(count).await?;
        let header = header(counted.revision, counted.count, source, written_by);
        Ok(Self {
            store,
            encoder: Some(Encoder::new(&header)),
            header,
            next: Some("\0".to_string()),
            started: false,
            page: PAGE,
        })
    }

    /// Reads `keys` keys a page instead of [`PAGE`].
    pub fn page_size(mut self, keys: usize) -> Self {
        self.page = keys.max(1);
        self
    }

    pub fn header(&self) -> &proto::Header {
        &self.header
    }

    /// The next piece of the file: the magic and header first, then a page of entries at a
    /// time, the trailer last; `None` after it. A key count that differs from the header's
    /// (the revision was compacted away meanwhile, say) is an error, never a short file.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let mut out = Vec::new();
        let Some(encoder) = self.encoder.as_mut() else {
            return Ok(None);
        };
        if !self.started {
            self.started = true;
            encoder.start(&self.header, &mut out);
            return Ok(Some(out));
        }
        let Some(start) = self.next.take() else {
            if let Some(encoder) = self.encoder.take() {
                encoder.finish(&mut out)?;
            }
            return Ok(Some(out));
        };
        let mut page = RangeRequest::new(everything(&start));
        page.limit = self.page;
        page.skip_count = true;
        page.revision = self.header.revision;
        let read = self.store.range(page).await?;
        for kv in &read.kvs {
            encoder.entry(kv, &mut out)?;
        }
        if read.more
            && let Some(last) = read.kvs.last()
        {
            self.next = Some(format!("{}\0", last.key));
        }
        Ok(Some(out))
    }
}

/// Every key from `start` on (etcd's `"\0"` range end).
fn everything(start: &str) -> KeyRange {
    KeyRange::between(start, "\0")
}

/// Reads every key of `store` as of one revision (the current one), online, into memory.
pub async fn take(
    store: Arc<dyn Store>,
    source: &str,
    written_by: &str,
) -> Result<Snapshot, Error> {
    let mut pages = Pages::open(store, source, written_by).await?;
    let mut file = Vec::new();
    while let Some(chunk) = pages.next_chunk().await? {
        file.extend_from_slice(&chunk);
    }
    read(&mut file.as_slice())
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
        header: header(revision, entries.len() as u64, source, written_by),
        entries,
    })
}

fn header(revision: Revision, count: u64, source: &str, written_by: &str) -> proto::Header {
    let created_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    proto::Header {
        format_version: FORMAT_VERSION,
        revision,
        count,
        source: source.to_string(),
        written_by: written_by.to_string(),
        created_unix,
        ..Default::default()
    }
}

/// Writes the file a piece at a time: [`Encoder::start`], one [`Encoder::entry`] per
/// key in key order, then [`Encoder::finish`], each appending to a buffer the caller
/// sends on.
pub struct Encoder {
    digest: Sha256,
    expected: u64,
    written: u64,
}

impl Encoder {
    pub fn new(header: &proto::Header) -> Self {
        Self {
            digest: Sha256::new(),
            expected: header.count,
            written: 0,
        }
    }

    /// The magic and the header.
    pub fn start(&self, header: &proto::Header, out: &mut Vec<u8>) {
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&header.encode_length_delimited_to_vec());
    }

    pub fn entry(&mut self, kv: &KeyValue, out: &mut Vec<u8>) -> Result<(), Error> {
        let entry = proto::Entry {
            key: kv.key.clone(),
            value: kv.value.to_vec(),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
        };
        let at = out.len();
        entry
            .encode_length_delimited(out)
            .map_err(|e| Error::Damaged(e.to_string()))?;
        // The digest covers the messages, not their length prefixes.
        let prefix = prost::length_delimiter_len(entry.encoded_len());
        self.digest.update(&out[at + prefix..]);
        self.written += 1;
        Ok(())
    }

    /// The trailer, once every entry the header counts is written.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.written != self.expected {
            return Err(Error::Damaged(format!(
                "{} entries written where the header counts {}",
                self.written, self.expected
            )));
        }
        let trailer = proto::Trailer {
            sha256: self.digest.finalize().to_vec(),
        };
        out.extend_from_slice(&trailer.encode_length_delimited_to_vec());
        Ok(())
    }
}

/// Writes `snapshot` in the file format.
pub fn write(snapshot: &Snapshot, out: &mut impl Write) -> Result<(), Error> {
    let mut header = snapshot.header.clone();
    header.count = snapshot.entries.len() as u64;
    let mut encoder = Encoder::new(&header);
    let mut buf = Vec::new();
    encoder.start(&header, &mut buf);
    for kv in &snapshot.entries {
        encoder.entry(kv, &mut buf)?;
        if buf.len() >= 1 << 16 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    encoder.finish(&mut buf)?;
    out.write_all(&buf)?;
    out.flush()?;
    Ok(())
}

/// Reads a file an entry at a time, checking as it goes: the magic and format version on
/// [`Reader::open`], each entry's framing, and — after the last entry — the count, the
/// digest and the end of the file. Entries are only known good once the iterator has
/// ended without an error, so a consumer writes them somewhere it can throw away.
pub struct Reader<R> {
    input: R,
    header: proto::Header,
    index: u64,
    digest: Option<Sha256>,
}

impl<R: Read> Reader<R> {
    pub fn open(mut input: R) -> Result<Self, Error> {
        let mut magic = [0u8; MAGIC.len()];
        if input.read_exact(&mut magic).is_err() || &magic != MAGIC {
            return Err(Error::NotASnapshot);
        }
        let bytes = read_message(&mut input, "the header")?;
        let header = proto::Header::decode(bytes.as_slice()).map_err(|e| damaged("header", e))?;
        if header.format_version != FORMAT_VERSION {
            return Err(Error::UnknownVersion(header.format_version));
        }
        Ok(Self {
            input,
            header,
            index: 0,
            digest: Some(Sha256::new()),
        })
    }

    pub fn header(&self) -> &proto::Header {
        &self.header
    }

    /// The next entry, or `None` after the last one once the trailer checked out.
    pub fn next_entry(&mut self) -> Result<Option<KeyValue>, Error> {
        let Some(digest) = self.digest.as_mut() else {
            return Ok(None);
        };
        if self.index < self.header.count {
            let bytes = read_message(&mut self.input, &format!("entry {}", self.index))?;
            digest.update(&bytes);
            self.index += 1;
            let e = proto::Entry::decode(bytes.as_slice()).map_err(|e| damaged("entry", e))?;
            return Ok(Some(KeyValue {
                key: e.key,
                value: Bytes::from(e.value),
                create_revision: e.create_revision,
                mod_revision: e.mod_revision,
                version: e.version,
            }));
        }
        let digest = self.digest.take().map(Sha256::finalize);
        let bytes = read_message(&mut self.input, "the trailer")?;
        let trailer =
            proto::Trailer::decode(bytes.as_slice()).map_err(|e| damaged("trailer", e))?;
        if digest.as_deref() != Some(trailer.sha256.as_slice()) {
            return Err(Error::Damaged("its entries do not match its digest".into()));
        }
        if self.input.read(&mut [0u8; 1])? != 0 {
            return Err(Error::Damaged("bytes after the trailer".into()));
        }
        Ok(None)
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<KeyValue, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry().transpose()
    }
}

fn damaged(what: &str, e: prost::DecodeError) -> Error {
    Error::Damaged(format!("{what}: {e}"))
}

/// One length-delimited message. The length comes from the file: the bytes are read as
/// they arrive rather than allocated for up front, so a damaged length cannot exhaust
/// memory.
fn read_message(input: &mut impl Read, what: &str) -> Result<Vec<u8>, Error> {
    let short = || Error::Damaged(format!("{what} runs past the end of the file"));
    let mut len: u64 = 0;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8; 1];
        if input.read(&mut byte)? == 0 {
            return Err(short());
        }
        len |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            let mut bytes = Vec::new();
            input.take(len).read_to_end(&mut bytes)?;
            if bytes.len() as u64 != len {
                return Err(short());
            }
            return Ok(bytes);
        }
    }
    Err(Error::Damaged(format!(
        "{what}: its length is not a varint"
    )))
}

/// Reads a whole snapshot written by [`write`] into memory, checking its magic, format
/// version, entry count and digest.
pub fn read(input: &mut impl Read) -> Result<Snapshot, Error> {
    let mut reader = Reader::open(input)?;
    let mut entries = Vec::new();
    while let Some(kv) = reader.next_entry()? {
        entries.push(kv);
    }
    Ok(Snapshot {
        header: reader.header,
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kplex_store::{EmbeddedOptions, EmbeddedStore};

    async fn take(store: &Arc<EmbeddedStore>) -> Snapshot {
        super::take(store.clone(), "test", "kplex test")
            .await
            .unwrap()
    }

    async fn store_with_history(dir: &std::path::Path) -> Arc<EmbeddedStore> {
        let store = Arc::new(EmbeddedStore::open(EmbeddedOptions::new(dir.join("a.db"))).unwrap());
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
        let taken = take(&store).await;
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
        let restored = Arc::new(EmbeddedStore::open(options.clone()).unwrap());
        let again = take(&restored).await;
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
        write(&take(&store).await, &mut file).unwrap();

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

        let mut newer = take(&store).await;
        newer.header.format_version = 2;
        let mut file = Vec::new();
        write(&newer, &mut file).unwrap();
        assert!(matches!(
            read(&mut file.as_slice()),
            Err(Error::UnknownVersion(2))
        ));
    }

    #[tokio::test]
    async fn pages_stream_one_revision_whatever_is_written_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_history(dir.path()).await;
        let whole = take(&store).await;
        let mut pages = Pages::open(store.clone(), "test", "kplex test")
            .await
            .unwrap()
            .page_size(1);
        assert_eq!(pages.header().count, 2);
        let mut file = Vec::new();
        let mut chunks = 0;
        while let Some(chunk) = pages.next_chunk().await.unwrap() {
            chunks += 1;
            file.extend_from_slice(&chunk);
            // Written between pages: after the revision, so not in the file.
            store
                .put(
                    &format!("/registry/z{chunks}"),
                    Bytes::from_static(b"later"),
                )
                .await
                .unwrap();
            store
                .put("/registry/a", Bytes::from_static(b"changed"))
                .await
                .unwrap();
        }
        // Header, a page per key, one empty last page, the trailer.
        assert!(chunks >= 4, "{chunks} chunks");
        let streamed = read(&mut file.as_slice()).unwrap();
        assert_eq!(streamed.entries, whole.entries);
        assert_eq!(streamed.revision(), whole.revision());

        // Restored entry by entry: a file damaged at its end leaves no store behind.
        let mut damaged = file.clone();
        let at = damaged.len() - 3;
        damaged[at] ^= 1;
        let target = EmbeddedOptions::new(dir.path().join("r.db"));
        let reader = Reader::open(damaged.as_slice()).unwrap();
        assert!(EmbeddedStore::restore_from(&target, 5, reader).is_err());
        assert!(!target.path.exists());
        let reader = Reader::open(file.as_slice()).unwrap();
        assert_eq!(EmbeddedStore::restore_from(&target, 5, reader).unwrap(), 2);
    }
}

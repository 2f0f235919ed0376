//! Where the log has writes: for each key's directory (its first three `/`-separated
//! segments, or the whole key if it is shorter), the newest revision that wrote under it.
//!
//! A watch that resumes from an old revision replays the log from there, filtering by its
//! range. After a restart every client watch resumes at once, most of them for ranges that
//! nothing has written to since (a syncer's `jobs` while only configmaps changed): this
//! index lets those skip a replay that would read the whole log window each.
//!
//! It is conservative: a directory's revision is recorded before its batch commits (a
//! failed commit only costs a replay that finds nothing), and a range deeper than a
//! directory counts every write in that directory.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, Weak};

use super::{Shared, read};
use crate::{KeyRange, Revision};

#[derive(Debug, Default)]
pub struct Written {
    dirs: RwLock<BTreeMap<String, Revision>>,
    /// Whether the log written before this process opened the store is in `dirs` yet.
    complete: AtomicBool,
    /// The revision the store had when this process opened it: every later write is in
    /// `dirs` from the start, so questions about those need not wait for the log's index.
    opened_at: Revision,
}

/// Adds the log's history to the store's index, then marks it complete. Writes committed
/// meanwhile are recorded by the writer; both sides keep the newest revision.
pub(super) fn index_log(shared: Weak<Shared>) {
    let Some(store) = shared.upgrade() else {
        return;
    };
    let w = &store.written;
    match read::log_keys(&store.db, |key, revision| w.record([(key, revision)])) {
        Ok(()) => w.complete.store(true, Ordering::Release),
        Err(e) => {
            tracing::warn!(error = %e, "indexing the store's log failed: every resumed watch reads the log")
        }
    }
}

/// The directory of `key`: up to and including its fourth `/` (`/registry/configmaps/c1/`),
/// or the whole key.
fn dir_of(key: &str) -> &str {
    match key.match_indices('/').nth(3) {
        Some((i, _)) => &key[..=i],
        None => key,
    }
}

impl Written {
    pub fn new(opened_at: Revision) -> Self {
        Self {
            opened_at,
            ..Self::default()
        }
    }

    /// Records writes of `keys` at `revision`.
    pub fn record<'a>(&self, writes: impl IntoIterator<Item = (&'a str, Revision)>) {
        let Ok(mut map) = self.dirs.write() else {
            return;
        };
        for (key, revision) in writes {
            let dir = dir_of(key);
            match map.get_mut(dir) {
                Some(r) => *r = (*r).max(revision),
                None => {
                    map.insert(dir.to_string(), revision);
                }
            }
        }
    }

    /// Whether a key in `range` may have been written at `from` or later.
    pub fn since(&self, range: &KeyRange, from: Revision) -> bool {
        if from <= self.opened_at && !self.complete.load(Ordering::Acquire) {
            return true;
        }
        let Ok(map) = self.dirs.read() else {
            return true;
        };
        let recent = |r: &Revision| *r >= from;
        // The directory `range.start` lies in, if the range starts inside one.
        if map.get(dir_of(&range.start)).is_some_and(recent) {
            return true;
        }
        let upper = match range.end.as_deref() {
            None => Bound::Included(range.start.as_str()),
            Some("\0") => Bound::Unbounded,
            Some(end) => Bound::Excluded(end),
        };
        map.range::<str, _>((Bound::Included(range.start.as_str()), upper))
            .any(|(_, r)| recent(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_three_segments_deep() {
        assert_eq!(
            dir_of("/registry/configmaps/c1/ns/a"),
            "/registry/configmaps/c1/"
        );
        assert_eq!(
            dir_of("/registry/apps/deployments/c1/ns/a"),
            "/registry/apps/deployments/"
        );
        assert_eq!(dir_of("/registry/x"), "/registry/x");
        assert_eq!(dir_of("plain"), "plain");
    }

    #[test]
    fn ranges_see_the_writes_under_them_only() {
        let w = Written::default();
        // Until the log is indexed, every range may have writes.
        assert!(w.since(&KeyRange::prefix("/registry/jobs/"), 0));
        w.complete.store(true, Ordering::Release);
        assert!(!w.since(&KeyRange::prefix("/registry/jobs/"), 0));
        w.record([
            ("/registry/configmaps/c1/ns/a", 10),
            ("/registry/configmaps/c2/ns/b", 20),
        ]);
        w.record([
            ("/registry/apps/deployments/c1/ns/d", 15),
            ("/registry/configmaps/c1/ns/z", 12),
        ]);
        let configmaps = KeyRange::prefix("/registry/configmaps/");
        assert!(w.since(&configmaps, 20));
        assert!(!w.since(&configmaps, 21));
        // One cluster's configmaps, and a namespace inside it (the whole directory counts).
        assert!(w.since(&KeyRange::prefix("/registry/configmaps/c1/"), 12));
        assert!(!w.since(&KeyRange::prefix("/registry/configmaps/c1/"), 13));
        assert!(w.since(&KeyRange::prefix("/registry/configmaps/c1/other/"), 12));
        // Deployments live under their group's directory.
        assert!(w.since(&KeyRange::prefix("/registry/apps/deployments/c1/"), 15));
        assert!(!w.since(&KeyRange::prefix("/registry/jobs/"), 0));
        assert!(!w.since(&KeyRange::prefix("/registry/batch/"), 0));
        // Single keys and everything.
        assert!(w.since(&KeyRange::key("/registry/configmaps/c2/ns/b"), 20));
        assert!(!w.since(&KeyRange::key("/registry/secrets/c2/ns/b"), 0));
        assert!(w.since(&KeyRange::between("\0", "\0"), 20));
        assert!(!w.since(&KeyRange::between("\0", "\0"), 21));
    }

    #[test]
    fn writes_after_opening_are_known_before_the_log_is_indexed() {
        let w = Written::new(100);
        w.record([("/registry/configmaps/c1/ns/a", 105)]);
        let configmaps = KeyRange::prefix("/registry/configmaps/");
        assert!(w.since(&configmaps, 100), "the old log is not indexed yet");
        assert!(w.since(&configmaps, 105));
        assert!(!w.since(&configmaps, 106));
        assert!(!w.since(&KeyRange::prefix("/registry/secrets/"), 101));
    }
}

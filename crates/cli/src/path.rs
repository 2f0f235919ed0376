//! Logical cluster paths (`root:org:team`) and the workspace URLs built from them, with the
//! arithmetic `kubectl ws` does on them (kcp's logicalcluster.Path and ParseClusterURL).

use std::fmt;

/// A colon-separated logical cluster path; empty means "none".
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LogicalPath(String);

impl LogicalPath {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn root() -> Self {
        Self("root".to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each segment is a DNS-label-like logical cluster name of at most 63 characters.
    pub fn is_valid(&self) -> bool {
        !self.0.is_empty() && self.0.split(':').all(valid_segment)
    }

    /// The path without its last segment, if there is more than one.
    pub fn parent(&self) -> Option<LogicalPath> {
        self.0
            .rsplit_once(':')
            .map(|(parent, _)| LogicalPath(parent.to_string()))
    }

    /// (parent, last segment); the parent is empty for a single segment.
    pub fn split(&self) -> (LogicalPath, &str) {
        match self.0.rsplit_once(':') {
            Some((parent, base)) => (LogicalPath(parent.to_string()), base),
            None => (LogicalPath::default(), &self.0),
        }
    }

    pub fn base(&self) -> &str {
        self.split().1
    }

    pub fn join(&self, name: &str) -> LogicalPath {
        if self.0.is_empty() {
            LogicalPath(name.to_string())
        } else {
            LogicalPath(format!("{}:{name}", self.0))
        }
    }

    /// The first segment: the root of the hierarchy this path lives in.
    pub fn top(&self) -> LogicalPath {
        LogicalPath(self.0.split(':').next().unwrap_or_default().to_string())
    }

    /// `/clusters/<path>`, the request prefix of this logical cluster.
    pub fn request_path(&self) -> String {
        format!("/clusters/{}", self.0)
    }
}

impl fmt::Display for LogicalPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn valid_segment(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=63).contains(&b.len())
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

/// Removes `.` and resolves `..` segments of an absolute path (without the leading colon).
pub fn resolve_dots(path: &str) -> Result<LogicalPath, DotsError> {
    let mut ret = LogicalPath::default();
    for part in path.split(':') {
        match part {
            "." => {}
            ".." => {
                if ret.is_empty() {
                    return Err(DotsError);
                }
                ret = ret.parent().unwrap_or_default();
            }
            _ => ret = ret.join(part),
        }
    }
    Ok(ret)
}

/// `..` above the top of the hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DotsError;

/// A server URL split at `/clusters/`: everything before it, and the logical cluster path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterUrl {
    /// Scheme, authority and any path prefix, without a trailing slash.
    pub base: String,
    pub path: LogicalPath,
}

impl ClusterUrl {
    /// Splits `https://host:6443/prefix/clusters/root:org/...`; None when the URL does not
    /// point into a workspace (no `/clusters/` segment, or an invalid path after it).
    pub fn parse(server: &str) -> Option<ClusterUrl> {
        let after_scheme = server.find("://").map_or(0, |i| i + 3);
        let path_start = server[after_scheme..]
            .find('/')
            .map_or(server.len(), |i| after_scheme + i);
        let path = &server[path_start..];
        let idx = path.find("/clusters/")?;
        let rest = &path[idx + "/clusters/".len()..];
        let name = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let lp = LogicalPath::new(name);
        if !lp.is_valid() {
            return None;
        }
        Some(ClusterUrl {
            base: server[..path_start + idx].to_string(),
            path: lp,
        })
    }

    pub fn url(&self) -> String {
        format!("{}{}", self.base, self.path.request_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity() {
        for (p, ok) in [
            ("root", true),
            ("root:org:team-a", true),
            ("2f4a", true),
            ("", false),
            ("root:", false),
            (":root", false),
            ("Root", false),
            ("root:-a", false),
            ("root:a-", false),
            ("root:a_b", false),
            ("root:..", false),
            (&"a".repeat(63), true),
            (&"a".repeat(64), false),
        ] {
            assert_eq!(LogicalPath::new(p).is_valid(), ok, "{p:?}");
        }
    }

    #[test]
    fn dots() {
        for (input, want) in [
            ("root:org:..", Ok("root")),
            ("root:org:team:..:..", Ok("root")),
            ("root:.:org", Ok("root:org")),
            ("root:org:..:other", Ok("root:other")),
            ("root:..", Ok("")),
            ("root:..:..", Err(DotsError)),
        ] {
            assert_eq!(
                resolve_dots(input).map(|p| p.to_string()),
                want.map(str::to_string),
                "{input}"
            );
        }
    }

    #[test]
    fn split_and_join() {
        let p = LogicalPath::new("root:org:team");
        assert_eq!(p.parent(), Some(LogicalPath::new("root:org")));
        assert_eq!(p.base(), "team");
        assert_eq!(p.top(), LogicalPath::root());
        assert_eq!(LogicalPath::root().parent(), None);
        assert_eq!(
            LogicalPath::root().split(),
            (LogicalPath::default(), "root")
        );
        assert_eq!(LogicalPath::default().join("root"), LogicalPath::root());
        assert_eq!(p.request_path(), "/clusters/root:org:team");
    }

    #[test]
    fn cluster_urls() {
        for (url, want) in [
            (
                "https://127.0.0.1:6443/clusters/root:org",
                Some(("https://127.0.0.1:6443", "root:org")),
            ),
            (
                "https://h/prefix/clusters/root/api/v1",
                Some(("https://h/prefix", "root")),
            ),
            (
                "https://h:1/clusters/2f4a1b?x=1",
                Some(("https://h:1", "2f4a1b")),
            ),
            ("https://h:1/", None),
            ("https://h:1", None),
            ("https://h:1/clusters/", None),
            ("https://h:1/clusters/Bad", None),
        ] {
            let got = ClusterUrl::parse(url);
            assert_eq!(
                got.as_ref().map(|c| (c.base.as_str(), c.path.as_str())),
                want,
                "{url}"
            );
        }
        let c = ClusterUrl::parse("https://h:1/clusters/root").unwrap();
        assert_eq!(c.url(), "https://h:1/clusters/root");
    }
}

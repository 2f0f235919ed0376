//! kube-apiserver's list `continue` tokens: unpadded URL-safe base64 of
//! `{"v":"meta.k8s.io/v1","rv":<resourceVersion>,"start":"<key after the prefix>"}`.

use crate::status::ApiError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

const VERSION: &str = "meta.k8s.io/v1";
const INVALID: &str = "continue key is not valid";

/// Returned (410 Expired) when the revision a token points at was compacted.
pub const EXPIRED_MESSAGE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

#[derive(Serialize, Deserialize, Default)]
struct Token {
    #[serde(default)]
    v: String,
    #[serde(default)]
    rv: i64,
    #[serde(default)]
    start: String,
}

/// Encodes a token resuming at `start` (the key relative to the listed
/// prefix, usually the last returned key plus "\0") at `resource_version`.
pub fn encode(resource_version: i64, start: &str) -> String {
    let token = Token {
        v: VERSION.into(),
        rv: resource_version,
        start: start.into(),
    };
    // Serializing a struct of strings and an integer cannot fail.
    let json = serde_json::to_vec(&token).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// The resourceVersion of a token that continues at the latest revision, as the 410 for an
/// expired token hands out (kube's -1).
pub const LATEST: i64 = -1;

/// Decodes a token into (resourceVersion, start key relative to the prefix); a
/// resourceVersion of [`LATEST`] reads at the current revision.
/// Errors are 400 BadRequest with kube's "invalid continue token" messages.
pub fn decode(token: &str) -> Result<(i64, String), ApiError> {
    decode_inner(token).map_err(|e| ApiError::bad_request(format!("invalid continue token: {e}")))
}

fn decode_inner(token: &str) -> Result<(i64, String), String> {
    let data = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|e| format!("{INVALID}: {e}"))?;
    let t: Token = serde_json::from_slice(&data).map_err(|e| format!("{INVALID}: {e}"))?;
    if t.v != VERSION {
        return Err(format!(
            "{INVALID}: server does not recognize this encoded version {}",
            t.v
        ));
    }
    // -1: go on at the latest revision (what an expired token's 410 offers).
    if t.rv == 0 || t.rv < LATEST {
        return Err(format!(
            "{INVALID}: incorrect encoded start resourceVersion (version {VERSION})"
        ));
    }
    if t.start.is_empty() {
        return Err(format!(
            "{INVALID}: encoded start key empty (version {VERSION})"
        ));
    }
    // Like kube, refuse keys that path.Clean would change so a client
    // cannot range outside the listed prefix (`..`, `//`, `./`).
    let key = if t.start.starts_with('/') {
        t.start.clone()
    } else {
        format!("/{}", t.start)
    };
    if !is_clean_path(&key) {
        return Err(format!("{INVALID}: {}", t.start));
    }
    Ok((t.rv, key[1..].to_string()))
}

/// Whether Go's path.Clean would return `p` (which starts with '/') unchanged.
fn is_clean_path(p: &str) -> bool {
    if p == "/" {
        return true;
    }
    let rest = &p[1..];
    !rest.ends_with('/') && rest.split('/').all(|seg| !matches!(seg, "" | "." | ".."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = encode(42, "default/web-1\u{0}");
        assert!(!t.contains('=') && !t.contains('+') && !t.contains('/'));
        assert_eq!(decode(&t), Ok((42, "default/web-1\u{0}".to_string())));
        // Matches kube's encoding byte for byte.
        assert_eq!(
            encode(5, "a"),
            URL_SAFE_NO_PAD.encode(r#"{"v":"meta.k8s.io/v1","rv":5,"start":"a"}"#)
        );
    }

    #[test]
    fn rejects_bad_tokens() {
        let raw = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let cases = [
            (
                raw(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"../x"}"#),
                "invalid continue token: continue key is not valid: ../x",
            ),
            (
                raw(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"a//b"}"#),
                "invalid continue token: continue key is not valid: a//b",
            ),
            (
                raw(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"a"}"#),
                "invalid continue token: continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
            ),
            (
                raw(r#"{"v":"meta.k8s.io/v1","rv":3}"#),
                "invalid continue token: continue key is not valid: encoded start key empty (version meta.k8s.io/v1)",
            ),
            (
                raw(r#"{"v":"v2","rv":3,"start":"a"}"#),
                "invalid continue token: continue key is not valid: server does not recognize this encoded version v2",
            ),
        ];
        for (token, msg) in cases {
            let err = decode(&token).err();
            assert_eq!(err.as_ref().map(|e| e.code), Some(400));
            assert_eq!(err.map(|e| e.message), Some(msg.to_string()));
        }
        assert!(decode("!!!").is_err());
        assert!(decode(&raw("[1]")).is_err());
        assert_eq!(
            decode(&raw(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"/a"}"#)),
            Ok((1, "a".into()))
        );
    }
}

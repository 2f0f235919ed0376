//! Encryption of resources at rest, configured like kube-apiserver's
//! `--encryption-provider-config`.
//!
//! The configuration is kube-apiserver's `EncryptionConfiguration`
//! (`apiserver.config.k8s.io/v1`):
//!
//! ```yaml
//! apiVersion: apiserver.config.k8s.io/v1
//! kind: EncryptionConfiguration
//! resources:
//!   - resources: [secrets]            # `<resource>` (core) or `<resource>.<group>`
//!     providers:
//!       - aesgcm:
//!           keys:
//!             - name: key2            # the first key of the first provider encrypts
//!               secret: <base64 of 32 (or 16) random bytes>
//!             - name: key1            # older keys still decrypt (rotation)
//!               secret: <base64>
//!       - identity: {}                # reads data written before encryption was on
//! ```
//!
//! [`EncryptingStore`] wraps the real store: values under each configured resource's key
//! prefix (`/registry/<resource>/` for the core group, `/registry/<group>/<resource>/`
//! otherwise) are transformed on the way in and out, everything else passes through.
//!
//! Stored format, byte-compatible with kube-apiserver's:
//! - `aesgcm`: `k8s:enc:aesgcm:v1:<keyname>:` ‖ 12-byte random nonce ‖ AES-GCM ciphertext
//!   and 16-byte tag, with the store key as additional authenticated data (so a ciphertext
//!   copied under another key does not decrypt);
//! - `identity`: the plaintext.
//!
//! On read every provider is tried in order: `aesgcm` claims values carrying one of its
//! key prefixes, `identity` claims values without the `k8s:enc:` marker. A value nobody
//! claims (or that fails authentication) is an error, never served as is.
//!
//! `aescbc`, `secretbox` and `kms` are refused at start.
//!
//! Rotation: put the new key first and keep the old one second, restart, rewrite every
//! object, then drop the old key. The rewrite must change the object (e.g. an annotation):
//! an unchanged update is a no-op in the registry, and unlike kube-apiserver this store
//! does not report values read with an old key as stale.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;
use kplex_store::{
    Event, KeyRange, KeyValue, Op, RangeRequest, RangeResponse, Revision, Store, StoreStatus,
    TxnOutcome, WatchStream,
};
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// Marks a value written by an encrypting provider (kube's convention).
const ENCRYPTED_MARKER: &[u8] = b"k8s:enc:";
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    #[error("read encryption provider config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse encryption provider config: {0}")]
    Parse(String),
    #[error("encryption provider config: {0}")]
    Invalid(String),
    #[error("encryption provider {0:?} is not supported by kplex (supported: aesgcm, identity)")]
    Unsupported(&'static str),
    #[error("encrypt {key}: {reason}")]
    Encrypt { key: String, reason: &'static str },
    #[error("decrypt {key}: {reason}")]
    Decrypt { key: String, reason: String },
}

impl From<EncryptionError> for kplex_store::Error {
    fn from(e: EncryptionError) -> Self {
        kplex_store::Error::Internal(e.to_string())
    }
}

// --- The configuration file -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileConfig {
    api_version: String,
    kind: String,
    #[serde(default)]
    resources: Vec<FileResources>,
}

#[derive(Deserialize)]
struct FileResources {
    resources: Vec<String>,
    providers: Vec<FileProvider>,
}

/// One provider: a map with exactly one of these keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProvider {
    aesgcm: Option<FileKeys>,
    identity: Option<IgnoredAny>,
    aescbc: Option<IgnoredAny>,
    secretbox: Option<IgnoredAny>,
    kms: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct FileKeys {
    keys: Vec<FileKey>,
}

#[derive(Deserialize)]
struct FileKey {
    name: String,
    secret: String,
}

// --- Transformers ------------------------------------------------------------------------

struct AesKey {
    /// `k8s:enc:aesgcm:v1:<name>:`
    prefix: Vec<u8>,
    key: LessSafeKey,
}

enum Provider {
    AesGcm(Vec<AesKey>),
    Identity,
}

/// The providers of one set of resources: the first writes, all read.
pub struct Transformer {
    providers: Vec<Provider>,
    rng: SystemRandom,
}

impl Transformer {
    /// Transforms `plaintext` for storage under `key` with the first provider.
    pub fn encrypt(&self, key: &str, plaintext: &[u8]) -> Result<Bytes, EncryptionError> {
        let fail = |reason| EncryptionError::Encrypt {
            key: key.to_string(),
            reason,
        };
        match self.providers.first() {
            None | Some(Provider::Identity) => Ok(Bytes::copy_from_slice(plaintext)),
            Some(Provider::AesGcm(keys)) => {
                let aes = keys.first().ok_or_else(|| fail("no key"))?;
                let mut nonce = [0u8; NONCE_LEN];
                self.rng
                    .fill(&mut nonce)
                    .map_err(|_| fail("no randomness for a nonce"))?;
                let mut out =
                    Vec::with_capacity(aes.prefix.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
                out.extend_from_slice(&aes.prefix);
                out.extend_from_slice(&nonce);
                let mut sealed = plaintext.to_vec();
                aes.key
                    .seal_in_place_append_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(key.as_bytes()),
                        &mut sealed,
                    )
                    .map_err(|_| fail("AES-GCM seal failed"))?;
                out.extend_from_slice(&sealed);
                Ok(Bytes::from(out))
            }
        }
    }

    /// Recovers the plaintext of `stored`, read under `key`, with whichever provider
    /// claims it.
    pub fn decrypt(&self, key: &str, stored: &Bytes) -> Result<Bytes, EncryptionError> {
        let fail = |reason: String| EncryptionError::Decrypt {
            key: key.to_string(),
            reason,
        };
        // Deletes carry no value.
        if stored.is_empty() {
            return Ok(stored.clone());
        }
        for provider in &self.providers {
            match provider {
                Provider::Identity => {
                    if !stored.starts_with(ENCRYPTED_MARKER) {
                        return Ok(stored.clone());
                    }
                }
                Provider::AesGcm(keys) => {
                    let Some(aes) = keys.iter().find(|k| stored.starts_with(&k.prefix)) else {
                        continue;
                    };
                    let payload = &stored[aes.prefix.len()..];
                    if payload.len() < NONCE_LEN + TAG_LEN {
                        return Err(fail("ciphertext is truncated".into()));
                    }
                    let (nonce, sealed) = payload.split_at(NONCE_LEN);
                    let nonce = Nonce::try_assume_unique_for_key(nonce)
                        .map_err(|_| fail("bad nonce".into()))?;
                    let mut buf = sealed.to_vec();
                    let plain = aes
                        .key
                        .open_in_place(nonce, Aad::from(key.as_bytes()), &mut buf)
                        .map_err(|_| {
                            fail("AES-GCM authentication failed (wrong key or corrupt data)".into())
                        })?;
                    let len = plain.len();
                    buf.truncate(len);
                    return Ok(Bytes::from(buf));
                }
            }
        }
        let shown = &stored[..stored.len().min(40)];
        Err(fail(format!(
            "no configured provider reads this value (it starts with {:?})",
            String::from_utf8_lossy(shown)
        )))
    }
}

/// The parsed configuration: transformers by store key prefix.
pub struct EncryptionConfig {
    /// (key prefix, transformer); the first matching prefix wins, like kube's first entry.
    resources: Vec<(String, Arc<Transformer>)>,
}

impl EncryptionConfig {
    pub fn load(path: &Path) -> Result<Self, EncryptionError> {
        let text = std::fs::read_to_string(path).map_err(|source| EncryptionError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, EncryptionError> {
        let file: FileConfig =
            serde_saphyr::from_str(text).map_err(|e| EncryptionError::Parse(e.to_string()))?;
        if file.api_version != "apiserver.config.k8s.io/v1"
            || file.kind != "EncryptionConfiguration"
        {
            return Err(EncryptionError::Invalid(format!(
                "expected apiserver.config.k8s.io/v1 EncryptionConfiguration, got {} {}",
                file.api_version, file.kind
            )));
        }
        let mut resources = Vec::new();
        for entry in file.resources {
            if entry.providers.is_empty() {
                return Err(EncryptionError::Invalid(format!(
                    "resources {:?} list no providers",
                    entry.resources
                )));
            }
            let transformer = Arc::new(Transformer {
                providers: entry
                    .providers
                    .into_iter()
                    .map(provider)
                    .collect::<Result<_, _>>()?,
                rng: SystemRandom::new(),
            });
            for resource in &entry.resources {
                let prefix = resource_prefix(resource)?;
                if !resources.iter().any(|(p, _)| *p == prefix) {
                    resources.push((prefix, transformer.clone()));
                }
            }
        }
        Ok(Self { resources })
    }

    /// The transformer for values stored under `key`, if its resource is configured.
    pub fn transformer(&self, key: &str) -> Option<&Transformer> {
        self.resources
            .iter()
            .find(|(prefix, _)| key.starts_with(prefix.as_str()))
            .map(|(_, t)| t.as_ref())
    }

    fn decrypt_kv(&self, mut kv: KeyValue) -> Result<KeyValue, EncryptionError> {
        if let Some(t) = self.transformer(&kv.key) {
            kv.value = t.decrypt(&kv.key, &kv.value)?;
        }
        Ok(kv)
    }

    fn decrypt_opt(&self, kv: Option<KeyValue>) -> Result<Option<KeyValue>, EncryptionError> {
        kv.map(|kv| self.decrypt_kv(kv)).transpose()
    }

    fn decrypt_event(&self, event: Event) -> Result<Event, EncryptionError> {
        Ok(Event {
            kind: event.kind,
            kv: self.decrypt_kv(event.kv)?,
            prev: self.decrypt_opt(event.prev)?,
        })
    }
}

/// `secrets` → `/registry/secrets/`; `deployments.apps` → `/registry/apps/deployments/`.
fn resource_prefix(resource: &str) -> Result<String, EncryptionError> {
    let (resource, group) = resource.split_once('.').unwrap_or((resource, ""));
    if resource.is_empty() || resource.contains('*') || group.contains('*') {
        return Err(EncryptionError::Invalid(format!(
            "resource {resource:?}: name resources explicitly (`secrets`, `<resource>.<group>`); \
             wildcards are not supported"
        )));
    }
    Ok(crate::object::keys::resource_prefix(group, resource))
}

fn provider(p: FileProvider) -> Result<Provider, EncryptionError> {
    let set = [
        p.aesgcm.is_some(),
        p.identity.is_some(),
        p.aescbc.is_some(),
        p.secretbox.is_some(),
        p.kms.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        return Err(EncryptionError::Invalid(
            "each provider must name exactly one of aesgcm, identity, aescbc, secretbox, kms"
                .into(),
        ));
    }
    if p.aescbc.is_some() {
        return Err(EncryptionError::Unsupported("aescbc"));
    }
    if p.secretbox.is_some() {
        return Err(EncryptionError::Unsupported("secretbox"));
    }
    if p.kms.is_some() {
        return Err(EncryptionError::Unsupported("kms"));
    }
    let Some(aesgcm) = p.aesgcm else {
        return Ok(Provider::Identity);
    };
    if aesgcm.keys.is_empty() {
        return Err(EncryptionError::Invalid("aesgcm lists no keys".into()));
    }
    let mut keys: Vec<AesKey> = Vec::new();
    for k in aesgcm.keys {
        // The name ends the stored prefix, so it must not contain its separator.
        if k.name.is_empty() || k.name.contains(':') {
            return Err(EncryptionError::Invalid(format!(
                "aesgcm key name {:?} must be non-empty and without ':'",
                k.name
            )));
        }
        let prefix = format!("k8s:enc:aesgcm:v1:{}:", k.name).into_bytes();
        if keys.iter().any(|existing| existing.prefix == prefix) {
            return Err(EncryptionError::Invalid(format!(
                "aesgcm key name {:?} is used twice",
                k.name
            )));
        }
        let secret = base64::engine::general_purpose::STANDARD
            .decode(k.secret.trim())
            .map_err(|e| {
                EncryptionError::Invalid(format!(
                    "aesgcm key {:?}: secret is not base64: {e}",
                    k.name
                ))
            })?;
        let algorithm = match secret.len() {
            32 => &AES_256_GCM,
            16 => &AES_128_GCM,
            n => {
                return Err(EncryptionError::Invalid(format!(
                    "aesgcm key {:?} is {n} bytes; it must be 32 (AES-256) or 16 (AES-128)",
                    k.name
                )));
            }
        };
        let key = UnboundKey::new(algorithm, &secret).map_err(|_| {
            EncryptionError::Invalid(format!("aesgcm key {:?} is not usable", k.name))
        })?;
        keys.push(AesKey {
            prefix,
            key: LessSafeKey::new(key),
        });
    }
    Ok(Provider::AesGcm(keys))
}

// --- The store wrapper -------------------------------------------------------------------

/// A [`Store`] that encrypts configured resources' values before they reach `inner` and
/// decrypts them on every way out (reads, write outcomes, watch events).
pub struct EncryptingStore {
    inner: Arc<dyn Store>,
    config: Arc<EncryptionConfig>,
}

impl EncryptingStore {
    pub fn new(inner: Arc<dyn Store>, config: EncryptionConfig) -> Self {
        Self {
            inner,
            config: Arc::new(config),
        }
    }
}

#[async_trait]
impl Store for EncryptingStore {
    async fn range(&self, req: RangeRequest) -> kplex_store::Result<RangeResponse> {
        let mut resp = self.inner.range(req).await?;
        resp.kvs = std::mem::take(&mut resp.kvs)
            .into_iter()
            .map(|kv| self.config.decrypt_kv(kv))
            .collect::<Result<_, _>>()?;
        Ok(resp)
    }

    async fn txn(&self, op: Op) -> kplex_store::Result<TxnOutcome> {
        let op = match op {
            Op::Put {
                key,
                value,
                precondition,
            } => {
                let value = match self.config.transformer(&key) {
                    Some(t) => t.encrypt(&key, &value)?,
                    None => value,
                };
                Op::Put {
                    key,
                    value,
                    precondition,
                }
            }
            delete @ Op::Delete { .. } => delete,
        };
        Ok(match self.inner.txn(op).await? {
            TxnOutcome::Succeeded { revision, kv, prev } => TxnOutcome::Succeeded {
                revision,
                kv: self.config.decrypt_opt(kv)?,
                prev: self.config.decrypt_opt(prev)?,
            },
            TxnOutcome::Failed { current } => TxnOutcome::Failed {
                current: self.config.decrypt_opt(current)?,
            },
        })
    }

    async fn watch(
        &self,
        range: KeyRange,
        start_revision: Revision,
    ) -> kplex_store::Result<WatchStream> {
        let config = self.config.clone();
        let events = self.inner.watch(range, start_revision).await?;
        Ok(Box::pin(events.map(move |event| {
            event.and_then(|e| config.decrypt_event(e).map_err(Into::into))
        })))
    }

    async fn compact(&self, revision: Revision) -> kplex_store::Result<()> {
        self.inner.compact(revision).await
    }

    fn written_since(&self, range: &KeyRange, revision: Revision) -> Option<bool> {
        self.inner.written_since(range, revision)
    }

    async fn status(&self) -> kplex_store::Result<StoreStatus> {
        self.inner.status().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use kplex_store::{EmbeddedOptions, EmbeddedStore, Precondition};

    const KEY1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="; // bytes 0..32
    const KEY2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="; // bytes 32..64

    fn config(keys: &[(&str, &str)], identity: bool) -> EncryptionConfig {
        let mut yaml = String::from(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n\
             resources:\n- resources: [secrets, widgets.example.com]\n  providers:\n",
        );
        if !keys.is_empty() {
            yaml.push_str("  - aesgcm:\n      keys:\n");
            for (name, secret) in keys {
                yaml.push_str(&format!("      - name: {name}\n        secret: {secret}\n"));
            }
        }
        if identity {
            yaml.push_str("  - identity: {}\n");
        }
        EncryptionConfig::parse(&yaml).unwrap()
    }

    const SECRET_KEY: &str = "/registry/secrets/root/default/s";

    #[test]
    fn round_trip_and_format() {
        let c = config(&[("k1", KEY1)], true);
        let t = c.transformer(SECRET_KEY).unwrap();
        let stored = t.encrypt(SECRET_KEY, b"hunter2").unwrap();
        assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:k1:"));
        assert_eq!(
            stored.len(),
            "k8s:enc:aesgcm:v1:k1:".len() + NONCE_LEN + 7 + TAG_LEN
        );
        assert!(!stored.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(&t.decrypt(SECRET_KEY, &stored).unwrap()[..], b"hunter2");
        // A fresh nonce per write.
        assert_ne!(stored, t.encrypt(SECRET_KEY, b"hunter2").unwrap());
        // Identity second: plaintext written before encryption still reads.
        let plain = Bytes::from_static(b"{\"old\":1}");
        assert_eq!(t.decrypt(SECRET_KEY, &plain).unwrap(), plain);
        // Group resources and unconfigured ones.
        assert!(
            c.transformer("/registry/example.com/widgets/root/w")
                .is_some()
        );
        assert!(
            c.transformer("/registry/configmaps/root/default/c")
                .is_none()
        );
        assert!(c.transformer("/registry/secretsx/root/default/c").is_none());
    }

    #[test]
    fn rotation_wrong_key_and_corruption() {
        let old = config(&[("k1", KEY1)], false);
        let stored = old
            .transformer(SECRET_KEY)
            .unwrap()
            .encrypt(SECRET_KEY, b"v")
            .unwrap();

        let rotated = config(&[("k2", KEY2), ("k1", KEY1)], false);
        let t = rotated.transformer(SECRET_KEY).unwrap();
        assert_eq!(&t.decrypt(SECRET_KEY, &stored).unwrap()[..], b"v");
        assert!(
            t.encrypt(SECRET_KEY, b"v")
                .unwrap()
                .starts_with(b"k8s:enc:aesgcm:v1:k2:")
        );

        // Same name, different key material: authentication fails.
        let wrong = config(&[("k1", KEY2)], true);
        let err = wrong
            .transformer(SECRET_KEY)
            .unwrap()
            .decrypt(SECRET_KEY, &stored)
            .unwrap_err();
        assert!(err.to_string().contains("authentication failed"), "{err}");

        // Unknown key name and no identity: nobody claims it.
        let other = config(&[("k2", KEY2)], true);
        let err = other
            .transformer(SECRET_KEY)
            .unwrap()
            .decrypt(SECRET_KEY, &stored)
            .unwrap_err();
        assert!(err.to_string().contains("no configured provider"), "{err}");

        // Plaintext with no identity provider is refused.
        assert!(t.decrypt(SECRET_KEY, &Bytes::from_static(b"{}")).is_err());

        // Truncated: inside the nonce, and inside the tag.
        let prefix_len = "k8s:enc:aesgcm:v1:k1:".len();
        for cut in [prefix_len + 5, stored.len() - 1] {
            let err = t.decrypt(SECRET_KEY, &stored.slice(..cut)).unwrap_err();
            assert!(err.to_string().contains("decrypt"), "{err}");
        }
        // Flipped bit.
        let mut bad = stored.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(t.decrypt(SECRET_KEY, &Bytes::from(bad)).is_err());

        // Bound to its key: the same bytes under another key do not decrypt.
        assert!(
            t.decrypt("/registry/secrets/root/default/other", &stored)
                .is_err()
        );
    }

    #[test]
    fn config_errors() {
        let parse = |providers: &str| {
            EncryptionConfig::parse(&format!(
                "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n\
                 resources:\n- resources: [secrets]\n  providers:\n{providers}"
            ))
        };
        for (providers, expect) in [
            ("  - secretbox:\n      keys: []\n", "secretbox"),
            ("  - aescbc:\n      keys: []\n", "aescbc"),
            ("  - kms:\n      name: x\n", "kms"),
            (
                "  - aesgcm:\n      keys:\n      - name: a\n        secret: AAAA\n",
                "3 bytes",
            ),
            ("  - aesgcm:\n      keys: []\n", "no keys"),
            (
                "  - aesgcm:\n      keys:\n      - name: 'a:b'\n        secret: AAAA\n",
                "':'",
            ),
            ("  - bogus: {}\n", "bogus"),
        ] {
            let err = parse(providers).err().unwrap().to_string();
            assert!(err.contains(expect), "{providers}: {err}");
        }
        assert!(EncryptionConfig::parse("apiVersion: v1\nkind: Pod\n").is_err());
    }

    #[tokio::test]
    async fn store_wrapper_encrypts_at_rest() {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn Store> = Arc::new(
            EmbeddedStore::open(EmbeddedOptions::new(dir.path().join("store.db"))).unwrap(),
        );
        let store = EncryptingStore::new(inner.clone(), config(&[("k1", KEY1)], true));
        let mut watch = store
            .watch(KeyRange::prefix("/registry/"), 0)
            .await
            .unwrap();

        let out = store
            .create(SECRET_KEY, Bytes::from_static(b"s1"))
            .await
            .unwrap();
        let TxnOutcome::Succeeded { kv, .. } = out else {
            panic!("create failed")
        };
        assert_eq!(&kv.unwrap().value[..], b"s1");
        store
            .put(
                "/registry/configmaps/root/default/c",
                Bytes::from_static(b"c1"),
            )
            .await
            .unwrap();

        // At rest: ciphertext for the secret, plaintext for the config map.
        let raw = inner.get(SECRET_KEY).await.unwrap().unwrap();
        assert!(raw.value.starts_with(b"k8s:enc:aesgcm:v1:k1:"));
        let raw = inner
            .get("/registry/configmaps/root/default/c")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&raw.value[..], b"c1");

        // Reads, conflicts, write outcomes and watch events all see plaintext.
        assert_eq!(
            &store.get(SECRET_KEY).await.unwrap().unwrap().value[..],
            b"s1"
        );
        let listed = store
            .range(RangeRequest::prefix("/registry/"))
            .await
            .unwrap();
        assert_eq!(listed.kvs.len(), 2);
        let TxnOutcome::Failed { current } = store
            .create(SECRET_KEY, Bytes::from_static(b"x"))
            .await
            .unwrap()
        else {
            panic!("second create succeeded")
        };
        assert_eq!(&current.unwrap().value[..], b"s1");
        let TxnOutcome::Succeeded { prev, .. } =
            store.delete(SECRET_KEY, Precondition::None).await.unwrap()
        else {
            panic!("delete failed")
        };
        assert_eq!(&prev.unwrap().value[..], b"s1");
        let mut seen = Vec::new();
        for _ in 0..3 {
            let e = watch.next().await.unwrap().unwrap();
            seen.push((e.kv.value.clone(), e.prev.map(|p| p.value)));
        }
        assert_eq!(&seen[0].0[..], b"s1");
        assert_eq!(&seen[1].0[..], b"c1");
        assert!(seen[2].0.is_empty());
        assert_eq!(seen[2].1.as_deref(), Some(&b"s1"[..]));

        // Garbage under an encrypted prefix is an error, not a panic or a leak.
        inner
            .put(
                SECRET_KEY,
                Bytes::from_static(b"k8s:enc:aesgcm:v1:nokey:zzzz"),
            )
            .await
            .unwrap();
        assert!(store.get(SECRET_KEY).await.is_err());
    }
}

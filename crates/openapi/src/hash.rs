//! A stable content hash for `?hash=` in the v3 root listing.

use serde_json::Value;

/// Two independent 64-bit FNV-1a lanes give a 128-bit digest: clients only
/// use it as a cache key, so no cryptographic strength is needed.
pub(crate) fn document_hash(doc: &Value) -> String {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = doc.to_string();
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x6c62_272e_07bb_0142;
    for &byte in bytes.as_bytes() {
        a = (a ^ u64::from(byte)).wrapping_mul(PRIME);
        b = (b ^ u64::from(byte.rotate_left(3))).wrapping_mul(PRIME);
    }
    format!("{a:016X}{b:016X}")
}

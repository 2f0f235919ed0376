//! API version strings (`v1`, `v2beta1`, `v1alpha1`) in Kubernetes' priority order.

use std::cmp::Ordering;

/// Kubernetes' version priority (`CompareKubeAwareVersionStrings`): GA before beta before
/// alpha, higher numbers first; `Less` means `a` comes first.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn key(v: &str) -> (u8, i64, i64) {
        let Some(rest) = v.strip_prefix('v') else {
            return (0, 0, 0);
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major = digits.parse().unwrap_or(0);
        let tail = &rest[digits.len()..];
        let (stage, minor) = if tail.is_empty() {
            (3, 0)
        } else if let Some(n) = tail.strip_prefix("beta") {
            (2, n.parse().unwrap_or(0))
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (1, n.parse().unwrap_or(0))
        } else {
            (0, 0)
        };
        (stage, major, minor)
    }
    key(b).cmp(&key(a)).then_with(|| a.cmp(b))
}

//! String `format` checks, following kube-openapi's strfmt registry for the
//! formats CRD authors actually use. Unknown formats are accepted, as in Kubernetes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `s` satisfies `format`; unknown formats always pass.
pub(crate) fn is_valid(format: &str, s: &str) -> bool {
    match format {
        "byte" => is_base64(s),
        "date" => parse_date(s).is_some(),
        "date-time" | "datetime" => parse_datetime(s).is_some(),
        "uuid" => uuid_version(s).is_some(),
        "uuid3" => uuid_version(s) == Some(b'3'),
        "uuid4" => uuid_version(s) == Some(b'4'),
        "uuid5" => uuid_version(s) == Some(b'5'),
        "ipv4" => s.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(s),
        "mac" => is_mac(s),
        "hostname" => is_hostname(s),
        "email" => is_email(s),
        "bsonobjectid" => s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()),
        _ => true,
    }
}

/// Standard base64 with padding, like Go's `base64.StdEncoding`.
fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let body = s.trim_end_matches('=');
    let pad = b.len() - body.len();
    pad <= 2
        && body
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// Version nibble of a UUID in 8-4-4-4-12 or 32-hex-digit form.
fn uuid_version(s: &str) -> Option<u8> {
    let b = s.as_bytes();
    let hex: Vec<u8> = match b.len() {
        36 => {
            let dashes = [8, 13, 18, 23];
            if !dashes.iter().all(|&i| b[i] == b'-') {
                return None;
            }
            b.iter()
                .enumerate()
                .filter(|(i, _)| !dashes.contains(i))
                .map(|(_, c)| *c)
                .collect()
        }
        32 => b.to_vec(),
        _ => return None,
    };
    if hex.iter().all(u8::is_ascii_hexdigit) {
        hex.get(12).copied()
    } else {
        None
    }
}

fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => bits <= 32,
        Ok(IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    matches!(parts.len(), 6 | 8 | 20)
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 255
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// A pragmatic `addr-spec` check; Go's `net/mail` is more permissive in corners
/// nobody relies on for CRDs.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty() && !local.contains(char::is_whitespace) && is_hostname(domain)
}

pub(crate) use kplex_gocompat::{format_rfc3339, parse_date};

/// An RFC 3339 timestamp (offset optional, like strfmt's local-time layout) as Unix seconds.
pub(crate) fn parse_datetime(s: &str) -> Option<i64> {
    kplex_gocompat::parse_rfc3339(s).map(|t| t.secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let cases = [
            ("byte", "aGVsbG8=", true),
            ("byte", "", true),
            ("byte", "aGVsbG8", false),
            ("byte", "a=bc", false),
            ("date", "2024-02-29", true),
            ("date", "2023-02-29", false),
            ("date", "2024-1-01", false),
            ("date-time", "2024-01-02T03:04:05Z", true),
            ("date-time", "2024-01-02T03:04:05.123+02:00", true),
            ("date-time", "2024-01-02T03:04:05", true),
            ("date-time", "2024-01-02 03:04:05Z", false),
            ("date-time", "2024-01-02T25:04:05Z", false),
            ("date-time", "yesterday", false),
            ("uuid", "123e4567-e89b-12d3-a456-426614174000", true),
            ("uuid", "123E4567E89B12D3A456426614174000", true),
            ("uuid", "123e4567-e89b-12d3-a456", false),
            ("uuid4", "123e4567-e89b-42d3-a456-426614174000", true),
            ("uuid4", "123e4567-e89b-12d3-a456-426614174000", false),
            ("ipv4", "10.0.0.1", true),
            ("ipv4", "10.0.0.256", false),
            ("ipv6", "::1", true),
            ("cidr", "10.0.0.0/8", true),
            ("cidr", "10.0.0.0/33", false),
            ("hostname", "example.com", true),
            ("hostname", "-bad.com", false),
            ("email", "a@example.com", true),
            ("email", "nope", false),
            ("mac", "00:11:22:33:44:55", true),
            ("int32", "anything", true),
            ("unknown-format", "anything", true),
        ];
        for (f, s, ok) in cases {
            assert_eq!(is_valid(f, s), ok, "{f} {s}");
        }
    }

    #[test]
    fn rfc3339_round_trip_in_utc() {
        for (input, want) in [
            ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"),
            ("2024-02-29T23:30:00-01:00", "2024-03-01T00:30:00Z"),
            ("2021-06-01T12:00:00.5+02:00", "2021-06-01T10:00:00Z"),
        ] {
            let secs = parse_datetime(input).expect("valid");
            assert_eq!(format_rfc3339(secs), want);
        }
    }
}

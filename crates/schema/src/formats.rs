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

/// A calendar date `YYYY-MM-DD`, returned as (year, month, day).
pub(crate) fn parse_date(s: &str) -> Option<(i64, u32, u32)> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = digits(&s[0..4])? as i64;
    let m = digits(&s[5..7])?;
    let d = digits(&s[8..10])?;
    ((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)).then_some((y, m, d))
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// An RFC 3339 timestamp (fractional seconds optional, `Z` or numeric offset,
/// offset optional like strfmt's local-time layout), as Unix seconds in UTC.
pub(crate) fn parse_datetime(s: &str) -> Option<i64> {
    if s.len() < 19 || !s.is_char_boundary(10) || !s.is_char_boundary(19) {
        return None;
    }
    let (y, mo, d) = parse_date(&s[..10])?;
    if !matches!(s.as_bytes()[10], b'T' | b't') {
        return None;
    }
    let secs_of_day = parse_clock(&s[11..19])?;
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = parse_offset(rest)?;
    Some(days_from_civil(y, mo, d) * 86_400 + secs_of_day - offset)
}

fn parse_clock(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, sec) = (digits(&s[0..2])?, digits(&s[3..5])?, digits(&s[6..8])?);
    (h < 24 && m < 60 && sec < 61).then_some(i64::from(h * 3600 + m * 60 + sec))
}

/// Offset east of UTC in seconds; empty means local time, taken as UTC.
fn parse_offset(s: &str) -> Option<i64> {
    if s.is_empty() || s == "Z" || s == "z" {
        return Some(0);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hm = s[1..].replace(':', "");
    if hm.len() != 4 || s.len() > 6 || !hm.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = (digits(&hm[..2])?, digits(&hm[2..])?);
    (h < 24 && m < 60).then_some(sign * i64::from(h * 3600 + m * 60))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (what `metav1.Time` marshals to).
pub(crate) fn format_rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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

//! Go's text forms that Kubernetes clients and flags use, in one place: `strconv.ParseBool`
//! (query parameters such as the Python client's `watch=True`, kubectl-style boolean flags),
//! `time.Duration` (metav1.Duration in JSON, `--timeout=1m30s`) and RFC 3339 times
//! (metav1.Time).

/// Go's `time.Unix(secs, 0).UTC().Format(time.RFC3339)`: `2026-12-05T01:02:03Z`.
pub fn format_rfc3339(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// [`format_rfc3339`] of the current time.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format_rfc3339(secs)
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), using
/// 400-year eras so the arithmetic stays exact for any input.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A time read from RFC 3339 text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339 {
    /// Unix seconds, UTC.
    pub secs: i64,
    pub nanos: u32,
    /// Whether the text had a zone (`Z` or an offset); Go's `time.RFC3339` requires one.
    pub zoned: bool,
}

/// An RFC 3339 timestamp, fractional seconds and zone optional (no zone reads as UTC, as
/// strfmt's local-time layout does). `None`: not one.
pub fn parse_rfc3339(s: &str) -> Option<Rfc3339> {
    if s.len() < 19 || !s.is_char_boundary(10) || !s.is_char_boundary(19) {
        return None;
    }
    let (y, mo, d) = parse_date(&s[..10])?;
    if !matches!(s.as_bytes()[10], b'T' | b't') {
        return None;
    }
    let secs_of_day = parse_clock(&s[11..19])?;
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        // Go keeps nanoseconds; digits beyond are dropped.
        let kept = &frac[..n.min(9)];
        nanos = kept.parse::<u32>().ok()? * 10u32.pow(9 - kept.len() as u32);
        rest = &frac[n..];
    }
    let offset = parse_offset(rest)?;
    Some(Rfc3339 {
        secs: days_from_civil(y, mo, d) * 86_400 + secs_of_day - offset,
        nanos,
        zoned: !rest.is_empty(),
    })
}

/// How `metav1.Time` (whole seconds) or `MicroTime` (microseconds) returns a time a client
/// sent: Go parses it as RFC 3339 and marshals it in UTC. `None`: Go would not parse it
/// (no zone, or not a time), so it is left to validation.
pub fn normalize_time(s: &str, micro: bool) -> Option<String> {
    let t = parse_rfc3339(s).filter(|t| t.zoned)?;
    let seconds = format_rfc3339(t.secs);
    if !micro {
        return Some(seconds);
    }
    let base = seconds.strip_suffix('Z').unwrap_or(&seconds);
    Some(format!("{base}.{:06}Z", t.nanos / 1000))
}

/// A calendar date `YYYY-MM-DD`, returned as (year, month, day).
pub fn parse_date(s: &str) -> Option<(i64, u32, u32)> {
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

fn parse_clock(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, sec) = (digits(&s[0..2])?, digits(&s[3..5])?, digits(&s[6..8])?);
    (h < 24 && m < 60 && sec < 61).then_some(i64::from(h * 3600 + m * 60 + sec))
}

/// Offset east of UTC in seconds; empty means no zone, taken as UTC.
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

/// Go's `strconv.ParseBool`: `1 t T TRUE true True` and `0 f F FALSE false False`; anything
/// else is not a boolean.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `time.ParseDuration` as a [`std::time::Duration`]: `None` for what Go rejects and for
/// negative durations.
pub fn parse_std_duration(s: &str) -> Option<std::time::Duration> {
    let ns = u64::try_from(parse_duration(s)?).ok()?;
    Some(std::time::Duration::from_nanos(ns))
}

/// Go's `time.Duration.String()`.
pub fn format_duration(d: i64) -> String {
    if d == 0 {
        return "0s".to_owned();
    }
    let sign = if d < 0 { "-" } else { "" };
    let u = d.unsigned_abs();
    // Below a second Go switches to one unit with a trimmed fraction.
    let frac = |v: u64, unit: u64, suffix: &str| {
        let (whole, rem) = (v / unit, v % unit);
        let width = unit.ilog10() as usize;
        let f = format!("{rem:0width$}");
        let f = f.trim_end_matches('0');
        if f.is_empty() {
            format!("{sign}{whole}{suffix}")
        } else {
            format!("{sign}{whole}.{f}{suffix}")
        }
    };
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return frac(u, 1_000, "\u{b5}s");
    }
    if u < 1_000_000_000 {
        return frac(u, 1_000_000, "ms");
    }
    let secs = frac(u % 60_000_000_000, 1_000_000_000, "s");
    let secs = secs.trim_start_matches('-');
    let mins = u / 60_000_000_000;
    if mins == 0 {
        return format!("{sign}{secs}");
    }
    let (h, m) = (mins / 60, mins % 60);
    if h == 0 {
        format!("{sign}{m}m{secs}")
    } else {
        format!("{sign}{h}h{m}m{secs}")
    }
}

/// Go's `time.ParseDuration`, in nanoseconds.
pub fn parse_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.as_bytes().first()? {
        b'-' => (true, s.get(1..)?),
        b'+' => (false, s.get(1..)?),
        _ => (false, s),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = rest.get(..int_len)?;
        rest = rest.get(int_len..)?;
        let mut frac_part = "";
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = r.get(..n)?;
            rest = r.get(n..)?;
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let unit: i128 = match rest.get(..unit_len)? {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        rest = rest.get(unit_len..)?;
        // Go rejects more than 2^63 ns, so a short digit string suffices.
        if int_part.len() > 20 {
            return None;
        }
        let whole: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let mut part = whole.checked_mul(unit)?;
        let mut scale = unit;
        for c in frac_part.bytes().take(20) {
            scale /= 10;
            part += i128::from(c - b'0') * scale;
        }
        total = total.checked_add(part)?;
        if total > i128::from(i64::MAX) + 1 {
            return None;
        }
    }
    let total = if neg { -total } else { total };
    i64::try_from(total).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_normalize_as_go_marshals_them() {
        assert_eq!(
            normalize_time("2026-01-02T05:04:05.25+02:00", false).as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
        assert_eq!(
            normalize_time("2026-01-02T05:04:05.25+02:00", true).as_deref(),
            Some("2026-01-02T03:04:05.250000Z")
        );
        assert_eq!(
            normalize_time("2026-01-01T00:30:00-01:00", false).as_deref(),
            Some("2026-01-01T01:30:00Z")
        );
        assert_eq!(normalize_time("2026-01-02T05:04:05", false), None);
        assert_eq!(normalize_time("noon", false), None);
        let t = parse_rfc3339("1999-12-31T23:59:59.123456789Z").unwrap();
        assert_eq!((t.nanos, t.zoned), (123_456_789, true));
        assert_eq!(format_rfc3339(t.secs), "1999-12-31T23:59:59Z");
    }

    use super::*;

    #[test]
    fn bools() {
        for s in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(s), Some(true), "{s}");
        }
        for s in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(s), Some(false), "{s}");
        }
        for s in ["", "yes", "tRuE", " true"] {
            assert_eq!(parse_bool(s), None, "{s}");
        }
    }

    #[test]
    fn std_durations() {
        assert_eq!(
            parse_std_duration("1m30s"),
            Some(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            parse_std_duration("500ms"),
            Some(std::time::Duration::from_millis(500))
        );
        assert_eq!(parse_std_duration("-1s"), None);
        assert_eq!(parse_std_duration("60"), None);
    }

    #[test]
    fn durations() {
        for (ns, s) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5\u{b5}s"),
            (1_500_000, "1.5ms"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (-3_600_000_000_000, "-1h0m0s"),
        ] {
            assert_eq!(format_duration(ns), s);
            assert_eq!(parse_duration(s), Some(ns), "{s}");
        }
        assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration(".5s"), Some(500_000_000));
        assert_eq!(format_duration(i64::MIN), "-2562047h47m16.854775808s");
        assert_eq!(parse_duration("-2562047h47m16.854775808s"), Some(i64::MIN));
        assert_eq!(parse_duration("2562047h47m16.854775808s"), None);
        assert_eq!(parse_duration("1x"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("99999999999999999999999h"), None);
    }
}

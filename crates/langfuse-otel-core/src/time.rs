//! Timestamps: Unix milliseconds ⇄ the ISO-8601 text Langfuse uses (`2026-01-01T09:00:00.000Z`).

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.sssZ` (UTC), like JavaScript's
/// `Date.prototype.toISOString` (years outside 0..=9999 use the expanded `±YYYYYY` form).
pub fn format_iso_millis(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    let ms_of_day = unix_ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return format_expanded_year(y, m, d, ms_of_day);
    }
    let (h, rem) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (min, rem) = (rem / 60_000, rem % 60_000);
    let (s, ms) = (rem / 1000, rem % 1000);
    // On the span hot path: fill a fixed buffer instead of going through `format!`.
    let mut buf = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, value: i64, width: usize| {
        let mut v = value;
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, y, 4);
    put(5, m, 2);
    put(8, d, 2);
    put(11, h, 2);
    put(14, min, 2);
    put(17, s, 2);
    put(20, ms, 3);
    buf.iter().map(|&b| char::from(b)).collect()
}

/// Formats a time as Python's `datetime.isoformat()` writes a UTC time with a `Z` suffix, as
/// the official Python SDK sends it: `2026-11-22T14:54:53.069935Z`, microseconds, the fraction
/// omitted when they are zero.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use langfuse_otel_core::time::format_iso_micros;
/// let t = UNIX_EPOCH + Duration::from_nanos(1_795_359_293_069_935_123);
/// assert_eq!(format_iso_micros(t), "2026-11-22T14:54:53.069935Z");
/// ```
pub fn format_iso_micros(time: std::time::SystemTime) -> String {
    let (secs, micros) = match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_micros(),
        ),
        Err(e) => {
            let d = e.duration();
            let mut s = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            let mut us = d.subsec_micros();
            if us > 0 {
                s -= 1;
                us = 1_000_000 - us;
            }
            (s, us)
        }
    };
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let (h, min, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    if micros == 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{micros:06}Z")
    }
}

fn format_expanded_year(y: i64, m: i64, d: i64, ms_of_day: i64) -> String {
    let (h, rem) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (min, rem) = (rem / 60_000, rem % 60_000);
    let (s, ms) = (rem / 1000, rem % 1000);
    let sign = if y < 0 { '-' } else { '+' };
    format!(
        "{sign}{:06}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{ms:03}Z",
        y.abs()
    )
}

/// The largest absolute time value a JavaScript `Date` accepts (±100,000,000 days).
pub const MAX_JS_DATE_MS: i64 = 8_640_000_000_000_000;

/// Parses an ISO-8601 date-time the way Langfuse's schema accepts it (a `Z` or `±HH:MM`
/// offset is required; any number of fraction digits), returning Unix milliseconds.
///
/// Accepts `YYYY-MM-DDTHH:MM[:SS[.fff…]](Z|±HH:MM|±HHMM)`.
pub fn parse_iso_with_offset(text: &str) -> Option<i64> {
    let (local, offset_minutes) = split_offset(text)?;
    let ms = parse_local_date_time(local)?;
    Some(ms - offset_minutes * 60_000)
}

/// Parses a date-time without requiring an offset (a missing offset is read as UTC), for the
/// forms JavaScript's `Date` accepts from ISO-like strings: `YYYY-MM-DD`, and
/// `YYYY-MM-DD[T| ]HH:MM[:SS[.fff…]]` with an optional `Z`/`±HH:MM` offset.
pub fn parse_date_lenient(text: &str) -> Option<i64> {
    if let Some(ms) = parse_iso_with_offset(text) {
        return Some(ms);
    }
    if text.len() == 10 {
        return parse_date(text).map(|days| days * 86_400_000);
    }
    parse_local_date_time(text)
}

/// Whether the text ends with an explicit UTC offset (`Z`, `±HH:MM` or `±HHMM`).
pub fn has_offset(text: &str) -> bool {
    split_offset(text).is_some()
}

fn split_offset(text: &str) -> Option<(&str, i64)> {
    if let Some(local) = text.strip_suffix(['Z', 'z']) {
        return Some((local, 0));
    }
    let bytes = text.as_bytes();
    for len in [6usize, 5, 3] {
        if bytes.len() <= len + 10 {
            continue;
        }
        let at = bytes.len() - len;
        let sign = match bytes[at] {
            b'+' => 1,
            b'-' => -1,
            _ => continue,
        };
        let tail = &text[at + 1..];
        let (h, m) = match len {
            6 if tail.as_bytes()[2] == b':' => (&tail[..2], &tail[3..]),
            5 => (&tail[..2], &tail[2..]),
            3 => (&tail[..2], "00"),
            _ => continue,
        };
        let (h, m) = (two_digits(h)?, two_digits(m)?);
        if h > 23 || m > 59 {
            return None;
        }
        return Some((&text[..at], sign * (h * 60 + m)));
    }
    None
}

fn two_digits(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    (b.len() == 2 && b[0].is_ascii_digit() && b[1].is_ascii_digit())
        .then(|| i64::from(b[0] - b'0') * 10 + i64::from(b[1] - b'0'))
}

fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year: i64 = s[..4].parse().ok()?;
    let month = two_digits(&s[5..7])?;
    let day = two_digits(&s[8..10])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

fn parse_local_date_time(s: &str) -> Option<i64> {
    if s.len() < 16 || !s.is_char_boundary(10) || !s.is_char_boundary(11) {
        return None;
    }
    let days = parse_date(&s[..10])?;
    if !matches!(s.as_bytes()[10], b'T' | b't' | b' ') {
        return None;
    }
    let time = &s[11..];
    let tb = time.as_bytes();
    if tb.len() < 5 || tb[2] != b':' {
        return None;
    }
    let h = two_digits(&time[..2])?;
    let min = two_digits(&time[3..5])?;
    let mut sec = 0;
    let mut ms = 0;
    let rest = &time[5..];
    if !rest.is_empty() {
        let rb = rest.as_bytes();
        if rb.len() < 3 || rb[0] != b':' {
            return None;
        }
        sec = two_digits(&rest[1..3])?;
        let frac = &rest[3..];
        if !frac.is_empty() {
            let digits = frac.strip_prefix(['.', ','])?;
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let mut padded = [b'0'; 3];
            for (slot, c) in padded.iter_mut().zip(digits.bytes()) {
                *slot = c;
            }
            ms = padded
                .iter()
                .fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0'));
        }
    }
    if h > 24 || min > 59 || sec > 59 || (h == 24 && (min, sec, ms) != (0, 0, 0)) {
        return None;
    }
    Some(days * 86_400_000 + h * 3_600_000 + min * 60_000 + sec * 1000 + ms)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_python_isoformat() {
        use std::time::{Duration, UNIX_EPOCH};
        let t = UNIX_EPOCH + Duration::from_micros(1_704_067_200_000_000);
        assert_eq!(format_iso_micros(t), "2024-01-01T00:00:00Z");
        assert_eq!(
            format_iso_micros(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            format_iso_micros(UNIX_EPOCH - Duration::from_micros(1)),
            "1969-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn formats_like_to_iso_string() {
        assert_eq!(format_iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_iso_millis(1_767_258_000_123),
            "2026-01-01T09:00:00.123Z"
        );
        assert_eq!(format_iso_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            format_iso_millis(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let z = parse_iso_with_offset("2026-01-01T09:00:00.123456Z").unwrap();
        assert_eq!(z, 1_767_258_000_123);
        let plus = parse_iso_with_offset("2026-01-01T11:00:00.123+02:00").unwrap();
        assert_eq!(plus, z);
        assert_eq!(parse_iso_with_offset("2026-01-01T09:00:00"), None);
        assert_eq!(parse_iso_with_offset("2026-02-30T09:00:00Z"), None);
        assert_eq!(
            parse_date_lenient("2026-01-01 09:00:00"),
            Some(1_767_258_000_000)
        );
    }

    #[test]
    fn round_trips_day_counts() {
        for days in [-800_000i64, -1, 0, 1, 59, 365, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}

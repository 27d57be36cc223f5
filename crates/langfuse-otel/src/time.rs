//! ISO-8601 timestamps as Python's `datetime.isoformat()` writes them for UTC (`Z` suffix,
//! microseconds unless zero).

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-22T14:54:53.069935Z` (the fraction is omitted when the microseconds are zero).
pub(crate) fn iso_micros(time: SystemTime) -> String {
    let (secs, micros) = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_micros()),
        Err(e) => {
            let d = e.duration();
            let mut s = -(d.as_secs() as i64);
            let mut us = d.subsec_micros();
            if us > 0 {
                s -= 1;
                us = 1_000_000 - us;
            }
            (s, us)
        }
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    if micros == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{micros:06}Z")
    }
}

/// Howard Hinnant's days-to-civil conversion.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_like_python_isoformat() {
        let t = UNIX_EPOCH + Duration::from_micros(1_704_067_200_000_000);
        assert_eq!(iso_micros(t), "2024-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_nanos(1_795_359_293_069_935_123);
        assert_eq!(iso_micros(t), "2026-11-22T14:54:53.069935Z");
        assert_eq!(
            iso_micros(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }
}

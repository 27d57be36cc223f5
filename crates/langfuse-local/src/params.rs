//! Filters from text: the query string of the viewer's `/api/traces` (and list pages) and the
//! `--since`/`--until`/`--level` flags of `langfuse-bridge traces list`, parsed one way for
//! both.
//!
//! ```
//! use langfuse_local::params::filter_from_query;
//!
//! let filter = filter_from_query(Some("user=u1&tag=a&tag=b&level=warning&limit=20")).unwrap();
//! assert_eq!(filter.user_id.as_deref(), Some("u1"));
//! assert_eq!(filter.tags, ["a", "b"]);
//! assert_eq!(filter.limit, 20);
//! assert!(filter_from_query(Some("since=soon")).is_err());
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use langfuse_otel_core::record::Level;
use langfuse_otel_core::time::parse_date_lenient;

use crate::{MAX_FILTER_CONDITIONS, TraceFilter};

/// Parses `--since`/`--until`: ISO-8601 (offset optional, UTC assumed), `YYYY-MM-DD`, or a
/// duration ago (`90s`, `30m`, `2h`, `7d`). Returns Unix milliseconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Some(ms) = parse_date_lenient(text) {
        return Ok(ms);
    }
    let unit = text.chars().last().ok_or("empty time")?;
    let factor = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => {
            return Err(format!(
                "{text:?} is not a time (ISO-8601, YYYY-MM-DD, or 30m/2h/7d)"
            ));
        }
    };
    let amount: i64 = text[..text.len() - 1]
        .parse()
        .map_err(|_| format!("{text:?} is not a time (ISO-8601, YYYY-MM-DD, or 30m/2h/7d)"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Ok(now - amount.saturating_mul(factor))
}

/// Parses a level name, case-insensitively.
pub fn parse_level(text: &str) -> Result<Level, String> {
    match text.to_ascii_uppercase().as_str() {
        "DEBUG" => Ok(Level::Debug),
        "DEFAULT" => Ok(Level::Default),
        "WARNING" | "WARN" => Ok(Level::Warning),
        "ERROR" => Ok(Level::Error),
        _ => Err(format!(
            "unknown level {text:?} (DEBUG, DEFAULT, WARNING or ERROR)"
        )),
    }
}

/// The `application/x-www-form-urlencoded` pairs of a query string, decoded (`+` is a space,
/// `%XX` a byte; invalid escapes stay as they are, invalid UTF-8 is replaced).
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The trace filter of `/api/traces` query parameters; empty values are ignored.
pub fn filter_from_query(raw: Option<&str>) -> Result<TraceFilter, String> {
    let mut filter = TraceFilter::default();
    for (key, value) in query_pairs(raw) {
        let value = value.trim().to_owned();
        if value.is_empty() {
            continue;
        }
        match key.as_str() {
            "name" => filter.name = Some(value),
            "user" => filter.user_id = Some(value),
            "session" => filter.session_id = Some(value),
            "tag" => filter.tags.push(value),
            "since" => filter.since_ms = Some(parse_time(&value)?),
            "until" => filter.until_ms = Some(parse_time(&value)?),
            "level" => filter.min_level = Some(parse_level(&value)?),
            "score" => filter.scores.push(value.parse()?),
            "sort" => filter.sort = value.parse()?,
            "order" => filter.ascending = value == "asc",
            "limit" => {
                filter.limit = value
                    .parse::<u32>()
                    .map_err(|_| format!("limit {value:?} is not a number"))?
                    .min(500);
            }
            "offset" => {
                filter.offset = value
                    .parse()
                    .map_err(|_| format!("offset {value:?} is not a number"))?;
            }
            _ => {}
        }
    }
    if filter.limit == 0 {
        filter.limit = 50;
    }
    if filter.conditions() > MAX_FILTER_CONDITIONS {
        return Err(format!(
            "at most {MAX_FILTER_CONDITIONS} tag and score filters are allowed ({} given)",
            filter.conditions()
        ));
    }
    Ok(filter)
}

/// `limit` (1–500, default 100) and `offset` (default 0) of a list page; bad values fall back
/// to the defaults.
pub fn page_from_query(raw: Option<&str>) -> (u32, u32) {
    let mut limit = 100;
    let mut offset = 0;
    for (k, v) in query_pairs(raw) {
        match k.as_str() {
            "limit" => limit = v.parse::<u32>().unwrap_or(100).clamp(1, 500),
            "offset" => offset = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    (limit, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_percent_and_plus_decoded() {
        let pairs = query_pairs(Some("name=a+b&score=rel%3E%3D0.5&tag=%ZZ&x"));
        assert_eq!(pairs[0], ("name".into(), "a b".into()));
        assert_eq!(pairs[1], ("score".into(), "rel>=0.5".into()));
        assert_eq!(pairs[2], ("tag".into(), "%ZZ".into()));
        assert_eq!(pairs[3], ("x".into(), String::new()));
    }

    #[test]
    fn filter_parameters_map_to_the_store_filter() {
        let f = filter_from_query(Some(
            "user=u1&tag=a&tag=b&level=error&sort=cost&order=asc&limit=9999",
        ))
        .unwrap();
        assert_eq!(f.user_id.as_deref(), Some("u1"));
        assert_eq!(f.tags, ["a", "b"]);
        assert_eq!(f.sort, crate::SortKey::Cost);
        assert!(f.ascending);
        assert_eq!(f.limit, 500);
        assert!(filter_from_query(Some("score=broken")).is_err());
    }

    #[test]
    fn relative_times_count_back_from_now() {
        let now = parse_time("0s").unwrap();
        let two_hours = parse_time("2h").unwrap();
        assert!((now - two_hours - 7_200_000).abs() < 5_000);
        assert_eq!(parse_time("2026-01-01").unwrap(), 1_767_225_600_000);
        assert!(parse_time("soon").is_err());
    }

    #[test]
    fn levels_parse_case_insensitively() {
        assert_eq!(parse_level("error").unwrap(), Level::Error);
        assert!(parse_level("fatal").is_err());
    }
}

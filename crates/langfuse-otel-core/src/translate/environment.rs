//! Environment, version and release (server: `extractEnvironment`, version/release rules).

use super::SpanContext;
use crate::keys;
use crate::value::AttrValue;

/// The environment used when none is set or the value is not a valid environment name.
pub const DEFAULT_ENVIRONMENT: &str = "default";

/// Longest environment name Langfuse keeps.
const MAX_ENVIRONMENT_LEN: usize = 40;

/// The span's environment: for each of `langfuse.environment`, `deployment.environment.name`,
/// `deployment.environment` the span attribute, then the resource attribute; the first non-empty
/// string wins and is normalized with [`normalize_environment`].
pub fn environment(cx: &SpanContext<'_, '_>) -> String {
    const KEYS: [&str; 3] = [
        keys::LANGFUSE_ENVIRONMENT,
        keys::DEPLOYMENT_ENVIRONMENT_NAME,
        keys::DEPLOYMENT_ENVIRONMENT,
    ];
    KEYS.iter()
        .find_map(|key| {
            non_empty_str(cx.attr(key)).or_else(|| non_empty_str(cx.resource.attributes.get(key)))
        })
        .map_or_else(|| DEFAULT_ENVIRONMENT.to_owned(), normalize_environment)
}

fn non_empty_str<'v>(value: Option<&'v AttrValue<'_>>) -> Option<&'v str> {
    value.and_then(AttrValue::as_str).filter(|s| !s.is_empty())
}

/// Langfuse's environment normalization: lower-case, strip leading `langfuse` prefixes (with an
/// optional `-`/`_`), keep at most 40 characters; anything not matching `^[a-z0-9-_]+$` becomes
/// `"default"` (`Production` → `production`, `langfuse-test` → `test`, `my env` → `default`).
pub fn normalize_environment(raw: &str) -> String {
    // Fast path: already a valid, normalized name (the usual `production`, `staging`).
    if !raw.is_empty()
        && raw.len() <= MAX_ENVIRONMENT_LEN
        && !raw.starts_with("langfuse")
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return raw.to_owned();
    }
    let lower = raw.to_lowercase();
    let mut rest = lower.as_str();
    while let Some(stripped) = rest.strip_prefix("langfuse") {
        rest = stripped.strip_prefix(['-', '_']).unwrap_or(stripped);
    }
    let truncated: String = rest.chars().take(MAX_ENVIRONMENT_LEN).collect();
    let valid = !truncated.is_empty()
        && truncated
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if valid {
        truncated
    } else {
        DEFAULT_ENVIRONMENT.to_owned()
    }
}

/// Version of the trace and observation: span `langfuse.version`, else resource
/// `service.version`.
///
/// The server requires a string; a non-string value makes it drop the event. We keep the event
/// and render the value as text instead (documented deviation, case
/// `version-release-span-vs-resource` shows the string rules).
pub fn version(cx: &SpanContext<'_, '_>) -> Option<String> {
    cx.attr(keys::LANGFUSE_VERSION)
        .or_else(|| cx.resource.attributes.get(keys::SERVICE_VERSION))
        .map(|v| v.to_json_string().into_owned())
}

/// Release of the trace: span `langfuse.release`, else resource `langfuse.release`.
pub fn release(cx: &SpanContext<'_, '_>) -> Option<String> {
    cx.attr(keys::LANGFUSE_RELEASE)
        .or_else(|| cx.resource.attributes.get(keys::LANGFUSE_RELEASE))
        .map(|v| v.to_json_string().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names_are_normalized_like_the_server() {
        assert_eq!(normalize_environment("Production"), "production");
        assert_eq!(normalize_environment("langfuse-test"), "test");
        assert_eq!(normalize_environment("my env"), "default");
    }
}

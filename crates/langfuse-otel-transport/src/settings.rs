//! The one settings model of langfuse-otel: every `LANGFUSE_*` and `OTEL_*` variable that the
//! exporter, the SDK or the bridge reads, each with one name, one default, one parser and one
//! validation rule. Builder values go through the same rules
//! ([`Variable::check_duration`], [`Variable::check_count`], [`Variable::check_fraction`]), so an
//! invalid value gives the same message wherever it comes from.
//!
//! | variable | rule | default |
//! |---|---|---|
//! | [`PUBLIC_KEY`], [`SECRET_KEY`] | text; both or neither | unset |
//! | [`BASE_URL`] (then [`HOST`]) | URL | `https://cloud.langfuse.com` |
//! | [`TIMEOUT`] | positive seconds | 5 |
//! | [`FLUSH_AT`] (then [`BSP_MAX_EXPORT_BATCH_SIZE`]) | positive count | 512 spans / 15 scores |
//! | [`FLUSH_INTERVAL`] (seconds, then [`BSP_SCHEDULE_DELAY`] in ms) | non-negative; 0 = send as soon as data arrives | 5 s spans / 1 s scores |
//! | [`BSP_MAX_QUEUE_SIZE`] | positive count | 1,048,576 spans |
//! | [`OFFLINE_PATH`] | path | `langfuse-traces.jsonl` |
//! | [`DEBUG`] | `true` (any case) turns debug lines on | false |
//! | [`OTLP_ENDPOINT`] | full traces URL of a generic OTLP collector the exporter sends to | unset |
//! | [`OTLP_PROTOCOL`] | `http/protobuf`, `http/json`, `grpc` | `http/protobuf` |
//! | [`OTLP_HEADERS`] | `key=value,key2=value2`, values percent-decoded | none |
//! | [`OTLP_COMPRESSION`] | `gzip`, `none` | `gzip` |
//! | [`OTLP_MODE`] | `passthrough`, `canonical` | `passthrough` |
//! | [`TRACING_ENVIRONMENT`], [`RELEASE`] | text | unset |
//! | [`SAMPLE_RATE`] | fraction in `[0, 1]` | 1.0 |
//! | [`TRACING_ENABLED`] | only `false` (any case) disables | true |
//! | [`IO_CAPTURE_ENABLED`] | `false` (any case) or `0` disables | true |
//!
//! The user's own `OTEL_EXPORTER_OTLP_*` variables are deliberately not read: they configure
//! the user's OTLP exporter, and reading them here would send every span a second time to the
//! same collector.
//!
//! ```
//! use std::time::Duration;
//! use langfuse_otel_transport::settings::{self, Env, Settings};
//!
//! let env = Env::from_pairs([("LANGFUSE_TIMEOUT", "2.5"), ("OTEL_BSP_SCHEDULE_DELAY", "0")]);
//! let s = Settings::read(&env).unwrap();
//! assert_eq!(s.timeout, Some(Duration::from_millis(2500)));
//! assert_eq!(s.flush_interval, Some(Duration::ZERO));
//!
//! let bad = Env::from_pairs([("LANGFUSE_TIMEOUT", "soon")]);
//! assert_eq!(
//!     Settings::read(&bad).unwrap_err().to_string(),
//!     "invalid value for LANGFUSE_TIMEOUT: \"soon\" (expected a positive number of seconds)"
//! );
//! // A builder value is checked by the same rule, with the same message.
//! assert_eq!(
//!     settings::TIMEOUT.check_duration(Duration::ZERO).unwrap_err().to_string(),
//!     "invalid value for LANGFUSE_TIMEOUT: 0s (expected a positive number of seconds)"
//! );
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Why a setting is unusable. The message never contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingError {
    /// A variable or builder value breaks its rule.
    #[error("invalid value for {name}: {value} (expected {expected})")]
    Invalid {
        /// The variable (builder values are reported under their variable's name).
        name: &'static str,
        /// The value as given, quoted (`***` for secrets).
        value: String,
        /// The rule, in words.
        expected: &'static str,
    },
    /// Only one of the two Langfuse keys is set.
    #[error("LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY must be set together")]
    PartialKeys,
}

/// A string that never shows in `Debug` output (keys, header values).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for building a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A source of variables: the process environment or a fixed map (`without_env()` uses an
/// empty one, tests a map).
#[derive(Debug, Clone, Default)]
pub struct Env {
    fixed: Option<HashMap<String, String>>,
}

impl Env {
    /// The process environment.
    pub fn process() -> Self {
        Env { fixed: None }
    }

    /// An empty environment (the process environment is ignored).
    pub fn empty() -> Self {
        Env {
            fixed: Some(HashMap::new()),
        }
    }

    /// A fixed environment made of these pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env {
            fixed: Some(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
        }
    }

    /// A fixed environment read through `lookup` for every known variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut map = HashMap::new();
        for v in ALL
            .iter()
            .map(|v| v.name)
            .chain(RELEASE_FALLBACKS.iter().copied())
        {
            if let Some(value) = lookup(v) {
                map.insert(v.to_string(), value);
            }
        }
        Env { fixed: Some(map) }
    }

    /// The trimmed, non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<String> {
        let raw = match &self.fixed {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name).ok(),
        }?;
        let trimmed = raw.trim();
        (!trimmed.is_empty()).then(|| trimmed.to_string())
    }
}

/// The validation rule of a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// Any text.
    Text,
    /// Any text, never shown in messages.
    Secret,
    /// A number of seconds greater than 0 (fractions allowed).
    PositiveSeconds,
    /// A number of seconds, 0 or more (fractions allowed).
    NonNegativeSeconds,
    /// Whole milliseconds, 0 or more.
    NonNegativeMillis,
    /// A whole number, 1 or more.
    PositiveCount,
    /// A number in `[0, 1]`.
    Fraction,
    /// `true` (any case) is true, anything else false.
    TrueFlag,
    /// `false` (any case) is false, anything else true.
    FalseFlag,
    /// `false` (any case) or `0` is false, anything else true.
    FalseOrZeroFlag,
    /// One of these words (any case).
    Choice(&'static [&'static str]),
    /// `key=value,key2=value2`.
    Headers,
}

impl Rule {
    /// The rule in words, as error messages show it.
    pub fn expected(&self) -> &'static str {
        match self {
            Rule::Text | Rule::Secret => "text",
            Rule::PositiveSeconds => "a positive number of seconds",
            Rule::NonNegativeSeconds => "a number of seconds, 0 or more",
            Rule::NonNegativeMillis => "whole milliseconds, 0 or more",
            Rule::PositiveCount => "a whole number, 1 or more",
            Rule::Fraction => "a number from 0 to 1",
            Rule::TrueFlag | Rule::FalseFlag | Rule::FalseOrZeroFlag => "true or false",
            Rule::Choice(c) => choice_text(c),
            Rule::Headers => "key=value pairs separated by commas",
        }
    }
}

fn choice_text(choices: &[&str]) -> &'static str {
    match choices {
        ["passthrough", "canonical"] => "passthrough or canonical",
        ["gzip", "none"] => "gzip or none",
        ["http/protobuf", "http/json", "grpc"] => "http/protobuf, http/json or grpc",
        _ => "one of the documented values",
    }
}

/// One variable: its name, its rule, and its default in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    /// The environment variable.
    pub name: &'static str,
    /// Its validation rule.
    pub rule: Rule,
    /// Its default, in words.
    pub default: &'static str,
}

macro_rules! variables {
    ($($(#[$doc:meta])* $ident:ident = $name:literal, $rule:expr, $default:literal;)*) => {
        $( $(#[$doc])* pub const $ident: Variable = Variable { name: $name, rule: $rule, default: $default }; )*
        /// Every variable, in the order of the module's table.
        pub const ALL: &[Variable] = &[$($ident),*];
    };
}

variables! {
    /// `LANGFUSE_PUBLIC_KEY`: the project's public key.
    PUBLIC_KEY = "LANGFUSE_PUBLIC_KEY", Rule::Text, "unset";
    /// `LANGFUSE_SECRET_KEY`: the project's secret key.
    SECRET_KEY = "LANGFUSE_SECRET_KEY", Rule::Secret, "unset";
    /// `LANGFUSE_BASE_URL`: the Langfuse base URL.
    BASE_URL = "LANGFUSE_BASE_URL", Rule::Text, "https://cloud.langfuse.com";
    /// `LANGFUSE_HOST`: the base URL when `LANGFUSE_BASE_URL` is unset.
    HOST = "LANGFUSE_HOST", Rule::Text, "unset";
    /// `LANGFUSE_TIMEOUT`: seconds one export (all attempts) may take.
    TIMEOUT = "LANGFUSE_TIMEOUT", Rule::PositiveSeconds, "5";
    /// `LANGFUSE_FLUSH_AT`: items per batch.
    FLUSH_AT = "LANGFUSE_FLUSH_AT", Rule::PositiveCount, "512 spans, 15 scores";
    /// `LANGFUSE_FLUSH_INTERVAL`: seconds between scheduled sends; 0 sends as data arrives.
    FLUSH_INTERVAL = "LANGFUSE_FLUSH_INTERVAL", Rule::NonNegativeSeconds, "5 (spans), 1 (scores)";
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`: spans per export when `LANGFUSE_FLUSH_AT` is unset.
    BSP_MAX_EXPORT_BATCH_SIZE = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", Rule::PositiveCount, "512";
    /// `OTEL_BSP_SCHEDULE_DELAY`: milliseconds between exports when `LANGFUSE_FLUSH_INTERVAL` is unset.
    BSP_SCHEDULE_DELAY = "OTEL_BSP_SCHEDULE_DELAY", Rule::NonNegativeMillis, "5000";
    /// `OTEL_BSP_MAX_QUEUE_SIZE`: span-count bound of the export queue.
    BSP_MAX_QUEUE_SIZE = "OTEL_BSP_MAX_QUEUE_SIZE", Rule::PositiveCount, "1048576";
    /// `LANGFUSE_OFFLINE_PATH`: the JSON-lines file of the offline destination.
    OFFLINE_PATH = "LANGFUSE_OFFLINE_PATH", Rule::Text, "langfuse-traces.jsonl";
    /// `LANGFUSE_DEBUG`: debug lines on standard error.
    DEBUG = "LANGFUSE_DEBUG", Rule::TrueFlag, "false";
    /// `LANGFUSE_OTLP_ENDPOINT`: full traces URL of a generic OTLP collector (the exporter's own setting).
    OTLP_ENDPOINT = "LANGFUSE_OTLP_ENDPOINT", Rule::Text, "unset";
    /// `LANGFUSE_OTLP_PROTOCOL`: encoding for that collector.
    OTLP_PROTOCOL = "LANGFUSE_OTLP_PROTOCOL", Rule::Choice(&["http/protobuf", "http/json", "grpc"]), "http/protobuf";
    /// `LANGFUSE_OTLP_HEADERS`: extra headers for that collector.
    OTLP_HEADERS = "LANGFUSE_OTLP_HEADERS", Rule::Headers, "none";
    /// `LANGFUSE_OTLP_COMPRESSION`: request compression of OTLP destinations.
    OTLP_COMPRESSION = "LANGFUSE_OTLP_COMPRESSION", Rule::Choice(&["gzip", "none"]), "gzip";
    /// `LANGFUSE_OTLP_MODE`: spans as they are, or canonical `langfuse.*` spans.
    OTLP_MODE = "LANGFUSE_OTLP_MODE", Rule::Choice(&["passthrough", "canonical"]), "passthrough";
    /// `LANGFUSE_TRACING_ENVIRONMENT`: environment of every observation.
    TRACING_ENVIRONMENT = "LANGFUSE_TRACING_ENVIRONMENT", Rule::Text, "unset";
    /// `LANGFUSE_RELEASE`: release of every observation (then CI commit variables).
    RELEASE = "LANGFUSE_RELEASE", Rule::Text, "unset";
    /// `LANGFUSE_SAMPLE_RATE`: fraction of traces kept.
    SAMPLE_RATE = "LANGFUSE_SAMPLE_RATE", Rule::Fraction, "1.0";
    /// `LANGFUSE_TRACING_ENABLED`: `false` disables tracing and scores.
    TRACING_ENABLED = "LANGFUSE_TRACING_ENABLED", Rule::FalseFlag, "true";
    /// `LANGFUSE_OBSERVE_DECORATOR_IO_CAPTURE_ENABLED`: whether `#[observe]` captures input and output.
    IO_CAPTURE_ENABLED = "LANGFUSE_OBSERVE_DECORATOR_IO_CAPTURE_ENABLED", Rule::FalseOrZeroFlag, "true";
}

/// CI variables read for the release when `LANGFUSE_RELEASE` is unset (the Python SDK's list).
pub const RELEASE_FALLBACKS: &[&str] = &[
    "RENDER_GIT_COMMIT",
    "CI_COMMIT_SHA",
    "CIRCLE_SHA1",
    "SOURCE_VERSION",
    "TRAVIS_COMMIT",
    "GIT_COMMIT",
    "GITHUB_SHA",
    "BITBUCKET_COMMIT",
    "BUILD_SOURCEVERSION",
    "DRONE_COMMIT_SHA",
];

impl Variable {
    fn invalid(&self, value: impl fmt::Display) -> SettingError {
        SettingError::Invalid {
            name: self.name,
            value: match self.rule {
                Rule::Secret | Rule::Headers => "***".into(),
                _ => value.to_string(),
            },
            expected: self.rule.expected(),
        }
    }

    fn invalid_text(&self, value: &str) -> SettingError {
        self.invalid(format!("{value:?}"))
    }

    /// The trimmed, non-empty text.
    pub fn text(&self, env: &Env) -> Option<String> {
        env.get(self.name)
    }

    /// A duration (seconds or milliseconds rules), validated.
    pub fn duration(&self, env: &Env) -> Result<Option<Duration>, SettingError> {
        let Some(v) = env.get(self.name) else {
            return Ok(None);
        };
        let parsed = match self.rule {
            Rule::PositiveSeconds | Rule::NonNegativeSeconds => v
                .parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok()),
            Rule::NonNegativeMillis => v.parse::<u64>().ok().map(Duration::from_millis),
            _ => None,
        };
        match parsed {
            Some(d) => self
                .check_duration(d)
                .map(Some)
                .map_err(|_| self.invalid_text(&v)),
            None => Err(self.invalid_text(&v)),
        }
    }

    /// Checks a duration (a builder value) against this variable's rule.
    pub fn check_duration(&self, d: Duration) -> Result<Duration, SettingError> {
        let shown = || match self.rule {
            Rule::NonNegativeMillis => format!("{}ms", d.as_millis()),
            _ => format!("{}s", d.as_secs_f64()),
        };
        match self.rule {
            Rule::PositiveSeconds if d.is_zero() => Err(self.invalid(shown())),
            Rule::PositiveSeconds | Rule::NonNegativeSeconds | Rule::NonNegativeMillis => Ok(d),
            _ => Err(self.invalid(shown())),
        }
    }

    /// A count, validated.
    pub fn count(&self, env: &Env) -> Result<Option<usize>, SettingError> {
        let Some(v) = env.get(self.name) else {
            return Ok(None);
        };
        match v.parse::<usize>() {
            Ok(n) => self
                .check_count(n)
                .map(Some)
                .map_err(|_| self.invalid_text(&v)),
            Err(_) => Err(self.invalid_text(&v)),
        }
    }

    /// Checks a count (a builder value) against this variable's rule.
    pub fn check_count(&self, n: usize) -> Result<usize, SettingError> {
        if self.rule == Rule::PositiveCount && n >= 1 {
            Ok(n)
        } else {
            Err(self.invalid(n))
        }
    }

    /// A fraction in `[0, 1]`, validated.
    pub fn fraction(&self, env: &Env) -> Result<Option<f64>, SettingError> {
        let Some(v) = env.get(self.name) else {
            return Ok(None);
        };
        match v.parse::<f64>() {
            Ok(x) => self
                .check_fraction(x)
                .map(Some)
                .map_err(|_| self.invalid_text(&v)),
            Err(_) => Err(self.invalid_text(&v)),
        }
    }

    /// Checks a fraction (a builder value) against this variable's rule.
    pub fn check_fraction(&self, x: f64) -> Result<f64, SettingError> {
        if self.rule == Rule::Fraction && (0.0..=1.0).contains(&x) {
            Ok(x)
        } else {
            Err(self.invalid(x))
        }
    }

    /// A flag: `None` when unset.
    pub fn flag(&self, env: &Env) -> Option<bool> {
        let v = env.get(self.name)?;
        Some(match self.rule {
            Rule::TrueFlag => v.eq_ignore_ascii_case("true"),
            Rule::FalseOrZeroFlag => !(v.eq_ignore_ascii_case("false") || v == "0"),
            _ => !v.eq_ignore_ascii_case("false"),
        })
    }

    /// One of the rule's choices, lower-case.
    pub fn choice(&self, env: &Env) -> Result<Option<&'static str>, SettingError> {
        let Some(v) = env.get(self.name) else {
            return Ok(None);
        };
        self.check_choice(&v).map(Some)
    }

    /// Checks a word (a builder value) against this variable's choices.
    pub fn check_choice(&self, value: &str) -> Result<&'static str, SettingError> {
        let Rule::Choice(choices) = self.rule else {
            return Err(self.invalid_text(value));
        };
        choices
            .iter()
            .find(|c| c.eq_ignore_ascii_case(value.trim()))
            .copied()
            .ok_or_else(|| self.invalid_text(value))
    }

    /// `key=value,key2=value2` pairs (values percent-decoded, kept secret).
    pub fn headers(&self, env: &Env) -> Result<Vec<(String, Secret)>, SettingError> {
        let Some(v) = env.get(self.name) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, val) = item.split_once('=').ok_or_else(|| self.invalid(""))?;
            let key = k.trim();
            if key.is_empty() {
                return Err(self.invalid(""));
            }
            out.push((key.to_string(), Secret::new(percent_decode(val.trim()))));
        }
        Ok(out)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hi = (bytes[i + 1] as char).to_digit(16);
            let lo = (bytes[i + 2] as char).to_digit(16);
            if let (Some(h), Some(l)) = (hi, lo) {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every setting read from one [`Env`], validated, not yet defaulted (`None` = unset), so a
/// builder can lay its own values over them.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Settings {
    /// `LANGFUSE_PUBLIC_KEY` and `LANGFUSE_SECRET_KEY`, when both are set.
    pub keys: Option<(String, Secret)>,
    /// `LANGFUSE_BASE_URL`, then `LANGFUSE_HOST`, without a trailing slash.
    pub base_url: Option<String>,
    /// `LANGFUSE_TIMEOUT`.
    pub timeout: Option<Duration>,
    /// `LANGFUSE_FLUSH_AT`, then `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`.
    pub flush_at: Option<usize>,
    /// `LANGFUSE_FLUSH_INTERVAL`, then `OTEL_BSP_SCHEDULE_DELAY`.
    pub flush_interval: Option<Duration>,
    /// `OTEL_BSP_MAX_QUEUE_SIZE`.
    pub max_queue_size: Option<usize>,
    /// `LANGFUSE_OFFLINE_PATH`.
    pub offline_path: Option<PathBuf>,
    /// `LANGFUSE_DEBUG`.
    pub debug: bool,
    /// `LANGFUSE_OTLP_ENDPOINT`.
    pub otlp_endpoint: Option<String>,
    /// `LANGFUSE_OTLP_PROTOCOL` (`http/protobuf`, `http/json` or `grpc`).
    pub otlp_protocol: Option<&'static str>,
    /// `LANGFUSE_OTLP_HEADERS`.
    pub otlp_headers: Vec<(String, Secret)>,
    /// `LANGFUSE_OTLP_COMPRESSION` (`gzip` or `none`).
    pub otlp_compression: Option<&'static str>,
    /// `LANGFUSE_OTLP_MODE` (`passthrough` or `canonical`).
    pub otlp_mode: Option<&'static str>,
    /// `LANGFUSE_TRACING_ENVIRONMENT`.
    pub environment: Option<String>,
    /// `LANGFUSE_RELEASE`, then the CI commit variables.
    pub release: Option<String>,
    /// `LANGFUSE_SAMPLE_RATE`.
    pub sample_rate: Option<f64>,
    /// `LANGFUSE_TRACING_ENABLED` (default true).
    pub tracing_enabled: bool,
    /// `LANGFUSE_OBSERVE_DECORATOR_IO_CAPTURE_ENABLED` (default true).
    pub io_capture_enabled: bool,
}

impl Settings {
    /// Nothing set: what `without_env()` starts from.
    pub fn unset() -> Self {
        Settings {
            tracing_enabled: true,
            io_capture_enabled: true,
            ..Settings::default()
        }
    }

    /// Reads and validates every variable; the first invalid one is the error.
    pub fn read(env: &Env) -> Result<Self, SettingError> {
        let keys = match (PUBLIC_KEY.text(env), SECRET_KEY.text(env)) {
            (Some(pk), Some(sk)) => Some((pk, Secret::new(sk))),
            (None, None) => None,
            _ => return Err(SettingError::PartialKeys),
        };
        let flush_at = match FLUSH_AT.count(env)? {
            Some(n) => Some(n),
            None => BSP_MAX_EXPORT_BATCH_SIZE.count(env)?,
        };
        let flush_interval = match FLUSH_INTERVAL.duration(env)? {
            Some(d) => Some(d),
            None => BSP_SCHEDULE_DELAY.duration(env)?,
        };
        Ok(Settings {
            keys,
            base_url: BASE_URL
                .text(env)
                .or_else(|| HOST.text(env))
                .map(|u| u.trim_end_matches('/').to_string()),
            timeout: TIMEOUT.duration(env)?,
            flush_at,
            flush_interval,
            max_queue_size: BSP_MAX_QUEUE_SIZE.count(env)?,
            offline_path: OFFLINE_PATH.text(env).map(PathBuf::from),
            debug: DEBUG.flag(env).unwrap_or(false),
            otlp_endpoint: OTLP_ENDPOINT.text(env),
            otlp_protocol: OTLP_PROTOCOL.choice(env)?,
            otlp_headers: OTLP_HEADERS.headers(env)?,
            otlp_compression: OTLP_COMPRESSION.choice(env)?,
            otlp_mode: OTLP_MODE.choice(env)?,
            environment: TRACING_ENVIRONMENT.text(env),
            release: RELEASE
                .text(env)
                .or_else(|| RELEASE_FALLBACKS.iter().find_map(|k| env.get(k))),
            sample_rate: SAMPLE_RATE.fraction(env)?,
            tracing_enabled: TRACING_ENABLED.flag(env).unwrap_or(true),
            io_capture_enabled: IO_CAPTURE_ENABLED.flag(env).unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn an_invalid_timeout_is_an_error_naming_the_variable_and_the_rule() {
        for bad in ["x", "0", "-1", "NaN", "inf"] {
            let e = Settings::read(&env(&[("LANGFUSE_TIMEOUT", bad)])).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "invalid value for LANGFUSE_TIMEOUT: {bad:?} (expected a positive number of seconds)"
                )
            );
        }
    }

    #[test]
    fn flush_interval_zero_is_allowed_and_falls_back_to_bsp_milliseconds() {
        let s = Settings::read(&env(&[("LANGFUSE_FLUSH_INTERVAL", "0")])).unwrap();
        assert_eq!(s.flush_interval, Some(Duration::ZERO));
        let s = Settings::read(&env(&[("OTEL_BSP_SCHEDULE_DELAY", "250")])).unwrap();
        assert_eq!(s.flush_interval, Some(Duration::from_millis(250)));
    }

    #[test]
    fn langfuse_variables_win_over_bsp_ones() {
        let s = Settings::read(&env(&[
            ("LANGFUSE_FLUSH_AT", "100"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "7"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "1000"),
        ]))
        .unwrap();
        assert_eq!((s.flush_at, s.max_queue_size), (Some(100), Some(1000)));
        assert!(Settings::read(&env(&[("LANGFUSE_FLUSH_AT", "0")])).is_err());
    }

    #[test]
    fn one_key_alone_is_an_error() {
        assert_eq!(
            Settings::read(&env(&[("LANGFUSE_PUBLIC_KEY", "pk")])),
            Err(SettingError::PartialKeys)
        );
    }

    #[test]
    fn secret_values_never_appear_in_messages() {
        let e = OTLP_HEADERS
            .headers(&env(&[("LANGFUSE_OTLP_HEADERS", "token-without-equals")]))
            .unwrap_err();
        assert!(!e.to_string().contains("token"), "{e}");
        let s = Settings::read(&env(&[
            ("LANGFUSE_PUBLIC_KEY", "pk"),
            ("LANGFUSE_SECRET_KEY", "sk-very-secret"),
        ]))
        .unwrap();
        assert!(!format!("{s:?}").contains("very-secret"));
    }

    #[test]
    fn user_otel_exporter_variables_are_not_read() {
        let s = Settings::read(&env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://collector:4318/v1/traces",
            ),
        ]))
        .unwrap();
        assert_eq!(s.otlp_endpoint, None);
    }

    #[test]
    fn flags_follow_the_python_sdk() {
        let s = Settings::read(&env(&[
            ("LANGFUSE_DEBUG", "TRUE"),
            ("LANGFUSE_TRACING_ENABLED", "0"),
            ("LANGFUSE_OBSERVE_DECORATOR_IO_CAPTURE_ENABLED", "0"),
        ]))
        .unwrap();
        assert!(s.debug && s.tracing_enabled && !s.io_capture_enabled);
        let off = Settings::read(&env(&[("LANGFUSE_TRACING_ENABLED", "False")])).unwrap();
        assert!(!off.tracing_enabled);
        assert!(
            !Settings::read(&env(&[("LANGFUSE_DEBUG", "1")]))
                .unwrap()
                .debug
        );
    }

    #[test]
    fn headers_are_percent_decoded() {
        let h = OTLP_HEADERS
            .headers(&env(&[("LANGFUSE_OTLP_HEADERS", "a=1, b=x%20y")]))
            .unwrap();
        assert_eq!((h[1].0.as_str(), h[1].1.expose()), ("b", "x y"));
    }

    #[test]
    fn base_url_falls_back_to_host_without_trailing_slash() {
        let s = Settings::read(&env(&[("LANGFUSE_HOST", "http://h:3000/")])).unwrap();
        assert_eq!(s.base_url.as_deref(), Some("http://h:3000"));
    }
}

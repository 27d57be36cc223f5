//! Logging of `serve` and `ui`: the log filter (`--log-level`, `RUST_LOG`) and the subscriber
//! that writes to standard error.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;

use crate::serve::config::{ConfigError, LogFormat};

/// Parses a log filter: comma-separated directives, each a level (`trace`, `debug`, `info`,
/// `warn`, `error`, `off`: the default for every target) or `target=level` (a module path
/// prefix such as `langfuse_bridge::serve`), as in `RUST_LOG`.
pub fn log_filter(spec: &str) -> Result<Targets, ConfigError> {
    let bad = |directive: &str| {
        ConfigError::Invalid(format!(
            "log level '{spec}': '{directive}' is not a level (trace, debug, info, warn, error, \
             off) or a target=level directive"
        ))
    };
    let mut targets = Targets::new();
    let mut directives = 0;
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        directives += 1;
        match directive.split_once('=') {
            Some((target, level)) if !target.trim().is_empty() => {
                let level = level
                    .trim()
                    .parse::<LevelFilter>()
                    .map_err(|_| bad(directive))?;
                targets = targets.with_target(target.trim(), level);
            }
            Some(_) => return Err(bad(directive)),
            None => {
                let level = directive
                    .parse::<LevelFilter>()
                    .map_err(|_| bad(directive))?;
                targets = targets.with_default(level);
            }
        }
    }
    if directives == 0 {
        return Err(ConfigError::Invalid("the log level is empty".into()));
    }
    Ok(targets)
}

/// Logs to stderr in `format` through `filter` (once per process; later calls do nothing).
pub(crate) fn init_logging(format: LogFormat, filter: Targets) {
    // `Targets` decides; the formatter passes everything it is given.
    let builder = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => tracing::subscriber::set_global_default(builder.finish().with(filter)),
        LogFormat::Json => {
            tracing::subscriber::set_global_default(builder.json().finish().with(filter))
        }
    };
}

/// The examples of this module's docs, as tests (the module is internal to the crate).
#[cfg(test)]
mod doc_examples {
    #[test]
    fn log_filter_accepts_directives_and_refuses_garbage() {
        use crate::logging::log_filter;

        assert!(log_filter("debug").is_ok());
        assert!(log_filter("langfuse_bridge=debug,tower=warn").is_ok());
        assert!(log_filter("bogus").is_err());
    }
}

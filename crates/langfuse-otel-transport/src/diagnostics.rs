//! [`Diagnostics`]: where warnings and debug lines go. A leaf module: it depends on nothing else
//! in the workspace, and every part (transports, exporter, processor, SDK, bridge) reports
//! through it.
//!
//! Warnings have a stable kind name (`queue-full`, `spans-dropped`, `scores-dropped`, …) and are
//! delivered once per kind, so a recurring failure is reported once instead of flooding standard
//! error; repeats are counted in the caller's statistics. They are visible without a `tracing`
//! subscriber: the default sink writes `langfuse-otel: <message>` to standard error.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// Where warnings and debug lines go.
///
/// Warnings go to a function receiving one line of text; the default writes
/// `langfuse-otel: <message>` to standard error. Debug lines are off by default and cost one
/// branch when off: they are only formatted when [`with_debug`](Self::with_debug) turned them on
/// (as `LANGFUSE_DEBUG=true` does). They go to standard error as `langfuse: debug: <message>`,
/// or to the sink given with [`with_debug_sink`](Self::with_debug_sink). Neither kind of message
/// ever contains keys or header values.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use langfuse_otel_transport::Diagnostics;
///
/// let lines = Arc::new(Mutex::new(Vec::<String>::new()));
/// let sink = lines.clone();
/// let diagnostics = Diagnostics::default()
///     .with_debug_sink(move |line| sink.lock().unwrap().push(line.to_owned()))
///     .with_debug(true);
/// diagnostics.debug(|| format!("flushed {} spans", 3));
/// assert_eq!(*lines.lock().unwrap(), ["flushed 3 spans"]);
///
/// let quiet = Diagnostics::default(); // debug off: the closure is never called
/// quiet.debug(|| unreachable!());
/// ```
#[derive(Clone)]
pub struct Diagnostics {
    sink: Sink,
    debug_sink: Sink,
    debug: bool,
    seen: Arc<Mutex<HashSet<String>>>,
}

impl Default for Diagnostics {
    fn default() -> Self {
        Diagnostics::new(|msg| eprintln!("langfuse-otel: {msg}"))
    }
}

impl fmt::Debug for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Diagnostics")
            .field("debug", &self.debug)
            .finish_non_exhaustive()
    }
}

impl Diagnostics {
    /// Warnings delivered to `sink`; debug lines off (to standard error once turned on).
    pub fn new(sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Diagnostics {
            sink: Arc::new(sink),
            debug_sink: Arc::new(|msg| eprintln!("langfuse: debug: {msg}")),
            debug: false,
            seen: Arc::default(),
        }
    }

    /// Turns debug lines on or off.
    pub fn with_debug(mut self, debug: bool) -> Self {
        self.debug = debug;
        self
    }

    /// Sends debug lines to `sink` (one call per line, without the `langfuse: debug: ` prefix)
    /// instead of standard error. Does not turn them on.
    pub fn with_debug_sink(mut self, sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.debug_sink = Arc::new(sink);
        self
    }

    /// Whether debug lines are on.
    pub fn is_debug(&self) -> bool {
        self.debug
    }

    /// Emits the debug line `message()` when debug lines are on; otherwise `message` is not
    /// called, so nothing is formatted.
    #[inline]
    pub fn debug(&self, message: impl FnOnce() -> String) {
        if self.debug {
            (self.debug_sink)(&message());
        }
    }

    /// Delivers the warning `message` the first time a warning of kind `kind` is reported.
    /// Returns whether it was delivered.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use langfuse_otel_transport::Diagnostics;
    /// let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    /// let sink = lines.clone();
    /// let diagnostics = Diagnostics::new(move |m| sink.lock().unwrap().push(m.to_owned()));
    /// diagnostics.warn_once("scores-dropped", "dropping 3 scores: HTTP 500");
    /// diagnostics.warn_once("scores-dropped", "dropping 1 score: HTTP 500");
    /// assert_eq!(*lines.lock().unwrap(), ["dropping 3 scores: HTTP 500"]);
    /// ```
    pub fn warn_once(&self, kind: &str, message: &str) -> bool {
        // Bounded: past MAX_DISTINCT kinds, new kinds are counted by the caller only.
        const MAX_DISTINCT: usize = 256;
        let first = self
            .seen
            .lock()
            .map(|mut s| s.len() < MAX_DISTINCT && s.insert(kind.to_string()))
            .unwrap_or(true);
        if first {
            (self.sink)(message);
        }
        first
    }
}

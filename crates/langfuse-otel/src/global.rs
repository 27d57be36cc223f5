//! The process-wide client of `#[observe]`: [`Langfuse::set_global`],
//! [`Langfuse::init_global`] with its [`GlobalGuard`], and [`Langfuse::global`], which builds
//! the client from the environment on first use when none was installed.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::client::Langfuse;
use crate::warning::{error_chain, warn_visible};

static GLOBAL: RwLock<Option<Langfuse>> = RwLock::new(None);

/// Deadline of the flush and shutdown a [`GlobalGuard`] runs when dropped.
pub const GLOBAL_GUARD_TIMEOUT: Duration = Duration::from_secs(10);

/// Keeps a client installed as the global one (used by `#[observe]`); when dropped, flushes
/// and shuts that client down within a deadline, then uninstalls it.
///
/// Rust runs no destructor for statics at exit (there is no `atexit` like the Python SDK
/// registers), so spans still queued in the global client when `main` returns would be lost.
/// Keep the guard alive in `main`: it is dropped when `main` returns (also on `?` and on
/// unwinding panics), which delivers everything recorded. Without a guard, only the background
/// interval (`LANGFUSE_FLUSH_INTERVAL`, 5 s for spans, 1 s for scores) or an explicit
/// [`Langfuse::flush`] sends them. `std::process::exit` skips destructors: flush before it.
///
/// ```
/// use langfuse_otel::{Langfuse, observe};
///
/// #[observe]
/// fn rerank(ids: Vec<u32>) -> Vec<u32> {
///     ids.into_iter().rev().collect()
/// }
///
/// fn main() {
///     let _guard = Langfuse::from_env().init_global(); // keys from LANGFUSE_*
///     assert_eq!(rerank(vec![1, 2]), vec![2, 1]);
/// } // `_guard` dropped: spans flushed, client shut down
/// ```
#[must_use = "dropping the guard at once shuts the global client down: bind it with `let _guard = …`"]
#[derive(Debug)]
pub struct GlobalGuard {
    client: Langfuse,
    timeout: Duration,
}

impl GlobalGuard {
    /// The deadline of the final flush and shutdown (default [`GLOBAL_GUARD_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The guarded client (also returned by [`Langfuse::global`] while the guard lives).
    pub fn client(&self) -> &Langfuse {
        &self.client
    }
}

impl Drop for GlobalGuard {
    fn drop(&mut self) {
        let result = self.client.shutdown_with_timeout(self.timeout);
        if let Err(e) = result {
            warn_visible(&format!(
                "shutting the global Langfuse client down: {}",
                error_chain(&e)
            ));
        }
        let mut global = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
        if global
            .as_ref()
            .is_some_and(|g| Arc::ptr_eq(&g.inner, &self.client.inner))
        {
            *global = None;
        }
    }
}

impl Langfuse {
    /// Makes this client the process-wide one, used by `#[observe]` (like the Python SDK's
    /// `get_client()` singleton). Nothing flushes it at exit: prefer
    /// [`init_global`](Self::init_global), or call [`flush`](Self::flush) before returning
    /// from `main`.
    ///
    /// ```
    /// let langfuse = langfuse_otel::Langfuse::disabled();
    /// langfuse.set_global();
    /// assert!(!langfuse_otel::Langfuse::global().is_enabled());
    /// ```
    pub fn set_global(&self) {
        *GLOBAL.write().unwrap_or_else(|e| e.into_inner()) = Some(self.clone());
    }

    /// Makes this client the process-wide one (like [`set_global`](Self::set_global)) and
    /// returns a [`GlobalGuard`] that flushes and shuts it down when dropped, with a deadline
    /// ([`GLOBAL_GUARD_TIMEOUT`]): the Rust form of the Python SDK's `atexit` flush.
    ///
    /// ```
    /// use langfuse_otel::Langfuse;
    /// let guard = Langfuse::disabled().init_global();
    /// assert!(!Langfuse::global().is_enabled());
    /// drop(guard);
    /// ```
    pub fn init_global(&self) -> GlobalGuard {
        self.set_global();
        GlobalGuard {
            client: self.clone(),
            timeout: GLOBAL_GUARD_TIMEOUT,
        }
    }

    /// The process-wide client set with [`set_global`](Self::set_global) or
    /// [`init_global`](Self::init_global). When none was set, the first call builds one from
    /// the environment ([`from_env`](Self::from_env)) and installs it, as the Python SDK's
    /// `get_client()` does: `#[observe]` in a program that never called `init_global` records
    /// with the `LANGFUSE_*` settings (without keys: a disabled client and one warning). Such a
    /// client is flushed by its background interval only; keep a [`GlobalGuard`] to deliver
    /// everything at exit.
    pub fn global() -> Langfuse {
        Self::global_or_from_env()
    }

    /// Whether a process-wide client is installed (set, or built by an earlier
    /// [`global`](Self::global) call).
    pub(crate) fn has_global() -> bool {
        GLOBAL.read().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    fn global_or_from_env() -> Langfuse {
        if let Some(client) = GLOBAL.read().unwrap_or_else(|e| e.into_inner()).clone() {
            return client;
        }
        let mut global = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
        global.get_or_insert_with(Langfuse::from_env).clone()
    }
}

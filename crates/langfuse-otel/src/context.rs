//! Carrying the current observation (and propagated attributes) into spawned tasks, blocking
//! tasks and threads.

use std::future::Future;

use opentelemetry::Context;
use opentelemetry::trace::{FutureExt as _, WithContext};

/// Wraps `future` so it runs in the current context wherever it is polled:
/// `tokio::spawn(in_current_context(fut))` keeps children under the current observation.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = tokio::spawn(langfuse_otel::in_current_context(async { 1 }));
/// assert_eq!(handle.await.unwrap(), 1);
/// # }
/// ```
pub fn in_current_context<F: Future>(future: F) -> WithContext<F> {
    future.with_context(Context::current())
}

/// Wraps a closure so it runs in the current context on whatever thread calls it:
/// `std::thread::spawn(with_current_context(|| ..))` or
/// `tokio::task::spawn_blocking(with_current_context(|| ..))`.
///
/// ```
/// let id = std::thread::spawn(langfuse_otel::with_current_context(|| {
///     langfuse_otel::Langfuse::current_trace_id()
/// }))
/// .join()
/// .unwrap();
/// assert_eq!(id, None); // no observation was current here
/// ```
pub fn with_current_context<F, R>(body: F) -> impl FnOnce() -> R + Send
where
    F: FnOnce() -> R + Send,
{
    let cx = Context::current();
    move || {
        let _guard = cx.attach();
        body()
    }
}

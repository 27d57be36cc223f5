//! Warnings the user must see.

/// Through `tracing` when a subscriber is installed, otherwise on standard error (like the
/// Python SDK's logger, which prints warnings by default).
pub(crate) fn warn_visible(message: &str) {
    if tracing::dispatcher::has_been_set() {
        tracing::warn!(target: "langfuse", "{message}");
    } else {
        eprintln!("langfuse: warning: {message}");
    }
}

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

/// An error and its causes as one line: `outer: cause: root cause`.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

//! [`BridgeError`]: what any command of the bridge can fail with.

use std::path::PathBuf;

use crate::sources::body::BodyError;

/// A failure of a bridge command. Its `Display` is one line meant for a person; it never
/// contains a credential.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// A file could not be read.
    #[error("cannot read '{}': {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Standard input could not be read.
    #[error("cannot read standard input: {0}")]
    ReadStdin(#[source] std::io::Error),
    /// The input is too large, not valid gzip, or otherwise unreadable as a body.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The input is not an OTLP trace export.
    #[error("{0}")]
    Decode(#[from] langfuse_otel_core::otlp::DecodeError),
    /// `serve` could not start or failed.
    #[error(transparent)]
    Serve(#[from] crate::serve::ServeError),
    /// `import` failed.
    #[error(transparent)]
    Import(#[from] crate::commands::import::ImportCmdError),
    /// `traces list` / `traces show` failed.
    #[error(transparent)]
    Traces(#[from] crate::commands::traces::TracesCmdError),
    /// `ui` failed.
    #[error(transparent)]
    Ui(#[from] crate::commands::ui::UiError),
    /// The output could not be serialized or written.
    #[error("cannot write the output: {0}")]
    Output(String),
    /// The spool could not be read (`spool verify`).
    #[error(transparent)]
    Spool(#[from] langfuse_spool::SpoolError),
    /// `dead-letter list|replay` failed.
    #[error(transparent)]
    DeadLetter(#[from] crate::commands::dead_letter::DeadLetterCmdError),
    /// `dead-letter replay` sent everything it could, and some entries were refused again
    /// (its report lists them; they stay in the files).
    #[error("{entries} dead-letter entries were refused again (see the report above)")]
    DeadLettersRefused {
        /// Entries refused again.
        entries: usize,
    },
    /// `consume` could not start or failed.
    #[cfg(feature = "kafka")]
    #[error(transparent)]
    Consume(#[from] crate::commands::consume::ConsumeError),
    /// `consume` in a binary built without the `kafka` feature.
    #[error("this langfuse-bridge was built without the `kafka` feature")]
    KafkaNotBuilt,
    /// `spool verify` found damage (its report says where).
    #[error("the spool is damaged: {lost_records} records lost (see the report above)")]
    SpoolDamaged {
        /// Records lost that not every destination had committed.
        lost_records: u64,
    },
}

impl BridgeError {
    /// The binary's exit status for this error: 1 for [`BridgeError::SpoolDamaged`] (the
    /// command worked and found damage), 2 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            BridgeError::SpoolDamaged { .. } | BridgeError::DeadLettersRefused { .. } => 1,
            _ => 2,
        }
    }
}

/// An error and its causes as one line, `outer: cause: root cause` (what the binary prints).
///
/// ```
/// let io = std::io::Error::other("disk on fire");
/// let e = langfuse_spool::SpoolError::Io {
///     what: "cannot write a segment",
///     source: std::sync::Arc::new(io),
/// };
/// assert_eq!(
///     langfuse_bridge::error::chain(&e),
///     "spool I/O error: cannot write a segment: disk on fire"
/// );
/// ```
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // `#[error(transparent)]` wrappers repeat their inner message.
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

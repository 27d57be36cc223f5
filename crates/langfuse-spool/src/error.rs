//! What can go wrong.

/// Why the spool could not do something. Messages name files by role, never their content;
/// the operating system's error is the [`source`](std::error::Error::source).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// No room: the size limit or a full disk. The client should retry later.
    #[error("the spool is full ({used} of {limit} bytes used, {needed} more needed)")]
    Full {
        /// Bytes the append needed.
        needed: u64,
        /// Bytes in use.
        used: u64,
        /// The configured limit.
        limit: u64,
    },
    /// The disk is full.
    #[error("the spool's disk is full: {what}")]
    DiskFull {
        /// What the spool was doing.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },
    /// Any other I/O failure.
    #[error("spool I/O error: {what}")]
    Io {
        /// What the spool was doing.
        what: &'static str,
        /// The operating system's error.
        #[source]
        source: std::sync::Arc<std::io::Error>,
    },
    /// A record could not be encoded.
    #[error("cannot encode a spool record")]
    Encode(#[source] prost::EncodeError),
    /// The directory is not a spool, or its files contradict each other.
    #[error("invalid spool: {0}")]
    Invalid(&'static str),
    /// A destination name that is not `[A-Za-z0-9_-]{1,64}` or was not opened.
    #[error("invalid spool destination '{0}'")]
    InvalidDestination(String),
    /// The spool's writer stopped.
    #[error("the spool is closed")]
    Closed,
}

/// Equal when the same thing failed the same way (I/O errors compare by their kind).
impl PartialEq for SpoolError {
    fn eq(&self, other: &Self) -> bool {
        use SpoolError::*;
        match (self, other) {
            (
                Full {
                    needed: a,
                    used: b,
                    limit: c,
                },
                Full {
                    needed: x,
                    used: y,
                    limit: z,
                },
            ) => (a, b, c) == (x, y, z),
            (DiskFull { what: a, source: s }, DiskFull { what: b, source: t })
            | (Io { what: a, source: s }, Io { what: b, source: t }) => {
                a == b && s.kind() == t.kind()
            }
            (Encode(a), Encode(b)) => a == b,
            (Invalid(a), Invalid(b)) => a == b,
            (InvalidDestination(a), InvalidDestination(b)) => a == b,
            (Closed, Closed) => true,
            _ => false,
        }
    }
}

impl Eq for SpoolError {}

impl SpoolError {
    pub(crate) fn from_io(what: &'static str, e: std::io::Error) -> SpoolError {
        let source = std::sync::Arc::new(e);
        if source.kind() == std::io::ErrorKind::StorageFull || source.raw_os_error() == Some(28) {
            SpoolError::DiskFull { what, source }
        } else {
            SpoolError::Io { what, source }
        }
    }

    /// Whether the client should be told to retry later (HTTP 429 / gRPC `RESOURCE_EXHAUSTED`).
    pub fn is_full(&self) -> bool {
        matches!(self, SpoolError::Full { .. } | SpoolError::DiskFull { .. })
    }
}

//! Reading bodies (HTTP requests, files, standard input) with size limits.
//!
//! Every body is read through a limit, and gzip is inflated through a second limit on the
//! *decompressed* size: a 10 MB gzip bomb that expands to 10 GB stops with
//! [`BodyError::DecodedTooLarge`] once `max_decoded_bytes + 1` bytes came out, so memory stays
//! bounded by the limit whatever the input claims.

use std::io::Read;

/// The gzip magic bytes, used by [`Encoding::Detect`].
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Size limits of one body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// The largest body accepted as received (compressed or not).
    pub max_body_bytes: usize,
    /// The largest body accepted after decompression.
    pub max_decoded_bytes: usize,
}

impl BodyLimits {
    /// The default limit of a received body: 16 MiB (Langfuse's own request limit).
    pub const DEFAULT_MAX_BODY_BYTES: usize = 16 << 20;
    /// The default limit of a decompressed body: 64 MiB.
    pub const DEFAULT_MAX_DECODED_BYTES: usize = 64 << 20;

    /// The same limit for the body as received and after decompression.
    pub fn uniform(max_bytes: usize) -> Self {
        BodyLimits {
            max_body_bytes: max_bytes,
            max_decoded_bytes: max_bytes,
        }
    }
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            max_decoded_bytes: Self::DEFAULT_MAX_DECODED_BYTES,
        }
    }
}

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoding {
    /// As is.
    Identity,
    /// gzip (one member or several concatenated).
    Gzip,
    /// gzip when the body starts with the gzip magic bytes, else as is (files and standard
    /// input, which carry no `Content-Encoding`; neither protobuf nor JSON can start so).
    Detect,
}

impl Encoding {
    /// Reads a `Content-Encoding` header value (`None`: the header is absent).
    ///
    /// # Errors
    /// [`BodyError::UnsupportedEncoding`] for anything but `gzip`, `x-gzip` and `identity`.
    pub fn from_header(value: Option<&str>) -> Result<Self, BodyError> {
        let Some(value) = value.map(str::trim) else {
            return Ok(Encoding::Identity);
        };
        if value.is_empty() || value.eq_ignore_ascii_case("identity") {
            Ok(Encoding::Identity)
        } else if value.eq_ignore_ascii_case("gzip") || value.eq_ignore_ascii_case("x-gzip") {
            Ok(Encoding::Gzip)
        } else {
            // Only the token, clipped: the header is the client's text.
            let shown: String = value.chars().take(40).collect();
            Err(BodyError::UnsupportedEncoding(shown))
        }
    }
}

/// Why a body was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body as received is larger than [`BodyLimits::max_body_bytes`].
    #[error("the body is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The decompressed body is larger than [`BodyLimits::max_decoded_bytes`].
    #[error("the decompressed body is larger than the limit of {limit} bytes")]
    DecodedTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not valid gzip.
    #[error("cannot decompress the gzip body: {0}")]
    Gzip(#[source] std::io::Error),
    /// A `Content-Encoding` other than gzip or identity.
    #[error("unsupported content encoding '{0}' (gzip or identity)")]
    UnsupportedEncoding(String),
    /// Reading the body failed.
    #[error("cannot read the body: {0}")]
    Read(#[source] std::io::Error),
}

impl BodyError {
    /// The HTTP status a receiver answers with: 413 for the limits, 415 for an unsupported
    /// encoding, 400 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            BodyError::TooLarge { .. } | BodyError::DecodedTooLarge { .. } => 413,
            BodyError::UnsupportedEncoding(_) => 415,
            BodyError::Gzip(_) | BodyError::Read(_) => 400,
        }
    }
}

/// Reads at most `limit` bytes from `reader`.
///
/// # Errors
/// [`BodyError::TooLarge`] as soon as more than `limit` bytes are available (at most
/// `limit + 1` bytes are ever held), [`BodyError::Read`] when reading fails.
pub fn read_bounded(reader: impl Read, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    reader
        .take(limit_plus_one(limit))
        .read_to_end(&mut out)
        .map_err(BodyError::Read)?;
    if out.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(out)
}

/// Inflates gzip (one or several members) into at most `limit` bytes.
///
/// # Errors
/// [`BodyError::DecodedTooLarge`] as soon as more than `limit` bytes came out (inflation stops
/// there), [`BodyError::Gzip`] for invalid gzip.
pub fn gunzip_bounded(compressed: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    // Typical OTLP compresses 4-10x; never reserve beyond the limit.
    let mut out = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    flate2::read::MultiGzDecoder::new(compressed)
        .take(limit_plus_one(limit))
        .read_to_end(&mut out)
        .map_err(BodyError::Gzip)?;
    if out.len() > limit {
        return Err(BodyError::DecodedTooLarge { limit });
    }
    Ok(out)
}

/// Checks a received body against the limits and decompresses it as `encoding` says.
///
/// # Errors
/// See [`BodyError`].
pub fn decode_body(
    raw: Vec<u8>,
    encoding: Encoding,
    limits: &BodyLimits,
) -> Result<Vec<u8>, BodyError> {
    if raw.len() > limits.max_body_bytes {
        return Err(BodyError::TooLarge {
            limit: limits.max_body_bytes,
        });
    }
    let gzip = match encoding {
        Encoding::Identity => false,
        Encoding::Gzip => true,
        Encoding::Detect => raw.starts_with(&GZIP_MAGIC),
    };
    if gzip {
        gunzip_bounded(&raw, limits.max_decoded_bytes)
    } else if raw.len() > limits.max_decoded_bytes {
        Err(BodyError::DecodedTooLarge {
            limit: limits.max_decoded_bytes,
        })
    } else {
        Ok(raw)
    }
}

fn limit_plus_one(limit: usize) -> u64 {
    u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn a_body_at_the_limit_is_accepted_and_one_byte_more_is_not() {
        assert_eq!(read_bounded(&[7u8; 10][..], 10).unwrap().len(), 10);
        assert!(matches!(
            read_bounded(&[7u8; 11][..], 10),
            Err(BodyError::TooLarge { limit: 10 })
        ));
        let limits = BodyLimits::uniform(10);
        assert!(decode_body(vec![1; 10], Encoding::Identity, &limits).is_ok());
        assert!(matches!(
            decode_body(vec![1; 11], Encoding::Identity, &limits),
            Err(BodyError::TooLarge { .. })
        ));
    }

    #[test]
    fn concatenated_gzip_members_are_all_inflated_within_the_limit() {
        let mut two = gzip(b"hello ");
        two.extend(gzip(b"world"));
        assert_eq!(gunzip_bounded(&two, 11).unwrap(), b"hello world");
        assert!(matches!(
            gunzip_bounded(&two, 10),
            Err(BodyError::DecodedTooLarge { limit: 10 })
        ));
    }

    #[test]
    fn detect_inflates_only_gzip() {
        let limits = BodyLimits::default();
        assert_eq!(
            decode_body(gzip(b"{}"), Encoding::Detect, &limits).unwrap(),
            b"{}"
        );
        assert_eq!(
            decode_body(b"{}".to_vec(), Encoding::Detect, &limits).unwrap(),
            b"{}"
        );
    }

    #[test]
    fn invalid_gzip_is_a_bad_request() {
        let err = decode_body(
            vec![0x1f, 0x8b, 0, 1, 2],
            Encoding::Gzip,
            &BodyLimits::default(),
        )
        .unwrap_err();
        assert!(matches!(err, BodyError::Gzip(_)));
        assert_eq!(err.http_status(), 400);
    }

    #[test]
    fn content_encoding_headers() {
        assert_eq!(Encoding::from_header(None).unwrap(), Encoding::Identity);
        assert_eq!(Encoding::from_header(Some("GZIP")).unwrap(), Encoding::Gzip);
        assert_eq!(
            Encoding::from_header(Some("x-gzip")).unwrap(),
            Encoding::Gzip
        );
        assert_eq!(
            Encoding::from_header(Some(" identity ")).unwrap(),
            Encoding::Identity
        );
        let err = Encoding::from_header(Some("br")).unwrap_err();
        assert_eq!(err.http_status(), 415);
        assert!(err.to_string().contains("'br'"));
    }
}

/// The examples of this module's docs, as tests (the module is internal to the crate).
#[cfg(test)]
mod doc_examples {
    #[test]
    fn a_gzip_bomb_is_refused_within_the_limit() {
        use crate::sources::body::{BodyError, BodyLimits, Encoding, decode_body};
        use std::io::Write;

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[0u8; 10_000]).unwrap();
        let compressed = gz.finish().unwrap();

        let small = BodyLimits {
            max_body_bytes: 1 << 20,
            max_decoded_bytes: 1_000,
        };
        let err = decode_body(compressed.clone(), Encoding::Gzip, &small).unwrap_err();
        assert!(matches!(err, BodyError::DecodedTooLarge { limit: 1_000 }));
        assert_eq!(err.http_status(), 413);

        let roomy = BodyLimits::default();
        assert_eq!(
            decode_body(compressed, Encoding::Gzip, &roomy)
                .unwrap()
                .len(),
            10_000
        );
    }
}

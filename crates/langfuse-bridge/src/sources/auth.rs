//! Client credentials: with keys configured, a client must present exactly those keys
//! (`Authorization: Basic base64(public:secret)`), else 401, and records are forwarded with
//! the configured keys; without keys, each client's own `Authorization` is kept with its
//! records and forwarded with them, also after a restart.

use super::receive::ReceiveError;

/// How requests are authenticated.
#[derive(Clone)]
pub struct Auth {
    /// The expected header value, when keys are configured.
    expected: Option<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("keys_configured", &self.expected.is_some())
            .finish()
    }
}

pub use crate::sources::access::basic;

impl Auth {
    /// Keys configured (`Some`) or passthrough (`None`).
    pub fn new(keys: Option<(&str, &str)>) -> Auth {
        Auth {
            expected: keys.map(|(p, s)| basic(p, s)),
        }
    }

    /// Checks a request's `Authorization` header; returns what to keep with its records:
    /// `None` (configured keys apply) or the client's own header.
    pub fn check(&self, header: Option<&str>) -> Result<Option<String>, ReceiveError> {
        match &self.expected {
            Some(expected) => match header {
                Some(given)
                    if crate::sources::access::constant_time_eq(
                        given.trim().as_bytes(),
                        expected.as_bytes(),
                    ) =>
                {
                    Ok(None)
                }
                _ => Err(ReceiveError::Unauthorized),
            },
            None => Ok(header
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_keys_reject_missing_or_wrong_credentials() {
        let auth = Auth::new(Some(("pk", "sk")));
        assert_eq!(auth.check(Some(&basic("pk", "sk"))).unwrap(), None);
        assert!(auth.check(None).is_err());
        assert!(auth.check(Some(&basic("pk", "wrong"))).is_err());
    }

    #[test]
    fn without_keys_the_clients_header_is_kept() {
        let auth = Auth::new(None);
        assert_eq!(
            auth.check(Some("Basic abc")).unwrap().as_deref(),
            Some("Basic abc")
        );
        assert_eq!(auth.check(None).unwrap(), None);
    }
}

//! Who may use an HTTP listener of the bridge: one layer in front of everything `serve` and
//! `ui` answer (receivers, the viewer and its API, `/metrics`), and the start-up check that a
//! listener without keys stays on loopback.
//!
//! Each request passes these checks in order; the first that fails answers it, before its
//! body is read:
//!
//! | check | refused with |
//! |---|---|
//! | the `Host` is not an allowed host and the request has no valid credentials (DNS rebinding) | 421 Misdirected Request |
//! | a method other than `GET`/`HEAD` with an `Origin` that is not this listener's own (cross-site writes) | 403 Forbidden |
//! | keys are configured and `Authorization` is not `Basic base64(public:secret)` | 401 with `WWW-Authenticate: Basic realm="langfuse-bridge"` |
//!
//! - **Credentials** are the ones the Langfuse SDKs send, so a browser asks for them too:
//!   user name = public key, password = secret key; compared in constant time. `/health` is
//!   always open (it says nothing about traces); `/metrics` is open with
//!   [`AccessPolicy::metrics_public`]. Without keys nothing is asked here, and the receivers
//!   keep each client's own `Authorization` with its records.
//! - **Allowed hosts**: `localhost` and `*.localhost`, every IP literal (a rebinding page needs
//!   a DNS name; clients that reach the bridge by IP keep working), and the names given with
//!   [`AccessPolicy::allow_hosts`] (`--allowed-host`). A request with valid credentials is
//!   served whatever its `Host` (a browser keeps credentials per origin, so a rebinding page
//!   never has them): keyed clients may use any DNS name.
//! - **Own origin**: `http(s)://HOST[:PORT]` with an allowed HOST and PORT the listener's port
//!   or the port of the request's `Host` (behind a proxy). No CORS header is ever sent, so a
//!   page elsewhere cannot read an answer, and preflights do not succeed.
//! - **Listening**: [`check_exposure`] refuses a non-loopback listener without keys unless the
//!   operator allows it (`--allow-remote-without-auth`).

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

/// The realm of the `WWW-Authenticate` challenge.
const REALM: &str = "Basic realm=\"langfuse-bridge\", charset=\"UTF-8\"";

/// Called with the request path for every refused request (the bridge counts them).
pub type RefusalHook = Arc<dyn Fn(&str, &Refusal, Duration) + Send + Sync>;

/// Why the access layer answered a request itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The `Host` is not one this listener answers to (421).
    #[error(
        "misdirected request: this bridge does not answer to the host name '{0}' (a protection \
         against DNS rebinding); if the name is yours, start the bridge with --allowed-host {0}"
    )]
    MisdirectedHost(String),
    /// A state-changing request from a page of another origin (403).
    #[error(
        "cross-origin request refused: Origin '{0}' is not this bridge's own; send it without \
         an Origin header (servers, SDKs) or from the bridge's own pages"
    )]
    ForeignOrigin(String),
    /// Keys are configured and the request does not carry them (401).
    #[error(
        "missing or invalid credentials: send Authorization: Basic base64(public key:secret key) \
         (in a browser: user name = public key, password = secret key)"
    )]
    Unauthorized,
}

impl Refusal {
    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::MisdirectedHost(_) => StatusCode::MISDIRECTED_REQUEST,
            Refusal::ForeignOrigin(_) => StatusCode::FORBIDDEN,
            Refusal::Unauthorized => StatusCode::UNAUTHORIZED,
        }
    }

    /// The metric label of the refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::MisdirectedHost(_) => "misdirected_host",
            Refusal::ForeignOrigin(_) => "foreign_origin",
            Refusal::Unauthorized => "unauthorized",
        }
    }

    /// The answer: `{"message": …}`, with the Basic challenge on 401.
    pub fn response(&self) -> Response {
        let body = serde_json::to_vec(&serde_json::json!({ "message": self.to_string() }))
            .unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (
            self.status(),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // Answered before the body was read: the connection cannot carry another request.
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        if matches!(self, Refusal::Unauthorized) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(REALM));
        }
        response
    }
}

/// Why a listener cannot start with these access settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// A listener on a non-loopback address without keys.
    #[error(
        "refusing to listen on {addr} ({listener}) without keys: anyone who can reach that \
         address could read every trace and send spans. Set --public-key and --secret-key \
         (LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY) so that clients and the viewer must present \
         them, listen on 127.0.0.1, or pass --allow-remote-without-auth if everyone on that \
         network may read the traces"
    )]
    RemoteWithoutAuth {
        /// Which listener (`HTTP`, `gRPC`).
        listener: &'static str,
        /// Its address.
        addr: SocketAddr,
    },
    /// An `--allowed-host` that is not a host name.
    #[error(
        "--allowed-host '{0}' is not a host name: give the name alone, without scheme, port or \
         path (e.g. --allowed-host bridge.internal)"
    )]
    InvalidAllowedHost(String),
    /// Only one of the two keys.
    #[error("set both the public and the secret key, or neither")]
    PartialKeys,
}

/// Refuses a listener on a non-loopback address when no keys are configured, unless
/// `allow_remote_without_auth` (then it logs a warning).
pub fn check_exposure(
    listeners: &[(&'static str, SocketAddr)],
    keys_configured: bool,
    allow_remote_without_auth: bool,
) -> Result<(), AccessError> {
    if keys_configured {
        return Ok(());
    }
    for &(listener, addr) in listeners {
        if addr.ip().to_canonical().is_loopback() {
            continue;
        }
        if !allow_remote_without_auth {
            return Err(AccessError::RemoteWithoutAuth { listener, addr });
        }
        tracing::warn!(
            %addr,
            listener,
            "listening beyond loopback without keys (--allow-remote-without-auth): anyone who \
             can reach this address can read every trace"
        );
    }
    Ok(())
}

/// Normalizes `--allowed-host` names (lower case, no trailing dot); refuses anything that is
/// not a host name.
pub fn parse_allowed_hosts<S: AsRef<str>>(names: &[S]) -> Result<Vec<String>, AccessError> {
    names
        .iter()
        .map(|name| {
            let name = name.as_ref().trim();
            let normalized = name.trim_end_matches('.').to_ascii_lowercase();
            let valid = !normalized.is_empty()
                && normalized.len() <= 253
                && normalized.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                });
            if valid {
                Ok(normalized)
            } else {
                Err(AccessError::InvalidAllowedHost(printable(name)))
            }
        })
        .collect()
}

/// A secret given on the command line or in the environment: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

/// The access rules of one HTTP listener.
#[derive(Clone)]
pub struct AccessPolicy {
    /// `Basic base64(public:secret)`, when keys are configured.
    expected: Option<String>,
    metrics_public: bool,
    allowed_hosts: Vec<String>,
    /// The listener's bound port (own origins).
    port: u16,
    on_refused: Option<RefusalHook>,
}

impl std::fmt::Debug for AccessPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessPolicy")
            .field("keys_configured", &self.expected.is_some())
            .field("metrics_public", &self.metrics_public)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl AccessPolicy {
    /// The rules for a listener bound to `listen` (its real port, after binding), with these
    /// keys (`None`: no credentials asked).
    pub fn new(keys: Option<(&str, &str)>, listen: SocketAddr) -> AccessPolicy {
        AccessPolicy {
            expected: keys.map(|(p, s)| basic(p, s)),
            metrics_public: false,
            allowed_hosts: Vec::new(),
            port: listen.port(),
            on_refused: None,
        }
    }

    /// Serves `/metrics` without credentials.
    pub fn metrics_public(mut self, public: bool) -> AccessPolicy {
        self.metrics_public = public;
        self
    }

    /// Host names served besides loopback names and IP literals (see [`parse_allowed_hosts`]).
    pub fn allow_hosts(mut self, names: Vec<String>) -> AccessPolicy {
        self.allowed_hosts = names;
        self
    }

    /// Calls `hook` for every refused request.
    pub fn on_refused(mut self, hook: RefusalHook) -> AccessPolicy {
        self.on_refused = Some(hook);
        self
    }

    /// `router` behind this policy: the layer sees every request, matched route or not.
    pub fn protect(self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(Arc::new(self), enforce))
    }

    /// Decides one request. `uri_host` is the host of an absolute request target, used when
    /// there is no `Host` header.
    pub fn check(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        uri_host: Option<&str>,
    ) -> Result<(), Refusal> {
        let authenticated = self.expected.as_deref().is_some_and(|expected| {
            headers.get(header::AUTHORIZATION).is_some_and(|given| {
                constant_time_eq(given.as_bytes().trim_ascii(), expected.as_bytes())
            })
        });
        let host = match headers.get(header::HOST) {
            Some(value) => Some(value.to_str().ok().and_then(split_authority).ok_or_else(
                || Refusal::MisdirectedHost(printable(&String::from_utf8_lossy(value.as_bytes()))),
            )?),
            None => uri_host.map(|h| (h.to_owned(), None)),
        };
        if let Some((name, _)) = &host
            && !authenticated
            && !self.host_allowed(name)
        {
            return Err(Refusal::MisdirectedHost(printable(name)));
        }
        if !matches!(*method, Method::GET | Method::HEAD)
            && let Some(origin) = headers.get(header::ORIGIN)
        {
            let host_port = host.as_ref().map(|(_, port)| *port);
            if !self.own_origin(origin.as_bytes(), host_port) {
                return Err(Refusal::ForeignOrigin(printable(&String::from_utf8_lossy(
                    origin.as_bytes(),
                ))));
            }
        }
        let open = path == "/health" || (path == "/metrics" && self.metrics_public);
        if self.expected.is_some() && !authenticated && !open {
            return Err(Refusal::Unauthorized);
        }
        Ok(())
    }

    /// Whether `name` (lower case, no port) is a host this listener answers to.
    pub fn host_allowed(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.');
        name == "localhost"
            || name.ends_with(".localhost")
            || is_ip_literal(name)
            || self.allowed_hosts.iter().any(|h| h == name)
    }

    /// Whether `origin` is `http(s)://HOST[:PORT]` of this listener; `host_port` is the port
    /// of the request's `Host` (`Some(None)`: written without one).
    fn own_origin(&self, origin: &[u8], host_port: Option<Option<u16>>) -> bool {
        let Ok(origin) = std::str::from_utf8(origin) else {
            return false;
        };
        let (scheme, authority) = match origin.split_once("://") {
            Some((s, a)) => (s.to_ascii_lowercase(), a),
            None => return false,
        };
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return false,
        };
        let Some((name, port)) = split_authority(authority) else {
            return false;
        };
        let port = port.unwrap_or(default_port);
        // Behind a proxy the client's port is the Host's, the scheme's default when unwritten.
        let via_host = host_port.is_some_and(|p| p.unwrap_or(default_port) == port);
        self.host_allowed(&name) && (port == self.port || via_host)
    }
}

async fn enforce(
    State(policy): State<Arc<AccessPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    match policy.check(
        request.method(),
        request.uri().path(),
        request.headers(),
        request.uri().host(),
    ) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            if let Some(hook) = &policy.on_refused {
                hook(request.uri().path(), &refusal, started.elapsed());
            }
            tracing::debug!(
                path = request.uri().path(),
                reason = refusal.reason(),
                "request refused"
            );
            // The client may still be sending its body: read it first (lingering close).
            crate::sources::linger::discard(request.into_body()).await;
            refusal.response()
        }
    }
}

/// `host[:port]` or `[v6][:port]`, host lower-cased; `None` when malformed.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (v6, after) = rest.split_once(']')?;
            v6.parse::<Ipv6Addr>().ok()?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?),
            };
            (&authority[..v6.len() + 2], port)
        }
        None => match authority.rsplit_once(':') {
            Some((host, _)) if host.is_empty() || host.contains(':') => return None,
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host.to_ascii_lowercase(), port))
}

/// An IPv4 literal or a bracketed IPv6 literal.
fn is_ip_literal(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
        None => host.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv4()),
    }
}

/// Compares in time that depends only on `given`'s length, never on where it differs nor on
/// the expected value's length.
/// `Basic base64(public:secret)`: the `Authorization` value of a Langfuse key pair, as the
/// SDKs send it.
pub fn basic(public_key: &str, secret_key: &str) -> String {
    use base64::Engine;
    let token =
        base64::engine::general_purpose::STANDARD.encode(format!("{public_key}:{secret_key}"));
    format!("Basic {token}")
}

pub(crate) fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    if expected.is_empty() {
        return given.is_empty();
    }
    let mut diff = u8::from(given.len() != expected.len());
    for (i, g) in given.iter().enumerate() {
        diff |= g ^ expected[i % expected.len()];
    }
    diff == 0
}

/// Printable characters only, at most 64 (for echoing request values in answers and logs).
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    const LISTEN: &str = "127.0.0.1:4318";

    fn open_policy() -> AccessPolicy {
        AccessPolicy::new(None, LISTEN.parse().unwrap())
            .allow_hosts(parse_allowed_hosts(&["Bridge.Internal."]).unwrap())
    }

    #[test]
    fn loopback_names_ip_literals_and_allowed_hosts_are_served_other_names_get_421() {
        let policy = open_policy();
        for host in [
            "localhost",
            "localhost:4318",
            "LOCALHOST.:4318",
            "viewer.localhost:4318",
            "127.0.0.1:4318",
            "10.1.2.3",
            "[::1]:4318",
            "[2001:db8::1]",
            "bridge.internal:4318",
            "BRIDGE.internal",
        ] {
            assert_eq!(
                policy.check(&Method::GET, "/", &headers(&[("host", host)]), None),
                Ok(()),
                "{host}"
            );
        }
        for host in [
            "evil.example",
            "evil.example:4318",
            "localhost.evil.example",
            "127.0.0.1.nip.io:4318",
            "internal",
            "::1",
            "[::1",
            "a:b:c",
            "host:notaport",
            "user@localhost",
        ] {
            let refusal = policy
                .check(&Method::GET, "/", &headers(&[("host", host)]), None)
                .unwrap_err();
            assert_eq!(refusal.status(), StatusCode::MISDIRECTED_REQUEST, "{host}");
        }
        // HTTP/1.0 without Host: only the request target can say.
        assert!(
            policy
                .check(&Method::GET, "/", &HeaderMap::new(), None)
                .is_ok()
        );
        assert!(
            policy
                .check(&Method::GET, "/", &HeaderMap::new(), Some("evil.example"))
                .is_err()
        );
    }

    #[test]
    fn writes_with_a_foreign_origin_get_403_reads_and_own_origins_pass() {
        let policy = open_policy();
        let host = ("host", "127.0.0.1:4318");
        for own in [
            "http://127.0.0.1:4318",
            "http://localhost:4318",
            "https://bridge.internal:4318",
            "HTTP://LOCALHOST:4318",
        ] {
            let h = headers(&[host, ("origin", own)]);
            assert_eq!(
                policy.check(&Method::POST, "/v1/traces", &h, None),
                Ok(()),
                "{own}"
            );
        }
        // Behind a proxy: the origin's port is the one the client used (the Host's).
        let proxied = headers(&[
            ("host", "bridge.internal"),
            ("origin", "http://bridge.internal"),
        ]);
        assert_eq!(
            policy.check(&Method::POST, "/v1/traces", &proxied, None),
            Ok(())
        );
        for foreign in [
            "http://127.0.0.1:5555",
            "http://evil.example:4318",
            "null",
            "file://",
            "ftp://127.0.0.1:4318",
            "http://127.0.0.1:4318/path",
        ] {
            let h = headers(&[host, ("origin", foreign)]);
            for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
                let refusal = policy.check(&method, "/v1/traces", &h, None).unwrap_err();
                assert_eq!(
                    refusal.status(),
                    StatusCode::FORBIDDEN,
                    "{method} {foreign}"
                );
            }
            assert_eq!(policy.check(&Method::GET, "/api/traces", &h, None), Ok(()));
        }
        assert_eq!(
            policy.check(&Method::POST, "/v1/traces", &headers(&[host]), None),
            Ok(()),
            "no Origin: not a browser"
        );
    }

    #[test]
    fn with_keys_everything_but_health_needs_them_and_metrics_when_not_public() {
        let listen = LISTEN.parse().unwrap();
        let policy = AccessPolicy::new(Some(("pk", "sk")), listen);
        let host = ("host", "127.0.0.1:4318");
        let right = basic("pk", "sk");
        let wrong = basic("pk", "sk2");
        for path in [
            "/",
            "/api/traces",
            "/api/traces/x",
            "/metrics",
            "/v1/traces",
            "/nope",
        ] {
            let none = policy.check(&Method::GET, path, &headers(&[host]), None);
            assert_eq!(none, Err(Refusal::Unauthorized), "{path}");
            let bad = headers(&[host, ("authorization", &wrong)]);
            assert_eq!(
                policy.check(&Method::GET, path, &bad, None),
                Err(Refusal::Unauthorized)
            );
            let good = headers(&[host, ("authorization", &right)]);
            assert_eq!(
                policy.check(&Method::GET, path, &good, None),
                Ok(()),
                "{path}"
            );
        }
        assert_eq!(
            policy.check(&Method::GET, "/health", &headers(&[host]), None),
            Ok(())
        );
        let public = policy.clone().metrics_public(true);
        assert_eq!(
            public.check(&Method::GET, "/metrics", &headers(&[host]), None),
            Ok(())
        );
        assert!(
            public
                .check(&Method::GET, "/api/traces", &headers(&[host]), None)
                .is_err()
        );
        // Valid credentials: any host name (a rebinding page never has them) but still no
        // cross-site write.
        let named = headers(&[("host", "bridge.svc:4318"), ("authorization", &right)]);
        assert_eq!(
            policy.check(&Method::POST, "/v1/traces", &named, None),
            Ok(())
        );
        let csrf = headers(&[
            host,
            ("authorization", &right),
            ("origin", "http://evil.example"),
        ]);
        assert!(
            policy
                .check(&Method::POST, "/v1/traces", &csrf, None)
                .is_err()
        );
        assert_eq!(
            policy
                .check(
                    &Method::GET,
                    "/",
                    &headers(&[("host", "evil.example")]),
                    None
                )
                .unwrap_err()
                .status(),
            StatusCode::MISDIRECTED_REQUEST
        );
    }

    #[test]
    fn answers_carry_the_challenge_and_no_cors_headers() {
        let response = Refusal::Unauthorized.response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.starts_with("Basic realm="), "{challenge}");
        assert!(
            response
                .headers()
                .keys()
                .all(|k| !k.as_str().starts_with("access-control"))
        );
    }

    #[test]
    fn non_loopback_listeners_without_keys_are_refused_unless_allowed() {
        let local: SocketAddr = "127.0.0.1:4318".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:4317".parse().unwrap();
        let v6: SocketAddr = "[::]:4318".parse().unwrap();
        assert!(
            check_exposure(
                &[("HTTP", local), ("gRPC", "[::1]:1".parse().unwrap())],
                false,
                false
            )
            .is_ok()
        );
        let err = check_exposure(&[("HTTP", local), ("gRPC", any)], false, false).unwrap_err();
        assert_eq!(
            err,
            AccessError::RemoteWithoutAuth {
                listener: "gRPC",
                addr: any
            }
        );
        assert!(err.to_string().contains("--allow-remote-without-auth"));
        assert!(check_exposure(&[("HTTP", v6)], false, false).is_err());
        assert!(check_exposure(&[("HTTP", v6)], false, true).is_ok());
        assert!(check_exposure(&[("HTTP", v6)], true, false).is_ok());
    }

    #[test]
    fn allowed_hosts_must_be_host_names() {
        assert_eq!(parse_allowed_hosts(&["A.Example."]).unwrap(), ["a.example"]);
        for bad in ["", "http://a.example", "a.example:80", "a/b", "a..b", "a b"] {
            assert!(parse_allowed_hosts(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(!constant_time_eq(b"abcabc", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"", b"abc"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let secret: Secret = "sk-lf-very-secret".parse().unwrap();
        assert!(!format!("{secret:?}").contains("very-secret"));
        assert_eq!(secret.expose(), "sk-lf-very-secret");
        let policy = AccessPolicy::new(Some(("pk", "sk-lf-very-secret")), LISTEN.parse().unwrap());
        assert!(!format!("{policy:?}").contains("very-secret"));
    }
}

/// The examples of this module's docs, as tests (the module is internal to the crate).
#[cfg(test)]
mod doc_examples {
    #[test]
    fn a_foreign_host_is_misdirected_and_localhost_is_served() {
        use crate::sources::access::{AccessPolicy, Refusal};
        use axum::http::{HeaderMap, HeaderValue, Method};

        let policy = AccessPolicy::new(None, "127.0.0.1:4318".parse().unwrap());
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("evil.example:4318"));
        assert!(matches!(
            policy.check(&Method::GET, "/api/traces", &headers, None),
            Err(Refusal::MisdirectedHost(_))
        ));
        headers.insert("host", HeaderValue::from_static("localhost:4318"));
        assert!(
            policy
                .check(&Method::GET, "/api/traces", &headers, None)
                .is_ok()
        );
    }

    #[test]
    fn basic_encodes_the_key_pair() {
        assert_eq!(crate::sources::access::basic("pk", "sk"), "Basic cGs6c2s=");
    }
}

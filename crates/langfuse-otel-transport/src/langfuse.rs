//! What every request to Langfuse carries, defined once: paths, the SDK name and version, the
//! user agent, and the authentication headers.

use base64::Engine as _;

use crate::settings::Secret;

/// Langfuse Cloud (EU), the default base URL.
pub const DEFAULT_BASE_URL: &str = "https://cloud.langfuse.com";
/// Path of the Langfuse OTLP traces endpoint.
pub const OTLP_PATH: &str = "/api/public/otel/v1/traces";
/// Path of the Langfuse native ingestion endpoint.
pub const INGESTION_PATH: &str = "/api/public/ingestion";
/// Path of the Langfuse scores endpoint (Python SDK 5).
pub const SCORES_PATH: &str = "/api/public/scores";
/// The SDK name sent in `x-langfuse-sdk-name`.
pub const SDK_NAME: &str = "rust";
/// The SDK version sent in `x-langfuse-sdk-version` (the workspace version).
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("langfuse-otel-rust/", env!("CARGO_PKG_VERSION"));

/// The `authorization` header value for a key pair: `Basic base64(public:secret)`.
pub fn basic_auth(public_key: &str, secret_key: &Secret) -> Secret {
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("{public_key}:{}", secret_key.expose()));
    Secret::new(format!("Basic {token}"))
}

/// The headers of every request to Langfuse: Basic auth (`public:secret`), SDK name and
/// version, public key, and `x-langfuse-ingestion-version: 4` (without it Langfuse Cloud
/// delays OTLP ingestion by minutes). Values are [`Secret`]s: the authorization one is.
///
/// ```
/// use langfuse_otel_transport::{Secret, langfuse_headers};
/// let headers = langfuse_headers("pk-lf-test", &Secret::new("sk-lf-test"));
/// assert_eq!(headers[0].0, "authorization");
/// assert_eq!(headers[0].1.expose(), "Basic cGstbGYtdGVzdDpzay1sZi10ZXN0");
/// ```
pub fn langfuse_headers(public_key: &str, secret_key: &Secret) -> Vec<(String, Secret)> {
    vec![
        ("authorization".into(), basic_auth(public_key, secret_key)),
        ("x-langfuse-sdk-name".into(), Secret::new(SDK_NAME)),
        ("x-langfuse-sdk-version".into(), Secret::new(SDK_VERSION)),
        ("x-langfuse-public-key".into(), Secret::new(public_key)),
        ("x-langfuse-ingestion-version".into(), Secret::new("4")),
    ]
}

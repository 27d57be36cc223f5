//! Support code for the `#[observe]` expansion. Not a public API: names may change.

use std::fmt::Display;
use std::future::Future;

pub use serde_json::Map;
use serde_json::Value;

use opentelemetry::Context;

use crate::client::Langfuse;
use crate::recorder::ActiveRecorder;
use crate::warning::warn_visible;

/// The client `#[observe]` uses: the client of the current observation when an SDK
/// observation is current (whatever client started it), else the global one (see
/// [`Langfuse::set_global`]), which [`Langfuse::global`] builds from the environment when none
/// was installed. When that leaves no enabled client at all, it warns once per process.
pub fn client() -> Langfuse {
    if let Some(inner) = ActiveRecorder::of(&Context::current()) {
        return Langfuse { inner };
    }
    let installed = Langfuse::has_global();
    let client = Langfuse::global();
    if !installed && !client.is_enabled() {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            warn_visible(
                "#[observe] has no client: no observation of a client is current, no global \
                 client is installed (Langfuse::init_global) and the LANGFUSE_* environment \
                 variables configure none, so observed functions run unrecorded",
            );
        });
    }
    client
}

/// Pins the output type of the wrapped async body (so `?` infers its error type).
pub fn typed_future<R, F: Future<Output = R>>(future: F) -> F {
    future
}

/// A value whose capture depends on the traits it implements (autoref specialization).
pub struct Capture<'a, T: ?Sized>(pub &'a T);

/// Serializable values become JSON.
pub trait CaptureSerialize {
    /// The value as JSON.
    fn capture_value(&self) -> Value;
}

impl<T: serde::Serialize + ?Sized> CaptureSerialize for Capture<'_, T> {
    fn capture_value(&self) -> Value {
        crate::types::to_json_value(self.0)
    }
}

/// Other values become the Python SDK's placeholder text.
pub trait CaptureFallback {
    /// The placeholder.
    fn capture_value(&self) -> Value;
}

impl<T: ?Sized> CaptureFallback for &Capture<'_, T> {
    fn capture_value(&self) -> Value {
        Value::String(format!(
            "<not serializable object of type: {}>",
            std::any::type_name::<T>()
        ))
    }
}

/// Errors with `Display` report their message.
pub trait ErrorDisplay {
    /// The status message.
    fn error_message(&self) -> String;
}

impl<T: Display + ?Sized> ErrorDisplay for Capture<'_, T> {
    fn error_message(&self) -> String {
        self.0.to_string()
    }
}

/// Other errors report their type name.
pub trait ErrorFallback {
    /// The status message.
    fn error_message(&self) -> String;
}

impl<T: ?Sized> ErrorFallback for &Capture<'_, T> {
    fn error_message(&self) -> String {
        std::any::type_name::<T>().to_owned()
    }
}

/// The short type name of a value (`ValueError`, not `my_crate::errors::ValueError`).
pub fn type_name_of<T: ?Sized>(_: &T) -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

//! Support code for the `#[observe]` expansion. Not a public API: names may change.

use std::fmt::Display;
use std::future::Future;

pub use serde_json::Map;
use serde_json::Value;

use crate::Langfuse;

/// The client `#[observe]` uses: the global one (see [`Langfuse::set_global`]).
pub fn client() -> Langfuse {
    Langfuse::global()
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

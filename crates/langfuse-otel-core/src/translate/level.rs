//! Level and status message (server: `parseObservationLevel`).

use super::SpanContext;
use crate::record::Level;

/// The observation level and status message of a span.
pub fn level_and_status(cx: &SpanContext<'_, '_>) -> (Level, Option<String>) {
    let _ = cx;
    (Level::Default, None)
}

//! [`Compatibility`]: server parity or repair, the one switch of the translator's rules
//! (see [Repair mode](crate::translate#repair-mode)).

/// How the translator treats observations the Langfuse server would silently drop, and the
/// conventions it does not read yet (see [Repair mode](crate::translate#repair-mode)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Compatibility {
    /// Keep such observations by repairing the offending field, and read the current GenAI
    /// conventions (documented deviations from the server, see [Repair mode](crate::translate#repair-mode)).
    /// The default: nothing the user sent is lost.
    #[default]
    Repair,
    /// Do exactly what the server does: report the observation as dropped.
    Server,
}

//! The per-span view every translation rule reads from.

use crate::span::{Attributes, Resource, Scope, Span};
use crate::value::AttrValue;

/// A span with its scope and resource: everything one observation is derived from.
#[derive(Debug, Clone, Copy)]
pub struct SpanContext<'b, 'a> {
    /// The resource the span belongs to.
    pub resource: &'b Resource<'a>,
    /// The instrumentation scope the span belongs to.
    pub scope: &'b Scope<'a>,
    /// The span.
    pub span: &'b Span<'a>,
}

impl<'b, 'a> SpanContext<'b, 'a> {
    /// The span's attributes.
    #[inline]
    pub fn attrs(&self) -> &'b Attributes<'a> {
        &self.span.attributes
    }

    /// A span attribute.
    #[inline]
    pub fn attr(&self, key: &str) -> Option<&'b AttrValue<'a>> {
        self.span.attributes.get(key)
    }

    /// The instrumentation scope name (`""` when absent).
    #[inline]
    pub fn scope_name(&self) -> &'b str {
        &self.scope.name
    }

    /// Whether the span is a trace root: no parent, or `langfuse.internal.as_root` is `true`.
    pub fn is_root(&self) -> bool {
        self.span.parent_id().is_none()
            || self
                .attr(crate::keys::LANGFUSE_INTERNAL_AS_ROOT)
                .is_some_and(|v| v.to_js_string() == "true")
    }
}

/// Runs `f` on the context of `span` under a default resource and scope (for the translation
/// rules' tests).
#[cfg(test)]
pub(crate) fn in_default_context<'a, R>(
    span: &Span<'a>,
    f: impl FnOnce(&SpanContext<'_, 'a>) -> R,
) -> R {
    let (resource, scope) = (Resource::default(), Scope::default());
    f(&SpanContext {
        resource: &resource,
        scope: &scope,
        span,
    })
}

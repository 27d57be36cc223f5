//! Running a closure or future as the body of an active observation: the observation is the
//! current context inside, and ends when the body returns; an error value or a panic marks it
//! ERROR (the panic then resumes). Written against [`ActiveHandle`], so this module knows no
//! observation type (the observation module uses it, not the other way round).

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use opentelemetry::trace::FutureExt as _;

use opentelemetry::Context;

/// What running a body needs of an observation handle.
pub(crate) trait ActiveHandle: Clone {
    /// The context the body runs in (the observation as the active span).
    fn child_context(&self) -> &Context;
    /// Marks the observation failed.
    fn record_error(&self, type_name: &str, message: &str);
    /// Ends the observation now.
    fn end(&self);
}

pub(crate) fn error_of<T, E: fmt::Display>(
    r: &std::result::Result<T, E>,
) -> Option<(String, String)> {
    r.as_ref()
        .err()
        .map(|e| (short_type_name::<E>(), e.to_string()))
}

fn short_type_name<E>() -> String {
    let full = std::any::type_name::<E>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base).to_owned()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

pin_project_lite::pin_project! {
    /// Polls the inner future and turns a panic into `Err(payload)`.
    struct CatchUnwind<F> {
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(p) => Poll::Ready(Err(p)),
        }
    }
}

pub(crate) async fn run_active<H, F, Fut, T>(
    obs: H,
    body: F,
    error: impl Fn(&T) -> Option<(String, String)>,
) -> T
where
    H: ActiveHandle,
    F: FnOnce(H) -> Fut,
    Fut: Future<Output = T>,
{
    let cx = obs.child_context().clone();
    let fut = CatchUnwind {
        inner: body(obs.clone()).with_context(cx),
    };
    finish_active(&obs, fut.await, error)
}

pub(crate) fn run_active_sync<H: ActiveHandle, T>(
    obs: H,
    body: impl FnOnce(H) -> T,
    error: impl Fn(&T) -> Option<(String, String)>,
) -> T {
    let result = {
        let _guard = obs.child_context().clone().attach();
        catch_unwind(AssertUnwindSafe(|| body(obs.clone())))
    };
    finish_active(&obs, result, error)
}

/// Ends an active observation with the outcome of its body: an error value marks it ERROR and
/// is returned; a panic marks it ERROR and resumes unwinding.
fn finish_active<H: ActiveHandle, T>(
    obs: &H,
    result: std::thread::Result<T>,
    error: impl Fn(&T) -> Option<(String, String)>,
) -> T {
    match result {
        Ok(value) => {
            if let Some((ty, msg)) = error(&value) {
                obs.record_error(&ty, &msg);
            }
            obs.end();
            value
        }
        Err(payload) => {
            obs.record_error("panic", &panic_message(&*payload));
            obs.end();
            resume_unwind(payload)
        }
    }
}

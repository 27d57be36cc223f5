//! `#[observe]` in a program that never called `init_global` records with the global client
//! built from the environment on first use, as the Python SDK's `get_client()` does. One test
//! in this binary: the environment and the global client are process-wide.

use std::time::{Duration, Instant};

use integration_tests::receiver::{Action, Receiver};
use langfuse_otel::{Langfuse, observe};

#[observe]
fn answer(question: &str) -> usize {
    question.len()
}

#[test]
fn observe_without_init_global_uses_a_client_built_from_the_environment() {
    let rx = Receiver::start(|_, _| Action::ok());
    // SAFETY: set before any other thread of this test reads the environment.
    unsafe {
        std::env::set_var("LANGFUSE_PUBLIC_KEY", "pk-lf-env");
        std::env::set_var("LANGFUSE_SECRET_KEY", "sk-lf-env");
        std::env::set_var("LANGFUSE_BASE_URL", rx.base_url());
    }
    assert_eq!(answer("hello"), 5);
    assert!(Langfuse::global().is_enabled());
    Langfuse::global().flush().unwrap();
    let started = Instant::now();
    while rx.delivered_span_ids().is_empty() && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let requests = rx.requests();
    let r = &requests[0];
    assert_eq!(r.path, "/api/public/otel/v1/traces");
    assert_eq!(r.header("x-langfuse-public-key"), Some("pk-lf-env"));
    assert_eq!(rx.delivered_span_ids().len(), 1);
}

//! `flush_interval(0)` ("send as soon as data arrives") costs no CPU while idle: neither the
//! span worker nor the score worker spins. One test in this binary, so the process's CPU time
//! is the client's.

use std::time::{Duration, Instant};

use integration_tests::receiver::{Action, Receiver};
use langfuse_otel::{Langfuse, Score};

/// User + system CPU time of this process.
fn process_cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a rusage into the valid pointer given.
    let usage = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()), 0);
        usage.assume_init()
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[test]
fn an_idle_client_with_flush_interval_zero_uses_under_a_tenth_of_a_core() {
    let rx = Receiver::start(|_, _| Action::ok());
    let langfuse = Langfuse::builder()
        .public_key("pk-lf-test")
        .secret_key("sk-lf-test")
        .base_url(rx.base_url())
        .flush_interval(Duration::ZERO)
        .build();
    langfuse.start_active_observation_sync("warm-up", |obs| {
        obs.score_trace(Score::numeric("quality", 1.0));
    });
    // Both sent at once, without a flush.
    let started = Instant::now();
    while rx.requests().len() < 2 && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        rx.requests().len(),
        2,
        "one span request and one score request"
    );
    let before = process_cpu_time();
    let wall = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let used = process_cpu_time() - before;
    let share = used.as_secs_f64() / wall.elapsed().as_secs_f64();
    assert!(share < 0.10, "idle CPU: {used:?} in {:?}", wall.elapsed());
    langfuse.shutdown().unwrap();
}

//! Scores get the same no-loss treatment as spans: scores that cannot be delivered in time
//! stay queued (oldest first) and are retried until delivered or the shutdown deadline; they
//! are lost only when the score queue is full, counted exactly and warned about once.
//! "Down" means nothing listens on the port.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use integration_tests::receiver::{Action, Receiver, ReservedPort};
use langfuse_otel::{Diagnostics, Langfuse, Score};

fn messages() -> (Diagnostics, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    (
        Diagnostics::new(move |m| sink.lock().unwrap().push(m.to_string())),
        seen,
    )
}

fn client(port: u16, diagnostics: Diagnostics, max_queued: usize) -> Langfuse {
    Langfuse::builder()
        .public_key("pk-lf-test")
        .secret_key("sk-lf-test")
        .base_url(format!("http://127.0.0.1:{port}"))
        .timeout(Duration::from_millis(300))
        .flush_interval(Duration::from_millis(50))
        .max_queued_scores(max_queued)
        .diagnostics(diagnostics)
        .build()
}

fn score_ids(rx: &Receiver) -> HashSet<String> {
    rx.requests()
        .iter()
        .filter(|r| r.acknowledged() && r.path == "/api/public/scores")
        .flat_map(|r| serde_json::from_slice::<Vec<serde_json::Value>>(&r.body).unwrap_or_default())
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn scores_sent_while_the_upstream_is_down_are_all_delivered_when_it_is_back() {
    let upstream = ReservedPort::new();
    let (diagnostics, warnings) = messages();
    let langfuse = client(upstream.port(), diagnostics, 10_000);
    for i in 0..200 {
        langfuse.create_score(
            Score::numeric("quality", 0.5)
                .trace_id("t1")
                .id(format!("s{i}")),
        );
    }
    // Down until the sender has been refused at least twice.
    assert!(
        wait_for(|| langfuse.score_stats().retried >= 2),
        "no retry while the upstream was down"
    );
    assert_eq!(langfuse.score_stats().sent, 0, "the upstream was down");
    let rx = Receiver::start_with(upstream.listen(), |_, _| Action::status(200));
    langfuse
        .shutdown_with_timeout(Duration::from_secs(20))
        .unwrap();
    assert_eq!(score_ids(&rx).len(), 200);
    let s = langfuse.score_stats();
    assert_eq!((s.sent, s.dropped), (200, 0), "{s:?}");
    assert!(warnings.lock().unwrap().is_empty(), "{warnings:?}");
}

#[test]
fn a_score_outage_past_the_queue_bound_drops_exactly_the_shortfall_with_one_warning() {
    let upstream = ReservedPort::new();
    let (diagnostics, warnings) = messages();
    let langfuse = client(upstream.port(), diagnostics, 50);
    for i in 0..200 {
        langfuse.create_score(
            Score::numeric("quality", 0.5)
                .trace_id("t1")
                .id(format!("s{i}")),
        );
    }
    // Down until the sender has been refused at least once.
    assert!(
        wait_for(|| langfuse.score_stats().retried >= 1),
        "no retry while the upstream was down"
    );
    let rx = Receiver::start_with(upstream.listen(), |_, _| Action::status(200));
    langfuse
        .shutdown_with_timeout(Duration::from_secs(20))
        .unwrap();
    let ids = score_ids(&rx);
    assert_eq!(ids.len(), 50);
    assert!(ids.contains("s0"), "the oldest scores are kept");
    let s = langfuse.score_stats();
    assert_eq!((s.sent, s.dropped), (50, 150), "{s:?}");
    let warnings = warnings.lock().unwrap();
    assert_eq!(
        warnings
            .iter()
            .filter(|w| w.contains("score queue full"))
            .count(),
        1,
        "{warnings:?}"
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}

/// Polls `done` until it holds or 20 s pass.
fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

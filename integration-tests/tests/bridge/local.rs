//! `serve --to local`: spans received by the bridge land in the embedded trace store (through
//! the spool, like every destination), and the web viewer is served at `/` of the same HTTP
//! listener.

use crate::bridge_support;

use std::time::Duration;

use bridge_support::{export_bytes, get, post, start, temp_dir, test_config, wait_until};
use langfuse_bridge::Bridge;
use langfuse_bridge::Destination;

#[test]
fn spans_sent_to_a_local_bridge_show_in_its_viewer() {
    let mut config = test_config("local", "http://unused", "local");
    config.to = Some(Destination::Local);
    config.upstream = None;
    let dir = temp_dir("local-store");
    std::fs::create_dir_all(&dir).unwrap();
    config.db = dir.join("traces.db");
    let bridge = start(Bridge::new(config));
    let answer = post(
        &format!("{}/v1/traces", bridge.url()),
        &[("content-type", "application/x-protobuf")],
        &export_bytes(1, 3),
    )
    .unwrap();
    assert_eq!(answer.status, 200);
    // One trace (id 0000000000000001…01) with three observations.
    let listed = wait_until(Duration::from_secs(20), || {
        get(&format!("{}/api/traces", bridge.url())).is_ok_and(|a| {
            String::from_utf8_lossy(&a.body).contains("00000000000000010000000000000001")
        })
    });
    assert!(listed, "the trace never showed in the viewer's API");
    let index = get(&format!("{}/", bridge.url())).unwrap();
    assert_eq!(index.status, 200);
    assert!(String::from_utf8_lossy(&index.body).contains("<html"));
    bridge.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

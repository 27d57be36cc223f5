//! The store's write rules, one test per rule: Langfuse-style merges, idempotent replays,
//! roll-ups, cost estimates and score upserts.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use langfuse_local::{IngestionEvent, Store, TraceFilter};
use serde_json::{Value, json};

struct TempStore {
    dir: PathBuf,
    store: Store,
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn store() -> TempStore {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "langfuse-local-merge-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(dir.join("t.db")).unwrap();
    TempStore { dir, store }
}

fn events(values: &[Value]) -> Vec<IngestionEvent> {
    values
        .iter()
        .map(|v| serde_json::from_value(v.clone()).unwrap())
        .collect()
}

fn trace_json(s: &Store, id: &str) -> Value {
    serde_json::to_value(s.trace(id).unwrap().unwrap()).unwrap()
}

#[test]
fn trace_fields_merge_absent_keeps_null_overwrites_tags_union_metadata_deep_merges() {
    let t = store();
    t.store
        .ingest(&events(&[
            json!({"type": "trace-create", "timestamp": "2026-01-01T00:00:00.000Z",
            "body": {"id": "t", "timestamp": "2026-01-01T00:00:00.000Z", "name": "first",
                "userId": "u1", "sessionId": "s1", "release": "r1", "tags": ["b"],
                "input": "question", "metadata": {"a": {"x": 1}, "keep": true}}}),
        ]))
        .unwrap();
    t.store
        .ingest(&events(&[
            json!({"type": "trace-create", "timestamp": "2026-01-01T00:00:05.000Z",
            "body": {"id": "t", "timestamp": "2026-01-01T00:00:05.000Z", "name": "second",
                "release": null, "tags": ["a", "b"], "input": "", "environment": "other",
                "metadata": {"a": {"y": 2}}}}),
        ]))
        .unwrap();
    let got = trace_json(&t.store, "t");
    assert_eq!(got["name"], "second", "a later value overwrites");
    assert_eq!(got["userId"], "u1", "an absent key keeps");
    assert_eq!(got["sessionId"], "s1");
    assert_eq!(got["release"], Value::Null, "null overwrites");
    assert_eq!(got["tags"], json!(["a", "b"]), "tags: union, sorted");
    assert_eq!(
        got["input"], "question",
        "input: the last truthy value wins"
    );
    assert_eq!(
        got["timestamp"], "2026-01-01T00:00:00.000Z",
        "timestamp: first wins"
    );
    assert_eq!(got["environment"], "default", "environment: first wins");
    assert_eq!(
        got["metadata"],
        json!({"a": {"x": 1, "y": 2}, "keep": true}),
        "metadata: deep merge"
    );
}

#[test]
fn observation_updates_keep_type_start_and_trace_and_fill_later_fields() {
    let t = store();
    t.store
        .ingest(&events(&[
            json!({"type": "tool-create", "body": {"id": "o", "traceId": "t", "name": "search",
                "startTime": "2026-01-01T00:00:00.000Z", "input": {"q": 1},
                "modelParameters": {"k": 3}}}),
            json!({"type": "span-update", "body": {"id": "o", "traceId": "other",
                "startTime": "2026-01-01T00:00:09.000Z", "endTime": "2026-01-01T00:00:02.000Z",
                "level": "WARNING", "statusMessage": "slow", "modelParameters": {}}}),
        ]))
        .unwrap();
    let got = trace_json(&t.store, "t");
    let o = &got["observations"][0];
    assert_eq!(o["type"], "TOOL", "type from the first event");
    assert_eq!(
        o["startTime"], "2026-01-01T00:00:00.000Z",
        "start: first wins"
    );
    assert_eq!(o["traceId"], "t", "trace id: first wins");
    assert_eq!(o["endTime"], "2026-01-01T00:00:02.000Z");
    assert_eq!(o["level"], "WARNING");
    assert_eq!(o["statusMessage"], "slow");
    assert_eq!(o["input"], json!({"q": 1}), "absent input keeps");
    assert_eq!(
        o["modelParameters"],
        json!({"k": 3}),
        "an empty object keeps"
    );
    assert_eq!(got["latency"], json!(2.0));
}

#[test]
fn updates_in_one_batch_apply_after_creates() {
    let t = store();
    t.store
        .ingest(&events(&[
            json!({"type": "generation-update", "timestamp": "2026-01-01T00:00:00.000Z",
                "body": {"id": "g", "traceId": "t", "name": "updated"}}),
            json!({"type": "generation-create", "timestamp": "2026-01-01T00:00:01.000Z",
                "body": {"id": "g", "traceId": "t", "name": "created",
                    "startTime": "2026-01-01T00:00:00.000Z"}}),
        ]))
        .unwrap();
    assert_eq!(
        trace_json(&t.store, "t")["observations"][0]["name"],
        "updated"
    );
}

#[test]
fn replaying_a_batch_changes_nothing() {
    let t = store();
    let batch = events(&[
        json!({"type": "trace-create", "timestamp": "2026-01-01T00:00:00.000Z",
            "body": {"id": "t", "name": "n", "tags": ["x"], "metadata": {"m": [1, 2]}}}),
        json!({"type": "generation-create", "body": {"id": "g", "traceId": "t",
            "startTime": "2026-01-01T00:00:00.000Z", "endTime": "2026-01-01T00:00:01.000Z",
            "model": "gpt-4o", "usageDetails": {"input": 10, "output": 5}}}),
        json!({"type": "score-create", "timestamp": "2026-01-01T00:00:02.000Z",
            "body": {"id": "s", "traceId": "t", "name": "q", "value": 1}}),
    ]);
    t.store.ingest(&batch).unwrap();
    let first = trace_json(&t.store, "t");
    let list = t.store.list_traces(&TraceFilter::default()).unwrap();
    t.store.ingest(&batch).unwrap();
    assert_eq!(trace_json(&t.store, "t"), first);
    assert_eq!(t.store.list_traces(&TraceFilter::default()).unwrap(), list);
    assert_eq!(first["observations"].as_array().unwrap().len(), 1);
    assert_eq!(first["scores"].as_array().unwrap().len(), 1);
}

#[test]
fn roll_ups_count_observations_errors_tokens_and_cost() {
    let t = store();
    t.store
        .ingest(&events(&[
            json!({"type": "span-create", "body": {"id": "a", "traceId": "t",
                "startTime": "2026-01-01T00:00:00.000Z", "endTime": "2026-01-01T00:00:03.000Z"}}),
            json!({"type": "generation-create", "body": {"id": "b", "traceId": "t",
                "parentObservationId": "a", "startTime": "2026-01-01T00:00:01.000Z",
                "endTime": "2026-01-01T00:00:04.500Z", "level": "ERROR",
                "usageDetails": {"input": 100, "output": 50, "total": 150},
                "costDetails": {"total": 0.25}}}),
            json!({"type": "event-create", "body": {"id": "c", "traceId": "t",
                "startTime": "2026-01-01T00:00:02.000Z", "level": "WARNING"}}),
        ]))
        .unwrap();
    let list = t.store.list_traces(&TraceFilter::default()).unwrap();
    let s = &list[0];
    assert_eq!(s.id, "t", "a trace row exists without trace-create");
    assert_eq!(s.timestamp.as_deref(), Some("2026-01-01T00:00:00.000Z"));
    assert_eq!(s.latency, Some(4.5));
    assert_eq!(s.observation_count, 3);
    assert_eq!(s.generation_count, 1);
    assert_eq!(s.error_count, 1);
    assert_eq!(s.warning_count, 1);
    assert_eq!(s.level, "ERROR");
    assert_eq!(
        (s.input_tokens, s.output_tokens, s.total_tokens),
        (100, 50, 150)
    );
    assert_eq!(s.total_cost, Some(0.25));
    assert!(!s.cost_estimated, "a given cost is not an estimate");
}

#[test]
fn cost_is_estimated_only_when_none_is_given_and_the_model_is_known() {
    let t = store();
    t.store
        .ingest(&events(&[
            json!({"type": "generation-create", "body": {"id": "est", "traceId": "t",
                "startTime": "2026-01-01T00:00:00.000Z", "model": "gpt-4o-mini",
                "usageDetails": {"input": 1000000, "output": 1000000}}}),
            json!({"type": "generation-create", "body": {"id": "unknown", "traceId": "t",
                "startTime": "2026-01-01T00:00:00.000Z", "model": "house-model",
                "usageDetails": {"input": 5}}}),
        ]))
        .unwrap();
    let got = trace_json(&t.store, "t");
    let by_id = |id: &str| {
        got["observations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == id)
            .unwrap()
            .clone()
    };
    let est = by_id("est");
    assert_eq!(est["costEstimated"], true);
    assert!((est["totalCost"].as_f64().unwrap() - 0.75).abs() < 1e-9);
    let unknown = by_id("unknown");
    assert_eq!(unknown["costEstimated"], false);
    assert_eq!(unknown["totalCost"], Value::Null);
    // A cost arriving later replaces the estimate.
    t.store
        .ingest(&events(&[json!({"type": "generation-update",
            "body": {"id": "est", "costDetails": {"total": 1.5}}})]))
        .unwrap();
    let list = t.store.list_traces(&TraceFilter::default()).unwrap();
    assert_eq!(list[0].total_cost, Some(1.5));
    assert!(!list[0].cost_estimated);
}

#[test]
fn scores_upsert_by_id_and_events_without_id_are_skipped() {
    let t = store();
    let report = t
        .store
        .ingest(&events(&[
            json!({"type": "score-create", "timestamp": "2026-01-01T00:00:00.000Z",
                "body": {"id": "s", "traceId": "t", "name": "q", "value": 0.2}}),
            json!({"type": "score-create", "timestamp": "2026-01-01T00:00:01.000Z",
                "body": {"id": "s", "traceId": "t", "name": "q", "value": 0.9}}),
            json!({"type": "score-create", "body": {"traceId": "t", "name": "q", "value": 1}}),
            json!({"type": "trace-create", "body": {"name": "no id"}}),
            json!({"type": "span-create", "body": {"id": "a", "traceId": "t",
                "startTime": "2026-01-01T00:00:00.000Z"}}),
        ]))
        .unwrap();
    assert_eq!(report.skipped, 2);
    let got = trace_json(&t.store, "t");
    assert_eq!(got["scores"].as_array().unwrap().len(), 1);
    assert_eq!(got["scores"][0]["value"], json!(0.9));
}

#[test]
fn change_seq_grows_with_every_batch() {
    let t = store();
    let before = t.store.change_seq().unwrap();
    t.store
        .ingest(&events(&[
            json!({"type": "trace-create", "body": {"id": "t"}}),
        ]))
        .unwrap();
    assert!(t.store.change_seq().unwrap() > before);
}

#[test]
fn import_reports_the_line_of_a_malformed_event() {
    let t = store();
    let input = "{\"type\":\"trace-create\",\"body\":{\"id\":\"t\"}}\n\nnot json\n";
    let err = t.store.import_json_lines(input.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("line 3"), "{err}");
}

/// The events of a small agent run: creates and updates of the same ids, trace events before
/// and after their observations, metadata merges, tags, given and estimated costs, a score.
/// (The trace's own timestamp is its root's start, so that it does not depend on whether the
/// trace row was first made by an observation, which takes the observation's start.)
fn agent_run() -> Vec<IngestionEvent> {
    events(&[
        json!({"type": "span-create", "timestamp": "2026-01-01T00:00:00.000Z",
            "body": {"id": "root", "traceId": "t", "name": "agent",
                "startTime": "2026-01-01T00:00:00.000Z", "metadata": {"a": {"x": 1}}}}),
        json!({"type": "trace-create", "timestamp": "2026-01-01T00:00:00.100Z",
            "body": {"id": "t", "timestamp": "2026-01-01T00:00:00.000Z", "name": "run",
                "userId": "u", "tags": ["b"],
                "metadata": {"k": 1}}}),
        json!({"type": "generation-create", "timestamp": "2026-01-01T00:00:00.200Z",
            "body": {"id": "g1", "traceId": "t", "parentObservationId": "root",
                "startTime": "2026-01-01T00:00:00.200Z", "model": "gpt-4o-mini",
                "usageDetails": {"input": 1200, "output": 300}, "input": "q"}}),
        json!({"type": "tool-create", "timestamp": "2026-01-01T00:00:00.300Z",
            "body": {"id": "tool", "traceId": "t", "parentObservationId": "root",
                "startTime": "2026-01-01T00:00:00.300Z", "level": "WARNING"}}),
        json!({"type": "generation-create", "timestamp": "2026-01-01T00:00:00.400Z",
            "body": {"id": "g2", "traceId": "t", "parentObservationId": "root",
                "startTime": "2026-01-01T00:00:00.400Z", "endTime": "2026-01-01T00:00:01.900Z",
                "model": "claude-sonnet-4", "usageDetails": {"input": 10, "output": 5},
                "costDetails": {"input": 0.1, "output": 0.2}, "level": "ERROR"}}),
        json!({"type": "generation-update", "timestamp": "2026-01-01T00:00:01.000Z",
            "body": {"id": "g1", "traceId": "t", "endTime": "2026-01-01T00:00:01.000Z",
                "output": {"role": "assistant", "content": "a"}, "usageDetails": {},
                "metadata": {"b": 2}}}),
        json!({"type": "span-update", "timestamp": "2026-01-01T00:00:02.000Z",
            "body": {"id": "root", "traceId": "t", "endTime": "2026-01-01T00:00:02.000Z",
                "metadata": {"a": {"y": 2, "x": null}}}}),
        json!({"type": "trace-create", "timestamp": "2026-01-01T00:00:02.100Z",
            "body": {"id": "t", "tags": ["a", "b"], "output": "done", "metadata": {"j": 2}}}),
        json!({"type": "score-create", "timestamp": "2026-01-01T00:00:02.200Z",
            "body": {"id": "s", "traceId": "t", "name": "quality", "value": 0.5}}),
        json!({"type": "span-create", "timestamp": "2026-01-01T00:00:03.000Z",
            "body": {"id": "orphan", "traceId": "implicit", "name": "late",
                "startTime": "2026-01-01T00:00:03.000Z", "endTime": "2026-01-01T00:00:03.250Z"}}),
    ])
}

#[test]
fn batch_boundaries_and_replays_do_not_change_the_result() {
    let run = agent_run();
    let snapshot = |s: &Store| {
        let list = serde_json::to_value(s.list_traces(&TraceFilter::default()).unwrap()).unwrap();
        (list, trace_json(s, "t"), trace_json(s, "implicit"))
    };
    let whole = store();
    whole.store.ingest(&run).unwrap();
    let expected = snapshot(&whole.store);
    assert_eq!(expected.0.as_array().unwrap().len(), 2);
    assert_eq!(expected.1["observations"].as_array().unwrap().len(), 4);
    assert_eq!(expected.1["tags"], json!(["a", "b"]));

    // One event per batch: every later event merges into stored rows, and the roll-ups are
    // added to or recomputed instead of written once.
    let single = store();
    for event in &run {
        single.store.ingest(std::slice::from_ref(event)).unwrap();
    }
    assert_eq!(snapshot(&single.store), expected, "one event per batch");

    // Two halves (in order: the rules give first values to whatever arrives first), then the
    // whole run again and the later half again (replays; replaying an older batch after a newer
    // one would re-apply its metadata patches, as Langfuse's merge would).
    let halves = store();
    let (first, second) = run.split_at(4);
    halves.store.ingest(first).unwrap();
    halves.store.ingest(second).unwrap();
    assert_eq!(snapshot(&halves.store), expected, "halves");
    halves.store.ingest(&run).unwrap();
    halves.store.ingest(second).unwrap();
    assert_eq!(snapshot(&halves.store), expected, "replays");
}

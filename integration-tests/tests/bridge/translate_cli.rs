//! The `langfuse-bridge translate` command, run as a process on every conformance input and
//! every captured SDK trace request (plain and gzip-compressed), and on bad input.
//!
//! The binary is built on first use with the cargo running the tests (same target directory
//! and profile); set `LANGFUSE_BRIDGE_BIN` to test a prebuilt binary instead.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::Compression;
use flate2::write::GzEncoder;
use integration_tests::captures::{json_span_count, trace_requests};
use integration_tests::events::{diff, sort_events};
use integration_tests::{fixture_files, read_json};
use serde_json::Value;

use integration_tests::bridge_bin::bridge;

/// A file in the temp directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &[u8]) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "langfuse-bridge-test-{}-{n}-{name}",
            std::process::id()
        ));
        std::fs::write(&path, contents).expect("writing temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).expect("gzip");
    enc.finish().expect("gzip")
}

fn translate_file(path: &Path, extra: &[&str]) -> Output {
    Command::new(bridge())
        .arg("translate")
        .arg(path)
        .args(extra)
        .output()
        .expect("running langfuse-bridge")
}

fn translate_stdin(input: &[u8]) -> Output {
    let mut child = Command::new(bridge())
        .args(["translate", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running langfuse-bridge");
    // The process may exit before reading everything (bad input): ignore write errors.
    let _ = child.stdin.take().expect("stdin").write_all(input);
    child
        .wait_with_output()
        .expect("waiting for langfuse-bridge")
}

/// Checks a successful run: exit 0, `{"batch":[...]}` with one observation event per span.
fn check_success(what: &str, out: &Output, spans: usize) -> Result<(), String> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(0) {
        return Err(format!("{what}: exit {:?}: {stderr}", out.status.code()));
    }
    let json: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{what}: output is not JSON: {e}"))?;
    let Some(obj) = json.as_object().filter(|o| o.len() == 1) else {
        return Err(format!("{what}: output is not {{\"batch\":[...]}}"));
    };
    let Some(Value::Array(events)) = obj.get("batch") else {
        return Err(format!("{what}: output has no batch array"));
    };
    let observations = events
        .iter()
        .filter(|e| e["type"].as_str().is_some_and(|t| t != "trace-create"))
        .count();
    if observations != spans {
        return Err(format!(
            "{what}: {observations} observation events for {spans} spans"
        ));
    }
    Ok(())
}

/// Checks a failed run: exit 2, exactly one stderr line starting `error:`, nothing on stdout.
fn check_failure(what: &str, out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: stderr {stderr}");
    assert!(out.stdout.is_empty(), "{what}: unexpected stdout");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{what}: stderr {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{what}: stderr {stderr:?}");
}

#[test]
fn every_conformance_input_translates() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for path in fixture_files("conformance") {
        let case = read_json(&path);
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let input = serde_json::to_vec(&case["input"]).unwrap();
        let spans = json_span_count(&case["input"]);
        let file = TempFile::new(&format!("{name}.json"), &input);
        if let Err(e) = check_success(&name, &translate_file(&file.0, &[]), spans) {
            failures.push(e);
        }
        ran += 1;
    }
    assert!(ran > 50, "only {ran} conformance cases found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_captured_trace_request_translates_plain_and_gzipped() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for sdk in ["python-sdk", "js-sdk"] {
        for req in trace_requests(sdk) {
            let what = format!("{sdk}/{}#{}", req.scenario, req.index);
            let spans = req.span_count();
            assert!(spans > 0, "{what}: no spans in the capture");
            let plain = TempFile::new("body", &req.raw);
            let gz = TempFile::new("body.gz", &gzip(&req.raw));
            for (variant, out) in [
                ("plain", translate_file(&plain.0, &[])),
                ("gzip", translate_file(&gz.0, &["--pretty"])),
                ("stdin", translate_stdin(&gzip(&req.raw))),
            ] {
                if let Err(e) = check_success(&format!("{what} ({variant})"), &out, spans) {
                    failures.push(e);
                }
            }
            ran += 1;
        }
    }
    assert!(ran >= 14, "only {ran} trace requests found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn pretty_and_compact_outputs_agree() {
    let req = &trace_requests("python-sdk")[0];
    let file = TempFile::new("body", &req.raw);
    let compact = translate_file(&file.0, &[]);
    let pretty = translate_file(&file.0, &["--pretty"]);
    let strip = |out: &Output| -> Value {
        let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
        for e in v["batch"].as_array_mut().unwrap() {
            let e = e.as_object_mut().unwrap();
            e.remove("id");
            if e["type"] != "trace-create" {
                e.remove("timestamp");
            }
        }
        v
    };
    assert_eq!(strip(&compact), strip(&pretty));
    assert!(String::from_utf8_lossy(&pretty.stdout).contains("\n  \"batch\": ["));
}

#[test]
fn bad_inputs_fail_with_one_error_line() {
    let export = serde_json::to_vec(
        &read_json(
            &fixture_files("conformance")
                .into_iter()
                .find(|p| p.ends_with("root-single-span.json"))
                .expect("root-single-span case"),
        )["input"],
    )
    .unwrap();
    let mut truncated_gzip = gzip(&export);
    truncated_gzip.truncate(truncated_gzip.len() / 2);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage bytes", b"\xff\x00\x13garbage\x99\x98".to_vec()),
        ("truncated gzip", truncated_gzip),
        ("gzip magic only", vec![0x1f, 0x8b]),
        ("invalid JSON", b"{\"resourceSpans\": [".to_vec()),
        ("JSON array", b"[1,2,3]".to_vec()),
        ("JSON, not an export", b"{\"resourceSpans\": 42}".to_vec()),
        (
            "span without id",
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"ab","name":"x"}]}]}]}"#
                .to_vec(),
        ),
        ("truncated protobuf", b"\x0a\xc3\x1b\x0a".to_vec()),
    ];
    for (what, input) in &cases {
        let file = TempFile::new("bad", input);
        check_failure(what, &translate_file(&file.0, &[]));
        check_failure(&format!("{what} (stdin)"), &translate_stdin(input));
    }

    let missing = std::env::temp_dir().join("langfuse-bridge-test-does-not-exist.json");
    check_failure("missing file", &translate_file(&missing, &[]));
    check_failure(
        "directory",
        &translate_file(Path::new(env!("CARGO_MANIFEST_DIR")), &[]),
    );
}

#[test]
fn bad_arguments_fail_with_one_error_line() {
    for args in [
        &["--bogus"][..],
        &["frobnicate"],
        &[],
        &["translate", "--bogus"],
        &["translate", "a.json", "b.json"],
    ] {
        let out = Command::new(bridge()).args(args).output().unwrap();
        check_failure(&format!("{args:?}"), &out);
    }
}

#[test]
fn help_and_version() {
    for flag in ["--help", "-h"] {
        let out = Command::new(bridge()).arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&out.stdout).contains("langfuse-bridge translate"));
    }
    let out = Command::new(bridge()).arg("--version").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("langfuse-bridge {}", env!("CARGO_PKG_VERSION"))
    );
}

/// `--compat server` prints exactly the events the Langfuse server derives (the conformance
/// oracle), and one `warning:` line per observation the server drops.
#[test]
fn compat_server_prints_what_the_langfuse_server_derives() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for path in fixture_files("conformance") {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let case = read_json(&path);
        let input = TempFile::new("case.json", case["input"].to_string().as_bytes());
        let out = translate_file(&input.0, &["--compat", "server"]);
        assert_eq!(out.status.code(), Some(0), "{name}: {out:?}");
        ran += 1;
        let json: Value = serde_json::from_slice(&out.stdout).expect("output is JSON");
        let mut got = json["batch"].as_array().cloned().unwrap_or_default();
        let mut want = case["expected"]["events"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        sort_events(&mut got);
        sort_events(&mut want);
        if let Some(d) = diff("events", &Value::Array(got), &Value::Array(want)) {
            failures.push(format!("{name}: {d}"));
        }
        let warnings = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.starts_with("warning: the Langfuse server drops observation "))
            .count();
        let want_dropped = case["expected"]["dropped"].as_array().map_or(0, Vec::len);
        if warnings != want_dropped {
            failures.push(format!(
                "{name}: {warnings} warnings, {want_dropped} dropped"
            ));
        }
    }
    assert!(ran > 80, "only {ran} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The default (`repair`) keeps observations the server would drop; `--compat server` does not.
#[test]
fn compat_repair_keeps_what_the_server_drops() {
    let case = read_json(
        &integration_tests::fixtures_dir()
            .join("conformance/completion-start-time-rejected-forms.json"),
    );
    let dropped = case["expected"]["dropped"].as_array().map_or(0, Vec::len);
    assert!(dropped > 0, "the case drops observations");
    let input = TempFile::new("rejected.json", case["input"].to_string().as_bytes());
    let count = |extra: &[&str]| {
        let out = translate_file(&input.0, extra);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        json["batch"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(count(&[]), count(&["--compat", "repair"]));
    assert_eq!(count(&[]), count(&["--compat", "server"]) + dropped);
}

/// A 10 MB gzip bomb that inflates to 10 GB is refused with a clear error while the process
/// runs under a 1 GiB address-space limit: inflation stops at the input limit.
#[test]
fn a_gzip_bomb_is_refused_with_bounded_memory() {
    // One member of 64 MiB of zeros compresses to ~64 KB; 160 concatenated members inflate to
    // 10 GiB (the decoder reads every member).
    let member = {
        let mut enc = GzEncoder::new(Vec::new(), Compression::best());
        enc.write_all(&vec![0u8; 64 << 20]).expect("gzip");
        enc.finish().expect("gzip")
    };
    let bomb: Vec<u8> = member
        .iter()
        .copied()
        .cycle()
        .take(member.len() * 160)
        .collect();
    assert!(bomb.len() < 12 << 20, "bomb is {} bytes", bomb.len());
    let file = TempFile::new("bomb.gz", &bomb);
    for extra in [&[][..], &["--max-bytes", "20000000"]] {
        let out = Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 1048576 && exec \"$0\" translate \"$@\"")
            .arg(bridge())
            .arg(&file.0)
            .args(extra)
            .output()
            .expect("running langfuse-bridge under sh");
        check_failure("gzip bomb", &out);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("decompressed body is larger than the limit"),
            "{stderr}"
        );
    }
    // The same limit applies to plain input.
    let big = TempFile::new("big.json", &vec![b' '; 2_000]);
    let out = translate_file(&big.0, &["--max-bytes", "1000"]);
    check_failure("over the limit", &out);
}

//! The local store's safety (issue 18): nobody reads what is not theirs, nothing acknowledged
//! is lost, no trace text drives a terminal.
//!
//! - The database and its `-wal`/`-shm` are `0600` (`serve --to local`, `import`, an existing
//!   world-readable store), like the spool; the exporter's offline file too.
//! - `traces list`/`show`, `import` and error lines print control characters escaped.
//! - The viewer's API answers 400 to more filters than the documented bound, and no answer
//!   carries the database path.
//! - A database deleted under `serve --to local`: `/health` not ready, an error logged, the
//!   spans kept in the spool and stored in the new database after a restart.
//! - One gzip request with a 60 MiB attribute: the process's peak memory stays within the
//!   stated bound.

use crate::bridge_support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bridge_support::{
    bridge_binary, export_bytes, get, gzip, post, start, temp_dir, test_config, wait_until,
};
use langfuse_bridge::Bridge;
use langfuse_bridge::Destination;
use langfuse_local::{IngestionEvent, Store, TraceFilter};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn db_files(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .collect()
}

fn local_config(tag: &str, db: &Path) -> langfuse_bridge::ServeConfig {
    let mut config = test_config(tag, "http://unused", "local");
    config.to = Some(Destination::Local);
    config.upstream = None;
    config.db = db.to_path_buf();
    config
}

fn trace_listed(url: &str, trace_hex: &str) -> bool {
    get(&format!("{url}/api/traces"))
        .is_ok_and(|a| String::from_utf8_lossy(&a.body).contains(trace_hex))
}

/// The trace id of [`export_bytes`]`(first, _)` in hex.
fn trace_hex(first: u64) -> String {
    format!("{first:016x}0000000000000001")
}

#[test]
fn the_store_and_its_journal_files_are_private_to_their_owner() {
    let dir = temp_dir("modes");
    std::fs::create_dir_all(&dir).unwrap();
    // serve --to local
    let db = dir.join("traces.db");
    let bridge = start(Bridge::new(local_config("modes", &db)));
    let answer = post(
        &format!("{}/v1/traces", bridge.url()),
        &[("content-type", "application/x-protobuf")],
        &export_bytes(1, 3),
    )
    .unwrap();
    assert_eq!(answer.status, 200);
    assert!(wait_until(Duration::from_secs(20), || trace_listed(
        &bridge.url(),
        &trace_hex(1)
    )));
    for file in db_files(&db) {
        assert_eq!(mode(&file), 0o600, "{} (serve --to local)", file.display());
    }
    bridge.stop();

    // import into a new store
    let jsonl = dir.join("events.jsonl");
    std::fs::write(
        &jsonl,
        r#"{"id":"e1","type":"trace-create","timestamp":"2026-01-01T00:00:00.000Z","body":{"id":"t1","name":"n"}}
"#,
    )
    .unwrap();
    let imported = dir.join("imported.db");
    let out = Command::new(bridge_binary())
        .arg("import")
        .arg(&jsonl)
        .arg("--db")
        .arg(&imported)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(mode(&imported), 0o600, "import");

    // an existing store left world-readable by an earlier version is tightened on open
    // (The last connection to close removed the -wal and -shm files.)
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::open(&db).unwrap();
    assert_eq!(store.count_traces(&TraceFilter::default()).unwrap(), 1);
    for file in db_files(&db) {
        assert_eq!(mode(&file), 0o600, "{} (reopened)", file.display());
    }
    drop(store);

    // the exporter's offline file holds the same prompts
    let offline = dir.join("offline.jsonl");
    let writer = langfuse_otel_exporter::offline::OfflineWriter::open(&offline).unwrap();
    drop(writer);
    assert_eq!(mode(&offline), 0o600, "offline file");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Names, ids and metadata that try to drive the terminal: a title (OSC 0), the clipboard
/// (OSC 52), clearing the screen (CSI), a bell, a carriage return and newlines that forge rows.
const HOSTILE_NAME: &str =
    "chat\u{1b}]0;owned\u{7}\u{1b}]52;c;cm0gLXJmIH4=\u{7}\u{1b}[2J\u{1b}[H\rforged";
const HOSTILE_USER: &str = "u\n2026-01-01T00:00:00.000Z  fake-id  admin  0 ms  obs=0";
const HOSTILE_SESSION: &str = "s\u{9b}31m\u{8}\u{7f}";

fn hostile_events() -> Vec<IngestionEvent> {
    let lines = [
        serde_json::json!({"id":"e1","type":"trace-create","timestamp":"2026-01-01T00:00:00.000Z",
            "body":{"id":"t-hostile","name":HOSTILE_NAME,"userId":HOSTILE_USER,"sessionId":HOSTILE_SESSION,
                "tags":["a\u{1b}[8m"],"metadata":{"k\u{1b}":"v\u{7}"}}}),
        serde_json::json!({"id":"e2","type":"generation-create","timestamp":"2026-01-01T00:00:00.000Z",
            "body":{"id":"o1","traceId":"t-hostile","name":HOSTILE_NAME,"model":"m\u{1b}[31m",
                "startTime":"2026-01-01T00:00:00.000Z","endTime":"2026-01-01T00:00:01.000Z",
                "level":"ERROR","statusMessage":"boom\r\nforged row","metadata":{"x":"\u{1b}c"}}}),
        serde_json::json!({"id":"e3","type":"score-create","timestamp":"2026-01-01T00:00:00.000Z",
            "body":{"id":"s1","traceId":"t-hostile","name":"q\u{7}","value":"bad\u{1b}[2J"}}),
    ];
    lines
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
}

/// Raw control characters in `text` (a newline only ends a line).
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| c.is_control() && *c != '\n')
        .collect()
}

fn run_bridge(args: &[&std::ffi::OsStr]) -> (String, String, bool) {
    let out = Command::new(bridge_binary())
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

#[test]
fn traces_list_and_show_print_control_characters_escaped() {
    let dir = temp_dir("escape");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("traces.db");
    Store::open(&db).unwrap().ingest(&hostile_events()).unwrap();
    let db_arg = db.as_os_str();

    let (list, _, ok) = run_bridge(&["traces".as_ref(), "list".as_ref(), "--db".as_ref(), db_arg]);
    assert!(ok, "{list}");
    assert_eq!(raw_controls(&list), Vec::<char>::new(), "{list:?}");
    assert_eq!(list.lines().count(), 1, "one trace, one row: {list:?}");
    assert!(list.contains("chat\\u{1b}]0;owned\\u{7}"), "{list}");
    assert!(list.contains("\\u{1b}[2J\\u{1b}[H\\rforged"), "{list}");
    assert!(list.contains("user=u\\n2026-01-01"), "{list}");
    assert!(list.contains("session=s\\u{9b}31m\\u{8}\\u{7f}"), "{list}");

    let (show, _, ok) = run_bridge(&[
        "traces".as_ref(),
        "show".as_ref(),
        "t-hostile".as_ref(),
        "--db".as_ref(),
        db_arg,
    ]);
    assert!(ok, "{show}");
    assert_eq!(raw_controls(&show), Vec::<char>::new(), "{show:?}");
    // The heading, the trace's score line and one observation.
    assert_eq!(show.lines().count(), 3, "{show:?}");
    assert!(show.contains("model=m\\u{1b}[31m"), "{show}");
    assert!(show.contains("boom\\r\\nforged row"), "{show}");
    assert!(show.contains("q\\u{7}=bad\\u{1b}[2J"), "{show}");

    // JSON stays JSON: the escapes are serde's, and the values read back unchanged.
    let (json, _, ok) = run_bridge(&[
        "traces".as_ref(),
        "list".as_ref(),
        "--json".as_ref(),
        "--db".as_ref(),
        db_arg,
    ]);
    assert!(ok);
    assert_eq!(raw_controls(&json), Vec::<char>::new());
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed[0]["name"], HOSTILE_NAME);

    // The import summary and error lines (a file name quoted in the message).
    let hostile_dir = dir.join("in\u{1b}]0;x\u{7}");
    std::fs::create_dir_all(&hostile_dir).unwrap();
    let missing = hostile_dir.join("gone\r.jsonl");
    let (_, err, ok) = run_bridge(&[
        "import".as_ref(),
        missing.as_os_str(),
        "--db".as_ref(),
        db_arg,
    ]);
    assert!(!ok);
    assert_eq!(raw_controls(&err), Vec::<char>::new(), "{err:?}");
    assert!(err.contains("in\\u{1b}]0;x\\u{7}"), "{err}");
    let jsonl = dir.join("events.jsonl");
    std::fs::write(&jsonl, "").unwrap();
    let hostile_db = hostile_dir.join("t\u{1b}[2J.db");
    let (summary, _, ok) = run_bridge(&[
        "import".as_ref(),
        jsonl.as_os_str(),
        "--db".as_ref(),
        hostile_db.as_os_str(),
    ]);
    assert!(ok, "{summary}");
    assert_eq!(raw_controls(&summary), Vec::<char>::new(), "{summary:?}");
    assert!(summary.contains("t\\u{1b}[2J.db"), "{summary}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn too_many_filters_answer_400_without_the_database_path() {
    let dir = temp_dir("filters");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("traces.db");
    let bridge = start(Bridge::new(local_config("filters", &db)));
    let query = |n: usize, key: &str| {
        let params: Vec<String> = (0..n).map(|i| format!("{key}=t{i}")).collect();
        get(&format!("{}/api/traces?{}", bridge.url(), params.join("&"))).unwrap()
    };
    // The documented bound (langfuse_local::MAX_FILTER_CONDITIONS).
    let within = query(100, "tag");
    assert_eq!(
        within.status,
        200,
        "{}",
        String::from_utf8_lossy(&within.body)
    );
    for key in ["tag", "score"] {
        let answer = if key == "score" {
            let params: Vec<String> = (0..1001).map(|i| format!("score=s{i}%3E%3D1")).collect();
            get(&format!("{}/api/traces?{}", bridge.url(), params.join("&"))).unwrap()
        } else {
            query(1001, key)
        };
        let body = String::from_utf8_lossy(&answer.body);
        assert_eq!(answer.status, 400, "{key}: {body}");
        assert!(!body.contains(&*dir.to_string_lossy()), "{body}");
        assert!(!body.contains("traces.db"), "{body}");
    }
    bridge.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `serve --to local` as a process, its stderr collected.
struct Served {
    child: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

impl Served {
    fn start(dir: &Path, db: &Path) -> Served {
        let mut child = Command::new(bridge_binary())
            .args([
                "serve",
                "--to",
                "local",
                "--http",
                "127.0.0.1:0",
                "--grpc",
                "off",
            ])
            .args(["--fsync", "never", "--shutdown-timeout", "1", "--spool"])
            .arg(dir.join("spool"))
            .arg("--db")
            .arg(db)
            .env("NO_COLOR", "1")
            .env_remove("LANGFUSE_BASE_URL")
            .env_remove("LANGFUSE_PUBLIC_KEY")
            .env_remove("LANGFUSE_SECRET_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start langfuse-bridge");
        let log = Arc::new(Mutex::new(String::new()));
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("langfuse-bridge listening")
                    && let Some(rest) = line.split("127.0.0.1:").nth(1)
                {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let _ = port_tx.send(port);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the bridge says where it listens");
        Served {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn health(&self) -> (u16, serde_json::Value) {
        let answer = get(&format!("{}/health", self.url)).unwrap();
        let json = serde_json::from_slice(&answer.body).unwrap_or_default();
        (answer.status, json)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, and wait for the exit.
    fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let exited = wait_until(Duration::from_secs(30), || {
            self.child.try_wait().ok().flatten().is_some()
        });
        if !exited {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    // A failed assertion must not leave the process running.
    fn drop(&mut self) {
        self.terminate();
    }
}

#[test]
fn a_database_deleted_under_a_running_bridge_keeps_the_spans_spooled() {
    let dir = temp_dir("deleted");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("traces.db");
    let served = Served::start(&dir, &db);
    let send = |first: u64| {
        let answer = post(
            &format!("{}/v1/traces", served.url),
            &[("content-type", "application/x-protobuf")],
            &export_bytes(first, 3),
        )
        .unwrap();
        assert_eq!(answer.status, 200);
    };
    send(1);
    assert!(wait_until(Duration::from_secs(30), || trace_listed(
        &served.url,
        &trace_hex(1)
    )));
    assert_eq!(served.health().0, 200);

    for file in db_files(&db) {
        let _ = std::fs::remove_file(file);
    }
    send(100);
    let not_ready = wait_until(Duration::from_secs(30), || {
        let (status, json) = served.health();
        status == 503 && json["ready"] == false
    });
    assert!(not_ready, "health: {:?}", served.health());
    let (_, health) = served.health();
    assert!(
        !health.to_string().contains(&*dir.to_string_lossy()),
        "{health}"
    );
    let logged = wait_until(Duration::from_secs(30), || {
        let log = served.log();
        log.contains("ERROR") && log.contains("deleted")
    });
    assert!(logged, "no error logged:\n{}", served.log());
    // Not committed: the record is still in the spool.
    assert!(
        health["backlog_records"].as_u64().unwrap_or(0) >= 1,
        "{health}"
    );
    assert!(
        !db.exists(),
        "nothing may write a new file behind the store's back"
    );
    served.stop();

    // After a restart the spooled spans land in the new database.
    let served = Served::start(&dir, &db);
    assert!(
        wait_until(Duration::from_secs(30), || trace_listed(
            &served.url,
            &trace_hex(100)
        )),
        "the spooled spans never reached the new store:\n{}",
        served.log()
    );
    assert_eq!(served.health().0, 200);
    served.stop();
    let store = Store::open(&db).unwrap();
    let trace = store.trace(&trace_hex(100)).unwrap().expect("stored");
    assert_eq!(trace.observations.len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The process's peak resident memory (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib * 1024
}

/// The bound the bridge documents: one request costs at most 8 times the decompressed limit
/// (`max_decompressed_bytes`, 64 MiB by default), the local store's page cache included.
const MEMORY_FACTOR: u64 = 8;
const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 64 << 20;

#[test]
fn one_gzip_request_with_a_60_mib_attribute_stays_within_the_memory_bound() {
    let dir = temp_dir("memory");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("traces.db");
    let served = Served::start(&dir, &db);
    // An OTLP/JSON export whose one attribute is 60 MiB, gzipped as concatenated members
    // (the bridge inflates every member): well under 1 MiB on the wire.
    let prefix = br#"{"resourceSpans":[{"scopeSpans":[{"scope":{"name":"app"},"spans":[{"traceId":"f7a0e8d1f86e1d6a80854c2106aa25fb","spanId":"99180b94af7b795a","name":"big","startTimeUnixNano":"1767258000000000000","endTimeUnixNano":"1767258000250000000","attributes":[{"key":"input.value","value":{"stringValue":""#;
    let suffix = br#""}}]}]}]}]}"#;
    let mib = gzip(&[b'x'; 1 << 20]);
    let mut body = gzip(prefix);
    for _ in 0..60 {
        body.extend_from_slice(&mib);
    }
    body.extend_from_slice(&gzip(suffix));
    assert!(body.len() < 1 << 20, "{} bytes on the wire", body.len());

    let pid = served.child.id();
    let idle = peak_rss(pid);
    let answer = post(
        &format!("{}/v1/traces", served.url),
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        &body,
    )
    .unwrap();
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let stored = wait_until(Duration::from_secs(120), || {
        served.health().1["backlog_records"].as_u64() == Some(0)
    });
    assert!(stored, "not forwarded:\n{}", served.log());
    let used = peak_rss(pid).saturating_sub(idle);
    let bound = MEMORY_FACTOR * DEFAULT_MAX_DECOMPRESSED_BYTES;
    served.stop();
    let store = Store::open(&db).unwrap();
    assert_eq!(store.count_traces(&TraceFilter::default()).unwrap(), 1);
    assert!(
        used < bound,
        "one request took {} MiB over the idle process; the bound is {} MiB",
        used >> 20,
        bound >> 20
    );
    eprintln!(
        "peak for one 60 MiB attribute: {} MiB over idle (bound {} MiB)",
        used >> 20,
        bound >> 20
    );
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

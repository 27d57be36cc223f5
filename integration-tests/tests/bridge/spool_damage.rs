//! The spool on a bad day (issue 18):
//!
//! 1. A spool that filled its disk by itself (a small tmpfs, `spool_max_bytes` larger than it)
//!    while the upstream answered 503: `/health` says not ready; once the upstream is back,
//!    requests are answered 2xx again within seconds without a restart, and the upstream gets
//!    exactly the acknowledged spans.
//! 2. A damaged spool (a flipped byte mid-segment, a segment truncated on a frame boundary, a
//!    segment deleted): `spool verify`, `Spool::open` and the `serve` log report each with its
//!    record count, and every record after the damage is still delivered.
//!
//! The first test mounts a tmpfs and therefore runs as root only (it fails with a clear
//! message otherwise); the mount is undone even when the test fails.

use crate::bridge_support;

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bridge_support::{
    bridge_binary, export_bytes, get, post, start, temp_dir, test_config, wait_until,
};
use integration_tests::receiver::{Action, Receiver};
use langfuse_bridge::Bridge;
use langfuse_spool::{Damage, FsyncPolicy, NewRecord, RecordKind, Spool, SpoolConfig, SpoolRecord};

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// A tmpfs of `size` mounted on a fresh directory; unmounted (lazily, so that a file still
/// open cannot keep it) and removed when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(tag: &str, size: &str) -> Tmpfs {
        assert!(
            is_root(),
            "this test mounts a tmpfs (mount -t tmpfs) and must run as root"
        );
        let dir = temp_dir(tag);
        std::fs::create_dir_all(&dir).expect("mount point");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount -t tmpfs failed: {status}");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn span_ids_of(first: u64, n: u64) -> impl Iterator<Item = String> {
    (first..first + n).map(|i| hex(&i.to_be_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_spool_that_filled_its_disk_recovers_without_a_restart_once_the_upstream_is_back() {
    let tmpfs = Tmpfs::mount("spool-full", "256k");
    let up = Arc::new(AtomicBool::new(false));
    let upstream = {
        let up = Arc::clone(&up);
        Receiver::start(move |_, _| {
            if up.load(Ordering::SeqCst) {
                Action::ok()
            } else {
                Action::status(503)
            }
        })
    };
    let mut config = test_config("spool-full", &upstream.base_url(), "langfuse");
    let _ = std::fs::remove_dir_all(&config.spool);
    config.spool = tmpfs.0.join("spool");
    // Larger than the disk: the disk fills first.
    config.spool_max_bytes = 64 << 20;
    let bridge = start(Bridge::new(config));
    let url = format!("{}/v1/traces", bridge.url());
    let health = format!("{}/health", bridge.url());
    let send = |r: u64| {
        post(
            &url,
            &[("content-type", "application/x-protobuf")],
            &export_bytes(r * 20 + 1, 20),
        )
        .expect("bridge answers")
    };

    let mut acknowledged = BTreeSet::new();
    let mut next = 0u64;
    let full = loop {
        assert!(next < 10_000, "the spool never filled the 256 KiB disk");
        let answer = send(next);
        match answer.status {
            200..=299 => acknowledged.extend(span_ids_of(next * 20 + 1, 20)),
            429 => break answer,
            other => panic!("unexpected status {other} while filling the spool"),
        }
        next += 1;
    };
    next += 1;
    assert!(full.header("retry-after").is_some());
    assert!(
        acknowledged.len() > 100,
        "{} spans before full",
        acknowledged.len()
    );

    // Not ready while it refuses.
    let h = get(&health).expect("health answers");
    assert_eq!(
        h.status,
        503,
        "health while full: {}",
        String::from_utf8_lossy(&h.body)
    );
    assert_eq!(h.json()["ready"], serde_json::json!(false));
    assert!(
        h.json()["reason"]
            .as_str()
            .is_some_and(|r| r.contains("full")),
        "{}",
        h.json()
    );

    // The upstream comes back: 2xx again within seconds, no restart.
    up.store(true, Ordering::SeqCst);
    let back_at = Instant::now();
    let mut recovered = false;
    while back_at.elapsed() < Duration::from_secs(30) {
        let answer = send(next);
        next += 1;
        if (200..300).contains(&answer.status) {
            acknowledged.extend(span_ids_of((next - 1) * 20 + 1, 20));
            recovered = true;
            break;
        }
        assert_eq!(answer.status, 429, "unexpected answer while recovering");
        std::thread::sleep(Duration::from_millis(100));
    }
    if !recovered {
        let metrics = get(&format!("{}/metrics", bridge.url()))
            .map(|a| String::from_utf8_lossy(&a.body).into_owned())
            .unwrap_or_default();
        let files = Command::new("ls")
            .args(["-laR"])
            .arg(&tmpfs.0)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        panic!(
            "still 429 30 s after the upstream came back (the spool never freed its space); {} requests upstream\n{files}\n{metrics}",
            upstream.requests().len()
        );
    }
    eprintln!(
        "2xx again {:?} after the upstream came back",
        back_at.elapsed()
    );
    // A few more, to see it keeps accepting.
    for _ in 0..5 {
        let answer = send(next);
        next += 1;
        assert!((200..300).contains(&answer.status), "{}", answer.status);
        acknowledged.extend(span_ids_of((next - 1) * 20 + 1, 20));
    }
    let delivered_all = wait_until(Duration::from_secs(30), || {
        upstream.delivered_span_ids().len() >= acknowledged.len()
    });
    let delivered: BTreeSet<String> = upstream.delivered_span_ids().into_iter().collect();
    assert!(
        delivered_all,
        "{} of {} delivered",
        delivered.len(),
        acknowledged.len()
    );
    assert_eq!(
        delivered, acknowledged,
        "delivered exactly what was acknowledged"
    );
    assert!(wait_until(Duration::from_secs(10), || get(&health)
        .is_ok_and(
            |h| h.status == 200 && h.json()["ready"] == serde_json::json!(true)
        )));
    bridge.stop();
    drop(tmpfs);
}

/// Frames of a segment file: (offset, length, sequence).
fn frames(path: &Path) -> Vec<(usize, usize, u64)> {
    let data = std::fs::read(path).expect("segment");
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= data.len() {
        let len = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        let record: SpoolRecord =
            prost::Message::decode(&data[at + 8..at + 8 + len]).expect("valid frame");
        out.push((at, 8 + len, record.sequence));
        at += 8 + len;
    }
    out
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .expect("segments")
        .map(|e| e.expect("entry").path())
        .collect();
    segs.sort();
    segs
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("copy");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

/// Starts `serve` (binary) on port 0 and returns it, its HTTP address and its log lines.
fn serve(spool: &Path, upstream: &str) -> (Child, String, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(bridge_binary())
        .env_clear()
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--grpc",
            "off",
            "--to",
            "langfuse",
        ])
        .args([
            "--upstream",
            upstream,
            "--fsync",
            "never",
            "--log-format",
            "json",
        ])
        .arg("--spool")
        .arg(spool)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start langfuse-bridge");
    let stderr = child.stderr.take().expect("stderr");
    let lines = Arc::new(Mutex::new(Vec::new()));
    {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                lines.lock().expect("log").push(line);
            }
        });
    }
    let mut addr = None;
    let found = wait_until(Duration::from_secs(60), || {
        addr = lines.lock().expect("log").iter().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["fields"]["http"].as_str().map(str::to_owned)
        });
        addr.is_some()
    });
    assert!(
        found,
        "serve did not start: {:?}",
        lines.lock().expect("log")
    );
    (child, format!("http://{}", addr.unwrap_or_default()), lines)
}

#[test]
fn a_damaged_spool_is_reported_and_every_record_after_the_damage_is_delivered() {
    let dir = temp_dir("spool-damage");
    let config = SpoolConfig {
        fsync: FsyncPolicy::Never,
        segment_bytes: 6000,
        ..SpoolConfig::new(&dir)
    };
    // 80 exports of 5 spans (span ids 1..=400), about 8 to a segment.
    {
        let (spool, _) = Spool::open(config.clone(), &["langfuse"]).expect("spool");
        for r in 0..80u64 {
            spool
                .append(&[NewRecord {
                    kind: RecordKind::OtlpProtobuf,
                    authorization: None,
                    body: export_bytes(r * 5 + 1, 5).into(),
                    item_count: 5,
                    received_unix_ms: 0,
                }])
                .expect("append");
        }
    }
    let clean = Command::new(bridge_binary())
        .args(["spool", "verify"])
        .arg(&dir)
        .output()
        .expect("run spool verify");
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    assert!(String::from_utf8_lossy(&clean.stdout).ends_with("clean\n"));
    let segs = segments(&dir);
    assert!(segs.len() >= 7, "{} segments", segs.len());
    let mut lost_seqs = BTreeSet::new();
    // A flipped byte in the middle of segment 1: its 3rd record.
    let f = frames(&segs[1]);
    let (at, len, seq) = f[2];
    let mut data = std::fs::read(&segs[1]).expect("read");
    data[at + len / 2] ^= 0x20;
    std::fs::write(&segs[1], &data).expect("write");
    lost_seqs.insert(seq);
    let flipped = 1u64;
    // Segment 3 truncated after its 2nd frame.
    let f = frames(&segs[3]);
    let data = std::fs::read(&segs[3]).expect("read");
    std::fs::write(&segs[3], &data[..f[2].0]).expect("truncate");
    lost_seqs.extend(f[2..].iter().map(|x| x.2));
    let truncated = (f.len() - 2) as u64;
    // Segment 5 deleted.
    let f = frames(&segs[5]);
    std::fs::remove_file(&segs[5]).expect("delete");
    lost_seqs.extend(f.iter().map(|x| x.2));
    let deleted = f.len() as u64;
    let total = flipped + truncated + deleted;
    let expected_lines = [
        format!("skipped, {flipped} records lost"),
        format!("({truncated} records lost) after segment"),
        format!("({deleted} records lost) after segment"),
    ];

    // `spool verify`: the same report, exit status 1, nothing changed.
    let before: Vec<Vec<u8>> = segments(&dir)
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    let out = Command::new(bridge_binary())
        .args(["spool", "verify"])
        .arg(&dir)
        .output()
        .expect("run spool verify");
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}");
    assert_eq!(out.status.code(), Some(1), "exit status; report: {report}");
    for line in &expected_lines {
        assert!(
            report.contains(line.as_str()),
            "missing '{line}' in: {report}"
        );
    }
    assert!(
        report.contains(&format!("damaged: {total} records lost")),
        "{report}"
    );
    let after: Vec<Vec<u8>> = segments(&dir)
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .collect();
    assert_eq!(before, after, "spool verify changed the spool");

    // `Spool::open` (on a copy: serve below must find the damage too).
    let copy = temp_dir("spool-damage-copy");
    copy_dir(&dir, &copy);
    let (_, recovery) = Spool::open(
        SpoolConfig {
            fsync: FsyncPolicy::Never,
            ..SpoolConfig::new(&copy)
        },
        &["langfuse"],
    )
    .expect("open");
    let _ = std::fs::remove_dir_all(&copy);
    assert_eq!(recovery.lost_records, total, "{:?}", recovery.damage);
    let counts: Vec<u64> = recovery.damage.iter().map(Damage::lost_records).collect();
    assert_eq!(
        counts,
        vec![flipped, truncated, deleted],
        "{:?}",
        recovery.damage
    );

    // `serve`: warns with the counts at start and delivers everything after the damage.
    let upstream = Receiver::start(|_, _| Action::ok());
    let (mut child, _url, log) = serve(&dir, &upstream.base_url());
    let want: BTreeSet<String> = (0..80u64)
        .filter(|r| !lost_seqs.contains(&(r + 1)))
        .flat_map(|r| span_ids_of(r * 5 + 1, 5))
        .collect();
    let delivered = wait_until(Duration::from_secs(60), || {
        upstream.delivered_span_ids().len() >= want.len()
    });
    let _ = child.kill();
    let _ = child.wait();
    let got: BTreeSet<String> = upstream.delivered_span_ids().into_iter().collect();
    assert!(delivered, "{} of {} spans delivered", got.len(), want.len());
    assert_eq!(got, want, "exactly the records not destroyed are delivered");
    let log = log.lock().expect("log").clone();
    let warnings: Vec<String> = log
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["level"] == "WARN")
        .map(|v| v["fields"].to_string())
        .collect();
    for line in &expected_lines {
        assert!(
            warnings.iter().any(|w| w.contains(line.as_str())),
            "serve log lacks '{line}': {warnings:#?}"
        );
    }
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&format!("\"lost_records\":{total}"))),
        "{warnings:#?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! `langfuse-bridge spool verify DIR`: reads a spool directory without changing anything (no
//! cut, no migration, no lock; safe next to a running bridge, whose appends it may see half
//! written as a torn tail) and prints what `serve` reports when it opens the spool: records
//! found, each destination's cursor, damaged frames skipped, torn tails, sequences missing
//! (a segment truncated, cut or deleted) with the records lost.
//!
//! Exit status: 0 when the spool is clean (a torn tail alone is clean: a crash leaves one, and
//! its records were never acknowledged unless a cursor or the high-water mark says so, which
//! is then reported as missing); 1 when damage was found (records lost, damaged frames
//! skipped, a cursor without a valid position); 2 when the directory cannot be read.
//!
//! ```text
//! $ langfuse-bridge spool verify ./langfuse-bridge-spool
//! spool ./langfuse-bridge-spool: 6 segments, 29936 bytes, 57 records (sequences 1..=80)
//! cursor langfuse: committed 0, in flight up to 0
//! high-water mark: 0
//! damage: segment 00000000000000000013.seg: 513 damaged bytes at offset 1026 skipped, 1 records lost
//! damage: sequences 39..=48 missing (10 records lost) after segment 00000000000000000037.seg: a segment truncated, cut or deleted
//! damage: sequences 61..=72 missing (12 records lost) after segment 00000000000000000049.seg: a segment truncated, cut or deleted
//! damaged: 23 records lost
//! $ echo $?
//! 1
//! ```

use std::fmt::Write as _;
use std::path::PathBuf;

use langfuse_spool::{Inspection, SpoolError, inspect};

/// Arguments of `spool`.
#[derive(Debug, Clone, clap::Args)]
pub struct SpoolArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SpoolCommand,
}

/// The `spool` commands.
#[derive(Debug, Clone, clap::Subcommand)]
#[non_exhaustive]
pub enum SpoolCommand {
    /// Check a spool directory read-only and print what `serve` would report on opening it;
    /// exit status 0 when clean, 1 when damage was found, 2 when it cannot be read.
    Verify(VerifyArgs),
}

/// Arguments of `spool verify`.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// The spool directory (`serve --spool`).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Inspects the spool of `args` (read-only).
pub fn verify(args: &VerifyArgs) -> Result<Inspection, SpoolError> {
    inspect(&args.dir)
}

/// The report `spool verify` prints, one finding per line; the last line is the verdict.
pub fn report(args: &VerifyArgs, inspection: &Inspection) -> String {
    let recovery = &inspection.recovery;
    let mut out = String::new();
    let _ = write!(
        out,
        "spool {}: {} segments, {} bytes, {} records",
        args.dir.display().to_string().escape_debug(),
        inspection.segments,
        inspection.bytes,
        recovery.records
    );
    if let Some((first, last)) = inspection.sequences {
        let _ = write!(out, " (sequences {first}..={last})");
    }
    out.push('\n');
    for (name, cursor) in &inspection.cursors {
        let _ = writeln!(
            out,
            "cursor {}: committed {}, in flight up to {}",
            name.escape_debug(),
            cursor.committed,
            cursor.in_flight_end.max(cursor.committed)
        );
    }
    for name in &recovery.damaged_cursors {
        let _ = writeln!(
            out,
            "damage: cursor {} holds no valid position (its destination reads everything kept again)",
            name.escape_debug()
        );
    }
    let _ = writeln!(out, "high-water mark: {}", inspection.high_water);
    for damage in &recovery.damage {
        let _ = writeln!(out, "damage: {damage}");
    }
    if recovery.is_clean() {
        if recovery.truncated_bytes > 0 {
            let _ = writeln!(
                out,
                "clean: a torn tail of {} bytes (cut when serve opens the spool)",
                recovery.truncated_bytes
            );
        } else {
            out.push_str("clean\n");
        }
    } else {
        let _ = writeln!(out, "damaged: {} records lost", recovery.lost_records);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use langfuse_spool::{FsyncPolicy, NewRecord, RecordKind, Spool, SpoolConfig};

    #[test]
    fn a_clean_spool_is_reported_clean_and_left_unchanged() {
        let dir = std::env::temp_dir().join(format!("lf-verify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = SpoolConfig {
            fsync: FsyncPolicy::Never,
            ..SpoolConfig::new(&dir)
        };
        let (spool, _) = Spool::open(config, &["langfuse"]).unwrap();
        let record = NewRecord {
            kind: RecordKind::OtlpJson,
            authorization: None,
            body: bytes::Bytes::from_static(b"{}"),
            item_count: 0,
            received_unix_ms: 0,
        };
        spool.append(&[record.clone(), record]).unwrap();
        drop(spool);
        let args = VerifyArgs { dir: dir.clone() };
        let inspection = verify(&args).unwrap();
        assert_eq!(inspection.recovery.records, 2);
        assert!(inspection.recovery.is_clean());
        let text = report(&args, &inspection);
        assert!(text.contains("2 records (sequences 1..=2)"), "{text}");
        assert!(text.ends_with("clean\n"), "{text}");
        assert!(
            verify(&VerifyArgs {
                dir: dir.join("nope")
            })
            .is_err()
        );
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from([
            "langfuse-bridge",
            "spool",
            "verify",
            "/some/dir",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            crate::cli::Command::Spool(SpoolArgs { command: SpoolCommand::Verify(v) })
                if v.dir == std::path::Path::new("/some/dir")
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

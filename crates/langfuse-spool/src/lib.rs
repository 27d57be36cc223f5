//! # langfuse-spool
//!
//! The durable spool of `langfuse-bridge serve`: what a client sent is appended here before
//! the bridge answers 2xx, and stays until every destination accepted it.
//!
//! On disk (`DIR` is `--spool`, created with mode `0700`, files `0600` since records keep the
//! clients' credentials):
//!
//! | path | content |
//! |---|---|
//! | `DIR/segments/<first sequence>.seg` | frames `u32 length, u32 CRC-32, SpoolRecord` (schema: `proto/langfuse_bridge_spool.proto`) |
//! | `DIR/cursors/<destination>.cursor` | that destination's `Cursor` (committed, in flight) in a fixed-size file of two checksummed slots, written in place alternately |
//! | `DIR/high-water` | the highest sequence appended (same two-slot file), written at most once a second and on sync |
//!
//! | rule | how |
//! |---|---|
//! | acknowledged means durable | [`Appender::append`] returns after the write and, under [`FsyncPolicy::Always`], after `fdatasync` of the segment and `fsync` of a new segment's directory; concurrent appends share one sync (group commit) |
//! | a crash leaves no garbage | [`Spool::open`] reads every segment and cuts a torn tail: bytes at a segment's end after which no valid frame follows |
//! | nothing expires by age | records are deleted only with their segment, once every destination committed past it |
//! | bounded size | an append that would exceed [`SpoolConfig::max_bytes`], or that hits a full disk, fails with [`SpoolError::Full`] / [`SpoolError::DiskFull`] and leaves no partial frame; [`Spool::refusal`] says so (`/health` answers 503) |
//! | a full disk empties again | committing a cursor writes 64 bytes in place into a file allocated when the spool was opened: it needs no new block, so it works on a full disk, and the garbage collection after it frees the delivered segments (a reader lets go of a collected segment at once, so its blocks are freed); appends succeed again without a restart |
//! | at-least-once with known duplicates | a destination marks what it hands upstream as in flight, then commits after the upstream accepted; after a crash [`Recovery::in_flight`] says how many records may arrive twice |
//! | damage is skipped and reported, never silent | see below; [`Recovery::damage`], the `serve` log at start and `langfuse-bridge spool verify DIR` report it with the records lost |
//!
//! **Cursor files.** A torn write of one slot leaves the other, older slot valid (the slots are
//! in different 512-byte sectors); a cursor file of the previous format (one frame, replaced by
//! a renamed temporary file, which needs a new block and so failed with `ENOSPC` on a full disk)
//! is read and migrated in place on open, so an upgraded bridge keeps its position. On
//! copy-on-write file systems (btrfs, ZFS) an in-place write still allocates; they keep a small
//! reserve for that, but the guarantee is the file system's.
//!
//! **Damage.** A frame is valid when its length fits, its CRC-32 matches, its payload decodes
//! and its sequence continues the order. After an invalid frame the next valid one is searched
//! (first where the damaged frame's header says the next begins, then byte by byte, with a
//! sequence no larger than the skipped bytes could have held); the records in between are
//! counted as lost and logged with segment, offset and bytes, and reading resumes. Readers do
//! the same when damage appears while the bridge runs, and skip sequences that no segment holds.
//! What can be detected, and what cannot:
//!
//! | damage | detected from | reported as |
//! |---|---|---|
//! | bytes changed inside a segment (not its last frame) | checksums | [`Damage::Corrupt`]: bytes skipped, records lost |
//! | a segment deleted, or truncated (on a frame boundary or not), with a later segment kept | the next segment's first sequence (its file name) | [`Damage::Missing`]: the sequences and their count |
//! | the first segment(s) deleted | the lowest committed cursor | [`Damage::Missing`] before the first segment |
//! | the last segment truncated, or its last frames damaged | the high-water mark, and every cursor's committed and in-flight marks | [`Damage::Missing`] after the last segment, for the records these marks cover; records appended in the last second before the bridge stopped abnormally (`kill -9`, power loss) are not covered and their loss is invisible, a torn tail then being indistinguishable from a crash's |
//! | a cursor file damaged (both slots) | its checksums | [`Recovery::damaged_cursors`]; that destination reads everything kept again (duplicates, no loss) |
//!
//! Only sequences not yet committed by every destination count as lost: a gap below every
//! cursor is ordinary garbage collection. Damage stays reported at each start until its
//! segment is collected (records lost count only until every destination committed past
//! them). Sequences are never reused: appends continue after the highest sequence any file
//! mentions.
//!
//! **Code.** One module per part; none imports a module that imports it back:
//!
//! | module | part |
//! |---|---|
//! | `writer` | appends: frames, one write, group commit sync, rotation, cutting a refused append |
//! | `recovery` | opening: directories, scan of every segment, torn tails cut, damage counted; [`inspect`] |
//! | `reader` | [`SpoolReader`]: reading in order, skipping damage |
//! | `cursors` | cursor files, commits, garbage collection |
//! | `spool` | [`Spool`], the handle that ties them together |
//! | `state` | what they share: file layout, index, writer state |
//! | `fs` | file access behind a trait (`std::fs` here; a simulated disk with crashes and `ENOSPC` in the tests) |
//! | `frame`, `scan`, `slots`, `record` | frames, damage search, two-slot files, the on-disk messages |
//!
//! ```
//! use langfuse_spool::{FsyncPolicy, NewRecord, RecordKind, Spool, SpoolConfig};
//!
//! let dir = std::env::temp_dir().join(format!("spool-doc-{}", std::process::id()));
//! let config = SpoolConfig { fsync: FsyncPolicy::Never, ..SpoolConfig::new(&dir) };
//! let (spool, _) = Spool::open(config.clone(), &["upstream"]).unwrap();
//! let record = NewRecord {
//!     kind: RecordKind::OtlpJson,
//!     authorization: None,
//!     body: bytes::Bytes::from_static(b"{\"resourceSpans\":[]}"),
//!     item_count: 0,
//!     received_unix_ms: 0,
//! };
//! assert_eq!(spool.append(&[record.clone(), record]).unwrap(), vec![1, 2]);
//! let mut reader = spool.reader("upstream").unwrap();
//! let records = reader.read(10, 1 << 20).unwrap();
//! reader.commit(records[0].sequence).unwrap();
//! drop((reader, spool));
//! // After a restart only the uncommitted record is read again.
//! let (spool, recovery) = Spool::open(config, &["upstream"]).unwrap();
//! assert_eq!(recovery.records, 2);
//! let mut reader = spool.reader("upstream").unwrap();
//! assert_eq!(reader.read(10, 1 << 20).unwrap()[0].sequence, 2);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod appender;
mod config;
mod cursors;
mod error;
mod frame;
mod fs;
mod reader;
mod record;
mod recovery;
mod scan;
mod slots;
mod spool;
mod state;
mod writer;

pub use self::appender::{Appender, AppenderThread};
pub use self::config::{FsyncPolicy, SpoolConfig};
pub use self::error::SpoolError;
pub use self::reader::SpoolReader;
pub use self::record::{Cursor, NewRecord, RecordKind, SpoolRecord};
pub use self::recovery::{Inspection, Recovery, inspect};
pub use self::scan::Damage;
pub use self::spool::{Spool, SpoolStats};

#[cfg(test)]
mod tests;

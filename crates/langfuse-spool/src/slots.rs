//! Small state files written in place (cursors, the high-water mark): a fixed-size file with
//! two checksummed slots written alternately.
//!
//! | offset | content |
//! |---|---|
//! | 0 | magic `LFBSLOT1` |
//! | 512 | slot 0: a frame (`u32 length, u32 CRC-32, payload`), payload `u64 LE generation ++ value` |
//! | 1024 | slot 1: the same |
//!
//! The newest valid slot (highest generation) holds the value. A write goes to the other slot
//! (`generation % 2`), so a torn write never loses the previous value; the slots sit in
//! different 512-byte sectors, so a torn sector damages one of them only. The file is written
//! whole when created and never grows, so a later write needs no new block: it cannot fail with
//! `ENOSPC`, and committing a cursor on a full disk (so that garbage collection frees space)
//! always works. (Copy-on-write file systems such as btrfs or ZFS allocate on every write; they
//! keep a reserve for such small writes but give no guarantee.)
//!
//! Files of the previous format (one frame at offset 0, rewritten with a temporary file and a
//! rename) are read as they are and migrated in place on open: the value goes to slot 1 first,
//! then the magic overwrites the old frame, so a crash at any point leaves one readable value,
//! and the file stays within its first 4 KiB block (no new block on common file systems).

use std::io;
use std::path::Path;

use crate::frame::{self, Decoded, HEADER_LEN};
use crate::fs::{Fs, FsFile, OpenMode};

const MAGIC: &[u8; 8] = b"LFBSLOT1";
const SLOT_OFFSETS: [u64; 2] = [512, 1024];
const SLOT_LEN: usize = 64;
/// Length of a slot file.
pub const FILE_LEN: u64 = 1024 + SLOT_LEN as u64;
/// Largest value a slot holds.
pub const MAX_VALUE: usize = SLOT_LEN - HEADER_LEN - 8;

/// What a slot file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    /// No file.
    Absent,
    /// The newest valid slot.
    Current {
        /// Its generation.
        generation: u64,
        /// Its value.
        value: Vec<u8>,
    },
    /// The previous format: one frame at offset 0.
    Legacy(Vec<u8>),
    /// A file without any valid value.
    Damaged,
}

/// Reads a slot file without changing it.
pub fn read(fs: &dyn Fs, path: &Path) -> io::Result<Contents> {
    match fs.read(path) {
        Ok(data) => Ok(parse(&data)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Contents::Absent),
        Err(e) => Err(e),
    }
}

fn parse(data: &[u8]) -> Contents {
    let mut best: Option<(u64, Vec<u8>)> = None;
    for offset in SLOT_OFFSETS {
        let start = offset as usize;
        let Some(slot) = data.get(start..(start + SLOT_LEN).min(data.len())) else {
            continue;
        };
        if let Decoded::Frame(payload, _) = frame::decode(slot)
            && payload.len() >= 8
        {
            let generation = u64::from_le_bytes(payload[..8].try_into().unwrap_or_default());
            if best.as_ref().is_none_or(|(g, _)| generation > *g) {
                best = Some((generation, payload[8..].to_vec()));
            }
        }
    }
    if let Some((generation, value)) = best {
        return Contents::Current { generation, value };
    }
    match frame::decode(data) {
        Decoded::Frame(payload, _) => Contents::Legacy(payload.to_vec()),
        _ => Contents::Damaged,
    }
}

fn encode_slot(generation: u64, value: &[u8]) -> io::Result<Vec<u8>> {
    if value.len() > MAX_VALUE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "value too large for a slot",
        ));
    }
    let mut payload = generation.to_le_bytes().to_vec();
    payload.extend_from_slice(value);
    let mut slot = Vec::with_capacity(SLOT_LEN);
    frame::encode_into(&payload, &mut slot);
    slot.resize(SLOT_LEN, 0);
    Ok(slot)
}

/// An open slot file.
#[derive(Debug)]
pub struct SlotFile {
    file: Box<dyn FsFile>,
    generation: u64,
}

/// What [`SlotFile::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The stored value (of either format).
    Value(Vec<u8>),
    /// No file: created holding the initial value.
    Created,
    /// A file without a valid value: rewritten holding the initial value.
    Damaged,
}

impl SlotFile {
    /// Opens the file at `path`, creating it (holding `initial`) when absent, migrating the
    /// previous format in place, rewriting a damaged one. `durable`: sync what it writes.
    pub fn open(
        fs: &dyn Fs,
        path: &Path,
        initial: &[u8],
        durable: bool,
    ) -> io::Result<(SlotFile, Opened)> {
        match read(fs, path)? {
            Contents::Absent => {
                // Created whole under another name, so a crash never leaves a partial file.
                let tmp = path.with_extension("new");
                let mut data = vec![0u8; FILE_LEN as usize];
                data[..MAGIC.len()].copy_from_slice(MAGIC);
                let slot = encode_slot(1, initial)?;
                let at = SLOT_OFFSETS[1] as usize;
                data[at..at + SLOT_LEN].copy_from_slice(&slot);
                {
                    let file = fs.open(&tmp, OpenMode::Truncate)?;
                    file.write_at(&data, 0)?;
                    if durable {
                        file.sync_data()?;
                    }
                }
                fs.rename(&tmp, path)?;
                if durable && let Some(parent) = path.parent() {
                    fs.sync_dir(parent)?;
                }
                let file = fs.open(path, OpenMode::ReadWrite)?;
                Ok((
                    SlotFile {
                        file,
                        generation: 1,
                    },
                    Opened::Created,
                ))
            }
            Contents::Current { generation, value } => Ok((
                SlotFile {
                    file: fs.open(path, OpenMode::ReadWrite)?,
                    generation,
                },
                Opened::Value(value),
            )),
            Contents::Legacy(value) => {
                let mut slot = SlotFile {
                    file: fs.open(path, OpenMode::ReadWrite)?,
                    generation: 0,
                };
                let old_len = slot.file.size()?;
                // The old frame stays readable until slot 1 holds the value.
                slot.file.set_len(FILE_LEN)?;
                slot.write(&value, durable)?;
                let mut head =
                    vec![0u8; old_len.clamp(MAGIC.len() as u64, SLOT_OFFSETS[0]) as usize];
                head[..MAGIC.len()].copy_from_slice(MAGIC);
                slot.file.write_at(&head, 0)?;
                if durable {
                    slot.file.sync_data()?;
                }
                Ok((slot, Opened::Value(value)))
            }
            Contents::Damaged => {
                let mut slot = SlotFile {
                    file: fs.open(path, OpenMode::ReadWrite)?,
                    generation: 0,
                };
                slot.file.set_len(FILE_LEN)?;
                slot.file.write_at(MAGIC, 0)?;
                slot.write(initial, durable)?;
                Ok((slot, Opened::Damaged))
            }
        }
    }

    /// Stores `value` in the older slot (in place; `durable`: `fdatasync` after).
    pub fn write(&mut self, value: &[u8], durable: bool) -> io::Result<()> {
        let generation = self.generation + 1;
        let slot = encode_slot(generation, value)?;
        self.file
            .write_at(&slot, SLOT_OFFSETS[(generation % 2) as usize])?;
        if durable {
            self.file.sync_data()?;
        }
        // Only a complete write moves on: after a failed one the same slot is written again,
        // so the other slot keeps the last good value.
        self.generation = generation;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::fs::StdFs;

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("lf-slots-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn values_alternate_and_a_torn_slot_keeps_the_previous_value() {
        let d = dir("torn");
        let path = d.join("x.cursor");
        let (mut slot, opened) = SlotFile::open(&StdFs, &path, b"a", false).unwrap();
        assert_eq!(opened, Opened::Created);
        assert_eq!(fs::metadata(&path).unwrap().len(), FILE_LEN);
        for v in [b"b", b"c", b"d"] {
            slot.write(v, false).unwrap();
            assert_eq!(
                read(&StdFs, &path).unwrap(),
                Contents::Current {
                    generation: slot.generation,
                    value: v.to_vec()
                }
            );
        }
        assert_eq!(fs::metadata(&path).unwrap().len(), FILE_LEN);
        // Tear the newest slot: the previous value is read.
        let newest = SLOT_OFFSETS[(slot.generation % 2) as usize];
        slot.file.write_at(&[0xff; 3], newest + 9).unwrap();
        assert_eq!(
            read(&StdFs, &path).unwrap(),
            Contents::Current {
                generation: slot.generation - 1,
                value: b"c".to_vec()
            }
        );
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn the_previous_format_is_read_and_migrated_in_place() {
        let d = dir("legacy");
        let path = d.join("x.cursor");
        let mut old = Vec::new();
        frame::encode_into(b"old value", &mut old);
        fs::write(&path, &old).unwrap();
        assert_eq!(
            read(&StdFs, &path).unwrap(),
            Contents::Legacy(b"old value".to_vec())
        );
        let (mut slot, opened) = SlotFile::open(&StdFs, &path, b"", false).unwrap();
        assert_eq!(opened, Opened::Value(b"old value".to_vec()));
        assert_eq!(fs::read(&path).unwrap()[..8], MAGIC[..]);
        slot.write(b"new", false).unwrap();
        assert_eq!(
            read(&StdFs, &path).unwrap(),
            Contents::Current {
                generation: 2,
                value: b"new".to_vec()
            }
        );
        // Reopened: the value, no migration again.
        let (_, opened) = SlotFile::open(&StdFs, &path, b"", false).unwrap();
        assert_eq!(opened, Opened::Value(b"new".to_vec()));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_file_without_a_valid_value_is_reported() {
        let d = dir("damaged");
        let path = d.join("x.cursor");
        fs::write(&path, [7u8; 40]).unwrap();
        assert_eq!(read(&StdFs, &path).unwrap(), Contents::Damaged);
        let (_, opened) = SlotFile::open(&StdFs, &path, b"init", false).unwrap();
        assert_eq!(opened, Opened::Damaged);
        assert!(
            matches!(read(&StdFs, &path).unwrap(), Contents::Current { value, .. } if value == b"init")
        );
        let _ = fs::remove_dir_all(&d);
    }
}

//! A simulated disk for the spool's tests: what was synced is kept apart from what was not,
//! a crash loses or tears the latter, and writes fail with `ENOSPC` past a capacity.
//!
//! | operation | what becomes durable |
//! |---|---|
//! | a write, `set_len` | nothing: recorded as a pending change of the file |
//! | `sync_data`, `sync_all` | the file's content (its pending changes) |
//! | creating, removing, renaming an entry | nothing: the directory's entries change |
//! | `sync_dir` | that directory's entries (files and subdirectories) |
//!
//! [`SimFs::crash`] keeps only durable directory entries; each file kept gets its durable
//! content with the first few of its pending changes applied, the next one possibly only in
//! part (a torn write), as chosen by a seed. Space counts the bytes of files that have a name
//! or an open handle (an unlinked open file keeps its blocks, as on a real disk).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::fs::{Fs, FsFile, OpenMode};

/// `ENOSPC`.
const NO_SPACE: i32 = 28;

/// A pending (not yet synced) change of a file.
#[derive(Debug, Clone)]
enum Change {
    Write { at: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default)]
struct Node {
    data: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<Change>,
    /// Whether a directory entry names it.
    linked: bool,
    /// Open handles.
    open: usize,
}

impl Node {
    fn apply(data: &mut Vec<u8>, change: &Change) {
        match change {
            Change::Write { at, data: bytes } => {
                let at = *at as usize;
                if data.len() < at + bytes.len() {
                    data.resize(at + bytes.len(), 0);
                }
                data[at..at + bytes.len()].copy_from_slice(bytes);
            }
            Change::SetLen(len) => data.resize(*len as usize, 0),
        }
    }

    fn sync(&mut self) {
        self.durable = self.data.clone();
        self.pending.clear();
    }
}

type NodeRef = Arc<Mutex<Node>>;

fn guard(node: &NodeRef) -> MutexGuard<'_, Node> {
    node.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct Disk {
    dirs: BTreeSet<PathBuf>,
    durable_dirs: BTreeSet<PathBuf>,
    files: BTreeMap<PathBuf, NodeRef>,
    durable_files: BTreeMap<PathBuf, NodeRef>,
    /// Every node ever made since the last crash (for space accounting).
    nodes: Vec<Weak<Mutex<Node>>>,
    capacity: Option<u64>,
}

impl Disk {
    fn used(&self) -> u64 {
        self.nodes
            .iter()
            .filter_map(Weak::upgrade)
            .map(|n| {
                let n = guard(&n);
                if n.linked || n.open > 0 {
                    n.data.len() as u64
                } else {
                    0
                }
            })
            .sum()
    }

    fn parent_exists(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(p) if self.dirs.contains(p) => Ok(()),
            _ => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn unlink(&mut self, path: &Path) -> Option<NodeRef> {
        let node = self.files.remove(path)?;
        guard(&node).linked = false;
        Some(node)
    }

    fn link(&mut self, path: PathBuf, node: NodeRef) {
        guard(&node).linked = true;
        self.unlink(&path);
        self.files.insert(path, node);
    }
}

/// What a crash kept of the data that was not synced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct CrashReport {
    /// Per file kept: bytes past its durable length that the crash kept.
    pub unsynced_kept: BTreeMap<PathBuf, u64>,
}

/// The simulated disk; clones share it.
#[derive(Debug, Clone)]
pub(super) struct SimFs {
    disk: Arc<Mutex<Disk>>,
}

/// A small deterministic generator (splitmix64), so that a crash is reproducible from its
/// seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..=max`.
    fn upto(&mut self, max: u64) -> u64 {
        self.next() % (max + 1)
    }
}

impl SimFs {
    /// A disk holding the durable directories `roots` (and their ancestors).
    pub fn new(roots: &[&Path]) -> SimFs {
        let mut disk = Disk::default();
        for root in roots {
            for dir in root.ancestors() {
                disk.dirs.insert(dir.to_path_buf());
                disk.durable_dirs.insert(dir.to_path_buf());
            }
        }
        SimFs {
            disk: Arc::new(Mutex::new(disk)),
        }
    }

    fn disk(&self) -> MutexGuard<'_, Disk> {
        self.disk
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Bytes in use.
    pub fn used(&self) -> u64 {
        self.disk().used()
    }

    /// Fails writes that would take the disk past `capacity` bytes (None: no limit).
    pub fn set_capacity(&self, capacity: Option<u64>) {
        self.disk().capacity = capacity;
    }

    /// The capacity.
    pub fn capacity(&self) -> Option<u64> {
        self.disk().capacity
    }

    /// The files directly in `dir` with their current content, by path.
    pub fn files_in(&self, dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        self.disk()
            .files
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, n)| (p.clone(), guard(n).data.clone()))
            .collect()
    }

    /// XORs `mask` into byte `at` of the file at `path`, durably (damage on the medium).
    pub fn corrupt(&self, path: &Path, at: usize, mask: u8) {
        let disk = self.disk();
        let node = disk.files.get(path).expect("the file to damage exists");
        let mut n = guard(node);
        n.data[at] ^= mask;
        n.durable[at] ^= mask;
    }

    /// The power fails: unsynced directory entries are lost, each remaining file keeps its
    /// durable content plus a prefix of its pending changes chosen by `seed` (the last one
    /// possibly torn at any byte). Handles opened before the crash no longer reach the disk.
    pub fn crash(&self, seed: u64) -> CrashReport {
        let mut rng = Rng(seed);
        let mut disk = self.disk();
        let mut report = CrashReport::default();
        disk.dirs = disk.durable_dirs.clone();
        let mut files = BTreeMap::new();
        let mut nodes = Vec::new();
        let durable_files = std::mem::take(&mut disk.durable_files);
        for (path, node) in &durable_files {
            if !path.parent().is_some_and(|p| disk.dirs.contains(p)) {
                continue;
            }
            let old = guard(node);
            let mut data = old.durable.clone();
            let applied = rng.upto(old.pending.len() as u64) as usize;
            for change in &old.pending[..applied] {
                Node::apply(&mut data, change);
            }
            if let Some(Change::Write { at, data: bytes }) = old.pending.get(applied)
                && rng.upto(1) == 1
            {
                let torn = rng.upto(bytes.len() as u64) as usize;
                Node::apply(
                    &mut data,
                    &Change::Write {
                        at: *at,
                        data: bytes[..torn].to_vec(),
                    },
                );
            }
            let kept = (data.len() as u64).saturating_sub(old.durable.len() as u64);
            if kept > 0 {
                report.unsynced_kept.insert(path.clone(), kept);
            }
            let fresh = Arc::new(Mutex::new(Node {
                durable: data.clone(),
                data,
                pending: Vec::new(),
                linked: true,
                open: 0,
            }));
            nodes.push(Arc::downgrade(&fresh));
            files.insert(path.clone(), fresh);
        }
        disk.durable_files = files.clone();
        disk.files = files;
        disk.nodes = nodes;
        report
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk();
        for dir in path.ancestors() {
            disk.dirs.insert(dir.to_path_buf());
        }
        Ok(())
    }

    fn create_private_dir(&self, path: &Path) -> io::Result<bool> {
        let mut disk = self.disk();
        disk.parent_exists(path)?;
        if disk.files.contains_key(path) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        Ok(disk.dirs.insert(path.to_path_buf()))
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.disk().dirs.contains(path)
    }

    fn exists(&self, path: &Path) -> bool {
        let disk = self.disk();
        disk.dirs.contains(path) || disk.files.contains_key(path)
    }

    fn make_private(&self, path: &Path) -> io::Result<()> {
        if self.exists(path) {
            Ok(())
        } else {
            Err(io::Error::from(io::ErrorKind::NotFound))
        }
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk();
        if !disk.dirs.contains(path) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let here = |p: &PathBuf| p.parent() == Some(path);
        let current: Vec<(PathBuf, NodeRef)> = disk
            .files
            .iter()
            .filter(|(p, _)| here(p))
            .map(|(p, n)| (p.clone(), Arc::clone(n)))
            .collect();
        disk.durable_files.retain(|p, _| !here(p));
        disk.durable_files.extend(current);
        let dirs: Vec<PathBuf> = disk.dirs.iter().filter(|p| here(p)).cloned().collect();
        disk.durable_dirs.retain(|p| !here(p));
        disk.durable_dirs.extend(dirs);
        Ok(())
    }

    fn list(&self, path: &Path) -> io::Result<Vec<String>> {
        let disk = self.disk();
        if !disk.dirs.contains(path) {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let names = disk
            .files
            .keys()
            .chain(disk.dirs.iter())
            .filter(|p| p.parent() == Some(path))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect();
        Ok(names)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let disk = self.disk();
        let node = disk
            .files
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(guard(node).data.clone())
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FsFile>> {
        let mut disk = self.disk();
        let node = match (disk.files.get(path).cloned(), mode) {
            (Some(node), OpenMode::Truncate) => {
                let mut n = guard(&node);
                n.data.clear();
                n.pending.push(Change::SetLen(0));
                drop(n);
                node
            }
            (Some(node), _) => node,
            (None, OpenMode::Read | OpenMode::ReadWrite) => {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
            (None, OpenMode::Append | OpenMode::Truncate) => {
                disk.parent_exists(path)?;
                let node = NodeRef::default();
                disk.nodes.push(Arc::downgrade(&node));
                disk.link(path.to_path_buf(), Arc::clone(&node));
                node
            }
        };
        guard(&node).open += 1;
        Ok(Box::new(SimFile {
            node,
            disk: Arc::clone(&self.disk),
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.disk()
            .unlink(path)
            .map(drop)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.disk();
        disk.parent_exists(to)?;
        let node = disk
            .unlink(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        disk.link(to.to_path_buf(), node);
        Ok(())
    }
}

/// A file of [`SimFs`].
#[derive(Debug)]
struct SimFile {
    node: NodeRef,
    disk: Arc<Mutex<Disk>>,
}

impl SimFile {
    /// Writes what fits of `data` at `at`; ENOSPC when not all of it did.
    fn write(&self, data: &[u8], at: u64) -> io::Result<()> {
        // Disk before node, as everywhere.
        let disk = self
            .disk
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let free = disk
            .capacity
            .map(|c| c.saturating_sub(disk.used()))
            .unwrap_or(u64::MAX);
        let mut n = guard(&self.node);
        let growth = (at + data.len() as u64).saturating_sub(n.data.len() as u64);
        let fits = if growth <= free {
            data.len()
        } else {
            // Only bytes within the file's length or the free space are written.
            (n.data.len() as u64 + free).saturating_sub(at) as usize
        };
        if fits > 0 {
            let change = Change::Write {
                at,
                data: data[..fits].to_vec(),
            };
            Node::apply(&mut n.data, &change);
            n.pending.push(change);
        }
        if fits < data.len() {
            return Err(io::Error::from_raw_os_error(NO_SPACE));
        }
        Ok(())
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut n = guard(&self.node);
        n.open = n.open.saturating_sub(1);
    }
}

impl FsFile for SimFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let at = guard(&self.node).data.len() as u64;
        self.write(data, at)
    }

    fn write_at(&self, data: &[u8], at: u64) -> io::Result<()> {
        self.write(data, at)
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        let n = guard(&self.node);
        let at = at as usize;
        let src = n
            .data
            .get(at..at + buf.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(guard(&self.node).data.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let disk = self
            .disk
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let free = disk
            .capacity
            .map(|c| c.saturating_sub(disk.used()))
            .unwrap_or(u64::MAX);
        let mut n = guard(&self.node);
        if len.saturating_sub(n.data.len() as u64) > free {
            return Err(io::Error::from_raw_os_error(NO_SPACE));
        }
        let change = Change::SetLen(len);
        Node::apply(&mut n.data, &change);
        n.pending.push(change);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        guard(&self.node).sync();
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }
}

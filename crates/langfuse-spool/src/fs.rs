//! File access behind a trait, so that tests can simulate crashes and full disks.
//!
//! The spool reaches its files only through [`Fs`] and the [`FsFile`]s it opens: [`StdFs`]
//! (on `std::fs`) in production; in the tests a simulated disk that keeps what was synced
//! apart from what was not, loses or tears the latter in a simulated crash, and fails writes
//! with `ENOSPC` past a capacity.
//!
//! Why `dyn` and not a type parameter: each call is one dynamic dispatch (a few nanoseconds)
//! next to the system call it makes (a microsecond or more), and the public types stay
//! free of a parameter that only tests set. Measured against the code before the trait
//! (`benches/append.rs`, and a fixed workload under `strace -c` and `time`): the same system
//! calls per append and the same CPU time.
//!
//! | operation | used for |
//! |---|---|
//! | [`Fs::create_private_dir`], [`Fs::create_dir_all`], [`Fs::sync_dir`] | the spool's directories; making new entries durable |
//! | [`Fs::list`], [`Fs::read`], [`Fs::is_dir`], [`Fs::exists`] | recovery and inspection |
//! | [`Fs::open`] | segments (append, read), slot files (write in place) |
//! | [`Fs::rename`] | a slot file created whole under another name |
//! | [`Fs::remove`] | garbage collection |
//! | [`Fs::make_private`] | segments written by earlier versions |
//! | [`FsFile::append`], [`FsFile::set_len`] | appending frames; cutting a failed append or a torn tail |
//! | [`FsFile::write_at`], [`FsFile::read_at`], [`FsFile::size`] | slot files; readers |
//! | [`FsFile::sync_data`], [`FsFile::sync_all`] | durability |

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Read and written in place; the file must exist.
    ReadWrite,
    /// Created (owner-only) when absent; writes go to its end.
    Append,
    /// Created (owner-only) or emptied; written in place.
    Truncate,
}

/// The file system operations the spool needs.
pub(crate) trait Fs: Send + Sync + fmt::Debug {
    /// Creates `path` and its missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates an owner-only directory (`0700`); true when it was created, false when it
    /// existed (its mode is then set to `0700`).
    fn create_private_dir(&self, path: &Path) -> io::Result<bool>;
    /// Whether `path` is a directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// Whether anything is at `path`.
    fn exists(&self, path: &Path) -> bool;
    /// Makes a file owner-only (`0600`).
    fn make_private(&self, path: &Path) -> io::Result<()>;
    /// Makes the entries of directory `path` durable (`fsync` of the directory).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of directory `path` (names that are not UTF-8 are left out).
    fn list(&self, path: &Path) -> io::Result<Vec<String>>;
    /// The whole content of the file at `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Opens the file at `path`.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FsFile>>;
    /// Removes the file at `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
}

/// An open file.
pub(crate) trait FsFile: Send + Sync + fmt::Debug {
    /// Writes all of `data` at the end (files opened with [`OpenMode::Append`]); after an
    /// error part of it may have been written.
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Writes all of `data` at offset `at`.
    fn write_at(&self, data: &[u8], at: u64) -> io::Result<()>;
    /// Fills `buf` from offset `at` (an error when the file ends before).
    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<()>;
    /// The file's length.
    fn size(&self) -> io::Result<u64>;
    /// Cuts or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Makes the data and metadata durable (`fsync`).
    fn sync_all(&self) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StdFs;

impl Fs for StdFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn create_private_dir(&self, path: &Path) -> io::Result<bool> {
        match fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn make_private(&self, path: &Path) -> io::Result<()> {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn list(&self, path: &Path) -> io::Result<Vec<String>> {
        Ok(fs::read_dir(path)?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn FsFile>> {
        let mut options = OpenOptions::new();
        match mode {
            OpenMode::Read => options.read(true),
            OpenMode::ReadWrite => options.read(true).write(true),
            OpenMode::Append => options.create(true).mode(0o600).append(true).read(true),
            OpenMode::Truncate => options.create(true).mode(0o600).write(true).truncate(true),
        };
        Ok(Box::new(StdFile(options.open(path)?)))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
}

/// A file of [`StdFs`].
#[derive(Debug)]
struct StdFile(File);

impl FsFile for StdFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.0.write_all(data)
    }

    fn write_at(&self, data: &[u8], at: u64) -> io::Result<()> {
        self.0.write_all_at(data, at)
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, at)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
}

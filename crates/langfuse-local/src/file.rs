//! The database file on disk: private modes, and its identity while open.
//!
//! The store holds every prompt and answer an application sent, so the database file and
//! SQLite's `-wal` and `-shm` files beside it are readable by their owner only (`0600`, like
//! the bridge's spool). A new file is created with that mode before SQLite opens it (SQLite
//! gives `-wal` and `-shm` the main file's mode); an existing store's files lose any group and
//! other permissions when opened.
//!
//! A file deleted or replaced under an open connection does not stop SQLite: it goes on
//! writing into the unlinked inode, and everything written is lost when the process ends. The
//! store records the file's `(device, inode)` at open and compares the path's before every
//! commit ([`Store::check_file`](crate::Store::check_file)).

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of the database file and its `-wal` and `-shm` files.
pub const DB_FILE_MODE: u32 = 0o600;

/// Which file a path named when the store opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    dev: u64,
    ino: u64,
}

/// What happened to the database file since the store opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileState {
    /// The path still names the opened file.
    Same,
    /// Nothing at the path any more.
    Deleted,
    /// Another file at the path.
    Replaced,
}

/// The database file and its SQLite companions.
pub(crate) fn db_files(path: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [path.to_path_buf(), with("-wal"), with("-shm")]
}

/// Creates the database file with [`DB_FILE_MODE`] when it is missing, and takes group and
/// other permissions away from the files of an existing store.
pub(crate) fn prepare(path: &Path) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(DB_FILE_MODE)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    tighten(path)
}

/// Takes group and other permissions away from the database file and its `-wal`/`-shm`
/// (files the process may not change, such as another user's, are left as they are).
pub(crate) fn tighten(path: &Path) -> io::Result<()> {
    for file in db_files(path) {
        let meta = match fs::metadata(&file) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            match fs::set_permissions(&file, fs::Permissions::from_mode(mode & 0o7700)) {
                Ok(()) => {}
                // Another user's store (read with `traces list`), or a read-only file
                // system: only its owner can tighten it.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// The identity of the file at `path` now.
pub(crate) fn identity(path: &Path) -> io::Result<FileIdentity> {
    let meta = fs::metadata(path)?;
    Ok(FileIdentity {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

/// Compares the file at `path` with the one opened.
pub(crate) fn state(path: &Path, opened: FileIdentity) -> io::Result<FileState> {
    match identity(path) {
        Ok(now) if now == opened => Ok(FileState::Same),
        Ok(_) => Ok(FileState::Replaced),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(FileState::Deleted),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, StoreError};

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lf-store-file-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn event(id: &str) -> crate::IngestionEvent {
        serde_json::from_str(&format!(
            r#"{{"type":"trace-create","timestamp":"2026-01-01T00:00:00.000Z","body":{{"id":"{id}","name":"n"}}}}"#
        ))
        .unwrap()
    }

    /// After an ingest through `store`, the database at `db` and its journal files have
    /// [`DB_FILE_MODE`].
    fn assert_private_after_ingest(store: &Store, db: &Path) {
        store.ingest(&[event("t1")]).unwrap();
        for file in db_files(db) {
            assert_eq!(mode(&file), DB_FILE_MODE, "{}", file.display());
        }
    }

    #[test]
    fn a_new_store_and_its_journal_files_are_private() {
        let dir = temp("new");
        let db = dir.join("t.db");
        let store = Store::open(&db).unwrap();
        assert_private_after_ingest(&store, &db);
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn an_existing_world_readable_store_is_tightened_on_open() {
        let dir = temp("old");
        let db = dir.join("t.db");
        drop(Store::open(&db).unwrap());
        for file in db_files(&db) {
            if file.exists() {
                fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
        let store = Store::open(&db).unwrap();
        assert_private_after_ingest(&store, &db);
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_deleted_or_replaced_file_is_never_written() {
        let dir = temp("gone");
        let db = dir.join("t.db");
        let store = Store::open(&db).unwrap();
        store.ingest(&[event("t1")]).unwrap();
        fs::remove_file(&db).unwrap();
        assert!(matches!(
            store.ingest(&[event("t2")]),
            Err(StoreError::FileDeleted { .. })
        ));
        fs::write(&db, b"").unwrap();
        let err = store.ingest(&[event("t3")]).unwrap_err();
        assert!(matches!(err, StoreError::FileReplaced { .. }), "{err}");
        assert!(err.is_file_lost());
        // The batch was rolled back, not committed into the old inode.
        assert_eq!(store.count_traces(&Default::default()).unwrap(), 1);
        fs::remove_dir_all(&dir).ok();
    }
}

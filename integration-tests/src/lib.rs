//! Shared helpers for the integration tests: fixture paths and loading.

pub mod agent_captures;
pub mod bridge_bin;
pub mod browser;
pub mod capture_receiver;
pub mod captures;
pub mod events;
pub mod kafka_broker;
pub mod legacy_sdks;
pub mod receiver;
pub mod spans;
pub mod v4_standin;

use std::path::{Path, PathBuf};

/// The `fixtures/` folder of this crate.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// All `*.json` files in a fixtures sub-folder, sorted by name.
pub fn fixture_files(sub: &str) -> Vec<PathBuf> {
    let dir = fixtures_dir().join(sub);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// Reads and parses a JSON fixture.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

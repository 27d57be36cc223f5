//! The `langfuse-bridge` binary for process-level tests, built on first use with the cargo
//! running the tests (same target directory and profile) with the `kafka` feature;
//! `LANGFUSE_BRIDGE_BIN` selects a prebuilt binary instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The target directory, the profile's output directory and the cargo profile name of the
/// running test executable (which lives in `<target>/<profile-dir>/deps/`).
pub fn target_and_profile() -> (PathBuf, PathBuf, String) {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable in <target>/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir
        .parent()
        .expect("target directory")
        .to_path_buf();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    };
    (target_dir, profile_dir, profile)
}

/// The `langfuse-bridge` binary, built if needed.
pub fn bridge() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("LANGFUSE_BRIDGE_BIN") {
            return PathBuf::from(bin);
        }
        let (target_dir, profile_dir, profile) = target_and_profile();
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "langfuse-bridge",
                "--bin",
                "langfuse-bridge",
                // The `kafka` tests need `consume` and `--to kafka`; the library is built with
                // the feature too (this crate's dev-dependency), so this adds no second build.
                "--features",
                "kafka",
            ])
            .arg("--profile")
            .arg(&profile)
            .arg("--target-dir")
            .arg(&target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building langfuse-bridge failed");
        profile_dir.join(format!("langfuse-bridge{}", std::env::consts::EXE_SUFFIX))
    })
}

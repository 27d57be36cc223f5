//! Headless Chromium for the browser tests: Chromium from the Debian packages when
//! `/usr/bin/chromium` is missing (`apt-get install chromium`, as root), `playwright-core` by
//! npm into `<target>/viewer-browser-test/`, the directory the test scripts run from.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bridge_bin::target_and_profile;

/// Where Chromium is expected.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The pinned playwright-core package.
pub const PLAYWRIGHT: &str = "playwright-core@1.65.1";

/// Installs Chromium when missing (needs root); panics with what to do otherwise.
pub fn ensure_chromium() {
    if Path::new(CHROMIUM).exists() {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    assert!(
        root,
        "{CHROMIUM} is missing and the test is not root: install it with `apt-get install chromium`"
    );
    for args in [
        &["update"][..],
        &["install", "-y", "--no-install-recommends", "chromium"][..],
    ] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .expect("running apt-get");
        assert!(status.success(), "apt-get {args:?} failed");
    }
}

/// Installs `playwright-core` into `dir` when missing.
pub fn ensure_playwright(dir: &Path) {
    if dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return;
    }
    std::fs::create_dir_all(dir).expect("creating the browser test directory");
    let status = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--no-save",
            "--prefix",
        ])
        .arg(dir)
        .arg(PLAYWRIGHT)
        .status()
        .expect("running npm (Node.js is required)");
    assert!(status.success(), "npm install {PLAYWRIGHT} failed");
}

/// Chromium and playwright-core ready; returns the directory to run scripts from
/// (`<target>/viewer-browser-test/`, where `node_modules` is).
pub fn prepare() -> PathBuf {
    ensure_chromium();
    let (target_dir, _, _) = target_and_profile();
    let work = target_dir.join("viewer-browser-test");
    ensure_playwright(&work);
    work
}

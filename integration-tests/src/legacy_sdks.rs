//! The legacy Langfuse SDKs for the v4 tests, installed on first use under
//! `target/langfuse-v4-peers/` (cached; a finished install leaves a `.done` marker):
//!
//! - `py2/`: a `python3 -m venv` with `pip install "langfuse<3"` (the latest Python SDK 2.x);
//! - `js3/`: `npm install langfuse@3` (the latest JS SDK 3.x);
//! - `py5/`: a venv with `pip install "langfuse>=5,<6"` (the official Python SDK 5.x).
//!
//! Package registries are the only network used. `PYTHON` and `NPM` select the tools.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::bridge_bin::target_and_profile;

/// The install root.
pub fn root() -> PathBuf {
    target_and_profile().0.join("langfuse-v4-peers")
}

static INSTALL: Mutex<()> = Mutex::new(());

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Python interpreter of a venv with the latest `langfuse` 2.x.
pub fn python_v2() -> PathBuf {
    python_venv("py2", "langfuse<3")
}

/// The Python interpreter of a venv with the official `langfuse` 5.x.
pub fn python_v5() -> PathBuf {
    python_venv("py5", "langfuse>=5,<6")
}

fn python_venv(name: &str, requirement: &str) -> PathBuf {
    let _guard = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = root().join(name);
    let python = dir.join("bin").join("python");
    if !dir.join(".done").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(root()).expect("create the install root");
        let host = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        run(
            Command::new(&host).args(["-m", "venv"]).arg(&dir),
            "python3 -m venv",
        );
        run(
            Command::new(&python).args(["-m", "pip", "install", "-q", requirement]),
            "pip install langfuse",
        );
        std::fs::write(dir.join(".done"), b"").expect("install marker");
    }
    python
}

/// A directory with `node_modules/langfuse` 3.x (run scripts from there with `node`).
pub fn js_v3() -> PathBuf {
    let _guard = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = root().join("js3");
    if !dir.join(".done").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the JS install directory");
        std::fs::write(
            dir.join("package.json"),
            br#"{"name":"langfuse-v4-legacy-js","private":true,"type":"module"}"#,
        )
        .expect("package.json");
        let npm = std::env::var("NPM").unwrap_or_else(|_| "npm".into());
        run(
            Command::new(npm)
                .args(["install", "--no-audit", "--no-fund", "langfuse@3"])
                .current_dir(&dir),
            "npm install langfuse@3",
        );
        std::fs::write(dir.join(".done"), b"").expect("install marker");
    }
    dir
}

/// The installed version of a Python package in the venv of `python`.
pub fn python_package_version(python: &Path, package: &str) -> String {
    let out = Command::new(python)
        .args([
            "-c",
            &format!("import importlib.metadata as m; print(m.version({package:?}))"),
        ])
        .output()
        .expect("python runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

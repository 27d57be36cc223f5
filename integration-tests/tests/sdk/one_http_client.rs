//! The SDK's default build has one HTTP client (the transport crate's), and no async HTTP
//! stack: `cargo tree -e normal -p langfuse-otel`.

use std::process::Command;

const HTTP_CLIENTS: &[&str] = &[
    "ureq",
    "reqwest",
    "hyper",
    "isahc",
    "attohttpc",
    "surf",
    "curl",
];

#[test]
fn the_sdk_default_build_has_exactly_one_http_client() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-e",
            "normal",
            "-p",
            "langfuse-otel",
            "--prefix",
            "none",
            "--locked",
            "--offline",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let mut found: Vec<&str> = HTTP_CLIENTS
        .iter()
        .copied()
        .filter(|c| tree.lines().any(|l| l.split(' ').next() == Some(c)))
        .collect();
    found.sort_unstable();
    assert_eq!(found, ["ureq"], "{tree}");
}

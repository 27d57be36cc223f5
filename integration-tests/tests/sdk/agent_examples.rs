//! The rig and genai examples (`examples/agents`), run as part of the workspace's tests.
//!
//! They are a workspace of their own: rig-core turns on serde_json's `raw_value` feature, which
//! feature unification would otherwise switch on for every crate here. So this test runs their
//! test suite with the cargo running this one, in `<target>/agents`, and fails with its output
//! when any of their tests fails. Set `LANGFUSE_SKIP_AGENT_EXAMPLES=1` to skip it locally.

use std::path::Path;
use std::process::Command;

#[test]
fn the_rig_and_genai_examples_pass_their_tests() {
    if std::env::var_os("LANGFUSE_SKIP_AGENT_EXAMPLES").is_some() {
        return;
    }
    // This test runs from <target>/<profile>/deps/.
    let exe = std::env::current_exe().expect("test executable path");
    let target_dir = exe
        .ancestors()
        .nth(3)
        .expect("test executable in <target>/<profile>/deps");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/agents/Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .arg("test")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--locked")
        .arg("--target-dir")
        .arg(target_dir.join("agents"))
        .output()
        .expect("running cargo test for examples/agents");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "examples/agents tests failed:\n{stdout}\n{stderr}"
    );
    let passed: usize = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(passed >= 4, "only {passed} example tests ran:\n{stdout}");
    println!("examples/agents: {passed} tests passed");
}

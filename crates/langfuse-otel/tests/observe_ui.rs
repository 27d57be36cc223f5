//! Compile tests of `#[observe]`: hygienic expansions compile with only `langfuse-otel` in
//! scope; bad options fail with a clear message.

#[test]
fn observe_ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    t.compile_fail("tests/ui/fail_*.rs");
}

#[langfuse_otel::observe(nmae = "typo")]
fn step() {}

#[langfuse_otel::observe(as_type = "llm")]
fn other() {}

fn main() {}

#[langfuse_otel::observe(as_type = "event")]
fn step() {}

fn main() {}

#[langfuse_otel::observe(skip(secret))]
fn step(token: String) -> usize {
    token.len()
}

fn main() {}

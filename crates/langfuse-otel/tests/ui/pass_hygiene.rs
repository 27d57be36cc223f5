// Only `langfuse_otel` is named; local items that shadow common names must not break the
// expansion.
#![allow(dead_code)]

mod serde_json {}
mod serde {}
mod core {}
struct Result;
struct Ok;
struct Map;

use langfuse_otel::observe;

#[observe(name = "free", as_type = "chain")]
fn free(a: u32, b: &str) -> u32 {
    a + b.len() as u32
}

#[observe(skip(token), capture_input = true)]
async fn fallible(x: i64, token: String) -> std::result::Result<i64, std::io::Error> {
    let _ = token;
    std::result::Result::Ok(x)
}

struct S;

impl S {
    #[observe(as_type = "retriever")]
    fn method(&self, q: String) -> Vec<String> {
        vec![q]
    }

    #[observe]
    async fn by_value(self) -> impl std::fmt::Display {
        42
    }
}

fn main() {
    let _ = free(1, "x");
    let _ = S.method("q".into());
    let _ = fallible(1, String::new());
    let _ = S.by_value();
}

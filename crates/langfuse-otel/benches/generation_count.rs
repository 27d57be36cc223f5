//! The cases of the `generation` benchmark as a plain loop, for instruction counts:
//!
//! ```text
//! valgrind --tool=callgrind target/release/deps/generation_count-<hash> langfuse_otel 1000
//! ```
//!
//! Arguments: the case (`langfuse_otel`, `raw_plain_sdk`, `raw_same_pipeline`) and the number
//! of iterations. Run it with two counts and divide the difference by the extra iterations to
//! get instructions per iteration without the setup.

mod common;

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "langfuse_otel".to_owned());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let setup = common::Setup::new();
    for _ in 0..n {
        match case.as_str() {
            "langfuse_otel" => setup.langfuse_generation(),
            "raw_plain_sdk" => setup.raw_generation(&setup.plain_tracer),
            "raw_same_pipeline" => setup.raw_generation(&setup.pipeline_tracer),
            other => {
                eprintln!("unknown case {other} (langfuse_otel, raw_plain_sdk, raw_same_pipeline)");
                std::process::exit(2);
            }
        }
    }
}

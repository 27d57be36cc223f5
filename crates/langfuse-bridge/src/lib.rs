//! # langfuse-bridge
//!
//! The library behind the `langfuse-bridge` binary: OpenTelemetry traces from any language in,
//! Langfuse records out. The binary's `main` only parses the command line ([`cli::Cli`]) and
//! calls [`run`]; everything it does is available here, so each command can be driven and
//! tested in-process.
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | the command line: one `clap` struct per command |
//! | [`body`] | reading request and file bodies with size limits, gzip included (no gzip bomb is ever read into memory) |
//! | [`translate_cmd`] | `translate`: one OTLP export in, the Langfuse ingestion events out |
//! | [`import_cmd`] | `import`: the SDK's offline JSON-lines file into the local trace store |
//! | [`traces_cmd`] | `traces list` / `traces show`: the local trace store in the terminal |
//! | [`ui`] | `ui` and the web trace viewer's [`ui::router`] (mountable on any axum listener) |
//! | [`error`] | [`BridgeError`], the one error type of every command |
//! | [`spool`] | the durable spool of `serve`: segment files of checksummed records, destination cursors |
//! | [`spool_cmd`] | `spool verify`: the spool's damage report, read-only |
//! | [`serve`] | `serve`: OTLP/HTTP, OTLP/gRPC and Langfuse API receivers, spool, forwarding |
//! | [`access`] | who may use a listener of `serve` and `ui`: keys, allowed hosts, own origin, loopback without keys |
//! | [`dead_letter`] | the dead-letter files of `serve`: what a destination refused for good, with the reason |
//! | [`linger`] | lingering close: a body still arriving after an early 401/403/421/413 is read and discarded, so the client sees the answer |
//! | [`logging`] | the log filter (`--log-level`, `RUST_LOG`) and the subscriber of `serve` and `ui` |
//!
//! ```
//! use langfuse_bridge::body::{BodyLimits, Encoding, decode_body};
//!
//! // An uncompressed body is returned as it is, within the limit.
//! let body = decode_body(b"{}".to_vec(), Encoding::Detect, &BodyLimits::default()).unwrap();
//! assert_eq!(body, b"{}");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access;
pub mod body;
pub mod cli;
pub mod dead_letter;
pub mod error;
pub mod import_cmd;
pub mod linger;
pub mod logging;
pub mod serve;
pub mod spool;
pub mod spool_cmd;
pub mod traces_cmd;
pub mod translate_cmd;
pub mod ui;

pub use error::BridgeError;

/// Runs one parsed command line.
///
/// # Errors
/// Whatever the command reports; the binary prints it as one `error: …` line and exits with
/// [`BridgeError::exit_code`] (2, or 1 for a damaged spool found by `spool verify`).
pub fn run(cli: cli::Cli) -> Result<(), BridgeError> {
    match cli.command {
        cli::Command::Translate(args) => translate_cmd::run(&args),
        cli::Command::Serve(args) => Ok(serve::args::run(&args)?),
        cli::Command::Import(args) => {
            let report = import_cmd::run(&args)?;
            println!("{}", import_cmd::summary(&args, &report));
            Ok(())
        }
        cli::Command::Traces(args) => {
            print!("{}", traces_cmd::run(&args)?);
            Ok(())
        }
        cli::Command::Ui(args) => Ok(ui::run(&args)?),
        cli::Command::Spool(args) => match &args.command {
            spool_cmd::SpoolCommand::Verify(verify) => {
                let inspection = spool_cmd::verify(verify)?;
                print!("{}", spool_cmd::report(verify, &inspection));
                if inspection.recovery.is_clean() {
                    Ok(())
                } else {
                    Err(BridgeError::SpoolDamaged {
                        lost_records: inspection.recovery.lost_records,
                    })
                }
            }
        },
    }
}

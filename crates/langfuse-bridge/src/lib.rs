//! # langfuse-bridge
//!
//! OpenTelemetry traces from any language in, Langfuse records out: the library behind the
//! `langfuse-bridge` binary. The binary's `main` only parses the command line ([`cli::Cli`])
//! and calls [`run`]; `serve` runs in-process with [`Bridge`].
//!
//! The code is laid out as the data flows through `serve`:
//!
//! ```text
//!  clients ──► sources/ ──► spool ──► shape ──► forward ──► sinks/
//!   OTLP/HTTP   listener     crate     records   one loop    langfuse (OTLP, ingestion,
//!   OTLP/gRPC   access       langfuse- → units   per sink:   scores), otlp (HTTP/gRPC),
//!   ingestion   receive      spool     (translated cursor    local (SQLite + viewer,
//!   scores      (checks)     (durable  or as     commits     crate langfuse-local),
//!               receiver      append)  received) after       dead_letter (refused
//!               (append)                          delivery    for good, kept)
//! ```
//!
//! | module | stage |
//! |---|---|
//! | `sources` | the listeners (HTTP/1 + HTTP/2 accept loop, limits, lingering close), access (keys, hosts, origins), body decoding, the receive checks, the durable append before any 2xx |
//! | spool (crate `langfuse-spool`) | checksummed segments, group commit, recovery, one cursor per sink |
//! | `shape` | spool records → upstream requests in the shape a sink takes (translation, canonical OTLP, envelope ids) |
//! | `forward` | the loop of one sink: read, shape, send, dead-letter refusals, commit |
//! | `sinks` | Langfuse, OTLP collectors, the local store, a Kafka topic, the dead-letter files |
//! | `kafka` | the Kafka client settings and message format that `serve --to kafka` and `consume` share (feature `kafka`) |
//! | `serve` | [`ServeConfig`] (TOML, flags, environment) and [`Bridge`], which wires the stages |
//! | `metrics` | `/metrics` and `/health` counters ([`Metrics`]) |
//! | `commands` | the other commands: `translate`, `import`, `traces`, `ui`, `spool verify` |
//! | [`cli`] | the command line: one `clap` struct per command |
//! | [`error`] | [`BridgeError`], the one error type of every command |
//!
//! ```no_run
//! use langfuse_bridge::{Bridge, ServeConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ServeConfig::from_toml(r#"
//!     http = "127.0.0.1:0"
//!     to = "local"
//!     db = "langfuse-traces.db"
//! "#)?;
//! let bridge = Bridge::new(config).bind().await?;
//! println!("OTLP/HTTP and the viewer on http://{}", bridge.http_addr());
//! bridge.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod assemble;
mod assemble_agents;
pub mod cli;
mod commands;
pub mod error;
mod forward;
mod kafka;
mod logging;
mod metrics;
mod serve;
mod shape;
mod sinks;
mod sources;

pub use assemble_agents::{AgentSpans, LogsMode};
pub use error::BridgeError;
pub use kafka::KafkaSettings;
pub use metrics::Metrics;
pub use serve::config::{ConfigError, Destination, LogFormat, OtlpMode, ServeConfig};
pub use serve::{BoundBridge, Bridge, ServeError};

/// Not part of the API: the internals the crate's benchmarks and the fuzz targets drive
/// directly. They may change in any release.
#[doc(hidden)]
pub mod internal {
    pub use crate::assemble::{Assembler, Finisher, Piece, credentials_of, split};
    pub use crate::shape::{Shape, Shaper, Unit};
    pub use crate::sources::receive;
}

/// Runs one parsed command line.
///
/// # Errors
/// Whatever the command reports; the binary prints it as one `error: …` line and exits with
/// [`BridgeError::exit_code`] (2, or 1 for a damaged spool found by `spool verify`).
pub fn run(cli: cli::Cli) -> Result<(), BridgeError> {
    match cli.command {
        cli::Command::Translate(args) => commands::translate::run(&args),
        cli::Command::Serve(args) => Ok(serve::args::run(&args)?),
        cli::Command::Import(args) => {
            let report = commands::import::run(&args)?;
            println!("{}", commands::import::summary(&args, &report));
            Ok(())
        }
        cli::Command::Traces(args) => {
            print!("{}", commands::traces::run(&args)?);
            Ok(())
        }
        cli::Command::Ui(args) => Ok(commands::ui::run(&args)?),
        cli::Command::DeadLetter(args) => {
            use commands::dead_letter::{DeadLetterCommand, list, replay};
            match &args.command {
                DeadLetterCommand::List(a) => print!("{}", list(a)?),
                DeadLetterCommand::Replay(a) => {
                    let replayed = replay(a)?;
                    print!("{}", replayed.report());
                    if !replayed.refused.is_empty() {
                        return Err(BridgeError::DeadLettersRefused {
                            entries: replayed.refused.len(),
                        });
                    }
                }
            }
            Ok(())
        }
        #[cfg(feature = "kafka")]
        cli::Command::Consume(args) => Ok(commands::consume::run(&args)?),
        #[cfg(not(feature = "kafka"))]
        cli::Command::Consume(_) => Err(BridgeError::KafkaNotBuilt),
        cli::Command::Spool(args) => match &args.command {
            commands::spool::SpoolCommand::Verify(verify) => {
                let inspection = commands::spool::verify(verify)?;
                print!("{}", commands::spool::report(verify, &inspection));
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

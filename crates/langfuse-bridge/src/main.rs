//! `langfuse-bridge`: receives OTLP from any language and forwards Langfuse records; also a
//! `translate` command that turns one OTLP trace export into Langfuse ingestion events.
//!
//! Everything lives in the `langfuse_bridge` library; this is only the process entry point.
//! Every failure is reported as one `error: …` line on stderr (control characters escaped: a
//! message may quote a file's or a client's text) with exit code 2 (1 when `spool verify`
//! found damage).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use langfuse_bridge::cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            print!("{e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap renders several lines (usage, hints); the first one says what is wrong.
            let rendered = e.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            return fail(&format!("{first} (see `langfuse-bridge --help`)"));
        }
    };
    match langfuse_bridge::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail_with(&langfuse_bridge::error::chain(&e), e.exit_code()),
    }
}

/// One `error:` line, whatever the underlying text contains, and exit status 2.
fn fail(message: &str) -> ExitCode {
    fail_with(message, 2)
}

/// One `error:` line and `code` (1: `spool verify` found damage).
fn fail_with(message: &str, code: u8) -> ExitCode {
    eprintln!(
        "error: {}",
        langfuse_otel_core::terminal::escape_control(message)
    );
    ExitCode::from(code)
}

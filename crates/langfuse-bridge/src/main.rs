//! `langfuse-bridge`: receives OTLP from any language and forwards Langfuse records; also a
//! `translate` command that turns one OTLP trace export into Langfuse ingestion events.
//!
//! Everything lives in the `langfuse_bridge` library; this is only the process entry point.
//! Every failure is reported as one `error: …` line on stderr with exit code 2 (control
//! characters escaped: a message may quote a file's or a client's text).

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
        Err(e) => fail(&e.to_string()),
    }
}

/// One `error:` line, whatever the underlying text contains, and exit status 2.
fn fail(message: &str) -> ExitCode {
    eprintln!(
        "error: {}",
        langfuse_otel_core::terminal::escape_control(message)
    );
    ExitCode::from(2)
}

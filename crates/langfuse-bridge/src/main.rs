//! `langfuse-bridge`: receives OTLP from any language and forwards Langfuse records; also a
//! `translate` command that turns one OTLP trace export into Langfuse ingestion events.
//!
//! Every failure is reported as one `error: …` line on stderr with exit code 2.

#![forbid(unsafe_code)]

mod cli;
mod translate_cmd;

use std::process::ExitCode;

use cli::{Command, USAGE};

fn main() -> ExitCode {
    let result = cli::parse(std::env::args_os().skip(1)).and_then(|command| match command {
        Command::Help => {
            print!("{USAGE}");
            Ok(())
        }
        Command::Version => {
            println!("langfuse-bridge {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Translate(args) => translate_cmd::run(&args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever the underlying error text contains.
            let message = e.to_string().replace(['\r', '\n'], " ");
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

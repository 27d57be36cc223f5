//! `langfuse-bridge`: receives OTLP from any language and forwards Langfuse records; also a
//! `translate` command that turns one OTLP trace export into Langfuse ingestion events.
//!
//! Every failure is reported as one `error: …` line on stderr with exit code 2.

#![forbid(unsafe_code)]

mod cli;
mod import_cmd;
mod traces_cmd;
mod translate_cmd;
mod ui;

use std::process::ExitCode;

use cli::{Command, USAGE};

/// The local-mode commands (`import`, `traces`, `ui`).
#[derive(Debug, clap::Parser)]
#[command(name = "langfuse-bridge", version)]
struct LocalCli {
    #[command(subcommand)]
    command: LocalCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LocalCommand {
    /// Load a JSON-lines file of ingestion events (the SDK's offline file) into the trace store.
    Import(import_cmd::ImportArgs),
    /// List or show traces of the local trace store.
    Traces(traces_cmd::TracesArgs),
    /// Serve the web trace viewer over the local trace store.
    Ui(ui::UiArgs),
}

fn run_local(command: LocalCommand) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        LocalCommand::Import(args) => {
            let report = import_cmd::run(&args)?;
            println!("{}", import_cmd::summary(&args, &report));
        }
        LocalCommand::Traces(args) => print!("{}", traces_cmd::run(&args)?),
        LocalCommand::Ui(args) => ui::run(&args)?,
    }
    Ok(())
}

fn main() -> ExitCode {
    let first = std::env::args().nth(1);
    if matches!(first.as_deref(), Some("import" | "traces" | "ui")) {
        let cli = <LocalCli as clap::Parser>::parse();
        return match run_local(cli.command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let message = e.to_string().replace(['\r', '\n'], " ");
                eprintln!("error: {message}");
                ExitCode::from(2)
            }
        };
    }
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

//! The command line: [`Cli`] and one argument struct per command.
//!
//! Each command's flags also have a documented meaning in `langfuse-bridge <command> --help`.
//! Usage errors are reported by the binary as one `error: …` line with exit status 2.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use langfuse_otel_core::translate::Compatibility;

/// Shown after the top-level help: the commands at a glance.
const AFTER_HELP: &str = "\
Examples:
  langfuse-bridge translate export.json --pretty      OTLP export -> Langfuse ingestion events
  langfuse-bridge translate --compat server - < x.pb  what the Langfuse server itself derives
  langfuse-bridge import langfuse-traces.jsonl        the SDK's offline file into ./langfuse-traces.db
  langfuse-bridge traces list --user u1 --json        traces of the local store
  langfuse-bridge ui                                  the trace viewer on http://127.0.0.1:3000/
  langfuse-bridge spool verify ./langfuse-bridge-spool  damage in the spool (read-only; exit 1 if any)
  langfuse-bridge dead-letter list ./langfuse-bridge-spool   items an upstream refused for good
  langfuse-bridge dead-letter replay ./langfuse-bridge-spool --to langfuse  send them again

Errors are reported as one `error: ...` line on standard error, with exit status 2.";

/// `langfuse-bridge`: OpenTelemetry traces to Langfuse.
#[derive(Debug, Parser)]
#[command(
    name = "langfuse-bridge",
    version,
    about = "langfuse-bridge: OpenTelemetry traces to Langfuse records",
    after_help = AFTER_HELP,
    disable_help_subcommand = false
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Read one OTLP trace export (OTLP/JSON or protobuf, optionally gzip-compressed) from FILE
    /// or standard input and print the Langfuse ingestion events as {"batch":[...]}.
    Translate(TranslateArgs),
    /// Receive OTLP (HTTP and gRPC) and Langfuse API calls, spool them durably, forward them
    /// to Langfuse, Langfuse ingestion or an OTLP collector.
    Serve(Box<crate::serve::args::ServeArgs>),
    /// Load a JSON-lines file of Langfuse ingestion events (the SDK's offline file) into the
    /// local trace store.
    Import(crate::commands::import::ImportArgs),
    /// List or show the traces of the local trace store.
    Traces(crate::commands::traces::TracesArgs),
    /// Serve the web trace viewer over the local trace store.
    Ui(crate::commands::ui::UiArgs),
    /// Check the spool of `serve`: `spool verify DIR` reports damage read-only.
    Spool(crate::commands::spool::SpoolArgs),
    /// The items `serve` kept because a destination refused them for good:
    /// `dead-letter list SPOOL`, `dead-letter replay SPOOL [--to …] [--upstream URL]`.
    DeadLetter(crate::commands::dead_letter::DeadLetterArgs),
    /// Read a Kafka topic as a consumer group member (what `serve --to kafka` or the
    /// OpenTelemetry Collector's `kafka` exporter wrote) and forward it like `serve`
    /// (feature `kafka`).
    Consume(Box<crate::commands::consume_args::ConsumeArgs>),
}

/// Arguments of `translate`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct TranslateArgs {
    /// The export to read; `-` or nothing for standard input.
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Pretty-print the JSON output.
    #[arg(long)]
    pub pretty: bool,
    /// `repair` (default) or `server`: see the values' descriptions.
    #[arg(long, value_name = "RULES", default_value_t = Compatibility::Repair)]
    pub compat: Compatibility,
    /// The largest input accepted, before and after gzip decompression, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = TranslateArgs::DEFAULT_MAX_BYTES)]
    pub max_bytes: usize,
}

impl TranslateArgs {
    /// The default input limit of `translate`: 256 MiB.
    pub const DEFAULT_MAX_BYTES: usize = 256 << 20;

    /// The input file, or `None` for standard input (`-` or no argument).
    pub fn input_file(&self) -> Option<&PathBuf> {
        self.input.as_ref().filter(|p| p.as_os_str() != "-")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("langfuse-bridge").chain(args.iter().copied()))
    }

    fn translate(args: &[&str]) -> TranslateArgs {
        match parse(args).unwrap().command {
            Command::Translate(t) => t,
            other => panic!("not translate: {other:?}"),
        }
    }

    #[test]
    fn translate_reads_a_file_or_standard_input() {
        let t = translate(&["translate", "x.json", "--pretty"]);
        assert_eq!(t.input_file(), Some(&PathBuf::from("x.json")));
        assert!(t.pretty);
        assert_eq!(t.compat, Compatibility::Repair);
        assert_eq!(translate(&["translate"]).input_file(), None);
        assert_eq!(translate(&["translate", "-"]).input_file(), None);
        let dashed = translate(&["translate", "--", "--pretty"]);
        assert_eq!(dashed.input_file(), Some(&PathBuf::from("--pretty")));
        assert!(!dashed.pretty);
    }

    #[test]
    fn translate_compat_and_limit() {
        let t = translate(&["translate", "--compat", "server", "--max-bytes", "10"]);
        assert_eq!(t.compat, Compatibility::Server);
        assert_eq!(t.max_bytes, 10);
        assert!(parse(&["translate", "--compat", "strict"]).is_err());
    }

    #[test]
    fn every_command_that_opens_the_store_takes_db() {
        let db = |args: &[&str]| match parse(args).unwrap().command {
            Command::Serve(a) => a.translation.db.clone(),
            Command::Ui(a) => Some(a.db.clone()),
            Command::Traces(a) => match a.command {
                crate::commands::traces::TracesCommand::List(l) => Some(l.db),
                crate::commands::traces::TracesCommand::Show(s) => Some(s.db),
            },
            Command::Import(a) => Some(a.db.clone()),
            Command::Consume(a) => a.translation.db.clone(),
            other => panic!("{other:?}"),
        };
        let want = Some(PathBuf::from("t.db"));
        assert_eq!(db(&["serve", "--db", "t.db"]), want);
        // `--store`, the flag of earlier versions, is a hidden alias.
        assert_eq!(db(&["serve", "--store", "t.db"]), want);
        assert_eq!(db(&["ui", "--db", "t.db"]), want);
        assert_eq!(db(&["traces", "list", "--db", "t.db"]), want);
        assert_eq!(db(&["traces", "show", "x", "--db", "t.db"]), want);
        assert_eq!(db(&["import", "--db", "t.db", "x.jsonl"]), want);
        assert_eq!(db(&["consume", "--kafka-group", "g", "--db", "t.db"]), want);
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["frobnicate"]).is_err());
        assert!(parse(&["translate", "--bogus"]).is_err());
        assert!(parse(&["translate", "a", "b"]).is_err());
    }
}

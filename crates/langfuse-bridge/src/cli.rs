//! Command-line parsing (hand-rolled: two commands do not justify a parser dependency).

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// The help text.
pub const USAGE: &str = "\
langfuse-bridge: OpenTelemetry traces to Langfuse ingestion events

Usage:
  langfuse-bridge translate [FILE|-] [--pretty]
  langfuse-bridge --help | --version

Commands:
  translate   Read one OTLP trace export (OTLP/JSON or protobuf, optionally gzip-compressed)
              from FILE or standard input (`-` or no FILE) and print the Langfuse ingestion
              events as {\"batch\":[...]}.

Options:
  --pretty       Pretty-print the JSON output (translate)
  -h, --help     Print this help
  -V, --version  Print the version

Errors are reported as one `error: ...` line on standard error, with exit code 2.
";

/// What to run.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// Print the help text.
    Help,
    /// Print the version.
    Version,
    /// Translate one export.
    Translate(TranslateArgs),
}

/// Where the export comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

/// Arguments of `translate`.
#[derive(Debug, PartialEq, Eq)]
pub struct TranslateArgs {
    /// The export to read.
    pub input: Input,
    /// Pretty-print the output.
    pub pretty: bool,
}

/// A command-line or run-time failure, printed as `error: <message>`.
#[derive(Debug)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

fn usage_error(message: impl fmt::Display) -> CliError {
    CliError(format!("{message} (see `langfuse-bridge --help`)"))
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, CliError> {
    let mut args = args.into_iter();
    let Some(first) = args.next() else {
        return Err(usage_error("missing command"));
    };
    match first.to_str() {
        Some("-h" | "--help" | "help") => Ok(Command::Help),
        Some("-V" | "--version") => Ok(Command::Version),
        Some("translate") => parse_translate(args),
        Some(other) if other.starts_with('-') => {
            Err(usage_error(format_args!("unknown option '{other}'")))
        }
        _ => Err(usage_error(format_args!(
            "unknown command '{}'",
            first.to_string_lossy()
        ))),
    }
}

fn parse_translate(args: impl Iterator<Item = OsString>) -> Result<Command, CliError> {
    let mut input = None;
    let mut pretty = false;
    let mut only_paths = false;
    for arg in args {
        let flag = if only_paths { None } else { arg.to_str() };
        match flag {
            Some("--pretty") => pretty = true,
            Some("-h" | "--help") => return Ok(Command::Help),
            Some("--") => only_paths = true,
            Some(f) if f.starts_with('-') && f != "-" => {
                return Err(usage_error(format_args!("unknown option '{f}'")));
            }
            _ => {
                if input.is_some() {
                    return Err(usage_error(format_args!(
                        "unexpected argument '{}': translate takes one input",
                        arg.to_string_lossy()
                    )));
                }
                input = Some(if arg == "-" {
                    Input::Stdin
                } else {
                    Input::File(PathBuf::from(arg))
                });
            }
        }
    }
    Ok(Command::Translate(TranslateArgs {
        input: input.unwrap_or(Input::Stdin),
        pretty,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, CliError> {
        parse(args.iter().map(OsString::from))
    }

    #[test]
    fn parses_translate() {
        assert_eq!(
            parse_strs(&["translate", "x.json", "--pretty"]).unwrap(),
            Command::Translate(TranslateArgs {
                input: Input::File("x.json".into()),
                pretty: true
            })
        );
        assert_eq!(
            parse_strs(&["translate"]).unwrap(),
            Command::Translate(TranslateArgs {
                input: Input::Stdin,
                pretty: false
            })
        );
        assert_eq!(
            parse_strs(&["translate", "-"]).unwrap(),
            Command::Translate(TranslateArgs {
                input: Input::Stdin,
                pretty: false
            })
        );
        assert_eq!(
            parse_strs(&["translate", "--", "--pretty"]).unwrap(),
            Command::Translate(TranslateArgs {
                input: Input::File("--pretty".into()),
                pretty: false
            })
        );
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(parse_strs(&[]).is_err());
        assert!(parse_strs(&["--bogus"]).is_err());
        assert!(parse_strs(&["frobnicate"]).is_err());
        assert!(parse_strs(&["translate", "--bogus"]).is_err());
        assert!(parse_strs(&["translate", "a", "b"]).is_err());
        assert_eq!(parse_strs(&["--version"]).unwrap(), Command::Version);
        assert_eq!(parse_strs(&["-h"]).unwrap(), Command::Help);
    }
}

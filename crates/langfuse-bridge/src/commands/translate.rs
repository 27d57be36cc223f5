//! `langfuse-bridge translate`: one OTLP trace export in, `{"batch":[...]}` out.

use std::io::Write;

use langfuse_otel_core::translate::TranslateOptions;
use langfuse_otel_core::{IngestionBatch, Translator, otlp};

use crate::cli::TranslateArgs;
use crate::error::BridgeError;
use crate::sources::body::{BodyLimits, Encoding, decode_body, read_bounded};

/// Runs the command: read (bounded), gunzip if needed (bounded), decode (auto-detected
/// encoding), translate with a fresh [`Translator`], print. In `--compat server` mode each
/// observation the server would drop is reported on standard error as one `warning:` line.
///
/// # Errors
/// Unreadable or oversized input, invalid gzip, input that is not an OTLP export, or a
/// failed write.
pub fn run(args: &TranslateArgs) -> Result<(), BridgeError> {
    let limits = BodyLimits::uniform(args.max_bytes);
    let raw = read_input(args, &limits)?;
    let body = decode_body(raw, Encoding::Detect, &limits)?;
    let batch = otlp::decode(&body)?;
    let options = TranslateOptions {
        compatibility: args.compat,
        ..TranslateOptions::default()
    };
    let translation = Translator::with_options(options).translate(&batch);
    let output = IngestionBatch {
        batch: translation.events,
    };
    let mut text = if args.pretty {
        // Through a `Value` so the shared resource/scope fragments are pretty-printed too.
        serde_json::to_value(&output).and_then(|v| serde_json::to_string_pretty(&v))
    } else {
        serde_json::to_string(&output)
    }
    .map_err(|e| BridgeError::Output(e.to_string()))?;
    text.push('\n');
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| BridgeError::Output(e.to_string()))?;
    for dropped in &translation.dropped {
        let id = dropped
            .event
            .body
            .observation()
            .map_or("?", |o| o.id.as_str());
        eprintln!(
            "warning: the Langfuse server drops observation {id}: {}",
            dropped.errors.join("; ").replace(['\r', '\n'], " ")
        );
    }
    Ok(())
}

fn read_input(args: &TranslateArgs, limits: &BodyLimits) -> Result<Vec<u8>, BridgeError> {
    match args.input_file() {
        None => read_bounded(std::io::stdin().lock(), limits.max_body_bytes).map_err(|e| match e {
            crate::sources::body::BodyError::Read(io) => BridgeError::ReadStdin(io),
            other => other.into(),
        }),
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|source| BridgeError::ReadFile {
                path: path.clone(),
                source,
            })?;
            read_bounded(file, limits.max_body_bytes).map_err(|e| match e {
                crate::sources::body::BodyError::Read(source) => BridgeError::ReadFile {
                    path: path.clone(),
                    source,
                },
                other => other.into(),
            })
        }
    }
}

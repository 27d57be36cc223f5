//! `langfuse-bridge translate`: one OTLP trace export in, `{"batch":[...]}` out.

use std::io::{Read, Write};

use langfuse_otel_core::{IngestionBatch, Translator, otlp};

use crate::cli::{CliError, Input, TranslateArgs};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Runs the command: read, gunzip if needed, decode (auto-detected encoding), translate with
/// a fresh [`Translator`], print.
pub fn run(args: &TranslateArgs) -> Result<(), CliError> {
    let raw = read_input(&args.input)?;
    let body = gunzip_if_needed(raw)?;
    let batch = otlp::decode(&body).map_err(|e| CliError(e.to_string()))?;
    let translation = Translator::new().translate(&batch);
    let output = IngestionBatch {
        batch: translation.events,
    };
    let mut text = if args.pretty {
        // Through a `Value` so the shared resource/scope fragments are pretty-printed too.
        serde_json::to_value(&output).and_then(|v| serde_json::to_string_pretty(&v))
    } else {
        serde_json::to_string(&output)
    }
    .map_err(|e| CliError(format!("cannot serialize the events: {e}")))?;
    text.push('\n');
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| CliError(format!("cannot write the output: {e}")))
}

fn read_input(input: &Input) -> Result<Vec<u8>, CliError> {
    match input {
        Input::Stdin => {
            let mut buf = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .map_err(|e| CliError(format!("cannot read standard input: {e}")))?;
            Ok(buf)
        }
        Input::File(path) => std::fs::read(path)
            .map_err(|e| CliError(format!("cannot read '{}': {e}", path.display()))),
    }
}

/// Decompresses gzip input (recognized by its magic bytes); other input is returned as is.
pub fn gunzip_if_needed(raw: Vec<u8>) -> Result<Vec<u8>, CliError> {
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len().saturating_mul(4));
    flate2::read::MultiGzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| CliError(format!("cannot decompress the gzip input: {e}")))?;
    Ok(out)
}

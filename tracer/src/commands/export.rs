//! `tracer export` and `tracer info`: a trace for other tools, and its header and footer.
use std::{
    io::{BufWriter, Write},
    path::PathBuf,
};

use anyhow::{Context, Result};
use tracer_analysis::{
    export,
    output::{self, AtomicFile},
    trace::Reader,
};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per event.
    Jsonl,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The trace to export.
    trace: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    format: Format,
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn export(args: ExportArgs) -> Result<i32> {
    let Format::Jsonl = args.format;
    let mut reader = Reader::open(&args.trace)?;
    let Some(path) = &args.out else {
        let mut out = BufWriter::new(std::io::stdout().lock());
        let result = export::jsonl(&mut reader, &mut out).and_then(|n| {
            out.flush()?;
            Ok(n)
        });
        return match result {
            // A reader that stopped early (`| head`) is not an error.
            Err(export::ExportError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                Ok(0)
            }
            // A damaged trace still had its intact prefix exported before the error.
            Err(e) => Err(e.into()),
            Ok(_) => Ok(0),
        };
    };
    output::refuse_same_file(path, [args.trace.as_path()])?;
    let mut out = AtomicFile::create(path, 0o600)?;
    match export::jsonl(&mut reader, &mut out) {
        Ok(_) => out.commit()?,
        // The intact prefix of a damaged trace is kept, complete as far as it goes: the
        // error says where the trace broke.
        Err(e @ export::ExportError::Trace(_)) => {
            out.commit()?;
            return Err(e.into());
        }
        Err(e) => return Err(e.into()),
    }
    Ok(0)
}

#[derive(clap::Args)]
pub struct InfoArgs {
    /// The trace to describe.
    trace: PathBuf,
}

/// Prints the header and the footer as JSON (reading every event to reach the footer).
pub fn info(args: InfoArgs) -> Result<i32> {
    let mut reader = Reader::open(&args.trace)?;
    let mut events = 0u64;
    let end = loop {
        match reader.next_event() {
            Ok(Some(_)) => events += 1,
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    let doc = serde_json::json!({
        "header": reader.header,
        "footer": reader.footer(),
        "events_read": events,
        "error": end.as_ref().map(|e| e.to_string()),
    });
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{}", serde_json::to_string_pretty(&doc)?) {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.context("writing to stdout")?,
    }
    Ok(if end.is_some() { 2 } else { 0 })
}

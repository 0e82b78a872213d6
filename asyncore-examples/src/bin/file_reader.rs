//! PyMOTW's file reader: a `file_dispatcher` that reads 256 bytes per read event.
//!
//! ```text
//! file_reader PATH        (- reads standard input: a pipe or a terminal)
//! ```
//! Prints `READ: (N) "DATA"` for each read, the last being `READ: (0) ""` at end of file.

use asyncore_core::{Channel, Context, Dispatcher, HandlerResult, Loop, SocketMap};
#[cfg(unix)]
use asyncore_examples::cli::usage_error;
use asyncore_examples::cli::Args;
use std::io::Write;

const USAGE: &str = "usage: file_reader PATH   (- reads standard input)";

/// Python: `class FileReader(asyncore.file_dispatcher)`.
struct FileReader;

impl Dispatcher for FileReader {
    fn writable(&self, _chan: &Channel) -> bool {
        false
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let mut buf = [0u8; 256];
        let n = ctx.recv(&mut buf)?;
        let mut out = std::io::stdout().lock();
        write!(out, "READ: ({n}) \"")?;
        out.write_all(&buf[..n])?;
        writeln!(out, "\"")?;
        out.flush()?;
        Ok(())
    }

    fn handle_expt(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.close()?;
        Ok(())
    }
}

/// `asyncore-file` (Python's `file_dispatcher`) is Unix only: Windows cannot wait on a
/// file or a pipe with mio or `WSAPoll`.
#[cfg(not(unix))]
fn main() {
    let _ = (
        FileReader,
        Loop::new(),
        SocketMap::new(),
        Args::from_env(USAGE),
    );
    eprintln!("file_reader: file dispatchers are Unix only (asyncore-file)");
    std::process::exit(2);
}

#[cfg(unix)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let paths = Args::from_env(USAGE).positional();
    let [path] = paths.as_slice() else {
        usage_error(USAGE, "give exactly one PATH");
    };
    let mut map = SocketMap::new();
    let chan = if path == "-" {
        asyncore_file::file_dispatcher(std::io::stdin())?
    } else {
        let file = std::fs::File::open(path)
            .unwrap_or_else(|e| usage_error(USAGE, &format!("cannot open {path}: {e}")));
        asyncore_file::file_dispatcher(&file)?
    };
    map.insert(chan, FileReader)?;
    Loop::new().run(&mut map)?;
    Ok(())
}

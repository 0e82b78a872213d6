//! What every example program shares: argument parsing, usage errors, and the
//! `listening on HOST:PORT` line.

use asyncore_core::{Channel, DisplayAddr, Domain, SockAddr, Type};
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::exit;

/// Prints `message` and `usage` to standard error and exits with status 2, as every
/// program here does for a bad argument.
pub fn usage_error(usage: &str, message: &str) -> ! {
    eprintln!("error: {message}\n\n{usage}");
    exit(2);
}

/// Command-line arguments as a queue: options with values and positional arguments.
#[derive(Debug)]
pub struct Args {
    usage: &'static str,
    rest: std::collections::VecDeque<String>,
}

impl Args {
    /// The process's arguments after the program name; `-h` / `--help` prints `usage` to
    /// standard output and exits 0.
    pub fn from_env(usage: &'static str) -> Args {
        Args::new(usage, std::env::args().skip(1))
    }

    /// Arguments from any list (for tests).
    pub fn new(usage: &'static str, args: impl IntoIterator<Item = String>) -> Args {
        let rest: std::collections::VecDeque<String> = args.into_iter().collect();
        if rest.iter().any(|a| a == "-h" || a == "--help") {
            println!("{usage}");
            exit(0);
        }
        Args { usage, rest }
    }

    /// Removes `--name VALUE` (or `--name=VALUE`) and returns the value, if present.
    pub fn option(&mut self, name: &str) -> Option<String> {
        let eq = format!("{name}=");
        let i = self
            .rest
            .iter()
            .position(|a| a == name || a.starts_with(&eq))?;
        let arg = self.rest.remove(i)?;
        if let Some(v) = arg.strip_prefix(&eq) {
            return Some(v.to_string());
        }
        match self.rest.remove(i) {
            Some(v) => Some(v),
            None => self.fail(&format!("{name} needs a value")),
        }
    }

    /// Removes the flag `--name` (no value); whether it was there.
    pub fn flag(&mut self, name: &str) -> bool {
        match self.rest.iter().position(|a| a == name) {
            Some(i) => {
                self.rest.remove(i);
                true
            }
            None => false,
        }
    }

    /// `--name VALUE` parsed as `T`, or `default`.
    pub fn parsed<T: std::str::FromStr>(&mut self, name: &str, default: T) -> T
    where
        T::Err: std::fmt::Display,
    {
        match self.option(name) {
            None => default,
            Some(v) => match v.parse() {
                Ok(t) => t,
                Err(e) => self.fail(&format!("bad value {v:?} for {name}: {e}")),
            },
        }
    }

    /// `--listen HOST:PORT`, resolved, or `default`.
    pub fn listen(&mut self, default: &str) -> SocketAddr {
        let text = self
            .option("--listen")
            .unwrap_or_else(|| default.to_string());
        match text.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(addr)) => addr,
            _ => self.fail(&format!("bad --listen address {text:?} (want HOST:PORT)")),
        }
    }

    /// The remaining positional arguments; an unknown `--option` is an error.
    pub fn positional(mut self) -> Vec<String> {
        if let Some(opt) = self
            .rest
            .iter()
            .find(|a| a.starts_with("--") && a.len() > 2)
        {
            self.fail(&format!("unknown option {opt}"));
        }
        self.rest.drain(..).collect()
    }

    /// Fails unless every argument was used.
    pub fn finish(self) {
        let usage = self.usage;
        if let Some(extra) = self.positional().first() {
            usage_error(usage, &format!("unexpected argument {extra:?}"));
        }
    }

    /// Usage error for this program.
    pub fn fail(&self, message: &str) -> ! {
        usage_error(self.usage, message)
    }
}

/// A listening channel on `addr` (SO_REUSEADDR, backlog 1024) and the address it really
/// bound.
///
/// # Errors
/// The OS errors of `socket`, `bind`, `listen`.
pub fn listener(addr: SocketAddr) -> io::Result<(Channel, SockAddr)> {
    listener_on(addr, false)
}

/// As [`listener`]; `shared` also sets `SO_REUSEPORT`, for several loops on one port.
fn listener_on(addr: SocketAddr, shared: bool) -> io::Result<(Channel, SockAddr)> {
    let mut chan = Channel::create_socket(Domain::for_address(addr), Type::STREAM)?;
    chan.set_reuse_addr()?;
    if shared {
        #[cfg(unix)]
        chan.set_reuse_port()?;
        #[cfg(not(unix))]
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "several loops on one port need SO_REUSEPORT, which Windows lacks: run one loop",
        ));
    }
    chan.bind(addr)?;
    chan.listen(1024)?;
    let bound = chan.local_addr()?;
    Ok((chan, bound))
}

/// Runs a server the way every server program here does: `threads` loops (one by
/// default; more share the port through `SO_REUSEPORT`), each with a listening channel on
/// `addr` whose handler `handler()` makes; prints `listening on HOST:PORT` once listening;
/// shuts down gracefully on SIGINT / SIGTERM; returns when every loop has.
///
/// # Errors
/// Binding, a loop's setup, or a loop's wait failed.
pub fn serve<H, F>(
    addr: SocketAddr,
    threads: usize,
    handler: F,
) -> Result<(), Box<dyn std::error::Error>>
where
    H: asyncore_core::Dispatcher,
    F: Fn() -> H + Send + Sync + 'static,
{
    serve_with(asyncore_core::Loop::new(), addr, threads, handler)
}

/// As [`serve`], with the loops run as `lp` says (e.g. `use_poll(true)` for the `poll(2)`
/// backend).
///
/// # Errors
/// As [`serve`].
pub fn serve_with<H, F>(
    lp: asyncore_core::Loop,
    addr: SocketAddr,
    threads: usize,
    handler: F,
) -> Result<(), Box<dyn std::error::Error>>
where
    H: asyncore_core::Dispatcher,
    F: Fn() -> H + Send + Sync + 'static,
{
    let threads = threads.max(1);
    // The first listener is bound here so that port 0 is resolved once for every loop.
    let (first, bound) = listener_on(addr, threads > 1)?;
    if threads == 1 {
        // One loop runs on this thread: a process of one thread is cheaper for the kernel
        // in every system call on a descriptor (no shared descriptor table to count on).
        let mut map = asyncore_core::SocketMap::new();
        map.insert(first, handler())?;
        shutdown_on_signals(&mut map)?;
        announce(&bound)?;
        lp.run(&mut map)?;
        return Ok(());
    }
    let port_addr = bound.as_socket().unwrap_or(addr);
    let first = std::sync::Mutex::new(Some(first));
    let group = asyncore_core::LoopGroup::spawn(threads, lp, move |index, map| {
        let taken = if index == 0 {
            first.lock().ok().and_then(|mut f| f.take())
        } else {
            None
        };
        let chan = match taken {
            Some(chan) => chan,
            None => listener_on(port_addr, true)?.0,
        };
        map.insert(chan, handler())?;
        shutdown_on_signals(map)
    })?;
    announce(&bound)?;
    group.join()?;
    Ok(())
}

/// Prints the one line `listening on HOST:PORT` and flushes standard output.
///
/// # Errors
/// Standard output is closed.
pub fn announce(bound: &SockAddr) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "listening on {}", DisplayAddr(bound))?;
    out.flush()
}

/// How long a server lets queued output drain after SIGINT or SIGTERM.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Shuts `map` down gracefully on SIGINT or SIGTERM (on Windows: Ctrl-C, Ctrl-Break or
/// the console closing): listeners close, queued output drains for up to
/// [`SHUTDOWN_GRACE`], then its loop returns, so the program can exit 0 with nothing
/// queued lost. Several maps (loops) may each call it. See `signals.rs` for how.
///
/// # Errors
/// The wakeup channel cannot be made, or the handlers cannot be installed.
pub fn shutdown_on_signals(map: &mut asyncore_core::SocketMap) -> io::Result<()> {
    crate::signals::shutdown_on_signals(map)
}

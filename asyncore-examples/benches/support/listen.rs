//! `--listen HOST:PORT` and the `listening on HOST:PORT` line, as the example programs
//! have them, for the bench's anchor servers.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};

/// The address of `--listen HOST:PORT` (default `127.0.0.1:0`); exits 2 with `usage` on a
/// bad argument. `--bench` (what `cargo bench` passes) is ignored.
pub fn listen_arg(usage: &str) -> SocketAddr {
    let mut text = String::from("127.0.0.1:0");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => match args.next() {
                Some(v) => text = v,
                None => bad(usage, "--listen needs a value"),
            },
            "--bench" => {}
            other => bad(usage, &format!("unexpected argument {other:?}")),
        }
    }
    match text.to_socket_addrs().ok().and_then(|mut a| a.next()) {
        Some(addr) => addr,
        None => bad(usage, &format!("bad --listen address {text:?}")),
    }
}

fn bad(usage: &str, message: &str) -> ! {
    eprintln!("error: {message}\n\n{usage}");
    std::process::exit(2);
}

/// Prints `listening on ADDR` and flushes standard output.
pub fn announce(addr: SocketAddr) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()
}

//! The case file `tests/data/resp_cases.txt` (format at its top): parsing, and running one
//! case against a server. Std only: `cargo xtask interop` includes this file with
//! `#[path]` to run the same cases against resp_server and a real redis-server.

#![allow(dead_code)] // Each includer uses a different part.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// How long one case may take.
pub const CASE_DEADLINE: Duration = Duration::from_secs(10);

/// One request/reply case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Its name, without the `ours` mark.
    pub name: String,
    /// resp_server deliberately differs from redis-server here.
    pub ours: bool,
    /// The bytes to send, in one write.
    pub send: Vec<u8>,
    /// All the server must send back before it closes.
    pub expect: Vec<u8>,
}

/// The bytes of a case line: literal, but for `\r \n \t \0 \\ \xHH`.
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let (byte, len) = match bytes.get(i + 1) {
            Some(b'r') => (b'\r', 2),
            Some(b'n') => (b'\n', 2),
            Some(b't') => (b'\t', 2),
            Some(b'0') => (0, 2),
            Some(b'\\') => (b'\\', 2),
            Some(b'x') => {
                let hex = text
                    .get(i + 2..i + 4)
                    .ok_or_else(|| format!("two hex digits after \\x in {text:?}"))?;
                let b = u8::from_str_radix(hex, 16).map_err(|e| format!("{hex:?}: {e}"))?;
                (b, 4)
            }
            other => return Err(format!("bad escape {other:?} in {text:?}")),
        };
        out.push(byte);
        i += len;
    }
    Ok(out)
}

/// Parses the case file.
pub fn parse(text: &str) -> Result<Vec<Case>, String> {
    let mut cases: Vec<Case> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("case ") {
            let (name, ours) = match rest.strip_suffix(" ours") {
                Some(name) => (name, true),
                None => (rest, false),
            };
            cases.push(Case {
                name: name.to_string(),
                ours,
                send: Vec::new(),
                expect: Vec::new(),
            });
            continue;
        }
        let case = cases
            .last_mut()
            .ok_or_else(|| format!("{line:?} before any case"))?;
        if let Some(bytes) = line.strip_prefix("send ") {
            case.send.extend(unescape(bytes)?);
        } else if let Some(bytes) = line.strip_prefix("expect ") {
            case.expect.extend(unescape(bytes)?);
        } else if line != "expect" {
            return Err(format!("unknown line {line:?}"));
        }
    }
    Ok(cases)
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(CASE_DEADLINE))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Everything the server sends until it closes. A reset after the close (the server
/// closed with our later bytes unread) ends the reply like the close does.
pub fn read_to_close(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(got),
            Err(e) => return Err(e),
        }
    }
}

/// Sends `pieces` one write each (stopping if the server closed), half-closes, and returns
/// all the server sent.
pub fn exchange(addr: SocketAddr, pieces: &[&[u8]]) -> std::io::Result<Vec<u8>> {
    let mut stream = connect(addr)?;
    for piece in pieces {
        if stream.write_all(piece).is_err() {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    read_to_close(&mut stream)
}

/// Empties the key space (FLUSHALL on a connection of its own).
pub fn flushall(addr: SocketAddr) -> std::io::Result<()> {
    let mut stream = connect(addr)?;
    stream.write_all(b"FLUSHALL\r\n")?;
    let mut ok = [0u8; 5];
    stream.read_exact(&mut ok)?;
    if &ok != b"+OK\r\n" {
        return Err(std::io::Error::other("FLUSHALL did not answer +OK"));
    }
    Ok(())
}

/// Runs `case` against the server at `addr`: what the server sent.
pub fn run(addr: SocketAddr, case: &Case) -> std::io::Result<Vec<u8>> {
    flushall(addr)?;
    exchange(addr, &[&case.send])
}

/// Bytes shown with escapes, for messages.
pub fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).escape_debug().to_string()
}

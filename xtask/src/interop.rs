//! `cargo xtask interop`: the example programs against real peers that no one here wrote.
//!
//! - `http_client` fetching from `python3 -m http.server`;
//! - `resp_server` driven by `redis-cli` (every command, each reply compared with what a
//!   real `redis-server` answers to the same command line) and by `redis-benchmark`.
//!
//! A missing tool is a failure, never a skip.

use crate::proc::{find_tool, Background};
use crate::{project_root, run_cargo};
use std::path::PathBuf;
use std::process::Command;

/// Where `cargo build --release` puts the example programs.
pub(crate) fn release_bin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"));
    target.join("release").join(name)
}

pub fn interop() -> Result<(), String> {
    for tool in ["python3", "redis-cli", "redis-benchmark", "redis-server"] {
        find_tool(tool)?;
    }
    run_cargo(&["build", "--release", "-p", "asyncore-examples"], &[])?;
    let mut failures = Vec::new();
    let mut passed = 0;
    for (name, check) in CHECKS {
        eprintln!("interop: {name}");
        match check() {
            Ok(()) => {
                passed += 1;
                eprintln!("interop: {name}: ok");
            }
            Err(e) => {
                eprintln!("interop: {name}: FAILED: {e}");
                failures.push(*name);
            }
        }
    }
    println!("interop: {passed} passed, {} failed", failures.len());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("interop checks failed: {}", failures.join(", ")))
    }
}

type Check = fn() -> Result<(), String>;

const CHECKS: &[(&str, Check)] = &[
    ("http_client vs python3 -m http.server", http_client),
    (
        "file_reader on a terminal (python3 pty)",
        file_reader_terminal,
    ),
];

fn output_text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `http_client` fetches a file from Python's HTTP server; a refused URL is reported and the
/// other URL is still fetched.
fn http_client() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("asyncore-interop-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let body: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(dir.join("page.txt"), &body).map_err(|e| e.to_string())?;
    let server = Background::start(
        Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .current_dir(&dir),
        |line| {
            // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
            line.split(" port ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_string)
        },
    )?;
    let url = format!("http://127.0.0.1:{}/page.txt", server.found);
    let refused = format!("http://127.0.0.1:{}/", crate::proc::unused_port()?);
    let out = Command::new(release_bin("http_client"))
        .args([&url, &refused])
        .output()
        .map_err(|e| e.to_string())?;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let text = output_text(&out);
    eprint!("{text}");
    let mut lines = text.lines();
    let first = lines.next().unwrap_or_default();
    let n: usize = first
        .strip_prefix(&format!("{url} got "))
        .and_then(|r| r.strip_suffix(" bytes"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("unexpected line {first:?}"))?;
    // The response is the status line and headers, then the whole file.
    if n <= body.len() || n > body.len() + 1024 {
        return Err(format!("got {n} bytes for a {}-byte file", body.len()));
    }
    let second = lines.next().unwrap_or_default();
    if !second.starts_with(&format!("{refused} error: ")) {
        return Err(format!("unexpected line {second:?}"));
    }
    if out.status.code() != Some(1) {
        return Err(format!("exit status {:?}, want 1", out.status.code()));
    }
    Ok(())
}

/// `file_reader -` with a terminal (a pty made by Python's `pty` module) as standard input:
/// a typed line is read, and end of file (^D) ends the program.
fn file_reader_terminal() -> Result<(), String> {
    let script = r#"
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "-"])
os.write(fd, b"hello terminal\n")
os.write(fd, b"\x04")
out = b""
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(release_bin("file_reader"))
        .output()
        .map_err(|e| e.to_string())?;
    let text = output_text(&out);
    eprint!("{text}");
    // The terminal turns "\n" into "\r\n" on output; the line read is "hello terminal\n".
    let text = text.replace("\r\n", "\n");
    if !text.contains("READ: (15) \"hello terminal\n\"") {
        return Err("the typed line was not read".into());
    }
    if !text.contains("READ: (0) \"\"") {
        return Err("end of file (^D) was not seen".into());
    }
    if !out.status.success() {
        return Err(format!("exit status {:?}", out.status.code()));
    }
    Ok(())
}

//! `cargo xtask interop`: the example programs against real peers that no one here wrote.
//!
//! - `http_client` fetching from `python3 -m http.server`;
//! - `resp_server` driven by `redis-cli` (every command, each reply compared with what a
//!   real `redis-server` answers to the same command line) and by `redis-benchmark`;
//! - `smtp_server` and `python3 -m smtpd -n -c DebuggingServer` given the same
//!   conversations (raw sockets and `smtplib`), replies and printouts compared.
//!
//! The same servers with TLS against real TLS clients are in `interop_tls.rs`. A missing
//! tool is a failure, never a skip.

#[path = "../../asyncore-examples/tests/common/resp_cases.rs"]
mod resp_cases;

use crate::proc::{find_tool, unused_port, Background};
use crate::{project_root, run_cargo};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

/// Where `cargo build --release` puts the example programs.
pub(crate) fn release_bin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"));
    target.join("release").join(name)
}

/// Runs every check, or those whose name contains `only` (`cargo xtask interop tls`).
pub fn interop(only: Option<&str>) -> Result<(), String> {
    for tool in [
        "python3",
        "redis-cli",
        "redis-benchmark",
        "redis-server",
        "openssl",
    ] {
        find_tool(tool)?;
    }
    run_cargo(
        &[
            "build",
            "--release",
            "-p",
            "asyncore-examples",
            "--features",
            "tls",
        ],
        &[],
    )?;
    let mut failures = Vec::new();
    let mut passed = 0;
    for (name, check) in CHECKS {
        if only.is_some_and(|o| !name.contains(o)) {
            continue;
        }
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
    (
        "resp_server: recorded cases vs redis-server",
        resp_cases_check,
    ),
    (
        "resp_server: redis-cli, every command, vs redis-server",
        redis_cli_check,
    ),
    ("resp_server: redis-benchmark", redis_benchmark_check),
    (
        "smtp_server vs python3 -m smtpd -n -c DebuggingServer (differential)",
        smtpd_differential,
    ),
    (
        "resp_server --tls-cert: redis-cli --tls, every command, vs redis-server --tls-port",
        crate::interop_tls::redis_cli_tls,
    ),
    (
        "resp_server --tls-cert: redis-benchmark --tls",
        crate::interop_tls::redis_benchmark_tls,
    ),
    (
        "chat_server --tls-cert: openssl s_client (TLS 1.3, TLS 1.2 with renegotiation)",
        crate::interop_tls::s_client_chat,
    ),
    (
        "resp, chat and smtp servers with --tls-cert: Python's ssl and smtplib",
        crate::interop_tls::python_clients,
    ),
    (
        "http_client https:// (tls) vs python3 http.server wrapped in ssl",
        crate::interop_tls::https_client,
    ),
];

/// The conversations of `xtask/interop/smtpd_diff.py` against CPython's smtpd and
/// smtp_server with the same flags: every reply and every printed message compared.
fn smtpd_differential() -> Result<(), String> {
    let script = project_root().join("xtask/interop/smtpd_diff.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(release_bin("smtp_server"))
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let text = output_text(&out);
    eprint!("{text}");
    if out.status.success() {
        Ok(())
    } else {
        Err("smtp_server's replies or printout differ from smtpd's (see above)".into())
    }
}

pub(crate) fn output_text(out: &std::process::Output) -> String {
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

/// A resp_server on a free port, ready.
fn start_resp_server() -> Result<(Background, SocketAddr), String> {
    start_program("resp_server", &[])
}

/// One of our server programs with `args`, on a free port, ready.
pub(crate) fn start_program(
    program: &str,
    args: &[String],
) -> Result<(Background, SocketAddr), String> {
    let server = Background::start(
        Command::new(release_bin(program))
            .args(["--listen", "127.0.0.1:0"])
            .args(args),
        |line| line.strip_prefix("listening on ").map(str::to_string),
    )?;
    let addr = server
        .found
        .parse()
        .map_err(|e| format!("bad address: {e}"))?;
    Ok((server, addr))
}

/// A real redis-server with one database (resp_server has one), no persistence.
fn start_redis_server() -> Result<(Background, SocketAddr), String> {
    let port = unused_port()?;
    let server = Background::start(
        Command::new("redis-server").args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--databases",
            "1",
        ]),
        |line| {
            line.contains("Ready to accept connections")
                .then(String::new)
        },
    )?;
    Ok((server, SocketAddr::from(([127, 0, 0, 1], port))))
}

/// Every case of `resp_cases.txt` against resp_server (all of them) and a real
/// redis-server (all but those marked `ours`): both must send exactly the recorded bytes.
fn resp_cases_check() -> Result<(), String> {
    let text = std::fs::read_to_string(
        crate::project_root().join("asyncore-examples/tests/data/resp_cases.txt"),
    )
    .map_err(|e| e.to_string())?;
    let cases = resp_cases::parse(&text)?;
    let (_ours, ours_addr) = start_resp_server()?;
    let (_redis, redis_addr) = start_redis_server()?;
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in &cases {
        let mut targets = vec![("resp_server", ours_addr)];
        if !case.ours {
            targets.push(("redis-server", redis_addr));
        }
        for (who, addr) in targets {
            let got = resp_cases::run(addr, case).map_err(|e| format!("{who}: {e}"))?;
            compared += 1;
            if got != case.expect {
                failures.push(format!(
                    "{who}, case {:?}: got {}, expected {}",
                    case.name,
                    resp_cases::show(&got),
                    resp_cases::show(&case.expect)
                ));
            }
        }
    }
    eprintln!("{} cases, {compared} comparisons", cases.len());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// The commands resp_server serves, as a redis-cli user types them; each server gets the
/// same script on a fresh key space and redis-cli's output must be identical.
pub(crate) const REDIS_CLI_SCRIPT: &str = "FLUSHALL
PING
PING \"hello world\"
ECHO hi
SET k v
GET k
SET k v2 EX 100
GET k
SET t 1 PX 100000
SET k v NX
SET nk v XX
GET nk
EXISTS k t nosuch k
DEL k nosuch
GET k
INCR n
INCRBY n 41
DECR n
INCR k2
SET s notanumber
INCR s
MSET a 1 b 2 c 3
MGET a b nosuch c
DBSIZE
SELECT 0
CONFIG GET save
CONFIG GET appendonly
CLIENT SETNAME soaker
FOO bar baz
GET
SET onlykey
FLUSHDB
DBSIZE
FLUSHALL
";

fn redis_cli(addr: SocketAddr, script: &str) -> Result<String, String> {
    redis_cli_script(addr, &[], script)
}

/// `redis-cli -h 127.0.0.1 -p PORT EXTRA...` fed `script` on standard input.
pub(crate) fn redis_cli_script(
    addr: SocketAddr,
    extra: &[String],
    script: &str,
) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("redis-cli: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(script.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "redis-cli failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `Ok` when resp_server's and redis-server's outputs are the same, else the lines that
/// differ.
pub(crate) fn same_output(what: &str, ours: &str, theirs: &str) -> Result<(), String> {
    if ours == theirs {
        return Ok(());
    }
    let diff: Vec<String> = ours
        .lines()
        .zip(theirs.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("resp_server {a:?} / redis-server {b:?}"))
        .collect();
    Err(format!("{what} output differs: {}", diff.join("; ")))
}

fn redis_cli_check() -> Result<(), String> {
    let (_ours, ours_addr) = start_resp_server()?;
    let (_redis, redis_addr) = start_redis_server()?;
    let ours = redis_cli(ours_addr, REDIS_CLI_SCRIPT)?;
    let theirs = redis_cli(redis_addr, REDIS_CLI_SCRIPT)?;
    eprint!("{ours}");
    same_output("redis-cli", &ours, &theirs)?;
    // Interactive redis-cli asks COMMAND DOCS at start: it must cope with our answer.
    let hello = redis_cli(ours_addr, "PING\n")?;
    if hello.trim() != "PONG" {
        return Err(format!("redis-cli PING gave {hello:?}"));
    }
    Ok(())
}

/// redis-benchmark's own checks of every reply, against resp_server.
fn redis_benchmark_check() -> Result<(), String> {
    let (_ours, addr) = start_resp_server()?;
    redis_benchmark_against(addr, &[])
}

/// redis-benchmark (with `extra` arguments) against the server at `addr`: every test
/// must report its rate, and nothing an error.
pub(crate) fn redis_benchmark_against(addr: SocketAddr, extra: &[String]) -> Result<(), String> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(extra)
        .args([
            "-q",
            "-n",
            "20000",
            "-P",
            "16",
            "-t",
            "ping_inline,ping_mbulk,set,get,incr,mset",
        ])
        .output()
        .map_err(|e| format!("redis-benchmark: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    let err = String::from_utf8_lossy(&out.stderr);
    let results: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("requests per second"))
        .collect();
    for r in &results {
        eprintln!("{}", r.trim());
    }
    if !out.status.success() || results.len() != 6 || text.contains("ERR") || !err.trim().is_empty()
    {
        return Err(format!(
            "redis-benchmark: status {:?}, output {text:?}, errors {err:?}",
            out.status.code()
        ));
    }
    Ok(())
}

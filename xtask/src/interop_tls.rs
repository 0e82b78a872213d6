//! The TLS half of `cargo xtask interop`: the servers built with `--features tls`, given a
//! certificate `openssl req` makes for localhost, against real TLS clients:
//!
//! - `redis-cli --tls --cacert` with every command of the plaintext check, its output
//!   compared with what a real `redis-server --tls-port` answers;
//! - `redis-benchmark --tls` (its own checks of every reply);
//! - `openssl s_client` against `chat_server`, including a TLS 1.2 renegotiation request
//!   (refused: the session goes on);
//! - Python's `ssl` as a client of each server (`xtask/interop/tls_clients.py`): RESP,
//!   plaintext and garbage to the TLS port, 1,000 handshakes at once beside a stalled
//!   one, the chat greeting, `smtplib`'s `starttls()` and the STARTTLS injection.

use crate::interop::{output_text, redis_cli_script, same_output, start_program, REDIS_CLI_SCRIPT};
use crate::proc::{unused_port, Background};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A self-signed certificate for `localhost` and 127.0.0.1, made by `openssl req`, in a
/// directory of its own (removed on drop).
pub(crate) struct Certs {
    dir: PathBuf,
}

impl Certs {
    pub(crate) fn new(tag: &str) -> Result<Certs, String> {
        let dir = std::env::temp_dir().join(format!("asyncore-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            // An end entity, not a CA: rustls clients (http_client) refuse a CA certificate
            // as a server's; OpenSSL and Python trust a self-signed one either way.
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        if !out.status.success() {
            return Err(format!("openssl req failed: {}", output_text(&out)));
        }
        Ok(Certs { dir })
    }

    pub(crate) fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    pub(crate) fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// `--tls-cert CERT --tls-key KEY`, for our servers.
    pub(crate) fn args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert().display().to_string(),
            "--tls-key".into(),
            self.key().display().to_string(),
        ]
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One of our servers with TLS, on a free port, ready.
fn start_ours(
    program: &str,
    certs: &Certs,
    more: &[&str],
) -> Result<(Background, SocketAddr), String> {
    let mut args = certs.args();
    args.extend(more.iter().map(|a| a.to_string()));
    start_program(program, &args)
}

/// A real redis-server with TLS only (no plaintext port), one database, no persistence.
fn start_redis_tls(certs: &Certs) -> Result<(Background, SocketAddr), String> {
    let port = unused_port()?;
    let server = Background::start(
        Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(certs.cert())
            .arg("--tls-key-file")
            .arg(certs.key())
            .args(["--tls-auth-clients", "no", "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--databases", "1"]),
        |line| {
            line.contains("Ready to accept connections")
                .then(String::new)
        },
    )?;
    Ok((server, SocketAddr::from(([127, 0, 0, 1], port))))
}

/// The TLS arguments of redis-cli and redis-benchmark.
fn tls_client_args(certs: &Certs) -> Vec<String> {
    vec![
        "--tls".into(),
        "--cacert".into(),
        certs.cert().display().to_string(),
        "--sni".into(),
        "localhost".into(),
    ]
}

pub(crate) fn redis_cli_tls() -> Result<(), String> {
    let certs = Certs::new("interop-tls-cli")?;
    let (_ours, ours_addr) = start_ours("resp_server", &certs, &[])?;
    let (_redis, redis_addr) = start_redis_tls(&certs)?;
    let tls = tls_client_args(&certs);
    let ours = redis_cli_script(ours_addr, &tls, REDIS_CLI_SCRIPT)?;
    let theirs = redis_cli_script(redis_addr, &tls, REDIS_CLI_SCRIPT)?;
    eprintln!("redis-cli --tls: {} lines of replies", ours.lines().count());
    same_output("redis-cli --tls", &ours, &theirs)
}

pub(crate) fn redis_benchmark_tls() -> Result<(), String> {
    let certs = Certs::new("interop-tls-bench")?;
    let (_ours, addr) = start_ours("resp_server", &certs, &[])?;
    crate::interop::redis_benchmark_against(addr, &tls_client_args(&certs))
}

/// `openssl s_client` against chat_server: first over TLS 1.2 asking to renegotiate (`R`
/// on a line of its own), which rustls refuses (OpenSSL then gives up: "no
/// renegotiation"); then, the server serving on, as a chat user over TLS 1.3: the
/// greeting, `/who` and `/quit` (the server's close, with close_notify, ends s_client).
pub(crate) fn s_client_chat() -> Result<(), String> {
    let certs = Certs::new("interop-tls-chat")?;
    let (_server, addr) = start_ours("chat_server", &certs, &[])?;
    for (version, input) in [
        ("-tls1_2", "R\n/who\n/quit\n"),
        ("-tls1_3", "/who\n/quit\n"),
    ] {
        let mut child = Command::new("openssl")
            .args(["s_client", "-connect", &addr.to_string(), version])
            .args([
                "-servername",
                "localhost",
                "-verify_return_error",
                "-CAfile",
            ])
            .arg(certs.cert())
            .args(["-quiet", "-no_ign_eof"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("openssl s_client: {e}"))?;
        // Standard input stays open (its end would end s_client before the replies): the
        // server's close after `/quit` ends it.
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| e.to_string())?;
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(out) => out.map_err(|e| e.to_string())?,
            Err(_) => {
                let _ = Command::new("kill").arg(pid.to_string()).status();
                return Err(format!("s_client {version} still runs after 30 s"));
            }
        };
        drop(stdin);
        let text = String::from_utf8_lossy(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        eprintln!("s_client {version}: {:?}", text.lines().collect::<Vec<_>>());
        if !err.contains("verify return:1") {
            return Err(format!("s_client {version} did not verify: {err:?}"));
        }
        if version == "-tls1_2" {
            if !err.contains("RENEGOTIATING") || !err.contains("no renegotiation") {
                return Err(format!("renegotiation was not tried and refused: {err:?}"));
            }
            continue;
        }
        let lines: Vec<&str> = text.lines().collect();
        let want_who = lines
            .get(1)
            .is_some_and(|l| l.starts_with("* users: guest"));
        if !lines
            .first()
            .is_some_and(|l| l.starts_with("* welcome guest"))
            || !want_who
            || lines.last() != Some(&"* bye")
        {
            return Err(format!("s_client {version} got {text:?} (stderr {err:?})"));
        }
    }
    Ok(())
}

/// resp_server's peak RSS allowed through the Python clients' checks: 1,000 sessions at
/// about 10 KiB each, their handshakes' buffers, and the program itself, with room to
/// spare: a leak of 128 KiB or more per handshake (there are about 1,000) would not fit.
const PEAK_RSS_BOUND_KIB: u64 = 128 * 1024;

/// Python's `ssl` against each server (see the script's docs), and resp_server's peak
/// memory after them.
pub(crate) fn python_clients() -> Result<(), String> {
    let certs = Certs::new("interop-tls-py")?;
    let script = crate::project_root().join("xtask/interop/tls_clients.py");
    let (resp_server, resp) = start_ours("resp_server", &certs, &[])?;
    let (_chat, chat) = start_ours("chat_server", &certs, &[])?;
    let (_smtp, smtp) = start_ours("smtp_server", &certs, &["--hostname", "mail.test"])?;
    for (what, addr) in [("resp", resp), ("chat", chat), ("smtp", smtp)] {
        run_python(&script, &certs.cert(), what, addr)?;
    }
    // Memory stays bounded through the 1,000 handshakes at once (and the hostile peers).
    let status = std::fs::read_to_string(format!("/proc/{}/status", resp_server.pid()))
        .map_err(|e| format!("resp_server's /proc status: {e}"))?;
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or("no VmHWM in resp_server's /proc status")?;
    eprintln!(
        "resp_server's peak RSS through 1,000 handshakes at once: {:.1} MiB",
        peak_kib as f64 / 1024.0
    );
    if peak_kib > PEAK_RSS_BOUND_KIB {
        return Err(format!(
            "resp_server's peak RSS {peak_kib} KiB is over {PEAK_RSS_BOUND_KIB} KiB"
        ));
    }
    Ok(())
}

fn run_python(script: &Path, cafile: &Path, what: &str, addr: SocketAddr) -> Result<(), String> {
    let out = Command::new("python3")
        .arg(script)
        .arg(cafile)
        .args([what, &addr.to_string()])
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    let text = output_text(&out);
    eprint!("{text}");
    if !out.status.success() {
        return Err(format!("tls_clients.py {what}: {}", text.trim()));
    }
    Ok(())
}

/// Python's `http.server` with its socket wrapped by `ssl`, serving a directory.
const HTTPS_SERVER: &str = "
import http.server, ssl, sys
cert, key = sys.argv[1], sys.argv[2]
srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print('port', srv.server_address[1], flush=True)
srv.serve_forever()
";

/// `http_client --cafile` fetches a file over https from Python's `http.server` wrapped
/// in `ssl` (which closes without `close_notify`: the end of the body is the end of the
/// stream); without `--cafile` the self-signed certificate is refused, with rustls's
/// reason.
pub(crate) fn https_client() -> Result<(), String> {
    let certs = Certs::new("interop-https")?;
    let body: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(certs.dir.join("page.txt"), &body).map_err(|e| e.to_string())?;
    let server = Background::start(
        Command::new("python3")
            .args(["-u", "-c", HTTPS_SERVER])
            .arg(certs.cert())
            .arg(certs.key())
            .current_dir(&certs.dir),
        |line| line.strip_prefix("port ").map(str::to_string),
    )?;
    let url = format!("https://localhost:{}/page.txt", server.found);
    let out = Command::new(crate::interop::release_bin("http_client"))
        .arg("--cafile")
        .arg(certs.cert())
        .arg(&url)
        .output()
        .map_err(|e| e.to_string())?;
    let text = output_text(&out);
    eprint!("{text}");
    let n: usize = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix(&format!("{url} got ")))
        .and_then(|r| r.strip_suffix(" bytes"))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("unexpected output {text:?}"))?;
    if n <= body.len() || n > body.len() + 1024 || !out.status.success() {
        return Err(format!("got {n} bytes for a {}-byte file", body.len()));
    }
    let out = Command::new(crate::interop::release_bin("http_client"))
        .arg(&url)
        .output()
        .map_err(|e| e.to_string())?;
    let text = output_text(&out);
    eprint!("{text}");
    if out.status.code() != Some(1) || !text.contains("error: invalid peer certificate") {
        return Err(format!("an untrusted certificate gave {text:?}"));
    }
    Ok(())
}

//! Running one measurement: a server under test, the OS's accounting of it, and the
//! clients that load it (our load generator, `redis-benchmark`, the framing program).
//!
//! Server CPU is user + system time from `/proc/PID/stat` (`utime` + `stime`, all the
//! process's threads, in clock ticks of `1/CLK_TCK` s), sampled when the client says the
//! timed run starts and again when every reply has arrived. Peak RSS is `VmHWM` from
//! `/proc/PID/status` just before the server is stopped.
//!
//! With [`pin_cpus`], servers run on one CPU and clients on another (util-linux `taskset`,
//! which executes the program in its own process): on this virtual machine a server and a
//! client that the scheduler happens to place on the same CPU answer a lone pipelined
//! client eight times faster than when they are apart, so unpinned runs flip between two
//! modes.

use crate::proc::{unused_port, Background};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

/// The CPUs for servers and for clients, when pinned.
static PIN: OnceLock<Option<(usize, usize)>> = OnceLock::new();

/// Runs every server started from now on on CPU `server` and every client on `client`
/// (once; later calls are ignored).
pub fn pin_cpus(server: usize, client: usize) {
    let _ = PIN.set(Some((server, client)));
}

/// Whose CPU a program runs on.
#[derive(Debug, Clone, Copy)]
enum Role {
    Server,
    Client,
}

/// `program`, under `taskset -c CPU` when CPUs are pinned.
fn command(program: impl AsRef<OsStr>, role: Role) -> Command {
    match PIN.get().copied().flatten() {
        Some((server, client)) => {
            let cpu = match role {
                Role::Server => server,
                Role::Client => client,
            };
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", &cpu.to_string()]).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// How a server under test is started.
#[derive(Debug, Clone)]
pub enum Launch {
    /// A program that takes `--listen HOST:PORT` and prints `listening on HOST:PORT`.
    Program { exe: PathBuf, args: Vec<String> },
    /// Debian's `redis-server`, persistence off; with `tls` (certificate and key files) on
    /// a TLS port only.
    Redis { tls: Option<(PathBuf, PathBuf)> },
}

/// A server under test, stopped (killed) when dropped.
pub struct Server {
    process: Background,
    /// `HOST:PORT` it listens on.
    pub addr: String,
}

impl Server {
    /// Starts the server and waits until it listens.
    ///
    /// # Errors
    /// It cannot start or does not say it listens within the deadline.
    pub fn start(launch: &Launch) -> Result<Server, String> {
        let process = match launch {
            Launch::Program { exe, args } => {
                let mut cmd = command(exe, Role::Server);
                cmd.args(args)
                    .args(["--listen", "127.0.0.1:0"])
                    .env_remove("RUST_LOG");
                Background::start(&mut cmd, |line| {
                    line.strip_prefix("listening on ").map(str::to_string)
                })?
            }
            Launch::Redis { tls } => {
                let port = unused_port()?;
                let dir = std::env::temp_dir();
                let mut cmd = command("redis-server", Role::Server);
                match tls {
                    None => cmd.args(["--port", &port.to_string()]),
                    Some((cert, key)) => cmd
                        .args(["--port", "0", "--tls-port", &port.to_string()])
                        .arg("--tls-cert-file")
                        .arg(cert)
                        .arg("--tls-key-file")
                        .arg(key)
                        .args(["--tls-auth-clients", "no"]),
                };
                cmd.args(["--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no"])
                    // Room for the idle-scale scenario's 15,000 connections.
                    .args(["--maxclients", "19000"])
                    .arg("--dir")
                    .arg(dir);
                Background::start(&mut cmd, move |line| {
                    line.contains("Ready to accept connections")
                        .then(|| format!("127.0.0.1:{port}"))
                })?
            }
        };
        let addr = process.found.clone();
        Ok(Server { process, addr })
    }

    /// CPU time used so far and resident memory now.
    ///
    /// # Errors
    /// The process is gone or `/proc` cannot be read.
    pub fn sample(&mut self) -> Result<Sample, String> {
        if !self.process.running() {
            return Err(format!("the server exited{}", self.process.tail()));
        }
        let pid = self.process.pid();
        Ok(Sample {
            cpu: cpu_time(pid)?,
            rss_kib: status_kib(pid, "VmRSS:")?,
        })
    }

    /// The most memory it has had resident (`VmHWM`), in KiB.
    ///
    /// # Errors
    /// The process is gone or `/proc` cannot be read.
    pub fn peak_rss_kib(&mut self) -> Result<u64, String> {
        if !self.process.running() {
            return Err(format!("the server exited{}", self.process.tail()));
        }
        status_kib(self.process.pid(), "VmHWM:")
    }
}

/// One look at a server process.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// User + system CPU time so far.
    pub cpu: Duration,
    /// `VmRSS`.
    pub rss_kib: u64,
}

/// Clock ticks per second of `/proc/PID/stat`'s times (`getconf CLK_TCK`; 100 if that
/// cannot be asked).
fn clk_tck() -> u64 {
    static TCK: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// `utime + stime` of process `pid`.
fn cpu_time(pid: u32) -> Result<Duration, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count from the
    // last `)`. Field 3 (state) is then index 0, utime (14) index 11, stime (15) index 12.
    let after = &stat[stat.rfind(')').ok_or("malformed /proc stat")? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("malformed /proc/{pid}/stat"))
    };
    let ticks = field(11)? + field(12)?;
    Ok(Duration::from_nanos(ticks * 1_000_000_000 / clk_tck()))
}

/// A `kB` line of `/proc/PID/status`, e.g. `VmHWM:`.
fn status_kib(pid: u32, key: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no {key} in /proc/{pid}/status"))
}

/// What a client run measured, with the server's share.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Requests (or messages, or bytes) per second.
    pub rate: f64,
    /// Latency percentiles in microseconds (0 when not measured).
    pub p50_us: f64,
    pub p99_us: f64,
    /// Server CPU per request (or delivered message), in microseconds.
    pub cpu_us: f64,
    /// Server `VmRSS` when the timed run started, in KiB.
    pub rss_ready_kib: u64,
}

/// The value of `key=` in a `result ...` line.
fn field(line: &str, key: &str) -> Result<f64, String> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no {key}= in {line:?}"))
}

/// Runs the load generator against `server` with `args` (`--handshake` is added): samples
/// the server when the generator is ready and when it is done.
///
/// # Errors
/// The generator fails (a wrong or missing reply), hangs past `deadline`, or the server
/// dies.
pub fn loadgen(
    exe: &PathBuf,
    server: &mut Server,
    args: &[String],
    deadline: Duration,
) -> Result<Run, String> {
    let mut child = command(exe, Role::Client)
        .args(["--addr", &server.addr])
        .args(args)
        .arg("--handshake")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the load generator: {e}"))?;
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    let stderr = child.stderr.take().map(|mut e| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = e.read_to_string(&mut text);
            text
        })
    });
    let mut stdin = child.stdin.take();
    let end = Instant::now() + deadline;
    let mut result = Err(String::from("the load generator said nothing"));
    let mut before = None;
    let mut after = None;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                result = Err(format!("the load generator ran past {deadline:?}"));
                break;
            }
        };
        let slot = match line.as_str() {
            "ready" => &mut before,
            "done" => &mut after,
            l if l.starts_with("result ") => {
                result = Ok(line.clone());
                continue;
            }
            _ => continue,
        };
        match server.sample() {
            Ok(sample) => *slot = Some(sample),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        }
        if let Some(input) = stdin.as_mut() {
            // The generator may have failed meanwhile; its exit status tells.
            let _ = input.write_all(b"go\n").and_then(|()| input.flush());
        }
    }
    drop(stdin);
    let status = child.wait().map_err(|e| e.to_string())?;
    let errors = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    if !status.success() {
        return Err(format!(
            "the load generator failed ({status}): {}",
            errors.trim()
        ));
    }
    let line = result?;
    let (Some(before), Some(after)) = (before, after) else {
        return Err("the load generator skipped a phase".into());
    };
    let total = field(&line, "total")?;
    Ok(Run {
        rate: field(&line, "rps")?,
        p50_us: field(&line, "p50_us")?,
        p99_us: field(&line, "p99_us")?,
        cpu_us: per(after.cpu - before.cpu, total),
        rss_ready_kib: before.rss_kib,
    })
}

fn per(cpu: Duration, count: f64) -> f64 {
    if count > 0.0 {
        cpu.as_secs_f64() * 1e6 / count
    } else {
        0.0
    }
}

/// Runs a program to completion within `deadline`; returns its standard output.
fn run_to_end(cmd: &mut Command, deadline: Duration) -> Result<String, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let read = |s: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut s) = s {
                let _ = s.read_to_string(&mut text);
            }
            text
        })
    };
    let out = read(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = read(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let end = Instant::now() + deadline;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} ran past {deadline:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("{cmd:?} failed ({status}): {}", err.trim()));
    }
    if err.to_ascii_lowercase().contains("error") {
        return Err(format!("{cmd:?} reported: {}", err.trim()));
    }
    Ok(out)
}

/// `redis-benchmark -c 50 -P PIPELINE -n REQUESTS -t TEST --csv EXTRA...` against
/// `server` (`extra`: `--tls --cacert ...`, `-k 0`).
///
/// # Errors
/// redis-benchmark fails, reports an error, or its output cannot be read.
pub fn redis_benchmark(
    server: &mut Server,
    test: &str,
    pipeline: u32,
    requests: u64,
    extra: &[String],
) -> Result<Run, String> {
    let addr = server.addr.clone();
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("bad address {addr}"))?;
    let before = server.sample()?;
    let out = run_to_end(
        command("redis-benchmark", Role::Client)
            .args(["-h", host, "-p", port, "-c", "50"])
            .args(["-P", &pipeline.to_string(), "-n", &requests.to_string()])
            .args(["-t", test, "--csv"])
            .args(extra),
        Duration::from_secs(600),
    )?;
    let after = server.sample()?;
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
    // "p99_latency_ms","max_latency_ms"
    let row = out
        .lines()
        .find(|l| !l.starts_with("\"test\"") && l.starts_with('"'))
        .ok_or_else(|| format!("no result in redis-benchmark's output: {out:?}"))?;
    let cols: Vec<f64> = row
        .split(',')
        .skip(1)
        .map(|c| c.trim_matches('"').parse().unwrap_or(f64::NAN))
        .collect();
    if cols.len() < 6 || cols.iter().any(|c| c.is_nan()) {
        return Err(format!("unexpected redis-benchmark output: {row:?}"));
    }
    Ok(Run {
        rate: cols[0],
        p50_us: cols[3] * 1000.0,
        p99_us: cols[5] * 1000.0,
        cpu_us: per(after.cpu - before.cpu, requests as f64),
        rss_ready_kib: before.rss_kib,
    })
}

/// Runs the framing program once; returns bytes per second.
///
/// # Errors
/// It fails or its output cannot be read.
pub fn framing(exe: &PathBuf, system: &str, input: &str, seconds: f64) -> Result<f64, String> {
    let out = run_to_end(
        // Framing runs alone, on the servers' CPU.
        command(exe, Role::Server)
            .args(["--system", system, "--input", input])
            .args(["--seconds", &seconds.to_string()]),
        Duration::from_secs(120),
    )?;
    let line = out
        .lines()
        .find(|l| l.starts_with("result "))
        .ok_or_else(|| format!("no result line in {out:?}"))?;
    Ok(field(line, "bytes")? / field(line, "seconds")?)
}

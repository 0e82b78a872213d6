//! Running the example programs as a user would: as subprocesses, with deadlines.

#![allow(dead_code)] // Each test binary uses a different part of this module.

pub mod resp_cases;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any one program may take in a test before it counts as hung.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Runs `exe ARGS` to completion (killed at the deadline) and returns its output.
pub fn run(exe: &str, args: &[&str]) -> Output {
    run_env(exe, args, &[])
}

/// As [`run`], with extra environment variables (e.g. `RUST_LOG`).
pub fn run_env(exe: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let child = Command::new(exe)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn example program");
    wait_output(child)
}

/// Waits for `child` to exit, killing it at the deadline.
pub fn wait_output(mut child: Child) -> Output {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("collect output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect output");
            panic!(
                "program did not finish within {DEADLINE:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

/// A server program running in the background; killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// What the server printed after its `listening on` line, so far.
    printed: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Server {
    /// Starts `exe --listen 127.0.0.1:0 ARGS` and waits (with a deadline) for its
    /// `listening on HOST:PORT` line.
    pub fn start(exe: &str, args: &[&str]) -> Server {
        let mut cmd = Command::new(exe);
        cmd.arg("--listen").arg("127.0.0.1:0").args(args);
        Server::start_command(cmd)
    }

    /// Starts `cmd` (which must end up running a server with `--listen 127.0.0.1:0`) and
    /// waits for its `listening on` line.
    pub fn start_command(mut cmd: Command) -> Server {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = printed.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut reader = BufReader::new(stdout);
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the server never blocks on a full pipe; keep what it says.
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                kept.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let line = rx
            .recv_timeout(DEADLINE)
            .expect("server printed its address");
        let addr = line
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("a HOST:PORT address");
        Server {
            child,
            addr,
            printed,
        }
    }
}

impl Server {
    /// Waits (with the deadline) until the server has printed `expected` after its
    /// `listening on` line, and returns all it printed.
    pub fn printed_until(&self, expected: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let text = String::from_utf8_lossy(&self.printed.lock().unwrap()).into_owned();
            if text.contains(expected) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the server never printed {expected:?}; it printed {text:?}"
            );
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }

    /// The server's CPU time so far (user + system), from `/proc/PID/stat`.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("read /proc/PID/stat");
        // Fields after the parenthesised command name; utime and stime are the 12th and
        // 13th of them, in clock ticks (100 per second on Linux).
        let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }

    /// How many threads the server runs, from `/proc/PID/task`.
    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.child.id()))
            .expect("read /proc/PID/task")
            .count()
    }

    /// Sends SIGTERM and waits (with the deadline) for the exit status. Unix only: Wine
    /// delivers no console control event (Ctrl-Break) to a program run without a console;
    /// the Windows handler has its own test in `src/signals.rs`.
    #[cfg(unix)]
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "server ignored SIGTERM");
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads from `stream` until `want` bytes arrived or the deadline passed.
pub fn read_exactly(stream: &mut std::net::TcpStream, want: usize) -> Vec<u8> {
    stream
        .set_read_timeout(Some(DEADLINE))
        .expect("set timeout");
    let mut got = vec![0u8; want];
    stream
        .read_exact(&mut got)
        .expect("read the expected bytes");
    got
}

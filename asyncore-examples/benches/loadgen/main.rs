//! The load generator of `cargo xtask bench` (a bench target, `harness = false`).
//!
//! ```text
//! loadgen --addr HOST:PORT --mode line|ping|setget|chat|joins [--connections C] [--window W]
//!         [--duration SECS] [--size BYTES] [--idle N] [--users N] [--handshake]
//! ```
//!
//! - `line`: C connections, each keeping W lines of `--size` bytes (default 64) in flight,
//!   every echoed line checked byte for byte.
//! - `ping`, `setget`: the same over the Redis protocol (inline `PING`; multibulk `SET`
//!   then `GET` of the value just set).
//! - `chat`: `--users` connections to `chat_server`, the last one talks, W messages ahead
//!   of the slowest listener at most; every delivered line checked.
//! - `joins`: a flood of joins on `chat_server`: one user, then `--users` more connect
//!   as fast as they can; each must get its welcome, the first a notice of every join.
//! - `--idle N` first opens N more connections and keeps them open and quiet for the run
//!   (one in 256, and the last, makes one round trip first, so that the server has accepted
//!   them all); it raises the soft descriptor limit to the hard one.
//!
//! A wrong, missing or extra reply byte fails the run (exit status 1, reason on stderr).
//! To let the harness sample the server between phases, standard output carries `ready`
//! once every connection is set up and `done` once every reply of the run has arrived;
//! with `--handshake` the generator then waits for a line on standard input before going
//! on. The last line is `result total=N window=N seconds=S rps=R p50_us=P p99_us=P`:
//! replies in all, replies that arrived within the D seconds, and their rate and latency
//! (from the moment the request was queued to the last byte of its reply).

mod chat;
mod hist;
mod idle;
mod pipeline;
mod workload;

use std::io::{BufRead, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::exit;
use std::time::Duration;
use workload::Workload;

const USAGE: &str = "usage: loadgen --addr HOST:PORT --mode line|ping|setget|chat|joins \
[--connections C] [--window W] [--duration SECS] [--size BYTES] [--idle N] [--users N] [--handshake]";

/// What one run measured.
#[derive(Debug)]
pub struct Report {
    total: u64,
    window: u64,
    seconds: f64,
    hist: hist::Histogram,
}

/// The `ready` / `done` lines, and the waits after them under `--handshake`.
#[derive(Debug)]
pub struct Phases {
    handshake: bool,
}

impl Phases {
    fn say(&self, word: &str) -> Result<(), String> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{word}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("stdout: {e}"))?;
        if self.handshake {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("stdin: {e}"))?;
        }
        Ok(())
    }

    /// Every connection is set up; the timed run starts after this.
    pub fn ready(&mut self) -> Result<(), String> {
        self.say("ready")
    }

    /// Every reply has arrived; connections are closed after this.
    pub fn done(&mut self) -> Result<(), String> {
        self.say("done")
    }
}

fn fail(message: &str) -> ! {
    eprintln!("loadgen: {message}\n{USAGE}");
    exit(2);
}

fn main() {
    let mut addr: Option<SocketAddr> = None;
    let mut mode = String::from("line");
    let (mut connections, mut window, mut size, mut idle, mut users) = (50, 16, 64, 0, 1000);
    let mut duration = 5.0f64;
    let mut handshake = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--handshake" {
            handshake = true;
            continue;
        }
        if arg == "--bench" {
            // What `cargo bench` passes to every bench target.
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{arg} needs a value")));
        let number = || -> usize {
            value
                .parse()
                .unwrap_or_else(|_| fail(&format!("bad number {value:?} for {arg}")))
        };
        match arg.as_str() {
            "--addr" => {
                addr = value.to_socket_addrs().ok().and_then(|mut a| a.next());
                if addr.is_none() {
                    fail(&format!("bad address {value:?}"));
                }
            }
            "--mode" => mode = value.clone(),
            "--connections" => connections = number(),
            "--window" => window = number(),
            "--size" => size = number(),
            "--idle" => idle = number(),
            "--users" => users = number(),
            "--duration" => {
                duration = value
                    .parse()
                    .ok()
                    .filter(|d: &f64| *d > 0.0)
                    .unwrap_or_else(|| fail(&format!("bad duration {value:?}")))
            }
            _ => fail(&format!("unknown argument {arg}")),
        }
    }
    let Some(addr) = addr else {
        fail("--addr is required")
    };
    if size < 24 || connections == 0 || window == 0 {
        fail("--size must be at least 24, --connections and --window at least 1");
    }
    let duration = Duration::from_secs_f64(duration);
    let mut phases = Phases { handshake };
    let result = if mode == "chat" {
        chat::run(addr, users, window, size, duration, &mut phases)
    } else if mode == "joins" {
        chat::joins(addr, users, &mut phases)
    } else {
        let workload =
            Workload::parse(&mode, size).unwrap_or_else(|| fail(&format!("unknown mode {mode:?}")));
        idle::open(addr, workload, idle).and_then(|kept| {
            let report = pipeline::run(addr, workload, connections, window, duration, &mut phases);
            drop(kept);
            report
        })
    };
    match result {
        Ok(r) => {
            let us = |q: f64| r.hist.quantile(q).as_secs_f64() * 1e6;
            println!(
                "result total={} window={} seconds={:.3} rps={:.1} p50_us={:.1} p99_us={:.1} samples={}",
                r.total,
                r.window,
                r.seconds,
                r.window as f64 / r.seconds,
                us(0.5),
                us(0.99),
                r.hist.len()
            );
        }
        Err(e) => {
            eprintln!("loadgen: FAILED: {e}");
            exit(1);
        }
    }
}

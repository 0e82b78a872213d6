//! `cargo xtask bench`: our servers measured side by side with the systems a user would
//! otherwise pick (redis-server, tokio, CPython's asyncore/asynchat), in one run.
//!
//! ```text
//! cargo xtask bench [--quick] [--only 1,2,3,4,5,6] [--rounds N] [--duration SECS] [--no-pin]
//!                   [--baseline REV]
//! ```
//!
//! `--baseline REV` is the A/B run a change to the core or the framing comes with: REV's
//! programs (built in a git worktree under `target/bench`) run as a twin of each of ours,
//! named `NAME @ REV`, in the same rounds, and the ratio table compares each of ours with
//! its twin.
//!
//! Builds `asyncore-examples` in release (its programs and its bench targets: the load
//! generator, the tokio anchors, the framing program, `chat_echo`), with the `tls`
//! feature, then runs the five scenarios of the benchmark issue and the TLS one (6). Within a scenario every system runs once per round,
//! one after the other (A B C A B C ...), each time on a fresh server; the report quotes
//! medians over the rounds (at least 3, 1 with `--quick`). It is written to
//! `target/bench/report.md` (every measurement in `target/bench/samples.csv`) and printed.
//!
//! A missing anchor (`redis-server`, `redis-benchmark`, `python3` with asyncore) fails the
//! bench before it starts; one of our programs that is not written yet is shown as "not
//! yet" in the table. A wrong or missing reply fails that measurement, and the bench.
//!
//! The soft limit on open descriptors is raised to the hard one (util-linux `prlimit` on
//! this process, so every server and client started inherits it) for the idle-scale
//! scenario's 15,000 connections; the load generator raises its own limit as well.
//!
//! Servers run on the last CPU and clients (load generator, redis-benchmark) on the first
//! (util-linux `taskset`), unless `--no-pin` or a single CPU: see `measure` for why.

mod build;
mod measure;
pub(crate) mod report;
mod scenarios;

use crate::proc::find_tool;
use crate::project_root;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// How much to measure.
#[derive(Debug, Clone)]
pub struct Settings {
    pub quick: bool,
    pub rounds: usize,
    /// Seconds of load per load-generator measurement.
    pub duration: f64,
    /// redis-benchmark `-n` for `-P 1` and for `-P 16` (a tenth of it for CPython).
    pub redis_requests: [u64; 2],
    pub idle_levels: Vec<usize>,
    pub chat_users: usize,
    pub framing_seconds: f64,
    pub only: Vec<usize>,
    /// Servers on one CPU, clients on another (`--no-pin` turns it off).
    pub pin: bool,
    /// An earlier commit whose programs run beside ours (`--baseline REV`).
    pub baseline: Option<String>,
}

impl Settings {
    fn full() -> Settings {
        Settings {
            quick: false,
            rounds: 3,
            duration: 5.0,
            redis_requests: [200_000, 2_000_000],
            idle_levels: vec![0, 5_000, 15_000],
            chat_users: 1_000,
            framing_seconds: 1.0,
            only: vec![1, 2, 3, 4, 5, 6],
            pin: true,
            baseline: None,
        }
    }

    fn quick() -> Settings {
        Settings {
            quick: true,
            rounds: 1,
            duration: 1.0,
            redis_requests: [50_000, 500_000],
            // The poll(2) backend takes about 40 s to accept 15,000 connections (every
            // pass polls them all): too long for a smoke run.
            idle_levels: vec![0, 5_000],
            framing_seconds: 0.3,
            ..Settings::full()
        }
    }

    fn parse(args: &[String]) -> Result<Settings, String> {
        let mut s = if args.iter().any(|a| a == "--quick") {
            Settings::quick()
        } else {
            Settings::full()
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--quick" => {}
                "--no-pin" => s.pin = false,
                "--baseline" => s.baseline = Some(value()?.clone()),
                "--rounds" => {
                    s.rounds = value()?.parse().map_err(|_| "bad --rounds")?;
                    if s.rounds == 0 {
                        return Err("--rounds must be at least 1".into());
                    }
                }
                "--duration" => {
                    s.duration = value()?.parse().map_err(|_| "bad --duration")?;
                    if s.duration <= 0.0 {
                        return Err("--duration must be positive".into());
                    }
                }
                "--only" => {
                    s.only = value()?
                        .split(',')
                        .map(|n| n.trim().parse().ok().filter(|n| (1..=6).contains(n)))
                        .collect::<Option<Vec<usize>>>()
                        .ok_or("--only takes scenario numbers 1 to 6, e.g. --only 1,4")?;
                }
                other => return Err(format!("unknown bench option {other}\n\n{USAGE}")),
            }
        }
        Ok(s)
    }
}

pub const USAGE: &str =
    "cargo xtask bench [--quick] [--only 1,2,3,4,5,6] [--rounds N] [--duration SECS] [--baseline REV]";

const TITLES: [(usize, &str); 6] = [
    (1, "Line echo"),
    (2, "Redis protocol (redis-benchmark -c 50)"),
    (3, "Idle scale (Redis protocol, inline PING)"),
    (4, "Framing alone, no sockets"),
    (5, "Fan-out (chat_server)"),
    (
        6,
        "TLS (redis-benchmark --tls -c 50; rustls + ring against OpenSSL)",
    ),
];

/// Where reports go: `target/bench` (or `$CARGO_TARGET_DIR/bench`).
fn out_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
        .join("bench")
}

/// The real interpreter behind `python3` (a pyenv shim re-executes a few times; the
/// server's process must be the interpreter itself), checked to have asyncore/asynchat.
fn python() -> Result<PathBuf, String> {
    let out = Command::new("python3")
        .args(["-W", "ignore::DeprecationWarning", "-c"])
        .arg("import asyncore, asynchat, sys; print(sys.executable)")
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "python3 has no asyncore/asynchat (they are gone since 3.12; 3.11 has them): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Raises this process's soft descriptor limit to its hard limit with util-linux
/// `prlimit`, so that every program started from here inherits it.
fn raise_nofile_limit() -> Result<u64, String> {
    let limits = std::fs::read_to_string("/proc/self/limits").map_err(|e| e.to_string())?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .ok_or("no open-files line in /proc/self/limits")?;
    let nums: Vec<&str> = line["Max open files".len()..].split_whitespace().collect();
    let (soft, hard) = match nums.as_slice() {
        [soft, hard, ..] => (*soft, *hard),
        _ => return Err(format!("cannot read {line:?}")),
    };
    if soft != hard {
        let status = Command::new("prlimit")
            .args(["--pid", &std::process::id().to_string()])
            .arg(format!("--nofile={hard}:{hard}"))
            .status()
            .map_err(|e| format!("cannot run prlimit (util-linux): {e}"))?;
        if !status.success() {
            return Err(format!("prlimit failed ({status})"));
        }
    }
    Ok(hard.parse().unwrap_or(u64::MAX))
}

fn first_line(cmd: &str, arg: &str) -> String {
    Command::new(cmd)
        .arg(arg)
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// Today's date (UTC), from the system clock.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn machine() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} cores ({cpu}), Linux {}", kernel.trim())
}

pub fn bench(args: &[String]) -> Result<(), String> {
    let settings = Settings::parse(args)?;
    let started = Instant::now();
    for tool in ["redis-server", "redis-benchmark", "python3"] {
        find_tool(tool)?;
    }
    let python = python()?;
    let limit = raise_nofile_limit()?;
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let pinned = settings.pin && cpus >= 2;
    if pinned {
        find_tool("taskset")?;
        measure::pin_cpus(cpus - 1, 0);
    }
    let programs = build::build()?;
    let baseline = match &settings.baseline {
        Some(rev) => Some((rev.clone(), build::build_baseline(rev, &out_dir())?)),
        None => None,
    };
    let scripts = project_root().join("asyncore-examples/benches/python");
    let mut bench = scenarios::Bench {
        settings: settings.clone(),
        programs,
        baseline,
        python,
        scripts,
        table: report::Table::default(),
        failures: Vec::new(),
    };
    for n in &settings.only {
        eprintln!("bench: scenario {n}");
        match n {
            1 => bench.line_echo()?,
            2 => bench.redis_protocol()?,
            3 => bench.idle_scale()?,
            4 => bench.framing()?,
            5 => bench.fan_out()?,
            _ => bench.tls()?,
        }
    }
    let command = format!("cargo xtask bench {}", args.join(" "));
    let mut md = format!(
        "# asyncore-rs benchmark\n\n\
         {} on {}, by `{}` ({} round{} per system, alternating; medians; {:.0} s in all).\n\
         Anchors: {}; {}; tokio current_thread (tokio 1, tokio-util 0.7).\n",
        today(),
        machine(),
        command.trim(),
        settings.rounds,
        if settings.rounds == 1 { "" } else { "s" },
        started.elapsed().as_secs_f64(),
        first_line("redis-server", "--version"),
        first_line(&bench.python.display().to_string(), "--version"),
    );
    if settings.quick {
        md.push_str(
            "\n**Quick smoke run** (1 round, 1 s loads, idle scale up to 5,000): numbers are \
             indicative only.\n",
        );
    }
    md.push_str(&bench.table.markdown(&TITLES));
    md.push_str(&method(&settings, limit, pinned.then_some((cpus - 1, 0))));
    if !bench.failures.is_empty() {
        md.push_str("\n## Failures\n\n");
        for f in &bench.failures {
            md.push_str(&format!("- {}\n", f.replace('\n', " ")));
        }
    }
    let dir = out_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(dir.join("report.md"), &md).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("samples.csv"), bench.table.csv()).map_err(|e| e.to_string())?;
    println!("{md}");
    eprintln!(
        "bench: report written to {}",
        dir.join("report.md").display()
    );
    if bench.failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} measurement(s) failed", bench.failures.len()))
    }
}

fn method(s: &Settings, limit: u64, pin: Option<(usize, usize)>) -> String {
    let pinning = match pin {
        Some((server, client)) => format!(
            "- Servers (and the framing program) run on CPU {server}, clients (load generator, \
redis-benchmark) on CPU {client} (`taskset`): unpinned, a server and a lone client that \
happen to share a CPU exchange replies about 8 times faster here than when apart, and \
runs flip between the two.\n"
        ),
        None => "- CPUs not pinned (`--no-pin` or one CPU): expect bimodal results for one active client.\n".into(),
    };
    let text = format!(
        "\n## How it is measured\n\n\
- Every server is a fresh process per measurement, started by the harness and bound to \
127.0.0.1 port 0 (redis-server: a free port, `--save '' --appendonly no --maxclients 19000`).\n\
- **Server CPU / req**: user + system time of the server process (all its threads) from \
`/proc/PID/stat` (`utime + stime`, clock ticks of 10 ms), sampled when the client starts \
its timed run and when every reply has arrived, divided by the replies in between \
(redis-benchmark: sampled around the whole `redis-benchmark` run, divided by `-n`).\n\
- **Peak RSS**: `VmHWM` of `/proc/PID/status` before the server is stopped. RSS per idle \
connection: `VmRSS` when the active client starts, minus the same system's with no idle \
connections in the same round, divided by their number.\n\
- Load generator (bench target `loadgen`): C connections, each with W requests in flight \
(a sliding window), every reply compared byte for byte, {} s per measurement; latency \
from queuing a request to the last byte of its reply. Idle connections never send, \
except one in 256 (and the last) that makes one round trip (inline PING) so that the \
server has accepted all before it (accept queues are first in, first out).\n\
- Scenario 2: `redis-benchmark -c 50 -P 1|16 -n {}|{} -t TEST --csv` (a tenth of `-n` \
for CPython); its own p50/p99. The geomean rows are over ping_inline, ping_mbulk, set, get.\n\
- Scenario 4: one process per measurement feeding 16 MiB of input (made beforehand) in \
64 KiB chunks again and again for {} s; throughput of the framing loop alone.\n\
- Scenario 5: {} connections to `chat_server`, the last one talks (at most 16 messages \
ahead of the slowest listener); every other one must receive every message, checked; \
throughput is messages delivered per second, CPU per delivered message.\n\
- `TCP_NODELAY` is set on accepted connections by every server here (ours and the \
anchors). `resp_server --threads 2` runs two loops, pinned like every server to one CPU: \
on this 2-core machine the client takes the other. Soft descriptor limit raised to {limit}. The machine is shared and noisy: compare ratios from one run.\n",
        s.duration, s.redis_requests[0], s.redis_requests[1], s.framing_seconds, s.chat_users
    );
    text + &pinning
}

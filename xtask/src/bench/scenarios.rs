//! The five scenarios of the benchmark. Each runs its systems one after the other, round
//! after round (A B C A B C ...), a fresh server for every measurement.

use super::measure::{self, Launch, Run, Server};
use super::report::{Key, Point, Table, Unit};
use super::Settings;
use std::path::PathBuf;
use std::time::Duration;

mod tls;

/// A system under test: ours or an anchor, and how to start it (or why it cannot be).
#[derive(Debug, Clone)]
pub struct System {
    pub name: String,
    pub ours: bool,
    pub launch: Result<Launch, String>,
}

/// A measurement of a client run, for the table.
fn point(round: usize, run: &Run, peak_rss_kib: Option<f64>) -> Point {
    Point {
        round,
        rate: run.rate,
        p50_us: Some(run.p50_us),
        p99_us: Some(run.p99_us),
        cpu_us: Some(run.cpu_us),
        peak_rss_kib,
        ..Point::default()
    }
}

/// What the scenarios share: settings, programs, where results go.
#[derive(Debug)]
pub struct Bench {
    pub settings: Settings,
    pub programs: super::build::Programs,
    /// `--baseline REV`: the revision and its programs.
    pub baseline: Option<(String, super::build::Programs)>,
    /// The real `python3` executable (not a shim), and the anchor scripts' folder.
    pub python: PathBuf,
    pub scripts: PathBuf,
    pub table: Table,
    pub failures: Vec<String>,
}

impl Bench {
    fn exe(&self, name: &str) -> Result<PathBuf, String> {
        self.programs
            .get(name)
            .cloned()
            .ok_or_else(|| format!("not yet: {name} missing"))
    }

    /// One of our programs (missing is noted in the table, not a failure: it is not
    /// written yet).
    pub fn ours(&self, name: &str, program: &str, args: &[&str]) -> System {
        System {
            name: name.to_string(),
            ours: true,
            launch: self.exe(program).map(|exe| Launch::Program {
                exe,
                args: args.iter().map(|a| a.to_string()).collect(),
            }),
        }
    }

    /// `systems` with, after each of ours, its twin from the baseline build (`NAME @ REV`,
    /// an anchor for the ratio table) when the run has a `--baseline`.
    fn with_baseline(&self, systems: Vec<System>) -> Vec<System> {
        let Some((rev, programs)) = &self.baseline else {
            return systems;
        };
        let mut out = Vec::new();
        for s in systems {
            let twin = s.ours.then(|| System {
                name: super::report::twin_name(&s.name, rev),
                ours: false,
                launch: match &s.launch {
                    Ok(Launch::Program { exe, args }) => self
                        .programs
                        .iter()
                        .find(|(_, e)| *e == exe)
                        .and_then(|(name, _)| programs.get(name))
                        .map(|e| Launch::Program {
                            exe: e.clone(),
                            args: args.clone(),
                        })
                        .ok_or_else(|| format!("not in {rev}")),
                    Ok(other) => Ok(other.clone()),
                    Err(e) => Err(e.clone()),
                },
            });
            out.push(s);
            out.extend(twin);
        }
        out
    }

    /// A bench-only anchor program (its absence is a build problem: a failure).
    fn anchor_program(&self, name: &str, program: &str) -> Result<System, String> {
        Ok(System {
            name: name.to_string(),
            ours: false,
            launch: Ok(Launch::Program {
                exe: self.exe(program)?,
                args: Vec::new(),
            }),
        })
    }

    fn python_anchor(&self, name: &str, script: &str) -> System {
        System {
            name: name.to_string(),
            ours: false,
            launch: Ok(Launch::Program {
                exe: self.python.clone(),
                args: vec![self.scripts.join(script).display().to_string()],
            }),
        }
    }

    fn redis(&self) -> System {
        System {
            name: "redis-server".into(),
            ours: false,
            launch: Ok(Launch::Redis { tls: None }),
        }
    }

    fn loadgen(&self) -> Result<PathBuf, String> {
        self.exe("loadgen")
    }

    /// Notes a failed measurement: in the table, in the list that fails the bench, and on
    /// standard error at once.
    fn fail(&mut self, key: &Key<'_>, what: String) {
        eprintln!(
            "bench: FAILED: {} / {} / {}: {what}",
            key.scenario, key.case, key.system
        );
        self.table.note(key, "FAILED (see below)");
        self.failures.push(format!(
            "scenario {}, {}, {}: {what}",
            key.scenario, key.case, key.system
        ));
    }

    fn show(key: &Key<'_>, round: usize, run: &Run) {
        eprintln!(
            "bench: {} | {} | {} | round {round}: {:.0}/s p50 {:.0} us p99 {:.0} us, server {:.3} us CPU per request",
            key.scenario, key.case, key.system, run.rate, run.p50_us, run.p99_us, run.cpu_us
        );
    }

    fn duration_args(&self) -> Vec<String> {
        vec!["--duration".into(), self.settings.duration.to_string()]
    }

    fn deadline(&self) -> Duration {
        Duration::from_secs_f64(self.settings.duration + 180.0)
    }

    /// Starts `system`, runs `client` against it, adds the point; notes a missing system
    /// or a failure.
    fn measure(
        &mut self,
        key: &Key<'_>,
        system: &System,
        round: usize,
        client: impl FnOnce(&Self, &mut Server) -> Result<Run, String>,
    ) -> Option<Run> {
        let launch = match &system.launch {
            Ok(l) => l,
            Err(why) => {
                self.table.note(key, why);
                return None;
            }
        };
        let result = Server::start(launch).and_then(|mut server| {
            let run = client(self, &mut server)?;
            let peak = server.peak_rss_kib()?;
            Ok((run, peak))
        });
        match result {
            Ok((run, peak)) => {
                Self::show(key, round, &run);
                self.table.add(key, point(round, &run, Some(peak as f64)));
                Some(run)
            }
            Err(e) => {
                self.fail(key, e);
                None
            }
        }
    }

    /// 1. Line echo: C = 50, W = 16, 64-byte lines.
    pub fn line_echo(&mut self) -> Result<(), String> {
        let systems = self.with_baseline(vec![
            self.ours("async_chat (chat_echo)", "chat_echo", &[]),
            self.ours("dispatcher_with_send (echo_server)", "echo_server", &[]),
            self.anchor_program("tokio current_thread + LinesCodec", "tokio_echo")?,
            self.python_anchor("CPython 3.11 asynchat", "echo_asynchat.py"),
        ]);
        let loadgen = self.loadgen()?;
        let mut args: Vec<String> = ["--mode", "line", "--connections", "50", "--window", "16"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(["--size".into(), "64".into()]);
        args.extend(self.duration_args());
        for round in 1..=self.settings.rounds {
            for s in &systems {
                let key = Key {
                    scenario: 1,
                    case: "C=50 W=16, 64 B lines",
                    group: None,
                    system: &s.name,
                    ours: s.ours,
                    unit: Unit::Requests,
                };
                self.measure(&key, s, round, |b, server| {
                    measure::loadgen(&loadgen, server, &args, b.deadline())
                });
            }
        }
        Ok(())
    }

    /// 2. redis-benchmark, `-c 50`, `-P 1` and `-P 16`.
    pub fn redis_protocol(&mut self) -> Result<(), String> {
        let systems = self.with_baseline(vec![
            self.ours("resp_server", "resp_server", &[]),
            // Issue 7's loop per core: two loops on one port, one shared key space.
            self.ours(
                "resp_server --threads 2",
                "resp_server",
                &["--threads", "2"],
            ),
            self.redis(),
            self.anchor_program("tokio current_thread RESP", "tokio_resp")?,
            self.python_anchor("CPython 3.11 asynchat RESP", "resp_asynchat.py"),
        ]);
        const TESTS: [&str; 4] = ["ping_inline", "ping_mbulk", "set", "get"];
        for round in 1..=self.settings.rounds {
            for s in &systems {
                let python = s.name.starts_with("CPython");
                let first = Key {
                    scenario: 2,
                    case: "ping_inline -P 1",
                    group: Some("-P 1"),
                    system: &s.name,
                    ours: s.ours,
                    unit: Unit::Requests,
                };
                let launch = match &s.launch {
                    Ok(l) => l,
                    Err(why) => {
                        for (p, t) in [1, 16].iter().flat_map(|p| TESTS.map(|t| (*p, t))) {
                            let case = format!("{t} -P {p}");
                            let group = format!("-P {p}");
                            let key = Key {
                                case: &case,
                                group: Some(&group),
                                ..first.clone()
                            };
                            self.table.note(&key, why);
                        }
                        continue;
                    }
                };
                let mut server = match Server::start(launch) {
                    Ok(server) => server,
                    Err(e) => {
                        self.fail(&first, e);
                        continue;
                    }
                };
                let mut runs = Vec::new();
                for (i, pipeline) in [1u32, 16].into_iter().enumerate() {
                    let mut requests = self.settings.redis_requests[i];
                    if python {
                        // CPython is about 15 times slower: fewer requests, same run time.
                        requests /= 10;
                    }
                    for test in TESTS {
                        let case = format!("{test} -P {pipeline}");
                        let group = format!("-P {pipeline}");
                        let key = Key {
                            case: &case,
                            group: Some(&group),
                            ..first.clone()
                        };
                        match measure::redis_benchmark(&mut server, test, pipeline, requests, &[]) {
                            Ok(run) => {
                                Self::show(&key, round, &run);
                                runs.push((case, group, run));
                            }
                            Err(e) => self.fail(&key, e),
                        }
                    }
                }
                let peak = match server.peak_rss_kib() {
                    Ok(p) => Some(p as f64),
                    Err(e) => {
                        self.fail(&first, e);
                        None
                    }
                };
                for (case, group, run) in runs {
                    let key = Key {
                        case: &case,
                        group: Some(&group),
                        ..first.clone()
                    };
                    self.table.add(&key, point(round, &run, peak));
                }
            }
        }
        Ok(())
    }

    /// 3. Idle scale: one pipelined client plus 0, 5,000 and 15,000 idle connections.
    pub fn idle_scale(&mut self) -> Result<(), String> {
        let mut poll = self.ours(
            "resp_server, poll(2) backend",
            "resp_server",
            &["--use-poll"],
        );
        if let Ok(launch) = &poll.launch {
            // The flag is newer than the program: without it, say so instead of failing.
            if let Err(e) = Server::start(launch) {
                eprintln!("bench: resp_server --use-poll does not start: {e}");
                poll.launch = Err("not yet: resp_server does not take --use-poll".into());
            }
        }
        let systems = self.with_baseline(vec![
            self.ours("resp_server, mio backend", "resp_server", &[]),
            poll,
            self.redis(),
        ]);
        let loadgen = self.loadgen()?;
        let levels = self.settings.idle_levels.clone();
        for round in 1..=self.settings.rounds {
            let mut base: Vec<Option<Run>> = vec![None; systems.len()];
            for &idle in &levels {
                let case = format!("1 active (W=16) + {idle} idle");
                for (i, s) in systems.iter().enumerate() {
                    let key = Key {
                        scenario: 3,
                        case: &case,
                        group: None,
                        system: &s.name,
                        ours: s.ours,
                        unit: Unit::Requests,
                    };
                    let mut args: Vec<String> = ["--mode", "ping", "--connections", "1"]
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                    args.extend(["--window".into(), "16".into()]);
                    args.extend(["--idle".into(), idle.to_string()]);
                    args.extend(self.duration_args());
                    let Some(run) = self.measure(&key, s, round, |b, server| {
                        measure::loadgen(&loadgen, server, &args, b.deadline())
                    }) else {
                        continue;
                    };
                    if idle == 0 {
                        base[i] = Some(run);
                    } else if let Some(b) = base[i] {
                        let row = self
                            .table
                            .rows
                            .iter_mut()
                            .rev()
                            .find(|r| r.scenario == 3 && r.case == case && r.system == s.name);
                        if let Some(point) = row.and_then(|r| r.points.last_mut()) {
                            let grown = run.rss_ready_kib as f64 - b.rss_ready_kib as f64;
                            point.per_idle_bytes = Some(grown * 1024.0 / idle as f64);
                            point.vs_no_idle = Some(run.rate / b.rate);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// 4. Framing alone: async_chat's framer against LinesCodec, same input.
    pub fn framing(&mut self) -> Result<(), String> {
        let exe = self.exe("framing")?;
        let inputs = [
            ("lines64", "64 B lines"),
            ("lines1m", "1 MiB lines"),
            ("count1m", "1 MiB count-terminated"),
        ];
        let systems = [
            ("chat", "async_chat framing (Framer)", true),
            ("linescodec", "tokio-util LinesCodec", false),
        ];
        for round in 1..=self.settings.rounds {
            for (input, case) in inputs {
                for (system, name, ours) in systems {
                    let key = Key {
                        scenario: 4,
                        case,
                        group: None,
                        system: name,
                        ours,
                        unit: Unit::Bytes,
                    };
                    match measure::framing(&exe, system, input, self.settings.framing_seconds) {
                        Ok(rate) => {
                            eprintln!(
                                "bench: 4 | {case} | {name} | round {round}: {:.1} MiB/s",
                                rate / 1048576.0
                            );
                            self.table.add(
                                &key,
                                Point {
                                    round,
                                    rate,
                                    ..Point::default()
                                },
                            );
                        }
                        Err(e) => self.fail(&key, e),
                    }
                }
            }
        }
        Ok(())
    }

    /// 5. Fan-out: chat_server, many users, one talker; and a flood of joins.
    pub fn fan_out(&mut self) -> Result<(), String> {
        let systems = self.with_baseline(vec![self.ours("chat_server", "chat_server", &[])]);
        let loadgen = self.loadgen()?;
        let users = self.settings.chat_users;
        let case = format!("{users} users, 1 talker, W=16, 64 B lines");
        let mut args: Vec<String> = ["--mode", "chat", "--window", "16", "--size", "64"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(["--users".into(), users.to_string()]);
        args.extend(self.duration_args());
        for round in 1..=self.settings.rounds {
            for system in &systems {
                let key = Key {
                    scenario: 5,
                    case: &case,
                    group: None,
                    system: &system.name,
                    ours: system.ours,
                    unit: Unit::Messages,
                };
                self.measure(&key, system, round, |b, server| {
                    measure::loadgen(&loadgen, server, &args, b.deadline())
                });
            }
            // Issue 15: every join told to every user used to cost a write per user per
            // join (the square of the users); now the notices of a pass share one push.
            let join_case = format!("{users} joins at once, each announced to all");
            let join_args: Vec<String> = ["--mode", "joins", "--users"]
                .iter()
                .map(|s| s.to_string())
                .chain([users.to_string()])
                .collect();
            for system in &systems {
                let key = Key {
                    scenario: 5,
                    case: &join_case,
                    group: None,
                    system: &system.name,
                    ours: system.ours,
                    unit: Unit::Joins,
                };
                self.measure(&key, system, round, |b, server| {
                    measure::loadgen(&loadgen, server, &join_args, b.deadline())
                });
            }
        }
        Ok(())
    }
}

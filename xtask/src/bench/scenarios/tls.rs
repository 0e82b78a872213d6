//! 6. TLS: resp_server with `--tls-cert/--tls-key` (rustls, ring) against
//!    `redis-server --tls-port` (OpenSSL), the same certificate, `redis-benchmark --tls`.

use super::super::measure::{Launch, Server};
use super::super::report::{Key, Point, Unit};
use super::{Bench, System};
use crate::bench::measure;
use crate::interop_tls::Certs;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Idle TLS connections held for the memory case.
const IDLE: usize = 1000;

impl Bench {
    /// Scenario 6, TLS: `-P 1` and `-P 16` (SET, GET), handshakes with one request per
    /// connection (`-k 0`), and resident memory per idle TLS connection.
    pub fn tls(&mut self) -> Result<(), String> {
        let certs = Certs::new("bench-tls")?;
        let mut ours = self.ours("resp_server --tls-cert", "resp_server", &[]);
        if let Ok(Launch::Program { args, .. }) = &mut ours.launch {
            args.extend(certs.args());
        }
        let systems = [
            ours,
            System {
                name: "redis-server --tls-port".into(),
                ours: false,
                launch: Ok(Launch::Redis {
                    tls: Some((certs.cert(), certs.key())),
                }),
            },
        ];
        let tls: Vec<String> = ["--tls", "--cacert"]
            .iter()
            .map(|s| s.to_string())
            .chain([certs.cert().display().to_string()])
            .chain(["--sni".to_string(), "localhost".to_string()])
            .collect();
        let mut reconnect = tls.clone();
        reconnect.extend(["-k".to_string(), "0".to_string()]);
        let handshakes = self.settings.redis_requests[0] / 10;
        for round in 1..=self.settings.rounds {
            for s in &systems {
                let Ok(launch) = &s.launch else { continue };
                for (pipeline, test) in [(1u32, "set"), (1, "get"), (16, "set"), (16, "get")] {
                    let case = format!("{test} -P {pipeline}");
                    let group = format!("-P {pipeline}");
                    let key = Key {
                        scenario: 6,
                        case: &case,
                        group: Some(&group),
                        system: &s.name,
                        ours: s.ours,
                        unit: Unit::Requests,
                    };
                    let requests = self.settings.redis_requests[usize::from(pipeline > 1)];
                    self.measure(&key, s, round, |_, server| {
                        measure::redis_benchmark(server, test, pipeline, requests, &tls)
                    });
                }
                let key = Key {
                    scenario: 6,
                    case: "handshakes: -k 0, one PING per connection",
                    group: None,
                    system: &s.name,
                    ours: s.ours,
                    unit: Unit::Handshakes,
                };
                self.measure(&key, s, round, |_, server| {
                    measure::redis_benchmark(server, "ping_inline", 1, handshakes, &reconnect)
                });
                let key = Key {
                    scenario: 6,
                    case: "1,000 idle TLS connections, opened one by one",
                    group: None,
                    system: &s.name,
                    ours: s.ours,
                    unit: Unit::Handshakes,
                };
                match self.idle_tls(launch, &certs) {
                    Ok(p) => self.table.add(&key, Point { round, ..p }),
                    Err(e) => self.fail(&key, e),
                }
            }
        }
        Ok(())
    }

    /// A fresh server, its resident memory before and after [`IDLE`] TLS connections
    /// (each with one request answered) are opened and held.
    fn idle_tls(&self, launch: &Launch, certs: &Certs) -> Result<Point, String> {
        let mut server = Server::start(launch)?;
        let (host, port) = server
            .addr
            .rsplit_once(':')
            .map(|(h, p)| (h.to_string(), p.to_string()))
            .ok_or("bad address")?;
        let before = server.sample()?;
        let mut child = Command::new(&self.python)
            .arg(self.scripts.join("tls_idle.py"))
            .args([&host, &port])
            .arg(certs.cert())
            .arg(IDLE.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("python3: {e}"))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let after = server.sample();
        drop(child.stdin.take());
        let _ = child.wait();
        let after = after?;
        let secs: f64 = line
            .strip_prefix("ready ")
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| format!("tls_idle.py said {line:?}"))?;
        let grown = after.rss_kib as f64 - before.rss_kib as f64;
        Ok(Point {
            rate: IDLE as f64 / secs,
            per_idle_bytes: Some(grown * 1024.0 / IDLE as f64),
            peak_rss_kib: Some(after.rss_kib as f64),
            ..Point::default()
        })
    }
}

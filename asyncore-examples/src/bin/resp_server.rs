//! A Redis-protocol (RESP2) server on `async_chat` (protocol: `asyncore_examples::resp`).
//!
//! ```text
//! resp_server [--listen HOST:PORT] [--max-bulk BYTES] [--idle-timeout SECS] [--threads N]
//!             [--use-poll] [--tls-cert PEM --tls-key PEM]
//!             (defaults: 127.0.0.1:6380, 536870912 bytes = 512 MiB, Redis's proto-max-bulk-len,
//!              no idle timeout, 1 thread)
//! ```
//! With `--threads N`, N loops share the port (`SO_REUSEPORT`) and one key space (behind a
//! mutex taken once per read: the requests of one read run under one lock), so every client
//! sees every key. `--use-poll` runs the loops on the `poll(2)` reference backend instead of
//! mio (for comparisons).
//! Talk to it with `redis-cli -p 6380`, or load it with `redis-benchmark -p 6380`. SIGINT
//! or SIGTERM shuts it down gracefully. With `--tls-cert`/`--tls-key` (a build with the
//! `tls` feature) every connection speaks TLS: `redis-cli --tls --cacert PEM -p 6380`.

use asyncore_core::Loop;
use asyncore_examples::cli::{serve_with, usage_error, Args};
use asyncore_examples::resp::{Limits, RespServer, Settings, SharedStore, DEFAULT_MAX_BULK};
use std::time::Duration;

const USAGE: &str =
    "usage: resp_server [--listen HOST:PORT] [--max-bulk BYTES] [--idle-timeout SECS] [--threads N] [--use-poll]
                   [--tls-cert PEM --tls-key PEM]
  defaults: --listen 127.0.0.1:6380 --max-bulk 536870912 (512 MiB, Redis's proto-max-bulk-len),
  no idle timeout, 1 thread";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let mut args = Args::from_env(USAGE);
    let addr = args.listen("127.0.0.1:6380");
    let max_bulk: usize = args.parsed("--max-bulk", DEFAULT_MAX_BULK);
    let idle: f64 = args.parsed("--idle-timeout", 0.0);
    let threads: usize = args.parsed("--threads", 1);
    let use_poll = args.flag("--use-poll");
    let tls = asyncore_examples::tls::options(&mut args, USAGE);
    args.finish();
    if !idle.is_finite() || idle < 0.0 {
        usage_error(USAGE, "--idle-timeout must be a positive number of seconds");
    }
    if threads == 0 {
        usage_error(USAGE, "--threads must be at least 1");
    }
    let settings = Settings {
        limits: Limits::with_max_bulk(max_bulk),
        idle_timeout: (idle > 0.0).then(|| Duration::from_secs_f64(idle)),
    };
    let store = SharedStore::default();
    let lp = Loop::new().use_poll(use_poll);
    serve_with(lp, addr, threads, move || {
        RespServer::with_store(store.clone(), settings).with_tls(tls.clone())
    })
}

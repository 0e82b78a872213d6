//! A Redis-protocol (RESP2) server on `async_chat` (protocol: `asyncore_examples::resp`).
//!
//! ```text
//! resp_server [--listen HOST:PORT] [--max-bulk BYTES]
//!             (defaults: 127.0.0.1:6380, 536870912 bytes = 512 MiB, Redis's proto-max-bulk-len)
//! ```
//! Talk to it with `redis-cli -p 6380`, or load it with `redis-benchmark -p 6380`. SIGINT
//! or SIGTERM shuts it down gracefully.

use asyncore_core::{Loop, SocketMap};
use asyncore_examples::cli::{announce, listener, shutdown_on_signals, Args};
use asyncore_examples::resp::{Limits, RespServer, Settings, DEFAULT_MAX_BULK};

const USAGE: &str = "usage: resp_server [--listen HOST:PORT] [--max-bulk BYTES]
  defaults: --listen 127.0.0.1:6380 --max-bulk 536870912 (512 MiB, Redis's proto-max-bulk-len)";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let mut args = Args::from_env(USAGE);
    let addr = args.listen("127.0.0.1:6380");
    let max_bulk: usize = args.parsed("--max-bulk", DEFAULT_MAX_BULK);
    args.finish();
    let settings = Settings {
        limits: Limits::with_max_bulk(max_bulk),
    };
    let (server, bound) = listener(addr)?;
    let mut map = SocketMap::new();
    map.insert(server, RespServer::new(settings))?;
    shutdown_on_signals(vec![map.waker()?])?;
    announce(&bound)?;
    Loop::new().run(&mut map)?;
    Ok(())
}

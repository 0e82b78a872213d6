//! A multi-user line chat on `async_chat` (protocol: `asyncore_examples::chat`).
//!
//! ```text
//! chat_server [--listen HOST:PORT] [--max-line BYTES] [--idle-timeout SECS]
//!             [--max-queued BYTES] [--tls-cert PEM --tls-key PEM]
//!             (defaults: 127.0.0.1:7000, 4096 bytes, no idle timeout, 1 MiB)
//! ```
//! Talk to it with `nc 127.0.0.1 7000` (with TLS: `openssl s_client -connect
//! 127.0.0.1:7000`). SIGINT or SIGTERM shuts it down gracefully.

use asyncore_examples::chat::{ChatServer, Settings, DEFAULT_MAX_LINE, DEFAULT_MAX_QUEUED};
use asyncore_examples::cli::{serve, usage_error, Args};
use std::time::Duration;

const USAGE: &str =
    "usage: chat_server [--listen HOST:PORT] [--max-line BYTES] [--idle-timeout SECS] [--max-queued BYTES]
                   [--tls-cert PEM --tls-key PEM]
  defaults: --listen 127.0.0.1:7000 --max-line 4096 --max-queued 1048576, no idle timeout";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let mut args = Args::from_env(USAGE);
    let addr = args.listen("127.0.0.1:7000");
    let max_line: usize = args.parsed("--max-line", DEFAULT_MAX_LINE);
    let idle: f64 = args.parsed("--idle-timeout", 0.0);
    let max_queued: usize = args.parsed("--max-queued", DEFAULT_MAX_QUEUED);
    let tls = asyncore_examples::tls::options(&mut args, USAGE);
    args.finish();
    if max_line == 0 {
        usage_error(USAGE, "--max-line must be at least 1");
    }
    if !idle.is_finite() || idle < 0.0 {
        usage_error(USAGE, "--idle-timeout must be a positive number of seconds");
    }
    let settings = Settings {
        max_line,
        idle_timeout: (idle > 0.0).then(|| Duration::from_secs_f64(idle)),
        max_queued,
    };
    // One loop: the room lives on its thread.
    serve(addr, 1, move || {
        ChatServer::new(settings).with_tls(tls.clone())
    })
}

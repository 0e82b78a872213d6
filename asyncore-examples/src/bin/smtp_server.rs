//! CPython's smtpd as a program: a drop-in for `python -m smtpd -n -c DebuggingServer`
//! (protocol: `asyncore_examples::smtp`), printing every message it receives.
//!
//! ```text
//! smtp_server [--listen HOST:PORT] [--hostname NAME] [-s|--size BYTES] [-u|--smtputf8]
//!             [--idle-timeout SECS] [--tls-cert PEM --tls-key PEM]
//!             (defaults: 127.0.0.1:8025, the host's name as socket.getfqdn() finds it,
//!              no size limit, no SMTPUTF8, no idle timeout)
//! ```
//! smtpd's own command line works too: `-n` (no setuid: never done here), `-c
//! DebuggingServer` (the only class; others are refused), `-d` (accepted; nothing is
//! printed on the debug stream) and a positional `HOST:PORT` in place of `--listen`.
//! It prints `listening on HOST:PORT` as its first line, then the messages, as smtpd's
//! DebuggingServer prints them. SIGINT or SIGTERM shuts it down gracefully. With
//! `--tls-cert`/`--tls-key` (a build with the `tls` feature) EHLO offers STARTTLS (RFC
//! 3207), which smtpd never had.

use asyncore_examples::cli::{serve, usage_error, Args};
use asyncore_examples::smtp::{debugging_server, Settings, SmtpServer};
use std::net::{SocketAddr, ToSocketAddrs};

const USAGE: &str =
    "usage: smtp_server [--listen HOST:PORT] [--hostname NAME] [-s|--size BYTES] [-u|--smtputf8]
                   [--idle-timeout SECS] [--tls-cert PEM --tls-key PEM]
                   [-n] [-c DebuggingServer] [-d] [HOST:PORT]
  defaults: --listen 127.0.0.1:8025, the host name of socket.getfqdn(), no size limit";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let mut args = Args::from_env(USAGE);
    let listen = args.option("--listen");
    let hostname = args.option("--hostname");
    let size = args.option("--size").or_else(|| args.option("-s"));
    let smtputf8 = args.flag("--smtputf8") | args.flag("-u");
    let _nosetuid = args.flag("-n") | args.flag("--nosetuid");
    let _debug = args.flag("-d") | args.flag("--debug");
    let class = args.option("--class").or_else(|| args.option("-c"));
    let idle: f64 = args.parsed("--idle-timeout", 0.0);
    if !idle.is_finite() || idle < 0.0 {
        usage_error(USAGE, "--idle-timeout must be a positive number of seconds");
    }
    let tls = asyncore_examples::tls::options(&mut args, USAGE);
    let positional = args.positional();
    if let Some(class) = class.filter(|c| c != "DebuggingServer") {
        usage_error(
            USAGE,
            &format!("only DebuggingServer is ported; cannot use class {class:?}"),
        );
    }
    let data_size_limit = size.map(|s| match s.parse::<usize>() {
        Ok(n) => n,
        Err(_) => usage_error(USAGE, &format!("Invalid size: {s}")),
    });
    let spec = match (listen, positional.as_slice()) {
        (Some(listen), []) => listen,
        (None, []) => "127.0.0.1:8025".to_string(),
        // smtpd's second positional is the remote host of PureProxy: unused here.
        (None, [local] | [local, _]) => local.clone(),
        _ => usage_error(
            USAGE,
            "give the address once: --listen HOST:PORT or HOST:PORT",
        ),
    };
    let addr: SocketAddr = match spec.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(addr)) => addr,
        _ => usage_error(USAGE, &format!("Bad local spec: {spec}")),
    };
    let settings = Settings {
        data_size_limit,
        enable_smtputf8: smtputf8,
        #[cfg(unix)]
        hostname: hostname.unwrap_or_else(asyncore_examples::smtp::getfqdn),
        // socket.getfqdn's lookups go through libc here: Unix only.
        #[cfg(not(unix))]
        hostname: hostname.unwrap_or_else(|| {
            usage_error(
                USAGE,
                "give --hostname (the default, socket.getfqdn, is Unix only)",
            )
        }),
        process_message: debugging_server,
        idle_timeout: (idle > 0.0).then(|| std::time::Duration::from_secs_f64(idle)),
        tls,
    };
    serve(addr, 1, move || SmtpServer::new(settings.clone()))
}

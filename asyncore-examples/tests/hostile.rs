//! Hostile conditions against the example servers: descriptor exhaustion.
//!
//! Unix only: the test lowers the descriptor limit (`ulimit -n`) and reads the server's
//! CPU time from `/proc`; Windows has neither.
#![cfg(unix)]

mod common;

use common::{read_exactly, Server, DEADLINE};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

const ECHO_SERVER: &str = env!("CARGO_BIN_EXE_echo_server");

fn echo_once(client: &mut TcpStream, msg: &[u8]) {
    client.write_all(msg).unwrap();
    assert_eq!(read_exactly(client, msg.len()), msg);
}

#[test]
fn descriptor_exhaustion_neither_spins_nor_stops_the_server() {
    // 40 descriptors: room for a few dozen clients, then EMFILE.
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "ulimit -n 40 && exec \"$0\" --listen 127.0.0.1:0",
        ECHO_SERVER,
    ]);
    let server = Server::start_command(cmd);
    let mut existing = TcpStream::connect(server.addr).unwrap();
    echo_once(&mut existing, b"before the flood");

    // The flood: far more connections than the server has descriptors, held open, and
    // new ones arriving all through the measured second.
    let cpu_before = server.cpu_time();
    let start = Instant::now();
    let mut flood = Vec::new();
    while start.elapsed() < Duration::from_secs(1) {
        if let Ok(c) = TcpStream::connect(server.addr) {
            flood.push(c);
        }
        std::thread::park_timeout(Duration::from_millis(2));
    }
    let wall = start.elapsed();
    let cpu = server.cpu_time() - cpu_before;
    assert!(flood.len() > 100, "only {} connections made", flood.len());
    // A server spinning on its readable listener would burn the whole second.
    assert!(
        cpu < wall / 3,
        "server used {cpu:?} of CPU in {wall:?} of flood"
    );

    // The existing client is still served.
    echo_once(&mut existing, b"during the flood");
    // The connections beyond the limit were refused with a close, not left hanging.
    let closed = flood
        .iter()
        .filter(|c| {
            c.set_nonblocking(true).unwrap();
            let mut c: &TcpStream = c;
            match c.read(&mut [0u8; 1]) {
                Ok(0) => true,
                Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
                Ok(_) => false,
            }
        })
        .count();
    assert!(
        closed + 40 >= flood.len(),
        "{closed} of {} flood connections closed by the server",
        flood.len()
    );

    // Descriptors free again: new clients are accepted.
    drop(flood);
    let deadline = Instant::now() + DEADLINE;
    loop {
        let mut fresh = TcpStream::connect(server.addr).unwrap();
        fresh
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        fresh.write_all(b"after").unwrap();
        let mut got = [0u8; 5];
        if fresh.read_exact(&mut got).is_ok() {
            assert_eq!(&got, b"after");
            break;
        }
        // The server may still be closing the flood's connections.
        assert!(Instant::now() < deadline, "server never accepted again");
    }
    echo_once(&mut existing, b"after the flood");
}

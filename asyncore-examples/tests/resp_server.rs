//! resp_server end to end, as a user runs it: every command (the recorded cases of
//! `tests/data/resp_cases.txt`), pipelining, requests split at every byte, malformed
//! requests, other clients unaffected, a 1 MiB value, `--max-bulk`, a peer that never
//! reads.

mod common;

use common::resp_cases::{self, show, Case};
use common::{read_exactly, run, Server, DEADLINE};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const RESP_SERVER: &str = env!("CARGO_BIN_EXE_resp_server");
const CASES: &str = include_str!("data/resp_cases.txt");

fn cases() -> Vec<Case> {
    resp_cases::parse(CASES).expect("resp_cases.txt parses")
}

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.addr).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Writes `bytes`, unless the server has closed already (after a protocol error it
/// closes without reading what follows).
fn send(stream: &mut TcpStream, bytes: &[u8]) -> bool {
    stream.write_all(bytes).is_ok()
}

/// Everything the server sends until it closes (or resets after closing).
fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    resp_cases::read_to_close(stream).expect("the server closes within the deadline")
}

/// Sends `pieces` one write each, half-closes, and returns all the server sent.
fn exchange(server: &Server, pieces: &[&[u8]]) -> Vec<u8> {
    resp_cases::exchange(server.addr, pieces).expect("exchange with the server")
}

/// Empties the key space, as the case format asks before each case.
fn flushall(server: &Server) {
    resp_cases::flushall(server.addr).expect("FLUSHALL");
}

#[test]
fn recorded_cases_get_redis_replies() {
    let server = Server::start(RESP_SERVER, &[]);
    let cases = cases();
    assert!(cases.len() > 50, "the case file was read");
    for case in &cases {
        flushall(&server);
        let got = exchange(&server, &[&case.send]);
        assert_eq!(
            show(&got),
            show(&case.expect),
            "case {:?}: sent {}",
            case.name,
            show(&case.send)
        );
    }
}

#[test]
fn recorded_cases_sent_byte_by_byte() {
    let server = Server::start(RESP_SERVER, &[]);
    for case in cases() {
        flushall(&server);
        let bytes: Vec<&[u8]> = case.send.chunks(1).collect();
        let got = exchange(&server, &bytes);
        assert_eq!(show(&got), show(&case.expect), "case {:?}", case.name);
    }
}

#[test]
fn requests_split_at_every_byte_boundary() {
    let server = Server::start(RESP_SERVER, &[]);
    let request: &[u8] = b"SET \"a key\" 'v 1'\r\n*3\r\n$3\r\nSET\r\n$1\r\nn\r\n$2\r\n41\r\n\
        INCR n\r\n\r\n*2\r\n$3\r\nGET\r\n$5\r\na key\r\nMGET n nokey\n*0\r\nPING\r\n";
    let want: &[u8] = b"+OK\r\n+OK\r\n:42\r\n$3\r\nv 1\r\n*2\r\n$2\r\n42\r\n$-1\r\n+PONG\r\n";
    for i in 0..=request.len() {
        let (a, b) = request.split_at(i);
        assert_eq!(
            show(&exchange(&server, &[a, b])),
            show(want),
            "split at {i}"
        );
    }
}

#[test]
fn pipelined_requests_in_one_write_are_answered_in_order() {
    let server = Server::start(RESP_SERVER, &[]);
    let mut request = Vec::new();
    let mut want = Vec::new();
    for i in 0..1000 {
        if i % 2 == 0 {
            request.extend_from_slice(format!("INCRBY counter {i}\r\n").as_bytes());
        } else {
            request.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n");
        }
        let total: i64 = (0..=i).map(|j| if j % 2 == 0 { j } else { 1 }).sum();
        want.extend_from_slice(format!(":{total}\r\n").as_bytes());
    }
    request.extend_from_slice(b"GET counter\r\nQUIT\r\n");
    let total: i64 = (0..1000).map(|j| if j % 2 == 0 { j } else { 1 }).sum();
    let text = total.to_string();
    want.extend_from_slice(format!("${}\r\n{text}\r\n+OK\r\n", text.len()).as_bytes());
    let mut stream = connect(&server);
    stream.write_all(&request).expect("write");
    // QUIT closes: no half-close needed.
    assert_eq!(show(&read_to_close(&mut stream)), show(&want));
}

#[test]
fn malformed_request_gets_the_error_then_close_and_others_go_on() {
    let server = Server::start(RESP_SERVER, &[]);
    let mut calm = connect(&server);
    calm.write_all(b"SET k v\r\n").expect("write");
    assert_eq!(read_exactly(&mut calm, 5), b"+OK\r\n");

    let malformed: [(&[u8], &[u8]); 4] = [
        (
            b"*x\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$-5\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\nfoo\r\n",
            b"-ERR Protocol error: expected '$', got 'f'\r\n",
        ),
        (
            b"GET \"k\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    for (request, reply) in malformed {
        // No half-close: the server closes by itself, ignoring what follows.
        let mut rude = connect(&server);
        rude.write_all(request).expect("write");
        send(&mut rude, b"PING\r\n");
        assert_eq!(show(&read_to_close(&mut rude)), show(reply));
        calm.write_all(b"GET k\r\n").expect("write");
        assert_eq!(read_exactly(&mut calm, 7), b"$1\r\nv\r\n");
    }
}

#[test]
fn too_long_inline_request_is_refused() {
    let server = Server::start(RESP_SERVER, &[]);
    let mut stream = connect(&server);
    // Written in pieces: the server may close before it has read everything.
    let line = vec![b'a'; 70 * 1024];
    for piece in line.chunks(4096) {
        if !send(&mut stream, piece) {
            break;
        }
    }
    let want = b"-ERR Protocol error: too big inline request\r\n";
    assert_eq!(read_exactly(&mut stream, want.len()), want);
}

#[test]
fn a_1_mib_value_is_set_and_got_back() {
    let server = Server::start(RESP_SERVER, &[]);
    let value: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut request = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n", value.len()).into_bytes();
    request.extend_from_slice(&value);
    request.extend_from_slice(b"\r\nGET big\r\nSTRLEN big\r\n");
    let mut want = b"+OK\r\n".to_vec();
    want.extend_from_slice(format!("${}\r\n", value.len()).as_bytes());
    want.extend_from_slice(&value);
    want.extend_from_slice(
        b"\r\n-ERR unknown command 'STRLEN', with args beginning with: 'big' \r\n",
    );
    let got = exchange(&server, &[&request]);
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the value came back changed");
}

#[test]
fn max_bulk_bounds_an_argument() {
    let server = Server::start(RESP_SERVER, &["--max-bulk", "10"]);
    let got = exchange(
        &server,
        &[b"*2\r\n$4\r\nECHO\r\n$10\r\n0123456789\r\nCONFIG GET proto-max-bulk-len\r\n*2\r\n$4\r\nECHO\r\n$11\r\n"],
    );
    let want = b"$10\r\n0123456789\r\n*2\r\n$18\r\nproto-max-bulk-len\r\n$2\r\n10\r\n\
        -ERR Protocol error: invalid bulk length\r\n";
    assert_eq!(show(&got), show(want));
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["--max-bulk", "x"][..],
        &["--max-bulk", "-1"],
        &["--nope"],
        &["extra"],
    ] {
        let out = run(RESP_SERVER, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage: resp_server"));
    }
}

#[test]
fn keys_set_with_px_expire() {
    let server = Server::start(RESP_SERVER, &[]);
    let mut stream = connect(&server);
    stream
        .write_all(b"SET k v PX 30\r\nSET keep v\r\n")
        .expect("write");
    assert_eq!(read_exactly(&mut stream, 10), b"+OK\r\n+OK\r\n");
    let deadline = Instant::now() + DEADLINE;
    loop {
        stream.write_all(b"EXISTS k keep\r\n").expect("write");
        match &read_exactly(&mut stream, 4)[..] {
            b":1\r\n" => break,
            b":2\r\n" => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(Instant::now() < deadline, "k never expired");
        std::thread::park_timeout(Duration::from_millis(5));
    }
    stream.write_all(b"DBSIZE\r\n").expect("write");
    assert_eq!(read_exactly(&mut stream, 4), b":1\r\n");
}

/// The server's resident memory, from `/proc/PID/status`.
#[cfg(unix)]
fn rss_bytes(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .expect("read /proc/PID/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in kB");
    kib * 1024
}

#[test]
#[cfg(unix)] // reads the server's RSS from /proc: Linux only.
fn a_peer_that_pipelines_large_gets_and_reads_nothing_stays_bounded() {
    let server = Server::start(RESP_SERVER, &[]);
    let mut calm = connect(&server);
    let value = vec![b'x'; 1 << 20];
    let mut set = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$1048576\r\n".to_vec();
    set.extend_from_slice(&value);
    set.extend_from_slice(b"\r\n");
    calm.write_all(&set).expect("write");
    assert_eq!(read_exactly(&mut calm, 5), b"+OK\r\n");
    let before = rss_bytes(&server);

    // 1,000 GETs of the 1 MiB value in one go; this peer never reads a reply.
    let mut hog = connect(&server);
    hog.set_write_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let gets = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(1000);
    // The server stops reading once replies pile up, so the write may not finish.
    let _ = hog.write_all(&gets);

    // Other clients are served meanwhile.
    for _ in 0..100 {
        calm.write_all(b"PING\r\n").expect("write");
        assert_eq!(read_exactly(&mut calm, 7), b"+PONG\r\n");
    }
    let growth = rss_bytes(&server).saturating_sub(before);
    assert!(growth < 64 << 20, "RSS grew by {growth} bytes");
}

#[test]
#[cfg(unix)] // --threads 2 shares a port through SO_REUSEPORT, which Windows lacks.
fn two_threads_share_one_key_space() {
    let server = Server::start(RESP_SERVER, &["--threads", "2"]);
    // Many connections: the kernel spreads them over both loops; every one sees the
    // keys set through the others.
    for i in 0..20 {
        let set = format!("SET key{i} value{i}\r\n");
        assert_eq!(exchange(&server, &[set.as_bytes()]), b"+OK\r\n");
    }
    for i in 0..20 {
        let value = format!("value{i}");
        let want = format!("${}\r\n{value}\r\n", value.len());
        assert_eq!(
            show(&exchange(&server, &[format!("GET key{i}\r\n").as_bytes()])),
            show(want.as_bytes())
        );
    }
    assert!(server.terminate().success());
}

#[test]
fn an_idle_connection_is_closed_and_a_busy_one_is_not() {
    let server = Server::start(RESP_SERVER, &["--idle-timeout", "0.5"]);
    let mut idle = connect(&server);
    let mut busy = connect(&server);
    let start = Instant::now();
    // The busy client pings until the idle one has been closed.
    loop {
        busy.write_all(b"PING\r\n").unwrap();
        assert_eq!(read_exactly(&mut busy, 7), b"+PONG\r\n");
        idle.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        let closed = matches!(idle.read(&mut b), Ok(0));
        idle.set_nonblocking(false).unwrap();
        if closed {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the idle connection was never closed"
        );
        std::thread::park_timeout(Duration::from_millis(50));
    }
    assert!(start.elapsed() >= Duration::from_millis(400));
    busy.write_all(b"PING\r\n").unwrap();
    assert_eq!(read_exactly(&mut busy, 7), b"+PONG\r\n");
}

#[test]
#[cfg(unix)] // SIGTERM: Wine delivers no console control event (see Server::terminate).
fn one_loop_is_one_thread_and_two_are_two_more() {
    // A single-threaded process is cheaper for the kernel in every descriptor system call;
    // signals come through a socket pair, not a thread of their own.
    let one = Server::start(RESP_SERVER, &[]);
    assert_eq!(one.threads(), 1);
    assert!(one.terminate().success());
    let two = Server::start(RESP_SERVER, &["--threads", "2"]);
    assert_eq!(two.threads(), 3, "the main thread waits for the two loops");
    assert!(two.terminate().success());
}

#[test]
#[cfg(unix)] // SIGTERM: Wine delivers no console control event (see Server::terminate).
fn sigterm_exits_0() {
    let server = Server::start(RESP_SERVER, &[]);
    let mut c = connect(&server);
    c.write_all(b"SET a b\r\n").unwrap();
    assert_eq!(read_exactly(&mut c, 5), b"+OK\r\n");
    assert!(server.terminate().success());
    assert_eq!(read_to_close(&mut c), b"");
}

#[test]
fn the_poll_backend_serves_the_same_replies() {
    let server = Server::start(RESP_SERVER, &["--use-poll"]);
    let got = exchange(&server, &[b"SET a 1\r\nINCR a\r\nGET a\r\n"]);
    assert_eq!(show(&got), show(b"+OK\r\n:2\r\n$1\r\n2\r\n"));
}

/// Shutdown keeps what it has already written: a client pipelines GETs of a 64 KiB value
/// as fast as it can while reading all the time, and SIGTERM comes in the middle. Every
/// reply the client gets is whole, its stream ends with a clean end of stream (not a reset
/// that would destroy replies still in flight), and the server exits 0. Before the one
/// close path, the server closed with the client's unread requests in its socket, Linux
/// answered with a reset, and replies were cut.
#[test]
#[cfg(unix)] // SIGTERM: Wine delivers no console control event (see Server::terminate).
fn sigterm_under_pipelined_large_replies_cuts_no_reply() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    const SIZE: usize = 64 * 1024;
    let server = Server::start(RESP_SERVER, &[]);
    let mut c = connect(&server);
    let mut set = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${SIZE}\r\n").into_bytes();
    set.extend_from_slice(&[b'v'; SIZE]);
    set.extend_from_slice(b"\r\n");
    c.write_all(&set).unwrap();
    assert_eq!(read_exactly(&mut c, 5), b"+OK\r\n");

    let mut reply = format!("${SIZE}\r\n").into_bytes();
    reply.extend_from_slice(&[b'v'; SIZE]);
    reply.extend_from_slice(b"\r\n");
    let replies = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicBool::new(false));
    let reader = {
        let mut stream = c.try_clone().unwrap();
        let (replies, ended) = (replies.clone(), ended.clone());
        let reply = reply.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 256 * 1024];
            let end = loop {
                match stream.read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        got.extend_from_slice(&buf[..n]);
                        replies.store(got.len() / reply.len(), Ordering::Relaxed);
                    }
                    Err(e) => break Err(e),
                }
            };
            ended.store(true, Ordering::Relaxed);
            (got, end)
        })
    };
    let writer = {
        let mut stream = c.try_clone().unwrap();
        let ended = ended.clone();
        std::thread::spawn(move || {
            let gets = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(64);
            let start = Instant::now();
            while !ended.load(Ordering::Relaxed) && start.elapsed() < DEADLINE {
                if stream.write_all(&gets).is_err() {
                    break;
                }
            }
            // The server lingers, reading what we send, until our end of stream.
            let _ = stream.shutdown(std::net::Shutdown::Write);
        })
    };
    let start = Instant::now();
    while replies.load(Ordering::Relaxed) < 200 {
        assert!(start.elapsed() < DEADLINE, "the first replies never came");
        std::thread::park_timeout(Duration::from_millis(5));
    }
    assert!(server.terminate().success(), "the server exits 0");
    writer.join().unwrap();
    let (got, end) = reader.join().unwrap();
    let whole = got.len() / reply.len();
    assert!(
        end.is_ok(),
        "the stream ended with {end:?} after {} bytes ({whole} whole replies)",
        got.len()
    );
    assert_eq!(
        got.len() % reply.len(),
        0,
        "a reply was cut after {whole} whole ones"
    );
    assert!(
        got.chunks(reply.len()).all(|r| r == &reply[..]),
        "every reply is the value"
    );
}

//! smtp_server end to end, with raw sockets (the differential run against CPython's
//! smtpd is in `cargo xtask interop`): a message printed as DebuggingServer prints it,
//! pipelining, a big message, the limits, smtpd's command line, SIGTERM.

mod common;

use common::{Server, DEADLINE};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

const SMTP_SERVER: &str = env!("CARGO_BIN_EXE_smtp_server");

/// The greeting with the host name the tests give.
const GREETING: &str = "220 mail.test Python SMTP proxy version 0.3\r\n";

fn start(args: &[&str]) -> Server {
    let mut all = vec!["--hostname", "mail.test"];
    all.extend_from_slice(args);
    Server::start(SMTP_SERVER, &all)
}

/// Sends `input` in one write, half-closes, and returns everything the server replied
/// until it closed.
fn session(server: &Server, input: &[u8]) -> String {
    let mut c = TcpStream::connect(server.addr).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    c.write_all(input).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    String::from_utf8(got).unwrap()
}

const MESSAGE: &[u8] = b"EHLO c\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\n\
DATA\r\nSubject: hi\r\n\r\nHello Bob.\r\n..dotted\r\n.\r\nQUIT\r\n";

#[test]
fn a_pipelined_session_is_answered_and_its_message_printed() {
    let server = start(&[]);
    let replies = session(&server, MESSAGE);
    assert_eq!(
        replies,
        format!(
            "{GREETING}250-mail.test\r\n250-8BITMIME\r\n250 HELP\r\n250 OK\r\n250 OK\r\n\
             354 End data with <CR><LF>.<CR><LF>\r\n250 OK\r\n221 Bye\r\n"
        )
    );
    let printed = server.printed_until("END MESSAGE");
    assert_eq!(
        printed,
        "---------- MESSAGE FOLLOWS ----------\n\
         b'Subject: hi'\n\
         b'X-Peer: 127.0.0.1'\n\
         b''\n\
         b'Hello Bob.'\n\
         b'.dotted'\n\
         ------------ END MESSAGE ------------\n"
    );
}

/// Reads replies until `end` has come (with the deadline).
fn read_until(c: &mut TcpStream, end: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(end) {
        let n = c.read(&mut buf).expect("a reply within the deadline");
        assert!(
            n > 0,
            "closed before {end:?}: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

#[test]
fn a_big_message_and_the_size_limit() {
    let server = start(&["-s", "100000"]);
    let mut c = TcpStream::connect(server.addr).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    c.write_all(b"EHLO c\r\nMAIL FROM:<a@b> SIZE=100001\r\nMAIL FROM:<a@b> SIZE=99999\r\n")
        .unwrap();
    let replies = read_until(&mut c, "250 OK\r\n");
    assert_eq!(
        replies,
        format!(
            "{GREETING}250-mail.test\r\n250-SIZE 100000\r\n250-8BITMIME\r\n250 HELP\r\n\
             552 Error: message size exceeds fixed maximum message size\r\n250 OK\r\n"
        )
    );
    // 200 KB of message: refused at its end, as smtpd refuses it.
    let mut input = String::from("RCPT TO:<c@d>\r\nDATA\r\n");
    for _ in 0..200 {
        input.push_str(&"x".repeat(998));
        input.push_str("\r\n");
    }
    input.push_str(".\r\n");
    c.write_all(input.as_bytes()).unwrap();
    let replies = read_until(&mut c, "552 Error: Too much mail data\r\n");
    assert_eq!(
        replies,
        "250 OK\r\n354 End data with <CR><LF>.<CR><LF>\r\n552 Error: Too much mail data\r\n"
    );
}

#[test]
fn command_lines_over_512_bytes_are_refused_and_the_session_goes_on() {
    let server = start(&[]);
    let long = format!("NOOP{}\r\n", " ".repeat(600));
    let input = format!("{long}NOOP\r\nQUIT\r\n");
    let replies = session(&server, input.as_bytes());
    assert_eq!(
        replies,
        format!("{GREETING}500 Error: line too long\r\n250 OK\r\n221 Bye\r\n")
    );
}

#[test]
fn smtpds_command_line_works_and_other_classes_are_refused() {
    // `python -m smtpd -n -c DebuggingServer HOST:PORT`, with our host name.
    let mut cmd = Command::new(SMTP_SERVER);
    cmd.args([
        "-n",
        "-c",
        "DebuggingServer",
        "--hostname",
        "mail.test",
        "127.0.0.1:0",
    ]);
    let server = Server::start_command(cmd);
    let replies = session(&server, b"NOOP\r\nQUIT\r\n");
    assert_eq!(replies, format!("{GREETING}250 OK\r\n221 Bye\r\n"));

    let out = common::run(SMTP_SERVER, &["-n", "-c", "PureProxy"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only DebuggingServer is ported"), "{err}");
}

#[test]
#[cfg(unix)] // SIGTERM: Wine delivers no console control event (see Server::terminate).
fn sigterm_lets_a_conversation_finish_its_reply_and_exits_0() {
    let server = start(&[]);
    let mut c = TcpStream::connect(server.addr).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut greeting = vec![0u8; GREETING.len()];
    c.read_exact(&mut greeting).unwrap();
    assert_eq!(String::from_utf8(greeting).unwrap(), GREETING);
    // The client reads to the end and closes, as mail clients do when the server ends
    // the conversation; the server's linger ends with that.
    let reader = std::thread::spawn(move || {
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).map(|_| rest)
    });
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let rest = reader
        .join()
        .unwrap()
        .expect("the end of stream, not a reset");
    assert!(rest.is_empty(), "closed without a stray reply");
}

#[test]
fn an_idle_conversation_is_closed_after_the_timeout() {
    let server = start(&["--idle-timeout", "0.2"]);
    let mut c = TcpStream::connect(server.addr).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    let start = std::time::Instant::now();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(
        String::from_utf8(got).unwrap(),
        GREETING,
        "the greeting, then the end"
    );
    assert!(start.elapsed() < DEADLINE);
}

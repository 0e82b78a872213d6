//! The servers' `--tls-cert`/`--tls-key`: resp_server and chat_server speak TLS on their
//! listener, smtp_server offers STARTTLS and drops what a client injects behind it. A
//! build without the `tls` feature refuses the options. (Real clients, redis-cli and
//! openssl s_client and Python's ssl, are in `cargo xtask interop`.)

mod common;

#[cfg(feature = "tls")]
mod with_tls {
    use super::common::{Server, DEADLINE};
    use asyncore_core::tls::{self, rustls, ServerName};
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::path::PathBuf;
    use std::sync::Arc;

    /// A self-signed certificate for `localhost` as PEM files in a directory of its own.
    struct Certs {
        dir: PathBuf,
    }

    impl Certs {
        fn new(name: &str) -> Certs {
            let dir = std::env::temp_dir().join(format!(
                "asyncore-examples-tls-{name}-{}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
            std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
            std::fs::write(dir.join("key.pem"), made.key_pair.serialize_pem()).unwrap();
            Certs { dir }
        }

        fn cert(&self) -> String {
            self.dir.join("cert.pem").display().to_string()
        }

        fn key(&self) -> String {
            self.dir.join("key.pem").display().to_string()
        }

        fn client(&self) -> Arc<rustls::ClientConfig> {
            tls::client_config_from_pem(self.cert()).unwrap()
        }
    }

    impl Drop for Certs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

    fn wrap(sock: TcpStream, certs: &Certs) -> Tls {
        let name = ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(certs.client(), name).unwrap();
        rustls::StreamOwned::new(conn, sock)
    }

    fn connect(server: &Server, certs: &Certs) -> Tls {
        let sock = TcpStream::connect(server.addr).unwrap();
        sock.set_read_timeout(Some(DEADLINE)).unwrap();
        wrap(sock, certs)
    }

    fn start(exe: &str, certs: &Certs, more: &[&str]) -> Server {
        let (cert, key) = (certs.cert(), certs.key());
        let mut args = vec!["--tls-cert", cert.as_str(), "--tls-key", key.as_str()];
        args.extend_from_slice(more);
        Server::start(exe, &args)
    }

    #[test]
    fn resp_server_answers_over_tls() {
        let certs = Certs::new("resp");
        let server = start(env!("CARGO_BIN_EXE_resp_server"), &certs, &[]);
        let mut s = connect(&server, &certs);
        s.write_all(b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
            .unwrap();
        let want = b"+PONG\r\n+OK\r\n$1\r\nv\r\n";
        let mut got = vec![0; want.len()];
        s.read_exact(&mut got).unwrap();
        assert_eq!(got, want);
        // A plaintext client of the TLS port gets an alert and is closed; the server goes on.
        let mut plain = TcpStream::connect(server.addr).unwrap();
        plain.set_read_timeout(Some(DEADLINE)).unwrap();
        plain.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
        let mut alert = Vec::new();
        let _ = plain.read_to_end(&mut alert);
        assert_eq!(alert.first(), Some(&21), "a TLS alert record: {alert:?}");
        s.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
        let mut pong = [0; 7];
        s.read_exact(&mut pong).unwrap();
        assert_eq!(&pong, b"+PONG\r\n");
    }

    /// Sends `data` over TLS, ends our side (close_notify), and returns all the server
    /// sent until it ended its own (close_notify, a bare close, or a reset after it).
    fn tls_exchange(server: &Server, certs: &Certs, data: &[u8]) -> Vec<u8> {
        let mut s = connect(server, certs);
        let _ = s.write_all(data);
        s.conn.send_close_notify();
        let _ = s.flush();
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                    ) =>
                {
                    return got
                }
                Err(e) => panic!("reading over TLS: {e}"),
            }
        }
    }

    #[test]
    fn recorded_resp_cases_get_the_same_bytes_over_tls() {
        let certs = Certs::new("resp-cases");
        let server = start(env!("CARGO_BIN_EXE_resp_server"), &certs, &[]);
        let cases = super::common::resp_cases::parse(include_str!("data/resp_cases.txt"))
            .expect("resp_cases.txt parses");
        assert!(cases.len() > 50, "the case file was read");
        for case in &cases {
            let flushed = tls_exchange(&server, &certs, b"FLUSHALL\r\n");
            assert_eq!(flushed, b"+OK\r\n");
            let got = tls_exchange(&server, &certs, &case.send);
            let show = super::common::resp_cases::show;
            assert_eq!(show(&got), show(&case.expect), "case {:?}", case.name);
        }
    }

    #[test]
    fn chat_server_greets_over_tls() {
        let certs = Certs::new("chat");
        let server = start(env!("CARGO_BIN_EXE_chat_server"), &certs, &[]);
        let mut r = BufReader::new(connect(&server, &certs));
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, "* welcome guest1\n");
    }

    fn read_reply(r: &mut impl BufRead) -> String {
        // One SMTP reply: lines until one whose fourth byte is a space.
        let mut all = String::new();
        loop {
            let mut line = String::new();
            assert!(r.read_line(&mut line).unwrap() > 0, "closed after {all:?}");
            all.push_str(&line);
            if line.as_bytes().get(3) == Some(&b' ') {
                return all;
            }
        }
    }

    #[test]
    fn smtp_starttls_upgrades_and_drops_an_injected_command() {
        let certs = Certs::new("smtp");
        let server = start(
            env!("CARGO_BIN_EXE_smtp_server"),
            &certs,
            &["--hostname", "mail.test"],
        );
        let sock = TcpStream::connect(server.addr).unwrap();
        sock.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut plain = BufReader::new(sock.try_clone().unwrap());
        let mut w = sock;
        assert!(read_reply(&mut plain).starts_with("220 mail.test"));
        w.write_all(b"EHLO c\r\n").unwrap();
        assert_eq!(
            read_reply(&mut plain),
            "250-mail.test\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 HELP\r\n"
        );
        // The injection of CVE-2011-0411: a command behind STARTTLS in the same write.
        w.write_all(b"STARTTLS\r\nMAIL FROM:<evil@example.com>\r\n")
            .unwrap();
        assert_eq!(read_reply(&mut plain), "220 Ready to start TLS\r\n");
        assert!(
            plain.buffer().is_empty(),
            "nothing follows the 220 in plaintext"
        );
        let mut s = BufReader::new(wrap(w, &certs));
        // The conversation starts over: a greeting is needed again, and STARTTLS is gone.
        s.get_mut()
            .write_all(b"RCPT TO:<bob@example.com>\r\n")
            .unwrap();
        assert_eq!(read_reply(&mut s), "503 Error: send HELO first\r\n");
        s.get_mut().write_all(b"EHLO c\r\n").unwrap();
        assert_eq!(
            read_reply(&mut s),
            "250-mail.test\r\n250-8BITMIME\r\n250 HELP\r\n"
        );
        // The injected MAIL was never taken: RCPT needs a MAIL of its own.
        s.get_mut()
            .write_all(b"RCPT TO:<bob@example.com>\r\n")
            .unwrap();
        assert_eq!(read_reply(&mut s), "503 Error: need MAIL command\r\n");
        s.get_mut()
            .write_all(b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: over TLS\r\n\r\nhi\r\n.\r\nQUIT\r\n")
            .unwrap();
        for want in ["250 OK", "250 OK", "354 End data", "250 OK", "221 Bye"] {
            let reply = read_reply(&mut s);
            assert!(reply.starts_with(want), "{reply:?} is not {want:?}");
        }
        let printed = server.printed_until("END MESSAGE");
        assert!(printed.contains("b'Subject: over TLS'"), "{printed}");
        assert!(!printed.contains("evil"), "{printed}");
    }
}

#[cfg(feature = "tls")]
#[test]
fn http_client_fetches_over_https() {
    use asyncore_core::tls::{self, rustls};
    use std::io::{Read, Write};
    let dir = std::env::temp_dir().join(format!("asyncore-examples-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let config = tls::server_config_from_pem(&cert, &key).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // A one-request HTTPS server: rustls over a blocking socket, in a thread.
    let server = std::thread::spawn(move || {
        let (sock, _) = listener.accept().unwrap();
        sock.set_read_timeout(Some(common::DEADLINE)).unwrap();
        let conn = rustls::ServerConnection::new(config).unwrap();
        let mut s = rustls::StreamOwned::new(conn, sock);
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).unwrap();
            request.push(byte[0]);
        }
        s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap();
        s.conn.send_close_notify();
        s.flush().unwrap();
        String::from_utf8(request).unwrap()
    });
    let url = format!("https://localhost:{port}/greeting");
    let out = common::run(
        env!("CARGO_BIN_EXE_http_client"),
        &["--cafile", &cert.display().to_string(), &url],
    );
    let request = server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        request.starts_with(&format!(
            "GET /greeting HTTP/1.0\r\nHost: localhost:{port}\r\n"
        )),
        "{request:?}"
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(printed, format!("{url} got 43 bytes\n"));
    assert!(out.status.success());
}

#[cfg(not(feature = "tls"))]
#[test]
fn a_build_without_tls_refuses_the_tls_options() {
    for exe in [
        env!("CARGO_BIN_EXE_resp_server"),
        env!("CARGO_BIN_EXE_chat_server"),
        env!("CARGO_BIN_EXE_smtp_server"),
    ] {
        let out = common::run(exe, &["--tls-cert", "c.pem", "--tls-key", "k.pem"]);
        assert_eq!(out.status.code(), Some(2), "{exe}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("built without TLS"), "{exe}: {err}");
    }
    let out = common::run(env!("CARGO_BIN_EXE_http_client"), &["https://localhost/"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("https:// needs a build with TLS"), "{err}");
}

//! TLS on channels (the `tls` feature): the handshake driven by the loop, plaintext for
//! the layers above, decrypted input delivered without a new OS event, `close_notify`,
//! truncation, handshake failures and timeouts, STARTTLS with its injection defence, and a
//! TLS client channel. The peers are rustls over blocking std sockets in a thread (an
//! implementation that shares no code with the loop), or raw TCP for hostile ones.
#![cfg(feature = "tls")]

mod util;

use asyncore_chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
use asyncore_core::tls::rustls::{self, ClientConfig, ServerConfig};
use asyncore_core::tls::{self, ServerName};
use asyncore_core::{
    BoxError, Channel, Context, Dispatcher, DispatcherWithSend, HandlerResult, SockAddr, Socket,
    SocketMap,
};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;
use util::{run_until, Backend, TestDir, DEADLINE};

/// A self-signed certificate for `localhost`, written as PEM files, and the two configs.
struct Certs {
    _dir: TestDir,
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl Certs {
    fn new() -> Certs {
        let dir = TestDir::new();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
        let mut server = (*tls::server_config_from_pem(&cert, &key).unwrap()).clone();
        server.alpn_protocols = vec![b"line/1".to_vec()];
        let mut client = (*tls::client_config_from_pem(&cert).unwrap()).clone();
        client.alpn_protocols = vec![b"line/1".to_vec()];
        Certs {
            _dir: dir,
            server: Arc::new(server),
            client: Arc::new(client),
        }
    }
}

/// What the server side saw.
#[derive(Default, Clone)]
struct Seen(Rc<RefCell<SeenInner>>);

#[derive(Default)]
struct SeenInner {
    errors: Vec<String>,
    closes: usize,
    sni: Option<String>,
    alpn: Option<Vec<u8>>,
    frames: Vec<String>,
}

/// Echoes what it reads, `chunk` bytes per read event (1: the rest waits inside TLS).
struct Echo {
    chunk: usize,
    seen: Seen,
}

impl Dispatcher for Echo {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if let Some(conn) = ctx.channel().tls_connection() {
            let mut s = self.seen.0.borrow_mut();
            s.sni = ctx.channel().tls_server_name().map(str::to_owned);
            s.alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
        }
        let mut buf = vec![0; self.chunk];
        let n = ctx.recv(&mut buf)?;
        ctx.send(&buf[..n])?;
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.seen.0.borrow_mut().closes += 1;
        ctx.close()?;
        Ok(())
    }

    fn handle_error(&mut self, ctx: &mut Context<'_>, err: BoxError) -> HandlerResult {
        self.seen.0.borrow_mut().errors.push(describe(&*err));
        ctx.close()?;
        Ok(())
    }
}

/// An error and, for an `io::Error` carrying one, its rustls source.
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    if let Some(io) = err.downcast_ref::<std::io::Error>() {
        text = format!("{:?}: {text}", io.kind());
        if io.get_ref().is_some_and(|e| e.is::<rustls::Error>()) {
            text.push_str(" [rustls]");
        }
    }
    text
}

/// A listener that starts TLS on each accepted socket and hands it to `make`.
struct TlsListener<F> {
    config: Arc<ServerConfig>,
    make: F,
}

impl<F, H> Dispatcher for TlsListener<F>
where
    F: FnMut() -> H + 'static,
    H: Dispatcher,
{
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        _: SockAddr,
    ) -> HandlerResult {
        let mut chan = Channel::from_socket(sock)?;
        chan.start_tls_server(self.config.clone())?;
        ctx.insert(chan, (self.make)())?;
        Ok(())
    }
}

fn listen(map: &mut SocketMap, handler: impl Dispatcher) -> std::net::SocketAddr {
    let mut chan =
        Channel::create_socket(asyncore_core::Domain::IPV4, asyncore_core::Type::STREAM).unwrap();
    chan.bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
        .unwrap();
    chan.listen(64).unwrap();
    let addr = chan.local_addr().unwrap().as_socket().unwrap();
    map.insert(chan, handler).unwrap();
    addr
}

/// The client side of a TLS session for `localhost` over `io`.
fn tls_over<T: Read + Write>(
    io: T,
    config: &Arc<ClientConfig>,
) -> rustls::StreamOwned<rustls::ClientConnection, T> {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
    rustls::StreamOwned::new(conn, io)
}

/// A rustls client over a blocking socket (with the tests' deadline as its timeout).
fn client(
    addr: std::net::SocketAddr,
    config: &Arc<ClientConfig>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(DEADLINE)).unwrap();
    tls_over(sock, config)
}

/// Writes `data` and reads as many bytes back.
fn round_trip(s: &mut (impl Read + Write), data: &[u8]) -> Result<Vec<u8>, String> {
    s.write_all(data).map_err(|e| e.to_string())?;
    let mut back = vec![0; data.len()];
    s.read_exact(&mut back).map_err(|e| e.to_string())?;
    Ok(back)
}

/// Runs the map until the peer thread's result arrives, and returns it.
fn serve_until<T>(map: &mut SocketMap, backend: Backend, rx: &mpsc::Receiver<T>) -> T {
    let mut got = None;
    run_until(map, backend, "the peer's result", |_| {
        if got.is_none() {
            got = rx.try_recv().ok();
        }
        got.is_some()
    });
    got.unwrap()
}

fn peer<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx
}

fn echo_server(
    map: &mut SocketMap,
    certs: &Certs,
    chunk: usize,
    seen: &Seen,
) -> std::net::SocketAddr {
    let seen = seen.clone();
    listen(
        map,
        TlsListener {
            config: certs.server.clone(),
            make: move || {
                DispatcherWithSend::new(Echo {
                    chunk,
                    seen: seen.clone(),
                })
            },
        },
    )
}

fn both_backends(test: impl Fn(Backend)) {
    for backend in [Backend::Mio, Backend::Poll] {
        test(backend);
    }
}

/// An echo server reading `chunk` bytes per read event, on each backend, for `test`.
fn on_echo_server(
    chunk: usize,
    test: impl Fn(Backend, &mut SocketMap, std::net::SocketAddr, &Certs, &Seen),
) {
    both_backends(|backend| {
        let certs = Certs::new();
        let seen = Seen::default();
        let mut map = SocketMap::new();
        let addr = echo_server(&mut map, &certs, chunk, &seen);
        test(backend, &mut map, addr, &certs, &seen);
    });
}

/// A rustls client in a thread: sends `data`, reads as many bytes back.
fn echo_peer(
    addr: std::net::SocketAddr,
    certs: &Certs,
    data: Vec<u8>,
) -> mpsc::Receiver<Result<Vec<u8>, String>> {
    let config = certs.client.clone();
    peer(move || round_trip(&mut client(addr, &config), &data))
}

#[test]
fn a_tls_echo_carries_plaintext_and_shows_sni_and_alpn() {
    on_echo_server(16384, |backend, map, addr, certs, seen| {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let rx = echo_peer(addr, certs, data.clone());
        assert!(
            serve_until(map, backend, &rx) == Ok(data),
            "{backend:?}: echo differs"
        );
        let s = seen.0.borrow();
        assert_eq!(s.sni.as_deref(), Some("localhost"));
        assert_eq!(s.alpn.as_deref(), Some(&b"line/1"[..]));
        assert!(s.errors.is_empty(), "{:?}", s.errors);
    });
}

#[test]
fn decrypted_input_is_delivered_without_a_new_os_event() {
    // One byte per read event: the rest of the record waits inside TLS, where no OS event
    // announces it. The client sends once and waits for all of it back.
    on_echo_server(1, |backend, map, addr, certs, _| {
        let rx = echo_peer(addr, certs, b"hello, world\n".to_vec());
        assert_eq!(
            serve_until(map, backend, &rx),
            Ok(b"hello, world\n".to_vec())
        );
    });
}

/// Reads what is there and drops it.
fn read_and_drop(ctx: &mut Context<'_>) -> HandlerResult {
    let mut buf = [0; 1024];
    ctx.recv(&mut buf)?;
    Ok(())
}

/// Sends a goodbye and closes once it is sent.
struct Goodbye;

impl Dispatcher for Goodbye {
    fn handle_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.send(b"bye\n")?;
        ctx.close_when_done();
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        read_and_drop(ctx)
    }
}

#[test]
fn close_when_done_ends_with_close_notify() {
    both_backends(|backend| {
        let certs = Certs::new();
        let mut map = SocketMap::new();
        let addr = listen(
            &mut map,
            TlsListener {
                config: certs.server.clone(),
                make: || DispatcherWithSend::new(Goodbye),
            },
        );
        let config = certs.client.clone();
        let rx = peer(move || {
            let mut s = client(addr, &config);
            let mut all = Vec::new();
            // A clean end (Ok(0)) only after close_notify; a bare TCP end is UnexpectedEof.
            s.read_to_end(&mut all)
                .map(|_| all)
                .map_err(|e| e.to_string())
        });
        assert_eq!(serve_until(&mut map, backend, &rx), Ok(b"bye\n".to_vec()));
    });
}

#[test]
fn a_close_notify_behind_the_last_request_ends_the_stream() {
    // The request and the close_notify arrive together: both are decrypted by one read,
    // so no OS event will come for the end of the stream; it must be seen all the same.
    on_echo_server(4096, |backend, map, addr, certs, seen| {
        let config = certs.client.clone();
        let rx = peer(move || {
            let mut s = client(addr, &config);
            s.write_all(b"last words\n").map_err(|e| e.to_string())?;
            s.conn.send_close_notify();
            s.flush().map_err(|e| e.to_string())?;
            let mut all = Vec::new();
            // Ok only with the server's close_notify at the end.
            s.read_to_end(&mut all).map_err(|e| e.to_string())?;
            Ok::<_, String>(all)
        });
        assert_eq!(serve_until(map, backend, &rx), Ok(b"last words\n".to_vec()));
        assert_eq!(seen.0.borrow().closes, 1, "{backend:?}");
    });
}

#[test]
fn a_peer_that_leaves_without_close_notify_reaches_handle_close() {
    on_echo_server(4096, |backend, map, addr, certs, seen| {
        let config = certs.client.clone();
        let rx = peer(move || {
            let mut s = client(addr, &config);
            s.write_all(b"ping\n").unwrap();
            let mut back = [0; 5];
            s.read_exact(&mut back).unwrap();
            // Truncate: the TCP connection ends with no close_notify.
            s.sock.shutdown(Shutdown::Both).unwrap();
        });
        serve_until(map, backend, &rx);
        run_until(map, backend, "handle_close", |_| {
            seen.0.borrow().closes == 1
        });
        assert!(
            seen.0.borrow().errors.is_empty(),
            "{:?}",
            seen.0.borrow().errors
        );
    });
}

#[test]
fn plaintext_to_a_tls_port_is_a_handshake_error_with_an_alert() {
    on_echo_server(4096, |backend, map, addr, _, seen| {
        let rx = peer(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(DEADLINE)).unwrap();
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            got
        });
        let got = serve_until(map, backend, &rx);
        // A TLS alert record (content type 21) tells the peer why.
        assert_eq!(got.first(), Some(&21), "{got:?}");
        let s = seen.0.borrow();
        assert_eq!(s.errors.len(), 1, "{:?}", s.errors);
        assert!(
            s.errors[0].starts_with("InvalidData") && s.errors[0].ends_with("[rustls]"),
            "{:?}",
            s.errors
        );
        assert_eq!(
            map.len(),
            1,
            "the failed channel is closed, the listener serves on"
        );
    });
}

#[test]
fn a_stalled_handshake_times_out_and_others_are_served() {
    both_backends(|backend| {
        let certs = Certs::new();
        let seen = Seen::default();
        let mut map = SocketMap::new();
        map.set_tls_handshake_timeout(Duration::from_millis(300));
        let addr = echo_server(&mut map, &certs, 4096, &seen);
        // A peer that connects and says nothing, and one that stops mid-handshake.
        let silent = TcpStream::connect(addr).unwrap();
        let mut half = TcpStream::connect(addr).unwrap();
        let mut hello = Vec::new();
        let name = ServerName::try_from("localhost").unwrap();
        let mut c = rustls::ClientConnection::new(certs.client.clone(), name).unwrap();
        c.write_tls(&mut hello).unwrap();
        half.write_all(&hello[..hello.len() / 2]).unwrap();
        let rx = echo_peer(addr, &certs, b"still here\n".to_vec());
        assert_eq!(
            serve_until(&mut map, backend, &rx),
            Ok(b"still here\n".to_vec())
        );
        run_until(&mut map, backend, "two handshake timeouts", |_| {
            seen.0.borrow().errors.len() == 2
        });
        for e in &seen.0.borrow().errors {
            assert!(
                e.starts_with("TimedOut") && e.contains("TLS handshake"),
                "{e}"
            );
        }
        drop((silent, half));
    });
}

#[test]
fn records_cut_into_single_bytes_are_put_together() {
    on_echo_server(4096, |backend, map, addr, certs, _| {
        let config = certs.client.clone();
        let rx = peer(move || {
            /// Writes each byte in a write of its own.
            struct Dribble(TcpStream);
            impl Read for Dribble {
                fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                    self.0.read(buf)
                }
            }
            impl Write for Dribble {
                fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                    match buf.first() {
                        Some(b) => self.0.write(std::slice::from_ref(b)),
                        None => Ok(0),
                    }
                }
                fn flush(&mut self) -> std::io::Result<()> {
                    self.0.flush()
                }
            }
            let sock = TcpStream::connect(addr).unwrap();
            sock.set_nodelay(true).unwrap();
            sock.set_read_timeout(Some(DEADLINE)).unwrap();
            round_trip(
                &mut tls_over(Dribble(sock), &config),
                b"one byte at a time\n",
            )
        });
        assert_eq!(
            serve_until(map, backend, &rx),
            Ok(b"one byte at a time\n".to_vec())
        );
    });
}

/// A line server with STARTTLS: `STARTTLS` is answered in plaintext and upgrades; every
/// other line is echoed as `echo: LINE`.
struct StartTls {
    config: Arc<ServerConfig>,
    seen: Seen,
}

impl ChatHandler for StartTls {
    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let line = String::from_utf8_lossy(&chat.take_data()).into_owned();
        self.seen.0.borrow_mut().frames.push(line.clone());
        if line == "STARTTLS" {
            chat.push(b"220 go ahead\r\n")?;
            chat.start_tls_server(self.config.clone())?;
        } else {
            chat.push(format!("echo: {line}\r\n"))?;
        }
        Ok(())
    }
}

/// A listener that hands plaintext connections to [`StartTls`].
struct PlainListener {
    config: Arc<ServerConfig>,
    seen: Seen,
}

impl Dispatcher for PlainListener {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        _: SockAddr,
    ) -> HandlerResult {
        let handler = StartTls {
            config: self.config.clone(),
            seen: self.seen.clone(),
        };
        ctx.insert(
            Channel::from_socket(sock)?,
            AsyncChat::with_terminator(handler, Terminator::CRLF),
        )?;
        Ok(())
    }
}

#[test]
fn starttls_upgrades_in_place_and_drops_injected_plaintext() {
    both_backends(|backend| {
        let certs = Certs::new();
        let seen = Seen::default();
        let mut map = SocketMap::new();
        let addr = listen(
            &mut map,
            PlainListener {
                config: certs.server.clone(),
                seen: seen.clone(),
            },
        );
        let config = certs.client.clone();
        let rx = peer(move || {
            let mut sock = TcpStream::connect(addr).unwrap();
            sock.set_read_timeout(Some(DEADLINE)).unwrap();
            sock.write_all(b"HELLO\r\n").unwrap();
            let mut line = [0; 13];
            sock.read_exact(&mut line).unwrap();
            assert_eq!(&line, b"echo: HELLO\r\n");
            // The injection: a command behind STARTTLS in the same write.
            sock.write_all(b"STARTTLS\r\nINJECTED\r\n").unwrap();
            let mut reply = [0; 14];
            sock.read_exact(&mut reply).unwrap();
            assert_eq!(&reply, b"220 go ahead\r\n");
            let mut s = tls_over(sock, &config);
            s.write_all(b"SECRET\r\n").map_err(|e| e.to_string())?;
            let mut back = [0; 14];
            s.read_exact(&mut back).map_err(|e| e.to_string())?;
            Ok::<_, String>(back.to_vec())
        });
        assert_eq!(
            serve_until(&mut map, backend, &rx),
            Ok(b"echo: SECRET\r\n".to_vec())
        );
        assert_eq!(seen.0.borrow().frames, ["HELLO", "STARTTLS", "SECRET"]);
    });
}

/// A client: sends a line as it connects (before the handshake ends), keeps the echo.
struct LineClient {
    got: Rc<RefCell<Vec<String>>>,
}

impl ChatHandler for LineClient {
    fn handle_connect(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        chat.push(b"from our client\r\n")?;
        Ok(())
    }

    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let line = String::from_utf8_lossy(&chat.take_data()).into_owned();
        self.got.borrow_mut().push(line);
        let certs = chat
            .channel()
            .tls_connection()
            .and_then(|t| t.peer_certificates())
            .map_or(0, |p| p.len());
        self.got
            .borrow_mut()
            .push(format!("{certs} peer certificate"));
        chat.close_when_done();
        Ok(())
    }
}

#[test]
fn a_tls_client_channel_talks_to_a_tls_server_channel() {
    on_echo_server(4096, |backend, map, addr, certs, seen| {
        let got = Rc::new(RefCell::new(Vec::new()));
        let mut chan =
            Channel::create_socket(asyncore_core::Domain::IPV4, asyncore_core::Type::STREAM)
                .unwrap();
        chan.start_tls_client(
            certs.client.clone(),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        chan.connect(addr).unwrap();
        let client = AsyncChat::with_terminator(LineClient { got: got.clone() }, Terminator::CRLF);
        map.insert(chan, client).unwrap();
        run_until(map, backend, "the echo and both closes", |_| {
            !got.borrow().is_empty() && seen.0.borrow().closes == 1
        });
        // The line, and the server's certificate as the client saw it (Python:
        // `getpeercert()`).
        assert_eq!(*got.borrow(), ["from our client", "1 peer certificate"]);

        assert!(
            seen.0.borrow().errors.is_empty(),
            "{:?}",
            seen.0.borrow().errors
        );
    });
}

/// Wants to write until it has sent its request (as the HTTP client does).
struct Eager {
    request: Vec<u8>,
}

impl Dispatcher for Eager {
    fn writable(&self, _chan: &Channel) -> bool {
        !self.request.is_empty()
    }

    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let n = ctx.send(&self.request)?;
        self.request.drain(..n);
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        read_and_drop(ctx)
    }
}

#[test]
fn a_handshake_under_way_does_not_spin_the_loop() {
    // A client that wants to write, against a peer that takes its hello and never
    // answers: while the handshake waits, the loop must wait too, not run pass after pass
    // over a writable socket whose readiness nothing uses up.
    both_backends(|backend| {
        let certs = Certs::new();
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let mut map = SocketMap::new();
        let mut chan =
            Channel::create_socket(asyncore_core::Domain::IPV4, asyncore_core::Type::STREAM)
                .unwrap();
        chan.start_tls_client(
            certs.client.clone(),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        chan.connect(addr).unwrap();
        let handle = map
            .insert(
                chan,
                Eager {
                    request: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
                },
            )
            .unwrap();
        let (_peer, _) = silent.accept().unwrap();
        backend
            .looper()
            .timeout(Duration::from_millis(20))
            .count(10)
            .run(&mut map)
            .unwrap();
        assert!(map.channel(handle).unwrap().tls_handshaking());
        // The connect and the hello are one or two events; a spinning loop hands the
        // channel an event in every pass.
        let dispatches = map.stats().dispatches;
        assert!(
            dispatches <= 3,
            "{backend:?}: {dispatches} dispatches in 10 passes"
        );
    });
}

/// Answers every line with `reply` bytes; notes the most output it saw queued.
struct Flood {
    reply: usize,
    seen: Seen,
    most_queued: Rc<RefCell<usize>>,
}

impl ChatHandler for Flood {
    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let line = String::from_utf8_lossy(&chat.take_data()).into_owned();
        self.seen.0.borrow_mut().frames.push(line);
        chat.push(vec![b'x'; self.reply])?;
        let queued = chat.queued_output();
        let mut most = self.most_queued.borrow_mut();
        *most = (*most).max(queued);
        Ok(())
    }
}

#[test]
fn a_peer_that_never_reads_is_held_back_by_the_watermarks() {
    // 100 requests of 256 KiB replies each (25 MiB in all, more than the kernel buffers
    // hold), from a peer that reads nothing. The replies TLS has not taken wait in the
    // send queue, where async_chat's watermarks see them: reading pauses, and what is
    // queued stays within one reply of the high watermark.
    both_backends(|backend| {
        let certs = Certs::new();
        let seen = Seen::default();
        let most_queued = Rc::new(RefCell::new(0));
        let mut map = SocketMap::new();
        let (s2, m2) = (seen.clone(), most_queued.clone());
        let addr = listen(
            &mut map,
            TlsListener {
                config: certs.server.clone(),
                make: move || {
                    let flood = Flood {
                        reply: 256 * 1024,
                        seen: s2.clone(),
                        most_queued: m2.clone(),
                    };
                    AsyncChat::with_terminator(flood, Terminator::LF)
                },
            },
        );
        let config = certs.client.clone();
        let (done, finished) = mpsc::channel::<()>();
        let rx = peer(move || {
            let mut s = client(addr, &config);
            let requests: Vec<u8> = (0..100)
                .flat_map(|i| format!("{i}\n").into_bytes())
                .collect();
            s.write_all(&requests).map_err(|e| e.to_string())?;
            s.flush().map_err(|e| e.to_string())?;
            // Hold the connection open, reading nothing, until the test is done.
            let _ = finished.recv_timeout(DEADLINE);
            Ok::<_, String>(())
        });
        // Serve until the replies back up: no request served for a while.
        let mut last = (0, 0);
        run_until(&mut map, backend, "the replies to back up", |map| {
            let served = seen.0.borrow().frames.len();
            let passes = map.stats().passes;
            if served != last.0 {
                last = (served, passes);
            }
            served > 0 && passes > last.1 + 50
        });
        let served = seen.0.borrow().frames.len();
        assert!(
            served < 100,
            "{backend:?}: all {served} requests served to a peer that reads nothing"
        );
        let most = *most_queued.borrow();
        assert!(
            most <= 256 * 1024 + 256 * 1024,
            "{backend:?}: {most} bytes queued at once"
        );
        let _ = done.send(());
        serve_until(&mut map, backend, &rx).unwrap();
    });
}

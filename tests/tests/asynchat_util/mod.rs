//! Shared by the `asynchat_*` tests: the echo server of CPython's `test_asynchat` (run as
//! channels in the same loop), its `echo_client`, socket pairs, and a bounded loop driver.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use asyncore_chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
use asyncore_core::{
    BoxError, Channel, ChannelId, Context, Dispatcher, Domain, HandlerResult, Loop, SockAddr,
    Socket, SocketMap, Type,
};
use std::cell::RefCell;
use std::io::{self, Read};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What the client sends to make the server echo (Python: `SERVER_QUIT`).
pub const SERVER_QUIT: &[u8] = b"QUIT\n";

/// Runs one-pass loops until `done` holds; fails after 10 s.
pub fn run_until(
    map: &mut SocketMap,
    use_poll: bool,
    mut done: impl FnMut(&mut SocketMap) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(map) {
        assert!(Instant::now() < deadline, "timed out; map: {map:?}");
        Loop::new()
            .timeout(Duration::from_millis(10))
            .use_poll(use_poll)
            .count(1)
            .run(map)
            .expect("loop failed");
    }
}

/// Runs `passes` one-pass loops (for checking that something stays as it is).
pub fn run_passes(map: &mut SocketMap, use_poll: bool, passes: u32) {
    for _ in 0..passes {
        Loop::new()
            .timeout(Duration::from_millis(1))
            .use_poll(use_poll)
            .count(1)
            .run(map)
            .expect("loop failed");
    }
}

/// The test's end of a [`pair`].
#[cfg(unix)]
pub type PeerStream = std::os::unix::net::UnixStream;
/// The test's end of a [`pair`].
#[cfg(not(unix))]
pub type PeerStream = std::net::TcpStream;

/// Two connected streams: Unix sockets, or on Windows (which has no `socketpair`) a TCP
/// connection over the loopback interface.
fn stream_pair() -> (PeerStream, PeerStream) {
    #[cfg(unix)]
    return PeerStream::pair().expect("socketpair");
    #[cfg(not(unix))]
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let a = PeerStream::connect(listener.local_addr().expect("address")).expect("connect");
        let (b, _) = listener.accept().expect("accept");
        small_buffers(&a);
        small_buffers(&b);
        (a, b)
    }
}

/// Gives a loopback TCP connection buffers of a Unix socket pair's size, so that tests
/// that fill them (input caps, watermarks, flushes) behave alike; loopback TCP buffers
/// grow to megabytes.
#[cfg(not(unix))]
fn small_buffers(stream: &PeerStream) {
    let sock = socket2::SockRef::from(stream);
    sock.set_send_buffer_size(64 * 1024).expect("SO_SNDBUF");
    sock.set_recv_buffer_size(64 * 1024).expect("SO_RCVBUF");
}

/// A connected pair: a channel for the map, and a non-blocking stream for the test.
pub fn pair() -> (Channel, PeerStream) {
    let (ours, theirs) = stream_pair();
    theirs.set_nonblocking(true).expect("non-blocking");
    let chan = Channel::from_socket(Socket::from(ours)).expect("adopt socket");
    (chan, theirs)
}

/// Reads what `stream` has now into `into`; `true` at end of stream.
pub fn read_available(stream: &mut PeerStream, into: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// What the echo server saw and may do.
#[derive(Debug, Default)]
pub struct ServerState {
    /// Everything received, `SERVER_QUIT` removed once it came (Python: `s.buffer`).
    pub received: Vec<u8>,
    /// Whether the server may echo (Python: `start_resend_event`).
    pub resend: bool,
    /// The accepted connection.
    pub conn: Option<ChannelId>,
    /// The accepted connection is closed.
    pub closed: bool,
}

/// Python's `echo_server` as a listener in the loop: it accepts one connection (then stops
/// listening), collects until `SERVER_QUIT`, echoes everything `chunk` bytes per write
/// event, and closes.
struct EchoListener {
    chunk: usize,
    state: Rc<RefCell<ServerState>>,
}

impl Dispatcher for EchoListener {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        _addr: SockAddr,
    ) -> HandlerResult {
        let conn = EchoConn {
            chunk: self.chunk,
            state: self.state.clone(),
            quit: false,
            out: Vec::new(),
            sent: 0,
        };
        let id = ctx.insert(Channel::from_socket(sock)?, conn)?;
        self.state.borrow_mut().conn = Some(id.id());
        ctx.close()?;
        Ok(())
    }
}

struct EchoConn {
    chunk: usize,
    state: Rc<RefCell<ServerState>>,
    quit: bool,
    out: Vec<u8>,
    sent: usize,
}

impl Dispatcher for EchoConn {
    fn readable(&self, _chan: &Channel) -> bool {
        !self.quit
    }

    fn writable(&self, _chan: &Channel) -> bool {
        self.quit && self.state.borrow().resend
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let mut buf = [0u8; 1024];
        let n = ctx.recv(&mut buf)?;
        let mut state = self.state.borrow_mut();
        state.received.extend_from_slice(&buf[..n]);
        if let Some(at) = find(&state.received, SERVER_QUIT) {
            state.received.drain(at..at + SERVER_QUIT.len());
            self.quit = true;
            self.out = state.received.clone();
        }
        Ok(())
    }

    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if self.sent < self.out.len() {
            let end = self.out.len().min(self.sent + self.chunk);
            self.sent += ctx.send(&self.out[self.sent..end])?;
        }
        if self.sent >= self.out.len() {
            self.state.borrow_mut().closed = true;
            ctx.close()?;
        }
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.state.borrow_mut().closed = true;
        ctx.close()?;
        Ok(())
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Starts the echo server in `map` on 127.0.0.1, port 0 (Python: `start_echo_server`).
pub fn start_echo_server(
    map: &mut SocketMap,
    chunk: usize,
) -> (SockAddr, Rc<RefCell<ServerState>>) {
    let mut sock = Channel::create_socket(Domain::IPV4, Type::STREAM).expect("socket");
    sock.set_reuse_addr().expect("SO_REUSEADDR");
    sock.bind(
        "127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .expect("address"),
    )
    .expect("bind");
    sock.listen(5).expect("listen");
    let addr = sock.local_addr().expect("local address");
    let state = Rc::new(RefCell::new(ServerState {
        resend: true,
        ..ServerState::default()
    }));
    map.insert(
        sock,
        EchoListener {
            chunk,
            state: state.clone(),
        },
    )
    .expect("insert listener");
    (addr, state)
}

/// What the echo client saw.
#[derive(Debug, Default)]
pub struct ClientState {
    /// Frames (Python: `c.contents`).
    pub contents: Vec<Vec<u8>>,
    /// Input of the frame being collected (Python: `c.buffer`).
    pub buffer: Vec<u8>,
    /// Errors that reached `handle_error`.
    pub errors: Vec<String>,
    /// `handle_close` ran.
    pub closed: bool,
}

/// Python's `echo_client`: collects into its own buffer, appends it at each terminator.
pub struct EchoClient(pub Rc<RefCell<ClientState>>);

impl ChatHandler for EchoClient {
    fn collect_incoming_data(
        &mut self,
        _chat: &mut ChatContext<'_, '_>,
        data: &[u8],
    ) -> HandlerResult {
        self.0.borrow_mut().buffer.extend_from_slice(data);
        Ok(())
    }

    fn found_terminator(&mut self, _chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let mut state = self.0.borrow_mut();
        let frame = std::mem::take(&mut state.buffer);
        state.contents.push(frame);
        Ok(())
    }

    fn handle_close(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        self.0.borrow_mut().closed = true;
        chat.close()?;
        Ok(())
    }

    fn handle_error(&mut self, chat: &mut ChatContext<'_, '_>, err: BoxError) -> HandlerResult {
        self.0.borrow_mut().errors.push(err.to_string());
        chat.close()?;
        Ok(())
    }
}

/// A client channel connecting to `addr`, not yet in a map, so the test can push first.
pub fn echo_client(
    terminator: Terminator,
    addr: &SockAddr,
) -> (Channel, AsyncChat<EchoClient>, Rc<RefCell<ClientState>>) {
    let mut chan = Channel::create_socket(Domain::IPV4, Type::STREAM).expect("socket");
    chan.connect(addr.clone()).expect("connect");
    let state = Rc::new(RefCell::new(ClientState::default()));
    let chat = AsyncChat::with_terminator(EchoClient(state.clone()), terminator);
    (chan, chat, state)
}

/// Declares `mod $name { fn mio(); fn poll() }` running `$body(use_poll)` on each backend.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[test]
            fn mio() {
                ($body)(false);
            }

            #[test]
            fn poll() {
                ($body)(true);
            }
        }
    };
}

/// Writes what `stream` takes now from the front of `pending`; stops quietly when the
/// other end is closed.
pub fn write_some(stream: &mut PeerStream, pending: &mut Vec<u8>) {
    while !pending.is_empty() {
        match std::io::Write::write(stream, pending) {
            Ok(n) => {
                pending.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                return
            }
            Err(e) => panic!("write failed: {e}"),
        }
    }
}

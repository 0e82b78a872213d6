//! The server: a listener that makes each connection an `AsyncChat` speaking RESP2.
//!
//! A connection's `AsyncChat` frames with [`Terminator::Decode`]: the framer hands
//! [`RespConnection`]'s `decode` the input not framed yet, in place, and it cuts the
//! request at its front with its [`RequestParser`], runs it against the shared [`Store`]
//! and encodes the reply, so pipelined requests are answered in order and the replies to
//! one read go out in one write. A request cut by the end of a read waits in the framer
//! for the rest. Bounds:
//!
//! - input: one line (inline request or header) at most [`MAX_INLINE`](super::MAX_INLINE)
//!   bytes, one argument at most `--max-bulk` bytes, one request at most
//!   [`Limits::max_request`]; past them Redis's protocol error, then close;
//! - output: `async_chat`'s watermarks (pause reading above 256 KiB queued, resume at
//!   64 KiB): the requests after the reply that went over wait in the framer, in place;
//!   a `GET` reply shares the stored value instead of copying it, so a peer that
//!   pipelines `GET`s of a large value and reads nothing costs little.

use super::commands::{execute, with_args, Action, Exec, Session};
use super::parser::{Limits, Parsed, ProtocolError, RequestParser};
use super::reply::Encoder;
use super::store::Store;
use asyncore_chat::{AsyncChat, ChatContext, ChatError, ChatHandler, Decoded, Terminator};
use asyncore_core::{BoxError, Channel, Context, Dispatcher, DisplayAddr, HandlerResult};
use asyncore_core::{SockAddr, Socket};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The key space, shared by every connection of a server, and by the loops of a
/// `--threads N` server (the requests of one read take the lock once; with one loop it is
/// never contended).
pub type SharedStore = Arc<Mutex<Store>>;

/// Locks `store`. A panic in a command (caught by the loop, which closes that connection)
/// cannot leave the store half-changed in a way that matters more than losing that
/// command, so a poisoned lock is taken as is.
pub fn lock(store: &SharedStore) -> MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|p| p.into_inner())
}

/// What every connection of a server shares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// The protocol limits (`--max-bulk`).
    pub limits: Limits,
    /// Close a connection after this long without traffic (`--idle-timeout`).
    pub idle_timeout: Option<Duration>,
}

/// The listening channel's handler: each connection becomes a [`RespConnection`] on the
/// server's one key space.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use asyncore_core::{Loop, SocketMap};
/// use asyncore_examples::resp::{RespServer, Settings};
/// use std::io::{Read, Write};
/// use std::time::Duration;
///
/// let (listener, bound) = asyncore_examples::cli::listener("127.0.0.1:0".parse()?)?;
/// let mut map = SocketMap::new();
/// map.insert(listener, RespServer::new(Settings::default()))?;
///
/// let mut client = std::net::TcpStream::connect(bound.as_socket().ok_or("not IP")?)?;
/// client.write_all(b"SET greeting hello\r\n*2\r\n$3\r\nGET\r\n$8\r\ngreeting\r\n")?;
/// client.set_nonblocking(true)?;
/// let mut got = Vec::new();
/// while got.len() < 16 {
///     Loop::new().timeout(Duration::from_millis(10)).count(1).run(&mut map)?;
///     let mut buf = [0u8; 64];
///     match client.read(&mut buf) {
///         Ok(n) => got.extend_from_slice(&buf[..n]),
///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
///         Err(e) => return Err(e.into()),
///     }
/// }
/// assert_eq!(got, b"+OK\r\n$5\r\nhello\r\n");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct RespServer {
    store: SharedStore,
    settings: Settings,
    tls: Option<crate::tls::ServerTls>,
}

impl RespServer {
    /// A server with an empty key space.
    pub fn new(settings: Settings) -> RespServer {
        RespServer::with_store(SharedStore::default(), settings)
    }

    /// A server on an existing key space: several loops (`--threads N`) share one.
    pub fn with_store(store: SharedStore, settings: Settings) -> RespServer {
        RespServer {
            store,
            settings,
            tls: None,
        }
    }

    /// Speaks TLS on every connection it accepts (`--tls-cert`/`--tls-key`).
    pub fn with_tls(mut self, tls: Option<crate::tls::ServerTls>) -> RespServer {
        self.tls = tls;
        self
    }

    /// The key space its connections share.
    pub fn store(&self) -> SharedStore {
        self.store.clone()
    }
}

impl Dispatcher for RespServer {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        addr: SockAddr,
    ) -> HandlerResult {
        log::debug!("Incoming connection from {}", DisplayAddr(&addr));
        let conn = RespConnection::new(self.store.clone(), self.settings);
        let mut chan = Channel::from_socket(sock)?;
        chan.set_nodelay(true)?;
        crate::tls::accept(&mut chan, self.tls.as_ref())?;
        let id = ctx.insert(chan, conn.into_chat())?;
        if let Some(period) = self.settings.idle_timeout {
            ctx.map().set_idle_timeout(id, Some(period))?;
        }
        Ok(())
    }
}

/// One client connection: the RESP2 protocol as an `async_chat` handler (see the module
/// docs).
#[derive(Debug)]
pub struct RespConnection {
    store: SharedStore,
    parser: RequestParser,
    session: Session,
    /// `QUIT` or a protocol error closed the conversation: no request after it runs.
    done: bool,
}

/// Encoded replies are pushed once they reach this size (else once the input at hand is
/// served), so that the output watermarks see them.
const PUSH_AT: usize = 64 * 1024;

thread_local! {
    /// One encoder per loop thread: the replies of every connection are encoded into its
    /// shared blocks, so a connection keeps no encoding memory between reads.
    static ENCODER: std::cell::RefCell<Encoder> = std::cell::RefCell::new(Encoder::default());
}

impl RespConnection {
    /// A connection on `store`.
    pub fn new(store: SharedStore, settings: Settings) -> RespConnection {
        RespConnection {
            store,
            parser: RequestParser::new(settings.limits),
            session: Session::default(),
            done: false,
        }
    }

    /// The `AsyncChat` channel handler for this connection: the parser cuts the frames
    /// ([`Terminator::Decode`]), and the framer has no input limit (the parser has its
    /// own).
    pub fn into_chat(self) -> AsyncChat<RespConnection> {
        let mut chat = AsyncChat::with_terminator(self, Terminator::Decode);
        chat.set_max_input(None);
        chat
    }

    /// The connection's session (`CLIENT SETNAME` and the like).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Serves the whole requests at the front of `input`, in order: each is cut in place
    /// by the parser, run, and its reply encoded; the replies are pushed at the end (or
    /// once they reach [`PUSH_AT`]). Returns what it consumed; a request cut by the end of
    /// the input is left in place (`Incomplete` when it is the first).
    fn serve(
        &mut self,
        chat: &mut ChatContext<'_, '_>,
        enc: &mut Encoder,
        input: &[u8],
    ) -> Result<Decoded, ChatError> {
        // The key space is locked once per batch, and the clock read once.
        let store = self.store.clone();
        let mut store = lock(&store);
        let now = Instant::now();
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            let len = match self.parser.parse(rest) {
                Parsed::Command { len } => len,
                Parsed::Empty { len } => {
                    pos += len;
                    continue;
                }
                Parsed::Incomplete { need } if pos == 0 => {
                    let more = need.saturating_sub(rest.len());
                    return Ok(Decoded::Incomplete(Some(more)));
                }
                Parsed::Incomplete { .. } => break,
                Parsed::Error(err) => {
                    self.refuse(chat, enc, &err)?;
                    return Ok(Decoded::Consumed(input.len()));
                }
            };
            let mut x = Exec {
                store: &mut store,
                session: &mut self.session,
                limits: self.parser.limits(),
                now,
            };
            let action = with_args(self.parser.args(rest), |args| execute(&mut x, args));
            pos += len;
            match action {
                Action::Reply(reply) => reply.encode(enc),
                Action::ReplyAndClose(reply) => {
                    reply.encode(enc);
                    flush(chat, enc)?;
                    chat.close_when_done();
                    self.done = true;
                    // What follows QUIT is not run (Redis does not either).
                    return Ok(Decoded::Consumed(input.len()));
                }
            }
            if enc.len() >= PUSH_AT {
                flush(chat, enc)?;
                if chat.is_paused() {
                    // The output went over the high watermark: the other requests wait in
                    // the framer, in place, until it drains.
                    break;
                }
            }
        }
        flush(chat, enc)?;
        Ok(Decoded::Consumed(pos))
    }

    /// Replies to a malformed request (if Redis would) and closes once that is sent.
    fn refuse(
        &mut self,
        chat: &mut ChatContext<'_, '_>,
        enc: &mut Encoder,
        err: &ProtocolError,
    ) -> Result<(), ChatError> {
        log::info!("{:?}: {err}; closing", chat.channel());
        if let Some(reply) = err.reply() {
            reply.encode(enc);
        }
        flush(chat, enc)?;
        chat.close_when_done();
        self.done = true;
        Ok(())
    }
}

/// Pushes the replies encoded so far.
fn flush(chat: &mut ChatContext<'_, '_>, enc: &mut Encoder) -> Result<(), ChatError> {
    enc.drain(|part| chat.push(part))
}

impl ChatHandler for RespConnection {
    fn decode(
        &mut self,
        chat: &mut ChatContext<'_, '_>,
        input: &[u8],
    ) -> Result<Decoded, BoxError> {
        if self.done {
            // After QUIT or a protocol error: the rest of the input is not run.
            return Ok(Decoded::Consumed(input.len()));
        }
        ENCODER.with(|enc| {
            // Never borrowed twice: decoding does not call back into this function.
            let mut enc = enc.borrow_mut();
            let result = self.serve(chat, &mut enc, input);
            if result.is_err() {
                // Whatever was encoded for this connection is not for the next one.
                enc.clear();
            }
            Ok(result?)
        })
    }

    fn found_terminator(&mut self, _chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        // Never called: the parser cuts the frames (see `into_chat`).
        Ok(())
    }

    fn handle_error(&mut self, chat: &mut ChatContext<'_, '_>, err: BoxError) -> HandlerResult {
        log::warn!("{:?}: {err}; closing", chat.channel());
        self.handle_close(chat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asyncore_chat::ChatHandle;
    use asyncore_core::{Loop, SocketMap};
    use bytes::Bytes;
    use std::io::{Read, Write};
    use std::time::Duration;

    /// The test's end of the connection: a Unix socket, or on Windows (no `socketpair`)
    /// a loopback TCP stream.
    #[cfg(unix)]
    type Peer = std::os::unix::net::UnixStream;
    #[cfg(not(unix))]
    type Peer = std::net::TcpStream;

    #[cfg(unix)]
    fn stream_pair() -> (Peer, Peer) {
        Peer::pair().expect("socket pair")
    }

    #[cfg(not(unix))]
    fn stream_pair() -> (Peer, Peer) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let a = Peer::connect(listener.local_addr().expect("address")).expect("connect");
        (a, listener.accept().expect("accept").0)
    }

    /// A connection over a socket pair, in its own map.
    fn connection(
        settings: Settings,
    ) -> (SocketMap, Peer, SharedStore, ChatHandle<RespConnection>) {
        let (ours, theirs) = stream_pair();
        let store = SharedStore::default();
        let sock = Socket::from(ours);
        let chan = Channel::from_socket(sock).expect("channel");
        let mut map = SocketMap::new();
        let conn = RespConnection::new(store.clone(), settings);
        let id = map.insert(chan, conn.into_chat()).expect("insert");
        theirs.set_nonblocking(true).expect("nonblocking");
        (map, theirs, store, id)
    }

    /// Runs the loop until `peer` has received `want` bytes (10 s deadline).
    fn read_reply(map: &mut SocketMap, peer: &mut Peer, want: usize) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < want {
            assert!(Instant::now() < deadline, "got only {got:?}");
            Loop::new()
                .timeout(Duration::from_millis(10))
                .count(1)
                .run(map)
                .expect("loop");
            let mut buf = [0u8; 65536];
            match peer.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read: {e}"),
            }
        }
        got
    }

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let (mut map, mut peer, store, _) = connection(Settings::default());
        peer.write_all(b"SET a 1\r\nINCR a\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\n")
            .expect("write");
        let want = b"+OK\r\n:2\r\n$1\r\n2\r\n+PONG\r\n";
        assert_eq!(read_reply(&mut map, &mut peer, want.len()), want);
        assert_eq!(lock(&store).len(), 1);
    }

    #[test]
    fn a_peer_that_reads_nothing_pauses_its_input() {
        let (mut map, mut peer, store, id) = connection(Settings::default());
        let big = Bytes::from(vec![b'v'; 1 << 20]);
        lock(&store).set(b"big", big, super::super::Expiry::Clear);
        // 50 GETs of 1 MiB, and the peer reads nothing.
        let gets = b"GET big\r\n".repeat(50);
        peer.write_all(&gets).expect("write");
        for _ in 0..20 {
            Loop::new()
                .timeout(Duration::from_millis(1))
                .count(1)
                .run(&mut map)
                .expect("loop");
        }
        let (chat, chan) = map.get_mut(id).expect("the connection");
        assert!(chat.framer().is_paused(), "reading paused");
        assert!(!chat.framer().pending().is_empty(), "requests wait unread");
        // One reply went over the high watermark; no other was made.
        let queued = chat.queued_output(chan);
        assert!(queued <= (1 << 20) + 64, "{queued} bytes queued");
        // Once the peer reads, the requests that waited are answered, every one.
        let one = b"$1048576\r\n".len() + (1 << 20) + 2;
        let got = read_reply(&mut map, &mut peer, 50 * one);
        assert_eq!(got.len(), 50 * one);
        assert!(got.starts_with(b"$1048576\r\nvvv") && got.ends_with(b"vvv\r\n"));
    }

    /// Writes `stream` in pieces of `chunk` bytes, one loop pass after each (so that each
    /// read takes one piece), and returns all the replies.
    fn serve_in_pieces(stream: &[u8], chunk: usize, want: usize) -> Vec<u8> {
        let (mut map, mut peer, _, _) = connection(Settings::default());
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            peer.write_all(piece).expect("write");
            Loop::new()
                .timeout(Duration::from_millis(10))
                .count(1)
                .run(&mut map)
                .expect("loop");
            let mut buf = [0u8; 65536];
            while let Ok(n) = peer.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        got.extend(read_reply(&mut map, &mut peer, want - got.len().min(want)));
        got
    }

    #[test]
    fn requests_cut_anywhere_get_the_same_replies() {
        let small = b"PING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nab\r\nGET k\r\n\
                      *2\r\n$4\r\nINCR\r\n$1\r\nn\r\n\r\nECHO \"a b\"\r\n"
            .to_vec();
        let want = b"+PONG\r\n+OK\r\n$2\r\nab\r\n:1\r\n$3\r\na b\r\n".to_vec();
        for chunk in [1, 2, 3, 5, 8, 13] {
            let got = serve_in_pieces(&small, chunk, want.len());
            assert_eq!(got, want, "pieces of {chunk}");
        }
        // A request larger than a read is held across reads, and its value kept whole.
        let big = vec![b'v'; 200_000];
        let mut stream = small.clone();
        stream.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$200000\r\n");
        stream.extend_from_slice(&big);
        stream.extend_from_slice(b"\r\nGET big\r\nQUIT\r\n");
        let mut want_big = want.clone();
        want_big.extend_from_slice(b"+OK\r\n$200000\r\n");
        want_big.extend_from_slice(&big);
        want_big.extend_from_slice(b"\r\n+OK\r\n");
        for chunk in [7, 1000, 65536, stream.len()] {
            let got = serve_in_pieces(&stream, chunk, want_big.len());
            assert!(got == want_big, "pieces of {chunk}: {} bytes", got.len());
        }
    }
}

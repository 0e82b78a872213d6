//! The server: a listener that makes each connection an `AsyncChat` speaking RESP2.
//!
//! Each connection's [`RespConnection`] feeds the frames `async_chat` cuts to its
//! [`RequestParser`], runs each whole request against the shared [`Store`], and pushes the
//! reply at once, so pipelined requests are answered in order. Bounds:
//!
//! - input: one line (inline request or header) at most [`MAX_INLINE`](super::MAX_INLINE)
//!   bytes, one argument at most `--max-bulk` bytes, one request at most
//!   [`Limits::max_request`]; past them Redis's protocol error, then close;
//! - output: `async_chat`'s watermarks (pause reading above 256 KiB queued, resume at
//!   64 KiB), and a `GET` reply shares the stored value instead of copying it, so a peer
//!   that pipelines `GET`s of a large value and reads nothing costs little.

use super::commands::{execute, Action, Exec, Session};
use super::parser::{Limits, Parsed, ProtocolError, RequestParser};
use super::reply::{Encoder, Reply};
use super::store::Store;
use asyncore_chat::{AsyncChat, ChatContext, ChatError, ChatHandler};
use asyncore_core::{BoxError, Channel, Context, Dispatcher, DisplayAddr, HandlerResult};
use asyncore_core::{SockAddr, Socket};
use bytes::Bytes;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The key space, shared by every connection of a server, and by the loops of a
/// `--threads N` server (each command takes the lock once; with one loop it is never
/// contended).
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
}

impl RespServer {
    /// A server with an empty key space.
    pub fn new(settings: Settings) -> RespServer {
        RespServer {
            store: SharedStore::default(),
            settings,
        }
    }

    /// A server on an existing key space: several loops (`--threads N`) share one.
    pub fn with_store(store: SharedStore, settings: Settings) -> RespServer {
        RespServer { store, settings }
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
        let id = ctx.insert(chan, conn.into_chat())?;
        if let Some(period) = self.settings.idle_timeout {
            ctx.map().set_idle_timeout(id, Some(period))?;
        }
        Ok(())
    }
}

/// One client connection: the RESP2 protocol as an `async_chat` handler.
#[derive(Debug)]
pub struct RespConnection {
    store: SharedStore,
    parser: RequestParser,
    session: Session,
}

impl RespConnection {
    /// A connection on `store`.
    pub fn new(store: SharedStore, settings: Settings) -> RespConnection {
        RespConnection {
            store,
            parser: RequestParser::new(settings.limits),
            session: Session::default(),
        }
    }

    /// The `AsyncChat` channel handler for this connection, with the parser's first
    /// terminator and input limit.
    pub fn into_chat(self) -> AsyncChat<RespConnection> {
        let terminator = self.parser.terminator();
        let max_input = self.parser.max_input();
        let mut chat = AsyncChat::with_terminator(self, terminator);
        chat.set_max_input(max_input);
        chat
    }

    /// The connection's session (`CLIENT SETNAME` and the like).
    pub fn session(&self) -> &Session {
        &self.session
    }

    fn run(&mut self, chat: &mut ChatContext<'_, '_>, args: &[Bytes]) -> Result<(), ChatError> {
        let action = {
            let mut store = lock(&self.store);
            let mut x = Exec {
                store: &mut store,
                session: &mut self.session,
                limits: self.parser.limits(),
                now: Instant::now(),
            };
            execute(&mut x, args)
        };
        match action {
            Action::Reply(reply) => push(chat, &reply),
            Action::ReplyAndClose(reply) => {
                push(chat, &reply)?;
                chat.close_when_done();
                Ok(())
            }
        }
    }

    /// Replies to a malformed request (if Redis would) and closes once that is sent.
    fn refuse(
        &mut self,
        chat: &mut ChatContext<'_, '_>,
        err: &ProtocolError,
    ) -> Result<(), ChatError> {
        log::info!("{:?}: {err}; closing", chat.channel());
        if let Some(reply) = err.reply() {
            push(chat, &reply)?;
        }
        chat.close_when_done();
        Ok(())
    }
}

/// Payloads from this size on are taken without a copy (see `found_terminator`).
const SHARE_PAYLOAD_AT: usize = 4096;

thread_local! {
    /// One encoder per loop thread: the small replies of every connection are encoded into
    /// its shared blocks, so a connection keeps no encoding memory between replies.
    static ENCODER: std::cell::RefCell<Encoder> = std::cell::RefCell::new(Encoder::default());
}

/// Queues `reply`, sharing its large values.
fn push(chat: &mut ChatContext<'_, '_>, reply: &Reply) -> Result<(), ChatError> {
    ENCODER.with(|enc| {
        // Never borrowed twice: pushing does not call back into this function.
        let mut enc = enc.borrow_mut();
        reply.encode(&mut enc);
        enc.drain(|part| chat.push(part))
    })
}

impl ChatHandler for RespConnection {
    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        // Header lines are only read: parse them in place and keep the buffer's memory.
        let parsed = if self.parser.wants_payload() && chat.data().len() >= SHARE_PAYLOAD_AT {
            // A large payload keeps the memory it arrived in: no copy.
            self.parser.frame(chat.take_data())
        } else if self.parser.wants_payload() {
            // A small one is copied out, so that the input buffer is never shared and
            // keeps being reused in place.
            let payload = Bytes::copy_from_slice(chat.data());
            chat.clear_data();
            self.parser.frame(payload)
        } else {
            let parsed = self.parser.frame_ref(chat.data());
            chat.clear_data();
            parsed
        };
        match parsed {
            Parsed::Incomplete => {}
            Parsed::Command(args) => {
                self.run(chat, &args)?;
                self.parser.recycle(args);
            }
            Parsed::Error(err) => {
                self.refuse(chat, &err)?;
                return Ok(());
            }
        }
        chat.set_terminator(self.parser.terminator());
        chat.set_max_input(self.parser.max_input());
        Ok(())
    }

    fn handle_error(&mut self, chat: &mut ChatContext<'_, '_>, err: BoxError) -> HandlerResult {
        if let Some(ChatError::InputLimit { .. }) = err.downcast_ref::<ChatError>() {
            // A line went past its limit: the framer kept nothing of it.
            let err = self.parser.input_limit_error();
            self.refuse(chat, &err)?;
            return Ok(());
        }
        log::warn!("{:?}: {err}; closing", chat.channel());
        self.handle_close(chat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use asyncore_core::{ChannelId, Loop, SocketMap};
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    /// A connection over a socket pair, in its own map.
    fn connection(settings: Settings) -> (SocketMap, UnixStream, SharedStore, ChannelId) {
        let (ours, theirs) = UnixStream::pair().expect("socket pair");
        let store = SharedStore::default();
        let sock = Socket::from(std::os::fd::OwnedFd::from(ours));
        let chan = Channel::from_socket(sock).expect("channel");
        let mut map = SocketMap::new();
        let conn = RespConnection::new(store.clone(), settings);
        let id = map.insert(chan, conn.into_chat()).expect("insert");
        theirs.set_nonblocking(true).expect("nonblocking");
        (map, theirs, store, id)
    }

    /// Runs the loop until `peer` has received `want` bytes (10 s deadline).
    fn read_reply(map: &mut SocketMap, peer: &mut UnixStream, want: usize) -> Vec<u8> {
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
        let (chat, chan) = map
            .get_mut::<AsyncChat<RespConnection>>(id)
            .expect("the connection");
        assert!(chat.framer().is_paused(), "reading paused");
        assert!(!chat.framer().pending().is_empty(), "requests wait unread");
        // One reply went over the high watermark; no other was made.
        let queued = chat.queued_output(chan);
        assert!(queued <= (1 << 20) + 64, "{queued} bytes queued");
    }
}

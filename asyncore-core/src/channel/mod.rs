//! The core part of a channel: its descriptor, its state flags, its buffered output and
//! closing. The socket operations (bind, listen, connect, accept, send, recv) are in
//! `socket_ops.rs`.
//!
//! A channel is the socket half only. What the loop keeps about it (readiness, progress
//! toward close) is in the map's entry (`state.rs`); the operations here note what they
//! saw (`state::seen`) for the loop to fold in.

use crate::backend::Registration;
use crate::into_bytes::IntoBytes;
#[cfg(unix)]
use crate::raw_io::RawIo;
use crate::raw_io::{DisplayAddr, Fileno, Io};
use crate::send_queue::{SendQueue, MAX_IOVECS};
use crate::state::seen;
use crate::sys::{self, RawSock};
use socket2::{Domain, SockAddr, Socket, Type};
use std::fmt;
use std::io::{self, IoSlice};
#[cfg(unix)]
use std::os::fd::{FromRawFd, RawFd};

mod socket_ops;
#[cfg(feature = "tls")]
mod tls;

/// The most one [`Channel::initiate_send`] hands to the OS in one call (Python's
/// `dispatcher_with_send` sends `out_buffer[:65536]`).
pub const DEFAULT_MAX_SEND: usize = 65536;

/// The core part of a channel: descriptor, state flags, output queue, socket operations.
///
/// Python: the socket-wrapping half of `asyncore.dispatcher` (`create_socket`,
/// `set_socket`, `bind`, `listen`, `connect`, `accept`, `send`, `recv`, `close`, and the
/// attributes `connected`, `accepting`, `connecting`, `addr`). The other half, the event
/// handlers, is the [`Dispatcher`](crate::Dispatcher) trait. A [`SocketMap`](crate::SocketMap)
/// owns both; inside a handler, the [`Context`](crate::Context) dereferences to the channel.
///
/// Every socket a channel creates or adopts is non-blocking.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use asyncore_core::{Channel, Domain, Type};
/// let mut server = Channel::create_socket(Domain::IPV4, Type::STREAM)?;
/// server.set_reuse_addr()?;
/// server.bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())?;
/// server.listen(5)?;
/// assert!(server.accepting());
/// assert!(server.local_addr()?.as_socket().is_some());
/// # Ok(())
/// # }
/// ```
pub struct Channel {
    io: Option<Io>,
    addr: Option<SockAddr>,
    connected: bool,
    accepting: bool,
    connecting: bool,
    out: SendQueue,
    max_send: usize,
    pub(crate) name: &'static str,
    pub(crate) tag: Option<String>,
    /// A connect that failed before the loop saw it; delivered as the connect event.
    pub(crate) pending_error: Option<io::Error>,
    /// What the operations saw since the loop last looked (`state::seen` bits).
    notes: u8,
    /// A stream socket: a short read shows it drained (see `sys::SHORT_READ_DRAINS`).
    stream: bool,
    /// Bytes were sent through it: a reset at its close could destroy them in flight.
    has_sent: bool,
    /// Its place in the map's poller, once it is in a map.
    pub(crate) registration: Option<Registration>,
    /// The descriptor of a closed channel that lingers (see `SocketMap::set_linger`).
    linger_io: Option<Io>,
    closed: bool,
    /// The TLS session between the socket and `recv`/`send`, once started.
    #[cfg(feature = "tls")]
    tls: Option<Box<tls::TlsSession>>,
}

impl Channel {
    /// A channel with no descriptor yet (Python: `asyncore.dispatcher()`).
    ///
    /// It cannot join a map until it has one; see [`set_socket`](Self::set_socket).
    pub fn new() -> Channel {
        Channel {
            io: None,
            addr: None,
            connected: false,
            accepting: false,
            connecting: false,
            out: SendQueue::new(),
            max_send: DEFAULT_MAX_SEND,
            name: "asyncore_core::Channel",
            tag: None,
            pending_error: None,
            notes: 0,
            stream: false,
            has_sent: false,
            registration: None,
            linger_io: None,
            closed: false,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Creates a non-blocking socket of `domain` and `ty` (stream or datagram; IPv4, IPv6 or
    /// Unix). Python: `dispatcher.create_socket(family, type)`.
    ///
    /// # Errors
    /// The OS error from `socket(2)` or from setting the socket non-blocking.
    pub fn create_socket(domain: Domain, ty: Type) -> io::Result<Channel> {
        let sock = Socket::new(domain, ty, None)?;
        sock.set_nonblocking(true)?;
        sys::no_sigpipe(&sock)?;
        let mut chan = Channel::new();
        chan.stream = ty == Type::STREAM;
        chan.io = Some(Io::Socket(sock));
        Ok(chan)
    }

    /// Adopts an existing socket, blocking or not: it is made non-blocking, and the channel
    /// is `connected` when the socket has a peer (then [`addr`](Self::addr) is the peer's).
    /// Python: `dispatcher(sock)` / `set_socket`.
    ///
    /// # Errors
    /// `sock` is not a socket (`ENOTSOCK`), or cannot be made non-blocking.
    pub fn from_socket(sock: Socket) -> io::Result<Channel> {
        let mut chan = Channel::new();
        chan.set_socket(sock)?;
        Ok(chan)
    }

    /// Adopts a raw socket descriptor, taking ownership of it.
    ///
    /// A descriptor that is not open is refused (and not closed); one that is open but not
    /// a socket is refused and closed.
    ///
    /// # Errors
    /// `EBADF` (with the descriptor number in the message) for a descriptor that is not
    /// open, `ENOTSOCK` for one that is not a socket.
    ///
    /// # Safety
    /// `fd`, if open, must be owned by the caller and not closed elsewhere afterwards.
    ///
    /// Unix only; on Windows, adopt a socket with [`from_socket`](Self::from_socket)
    /// (`Socket` converts from an `OwnedSocket`).
    #[cfg(unix)]
    pub unsafe fn from_raw_fd(fd: RawFd) -> io::Result<Channel> {
        if let Err(e) = sys::check_open(fd) {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot adopt descriptor {fd}: {e}"),
            ));
        }
        // SAFETY: `fd` is open and the caller hands over its ownership.
        let sock = unsafe { Socket::from_raw_fd(fd) };
        Channel::from_socket(sock)
    }

    /// Adopts something that is not a socket (a pipe, a terminal, a file) through the
    /// [`RawIo`] interface. The channel starts `connected`, as Python's `file_dispatcher`.
    ///
    /// # Errors
    /// The descriptor cannot be made non-blocking.
    ///
    /// Unix only, as [`RawIo`] is.
    #[cfg(unix)]
    pub fn from_raw_io(io: Box<dyn RawIo>) -> io::Result<Channel> {
        sys::set_nonblocking(io.as_raw_fd(), true)?;
        let mut chan = Channel::new();
        chan.io = Some(Io::Other(io));
        chan.connected = true;
        Ok(chan)
    }

    /// Gives this channel `sock` (made non-blocking), replacing any descriptor it had
    /// (the old one is closed). Python: `dispatcher.set_socket` plus the `connected`
    /// check of `dispatcher.__init__`.
    ///
    /// On a channel in a map the new descriptor joins the map's poller in place of the
    /// old one, so both backends deliver its events from the next pass on.
    ///
    /// # Errors
    /// As [`from_socket`](Self::from_socket), or the poller refuses the new descriptor.
    /// On error the channel is unchanged.
    pub fn set_socket(&mut self, sock: Socket) -> io::Result<()> {
        let fd = sys::raw(&sock);
        let ty = match sock.r#type() {
            Ok(ty) => ty,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot adopt descriptor {fd} as a socket: {e}"),
                ))
            }
        };
        sock.set_nonblocking(true)?;
        sys::no_sigpipe(&sock)?;
        let peer = match sock.peer_addr() {
            Ok(peer) => Some(peer),
            // Not connected (yet): a listening or fresh socket.
            Err(e) if sys::is_not_connected(&e) => None,
            Err(e) => return Err(e),
        };
        if let Some(reg) = &mut self.registration {
            reg.replace(fd).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot register descriptor {fd} with the loop: {e}"),
                )
            })?;
        }
        self.connected = peer.is_some();
        if peer.is_some() {
            self.addr = peer;
        }
        self.stream = ty == Type::STREAM;
        // The old descriptor, if any, is closed here, and a TLS session on it ends.
        self.io = Some(Io::Socket(sock));
        #[cfg(feature = "tls")]
        {
            self.tls = None;
        }
        self.closed = false;
        self.note(seen::NEW_SOCKET);
        Ok(())
    }

    /// The descriptor number (the socket handle on Windows), or `None` before a socket is
    /// set and after close. Python: `dispatcher.fileno()`.
    pub fn fileno(&self) -> Option<Fileno> {
        self.io.as_ref().map(Io::fd)
    }

    /// The socket, when this channel holds one (not a [`RawIo`] stand-in).
    pub fn socket(&self) -> Option<&Socket> {
        match &self.io {
            Some(Io::Socket(s)) => Some(s),
            _ => None,
        }
    }

    /// The address given to `bind` or `connect`, or the peer's for an adopted or
    /// accepted connection. Python: `dispatcher.addr`.
    pub fn addr(&self) -> Option<&SockAddr> {
        self.addr.as_ref()
    }

    /// Whether the channel is connected to a peer. Python: `dispatcher.connected`.
    pub fn connected(&self) -> bool {
        self.connected
    }

    /// Whether the channel is listening. Python: `dispatcher.accepting`.
    pub fn accepting(&self) -> bool {
        self.accepting
    }

    /// Whether a non-blocking connect is under way. Python: `dispatcher.connecting`.
    pub fn connecting(&self) -> bool {
        self.connecting
    }

    /// Whether the channel has been closed.
    pub fn closed(&self) -> bool {
        self.closed
    }

    /// Marks the channel connected (or not). For stand-ins that are connected by nature,
    /// and for ports of Python code that sets `self.connected` itself.
    pub fn set_connected(&mut self, connected: bool) {
        self.connected = connected;
    }

    /// A tag shown in this channel's description (its `Debug` form), e.g. a URL or a user
    /// name, to tell channels of the same type apart in logs.
    pub fn set_tag(&mut self, tag: impl Into<String>) {
        self.tag = Some(tag.into());
    }

    /// The queued output of this channel (the buffered-send layer's `out_buffer`).
    pub fn out_queue(&self) -> &SendQueue {
        &self.out
    }

    /// The queued output, to add to or drop from.
    pub fn out_queue_mut(&mut self) -> &mut SendQueue {
        &mut self.out
    }

    /// Queues `data` (without copying it, but for small buffers packed together: see
    /// [`SendQueue`]) and tries to send; returns how much of the queue was sent now.
    /// Python: `dispatcher_with_send.send`, `async_chat.push`.
    ///
    /// # Errors
    /// As [`initiate_send`](Self::initiate_send).
    pub fn push(&mut self, data: impl IntoBytes) -> io::Result<usize> {
        self.out.push(data);
        self.initiate_send()
    }

    /// The most one [`initiate_send`](Self::initiate_send) writes.
    pub fn max_send(&self) -> usize {
        self.max_send
    }

    /// Sets the most one [`initiate_send`](Self::initiate_send) writes (at least 1).
    pub fn set_max_send(&mut self, bytes: usize) {
        self.max_send = bytes.max(1);
    }

    /// Sends the front of the output queue (at most [`max_send`](Self::max_send) bytes, in
    /// one vectored write of up to 64 buffers) and returns how many bytes went.
    /// Python: `dispatcher_with_send.initiate_send`.
    ///
    /// # Errors
    /// As [`send`](Self::send): `Ok(0)` for "not now" and for a peer that went away.
    pub fn initiate_send(&mut self) -> io::Result<usize> {
        if self.out.is_empty() || self.closed {
            return Ok(0);
        }
        #[cfg(feature = "tls")]
        let (limit, plain) = match self.tls_plain_prefix() {
            Some(0) => return self.tls_initiate_send(),
            Some(prefix) => (self.max_send.min(prefix), true),
            None => (self.max_send, false),
        };
        #[cfg(not(feature = "tls"))]
        let limit = self.max_send;
        let result = {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let n = self.out.gather(&mut slices, limit);
            match &self.io {
                Some(Io::Socket(s)) if n == 1 => s.send_with_flags(&slices[0], sys::SEND_FLAGS),
                Some(Io::Socket(s)) => s.send_vectored_with_flags(&slices[..n], sys::SEND_FLAGS),
                #[cfg(unix)]
                Some(Io::Other(o)) => o.write_vectored(&slices[..n]),
                None => Err(not_open()),
            }
        };
        let sent = self.sent(result)?;
        self.out.consume(sent);
        #[cfg(feature = "tls")]
        if plain {
            self.tls_plain_sent(sent);
        }
        Ok(sent)
    }

    /// Shuts down the write side, the read side or both. Python: `socket.shutdown(how)`.
    ///
    /// # Errors
    /// No socket, or the OS error (`ENOTCONN` when the peer is already gone).
    pub fn shutdown(&mut self, how: std::net::Shutdown) -> io::Result<()> {
        self.sock()?.shutdown(how)
    }

    /// Closes the channel: clears the state flags, leaves the loop's poller and closes
    /// the descriptor. Closing twice is not an error. Python: `dispatcher.close()`.
    ///
    /// In a map, close a channel through [`Context::close`](crate::Context::close) or
    /// [`SocketMap::close`](crate::SocketMap::close): the map's views then agree at once.
    /// A channel closed here directly leaves the map when the loop next sees it.
    ///
    /// # Errors
    /// The error of `close(2)` (rare: `EIO`); `EBADF` and `ENOTCONN` are ignored as in Python.
    pub fn close(&mut self) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if !self.closed {
            self.tls_close();
        }
        self.clear_flags();
        let Some(io) = self.io.take() else {
            return Ok(());
        };
        close_io(self.registration.take(), io)
    }

    fn clear_flags(&mut self) {
        self.connected = false;
        self.accepting = false;
        self.connecting = false;
        self.closed = true;
    }

    /// Whether a close should linger: a stream socket that sent something (its output may
    /// still be in flight or unread by the peer, and input arriving after the close would
    /// make the kernel answer with a reset that destroys it), or that holds input the peer
    /// sent and we did not read (closed now, the kernel resets at once). A channel that
    /// never sent and has nothing unread closes at once.
    pub(crate) fn should_linger(&self) -> bool {
        let Some(Io::Socket(s)) = &self.io else {
            return false;
        };
        if !self.stream {
            return false;
        }
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        self.has_sent || matches!(s.peek(&mut byte), Ok(n) if n > 0)
    }

    /// Closes the channel for its users but keeps the descriptor (still in the poller) for
    /// the loop to read and discard the peer's input until the linger ends.
    pub(crate) fn close_to_linger(&mut self) {
        #[cfg(feature = "tls")]
        self.tls_close();
        self.clear_flags();
        self.linger_io = self.io.take();
    }

    /// The lingering descriptor.
    pub(crate) fn lingering_fd(&self) -> Option<RawSock> {
        self.linger_io.as_ref().map(Io::fd)
    }

    /// Reads and discards what the peer sent to a lingering channel.
    pub(crate) fn discard_input(&mut self) -> Discard {
        let Some(Io::Socket(s)) = &self.linger_io else {
            return Discard::Over;
        };
        let mut buf = [0u8; 4096];
        let mut s: &Socket = s;
        // A few reads per event at most, so that one peer does not hold up the loop.
        for _ in 0..16 {
            match io::Read::read(&mut s, &mut buf) {
                Ok(0) => return Discard::Over,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(reg) = &mut self.registration {
                        reg.rearm();
                    }
                    return Discard::Drained;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Discard::Over,
            }
        }
        Discard::More
    }

    /// Closes a lingering descriptor.
    pub(crate) fn end_linger(&mut self) {
        if let Some(io) = self.linger_io.take() {
            let _ = close_io(self.registration.take(), io);
        }
    }

    pub(crate) fn set_connect_state(&mut self, connected: bool, connecting: bool) {
        self.connected = connected;
        self.connecting = connecting;
    }

    /// Notes what an operation saw, for the loop.
    pub(crate) fn note(&mut self, bits: u8) {
        self.notes |= bits;
    }

    /// Arms the poller's registration again after an operation saw `WouldBlock` (a no-op
    /// where the OS needs none: see `sys::REARM`).
    pub(crate) fn rearm(&mut self) {
        if let Some(reg) = &mut self.registration {
            reg.rearm();
        }
    }

    /// Takes the notes since the last time.
    pub(crate) fn take_notes(&mut self) -> u8 {
        std::mem::take(&mut self.notes)
    }

    /// Whether operations noted something the loop has not seen yet.
    pub(crate) fn has_notes(&self) -> bool {
        self.notes != 0
    }
}

/// What [`Channel::discard_input`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Discard {
    /// The peer ended its input (or the socket failed): the linger is over.
    Over,
    /// Nothing more to read now: wait for the next readiness.
    Drained,
    /// It read its share and there may be more: again on the next pass.
    More,
}

/// Leaves the poller, then closes `io`, reporting the error of `close(2)`.
fn close_io(registration: Option<Registration>, io: Io) -> io::Result<()> {
    if let Some(reg) = registration {
        // Before the close: a duplicate of the descriptor elsewhere would keep it polled.
        reg.remove();
    }
    let result = match io {
        Io::Socket(s) => sys::close_socket(s),
        #[cfg(unix)]
        Io::Other(o) => o.close(),
    };
    match result {
        Err(e) if sys::close_error_is_benign(&e) => Ok(()),
        other => other,
    }
}

impl Default for Channel {
    fn default() -> Channel {
        Channel::new()
    }
}

impl fmt::Debug for Channel {
    /// asyncore's repr: `<Type listening|connected ADDRESS [tag] fd=N>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}", self.name)?;
        if self.accepting && self.addr.is_some() {
            f.write_str(" listening")?;
        } else if self.connected {
            f.write_str(" connected")?;
        }
        if let Some(addr) = &self.addr {
            write!(f, " {}", DisplayAddr(addr))?;
        }
        if let Some(tag) = &self.tag {
            write!(f, " [{tag}]")?;
        }
        match self.fileno() {
            Some(fd) => write!(f, " fd={fd}>"),
            None => f.write_str(" closed>"),
        }
    }
}

fn not_open() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "channel has no open descriptor",
    )
}

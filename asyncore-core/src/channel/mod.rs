//! The core part of a channel: its descriptor, its state flags, its buffered output and
//! closing. The socket operations (bind, listen, connect, accept, send, recv) are in
//! `socket_ops.rs`.

use crate::raw_io::{DisplayAddr, Io, RawIo};
use crate::send_queue::{SendQueue, MAX_IOVECS};
use crate::sys;
use bytes::Bytes;
use socket2::{Domain, SockAddr, Socket, Type};
use std::fmt;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::Arc;

mod socket_ops;

/// The most one [`Channel::initiate_send`] hands to the OS in one call (Python's
/// `dispatcher_with_send` sends `out_buffer[:65536]`).
pub const DEFAULT_MAX_SEND: usize = 65536;

/// Readiness bits, as the OS reported them (mio backend) or as `poll(2)` returned them.
pub(crate) mod ready {
    pub const READ: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const PRI: u8 = 4;
    pub const HUP: u8 = 8;
    pub const ERR: u8 = 16;
    pub const NVAL: u8 = 32;
    pub const CLOSE: u8 = HUP | ERR | NVAL;
}

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
    /// Readiness the OS reported and no operation has used up yet (mio backend).
    pub(crate) ready: u8,
    /// The OS will not poll this descriptor (a regular file): it counts as always ready.
    pub(crate) always_ready: bool,
    /// A socket operation saw the peer go away: `handle_close` is due.
    pub(crate) close_requested: bool,
    /// `handle_close` has run once already.
    pub(crate) close_called: bool,
    /// A connect that failed before the loop saw it; delivered as the connect event.
    pub(crate) pending_error: Option<io::Error>,
    /// A `recv` in the current callback returned data.
    pub(crate) got_data: bool,
    pub(crate) registry: Option<Arc<mio::Registry>>,
    /// The idle timeout, when one is set.
    pub(crate) idle: Option<Idle>,
    closed: bool,
}

/// A channel's idle timeout: its period, its last read or write event, its check timer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Idle {
    pub(crate) period: std::time::Duration,
    pub(crate) last_activity: std::time::Instant,
    pub(crate) timer: Option<crate::timer::TimerId>,
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
            ready: 0,
            always_ready: false,
            close_requested: false,
            close_called: false,
            pending_error: None,
            got_data: false,
            registry: None,
            idle: None,
            closed: false,
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
    pub fn from_raw_io(io: Box<dyn RawIo>) -> io::Result<Channel> {
        sys::set_nonblocking(io.as_raw_fd(), true)?;
        let mut chan = Channel::new();
        chan.io = Some(Io::Other(io));
        chan.connected = true;
        Ok(chan)
    }

    /// Gives this channel `sock` (made non-blocking), replacing any descriptor it had.
    /// Python: `dispatcher.set_socket` plus the `connected` check of `dispatcher.__init__`.
    ///
    /// # Errors
    /// As [`from_socket`](Self::from_socket). On error the channel is unchanged.
    pub fn set_socket(&mut self, sock: Socket) -> io::Result<()> {
        let fd = sock.as_raw_fd();
        if let Err(e) = sock.r#type() {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot adopt descriptor {fd} as a socket: {e}"),
            ));
        }
        sock.set_nonblocking(true)?;
        sys::no_sigpipe(&sock)?;
        match sock.peer_addr() {
            Ok(peer) => {
                self.connected = true;
                self.addr = Some(peer);
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTCONN) | Some(libc::EINVAL)) => {
                // Not connected (yet): a listening or fresh socket.
                self.connected = false;
            }
            Err(e) => return Err(e),
        }
        self.io = Some(Io::Socket(sock));
        self.closed = false;
        Ok(())
    }

    /// The descriptor number, or `None` before a socket is set and after close.
    /// Python: `dispatcher.fileno()`.
    pub fn fileno(&self) -> Option<RawFd> {
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
    pub fn push(&mut self, data: impl Into<Bytes>) -> io::Result<usize> {
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
        let result = {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let n = self.out.gather(&mut slices, self.max_send);
            match &self.io {
                Some(Io::Socket(s)) if n == 1 => s.send_with_flags(&slices[0], sys::SEND_FLAGS),
                Some(Io::Socket(s)) => s.send_vectored_with_flags(&slices[..n], sys::SEND_FLAGS),
                Some(Io::Other(o)) => o.write_vectored(&slices[..n]),
                None => Err(not_open()),
            }
        };
        let sent = self.sent(result)?;
        self.out.consume(sent);
        Ok(sent)
    }

    /// Shuts down the write side, the read side or both. Python: `socket.shutdown(how)`.
    ///
    /// # Errors
    /// No socket, or the OS error (`ENOTCONN` when the peer is already gone).
    pub fn shutdown(&mut self, how: std::net::Shutdown) -> io::Result<()> {
        self.sock()?.shutdown(how)
    }

    /// Closes the channel: clears the state flags, leaves the loop's registration and
    /// closes the descriptor. Closing twice is not an error. Python: `dispatcher.close()`.
    ///
    /// In a map, the channel leaves it when control returns to the map (at once when called
    /// through [`Context::close`](crate::Context::close) or [`SocketMap::close`](crate::SocketMap::close)).
    ///
    /// # Errors
    /// The error of `close(2)` (rare: `EIO`); `EBADF` and `ENOTCONN` are ignored as in Python.
    pub fn close(&mut self) -> io::Result<()> {
        self.connected = false;
        self.accepting = false;
        self.connecting = false;
        self.closed = true;
        self.ready = 0;
        let Some(io) = self.io.take() else {
            return Ok(());
        };
        if let Some(registry) = self.registry.take() {
            // The descriptor may already be gone from the poll set; nothing to do then.
            let fd = io.fd();
            let _ = registry.deregister(&mut mio::unix::SourceFd(&fd));
        }
        let result = match io {
            Io::Socket(s) => sys::close_fd(std::os::fd::IntoRawFd::into_raw_fd(s)),
            Io::Other(o) => o.close(),
        };
        match result {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EBADF) | Some(libc::ENOTCONN)) => {
                Ok(())
            }
            other => other,
        }
    }

    pub(crate) fn set_connect_state(&mut self, connected: bool, connecting: bool) {
        self.connected = connected;
        self.connecting = connecting;
    }

    pub(crate) fn clear_ready(&mut self, bits: u8) {
        if !self.always_ready {
            self.ready &= !bits;
        }
    }

    pub(crate) fn set_ready(&mut self, bits: u8) {
        self.ready |= bits;
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

/// Errors of `connect(2)` that mean "the peer is not there": delivered through the loop.
fn is_connect_failure(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNREFUSED)
            | Some(libc::ENOENT)
            | Some(libc::ETIMEDOUT)
            | Some(libc::ENETUNREACH)
            | Some(libc::EHOSTUNREACH)
            | Some(libc::ECONNRESET)
            | Some(libc::EADDRNOTAVAIL)
    )
}

//! The socket operations of a [`Channel`], with Python's names: options, `bind`, `listen`,
//! `connect`, `accept`, `send`, `recv`.

use super::{not_open, Channel};
use crate::overload;
use crate::raw_io::Io;
use crate::state::seen;
use crate::sys::{self, ErrorClass};
use socket2::{SockAddr, Socket};
use std::io::{self, Read};

impl Channel {
    pub(super) fn sock(&self) -> io::Result<&Socket> {
        match &self.io {
            Some(Io::Socket(s)) => Ok(s),
            #[cfg(unix)]
            Some(Io::Other(_)) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "operation not supported: the channel holds a file, not a socket",
            )),
            None => Err(not_open()),
        }
    }

    /// Sets `SO_REUSEADDR`. Python: `dispatcher.set_reuse_addr()`.
    ///
    /// # Errors
    /// No socket, or the OS refuses the option.
    pub fn set_reuse_addr(&mut self) -> io::Result<()> {
        self.sock()?.set_reuse_address(true)
    }

    /// Sets `SO_REUSEPORT`, so that several listening sockets (one per loop thread) share
    /// one port and the kernel spreads connections over them. Not in Python's asyncore.
    ///
    /// # Errors
    /// No socket, or the OS refuses the option.
    ///
    /// Unix only: Windows has no `SO_REUSEPORT` (its `SO_REUSEADDR` lets a second socket
    /// take over a port, not share it).
    #[cfg(unix)]
    pub fn set_reuse_port(&mut self) -> io::Result<()> {
        self.sock()?.set_reuse_port(true)
    }

    /// Sets `TCP_NODELAY` (no Nagle delay on small writes): what request/response servers
    /// want on their connections. Not in Python's asyncore.
    ///
    /// # Errors
    /// No socket, or not a TCP socket.
    pub fn set_nodelay(&mut self, nodelay: bool) -> io::Result<()> {
        self.sock()?.set_nodelay(nodelay)
    }

    /// Binds to `addr` and remembers it. Python: `dispatcher.bind(addr)`.
    ///
    /// # Errors
    /// The OS error, e.g. `EADDRINUSE` (returned to the caller; nothing is registered).
    pub fn bind(&mut self, addr: impl Into<SockAddr>) -> io::Result<()> {
        let addr = addr.into();
        self.sock()?.bind(&addr)?;
        self.addr = Some(addr);
        Ok(())
    }

    /// Starts listening; the channel becomes `accepting`. Python: `dispatcher.listen(num)`.
    ///
    /// # Errors
    /// The OS error from `listen(2)`.
    pub fn listen(&mut self, backlog: i32) -> io::Result<()> {
        self.sock()?.listen(backlog)?;
        overload::ensure_reserve();
        self.accepting = true;
        Ok(())
    }

    /// The address the socket is bound to (e.g. the port chosen for port 0).
    ///
    /// # Errors
    /// No socket, or the OS error from `getsockname(2)`.
    pub fn local_addr(&self) -> io::Result<SockAddr> {
        self.sock()?.local_addr()
    }

    /// Starts a non-blocking connect to `addr`. Python: `dispatcher.connect(address)`.
    ///
    /// The channel is `connecting` until the loop sees its first read or write event, which
    /// checks `SO_ERROR` and then calls `handle_connect`. A connect the OS refuses at once
    /// (a Unix socket path with no listener, a Unix listener whose backlog is full, no
    /// free local port) is not an error here: it reaches the handler from the loop, like
    /// a refusal that takes a round trip, as an error carrying the OS error, and
    /// `handle_connect` never runs.
    ///
    /// # Errors
    /// No socket, or an error that is the caller's (an address of the wrong family).
    pub fn connect(&mut self, addr: impl Into<SockAddr>) -> io::Result<()> {
        let addr = addr.into();
        self.connected = false;
        self.connecting = true;
        if let Err(e) = self.sock()?.connect(&addr) {
            match sys::classify(&e) {
                class if sys::connect_in_progress(class) => {}
                ErrorClass::Connected => {}
                // The peer is not there (or cannot take us): the loop delivers it.
                ErrorClass::Unreachable
                | ErrorClass::WouldBlock
                | ErrorClass::Aborted
                | ErrorClass::Disconnected => self.pending_error = Some(e),
                _ => {
                    self.connecting = false;
                    return Err(e);
                }
            }
        }
        self.addr = Some(addr);
        Ok(())
    }

    /// Accepts a pending connection: `Some((socket, peer address))`, or `None` when there
    /// is none (`EWOULDBLOCK`, `EAGAIN`, `ECONNABORTED`; on Windows also `WSAECONNRESET`
    /// and `WSAENOTCONN`, for a connection reset before it was accepted). Python:
    /// `dispatcher.accept()`.
    ///
    /// The new socket is blocking, as `accept(2)` gives it; adopting it with
    /// [`Channel::from_socket`] makes it non-blocking.
    ///
    /// When the process is out of descriptors (`EMFILE`, `ENFILE`), the waiting
    /// connections are accepted with a reserved descriptor and closed at once, a warning is
    /// logged once per burst, and `None` is returned: the loop neither spins nor stalls,
    /// and accepting resumes as soon as descriptors are free.
    ///
    /// # Errors
    /// Any other OS error.
    pub fn accept(&mut self) -> io::Result<Option<(Socket, SockAddr)>> {
        let e = match self.sock()?.accept() {
            Ok(pair) => {
                overload::accepted();
                return Ok(Some(pair));
            }
            Err(e) => e,
        };
        match sys::classify(&e) {
            ErrorClass::OutOfDescriptors => {
                // Refuse what waits rather than spin on a listener that stays readable.
                overload::shed(self.sock()?);
                self.note(seen::READ_DRAINED);
                Ok(None)
            }
            ErrorClass::WouldBlock => {
                self.note(seen::READ_DRAINED);
                Ok(None)
            }
            ErrorClass::Aborted | ErrorClass::Interrupted => Ok(None),
            // Windows: a connection reset before `accept` took it.
            _ if sys::accept_lost_peer(&e) => Ok(None),
            _ => Err(e),
        }
    }

    /// Sends what the OS takes of `data` now and returns how much that was.
    /// Python: `dispatcher.send(data)`.
    ///
    /// `Ok(0)` when the socket cannot take more now (`EWOULDBLOCK`), and also when the peer
    /// is gone (`ECONNRESET`, `EPIPE`, ...): then `handle_close` runs as soon as the
    /// current handler returns. Never raises `SIGPIPE`.
    ///
    /// # Errors
    /// Other OS errors, and `ENOTCONN`-like errors for a channel with no socket.
    pub fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return self.tls_send(data);
        }
        let result = match &self.io {
            Some(Io::Socket(s)) => s.send_with_flags(data, sys::SEND_FLAGS),
            #[cfg(unix)]
            Some(Io::Other(o)) => o.write(data),
            None => Err(not_open()),
        };
        self.sent(result)
    }

    pub(super) fn sent(&mut self, result: io::Result<usize>) -> io::Result<usize> {
        let e = match result {
            Ok(n) => {
                self.has_sent |= n > 0;
                return Ok(n);
            }
            Err(e) => e,
        };
        match sys::classify(&e) {
            ErrorClass::WouldBlock => {
                self.note(seen::WRITE_FULL);
                Ok(0)
            }
            ErrorClass::Interrupted => Ok(0),
            class if class.is_disconnect() => {
                self.note(seen::GONE);
                Ok(0)
            }
            _ => Err(e),
        }
    }

    /// Reads what is ready into `buf` and returns the byte count. Python:
    /// `dispatcher.recv(buffer_size)`.
    ///
    /// `Ok(0)` (for a non-empty `buf`) means the peer closed or the connection broke
    /// (`ECONNRESET`, `ENOTCONN`, ...): `handle_close` runs as soon as the current handler
    /// returns (for the end of stream on a channel with output still queued, once that
    /// output is sent: see [`Dispatcher::has_pending_output`](crate::Dispatcher::has_pending_output)).
    ///
    /// # Errors
    /// `WouldBlock` when nothing is ready: a handler may pass it on with `?`, and the loop
    /// treats it as "wait", not as an error. Other OS errors as they come.
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return self.tls_recv(buf);
        }
        let result = match &self.io {
            Some(Io::Socket(s)) => {
                let mut s: &Socket = s;
                s.read(buf)
            }
            #[cfg(unix)]
            Some(Io::Other(o)) => o.read(buf),
            None => Err(not_open()),
        };
        let e = match result {
            Ok(0) => {
                self.note(seen::EOF);
                return Ok(0);
            }
            Ok(n) if n < buf.len() && self.stream && sys::SHORT_READ_DRAINS => {
                // The socket is drained: the next input raises a new edge.
                self.note(seen::GOT_DATA | seen::READ_DRAINED);
                return Ok(n);
            }
            Ok(n) => {
                self.note(seen::GOT_DATA);
                return Ok(n);
            }
            Err(e) => e,
        };
        match sys::classify(&e) {
            ErrorClass::WouldBlock => {
                self.note(seen::READ_DRAINED);
                Err(e)
            }
            class if class.is_disconnect() => {
                self.note(seen::GONE);
                Ok(0)
            }
            _ => Err(e),
        }
    }

    /// The pending socket error (`SO_ERROR`), taken and cleared; `None` for stand-ins.
    ///
    /// # Errors
    /// No descriptor, or the option cannot be read.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match &self.io {
            Some(Io::Socket(s)) => s.take_error(),
            #[cfg(unix)]
            Some(Io::Other(o)) => o.take_error(),
            None => Err(not_open()),
        }
    }
}

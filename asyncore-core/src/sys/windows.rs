//! Windows: the Winsock error classes, `WSAPoll`, a loopback pair for the waker, and what
//! has no Windows meaning (`MSG_NOSIGNAL`: Windows raises no `SIGPIPE`).
//!
//! The default backend needs one more thing here, kept in `backend/`: mio emulates edge
//! triggering on Windows by arming each socket's AFD poll again only when an operation
//! returns `WouldBlock`, so the loop re-arms a channel's registration whenever it notes
//! `WouldBlock` (see `Registration::rearm`).

use super::ErrorClass;
use std::io;
use windows_sys::Win32::Networking::WinSock as ws;

/// The class of Winsock error `code`.
pub(crate) fn class_of(code: i32) -> ErrorClass {
    match code {
        ws::WSAEINPROGRESS | ws::WSAEALREADY => ErrorClass::InProgress,
        ws::WSAEISCONN => ErrorClass::Connected,
        ws::WSAECONNABORTED => ErrorClass::Aborted,
        ws::WSAECONNRESET
        | ws::WSAENETRESET
        | ws::WSAENOTCONN
        | ws::WSAESHUTDOWN
        | ws::WSAENOTSOCK
        | ws::WSAEBADF => ErrorClass::Disconnected,
        ws::WSAECONNREFUSED
        | ws::WSAETIMEDOUT
        | ws::WSAENETUNREACH
        | ws::WSAEHOSTUNREACH
        | ws::WSAEADDRNOTAVAIL => ErrorClass::Unreachable,
        // Winsock has no per-process socket limit; it runs out of buffer space instead.
        ws::WSAEMFILE | ws::WSAENOBUFS => ErrorClass::OutOfDescriptors,
        _ => ErrorClass::Other,
    }
}

/// Whether a non-blocking `connect` that failed with `class` is under way. Winsock says
/// so with `WSAEWOULDBLOCK` (and `WSAEALREADY` for a second call), not `EINPROGRESS`.
pub(crate) fn connect_in_progress(class: ErrorClass) -> bool {
    matches!(class, ErrorClass::InProgress | ErrorClass::WouldBlock)
}

/// Never on Windows: mio arms a socket's poll again only after a `WouldBlock`, so a short
/// read proves nothing and the loop reads until it sees one.
pub(crate) const SHORT_READ_DRAINS: bool = false;

/// Whether `err` from closing a socket means nothing (closed already, peer gone first).
pub(crate) fn close_error_is_benign(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(ws::WSAENOTSOCK) | Some(ws::WSAENOTCONN)
    )
}

/// Whether `err` from `accept` means only that the connection waiting was reset before
/// it was taken: `WSAECONNRESET` (Windows), `WSAENOTCONN` (Wine).
pub(crate) fn accept_lost_peer(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(ws::WSAECONNRESET) | Some(ws::WSAENOTCONN)
    )
}

/// Whether `peer_addr` failed only because the socket is not connected (yet).
pub(crate) fn is_not_connected(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(ws::WSAENOTCONN) | Some(ws::WSAEINVAL)
    )
}

/// The writing end of the [`Waker`](crate::Waker)'s socket pair.
pub(crate) type WakeWriter = std::net::TcpStream;
/// The reading end of the waker's socket pair, which the loop waits on. A mio stream, so
/// that its reads arm its registration again (see `REARM`).
pub(crate) type WakeReader = mio::net::TcpStream;

/// The socket pair behind the [`Waker`](crate::Waker): Windows has no `socketpair`, so a
/// TCP connection over the loopback interface, made through a listener that is closed at
/// once. Both ends are non-blocking and have `TCP_NODELAY`, so one byte goes at once.
pub(crate) fn wake_pair() -> io::Result<(WakeWriter, WakeReader)> {
    let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))?;
    let writer = std::net::TcpStream::connect(listener.local_addr()?)?;
    let (reader, _) = listener.accept()?;
    for end in [&writer, &reader] {
        end.set_nodelay(true)?;
        end.set_nonblocking(true)?;
    }
    Ok((writer, mio::net::TcpStream::from_std(reader)))
}

/// The handle of the waker's reading end.
pub(crate) fn wake_fd(reader: &WakeReader) -> RawSock {
    std::os::windows::io::AsRawSocket::as_raw_socket(reader)
}

/// What a channel's registration hands mio. mio on Windows registers only its own socket
/// types, so the channel's socket handle is lent to a mio `TcpStream` (any socket type
/// will do: mio polls the handle, whatever it is) that never closes it: dropping the
/// source takes the handle back out first.
pub(crate) struct Source(Option<mio::net::TcpStream>);

impl Source {
    /// The source for socket handle `raw`.
    pub(crate) fn of(raw: RawSock) -> Source {
        use std::os::windows::io::FromRawSocket;
        // SAFETY: the stream only borrows `raw`: it is never used for I/O, and `Drop`
        // takes the handle back out (`into_raw_socket`) so it is never closed here. The
        // channel removes its registration before it closes the socket.
        Source(Some(unsafe { mio::net::TcpStream::from_raw_socket(raw) }))
    }

    /// Calls `f` with what mio registers.
    pub(crate) fn with(
        &mut self,
        f: impl FnOnce(&mut dyn mio::event::Source) -> io::Result<()>,
    ) -> io::Result<()> {
        match self.0.as_mut() {
            Some(stream) => f(stream),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                "registration ended",
            )),
        }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        if let Some(stream) = self.0.take() {
            // Gives the handle back without closing it; see `Source::of`.
            let _ = std::os::windows::io::IntoRawSocket::into_raw_socket(stream);
        }
    }
}

/// Whether a registration must be armed again after each `WouldBlock`: yes. mio emulates
/// edge triggering on Windows: a reported event is not reported again until the socket's
/// poll is re-armed, which mio's own types do when an operation returns `WouldBlock`; the
/// channel's operations go through socket2, so the loop does it (`Registration::rearm`).
pub(crate) const REARM: bool = true;

pub(crate) use ws::WSAPOLLFD as pollfd;
/// `WSAPoll` interest and result flags, with the names of `poll(2)`.
pub use ws::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI};

/// What a `WSAPoll` set asks for to read: `POLLIN` only. `WSAPoll` refuses a set that
/// asks for `POLLPRI` (`WSAEINVAL`: Winsock does not support it), so on Windows the
/// `poll(2)` backend never calls `handle_expt`, as Python's `select` loop there never did
/// for sockets without out-of-band data.
pub(crate) const POLL_READ: i16 = POLLIN;

/// The flags every entry of a `WSAPoll` set asks for beyond reading and writing: none, as
/// `WSAPoll` reports errors and hang-ups unasked and refuses them in `events`.
pub(crate) const POLL_ALWAYS: i16 = 0;

/// `WSAPoll`'s `POLLHUP` means that the peer shut down its sending side (Windows's
/// graceful close), not that both directions are closed as with `poll(2)`.
pub(crate) const HUP_IS_INPUT_END: bool = true;

/// Nothing on Windows is "not pollable" in the sense of epoll's regular files.
pub(crate) fn is_unpollable(_err: &io::Error) -> bool {
    false
}

/// `WSAPoll` over `fds`. An empty set (which `WSAPoll` refuses) sleeps for the timeout,
/// as `poll(2)` with no descriptors does.
pub(crate) fn poll(fds: &mut [pollfd], timeout_ms: i32) -> io::Result<usize> {
    if fds.is_empty() {
        if let Ok(ms) = u64::try_from(timeout_ms) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        return Ok(0);
    }
    let len = u32::try_from(fds.len()).unwrap_or(u32::MAX);
    // SAFETY: `fds` is a valid, exclusively borrowed slice of WSAPOLLFD for the whole
    // call, and `len` does not exceed its length.
    let r = unsafe { ws::WSAPoll(fds.as_mut_ptr(), len, timeout_ms) };
    if r == ws::SOCKET_ERROR {
        // SAFETY: reads the calling thread's last Winsock error; no memory is involved.
        let code = unsafe { ws::WSAGetLastError() };
        return Err(io::Error::from_raw_os_error(code));
    }
    Ok(usize::try_from(r).unwrap_or(0))
}

/// Flags for `send`: Windows raises no `SIGPIPE`, so none are needed.
pub(crate) const SEND_FLAGS: i32 = 0;

/// Nothing to do: Windows raises no `SIGPIPE` for a write to a closed peer.
pub(crate) fn no_sigpipe(_sock: &socket2::Socket) -> io::Result<()> {
    Ok(())
}

/// Closes a socket, reporting the error that `closesocket` gives (std's drop swallows it).
pub(crate) fn close_socket(sock: socket2::Socket) -> io::Result<()> {
    use std::os::windows::io::IntoRawSocket;
    let raw = sock.into_raw_socket();
    // SAFETY: `raw` was taken out of the owned socket just above, so nothing else closes
    // it again.
    let r = unsafe { ws::closesocket(raw as ws::SOCKET) };
    if r == ws::SOCKET_ERROR {
        // SAFETY: as in `poll`.
        let code = unsafe { ws::WSAGetLastError() };
        return Err(io::Error::from_raw_os_error(code));
    }
    Ok(())
}

/// A channel's socket handle, Windows's counterpart of a descriptor number.
pub(crate) type RawSock = std::os::windows::io::RawSocket;

/// The handle of `sock`.
pub(crate) fn raw(sock: &socket2::Socket) -> RawSock {
    std::os::windows::io::AsRawSocket::as_raw_socket(sock)
}

/// A `WSAPOLLFD` entry for `fd`; the handle's type differs between the two.
pub(crate) fn pollfd_of(fd: RawSock, events: i16) -> pollfd {
    pollfd {
        fd: fd as ws::SOCKET,
        events,
        revents: 0,
    }
}

/// The device that discards what it is given (the reserve of `overload.rs`).
pub(crate) const DEV_NULL: &str = "NUL";

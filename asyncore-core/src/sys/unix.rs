//! Unix: the errno classes, `poll(2)`, `MSG_NOSIGNAL`, descriptor flags, and the few
//! calls that neither mio nor socket2 offer.

use super::ErrorClass;
use std::io;
use std::os::fd::RawFd;

/// The class of errno `code`.
pub(crate) fn class_of(code: i32) -> ErrorClass {
    match code {
        libc::EINPROGRESS | libc::EALREADY => ErrorClass::InProgress,
        libc::EISCONN => ErrorClass::Connected,
        libc::ECONNABORTED => ErrorClass::Aborted,
        libc::ECONNRESET | libc::ENOTCONN | libc::ESHUTDOWN | libc::EPIPE | libc::EBADF => {
            ErrorClass::Disconnected
        }
        libc::ECONNREFUSED
        | libc::ENOENT
        | libc::ETIMEDOUT
        | libc::ENETUNREACH
        | libc::EHOSTUNREACH
        | libc::EADDRNOTAVAIL => ErrorClass::Unreachable,
        libc::EMFILE | libc::ENFILE => ErrorClass::OutOfDescriptors,
        _ => ErrorClass::Other,
    }
}

/// Whether a non-blocking `connect(2)` that failed with `class` is under way. On Unix
/// only `EINPROGRESS` / `EALREADY` say so: an `EAGAIN` is a failure (a Unix listener's
/// full backlog, or no free local port for TCP).
pub(crate) fn connect_in_progress(class: ErrorClass) -> bool {
    class == ErrorClass::InProgress
}

/// Whether a read that returned less than it asked for shows that a stream socket is
/// drained. True of epoll (Linux, Android): new data after it raises a new edge, so the
/// loop need not read again to see `WouldBlock` (tokio relies on the same, tokio#5866).
/// kqueue reports the bytes left with each event, so it is not assumed there.
pub(crate) const SHORT_READ_DRAINS: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// Whether `err` from `close(2)` means nothing (the descriptor was closed already, or the
/// peer went away first).
pub(crate) fn close_error_is_benign(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EBADF) | Some(libc::ENOTCONN))
}

/// Whether `err` from `accept(2)` means only that the connection waiting was reset before
/// it was taken, beyond `ECONNABORTED` (which every caller checks): nothing else on Unix.
pub(crate) fn accept_lost_peer(_err: &io::Error) -> bool {
    false
}

/// Whether `peer_addr` failed only because the socket is not connected (yet).
pub(crate) fn is_not_connected(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOTCONN) | Some(libc::EINVAL)
    )
}

/// The writing end of the [`Waker`](crate::Waker)'s socket pair.
pub(crate) type WakeWriter = std::os::unix::net::UnixStream;
/// The reading end of the waker's socket pair, which the loop waits on.
pub(crate) type WakeReader = mio::net::UnixStream;

/// The socket pair behind the [`Waker`](crate::Waker): one byte written to the first ends
/// the loop's wait on the second. Both ends are non-blocking and close on exec.
pub(crate) fn wake_pair() -> io::Result<(WakeWriter, WakeReader)> {
    let (writer, reader) = std::os::unix::net::UnixStream::pair()?;
    writer.set_nonblocking(true)?;
    reader.set_nonblocking(true)?;
    Ok((writer, mio::net::UnixStream::from_std(reader)))
}

/// The descriptor of the waker's reading end.
pub(crate) fn wake_fd(reader: &WakeReader) -> RawSock {
    std::os::fd::AsRawFd::as_raw_fd(reader)
}

/// What a channel's registration hands mio: its descriptor number.
pub(crate) struct Source(RawFd);

impl Source {
    /// The source for descriptor `fd`.
    pub(crate) fn of(fd: RawSock) -> Source {
        Source(fd)
    }

    /// Calls `f` with what mio registers.
    pub(crate) fn with(
        &mut self,
        f: impl FnOnce(&mut dyn mio::event::Source) -> io::Result<()>,
    ) -> io::Result<()> {
        f(&mut mio::unix::SourceFd(&self.0))
    }
}

/// Whether a registration must be armed again after each `WouldBlock`: not with epoll and
/// kqueue, whose edge-triggered registrations stay armed.
pub(crate) const REARM: bool = false;

pub(crate) use libc::pollfd;
/// `poll(2)` interest and result flags.
pub use libc::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI};

/// `poll(2)`'s `POLLHUP` means that both directions are closed (the end of the peer's
/// input alone is `POLLRDHUP`, which the loop does not ask for).
pub(crate) const HUP_IS_INPUT_END: bool = false;

/// What a `poll(2)` set asks for to read: normal and priority data (`handle_expt`).
pub(crate) const POLL_READ: i16 = POLLIN | POLLPRI;

/// The flags every entry of a `poll(2)` set asks for beyond reading and writing (the OS
/// reports them anyway; asking says that the loop handles them).
pub(crate) const POLL_ALWAYS: i16 = POLLERR | POLLHUP | POLLNVAL;

/// A `pollfd` entry for `fd`.
pub(crate) fn pollfd_of(fd: RawFd, events: i16) -> pollfd {
    pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// A channel's descriptor number.
pub(crate) type RawSock = RawFd;

/// The descriptor of `sock`.
pub(crate) fn raw(sock: &socket2::Socket) -> RawSock {
    std::os::fd::AsRawFd::as_raw_fd(sock)
}

/// The device that discards what it is given (the reserve of `overload.rs`).
pub(crate) const DEV_NULL: &str = "/dev/null";

/// `EPERM` from registering a descriptor: epoll will not poll regular files.
pub(crate) fn is_unpollable(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EPERM)
}

/// Checks that `fd` names an open descriptor, without taking ownership of it.
pub(crate) fn check_open(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFD only reads the descriptor's flags; an invalid fd yields EBADF.
    let r = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Closes `fd`, reporting the error that `close(2)` gives (std's drop swallows it).
pub(crate) fn close_fd(fd: RawFd) -> io::Result<()> {
    // SAFETY: the caller hands over ownership of `fd` (taken out of an owned type with
    // `into_raw_fd`), so nothing else closes it again.
    let r = unsafe { libc::close(fd) };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Closes a socket, reporting the error that `close(2)` gives (std's drop swallows it).
pub(crate) fn close_socket(sock: socket2::Socket) -> io::Result<()> {
    close_fd(std::os::fd::IntoRawFd::into_raw_fd(sock))
}

/// Sets or clears `O_NONBLOCK` on any descriptor.
pub fn set_nonblocking(fd: RawFd, nonblocking: bool) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL on a descriptor the caller holds open; errors are returned.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags == -1 {
            return Err(io::Error::last_os_error());
        }
        let new = if nonblocking {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        if new != flags && libc::fcntl(fd, libc::F_SETFL, new) == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `poll(2)` over `fds`, retried on `EINTR` as an empty result.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: `fds` is a valid, exclusively borrowed slice of pollfd for the whole call.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if r == -1 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(err);
    }
    Ok(r as usize)
}

/// Flags for `send(2)` that keep a write to a closed peer from raising `SIGPIPE`.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
pub(crate) const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
/// Flags for `send(2)`; on this platform `SO_NOSIGPIPE` is set on each socket instead.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
pub(crate) const SEND_FLAGS: libc::c_int = 0;

/// Makes `sock` not raise `SIGPIPE` where the platform needs a socket option for that.
pub(crate) fn no_sigpipe(sock: &socket2::Socket) -> io::Result<()> {
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    sock.set_nosigpipe(true)?;
    let _ = sock;
    Ok(())
}

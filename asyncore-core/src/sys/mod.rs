//! Everything that differs between operating systems, behind one seam: error classes,
//! `poll(2)` (`WSAPoll` on Windows), the flags of `send(2)`, descriptor flags, the waker's
//! socket pair, what a descriptor is (`RawFd`, or a `RawSocket` handle). A new platform
//! is a new module here, not edits across the crate.

use std::io;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::set_nonblocking;
#[cfg(unix)]
pub(crate) use unix::*;
#[cfg(unix)]
pub use unix::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;
#[cfg(windows)]
pub use windows::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI};

/// What an operating-system error means to the loop. One classifier for every socket
/// operation; each operation decides what a class means for it (an `EAGAIN` from
/// `recv(2)` is "not now", from `connect(2)` on a Unix socket it is a full backlog).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorClass {
    /// `EWOULDBLOCK` / `EAGAIN`.
    WouldBlock,
    /// `EINTR`.
    Interrupted,
    /// `EINPROGRESS`, `EALREADY`: a non-blocking connect under way.
    InProgress,
    /// `EISCONN`: the connect has completed.
    Connected,
    /// `ECONNABORTED`: a connection gone before `accept(2)` took it, or a broken one.
    Aborted,
    /// The rest of Python's `asyncore._DISCONNECTED`: `ECONNRESET`, `ENOTCONN`,
    /// `ESHUTDOWN`, `EPIPE`, `EBADF`.
    Disconnected,
    /// The peer is not there: `ECONNREFUSED`, `ENOENT` (a Unix path), `ETIMEDOUT`,
    /// `ENETUNREACH`, `EHOSTUNREACH`, `EADDRNOTAVAIL`.
    Unreachable,
    /// The process or the system is out of descriptors: `EMFILE`, `ENFILE`.
    OutOfDescriptors,
    /// Anything else: the caller's to handle.
    Other,
}

impl ErrorClass {
    /// Python's `asyncore._DISCONNECTED`: the peer went away.
    pub(crate) fn is_disconnect(self) -> bool {
        matches!(self, ErrorClass::Aborted | ErrorClass::Disconnected)
    }
}

/// The class of `err`; see [`ErrorClass`].
pub(crate) fn classify(err: &io::Error) -> ErrorClass {
    if err.kind() == io::ErrorKind::WouldBlock {
        return ErrorClass::WouldBlock;
    }
    if err.kind() == io::ErrorKind::Interrupted {
        return ErrorClass::Interrupted;
    }
    match err.raw_os_error() {
        Some(code) => class_of(code),
        None => ErrorClass::Other,
    }
}

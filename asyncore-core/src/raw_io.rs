//! What a channel holds: a socket, or a descriptor that stands in for one; and how
//! addresses are shown.

use crate::sys::{self, RawSock};
use socket2::{SockAddr, Socket};
use std::fmt;
#[cfg(unix)]
use std::io::{self, IoSlice};
#[cfg(unix)]
use std::os::fd::AsRawFd;

/// A descriptor that is not a socket but can stand in for one in a
/// [`Channel`](crate::Channel).
///
/// `asyncore-file`'s `FileWrapper` implements it for pipes, terminals and files. Python:
/// the duck-typed socket interface that `asyncore.file_wrapper` offers.
///
/// Unix only: on Windows, mio and `WSAPoll` wait on sockets alone, so nothing but a
/// socket can stand in a channel there.
#[cfg(unix)]
pub trait RawIo: AsRawFd + fmt::Debug + Send + 'static {
    /// Reads into `buf`, like `recv(2)`.
    ///
    /// # Errors
    /// The OS error; `WouldBlock` when nothing is ready on a non-blocking descriptor.
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;

    /// Writes from `buf`, like `send(2)`.
    ///
    /// # Errors
    /// The OS error; `WouldBlock` when the descriptor cannot take more now.
    fn write(&self, buf: &[u8]) -> io::Result<usize>;

    /// Writes from several buffers at once, like `writev(2)`.
    ///
    /// # Errors
    /// As [`write`](Self::write).
    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(b) => self.write(b),
            None => Ok(0),
        }
    }

    /// The pending error, as `getsockopt(SO_ERROR)` would give it. Non-sockets have none.
    ///
    /// # Errors
    /// When the error cannot be read.
    fn take_error(&self) -> io::Result<Option<io::Error>> {
        Ok(None)
    }

    /// Closes the descriptor, reporting the OS error of `close(2)`.
    ///
    /// # Errors
    /// The error of `close(2)` (for example `EIO`).
    fn close(self: Box<Self>) -> io::Result<()>;
}

/// What [`Channel::fileno`](crate::Channel::fileno) returns: the descriptor number on
/// Unix, the socket handle on Windows.
#[cfg(unix)]
pub type Fileno = std::os::fd::RawFd;
/// What [`Channel::fileno`](crate::Channel::fileno) returns: the descriptor number on
/// Unix, the socket handle on Windows.
#[cfg(windows)]
pub type Fileno = std::os::windows::io::RawSocket;

/// What a channel holds: a socket, or something that looks like one.
pub(crate) enum Io {
    Socket(Socket),
    #[cfg(unix)]
    Other(Box<dyn RawIo>),
}

impl Io {
    pub(crate) fn fd(&self) -> RawSock {
        match self {
            Io::Socket(s) => sys::raw(s),
            #[cfg(unix)]
            Io::Other(o) => o.as_raw_fd(),
        }
    }
}

/// Shows a socket address as `host:port`, `[v6]:port`, or a Unix path.
#[derive(Debug, Clone, Copy)]
pub struct DisplayAddr<'a>(pub &'a SockAddr);

impl fmt::Display for DisplayAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(sa) = self.0.as_socket() {
            return write!(f, "{sa}");
        }
        #[cfg(unix)]
        if let Some(path) = self.0.as_pathname() {
            return write!(f, "{}", path.display());
        }
        #[cfg(unix)]
        if self.0.is_unnamed() {
            return f.write_str("(unnamed)");
        }
        f.write_str("(unknown address)")
    }
}

//! `FileWrapper`: a duplicated descriptor that looks like a socket.

use asyncore_core::RawIo;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

/// The most buffers one `writev` takes: `IOV_MAX` on Linux, macOS and the BSDs.
const IOV_MAX: usize = 1024;

/// A descriptor that looks like a socket. Python: `asyncore.file_wrapper`.
///
/// Made from a duplicate of the descriptor it is given, so the caller may close the
/// original at once. Dropping an open wrapper closes its descriptor, exactly once.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use asyncore_file::FileWrapper;
/// use std::io::Write;
///
/// let (reader, mut writer) = std::io::pipe()?;
/// let wrapper = FileWrapper::new(&reader)?;
/// drop(reader); // the wrapper holds its own duplicate
/// writer.write_all(b"It's not dead, it's sleeping")?;
/// let mut buf = [0u8; 13];
/// assert_eq!(wrapper.recv(&mut buf)?, 13);
/// assert_eq!(&buf, b"It's not dead");
/// assert_eq!(wrapper.getsockopt(libc::SOL_SOCKET, libc::SO_ERROR)?, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct FileWrapper {
    /// `None` once closed. A mutex so that `close` works through `&self` like the rest of
    /// the socket-like interface; it is never contended (one loop thread uses it).
    fd: Mutex<Option<OwnedFd>>,
    /// The descriptor number, kept for `AsRawFd` (which cannot fail) after a close.
    raw: RawFd,
}

impl FileWrapper {
    /// Wraps a duplicate of `fd`.
    ///
    /// # Errors
    /// The descriptor cannot be duplicated (`EMFILE`, ...).
    pub fn new(fd: impl AsFd) -> io::Result<FileWrapper> {
        let dup = fd.as_fd().try_clone_to_owned()?;
        let raw = dup.as_raw_fd();
        Ok(FileWrapper {
            fd: Mutex::new(Some(dup)),
            raw,
        })
    }

    /// Wraps a duplicate of the raw descriptor `fd`, which stays the caller's.
    /// Python: `file_wrapper(fd)`.
    ///
    /// # Errors
    /// `EBADF` (with the number in the message) when `fd` is not open; others from `dup`.
    pub fn from_raw_fd(fd: RawFd) -> io::Result<FileWrapper> {
        // SAFETY: F_GETFD only reads flags; an invalid fd yields EBADF and nothing else.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("cannot wrap descriptor {fd}: {e}"),
            ));
        }
        // SAFETY: `fd` is open (checked above) and only borrowed for the duplication.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        FileWrapper::new(borrowed)
    }

    fn with_fd<T>(&self, f: impl FnOnce(RawFd) -> io::Result<T>) -> io::Result<T> {
        let guard = self.fd.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(fd) => f(fd.as_raw_fd()),
            None => Err(io::Error::from_raw_os_error(libc::EBADF)),
        }
    }

    /// Reads up to `buf.len()` bytes. Python: `file_wrapper.recv(bufsize)` (`os.read`).
    ///
    /// # Errors
    /// The OS error (`WouldBlock` on a non-blocking descriptor with nothing ready, `EBADF`
    /// after [`close`](Self::close)).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.with_fd(|fd| {
            // SAFETY: reads into a valid, exclusively borrowed buffer of its length.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })
    }

    /// The same as [`recv`](Self::recv). Python: `file_wrapper.read`.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf)
    }

    /// Writes what the descriptor takes of `data`. Python: `file_wrapper.send(data)`
    /// (`os.write`).
    ///
    /// # Errors
    /// The OS error (`WouldBlock`, `EPIPE` for a pipe with no reader, `EBADF` after close).
    pub fn send(&self, data: &[u8]) -> io::Result<usize> {
        self.with_fd(|fd| {
            // SAFETY: writes from a valid buffer of its length.
            let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })
    }

    /// The same as [`send`](Self::send). Python: `file_wrapper.write`.
    ///
    /// # Errors
    /// As [`send`](Self::send).
    pub fn write(&self, data: &[u8]) -> io::Result<usize> {
        self.send(data)
    }

    /// A socket option, as far as a file has one: `SO_ERROR` (at `SOL_SOCKET`) is always 0,
    /// which is what asyncore asks on connect and priority events. Python:
    /// `file_wrapper.getsockopt(level, optname)`.
    ///
    /// # Errors
    /// `Unsupported` for any other option: only sockets have them.
    pub fn getsockopt(&self, level: i32, optname: i32) -> io::Result<i32> {
        if level == libc::SOL_SOCKET && optname == libc::SO_ERROR {
            return Ok(0);
        }
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("socket option {level}/{optname} is not supported on a file"),
        ))
    }

    /// Closes the descriptor. A second close does nothing; an error of the first (from
    /// `close(2)`, e.g. `EBADF` when the descriptor was closed behind the wrapper's back)
    /// is reported. Python: `file_wrapper.close()`.
    ///
    /// # Errors
    /// The error of `close(2)`.
    pub fn close(&self) -> io::Result<()> {
        let fd = {
            let mut guard = self.fd.lock().unwrap_or_else(|p| p.into_inner());
            guard.take()
        };
        match fd {
            None => Ok(()),
            Some(fd) => {
                let raw = fd.into_raw_fd();
                // SAFETY: `raw` came out of the OwnedFd just taken, so it is closed once.
                if unsafe { libc::close(raw) } == -1 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Whether [`close`](Self::close) has run.
    pub fn is_closed(&self) -> bool {
        self.fd.lock().unwrap_or_else(|p| p.into_inner()).is_none()
    }

    /// The descriptor number, or `None` after close. Python: `file_wrapper.fileno()`
    /// (`-1` after close there).
    pub fn fileno(&self) -> Option<RawFd> {
        (!self.is_closed()).then_some(self.raw)
    }
}

impl AsRawFd for FileWrapper {
    fn as_raw_fd(&self) -> RawFd {
        self.raw
    }
}

impl RawIo for FileWrapper {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf)
    }

    fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        // writev refuses more than IOV_MAX buffers (EINVAL); a shorter write is allowed.
        let count = bufs.len().min(IOV_MAX) as libc::c_int;
        self.with_fd(|fd| {
            // SAFETY: IoSlice is ABI-compatible with iovec on unix; `count` slices are valid.
            let n = unsafe { libc::writev(fd, bufs.as_ptr().cast(), count) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })
    }

    fn close(self: Box<Self>) -> io::Result<()> {
        FileWrapper::close(&self)
    }
}

//! The few operating-system calls that neither mio nor socket2 offer.

use std::io;
use std::os::fd::RawFd;

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

/// Sets `FD_CLOEXEC` so the descriptor does not leak into child processes.
pub(crate) fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD on a descriptor the caller holds open; errors are returned.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags == -1 || libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
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

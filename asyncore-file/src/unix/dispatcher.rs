//! `file_dispatcher`: a channel over a file descriptor.

use super::wrapper::FileWrapper;
use asyncore_core::Channel;
use std::io;
use std::os::fd::{AsFd, RawFd};

/// A [`Channel`] over a duplicate of `fd`, set non-blocking and `connected`, ready for
/// [`SocketMap::insert`](asyncore_core::SocketMap::insert) with your handler.
/// Python: `asyncore.file_dispatcher(fd)` with a file object (`sys.stdin`, an open file,
/// a pipe); for a bare descriptor number see [`file_dispatcher_from_raw_fd`].
///
/// Non-blocking mode belongs to the open file, not to the descriptor: like Python's,
/// this makes the original non-blocking too (for standard input, the terminal's other
/// readers see it).
///
/// # Errors
/// The descriptor cannot be duplicated or made non-blocking.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let (reader, _writer) = std::io::pipe()?;
/// let chan = asyncore_file::file_dispatcher(&reader)?;
/// assert!(chan.connected());
/// assert_ne!(chan.fileno(), Some(std::os::fd::AsRawFd::as_raw_fd(&reader)));
/// // Standard input works the same way: `file_dispatcher(std::io::stdin())`.
/// # Ok(())
/// # }
/// ```
pub fn file_dispatcher(fd: impl AsFd) -> io::Result<Channel> {
    Channel::from_raw_io(Box::new(FileWrapper::new(fd)?))
}

/// A [`Channel`] over a duplicate of the descriptor number `fd`, which stays the caller's
/// (close it whenever you like). Otherwise the same as [`file_dispatcher`]. Python:
/// `asyncore.file_dispatcher(fd)` with an integer, e.g. `file_dispatcher(0)` or the result
/// of `os.open`.
///
/// # Errors
/// `EBADF` (with the number in the message) when `fd` is not open; otherwise as
/// [`file_dispatcher`].
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use std::os::fd::AsRawFd;
///
/// let (reader, _writer) = std::io::pipe()?;
/// let chan = asyncore_file::file_dispatcher_from_raw_fd(reader.as_raw_fd())?;
/// drop(reader); // the channel holds its own duplicate
/// assert!(chan.connected());
/// assert!(asyncore_file::file_dispatcher_from_raw_fd(-1).is_err());
/// # Ok(())
/// # }
/// ```
pub fn file_dispatcher_from_raw_fd(fd: RawFd) -> io::Result<Channel> {
    Channel::from_raw_io(Box::new(FileWrapper::from_raw_fd(fd)?))
}

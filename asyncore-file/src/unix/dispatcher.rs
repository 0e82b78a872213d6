//! `file_dispatcher`: a channel over a file descriptor.

use super::wrapper::FileWrapper;
use asyncore_core::Channel;
use std::io;
use std::os::fd::AsFd;

/// A [`Channel`] over a duplicate of `fd`, set non-blocking and `connected`, ready for
/// [`SocketMap::insert`](asyncore_core::SocketMap::insert) with your handler.
/// Python: `asyncore.file_dispatcher(fd)`.
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
/// # Ok(())
/// # }
/// ```
pub fn file_dispatcher(fd: impl AsFd) -> io::Result<Channel> {
    Channel::from_raw_io(Box::new(FileWrapper::new(fd)?))
}

//! Python's module-level `asyncore.readwrite(obj, flags)`: one channel's handlers run for
//! `poll(2)` flags given by the caller, with the loop's error path; and the flags, with
//! the platform's values (`poll(2)`'s on Unix, `WSAPoll`'s on Windows), as Python's
//! `select.POLLIN`, ...

/// `poll(2)` flags for [`readwrite`] (Python: `select.POLLIN`, ...): `POLLIN` (read),
/// `POLLOUT` (write), `POLLPRI` (priority data, `handle_expt`), `POLLERR`, `POLLHUP`,
/// `POLLNVAL` (close). `poll(2)`'s values on Unix, `WSAPoll`'s on Windows.
pub use crate::sys::{POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI};

use crate::backend::poll::ready_bits;
use crate::dispatch;
use crate::error::ExitNow;
use crate::socket_map::{ChannelId, SocketMap};

/// Runs channel `id`'s handlers for the `poll(2)` flags `flags`, exactly as a pass of the
/// loop would for those flags: `POLLIN` reads (or accepts, or completes a connect),
/// `POLLOUT` writes, `POLLPRI` is `handle_expt`, `POLLHUP` / `POLLERR` / `POLLNVAL` are
/// `handle_close`. A handler's error or panic goes to the channel's `handle_error`.
/// Python: `asyncore.readwrite(obj, flags)` (and `asyncore.read`, `write`, `_exception`
/// with `POLLIN`, `POLLOUT`, `POLLPRI`).
///
/// Nothing happens for a stale id, or for a channel whose handler is running (the caller's
/// own channel, when called from inside a handler). The channel's predicates are asked
/// again on the next pass.
///
/// # Errors
/// [`ExitNow`] when a handler asked to end the loop; it is not given to `handle_error`.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use asyncore_core::{readwrite, Channel, Context, Dispatcher, HandlerResult, SocketMap};
///
/// struct Writes { wrote: bool }
/// impl Dispatcher for Writes {
///     fn handle_write(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
///         self.wrote = true;
///         Ok(())
///     }
/// }
///
/// let (a, _b) = socket2::Socket::pair(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
/// let mut map = SocketMap::new();
/// let id = map.insert(Channel::from_socket(a)?, Writes { wrote: false })?;
/// readwrite(&mut map, id, asyncore_core::poll_flags::POLLOUT)?;
/// assert!(map.handler_mut(id)?.wrote);
/// # Ok(())
/// # }
/// ```
pub fn readwrite(map: &mut SocketMap, id: impl Into<ChannelId>, flags: i16) -> Result<(), ExitNow> {
    let id = id.into();
    let result = dispatch::readwrite(map, id, ready_bits(flags));
    map.mark_active(id);
    result
}

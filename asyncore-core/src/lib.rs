//! Python's `asyncore` in Rust: a map of channels, a loop that polls them, and event
//! handlers with asyncore's names and event semantics.
//!
//! - [`SocketMap`] owns the channels. Each is a [`Channel`] (the socket, its state flags
//!   `connected` / `accepting` / `connecting`, its output queue) plus a handler that
//!   implements [`Dispatcher`] (`readable`, `writable`, `handle_read`, `handle_write`,
//!   `handle_accept`, `handle_connect`, `handle_close`, `handle_error`, ...).
//! - [`Loop`] (or [`loop_`]) runs passes until the map is empty: ask each channel what it
//!   waits for, wait for the OS, call the handlers. Two backends: mio (default; a pass
//!   costs in proportion to the channels with work) and `poll(2)` (`use_poll`, the
//!   reference, like Python's `poll2`).
//! - [`DispatcherWithSend`] is `asyncore.dispatcher_with_send`: output queued, nothing lost.
//! - Handlers get a [`Context`]: their own channel (the context dereferences to it) and the
//!   map. Errors go to `handle_error`; a panic anywhere in user code (handlers,
//!   predicates, timer callbacks, posted jobs) is caught and treated as an error of that
//!   channel only, or logged; nothing unwinds out of the loop; [`ExitNow`] ends the loop.
//! - The map keeps the loop's state about each channel: readiness, and one path to
//!   closed. `handle_close` is called by the loop, at most once per channel;
//!   [`Context::close_when_done`] and [`SocketMap::shutdown`] deliver queued output first,
//!   then shut the write side down, and a channel whose peer still sends lingers
//!   ([`SocketMap::set_linger`]) so that no reset cuts the replies in flight.
//! - Beyond asyncore: timers ([`SocketMap::call_later`], [`Context::set_timer`]), idle
//!   timeouts ([`Context::set_idle_timeout`]), a [`Waker`] for other threads, graceful
//!   [`SocketMap::shutdown`], one loop per core ([`LoopGroup`]), and an `accept` that
//!   survives running out of descriptors.
//!
//! Every item's documentation names the Python it stands for ("Python:
//! `asyncore.dispatcher.recv`"). The whole mapping, the classic asyncore programs in
//! Python and Rust side by side, and the differences that matter are in `PORTING.md` at
//! the root of the repository.
//!
//! # Example: the echo server of Python's asyncore documentation
//!
//! The server, and a client that checks the echo by running the loop one pass at a time.
//!
//! ```
//! use asyncore_core::*;
//! use std::io::{Read, Write};
//!
//! struct EchoHandler;
//! impl Dispatcher for EchoHandler {
//!     fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
//!         let mut buf = [0u8; 8192];
//!         let n = ctx.recv(&mut buf)?;
//!         ctx.send(&buf[..n])?;
//!         Ok(())
//!     }
//! }
//!
//! struct EchoServer;
//! impl Dispatcher for EchoServer {
//!     fn handle_accepted(
//!         &mut self,
//!         ctx: &mut Context<'_>,
//!         sock: Socket,
//!         addr: SockAddr,
//!     ) -> HandlerResult {
//!         log::info!("Incoming connection from {}", DisplayAddr(&addr));
//!         ctx.insert(Channel::from_socket(sock)?, DispatcherWithSend::new(EchoHandler))?;
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut map = SocketMap::new();
//!     let mut server = Channel::create_socket(Domain::IPV4, Type::STREAM)?;
//!     server.set_reuse_addr()?;
//!     server.bind("127.0.0.1:0".parse::<std::net::SocketAddr>()?)?;
//!     server.listen(5)?;
//!     let addr = server.local_addr()?.as_socket().ok_or("not an IP address")?;
//!     map.insert(server, EchoServer)?;
//!
//!     let mut client = std::net::TcpStream::connect(addr)?;
//!     client.write_all(b"hello")?;
//!     client.set_nonblocking(true)?;
//!     let mut reply = [0u8; 5];
//!     let mut got = 0;
//!     while got < 5 {
//!         Loop::new().timeout(std::time::Duration::from_millis(100)).count(1).run(&mut map)?;
//!         match client.read(&mut reply[got..]) {
//!             Ok(n) => got += n,
//!             Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
//!             Err(e) => return Err(e.into()),
//!         }
//!     }
//!     assert_eq!(&reply, b"hello");
//!     Ok(())
//! }
//! ```
//!
//! A server that runs until stopped ends with `Loop::new().run(&mut map)?`, Python's
//! `asyncore.loop()`.
//!
//! # Platforms
//!
//! Unix (epoll, kqueue) and Windows (mio's IOCP backend; `WSAPoll` for `use_poll`). On
//! Windows there are no Unix sockets, no `RawIo` stand-ins for files and pipes,
//! no `handle_expt` (neither mio nor `WSAPoll` reports out-of-band data there) and no
//! `SO_REUSEPORT`; what is Unix only is left out by `cfg`, so a port that uses it fails
//! to compile. `PORTING.md` ("Windows") has the details.
//!
//! # The other crates
//!
//! - `asyncore-chat`: Python's `asynchat`. `AsyncChat`
//!   cuts input at a terminator (a byte string, a byte count, or none) and queues output
//!   as buffers and producers, with an input cap and output watermarks. An `AsyncChat`
//!   is a [`Dispatcher`] and lives in the same [`SocketMap`].
//! - `asyncore-file` (unix): Python's `file_wrapper` and
//!   `file_dispatcher`, for pipes, terminals and files in the same loop, through
//!   [`Channel::from_raw_io`] and [`RawIo`].
//! - `asyncore-examples` (in the repository): runnable programs, among them the echo
//!   server, the HTTP client and the file reader of Python's documentation and PyMOTW,
//!   and a multi-user chat server.

#![deny(missing_docs, missing_debug_implementations)]

mod backend;
mod channel;
mod closing;
mod context;
mod data;
mod dispatch;
mod dispatcher;
mod error;
mod event_loop;
mod group;
mod handle;
mod into_bytes;
mod lifecycle;
mod overload;
pub mod poll_flags;
mod raw_io;
mod send_queue;
mod slab;
mod socket_map;
mod state;
mod sys;
mod timer;
#[cfg(feature = "tls")]
pub mod tls;
mod waker;

pub use channel::{Channel, DEFAULT_MAX_SEND};
pub use context::Context;
pub use dispatcher::{DefaultDispatcher, Dispatcher, DispatcherWithSend, LogType};
pub use error::{strerror, BoxError, ExitNow, HandlerResult, LoopError, PanicError};
pub use event_loop::{loop_, Loop, DEFAULT_TIMEOUT};
pub use group::LoopGroup;
pub use handle::{Handle, InsertError, LookupError};
pub use into_bytes::IntoBytes;
pub use poll_flags::readwrite;
#[cfg(unix)]
pub use raw_io::RawIo;
pub use raw_io::{DisplayAddr, Fileno};
pub use send_queue::SendQueue;
pub use socket2::{Domain, Protocol, SockAddr, Socket, Type};
pub use socket_map::{close_all, with_socket_map, ChannelId, SocketMap, DEFAULT_LINGER};
#[cfg(unix)]
pub use sys::set_nonblocking;
pub use timer::{TimerAction, TimerId};
pub use waker::Waker;

/// Counters and constants for measuring and tuning a loop. A protocol needs none of them;
/// they are here for benchmarks, tests and capacity planning.
///
/// ```
/// use asyncore_core::{tuning::LoopStats, Loop, SocketMap};
///
/// let mut map = SocketMap::new();
/// Loop::new().count(1).run(&mut map)?; // an empty map: returns at once
/// assert_eq!(map.stats(), LoopStats::default());
/// # Ok::<(), asyncore_core::LoopError>(())
/// ```
pub mod tuning {
    pub use crate::send_queue::PACK_UP_TO;
    pub use crate::socket_map::LoopStats;
}

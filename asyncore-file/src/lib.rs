//! Python's `asyncore.file_wrapper` and `asyncore.file_dispatcher` in Rust: pipes, FIFOs,
//! terminals, standard input and regular files in the same [`SocketMap`] and loop as
//! sockets, on both backends.
//!
//! **Unix only.** On other targets this crate is empty.
//!
//! - [`FileWrapper`] duplicates a descriptor and makes it look like a socket: `recv` /
//!   `read`, `send` / `write`, `getsockopt(SO_ERROR)` (always 0), an idempotent `close`,
//!   `fileno`. It implements [`RawIo`], so a [`Channel`] can hold it.
//! - [`file_dispatcher`] makes such a channel from anything with a descriptor: the
//!   descriptor is duplicated and set non-blocking, and the channel starts `connected`.
//!   Your handler is an ordinary [`Dispatcher`]. [`file_dispatcher_from_raw_fd`] does the
//!   same for a bare descriptor number (Python's `file_dispatcher(0)`).
//!
//! The OS will not poll a regular file (epoll answers `EPERM`), but Python's loop reads
//! one: such a descriptor counts as always ready on every backend, so a `file_dispatcher`
//! over a file reads it to its end and then sees end of stream (`handle_close`).
//!
//! # Example: PyMOTW's file reader
//!
//! ```
//! use asyncore_core::{Channel, Context, Dispatcher, HandlerResult, Loop, SocketMap};
//! use asyncore_file::file_dispatcher;
//! use std::io::Write;
//!
//! /// Python: `class FileReader(asyncore.file_dispatcher)`.
//! struct FileReader;
//!
//! /// What was read: the map's data, there after the channel is gone.
//! #[derive(Default)]
//! struct Got(Vec<u8>);
//!
//! impl Dispatcher for FileReader {
//!     fn writable(&self, _chan: &Channel) -> bool { false }
//!     fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
//!         let mut buf = [0u8; 256];
//!         let n = ctx.recv(&mut buf)?; // 0 at end of file: handle_close follows
//!         ctx.map().data_mut::<Got>().ok_or("no Got")?.0.extend_from_slice(&buf[..n]);
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let (reader, mut writer) = std::io::pipe()?;
//!     writer.write_all(b"Lorem ipsum dolor sit amet")?;
//!     drop(writer); // end of stream after the text
//!
//!     let mut map = SocketMap::new();
//!     map.insert_data(Got::default());
//!     map.insert(file_dispatcher(&reader)?, FileReader)?;
//!     drop(reader); // the channel holds its own duplicate
//!     Loop::new().run(&mut map)?; // until the channel closes at end of stream
//!     assert_eq!(map.data::<Got>().unwrap().0, b"Lorem ipsum dolor sit amet");
//!     Ok(())
//! }
//! ```
//!
//! # The other crates
//!
//! - [`asyncore_core`]: the map, the loop and the [`Dispatcher`] trait your handler
//!   implements; `asyncore.dispatcher`, `dispatcher_with_send`, `loop`.
//! - `asyncore-chat`: Python's `asynchat` (terminator
//!   framing, producers).
//! - `asyncore-examples` (in the repository): `file_reader`, PyMOTW's reader as a program
//!   (`file_reader -` reads standard input).
//!
//! Every Python name of `asyncore` and `asynchat` with its Rust counterpart: `PORTING.md`
//! at the root of the repository.

#![deny(missing_docs, missing_debug_implementations)]

#[cfg(unix)]
mod unix;

#[cfg(unix)]
pub use unix::{file_dispatcher, file_dispatcher_from_raw_fd, FileWrapper};

#[cfg(unix)]
#[doc(no_inline)]
pub use asyncore_core::{Channel, Dispatcher, RawIo, SocketMap};

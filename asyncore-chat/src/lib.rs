//! Python's `asynchat` in Rust: `async_chat`, a dispatcher that cuts its input into frames
//! at a terminator (a byte string, a byte count, or none) and queues its output (buffers
//! and producers), on top of `asyncore-core`.
//!
//! - [`AsyncChat`] is `async_chat`: a [`Dispatcher`](asyncore_core::Dispatcher) that lives
//!   in a [`SocketMap`](asyncore_core::SocketMap) beside plain dispatchers. Your protocol
//!   implements [`ChatHandler`] (`found_terminator`, and optionally
//!   `collect_incoming_data`, `handle_connect`, `handle_close`, `handle_error`); its
//!   callbacks get a [`ChatContext`] to [`push`](ChatContext::push) replies,
//!   [`set_terminator`](ChatContext::set_terminator), [`take_data`](ChatContext::take_data)
//!   (Python's `_get_data`), [`close_when_done`](ChatContext::close_when_done), and reach
//!   the map. [`push_to`] pushes to another channel (a chat server's broadcast).
//! - [`Terminator`]: `Bytes` (any non-empty string: `"\r\n"`, `"\n"`, `"qqq"`), `Count`,
//!   `None`. Invalid ones cannot be made.
//! - [`Producer`], [`SimpleProducer`]: output made on demand, pulled as the socket drains.
//! - [`Framer`]: the framing loop alone, fed from any byte source (tests, benchmarks, a
//!   protocol nested in another).
//! - Bounds Python lacks: an input limit per frame (64 KiB by default;
//!   [`Framing::set_max_input`]) and output [`Watermarks`] that pause reading from a peer
//!   that does not read its replies.
//!
//! # Example: a line echo server over TCP
//!
//! The listener is a plain core dispatcher; each connection is an [`AsyncChat`]. This one
//! serves a single connection, then the map empties and the loop returns.
//!
//! ```
//! use asyncore_chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
//! use asyncore_core::{Channel, Context, Dispatcher, Domain, HandlerResult, Loop};
//! use asyncore_core::{SockAddr, Socket, SocketMap, Type};
//! use std::io::{Read, Write};
//!
//! /// The protocol: echo each line; "QUIT" says goodbye and closes.
//! struct Echo;
//!
//! impl ChatHandler for Echo {
//!     fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
//!         let line = chat.take_data(); // the frame, without its terminator
//!         if &line[..] == b"QUIT" {
//!             chat.push("bye\r\n")?;
//!             chat.close_when_done(); // flush, then close
//!         } else {
//!             chat.push(line)?; // `Bytes` are queued, not copied (short ones are packed)
//!             chat.push("\r\n")?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! /// The listener: adopts one connection as an `AsyncChat`, then stops listening.
//! struct Server;
//!
//! impl Dispatcher for Server {
//!     fn handle_accepted(
//!         &mut self,
//!         ctx: &mut Context<'_>,
//!         sock: Socket,
//!         _addr: SockAddr,
//!     ) -> HandlerResult {
//!         let chat = AsyncChat::with_terminator(Echo, Terminator::CRLF);
//!         ctx.insert(Channel::from_socket(sock)?, chat)?;
//!         ctx.close()?;
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut map = SocketMap::new();
//!     let mut server = Channel::create_socket(Domain::IPV4, Type::STREAM)?;
//!     server.bind("127.0.0.1:0".parse::<std::net::SocketAddr>()?)?;
//!     server.listen(5)?;
//!     let addr = server.local_addr()?.as_socket().ok_or("not an IP address")?;
//!     map.insert(server, Server)?;
//!
//!     let mut client = std::net::TcpStream::connect(addr)?;
//!     client.write_all(b"hello\r\nworld\r\nQUIT\r\n")?;
//!     Loop::new().run(&mut map)?; // until the map is empty
//!     let mut reply = String::new();
//!     client.read_to_string(&mut reply)?;
//!     assert_eq!(reply, "hello\r\nworld\r\nbye\r\n");
//!     Ok(())
//! }
//! ```
//!
//! # From Python
//!
//! | Python `asynchat` | here |
//! |---|---|
//! | `class C(async_chat)` with `collect_incoming_data`, `found_terminator` | `impl ChatHandler for C`, in an [`AsyncChat<C>`](AsyncChat) |
//! | `self.set_terminator(b"\r\n")`, `(4)`, `(None)` | `chat.set_terminator(Terminator::CRLF)`, `(Terminator::Count(4))`, `(Terminator::None)` |
//! | `self._collect_incoming_data(data)`, `self._get_data()` | the default `collect_incoming_data`, [`ChatContext::take_data`] |
//! | `self.push(data)`, `push_with_producer(p)` | [`ChatContext::push`], [`ChatContext::push_with_producer`] |
//! | `simple_producer(data, buffer_size)` | [`SimpleProducer`], [`simple_producer`] |
//! | `close_when_done()`, `discard_buffers()`, `initiate_send()` | same names on [`ChatContext`] |
//! | `ac_in_buffer_size`, `ac_out_buffer_size` | [`AsyncChat::set_in_buffer_size`], [`AsyncChat::set_out_buffer_size`] |
//! | `find_prefix_at_end(haystack, needle)` | [`find_prefix_at_end`] |
//! | `other_channel.push(data)` | [`push_to`]`::<Proto>(map, id, data)` |
//!
//! Every Python name of `asyncore` and `asynchat`, the classic programs side by side and
//! the differences that matter: `PORTING.md` at the root of the repository.
//!
//! # The other crates
//!
//! - [`asyncore_core`]: the map, the loop, [`Dispatcher`](asyncore_core::Dispatcher),
//!   [`Channel`](asyncore_core::Channel) and the buffered-send layer this crate builds on;
//!   timers, idle timeouts, the waker and graceful shutdown work for `AsyncChat` channels
//!   too.
//! - `asyncore-file` (unix): `file_dispatcher`, a channel
//!   over a pipe, a terminal or a file, in the same map as sockets.
//! - `asyncore-examples` (in the repository): `chat_server`, a multi-user line chat on
//!   `AsyncChat`, and `resp_server`, a Redis-protocol server.

#![deny(missing_docs, missing_debug_implementations)]

mod chat;
mod context;
mod error;
mod framer;
mod output;
mod producer;
mod terminator;

pub use chat::{push_to, AsyncChat, ChatHandle};
pub use context::{ChatContext, ChatHandler};
pub use error::ChatError;
pub use framer::{Decoded, FrameSink, FrameVec, Framer, Framing, DEFAULT_MAX_INPUT};
pub use output::{Watermarks, DEFAULT_BUFFER_SIZE};
pub use producer::{simple_producer, Producer, SimpleProducer, SIMPLE_PRODUCER_BUFFER_SIZE};
pub use terminator::{find_prefix_at_end, Delimiter, Terminator};

/// The byte buffer of pushes, frames and producers, re-exported from the `bytes` crate.
pub use bytes::Bytes;

/// What `push` takes: byte buffers, owned or `'static`, byte-string literals included.
pub use asyncore_core::IntoBytes;

//! [`AsyncChat`]: the dispatcher that frames input and queues output for a
//! [`ChatHandler`].

use crate::context::{ChatContext, ChatHandler, Sink};
use crate::error::ChatError;
use crate::framer::Framer;
use crate::output::{Output, Watermarks, DEFAULT_BUFFER_SIZE};
use crate::producer::Producer;
use crate::terminator::Terminator;
use asyncore_core::{
    BoxError, Channel, Context, Dispatcher, Handle, HandlerResult, IntoBytes, SocketMap,
};
use bytes::Bytes;
use std::cell::Cell;
use std::fmt;
use std::io;

/// At most this many writes per event, so one busy channel does not hold up the loop.
const MAX_WRITES_PER_EVENT: usize = 16;

thread_local! {
    /// The buffer every `AsyncChat` of this thread reads into: channels keep no read
    /// buffer of their own, so idle ones stay small.
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` with a zeroed-once buffer of `size` bytes shared by the thread.
fn with_scratch<R>(size: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut buf = SCRATCH.with(Cell::take);
    if buf.len() < size {
        buf.resize(size, 0);
    }
    let r = f(&mut buf[..size]);
    SCRATCH.with(|s| s.set(buf));
    r
}

/// Everything of an `AsyncChat` but its handler and framer. (How far the channel is on
/// its way to closed is the loop's to know, not this layer's.)
#[derive(Debug)]
pub(crate) struct ChatState {
    pub(crate) out: Output,
    pub(crate) in_buffer_size: usize,
    /// [`AsyncChat::close_when_done`] was called outside a callback: passed on to the loop
    /// at the next chance (when the channel joins the map, or its next event).
    close_when_done: bool,
}

/// Python's `asynchat.async_chat`: a [`Dispatcher`] that cuts its input into frames at a
/// [`Terminator`] and queues its output, for a protocol written as a [`ChatHandler`].
///
/// - Input: each read event does one `recv` of at most `ac_in_buffer_size` bytes (64 KiB)
///   and runs the framing loop ([`Framer`]): `collect_incoming_data` for the input,
///   `found_terminator` at each terminator. A `WouldBlock` is not an error.
/// - Output: [`ChatContext::push`] queues [`Bytes`] on the channel's send queue (no
///   copies), [`ChatContext::push_with_producer`] queues a [`Producer`] that is pulled as
///   output drains; queued buffers go out in vectored writes.
/// - Bounds (not in Python): an input limit per frame ([`Framer`]'s
///   [`set_max_input`](crate::Framing::set_max_input), 64 KiB by default) and output
///   [`Watermarks`] that pause reading while the peer does not read.
/// - Closing: [`ChatContext::close_when_done`] flushes, shuts down the write side, then
///   closes; a peer that half-closes still gets the replies to what it sent.
///
/// `readable` is false while reading is paused or over; `writable` is true while not
/// connected or while output waits (as in Python).
///
/// # Example: a line echo server
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use asyncore_chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
/// use asyncore_core::{Channel, HandlerResult, Loop, SocketMap};
/// use std::io::{Read, Write};
///
/// /// Sends every line back, and says goodbye to "QUIT".
/// struct LineEcho;
///
/// impl ChatHandler for LineEcho {
///     fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
///         let line = chat.take_data();
///         if &line[..] == b"QUIT" {
///             chat.push("bye\r\n")?;
///             chat.close_when_done();
///         } else {
///             chat.push(line)?;
///             chat.push("\r\n")?;
///         }
///         Ok(())
///     }
/// }
///
/// let (ours, mut theirs) = std::os::unix::net::UnixStream::pair()?;
/// let mut map = SocketMap::new();
/// let chan = Channel::from_socket(asyncore_core::Socket::from(std::os::fd::OwnedFd::from(ours)))?;
/// map.insert(chan, AsyncChat::with_terminator(LineEcho, Terminator::CRLF))?;
///
/// theirs.write_all(b"hello\r\nwor")?;
/// theirs.write_all(b"ld\r\nQUIT\r\n")?;
/// Loop::new().run(&mut map)?; // until the channel closes
///
/// let mut reply = String::new();
/// theirs.read_to_string(&mut reply)?;
/// assert_eq!(reply, "hello\r\nworld\r\nbye\r\n");
/// # Ok(())
/// # }
/// ```
pub struct AsyncChat<H> {
    handler: H,
    framer: Framer,
    state: ChatState,
}

impl<H> fmt::Debug for AsyncChat<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncChat")
            .field("handler", &std::any::type_name::<H>())
            .field("framer", &self.framer)
            .field("state", &self.state)
            .finish()
    }
}

impl<H: ChatHandler> AsyncChat<H> {
    /// Wraps `handler`, with no terminator (everything is collected until one is set).
    pub fn new(handler: H) -> AsyncChat<H> {
        AsyncChat::with_terminator(handler, Terminator::None)
    }

    /// Wraps `handler`, cutting input at `terminator`.
    pub fn with_terminator(handler: H, terminator: Terminator) -> AsyncChat<H> {
        AsyncChat {
            handler,
            framer: Framer::new(terminator),
            state: ChatState {
                out: Output::new(),
                in_buffer_size: DEFAULT_BUFFER_SIZE,
                close_when_done: false,
            },
        }
    }

    /// The protocol handler.
    pub fn get_ref(&self) -> &H {
        &self.handler
    }

    /// The protocol handler, mutably.
    pub fn get_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Unwraps the protocol handler.
    pub fn into_inner(self) -> H {
        self.handler
    }

    /// The input framer (terminator, collected frame, input limit, pending input).
    pub fn framer(&self) -> &Framer {
        &self.framer
    }

    /// The input framer, mutably.
    pub fn framer_mut(&mut self) -> &mut Framer {
        &mut self.framer
    }

    /// Sets the terminator. Python: `async_chat.set_terminator(term)`; see
    /// [`Framing::set_terminator`](crate::Framing::set_terminator).
    pub fn set_terminator(&mut self, terminator: Terminator) {
        self.framer.set_terminator(terminator);
    }

    /// The terminator in force. Python: `async_chat.get_terminator()`.
    pub fn get_terminator(&self) -> &Terminator {
        self.framer.get_terminator()
    }

    /// Sets the input limit per frame; see
    /// [`Framing::set_max_input`](crate::Framing::set_max_input).
    pub fn set_max_input(&mut self, max: Option<usize>) {
        self.framer.set_max_input(max);
    }

    /// How much one read takes at most. Python: `ac_in_buffer_size` (default 65536).
    pub fn in_buffer_size(&self) -> usize {
        self.state.in_buffer_size
    }

    /// Sets how much one read takes at most (at least 1). The read buffer is shared by the
    /// thread's channels and grows to the largest size asked.
    pub fn set_in_buffer_size(&mut self, bytes: usize) {
        self.state.in_buffer_size = bytes.max(1);
    }

    /// The piece size of pushes, sends and producer pulls. Python: `ac_out_buffer_size`
    /// (default 65536).
    pub fn out_buffer_size(&self) -> usize {
        self.state.out.out_buffer_size
    }

    /// Sets the piece size of pushes, sends and producer pulls (at least 1).
    pub fn set_out_buffer_size(&mut self, bytes: usize) {
        self.state.out.out_buffer_size = bytes.max(1);
    }

    /// The output watermarks (default [`Watermarks::DEFAULT`]).
    pub fn watermarks(&self) -> Option<Watermarks> {
        self.state.out.watermarks
    }

    /// Sets the output watermarks, or `None` to never pause reading.
    pub fn set_watermarks(&mut self, marks: Option<Watermarks>) {
        self.state.out.watermarks = marks;
    }

    /// Bytes of output waiting on `chan` (this channel's core; see [`Watermarks`]).
    pub fn queued_output(&self, chan: &Channel) -> usize {
        self.state.out.queued(chan)
    }

    /// Queues `data` and sends what the socket takes now, from outside a callback (before
    /// the channel joins the map, or on another channel reached through the map; see
    /// [`push_to`]). `chan` must be this channel's core. Python: `async_chat.push(data)`.
    ///
    /// # Errors
    /// [`ChatError::Closing`] after `close_when_done` or on a closed channel (nothing is
    /// queued); [`ChatError::Io`] when sending fails.
    pub fn push(&mut self, chan: &mut Channel, data: impl IntoBytes) -> Result<(), ChatError> {
        Output::check_open(self.state.close_when_done, chan)?;
        self.queue(chan, data.into_bytes());
        if chan.connected() {
            chan.initiate_send()?;
        }
        Ok(())
    }

    /// Queues `data` on `chan` (this channel's core), pausing input above the high
    /// watermark; sends nothing.
    fn queue(&mut self, chan: &mut Channel, data: Bytes) {
        self.state.out.push(chan, data);
        self.state.out.pause_if_high(chan, &mut self.framer);
    }

    /// Queues a producer, from outside a callback. Python:
    /// `async_chat.push_with_producer(producer)`.
    ///
    /// # Errors
    /// [`ChatError::Closing`] after `close_when_done` or on a closed channel.
    pub fn push_with_producer(
        &mut self,
        chan: &Channel,
        producer: impl Producer,
    ) -> Result<(), ChatError> {
        Output::check_open(self.state.close_when_done, chan)?;
        self.state.out.push_producer(Box::new(producer));
        Ok(())
    }

    /// Closes the channel once everything queued is sent, from outside a callback (before
    /// the channel joins the map); see [`ChatContext::close_when_done`]. Python:
    /// `async_chat.close_when_done()`.
    pub fn close_when_done(&mut self) {
        self.state.close_when_done = true;
    }

    /// Drops all queued output and buffered input. Python: `async_chat.discard_buffers()`.
    pub fn discard_buffers(&mut self, chan: &mut Channel) {
        self.framer.discard();
        self.state.out.discard(chan);
    }

    fn chat<'s, 'a>(&'s mut self, ctx: &'s mut Context<'a>) -> (&'s mut H, ChatContext<'s, 'a>) {
        let AsyncChat {
            handler,
            framer,
            state,
        } = self;
        let chat = ChatContext {
            framing: framer.framing_mut(),
            state,
            ctx,
        };
        (handler, chat)
    }

    /// Sends, frames the input kept while paused once output is low again, and passes a
    /// `close_when_done` made outside a callback on to the loop. Runs at the end of every
    /// event.
    fn flush(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if ctx.closed() {
            return Ok(());
        }
        if std::mem::take(&mut self.state.close_when_done) {
            ctx.close_when_done();
        }
        send_some(&mut self.state, ctx)?;
        // Input kept while output was high is served once it drains, but not during a
        // shutdown: that drains what is queued and takes on no new work.
        if self.framer.is_paused()
            && self.state.out.at_or_below_low(ctx.channel())
            && !ctx.map().shutting_down()
        {
            let AsyncChat {
                handler,
                framer,
                state,
            } = self;
            let result = framer.resume(&mut Sink {
                handler,
                state,
                ctx,
            });
            wake_if_interrupted(framer, ctx);
            result?;
            send_some(&mut self.state, ctx)?;
        }
        Ok(())
    }
}

/// After framing stopped at an error (or an exit request) with input left over: ask for a
/// read event on the next pass, so that input is framed without waiting for the peer to
/// send more (a peer that waits for its replies would wait forever).
fn wake_if_interrupted(framer: &Framer, ctx: &mut Context<'_>) {
    if framer.interrupted() && !ctx.closed() {
        ctx.wake_read();
    }
}

/// Sends the queued output (pulling producers as it drains), a few writes at most. Python:
/// `async_chat.initiate_send()`.
pub(crate) fn send_some(state: &mut ChatState, ctx: &mut Context<'_>) -> HandlerResult {
    if ctx.closed() {
        return Ok(());
    }
    let chan = ctx.channel_mut();
    if chan.max_send() != state.out.out_buffer_size {
        chan.set_max_send(state.out.out_buffer_size);
    }
    for _ in 0..MAX_WRITES_PER_EVENT {
        state.out.refill(chan);
        if !chan.connected() || chan.out_queue().is_empty() {
            break;
        }
        let want = chan.out_queue().len().min(chan.max_send());
        if chan.initiate_send()? < want {
            break; // the socket is full, or the peer is gone
        }
    }
    // A producer's error comes once what was queued before it is sent.
    state.out.take_failure(chan)
}

impl<H: ChatHandler> Dispatcher for AsyncChat<H> {
    fn readable(&self, _chan: &Channel) -> bool {
        !self.framer.is_paused()
    }

    fn writable(&self, chan: &Channel) -> bool {
        !chan.connected()
            || !self.state.out.is_empty(chan)
            || (self.framer.is_paused() && self.state.out.at_or_below_low(chan))
    }

    fn has_pending_output(&self, chan: &Channel) -> bool {
        !self.state.out.is_empty(chan)
    }

    fn handle_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let (handler, mut chat) = self.chat(ctx);
        let result = handler.handle_added(&mut chat);
        // A `close_when_done` asked before `insert` applies after the greeting.
        if std::mem::take(&mut self.state.close_when_done) {
            ctx.close_when_done();
        }
        let flushed = self.flush(ctx);
        result.and(flushed)
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let size = self.state.in_buffer_size;
        let AsyncChat {
            handler,
            framer,
            state,
        } = self;
        let mut sink = Sink {
            handler,
            state,
            ctx,
        };
        // Input left over from a callback that failed is framed first.
        let mut result = if framer.interrupted() {
            framer.proceed(&mut sink)
        } else {
            Ok(())
        };
        if result.is_ok() && !framer.interrupted() && !framer.is_paused() {
            result = with_scratch(size, |buf| -> HandlerResult {
                let n = match sink.ctx.recv(buf) {
                    Ok(n) => n,
                    // Python: a BlockingIOError from recv is not an error.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                // n == 0 is the end of the stream: the loop calls handle_close next.
                if n == 0 {
                    return Ok(());
                }
                framer.feed(&buf[..n], &mut sink)
            });
        }
        wake_if_interrupted(framer, ctx);
        let flushed = self.flush(ctx);
        result.and(flushed)
    }

    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.flush(ctx)
    }

    fn handle_connect(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let (handler, mut chat) = self.chat(ctx);
        let result = handler.handle_connect(&mut chat);
        let flushed = self.flush(ctx);
        result.and(flushed)
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        // The loop calls this once, after the replies queued for a peer that half-closed
        // were delivered.
        let (handler, mut chat) = self.chat(ctx);
        handler.handle_close(&mut chat)
    }

    fn handle_error(&mut self, ctx: &mut Context<'_>, err: BoxError) -> HandlerResult {
        let over_limit = matches!(
            err.downcast_ref::<ChatError>(),
            Some(ChatError::InputLimit { .. })
        );
        let (handler, mut chat) = self.chat(ctx);
        let result = handler.handle_error(&mut chat, err);
        if over_limit && !ctx.closed() && !ctx.is_closing() {
            // The stream is out of step: frame no more, close once the replies are out.
            self.framer.discard();
            ctx.close_when_done();
            let flushed = self.flush(ctx);
            return result.and(flushed);
        }
        result
    }
}

/// Pushes `data` to the `async_chat` channel `id` of the map, from anywhere (typically a
/// handler of another channel: a chat server's broadcast). `H` is the channel's protocol
/// type.
///
/// The data is queued and the channel touched; it goes out on the channel's next write
/// event, in the loop's next pass (which does not wait while output is queued). So the
/// pushes a pass makes to one channel leave in one write (a broadcast of 16 lines to 1,000
/// users is 1,000 writes, not 16,000), and a failed send is that channel's error, for its
/// own `handle_error`, not the caller's. (Python's `push` sends at once; so does
/// [`AsyncChat::push`].)
///
/// Returns the bytes now queued for the target (its [`AsyncChat::queued_output`]).
/// Nothing limits what is queued this way: the target's [`Watermarks`] pause only its own
/// reading. To bound what a peer that does not read can cost, close a target whose queue
/// this shows too far behind, as the examples' chat server does.
///
/// # Errors
/// [`ChatError::Unavailable`] when the channel closed, is the one whose handler is running
/// (push to it through its [`ChatContext`]), or the handle is another map's;
/// [`ChatError::Closing`] when it is closing.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use asyncore_chat::{push_to, AsyncChat, ChatContext, ChatHandle, ChatHandler, Terminator};
/// use asyncore_core::{Channel, HandlerResult, Loop, SocketMap};
/// use std::io::Read;
///
/// /// Forwards each line to the channel `to`.
/// struct Relay { to: Option<ChatHandle<Relay>> }
///
/// impl ChatHandler for Relay {
///     fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
///         let mut line = chat.take_data().to_vec();
///         line.push(b'\n');
///         if let Some(to) = self.to {
///             push_to(chat.map(), to, line)?;
///         }
///         Ok(())
///     }
/// }
///
/// let (a, mut a_peer) = std::os::unix::net::UnixStream::pair()?;
/// let (b, mut b_peer) = std::os::unix::net::UnixStream::pair()?;
/// let chan = |s: std::os::unix::net::UnixStream| {
///     Channel::from_socket(asyncore_core::Socket::from(std::os::fd::OwnedFd::from(s)))
/// };
/// let mut map = SocketMap::new();
/// let b_id = map.insert(chan(b)?, AsyncChat::with_terminator(Relay { to: None }, Terminator::LF))?;
/// map.insert(chan(a)?, AsyncChat::with_terminator(Relay { to: Some(b_id) }, Terminator::LF))?;
///
/// std::io::Write::write_all(&mut a_peer, b"hi b\n")?;
/// Loop::new().timeout(std::time::Duration::from_millis(10)).count(5).run(&mut map)?;
/// let mut got = [0u8; 5];
/// b_peer.read_exact(&mut got)?;
/// assert_eq!(&got, b"hi b\n");
/// # Ok(())
/// # }
/// ```
pub fn push_to<H: ChatHandler>(
    map: &mut SocketMap,
    to: ChatHandle<H>,
    data: impl IntoBytes,
) -> Result<usize, ChatError> {
    let closing = map.is_closing(to);
    let (chat, chan) = map.get_mut(to)?;
    Output::check_open(closing, chan)?;
    chat.queue(chan, data.into_bytes());
    Ok(chat.queued_output(chan))
}

/// The [`Handle`] of an `async_chat` channel speaking protocol `H`: what
/// [`SocketMap::insert`] returns for an [`AsyncChat<H>`], and what [`push_to`] takes.
pub type ChatHandle<H> = Handle<AsyncChat<H>>;

//! What a protocol implements ([`ChatHandler`]) and what its callbacks get
//! ([`ChatContext`]).

use crate::chat::ChatState;
use crate::error::ChatError;
use crate::framer::{Decoded, FrameSink, Framing};
use crate::output::{Output, Watermarks};
use crate::producer::Producer;
use crate::terminator::Terminator;
use asyncore_core::{
    BoxError, Channel, ChannelId, Context, HandlerResult, IntoBytes, LogType, LookupError,
    SocketMap,
};
use bytes::Bytes;
use std::fmt;
use std::io;
use std::time::Duration;

/// A protocol on top of [`AsyncChat`](crate::AsyncChat): the methods a Python
/// `async_chat` subclass defines.
///
/// Only [`found_terminator`](Self::found_terminator) is required: the default
/// [`collect_incoming_data`](Self::collect_incoming_data) keeps the input, and
/// [`ChatContext::take_data`] hands over the frame. Every callback gets a
/// [`ChatContext`] to push replies, change the terminator, and reach the channel and the
/// map. An error returned by a callback goes to [`handle_error`](Self::handle_error).
pub trait ChatHandler: 'static {
    /// Input of the current frame, as it comes. Python: `collect_incoming_data(data)`.
    /// The default keeps it for [`ChatContext::take_data`] (Python's
    /// `_collect_incoming_data`).
    ///
    /// # Errors
    /// Any error, for [`handle_error`](Self::handle_error).
    fn collect_incoming_data(
        &mut self,
        chat: &mut ChatContext<'_, '_>,
        data: &[u8],
    ) -> HandlerResult {
        chat.collect(data);
        Ok(())
    }

    /// The terminator was found, or the byte count reached. Python: `found_terminator()`.
    /// The terminator is not part of the frame.
    ///
    /// # Errors
    /// Any error, for [`handle_error`](Self::handle_error).
    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult;

    /// With [`Terminator::Decode`](crate::Terminator::Decode) set: handles the frame (or
    /// frames) at the front of `input` (all the input not framed yet, in place) and returns
    /// how many bytes that took ([`Decoded::Consumed`]), or [`Decoded::Incomplete`] when
    /// `input` holds no whole frame. Called again on the rest while it consumes input and
    /// the channel reads (a reply that takes the output over the high watermark pauses it:
    /// the rest waits, in place; a decoder that handles several frames per call checks
    /// [`ChatContext::is_paused`] after its pushes). Not in Python; it is
    /// tokio-util's `Decoder::decode`, pulled by the loop. The default fails.
    ///
    /// ```
    /// use asyncore_chat::{ChatContext, ChatHandler, Decoded, Terminator};
    /// use asyncore_core::{BoxError, HandlerResult};
    ///
    /// /// Frames prefixed by their length in one byte; each is echoed.
    /// struct Prefixed;
    ///
    /// impl ChatHandler for Prefixed {
    ///     fn decode(
    ///         &mut self,
    ///         chat: &mut ChatContext<'_, '_>,
    ///         input: &[u8],
    ///     ) -> Result<Decoded, BoxError> {
    ///         let Some(&len) = input.first() else {
    ///             return Ok(Decoded::Incomplete(None));
    ///         };
    ///         let whole = 1 + usize::from(len);
    ///         if input.len() < whole {
    ///             return Ok(Decoded::Incomplete(Some(whole - input.len())));
    ///         }
    ///         chat.push_copy(&input[..whole])?;
    ///         Ok(Decoded::Consumed(whole))
    ///     }
    ///
    ///     fn found_terminator(&mut self, _chat: &mut ChatContext<'_, '_>) -> HandlerResult {
    ///         Ok(()) // not called with Terminator::Decode
    ///     }
    /// }
    /// # let _ = asyncore_chat::AsyncChat::with_terminator(Prefixed, Terminator::Decode);
    /// ```
    ///
    /// # Errors
    /// Any error, for [`handle_error`](Self::handle_error): the stream is out of step, so
    /// the buffered input is dropped.
    fn decode(
        &mut self,
        chat: &mut ChatContext<'_, '_>,
        input: &[u8],
    ) -> Result<Decoded, BoxError> {
        let _ = (chat, input);
        Err("Terminator::Decode is set but the ChatHandler defines no decode".into())
    }

    /// The frame being collected would hold `len` bytes, past the input limit
    /// ([`AsyncChat::set_max_input`](crate::AsyncChat::set_max_input), 64 KiB by
    /// default): the input past it was not kept. Not in Python. The default fails with
    /// [`ChatError::InputLimit`] (then [`handle_error`](Self::handle_error); the channel
    /// frames no more input and closes once its replies are sent).
    ///
    /// Return `Ok` to answer and go on: for a byte-string terminator, the rest of the
    /// frame is discarded up to its terminator (no `found_terminator` for it), and the
    /// next frame is framed as usual.
    ///
    /// ```
    /// use asyncore_chat::{ChatContext, ChatHandler};
    /// use asyncore_core::HandlerResult;
    ///
    /// /// smtpd's answer to an over-long command line.
    /// struct Smtp;
    ///
    /// impl ChatHandler for Smtp {
    ///     fn input_limit_exceeded(&mut self, chat: &mut ChatContext<'_, '_>, _len: usize) -> HandlerResult {
    ///         chat.push("500 Error: line too long\r\n")?;
    ///         Ok(())
    ///     }
    ///     fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
    ///         let _line = chat.take_data();
    ///         chat.push("250 OK\r\n")?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    /// Any error, for [`handle_error`](Self::handle_error).
    fn input_limit_exceeded(
        &mut self,
        chat: &mut ChatContext<'_, '_>,
        len: usize,
    ) -> HandlerResult {
        Err(ChatError::InputLimit {
            len,
            limit: chat.framing().max_input().unwrap_or(len),
        }
        .into())
    }

    /// The channel joined the map (it runs once, before
    /// [`SocketMap::insert`](asyncore_core::SocketMap::insert) returns): the place for a
    /// greeting, which Python pushes in `__init__`. `chat.id()` is the channel's id
    /// now, for the program's own records. The default does nothing.
    ///
    /// ```
    /// use asyncore_chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
    /// use asyncore_core::{Channel, HandlerResult, SocketMap};
    /// use std::io::Read;
    ///
    /// struct Smtp;
    ///
    /// impl ChatHandler for Smtp {
    ///     fn handle_added(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
    ///         chat.push("220 localhost ready\r\n")?;
    ///         Ok(())
    ///     }
    ///
    ///     fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
    ///         chat.take_data();
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let (ours, mut theirs) = std::os::unix::net::UnixStream::pair()?;
    /// let mut map = SocketMap::new();
    /// let chat = AsyncChat::with_terminator(Smtp, Terminator::CRLF);
    /// map.insert(Channel::from_socket(ours.into())?, chat)?;
    /// let mut greeting = [0u8; 21];
    /// theirs.read_exact(&mut greeting)?; // sent as it joined the map
    /// assert_eq!(&greeting, b"220 localhost ready\r\n");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// Any error, for [`handle_error`](Self::handle_error).
    fn handle_added(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let _ = chat;
        Ok(())
    }

    /// A non-blocking connect completed. Python: `handle_connect()`; the default does
    /// nothing (Python's logs "unhandled connect event").
    ///
    /// # Errors
    /// Any error, for [`handle_error`](Self::handle_error).
    fn handle_connect(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let _ = chat;
        Ok(())
    }

    /// The channel is done: the peer closed (after the replies already queued were
    /// delivered), [`close_when_done`](ChatContext::close_when_done) finished, or the
    /// connection broke. Python: `async_chat.handle_close()`; the default closes the
    /// channel. Called at most once by `AsyncChat`.
    ///
    /// # Errors
    /// Any error, for [`handle_error`](Self::handle_error).
    fn handle_close(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        chat.close()?;
        Ok(())
    }

    /// A callback (or the framing: see [`ChatError::InputLimit`]) failed. Python:
    /// `handle_error()`; the default logs the error, its sources and the channel at error
    /// level, then calls [`handle_close`](Self::handle_close).
    ///
    /// The default ignores [`ChatError::Closing`] (a push after
    /// [`close_when_done`](ChatContext::close_when_done): the replies queued before it
    /// still go out), and otherwise asks for the close ([`Context::request_close`]): the
    /// loop then calls
    /// [`handle_close`](Self::handle_close), once. (Call that, not `self.handle_close`,
    /// from your own `handle_error`: the loop keeps `handle_close` to once per channel.)
    ///
    /// After an input-limit error the channel frames no more input; if this method leaves
    /// it open, it closes once the output queued so far is sent (as
    /// [`close_when_done`](ChatContext::close_when_done)).
    ///
    /// # Errors
    /// An error here is logged and the channel closed (by the core loop).
    fn handle_error(&mut self, chat: &mut ChatContext<'_, '_>, err: BoxError) -> HandlerResult {
        if matches!(err.downcast_ref::<ChatError>(), Some(ChatError::Closing)) {
            // A push refused because the channel is closing already (a request after
            // QUIT, say): no reason to close harder and drop the replies still queued.
            log::debug!(target: "asyncore", "{err}");
            return Ok(());
        }
        chat.log_error(&*err);
        chat.request_close();
        Ok(())
    }
}

/// What [`ChatHandler`] callbacks get: the framing and output of this `async_chat`
/// channel, and what a protocol may do with the channel under it: its id and handle, the
/// map (to reach other channels), a read-only view of the channel (addresses, socket
/// options), closing, timers and logging.
///
/// It gives no raw `send` or `recv`: output goes through the queue (`push`), input
/// through the framer, so that neither can be bypassed by mistake. (A plain
/// [`Dispatcher`](asyncore_core::Dispatcher)'s [`Context`] is the raw level, and has them.)
///
/// Pushed output is queued and sent when the callback returns (one vectored write for all
/// the replies to the input of one read), or as the socket drains.
///
/// ```
/// # fn f(chat: &mut asyncore_chat::ChatContext<'_, '_>) -> Result<(), asyncore_chat::ChatError> {
/// if chat.channel().connected() {
///     chat.push("+OK\r\n")?; // queued: it goes out after what was pushed before
/// }
/// # Ok(())
/// # }
/// ```
///
/// A raw send, which would overtake the queued replies, does not compile:
///
/// ```compile_fail
/// # fn f(chat: &mut asyncore_chat::ChatContext<'_, '_>) {
/// chat.send(b"+OK\r\n"); // no `send` on a ChatContext
/// # }
/// ```
///
/// Nor does a raw read, which would take input from under the framer:
///
/// ```compile_fail
/// # fn f(chat: &mut asyncore_chat::ChatContext<'_, '_>) {
/// chat.recv(&mut [0u8; 64]); // no `recv` on a ChatContext
/// # }
/// ```
pub struct ChatContext<'s, 'a> {
    pub(crate) framing: &'s mut Framing,
    pub(crate) state: &'s mut ChatState,
    pub(crate) ctx: &'s mut Context<'a>,
}

impl fmt::Debug for ChatContext<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatContext")
            .field("framing", &self.framing)
            .field("state", &self.state)
            .field("ctx", &self.ctx)
            .finish()
    }
}

impl<'s, 'a> ChatContext<'s, 'a> {
    /// This channel's id. Python: the channel itself, as a key.
    pub fn id(&self) -> ChannelId {
        self.ctx.id()
    }

    /// The map, to reach other channels (a broadcast through [`push_to`](crate::push_to),
    /// inserting a channel) and for timers ([`SocketMap::call_later`]). This channel's handler is running: reaching it
    /// through the map gives [`LookupError::Running`].
    pub fn map(&mut self) -> &mut SocketMap {
        self.ctx.map()
    }

    /// The channel, read-only: its peer's address, whether it is connected, its socket
    /// (for options). Python: `self.addr`, `self.connected`, `self.socket`.
    pub fn channel(&self) -> &Channel {
        self.ctx.channel()
    }

    /// A tag shown in this channel's description in logs (a user name, say); see
    /// [`Channel::set_tag`].
    pub fn set_tag(&mut self, tag: impl Into<String>) {
        self.ctx.channel_mut().set_tag(tag);
    }

    /// Closes the channel at once, dropping what is queued, without `handle_close`.
    /// Python: `self.close()`. To close after the replies, use
    /// [`close_when_done`](Self::close_when_done).
    ///
    /// # Errors
    /// As [`Context::close`].
    pub fn close(&mut self) -> io::Result<()> {
        self.ctx.close()
    }

    /// Asks for [`ChatHandler::handle_close`] as soon as this callback returns (once per
    /// channel); see [`Context::request_close`].
    pub fn request_close(&mut self) {
        self.ctx.request_close();
    }

    /// Whether [`close_when_done`](Self::close_when_done) was called (or the channel is
    /// closed): pushes are refused then.
    pub fn is_closing(&self) -> bool {
        self.ctx.is_closing()
    }

    /// Gives this channel an idle timeout: [`ChatHandler::handle_close`] after `period`
    /// without traffic (`None`: no timeout); see
    /// [`SocketMap::set_idle_timeout`](asyncore_core::SocketMap::set_idle_timeout).
    pub fn set_idle_timeout(&mut self, period: Option<Duration>) {
        self.ctx.set_idle_timeout(period);
    }

    /// Logs `message` at debug level with the channel's description. Python:
    /// `dispatcher.log(message)`.
    pub fn log(&self, message: &str) {
        self.ctx.log(message);
    }

    /// Logs `message` at the level of `kind`. Python: `dispatcher.log_info(message, type)`.
    pub fn log_info(&self, message: &str, kind: LogType) {
        self.ctx.log_info(message, kind);
    }

    /// Logs `err` and its sources at error level, as the default `handle_error` does.
    pub fn log_error(&self, err: &(dyn std::error::Error + 'static)) {
        self.ctx.log_error(err);
    }

    /// This channel's typed handle, for the program's records (a chat room's members),
    /// [`push_to`](crate::push_to) and [`SocketMap::get_mut`](asyncore_core::SocketMap::get_mut).
    /// `H` is this channel's protocol, usually `Self` in a [`ChatHandler`] method.
    ///
    /// # Errors
    /// [`LookupError::WrongType`] when this channel's protocol is not `H`.
    pub fn handle<H: ChatHandler>(&self) -> Result<crate::ChatHandle<H>, LookupError> {
        self.ctx.handle::<crate::AsyncChat<H>>()
    }

    /// Queues `data` for sending, without copying it (in pieces of at most
    /// `ac_out_buffer_size`; small buffers in a row are packed together, see
    /// [`SendQueue`](asyncore_core::SendQueue)). Python: `async_chat.push(data)`.
    ///
    /// It takes what [`IntoBytes`] does: `Bytes`, `Vec<u8>`, `String`, and `'static`
    /// strings and byte-string literals as they are:
    ///
    /// ```
    /// # fn f(chat: &mut asyncore_chat::ChatContext<'_, '_>) -> Result<(), asyncore_chat::ChatError> {
    /// chat.push(b"END\r\n")?;
    /// chat.push("+OK\r\n")?;
    /// chat.push(format!("{} items\r\n", 3))?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Only byte types are taken (Python raises `TypeError` for others):
    ///
    /// ```compile_fail
    /// # fn f(chat: &mut asyncore_chat::ChatContext<'_, '_>) {
    /// chat.push(10); // an integer is not output
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`ChatError::Closing`] after [`close_when_done`](Self::close_when_done) or on a
    /// closed channel: the data is not queued.
    pub fn push(&mut self, data: impl IntoBytes) -> Result<(), ChatError> {
        let closing = self.ctx.is_closing();
        let chan = self.ctx.channel_mut();
        Output::check_open(closing, chan)?;
        self.state.out.push(chan, data.into_bytes());
        self.state.out.pause_if_high(chan, self.framing);
        Ok(())
    }

    /// Queues a copy of `data`, as [`push`](Self::push) does `data`: for input passed on as
    /// it comes (a relay, an echo) or bytes only borrowed. Small data goes into the send
    /// queue's packed block, so it costs no allocation of its own.
    ///
    /// ```
    /// use asyncore_chat::{ChatContext, ChatHandler};
    /// use asyncore_core::HandlerResult;
    ///
    /// /// Echoes each line as it comes, without keeping it.
    /// struct Echo;
    ///
    /// impl ChatHandler for Echo {
    ///     fn collect_incoming_data(&mut self, chat: &mut ChatContext<'_, '_>, data: &[u8]) -> HandlerResult {
    ///         chat.push_copy(data)?;
    ///         Ok(())
    ///     }
    ///     fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
    ///         chat.push("\n")?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn push_copy(&mut self, data: &[u8]) -> Result<(), ChatError> {
        let closing = self.ctx.is_closing();
        let chan = self.ctx.channel_mut();
        Output::check_open(closing, chan)?;
        self.state.out.push_copy(chan, data);
        self.state.out.pause_if_high(chan, self.framing);
        Ok(())
    }

    /// Queues a producer, pulled as output drains. Python:
    /// `async_chat.push_with_producer(producer)`.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn push_with_producer(&mut self, producer: impl Producer) -> Result<(), ChatError> {
        Output::check_open(self.ctx.is_closing(), self.ctx.channel())?;
        self.state.out.push_producer(Box::new(producer));
        Ok(())
    }

    /// Closes the channel once everything queued (buffers and producers) is sent: the
    /// write side is shut down, then [`ChatHandler::handle_close`] runs (by default it
    /// closes). Python: `async_chat.close_when_done()`; the loop does it
    /// ([`Context::close_when_done`]).
    ///
    /// Input is still framed meanwhile, as in Python (a request sent after `QUIT` in the
    /// same write still reaches `found_terminator`), but pushes fail with
    /// [`ChatError::Closing`] (Python would queue them where they are never sent); the
    /// default `handle_error` ignores that error.
    pub fn close_when_done(&mut self) {
        self.ctx.close_when_done();
    }

    /// Sends what is queued now, pulling producers as needed. Python:
    /// `async_chat.initiate_send()`. (Callbacks need not call it: output is sent when
    /// they return.)
    ///
    /// # Errors
    /// An OS error from `send`, or a producer's error.
    pub fn initiate_send(&mut self) -> HandlerResult {
        crate::chat::send_some(self.state, self.ctx)
    }

    /// Drops all queued output and all buffered input. Python:
    /// `async_chat.discard_buffers()` ("emergencies only").
    pub fn discard_buffers(&mut self) {
        self.framing.discard();
        self.state.out.discard(self.ctx.channel_mut());
    }

    /// Upgrades this channel to TLS in place, as its server side (STARTTLS): the output
    /// queued now (the reply to `STARTTLS`) goes out in plaintext, everything after over
    /// TLS. The input after the current frame, already read in plaintext, is dropped
    /// unframed, with the collected frame: a command pipelined behind `STARTTLS` must
    /// never be taken as if it came over TLS (the command injection of CVE-2011-0411).
    /// See [`Channel::start_tls_server`].
    ///
    /// ```no_run
    /// use asyncore_chat::{ChatContext, ChatHandler};
    /// use asyncore_core::tls::rustls::ServerConfig;
    /// use asyncore_core::HandlerResult;
    /// use std::sync::Arc;
    ///
    /// struct Smtp(Arc<ServerConfig>);
    ///
    /// impl ChatHandler for Smtp {
    ///     fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
    ///         if chat.take_data().as_ref() == b"STARTTLS" {
    ///             chat.push(b"220 Ready to start TLS\r\n")?;
    ///             chat.start_tls_server(self.0.clone())?;
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    ///
    /// # Errors
    /// `InvalidInput` when output waits behind a producer (it would go out over TLS; start
    /// TLS once it is sent), or as [`Channel::start_tls_server`].
    #[cfg(feature = "tls")]
    pub fn start_tls_server(
        &mut self,
        config: std::sync::Arc<asyncore_core::tls::rustls::ServerConfig>,
    ) -> io::Result<()> {
        self.check_tls_start()?;
        self.ctx.channel_mut().start_tls_server(config)?;
        self.drop_plaintext_input();
        Ok(())
    }

    /// Upgrades this channel to TLS in place, as its client side (a STARTTLS client);
    /// as [`start_tls_server`](Self::start_tls_server), with the server's name. See
    /// [`Channel::start_tls_client`].
    ///
    /// # Errors
    /// As [`start_tls_server`](Self::start_tls_server).
    #[cfg(feature = "tls")]
    pub fn start_tls_client(
        &mut self,
        config: std::sync::Arc<asyncore_core::tls::rustls::ClientConfig>,
        server_name: asyncore_core::tls::ServerName<'static>,
    ) -> io::Result<()> {
        self.check_tls_start()?;
        self.ctx
            .channel_mut()
            .start_tls_client(config, server_name)?;
        self.drop_plaintext_input();
        Ok(())
    }

    #[cfg(feature = "tls")]
    fn check_tls_start(&self) -> io::Result<()> {
        if self.state.out.has_producers() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot start TLS while output waits behind a producer",
            ));
        }
        Ok(())
    }

    #[cfg(feature = "tls")]
    fn drop_plaintext_input(&mut self) {
        log::debug!(
            target: "asyncore",
            "TLS starts on {:?}: plaintext input after this frame is dropped",
            self.ctx.channel()
        );
        self.framing.discard();
    }

    /// Bytes of output waiting (see [`Watermarks`]).
    pub fn queued_output(&self) -> usize {
        self.state.out.queued(self.ctx.channel())
    }

    /// Sets the terminator; see [`Framing::set_terminator`]. Python:
    /// `async_chat.set_terminator(term)`.
    pub fn set_terminator(&mut self, terminator: Terminator) {
        self.framing.set_terminator(terminator);
    }

    /// The terminator in force. Python: `async_chat.get_terminator()`.
    pub fn get_terminator(&self) -> &Terminator {
        self.framing.get_terminator()
    }

    /// Keeps `data` in the frame buffer. Python: `async_chat._collect_incoming_data`.
    pub fn collect(&mut self, data: &[u8]) {
        self.framing.collect(data);
    }

    /// Takes the collected frame. Python: `async_chat._get_data()`.
    pub fn take_data(&mut self) -> Bytes {
        self.framing.take_data()
    }

    /// The frame collected so far, without taking it.
    pub fn data(&self) -> &[u8] {
        self.framing.data()
    }

    /// Drops the collected frame, keeping its memory; see [`Framing::clear_data`].
    pub fn clear_data(&mut self) {
        self.framing.clear_data();
    }

    /// Whether input framing is paused: by hand, or because a push took the queued
    /// output over the high [`Watermarks`]. A decoder's input after the current frame then
    /// waits, in place, until the output drains.
    pub fn is_paused(&self) -> bool {
        self.framing.is_paused()
    }

    /// The framing state (terminator, collected frame, input limit).
    pub fn framing(&mut self) -> &mut Framing {
        self.framing
    }

    /// Sets the input limit; see [`Framing::set_max_input`].
    pub fn set_max_input(&mut self, max: Option<usize>) {
        self.framing.set_max_input(max);
    }

    /// Sets how much one read takes at most. Python: `ac_in_buffer_size`.
    pub fn set_in_buffer_size(&mut self, bytes: usize) {
        self.state.in_buffer_size = bytes.max(1);
    }

    /// Sets the piece size of pushes, of sends and of producer pulls. Python:
    /// `ac_out_buffer_size`.
    pub fn set_out_buffer_size(&mut self, bytes: usize) {
        self.state.out.out_buffer_size = bytes.max(1);
    }

    /// Sets the output watermarks, or `None` to never pause reading.
    pub fn set_watermarks(&mut self, marks: Option<Watermarks>) {
        self.state.out.watermarks = marks;
    }
}

/// Feeds the framer's callbacks to a [`ChatHandler`] with a [`ChatContext`].
pub(crate) struct Sink<'s, 'a, H> {
    pub(crate) handler: &'s mut H,
    pub(crate) state: &'s mut ChatState,
    pub(crate) ctx: &'s mut Context<'a>,
}

impl<H: ChatHandler> Sink<'_, '_, H> {
    fn call<R>(
        &mut self,
        framing: &mut Framing,
        f: impl FnOnce(&mut H, &mut ChatContext<'_, '_>) -> Result<R, BoxError>,
    ) -> Result<R, BoxError> {
        let mut chat = ChatContext {
            framing,
            state: self.state,
            ctx: self.ctx,
        };
        let result = f(self.handler, &mut chat);
        if chat.ctx.closed() {
            // A closed channel frames no more input.
            chat.framing.discard();
        }
        result
    }
}

impl<H: ChatHandler> FrameSink for Sink<'_, '_, H> {
    fn collect_incoming_data(&mut self, framing: &mut Framing, data: &[u8]) -> HandlerResult {
        self.call(framing, |h, chat| h.collect_incoming_data(chat, data))
    }

    fn input_limit_exceeded(&mut self, framing: &mut Framing, len: usize) -> HandlerResult {
        self.call(framing, |h, chat| h.input_limit_exceeded(chat, len))
    }

    fn found_terminator(&mut self, framing: &mut Framing) -> HandlerResult {
        self.call(framing, |h, chat| h.found_terminator(chat))
    }

    fn decode(&mut self, framing: &mut Framing, input: &[u8]) -> Result<Decoded, BoxError> {
        self.call(framing, |h, chat| h.decode(chat, input))
    }
}

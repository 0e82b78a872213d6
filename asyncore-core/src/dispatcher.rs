//! The event-handler half of a channel, and the buffered-send layer.

use crate::context::Context;
use crate::error::{BoxError, HandlerResult};
use crate::timer::TimerId;
use crate::Channel;
use socket2::{SockAddr, Socket};
use std::any::Any;

/// The severity of a [`Context::log_info`] message. Python: the `type` argument of
/// `dispatcher.log_info` (`'info'`, `'warning'`, `'error'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogType {
    /// Informational.
    Info,
    /// Something unexpected but harmless, e.g. an unhandled event.
    Warning,
    /// A failure.
    Error,
}

/// The event handlers of a channel. Every method has asyncore's default.
///
/// Python: the handler half of `asyncore.dispatcher`. The loop calls `readable` and
/// `writable` to decide what a channel waits for, then the handlers for what happened:
///
/// | event | handler |
/// |---|---|
/// | read on a listening channel | [`handle_accept`](Self::handle_accept) (default: `accept`, then [`handle_accepted`](Self::handle_accepted)) |
/// | first read or write of a connecting channel | [`handle_connect`](Self::handle_connect) (after `SO_ERROR` is checked), then the read/write handler |
/// | read | [`handle_read`](Self::handle_read) |
/// | write (never on a listening channel) | [`handle_write`](Self::handle_write) |
/// | priority data (`POLLPRI`) | [`handle_expt`](Self::handle_expt), or `handle_close` when `SO_ERROR` is set |
/// | hang-up, error (`POLLHUP`, `POLLERR`, `POLLNVAL`) | [`handle_close`](Self::handle_close) |
/// | a handler returned an error or panicked | [`handle_error`](Self::handle_error) |
///
/// `handle_close` runs at most once per channel, called by the loop: a `recv` that finds
/// the peer gone, or a `send` that does, schedules it for right after the current handler
/// returns, and so does [`Context::request_close`]. At the peer's end of stream, a
/// channel that still has output queued ([`has_pending_output`](Self::has_pending_output))
/// first delivers it, then gets its `handle_close`.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use asyncore_core::{Channel, Context, Dispatcher, HandlerResult, Loop, SocketMap};
///
/// /// Reads everything and closes at end of stream.
/// struct Sink { got: usize }
///
/// impl Dispatcher for Sink {
///     fn writable(&self, _chan: &Channel) -> bool { false }
///     fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
///         let mut buf = [0u8; 1024];
///         self.got += ctx.recv(&mut buf)?;
///         Ok(())
///     }
/// }
///
/// let (a, b) = socket2::Socket::pair(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
/// let mut map = SocketMap::new();
/// let id = map.insert(Channel::from_socket(a)?, Sink { got: 0 })?;
/// b.send(b"hello")?;
/// drop(b); // end of stream: recv gives 0, handle_close closes the channel
/// Loop::new().run(&mut map)?; // returns when the map is empty
/// assert!(map.is_empty());
/// # let _ = id;
/// # Ok(())
/// # }
/// ```
pub trait Dispatcher: Any {
    /// Whether the channel waits for input this pass. Python: `readable()`; default `true`.
    fn readable(&self, chan: &Channel) -> bool {
        let _ = chan;
        true
    }

    /// Whether the channel waits to write this pass. Python: `writable()`; default `true`.
    fn writable(&self, chan: &Channel) -> bool {
        let _ = chan;
        true
    }

    /// Whether output is still waiting to be sent: the loop delivers it before
    /// `handle_close` when the peer ends its input, before closing after
    /// [`Context::close_when_done`], and during a [`SocketMap::shutdown`](crate::SocketMap::shutdown).
    /// Not in Python. The default is whether the channel's output queue holds data (what
    /// [`DispatcherWithSend`] queues); a handler that keeps output of its own (Python's
    /// `writable` returning `len(self.buffer) > 0`) says so here too.
    fn has_pending_output(&self, chan: &Channel) -> bool {
        !chan.out_queue().is_empty()
    }

    /// The channel has just joined the map ([`SocketMap::insert`](crate::SocketMap::insert)
    /// runs it before returning): the place for a greeting or a first timer. Python: the
    /// end of a dispatcher's `__init__`. The default does nothing.
    fn handle_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let _ = ctx;
        Ok(())
    }

    /// Input is ready. Python: `handle_read()`; default logs "unhandled read event".
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.log_info("unhandled read event", LogType::Warning);
        Ok(())
    }

    /// The socket can take output. Python: `handle_write()`; default logs "unhandled write
    /// event".
    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.log_info("unhandled write event", LogType::Warning);
        Ok(())
    }

    /// Priority (out-of-band) data arrived. Python: `handle_expt()`; default logs
    /// "unhandled incoming priority event".
    fn handle_expt(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.log_info("unhandled incoming priority event", LogType::Warning);
        Ok(())
    }

    /// A non-blocking connect completed. Python: `handle_connect()`; default logs
    /// "unhandled connect event".
    fn handle_connect(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.log_info("unhandled connect event", LogType::Warning);
        Ok(())
    }

    /// A listening channel has a connection to accept. Python: `handle_accept()`; the
    /// default accepts it and passes it to [`handle_accepted`](Self::handle_accepted).
    fn handle_accept(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if let Some((sock, addr)) = ctx.accept()? {
            self.handle_accepted(ctx, sock, addr)?;
        }
        Ok(())
    }

    /// A connection was accepted. Python: `handle_accepted(sock, addr)`; the default closes
    /// it and logs "unhandled accepted event". Adopt it with [`Channel::from_socket`] and
    /// [`Context::insert`].
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        addr: SockAddr,
    ) -> HandlerResult {
        let _ = (sock, addr);
        ctx.log_info("unhandled accepted event", LogType::Warning);
        Ok(())
    }

    /// The peer closed or the connection broke (or [`Context::request_close`], an error or
    /// an idle timeout asked for the close). Python: `handle_close()`; the default logs
    /// "unhandled close event" and closes the channel. The loop calls it at most once per
    /// channel; if it leaves the channel open, the next close request just closes it.
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.log_info("unhandled close event", LogType::Warning);
        ctx.close()?;
        Ok(())
    }

    /// A timer set with [`Context::set_timer`] fired. Not in Python's asyncore; default does
    /// nothing.
    fn handle_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) -> HandlerResult {
        let _ = (ctx, timer);
        Ok(())
    }

    /// The idle timeout set with [`Context::set_idle_timeout`] passed without a read or
    /// write event. Not in Python's asyncore; the default logs it and asks for the close
    /// ([`Context::request_close`]: `handle_close` runs next, once, so layers above see
    /// the close). The timeout is spent once it fires: set it again to keep watching.
    fn handle_timeout(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.log_info("idle timeout, closing", LogType::Info);
        ctx.request_close();
        Ok(())
    }

    /// A handler (or predicate) of this channel returned `err` or panicked. Python:
    /// `handle_error()`; the default logs the error, its sources and the channel's
    /// description at error level, then asks for the close ([`Context::request_close`]:
    /// [`handle_close`](Self::handle_close) runs next, or, when it ran already, the
    /// channel just closes).
    ///
    /// On a listening channel the default only logs: one connection that failed in
    /// `handle_accept` / `handle_accepted` (the `?` on adopting it, say) is dropped, and
    /// the server keeps listening. (Python's default closes the listener.)
    fn handle_error(&mut self, ctx: &mut Context<'_>, err: BoxError) -> HandlerResult {
        if ctx.channel().accepting() {
            ctx.log_info(
                &format!("dropped a connection: {}", crate::error::chain(&*err)),
                LogType::Error,
            );
            return Ok(());
        }
        ctx.log_error(&*err);
        ctx.request_close();
        Ok(())
    }
}

/// A plain handler: every event has asyncore's default. Python: `asyncore.dispatcher()`
/// used as is.
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultDispatcher;

impl Dispatcher for DefaultDispatcher {}

/// The buffered-output layer over a handler. Python: `asyncore.dispatcher_with_send`.
///
/// Inside the wrapped handler, [`Context::send`] queues the data (nothing is lost or
/// reordered) and sends what the socket takes now, at most 64 KiB per `send(2)`; the rest
/// goes out on write events. The channel is writable while not connected or while output
/// is queued, so the inner handler's `writable` and `handle_write` are not used.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use asyncore_core::{Channel, Context, Dispatcher, DispatcherWithSend, HandlerResult};
///
/// /// The echo handler of Python's asyncore documentation.
/// struct EchoHandler;
///
/// impl Dispatcher for EchoHandler {
///     fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
///         let mut buf = [0u8; 8192];
///         let n = ctx.recv(&mut buf)?;
///         if n > 0 {
///             ctx.send(&buf[..n])?; // queued; never a partial write
///         }
///         Ok(())
///     }
/// }
///
/// let (a, b) = socket2::Socket::pair(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
/// let mut map = asyncore_core::SocketMap::new();
/// map.insert(Channel::from_socket(a)?, DispatcherWithSend::new(EchoHandler))?;
/// b.send(b"ping")?;
/// asyncore_core::Loop::new().count(2).run(&mut map)?;
/// let mut reply = [0u8; 4];
/// std::io::Read::read_exact(&mut &b, &mut reply)?;
/// assert_eq!(&reply, b"ping");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default, Clone)]
pub struct DispatcherWithSend<H> {
    inner: H,
}

impl<H: Dispatcher> DispatcherWithSend<H> {
    /// Wraps `inner` in the buffered-output layer.
    pub fn new(inner: H) -> DispatcherWithSend<H> {
        DispatcherWithSend { inner }
    }

    /// The wrapped handler.
    pub fn get_ref(&self) -> &H {
        &self.inner
    }

    /// The wrapped handler, mutably.
    pub fn get_mut(&mut self) -> &mut H {
        &mut self.inner
    }

    /// Unwraps the inner handler.
    pub fn into_inner(self) -> H {
        self.inner
    }
}

impl<H: Dispatcher> Dispatcher for DispatcherWithSend<H> {
    fn readable(&self, chan: &Channel) -> bool {
        self.inner.readable(chan)
    }

    fn writable(&self, chan: &Channel) -> bool {
        !chan.connected() || !chan.out_queue().is_empty()
    }

    fn has_pending_output(&self, chan: &Channel) -> bool {
        !chan.out_queue().is_empty() || self.inner.has_pending_output(chan)
    }

    fn handle_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.buffered(|ctx| self.inner.handle_added(ctx))
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.buffered(|ctx| self.inner.handle_read(ctx))
    }

    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.initiate_send()?;
        Ok(())
    }

    fn handle_expt(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.buffered(|ctx| self.inner.handle_expt(ctx))
    }

    fn handle_connect(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.buffered(|ctx| self.inner.handle_connect(ctx))
    }

    fn handle_accept(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.buffered(|ctx| self.inner.handle_accept(ctx))
    }

    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        addr: SockAddr,
    ) -> HandlerResult {
        ctx.buffered(|ctx| self.inner.handle_accepted(ctx, sock, addr))
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.buffered(|ctx| self.inner.handle_close(ctx))
    }

    fn handle_error(&mut self, ctx: &mut Context<'_>, err: BoxError) -> HandlerResult {
        ctx.buffered(|ctx| self.inner.handle_error(ctx, err))
    }

    fn handle_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) -> HandlerResult {
        ctx.buffered(|ctx| self.inner.handle_timer(ctx, timer))
    }

    fn handle_timeout(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.buffered(|ctx| self.inner.handle_timeout(ctx))
    }
}

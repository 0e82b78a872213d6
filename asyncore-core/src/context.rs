//! What a handler gets: its channel and the map.

use crate::channel::Channel;
use crate::dispatcher::{Dispatcher, LogType};
use crate::handle::Handle;
use crate::socket_map::{ChannelId, SocketMap};
use crate::state::{ready, LoopState};
use crate::timer::{after, Target, TimerId};
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

/// What a handler gets besides `&mut self`: its own channel (the context dereferences to
/// it, so `ctx.recv(..)`, `ctx.connected()` read as in Python) and the map, to add
/// channels, reach others by id, or stop the loop.
///
/// Why it dereferences to [`Channel`]: a plain [`Dispatcher`] is asyncore's raw level,
/// where Python's dispatcher *is* the socket wrapper (`self.recv`, `self.send`,
/// `self.addr`, `self.connected`); a port reads the same with `ctx.` for `self.`, and
/// nothing stands between a raw handler and its socket that it could bypass. The layers
/// that do stand there hide it: [`DispatcherWithSend`](crate::DispatcherWithSend) turns
/// `ctx.send` into a queued send, and `asyncore-chat`'s `ChatContext` does not
/// dereference at all (no raw `send`/`recv` around its framer and output queue).
pub struct Context<'a> {
    map: &'a mut SocketMap,
    id: ChannelId,
    buffered: bool,
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.id)
            .field("channel", self.channel())
            .finish()
    }
}

impl<'a> Context<'a> {
    pub(crate) fn new(map: &'a mut SocketMap, id: ChannelId) -> Context<'a> {
        Context {
            map,
            id,
            buffered: false,
        }
    }

    /// This channel's id.
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// This channel's core part.
    pub fn channel(&self) -> &Channel {
        // The loop keeps the running channel's slot in place until its handler returns,
        // even when the handler closes it; the id is the running channel's.
        &self
            .map
            .entry(self.id)
            .expect("running channel stays in its slot")
            .chan
    }

    /// This channel's core part, mutably.
    pub fn channel_mut(&mut self) -> &mut Channel {
        // As in `channel`: the running channel's slot outlives the handler call.
        &mut self
            .map
            .entry_mut(self.id)
            .expect("running channel stays in its slot")
            .chan
    }

    /// The loop's state about this channel.
    pub(crate) fn state_mut(&mut self) -> &mut LoopState {
        // As in `channel`: the running channel's slot outlives the handler call.
        &mut self
            .map
            .entry_mut(self.id)
            .expect("running channel stays in its slot")
            .state
    }

    /// Folds in what this channel's operations noted.
    pub(crate) fn absorb(&mut self) {
        self.absorbed_state();
    }

    /// The loop's state about this channel, with what its operations noted folded in.
    pub(crate) fn absorbed_state(&mut self) -> &mut LoopState {
        // As in `channel`: the running channel's slot outlives the handler call.
        let entry = self
            .map
            .entry_mut(self.id)
            .expect("running channel stays in its slot");
        entry.absorb();
        &mut entry.state
    }

    /// The map, to reach other channels. This channel's handler is lent to the running
    /// call, so reaching it through the map gives [`LookupError::Running`](crate::LookupError::Running).
    pub fn map(&mut self) -> &mut SocketMap {
        self.map
    }

    /// This channel's typed handle, once its handler is known to be an `H` (see
    /// [`SocketMap::handle`]): for the program's records of its channels.
    ///
    /// # Errors
    /// [`LookupError::WrongType`](crate::LookupError::WrongType) when the handler is not an
    /// `H`.
    pub fn handle<H: Dispatcher>(&self) -> Result<Handle<H>, crate::LookupError> {
        self.map.handle(self.id)
    }

    /// Adds a channel to the map (polled from the next pass on) and returns its
    /// [`Handle`]. Python: a new dispatcher's `__init__` (e.g. in `handle_accepted`).
    ///
    /// # Errors
    /// As [`SocketMap::insert`], as an `io::Error` so that `?` works in a handler (whose
    /// error type must be `Send`, which a handler may not be); the channel and handler are
    /// dropped then. `ctx.map().insert(..)` hands them back.
    pub fn insert<H: Dispatcher>(&mut self, chan: Channel, handler: H) -> io::Result<Handle<H>> {
        self.map.insert(chan, handler).map_err(io::Error::from)
    }

    /// Sends `data`: directly on a plain dispatcher (Python's `dispatcher.send`, returns what
    /// the OS took), or through the output queue inside a
    /// [`DispatcherWithSend`](crate::DispatcherWithSend) (Python's
    /// `dispatcher_with_send.send`: all of `data` is queued, `Ok(data.len())`).
    ///
    /// # Errors
    /// As [`Channel::send`].
    pub fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buffered {
            let chan = self.channel_mut();
            chan.out_queue_mut().push_slice(data);
            chan.initiate_send()?;
            Ok(data.len())
        } else {
            self.channel_mut().send(data)
        }
    }

    /// Calls this channel's [`handle_timer`](crate::Dispatcher::handle_timer) after
    /// `delay` (`Duration::MAX`: never); see [`SocketMap::set_timer`].
    pub fn set_timer(&mut self, delay: Duration) -> TimerId {
        self.map
            .timers
            .insert(after(Instant::now(), delay), Target::Channel(self.id))
    }

    /// Gives this channel an idle timeout; see [`SocketMap::set_idle_timeout`].
    pub fn set_idle_timeout(&mut self, period: Option<Duration>) {
        // Nothing to report: the running channel's id is valid while its handler runs, and
        // on a channel it closed already the timeout means nothing.
        let _ = self.map.set_idle_timeout(self.id, period);
    }

    /// Closes this channel at once, without `handle_close`: it is gone from the map's
    /// views (`len`, `contains`, `ids`) as soon as this returns; the handler may go on
    /// running, but gets no further events. Python: `self.close()`.
    ///
    /// # Errors
    /// As [`Channel::close`].
    pub fn close(&mut self) -> io::Result<()> {
        self.map.close_channel(self.id)
    }

    /// Asks the loop to run this channel's [`handle_close`](Dispatcher::handle_close) as
    /// soon as the current callback returns, the way a peer's end of stream does. It runs
    /// once per channel: when it ran already, the channel just closes. The default
    /// `handle_error` and `handle_timeout` end with it. (Python code calls
    /// `self.handle_close()` directly; here the loop calls it, so that it runs once.)
    pub fn request_close(&mut self) {
        self.state_mut().request_close();
    }

    /// Closes the channel once its queued output is sent: the loop keeps delivering
    /// write events while [`has_pending_output`](Dispatcher::has_pending_output) holds,
    /// then shuts the write side down and runs `handle_close` (once; if it ran already,
    /// the channel just closes). Input is still delivered meanwhile. Python:
    /// `async_chat.close_when_done()`, here for every dispatcher.
    ///
    /// After the write side is shut down, closing the channel lets it linger (see
    /// [`SocketMap::set_linger`]): until the peer closes (or the linger time is up), what
    /// it sends is read and discarded, so that the kernel does not reset the connection
    /// under the replies still in flight.
    pub fn close_when_done(&mut self) {
        let st = self.state_mut();
        if st.start_flush() {
            st.done_asked = true;
        }
    }

    /// Whether [`close_when_done`](Self::close_when_done) was called on this channel (or
    /// it is closed): a layer takes no more output for it then. See
    /// [`SocketMap::is_closing`].
    pub fn is_closing(&self) -> bool {
        self.map.is_closing(self.id)
    }

    /// Asks for a read event on the next pass whether or not the OS reports input: for
    /// input the handler (or a layer under it) holds already, read but not yet handled.
    /// mio reports readiness once, so without this such input would wait for the peer to
    /// send more. The event comes while `readable` holds; it is used up by the next
    /// `handle_read`.
    pub fn wake_read(&mut self) {
        self.state_mut().ready |= ready::WAKE;
        self.map.mark_active(self.id);
    }

    /// Logs `message` at debug level with the channel's description. Python:
    /// `dispatcher.log(message)`.
    pub fn log(&self, message: &str) {
        log::debug!("log: {message} {:?}", self.channel());
    }

    /// Logs `message` at the level of `kind`. Python: `dispatcher.log_info(message, type)`.
    pub fn log_info(&self, message: &str, kind: LogType) {
        let name = self.channel().name;
        match kind {
            LogType::Info => log::info!(target: "asyncore", "{name}: {message}"),
            LogType::Warning => log::warn!(target: "asyncore", "{name}: {message}"),
            LogType::Error => log::error!(target: "asyncore", "{name}: {message}"),
        }
    }

    /// Logs `err` and its chain of sources at error level with the channel's description,
    /// as the default `handle_error` does. Python: the `log_info` of
    /// `dispatcher.handle_error` with its compact traceback.
    pub fn log_error(&self, err: &(dyn std::error::Error + 'static)) {
        let text = crate::error::chain(err);
        let message = format!(
            "uncaptured error, closing channel {:?} ({text})",
            self.channel()
        );
        self.log_info(&message, LogType::Error);
    }

    /// Runs `f` with [`send`](Self::send) queuing output (the buffered-send layer).
    pub fn buffered<R>(&mut self, f: impl FnOnce(&mut Context<'_>) -> R) -> R {
        let was = std::mem::replace(&mut self.buffered, true);
        let r = f(self);
        self.buffered = was;
        r
    }
}

impl Deref for Context<'_> {
    type Target = Channel;
    fn deref(&self) -> &Channel {
        self.channel()
    }
}

impl DerefMut for Context<'_> {
    fn deref_mut(&mut self) -> &mut Channel {
        self.channel_mut()
    }
}

//! What a handler gets: its channel and the map.

use crate::channel::Channel;
use crate::dispatcher::{Dispatcher, LogType};
use crate::socket_map::{ChannelId, SocketMap};
use crate::timer::{Target, TimerId};
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

/// What a handler gets besides `&mut self`: its own channel (the context dereferences to
/// it, so `ctx.recv(..)`, `ctx.connected()` read as in Python) and the map, to add
/// channels, reach others by id, or stop the loop.
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

    /// The map, to reach other channels. This channel's handler is lent to the running
    /// call, so `map().handler_mut(ctx.id())` gives `None`.
    pub fn map(&mut self) -> &mut SocketMap {
        self.map
    }

    /// Adds a channel to the map (polled from the next pass on). Python: a new
    /// dispatcher's `__init__` (e.g. in `handle_accepted`).
    ///
    /// # Errors
    /// As [`SocketMap::insert`].
    pub fn insert<H: Dispatcher>(&mut self, chan: Channel, handler: H) -> io::Result<ChannelId> {
        self.map.insert(chan, handler)
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
    /// `delay`; see [`SocketMap::set_timer`].
    pub fn set_timer(&mut self, delay: Duration) -> TimerId {
        self.map
            .timers
            .insert(Instant::now() + delay, Target::Channel(self.id))
    }

    /// Gives this channel an idle timeout; see [`SocketMap::set_idle_timeout`].
    pub fn set_idle_timeout(&mut self, period: Option<Duration>) {
        // The running channel's id is valid while its handler runs.
        let _ = self.map.set_idle_timeout(self.id, period);
    }

    /// Closes this channel (at once; the handler may go on running, but gets no further
    /// events). Python: `self.close()`.
    ///
    /// # Errors
    /// As [`Channel::close`].
    pub fn close(&mut self) -> io::Result<()> {
        self.map.close(self.id)
    }

    /// From `handle_close`: keeps the channel open for now (it still has output for a peer
    /// that only half-closed), and lets `handle_close` run again. The next close request
    /// (end of stream again, a hang-up, a send that finds the peer gone) calls
    /// `handle_close` once more instead of closing at once. Used by `asyncore-chat` to
    /// deliver queued replies before closing.
    pub fn defer_close(&mut self) {
        self.channel_mut().close_called = false;
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
        let mut text = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
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

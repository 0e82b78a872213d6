//! The socket map: it owns every channel, hands out generation-checked ids, and gives
//! handlers their [`Context`].

use crate::channel::{ready, Channel};
use crate::dispatcher::{Dispatcher, LogType};
use bytes::Bytes;
use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::io;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::timer::{Target, TimerAction, TimerId, TimerQueue};
use crate::waker::{self, Waker};

/// The id of a channel in a [`SocketMap`]: a slot index and a generation, so that an id
/// kept after its channel closed never reaches a channel that later reuses the slot (or the
/// descriptor number). Python keys its map by descriptor number; we do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId {
    index: u32,
    generation: u32,
}

impl ChannelId {
    pub(crate) fn token(self) -> mio::Token {
        mio::Token(((self.generation as usize) << 32) | self.index as usize)
    }

    #[cfg(test)]
    pub(crate) fn for_tests(index: u32) -> ChannelId {
        ChannelId {
            index,
            generation: 1,
        }
    }

    pub(crate) fn from_token(token: mio::Token) -> ChannelId {
        ChannelId {
            index: (token.0 & 0xffff_ffff) as u32,
            generation: (token.0 >> 32) as u32,
        }
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}

pub(crate) struct Entry {
    pub(crate) chan: Channel,
    /// `None` while one of its handlers runs (the handler is lent to the loop).
    pub(crate) handler: Option<Box<dyn Dispatcher>>,
    /// Whether the id is in [`SocketMap::active`].
    pub(crate) active: bool,
}

struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

/// The mio poller and its event buffer, made with the first channel.
pub(crate) struct Poller {
    pub(crate) poll: mio::Poll,
    pub(crate) events: mio::Events,
}

/// Counters a loop keeps about its own work; see [`SocketMap::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Passes run.
    pub passes: u64,
    /// Calls of `readable` plus calls of `writable`.
    pub predicate_calls: u64,
    /// Channels handed an event.
    pub dispatches: u64,
}

/// The map of channels. Python: `asyncore.socket_map` (or the `map` argument).
///
/// The map owns each channel's core ([`Channel`]) and its handler ([`Dispatcher`]).
/// Channels may be inserted and closed at any time, also from inside handlers; one inserted
/// during a pass is polled from the next pass on. Run it with [`Loop`](crate::Loop).
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use asyncore_core::{Channel, DefaultDispatcher, Domain, SocketMap, Type};
/// let mut map = SocketMap::new();
/// let mut chan = Channel::create_socket(Domain::IPV4, Type::STREAM)?;
/// chan.bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())?;
/// chan.listen(5)?;
/// let id = map.insert(chan, DefaultDispatcher)?;
/// assert_eq!(map.len(), 1);
/// assert!(map.channel(id).unwrap().accepting());
/// map.close(id)?;
/// assert!(map.is_empty());
/// assert!(map.channel(id).is_none()); // the id is stale now
/// # Ok(())
/// # }
/// ```
pub struct SocketMap {
    slots: Vec<Slot>,
    free: Vec<u32>,
    len: usize,
    pub(crate) poller: Option<Poller>,
    registry: Option<Arc<mio::Registry>>,
    /// Channels that may have work: new, touched, with OS events, or that ran a handler.
    pub(crate) active: Vec<ChannelId>,
    pub(crate) stop: bool,
    pub(crate) stats: LoopStats,
    pub(crate) timers: TimerQueue,
    pub(crate) wake: Option<Arc<waker::Shared>>,
    /// Set by [`shutdown`](Self::shutdown): the instant by which everything closes.
    pub(crate) shutdown: Option<Instant>,
}

impl Default for SocketMap {
    fn default() -> SocketMap {
        SocketMap::new()
    }
}

impl fmt::Debug for SocketMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.slots
                    .iter()
                    .filter_map(|s| s.entry.as_ref().map(|e| &e.chan)),
            )
            .finish()
    }
}

impl SocketMap {
    /// An empty map. The OS poller is created with the first channel.
    pub fn new() -> SocketMap {
        SocketMap {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            poller: None,
            registry: None,
            active: Vec::new(),
            stop: false,
            stats: LoopStats::default(),
            timers: TimerQueue::default(),
            wake: None,
            shutdown: None,
        }
    }

    /// How many channels the map holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map holds no channel (a loop over it returns).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The loop's counters for this map since it was made.
    pub fn stats(&self) -> LoopStats {
        self.stats
    }

    fn registry(&mut self) -> io::Result<Arc<mio::Registry>> {
        if let Some(r) = &self.registry {
            return Ok(r.clone());
        }
        let poll = mio::Poll::new()?;
        let registry = Arc::new(poll.registry().try_clone()?);
        self.poller = Some(Poller {
            poll,
            events: mio::Events::with_capacity(1024),
        });
        self.registry = Some(registry.clone());
        Ok(registry)
    }

    /// Adds a channel with its handler and returns its id. Python: `add_channel` (which
    /// `create_socket` and `set_socket` call).
    ///
    /// # Errors
    /// The channel has no descriptor, or the OS poller refuses it (`EBADF`...): then the
    /// channel is dropped (its descriptor closed) and the map is unchanged. A descriptor the
    /// OS will not poll at all (a regular file) is accepted and counts as always ready.
    pub fn insert<H: Dispatcher>(
        &mut self,
        mut chan: Channel,
        handler: H,
    ) -> io::Result<ChannelId> {
        let Some(fd) = chan.fileno() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot add a channel with no descriptor to the map",
            ));
        };
        let registry = self.registry()?;
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.slots.len()).map_err(|_| {
                    io::Error::new(io::ErrorKind::OutOfMemory, "socket map is full")
                })?;
                self.slots.push(Slot {
                    generation: 1,
                    entry: None,
                });
                i
            }
        };
        let id = ChannelId {
            index,
            generation: self.slots[index as usize].generation,
        };
        let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let interest = interest | mio::Interest::PRIORITY;
        match registry.register(&mut mio::unix::SourceFd(&fd), id.token(), interest) {
            Ok(()) => chan.registry = Some(registry),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                // epoll refuses regular files; Python's loop reads them: always ready.
                chan.always_ready = true;
                chan.set_ready(ready::READ | ready::WRITE);
            }
            Err(e) => {
                self.free.push(index);
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot register descriptor {fd} with the loop: {e}"),
                ));
            }
        }
        chan.name = std::any::type_name::<H>();
        self.slots[index as usize].entry = Some(Entry {
            chan,
            handler: Some(Box::new(handler)),
            active: false,
        });
        self.len += 1;
        self.mark_active(id);
        Ok(id)
    }

    pub(crate) fn entry(&self, id: ChannelId) -> Option<&Entry> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_ref()
    }

    pub(crate) fn entry_mut(&mut self, id: ChannelId) -> Option<&mut Entry> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.entry.as_mut()
    }

    /// Whether `id` names a channel in this map (not closed, not stale).
    pub fn contains(&self, id: ChannelId) -> bool {
        self.entry(id).is_some_and(|e| !e.chan.closed())
    }

    /// The ids of all channels, in slot order.
    pub fn ids(&self) -> Vec<ChannelId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.entry.as_ref().is_some_and(|e| !e.chan.closed()))
            .map(|(i, s)| ChannelId {
                index: i as u32,
                generation: s.generation,
            })
            .collect()
    }

    /// The core part of channel `id`, or `None` for a stale id.
    pub fn channel(&self, id: ChannelId) -> Option<&Channel> {
        self.entry(id).map(|e| &e.chan)
    }

    /// The core part of channel `id`, to operate on it (send to it, close it...). The
    /// channel's predicates are asked again on the next pass.
    pub fn channel_mut(&mut self, id: ChannelId) -> Option<&mut Channel> {
        self.mark_active(id);
        self.entry_mut(id).map(|e| &mut e.chan)
    }

    /// The handler of channel `id` as its concrete type `H`; `None` for a stale id, another
    /// type, or the channel whose handler is running now. Its predicates are asked again on
    /// the next pass.
    pub fn handler_mut<H: Dispatcher>(&mut self, id: ChannelId) -> Option<&mut H> {
        self.get_mut::<H>(id).map(|(h, _)| h)
    }

    /// Handler (as `H`) and core of channel `id` together; see
    /// [`handler_mut`](Self::handler_mut).
    pub fn get_mut<H: Dispatcher>(&mut self, id: ChannelId) -> Option<(&mut H, &mut Channel)> {
        self.mark_active(id);
        let entry = self.entry_mut(id)?;
        let handler: &mut dyn Any = entry.handler.as_deref_mut()?;
        Some((handler.downcast_mut::<H>()?, &mut entry.chan))
    }

    /// Tells the loop that channel `id`'s `readable` / `writable` answers may have changed
    /// for reasons outside the channel (another channel queued output for it, say). Handlers
    /// reached through [`channel_mut`](Self::channel_mut) or
    /// [`handler_mut`](Self::handler_mut) are touched already. Unknown ids are ignored.
    pub fn touch(&mut self, id: ChannelId) {
        self.mark_active(id);
    }

    pub(crate) fn mark_active(&mut self, id: ChannelId) {
        if let Some(entry) = self.entry_mut(id) {
            if !entry.active {
                entry.active = true;
                self.active.push(id);
            }
        }
    }

    /// Queues `data` on channel `id`'s output and tries to send it; for writing to another
    /// channel from a handler (a chat broadcast). Python: `other.send(data)` on a
    /// `dispatcher_with_send`.
    ///
    /// # Errors
    /// `NotFound` for a stale id; the send's own errors otherwise.
    pub fn push(&mut self, id: ChannelId, data: impl Into<Bytes>) -> io::Result<usize> {
        match self.channel_mut(id) {
            Some(chan) => chan.push(data),
            None => Err(stale(id)),
        }
    }

    /// Closes channel `id` and removes it from the map. Python: `dispatcher.close()`.
    /// A stale id is not an error (closing twice is allowed).
    ///
    /// # Errors
    /// The error of `close(2)`, as [`Channel::close`].
    pub fn close(&mut self, id: ChannelId) -> io::Result<()> {
        let Some(entry) = self.entry_mut(id) else {
            return Ok(());
        };
        let result = entry.chan.close();
        if entry.handler.is_some() {
            self.remove(id);
        }
        // Else its handler is running: the loop removes it when the handler returns.
        result
    }

    /// Removes a closed channel's slot, dropping its handler.
    pub(crate) fn remove(&mut self, id: ChannelId) -> Option<Entry> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let entry = slot.entry.take()?;
        slot.generation = slot.generation.wrapping_add(1).max(1);
        self.free.push(id.index);
        self.len -= 1;
        if let Some(timer) = entry.chan.idle.and_then(|i| i.timer) {
            self.timers.cancel(timer);
        }
        Some(entry)
    }

    /// Closes every channel and empties the map. Python: `asyncore.close_all(map,
    /// ignore_all)`. Handlers are dropped without `handle_close`.
    ///
    /// # Errors
    /// The first error of `close(2)`, unless `ignore_all`; `EBADF` is always ignored. The
    /// map is empty either way.
    pub fn close_all(&mut self, ignore_all: bool) -> io::Result<()> {
        let mut first_err = None;
        for id in self.ids_including_closed() {
            if let Some(entry) = self.entry_mut(id) {
                if let Err(e) = entry.chan.close() {
                    if first_err.is_none() && !ignore_all {
                        first_err = Some(e);
                    }
                }
                if entry.handler.is_some() {
                    self.remove(id);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn ids_including_closed(&self) -> Vec<ChannelId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.entry.is_some())
            .map(|(i, s)| ChannelId {
                index: i as u32,
                generation: s.generation,
            })
            .collect()
    }

    /// Removes the channels closed from outside a handler (through
    /// [`channel_mut`](Self::channel_mut)) so that [`len`](Self::len) counts only open ones.
    pub(crate) fn purge_closed(&mut self) {
        for i in 0..self.active.len() {
            let id = self.active[i];
            if self
                .entry(id)
                .is_some_and(|e| e.chan.closed() && e.handler.is_some())
            {
                self.remove(id);
            }
        }
    }

    /// Asks the loop running this map to return `Ok` at the end of the current pass.
    pub fn stop(&mut self) {
        self.stop = true;
    }

    /// Runs `f` with the map once `delay` has passed (on the first pass after that).
    /// Returns a handle for [`cancel_timer`](Self::cancel_timer). Twisted: `callLater`.
    ///
    /// Timers do not keep a loop alive: like Python's, the loop returns when the map has no
    /// channel left.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use asyncore_core::{Channel, DefaultDispatcher, Domain, Loop, SocketMap, Type};
    /// use std::time::Duration;
    /// let mut map = SocketMap::new();
    /// let mut server = Channel::create_socket(Domain::IPV4, Type::STREAM)?;
    /// server.bind("127.0.0.1:0".parse::<std::net::SocketAddr>()?)?;
    /// server.listen(1)?;
    /// map.insert(server, DefaultDispatcher)?;
    /// map.call_later(Duration::from_millis(5), |map| map.stop());
    /// Loop::new().run(&mut map)?; // returns after about 5 ms, not after the 30 s timeout
    /// assert_eq!(map.pending_timers(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn call_later(
        &mut self,
        delay: Duration,
        f: impl FnOnce(&mut SocketMap) + 'static,
    ) -> TimerId {
        self.call_at(Instant::now() + delay, f)
    }

    /// Runs `f` with the map at `when` (on the first pass at or after it).
    pub fn call_at(&mut self, when: Instant, f: impl FnOnce(&mut SocketMap) + 'static) -> TimerId {
        let mut f = Some(f);
        self.schedule(when, move |map| {
            if let Some(f) = f.take() {
                f(map);
            }
            TimerAction::Done
        })
    }

    /// Runs `f` at `when`, then again as long as it asks to ([`TimerAction`]): a repeating
    /// timer. calloop: `Timer` with `TimeoutAction`.
    pub fn schedule(
        &mut self,
        when: Instant,
        f: impl FnMut(&mut SocketMap) -> TimerAction + 'static,
    ) -> TimerId {
        self.timers.insert(when, Target::Call(Box::new(f)))
    }

    /// Calls channel `id`'s [`handle_timer`](crate::Dispatcher::handle_timer) after `delay`.
    /// A channel closed meanwhile gets nothing.
    ///
    /// # Errors
    /// `NotFound` for a stale id.
    pub fn set_timer(&mut self, id: ChannelId, delay: Duration) -> io::Result<TimerId> {
        if !self.contains(id) {
            return Err(stale(id));
        }
        Ok(self
            .timers
            .insert(Instant::now() + delay, Target::Channel(id)))
    }

    /// Cancels a timer; `false` when it already fired or was cancelled.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.timers.cancel(timer)
    }

    /// How many timers are pending (idle-timeout checks included).
    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// Gives channel `id` an idle timeout: after `period` without a read or write event its
    /// handler's [`handle_timeout`](crate::Dispatcher::handle_timeout) runs (by default it
    /// closes the channel). `None` turns it off.
    ///
    /// # Errors
    /// `NotFound` for a stale id.
    pub fn set_idle_timeout(&mut self, id: ChannelId, period: Option<Duration>) -> io::Result<()> {
        let now = Instant::now();
        let entry = self.entry_mut(id).ok_or_else(|| stale(id))?;
        let old = entry.chan.idle.take();
        if let Some(period) = period {
            entry.chan.idle = Some(crate::channel::Idle {
                period,
                last_activity: now,
                timer: None,
            });
        }
        if let Some(timer) = old.and_then(|o| o.timer) {
            self.timers.cancel(timer);
        }
        if let Some(period) = period {
            let timer = self.timers.insert(now + period, Target::Idle(id));
            if let Some(idle) = self.entry_mut(id).and_then(|e| e.chan.idle.as_mut()) {
                idle.timer = Some(timer);
            }
        }
        Ok(())
    }

    /// A [`Waker`] for this map, for other threads to post work and end the loop's wait.
    ///
    /// # Errors
    /// The wakeup pipe cannot be made or registered.
    pub fn waker(&mut self) -> io::Result<Waker> {
        if let Some(shared) = &self.wake {
            return Ok(Waker::new(shared.clone()));
        }
        let shared = waker::Shared::new()?;
        let registry = self.registry()?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&shared.read);
        registry.register(
            &mut mio::unix::SourceFd(&fd),
            waker::WAKER_TOKEN,
            mio::Interest::READABLE,
        )?;
        self.wake = Some(shared.clone());
        Ok(Waker::new(shared))
    }

    /// Shuts down gracefully: listening channels close now, no channel is read any more,
    /// queued output drains for up to `grace`, then every channel closes and the loop
    /// returns `Ok`. A channel counts as drained when its output queue is empty and its
    /// handler is not `writable`. Calling it again only shortens the grace period.
    pub fn shutdown(&mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        self.shutdown = Some(match self.shutdown {
            Some(earlier) if earlier < deadline => earlier,
            _ => deadline,
        });
        for id in self.ids() {
            let listening = self.channel(id).is_some_and(Channel::accepting);
            if listening {
                let _ = self.close(id);
            } else {
                self.mark_active(id);
            }
        }
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    /// Visits every live slot's id and fd; for the poll backend.
    pub(crate) fn live(&self) -> impl Iterator<Item = (ChannelId, &Entry)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let e = s.entry.as_ref()?;
            Some((
                ChannelId {
                    index: i as u32,
                    generation: s.generation,
                },
                e,
            ))
        })
    }
}

fn stale(id: ChannelId) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no channel {id} in the map"),
    )
}

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
            self.channel_mut().push(Bytes::copy_from_slice(data))?;
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

thread_local! {
    static DEFAULT_MAP: RefCell<SocketMap> = RefCell::new(SocketMap::new());
}

/// Runs `f` with this thread's default map, for code that, like Python's, passes no map.
/// Python: `asyncore.socket_map`.
///
/// # Panics
/// When called again from inside `f`, or from a handler while a loop runs over the default
/// map (use the handler's [`Context::map`] there).
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// use asyncore_core::{with_socket_map, Channel, DefaultDispatcher, Domain, Type};
/// let chan = Channel::create_socket(Domain::IPV4, Type::STREAM)?;
/// let id = with_socket_map(|map| map.insert(chan, DefaultDispatcher))?;
/// assert!(with_socket_map(|map| map.contains(id)));
/// asyncore_core::close_all(None, false)?;
/// assert!(with_socket_map(|map| map.is_empty()));
/// # Ok(())
/// # }
/// ```
pub fn with_socket_map<R>(f: impl FnOnce(&mut SocketMap) -> R) -> R {
    DEFAULT_MAP.with(|m| {
        let mut map = m
            .try_borrow_mut()
            .expect("the default socket map is already in use on this thread (use Context::map inside handlers)");
        f(&mut map)
    })
}

/// Closes every channel of `map`, or of the default map when `None`. Python:
/// `asyncore.close_all(map=None, ignore_all=False)`.
///
/// # Errors
/// As [`SocketMap::close_all`].
pub fn close_all(map: Option<&mut SocketMap>, ignore_all: bool) -> io::Result<()> {
    match map {
        Some(m) => m.close_all(ignore_all),
        None => with_socket_map(|m| m.close_all(ignore_all)),
    }
}

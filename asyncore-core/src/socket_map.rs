//! The socket map: it owns every channel and hands out generation-checked ids; and the
//! per-thread default map.

use crate::channel::{ready, Channel};
use crate::dispatcher::Dispatcher;
use crate::timer::TimerQueue;
use crate::waker;
use bytes::Bytes;
use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Instant;

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

    pub(crate) fn registry(&mut self) -> io::Result<Arc<mio::Registry>> {
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

pub(crate) fn stale(id: ChannelId) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("no channel {id} in the map"),
    )
}

thread_local! {
    static DEFAULT_MAP: RefCell<SocketMap> = RefCell::new(SocketMap::new());
}

/// Runs `f` with this thread's default map, for code that, like Python's, passes no map.
/// Python: `asyncore.socket_map`.
///
/// # Panics
/// When called again from inside `f`, or from a handler while a loop runs over the default
/// map (use the handler's [`Context::map`](crate::Context::map) there).
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

//! The socket map: it owns every channel with the loop's state about it, and hands out
//! ids checked by map and generation; and the per-thread default map.

use crate::backend::mio::MioWait;
use crate::backend::poll::PollWait;
use crate::backend::{self, Registration};
use crate::channel::Channel;
use crate::dispatcher::Dispatcher;
use crate::handle::{Handle, InsertError};
use crate::into_bytes::IntoBytes;
use crate::slab::{Key, Slab};
use crate::state::{ready, LoopState};
use crate::sys::RawSock;
use crate::timer::TimerQueue;
use crate::waker;
use std::any::TypeId;
use std::cell::RefCell;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a channel closed after a flush lingers by default; see
/// [`SocketMap::set_linger`].
pub const DEFAULT_LINGER: Duration = Duration::from_secs(2);

/// The id of a channel in a [`SocketMap`]: the map, a slot and the slot's generation, so
/// that an id kept after its channel closed never reaches a channel that later reuses the
/// slot (or the descriptor number), and an id from one map is refused by every other.
/// Python keys its map by descriptor number; we do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId {
    pub(crate) map: u32,
    pub(crate) key: Key,
}

impl ChannelId {
    pub(crate) fn key(self) -> Key {
        self.key
    }

    #[cfg(test)]
    pub(crate) fn for_tests(index: u32) -> ChannelId {
        ChannelId {
            map: 0,
            key: Key {
                index,
                generation: 1,
            },
        }
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.key.index, self.key.generation)
    }
}

/// A channel in the map: its socket half, its handler, and the loop's state about it.
pub(crate) struct Entry {
    pub(crate) chan: Channel,
    /// `None` while one of its handlers runs (the handler is lent to the loop), and once
    /// the channel closed and lingers.
    pub(crate) handler: Option<Box<dyn Dispatcher>>,
    /// The handler's type, known also while the handler is lent out.
    pub(crate) handler_type: TypeId,
    pub(crate) state: LoopState,
}

impl Entry {
    /// Folds in what the channel's operations noted since the last time.
    pub(crate) fn absorb(&mut self) {
        let notes = self.chan.take_notes();
        if notes & (crate::state::seen::READ_DRAINED | crate::state::seen::WRITE_FULL) != 0 {
            // Where the poller reports no new readiness until armed again (Windows).
            self.chan.rearm();
        }
        self.state.absorb(notes);
        #[cfg(feature = "tls")]
        if self.chan.tls_input_waiting() {
            // Decrypted input waits inside TLS: no OS event will announce it.
            self.state.ready |= crate::state::ready::WAKE;
        }
    }
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

/// Each map's number, so that its ids are its own.
static NEXT_MAP: AtomicU32 = AtomicU32::new(1);

/// The map of channels. Python: `asyncore.socket_map` (or the `map` argument).
///
/// The map owns each channel's core ([`Channel`]), its handler ([`Dispatcher`]) and the
/// loop's state about it (readiness, progress toward close). Channels may be inserted and
/// closed at any time, also from inside handlers; one inserted during a pass is polled
/// from the next pass on. Run it with [`Loop`](crate::Loop).
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
    pub(crate) id: u32,
    pub(crate) entries: Slab<Entry>,
    /// Channels that count in `len` (not closed, not lingering).
    pub(crate) open: usize,
    pub(crate) poller: Option<MioWait>,
    registry: Option<Arc<::mio::Registry>>,
    pub(crate) poll_set: PollWait,
    /// Channels that may have work: new, touched, with OS events, or that ran a handler.
    active: Vec<ChannelId>,
    /// The last pass's active list, kept for its memory.
    spare: Vec<ChannelId>,
    /// Closed channels whose descriptor the map still reads until the peer closes.
    pub(crate) lingering: Vec<ChannelId>,
    pub(crate) linger: Duration,
    pub(crate) stop: bool,
    pub(crate) running: bool,
    pub(crate) stats: LoopStats,
    pub(crate) timers: TimerQueue,
    pub(crate) wake: Option<Arc<waker::Shared>>,
    /// Set by [`shutdown`](Self::shutdown): the instant by which everything closes.
    pub(crate) shutdown: Option<Instant>,
    /// An exit request from a `handle_added`, for the loop to return.
    pub(crate) pending_exit: Option<crate::error::ExitNow>,
    /// The program's data, one value per type (see [`data_mut`](Self::data_mut)).
    pub(crate) data: crate::data::DataSlots,
    /// How long a TLS handshake may take (see `set_tls_handshake_timeout`).
    #[cfg(feature = "tls")]
    pub(crate) tls_handshake_timeout: Duration,
}

impl Default for SocketMap {
    fn default() -> SocketMap {
        SocketMap::new()
    }
}

impl fmt::Debug for SocketMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(|(_, c)| c)).finish()
    }
}

impl SocketMap {
    /// An empty map. The OS poller is created with the first channel.
    pub fn new() -> SocketMap {
        SocketMap {
            id: NEXT_MAP.fetch_add(1, Ordering::Relaxed),
            entries: Slab::default(),
            open: 0,
            poller: None,
            registry: None,
            poll_set: PollWait::default(),
            active: Vec::new(),
            spare: Vec::new(),
            lingering: Vec::new(),
            linger: DEFAULT_LINGER,
            stop: false,
            running: false,
            stats: LoopStats::default(),
            timers: TimerQueue::default(),
            wake: None,
            shutdown: None,
            pending_exit: None,
            #[cfg(feature = "tls")]
            tls_handshake_timeout: crate::tls::DEFAULT_HANDSHAKE_TIMEOUT,
            data: crate::data::DataSlots::default(),
        }
    }

    /// How many channels the map holds.
    pub fn len(&self) -> usize {
        self.open
    }

    /// Whether the map holds no channel (a loop over it returns).
    pub fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// The loop's counters for this map since it was made.
    pub fn stats(&self) -> LoopStats {
        self.stats
    }

    pub(crate) fn registry(&mut self) -> io::Result<Arc<::mio::Registry>> {
        if let Some(r) = &self.registry {
            return Ok(r.clone());
        }
        let poller = MioWait::new()?;
        let registry = Arc::new(poller.poll.registry().try_clone()?);
        self.poller = Some(poller);
        self.registry = Some(registry.clone());
        Ok(registry)
    }

    fn id_of(&self, key: Key) -> ChannelId {
        ChannelId { map: self.id, key }
    }

    /// Adds a channel with its handler and returns its [`Handle`]: its id, typed with the
    /// handler's type. Python: `add_channel` (which `create_socket` and `set_socket`
    /// call). The handler's [`handle_added`](Dispatcher::handle_added) runs before
    /// `insert` returns.
    ///
    /// # Errors
    /// The channel has no descriptor or is closed (`InvalidInput`), the map is full, or the
    /// OS poller refuses the descriptor (`EBADF`...): the [`InsertError`] hands the channel
    /// and the handler back, and the map is unchanged. It converts into an `io::Error`
    /// for `?`. A descriptor the OS will not poll at all (a regular file) is accepted and
    /// counts as always ready.
    pub fn insert<H: Dispatcher>(
        &mut self,
        mut chan: Channel,
        handler: H,
    ) -> Result<Handle<H>, InsertError<H>> {
        let refuse = |kind: io::ErrorKind, why: String, chan, handler| {
            Err(InsertError::new(io::Error::new(kind, why), chan, handler))
        };
        let Some(fd) = chan.fileno() else {
            let why = "cannot add a channel with no descriptor to the map".to_string();
            return refuse(io::ErrorKind::InvalidInput, why, chan, handler);
        };
        if chan.closed() {
            let why = "cannot add a closed channel to the map".to_string();
            return refuse(io::ErrorKind::InvalidInput, why, chan, handler);
        }
        let registry = match self.registry() {
            Ok(r) => r,
            Err(e) => return Err(InsertError::new(e, chan, handler)),
        };
        let Some(key) = self.entries.next_key() else {
            let why = "socket map is full".to_string();
            return refuse(io::ErrorKind::OutOfMemory, why, chan, handler);
        };
        let id = self.id_of(key);
        let mut state = LoopState::new();
        match Registration::new(registry, id, fd) {
            Ok(reg) => chan.registration = Some(reg),
            Err(e) if crate::sys::is_unpollable(&e) => {
                // epoll refuses regular files; Python's loop reads them: always ready.
                state.always_ready = true;
                state.ready = ready::READ | ready::WRITE;
            }
            Err(e) => {
                let why = format!("cannot register descriptor {fd} with the loop: {e}");
                return refuse(e.kind(), why, chan, handler);
            }
        }
        chan.name = std::any::type_name::<H>();
        // The notes of operations done before the channel joined mean nothing here.
        chan.take_notes();
        let entry = Entry {
            chan,
            handler: None,
            handler_type: TypeId::of::<H>(),
            state,
        };
        // The slot is the one `next_key` gave: the insert cannot fail now.
        if let Err(entry) = self.entries.insert(entry) {
            let mut chan = entry.chan;
            if let Some(reg) = chan.registration.take() {
                reg.remove();
            }
            let why = "socket map is full".to_string();
            return refuse(io::ErrorKind::OutOfMemory, why, chan, handler);
        }
        if let Some(entry) = self.entries.get_mut(key) {
            entry.handler = Some(Box::new(handler));
        }
        self.open += 1;
        self.mark_active(id);
        crate::dispatch::added(self, id);
        if self.shutdown.is_some() {
            // A channel that joins a map shutting down flushes and closes with the rest.
            self.shutdown_channel(id);
        }
        Ok(Handle::new(id))
    }

    /// The entry of `id`, closed or not (a closed channel's slot lives until its running
    /// handler returns); `None` for an id of another map or a stale one.
    pub(crate) fn entry(&self, id: ChannelId) -> Option<&Entry> {
        if id.map != self.id {
            return None;
        }
        self.entries.get(id.key)
    }

    pub(crate) fn entry_mut(&mut self, id: ChannelId) -> Option<&mut Entry> {
        if id.map != self.id {
            return None;
        }
        self.entries.get_mut(id.key)
    }

    /// The entry of an open channel.
    pub(crate) fn open_entry(&self, id: ChannelId) -> Option<&Entry> {
        self.entry(id).filter(|e| e.state.is_open())
    }

    pub(crate) fn open_entry_mut(&mut self, id: ChannelId) -> Option<&mut Entry> {
        self.entry_mut(id).filter(|e| e.state.is_open())
    }

    /// Whether `id` names a channel in this map (not closed, not stale, not another map's).
    pub fn contains(&self, id: impl Into<ChannelId>) -> bool {
        self.open_entry(id.into()).is_some()
    }

    /// The ids of all channels, in slot order.
    pub fn ids(&self) -> Vec<ChannelId> {
        self.iter().map(|(id, _)| id).collect()
    }

    /// Every channel's id and core part, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (ChannelId, &Channel)> + '_ {
        self.entries
            .iter()
            .filter(|(_, e)| e.state.is_open())
            .map(|(key, e)| (self.id_of(key), &e.chan))
    }

    /// The core part of channel `id`, or `None` for a stale id.
    pub fn channel(&self, id: impl Into<ChannelId>) -> Option<&Channel> {
        self.open_entry(id.into()).map(|e| &e.chan)
    }

    /// The core part of channel `id`, to operate on it (send to it, close it...). The
    /// channel's predicates are asked again on the next pass.
    pub fn channel_mut(&mut self, id: impl Into<ChannelId>) -> Option<&mut Channel> {
        let id = id.into();
        self.mark_touched(id);
        self.open_entry_mut(id).map(|e| &mut e.chan)
    }

    /// Whether channel `id` is closing: its handler asked to close once its output is
    /// sent ([`Context::close_when_done`](crate::Context::close_when_done)), or it is
    /// closed (`true` for a stale id too). A layer takes no more output for it then (a
    /// flush for a shutdown or for the peer's end of stream still does).
    pub fn is_closing(&self, id: impl Into<ChannelId>) -> bool {
        self.open_entry(id.into())
            .is_none_or(|e| e.state.done_asked)
    }

    /// Tells the loop that channel `id`'s `readable` / `writable` answers may have changed
    /// for reasons outside the channel (another channel queued output for it, say). Handlers
    /// reached through [`channel_mut`](Self::channel_mut) or
    /// [`handler_mut`](Self::handler_mut) are touched already. Unknown ids are ignored.
    pub fn touch(&mut self, id: impl Into<ChannelId>) {
        self.mark_touched(id.into());
    }

    /// Puts channel `id` on the active list with its predicates to be asked again.
    pub(crate) fn mark_touched(&mut self, id: ChannelId) {
        if let Some(entry) = self.entry_mut(id) {
            entry.state.interest = None;
        }
        self.mark_active(id);
    }

    /// Puts channel `id` on the active list, for the next pass to look at.
    pub(crate) fn mark_active(&mut self, id: ChannelId) {
        if let Some(entry) = self.entry_mut(id) {
            if !entry.state.active {
                entry.state.active = true;
                self.active.push(id);
            }
        }
    }

    /// Takes the active list for a pass, clearing its members' flags: a channel touched
    /// while the pass serves the list joins the next one.
    pub(crate) fn take_active(&mut self) -> Vec<ChannelId> {
        let list = std::mem::replace(&mut self.active, std::mem::take(&mut self.spare));
        for &id in &list {
            if let Some(entry) = self.entry_mut(id) {
                entry.state.active = false;
            }
        }
        list
    }

    /// Hands back a pass's list, for its memory.
    pub(crate) fn give_back_active(&mut self, mut list: Vec<ChannelId>) {
        list.clear();
        if list.capacity() > self.spare.capacity() {
            self.spare = list;
        }
    }

    /// Whether some active channel has work without waiting for the OS: readiness not used
    /// up, a connect error or a close due, a flush to check, a lingering descriptor.
    pub(crate) fn has_pending_work(&self) -> bool {
        self.active.iter().any(|&id| {
            self.entry(id).is_some_and(|e| {
                let s = &e.state;
                let wanted = match s.interest {
                    Some((r, w)) => crate::dispatch::interest_mask(r, w, e.chan.accepting()),
                    None => u8::MAX,
                };
                s.ready & wanted != 0
                    || s.close_due
                    || s.flush_check
                    || e.chan.pending_error.is_some()
                    || e.chan.has_notes()
            })
        })
    }

    /// Records readiness the OS reported for `token`.
    pub(crate) fn record(&mut self, token: ::mio::Token, bits: u8) {
        let (index, generation) = backend::slot_of(token);
        let Some((key, entry)) = self.entries.get_at_mut(index) else {
            return; // Its channel closed: a stale token finds no entry.
        };
        if generation.is_some_and(|g| g != key.generation) {
            return;
        }
        entry.state.ready |= bits;
        let id = self.id_of(key);
        self.mark_active(id);
    }

    /// Forgets the level-triggered readiness of the last `poll(2)` pass (keeping what no
    /// poll reports: a wake-up asked for by the handler, a file's constant readiness).
    pub(crate) fn reset_ready(&mut self, id: ChannelId) {
        if let Some(entry) = self.entry_mut(id) {
            let s = &mut entry.state;
            if !s.always_ready {
                s.ready &= ready::WAKE;
            }
        }
    }

    /// Every slot's id (open, closed with a handler still running, or lingering).
    pub(crate) fn collect_ids(&self, into: &mut Vec<ChannelId>) {
        into.extend(self.entries.iter().map(|(key, _)| self.id_of(key)));
    }

    /// For the `poll(2)` backend: channel `id`'s descriptor, token, the readiness it waits
    /// for, and whether it has work without waiting. `wants` is what its predicates said.
    pub(crate) fn poll_interest(
        &mut self,
        id: ChannelId,
        wants: Option<(bool, bool)>,
    ) -> Option<(RawSock, ::mio::Token, u8, bool)> {
        let entry = self.entry_mut(id)?;
        entry.absorb();
        let s = &entry.state;
        let due = s.close_due
            || s.flush_check
            || entry.chan.pending_error.is_some()
            || (s.ready & ready::WAKE != 0 && wants.is_some_and(|w| w.0))
            || s.always_ready && wants.is_some_and(|w| w.0 || w.1);
        if s.linger_until.is_some() {
            let fd = entry.chan.lingering_fd()?;
            return Some((fd, backend::token(id.key), ready::READ, false));
        }
        let fd = entry.chan.fileno()?;
        let mut bits = 0;
        if let Some((r, w)) = wants {
            if r {
                bits |= ready::READ;
            }
            if w && !entry.chan.accepting() {
                bits |= ready::WRITE;
            }
        }
        Some((fd, backend::token(id.key), bits, due))
    }

    /// The read end of the waker's socket, when there is a waker.
    pub(crate) fn waker_fd(&self) -> Option<RawSock> {
        self.wake.as_ref().map(|w| w.fd())
    }

    /// Queues `data` on channel `id`'s output and tries to send it; for writing to another
    /// channel from a handler (a chat broadcast). Python: `other.send(data)` on a
    /// `dispatcher_with_send`.
    ///
    /// # Errors
    /// `NotFound` for a stale id or one of another map; the send's own errors otherwise.
    pub fn push(&mut self, id: impl Into<ChannelId>, data: impl IntoBytes) -> io::Result<usize> {
        let id = id.into();
        match self.channel_mut(id) {
            Some(chan) => chan.push(data),
            None => Err(self.stale(id)),
        }
    }

    /// The error for an id that names no open channel of this map.
    pub(crate) fn stale(&self, id: ChannelId) -> io::Error {
        if id.map != self.id {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("channel {id} belongs to another map"),
            )
        } else {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no channel {id} in the map"),
            )
        }
    }

    /// Asks the loop running this map to return `Ok` at the end of the current pass.
    pub fn stop(&mut self) {
        self.stop = true;
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

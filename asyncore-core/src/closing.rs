//! The one close path of a channel, and lingering: how a channel leaves the map.

use crate::dispatcher::Dispatcher;
use crate::socket_map::{ChannelId, SocketMap};
use crate::state::{ready, CloseState};
use std::io;
use std::time::{Duration, Instant};

impl SocketMap {
    /// Closes channel `id` and removes it from the map, without `handle_close` (Python:
    /// `dispatcher.close()`). A stale id is not an error (closing twice is allowed).
    ///
    /// # Errors
    /// The error of `close(2)`, as [`Channel::close`](crate::Channel::close);
    /// `InvalidInput` for an id of another map (nothing is closed).
    pub fn close(&mut self, id: impl Into<ChannelId>) -> io::Result<()> {
        let id = id.into();
        if id.map != self.id {
            return Err(self.stale(id));
        }
        self.close_channel(id)
    }

    /// The one way a channel becomes closed, whoever asked: it leaves the map's views at
    /// once, its descriptor is closed (or lingers, after a flush whose peer has not ended
    /// its input), and its slot is freed as soon as its handler is not running.
    pub(crate) fn close_channel(&mut self, id: ChannelId) -> io::Result<()> {
        let linger = self.linger;
        let now_linger = self
            .shutdown
            .unwrap_or_else(|| crate::timer::after(Instant::now(), linger));
        let Some(entry) = self.entry_mut(id) else {
            return Ok(());
        };
        if !entry.state.is_open() {
            return Ok(());
        }
        entry.absorb();
        entry.state.close = CloseState::Closed;
        entry.state.close_due = false;
        entry.state.flush_check = false;
        let idle = entry.state.idle.take().and_then(|i| i.timer);
        let lingers = entry.state.write_shut
            && !entry.state.read_closed
            && !linger.is_zero()
            && entry.chan.should_linger();
        let result = if lingers {
            entry.chan.close_to_linger();
            entry.state.linger_until = Some(now_linger);
            entry.state.ready &= ready::READ | ready::RDHUP;
            entry.state.interest = Some((true, false));
            // The handler is dropped now (or when it returns): the channel is gone.
            drop(entry.handler.take());
            Ok(())
        } else {
            let result = entry.chan.close();
            if entry.handler.is_some() {
                self.entries.remove(id.key);
            }
            // Else its handler is running: its slot goes when the handler returns.
            result
        };
        self.open -= 1;
        if let Some(timer) = idle {
            self.timers.cancel(timer);
        }
        if lingers {
            log::debug!(target: "asyncore", "channel {id} closed; it lingers until its peer closes");
            self.lingering.push(id);
            self.mark_active(id);
        }
        result
    }

    /// Puts a handler back after it ran, or drops it if its channel closed meanwhile.
    /// The predicates are to be asked again: what the handler did may have changed them.
    pub(crate) fn restore(&mut self, id: ChannelId, handler: Box<dyn Dispatcher>) {
        let Some(entry) = self.entry_mut(id) else {
            return;
        };
        entry.state.interest = None;
        if entry.state.is_open() {
            entry.handler = Some(handler);
        } else if entry.state.linger_until.is_none() {
            self.entries.remove(id.key);
        }
    }

    /// The earliest end of a linger.
    pub(crate) fn next_linger_end(&self) -> Option<Instant> {
        self.lingering
            .iter()
            .filter_map(|&id| self.entry(id).and_then(|e| e.state.linger_until))
            .min()
    }

    /// Ends the lingers whose time is up.
    pub(crate) fn end_lingers_due(&mut self, now: Instant) {
        let due: Vec<ChannelId> = self
            .lingering
            .iter()
            .copied()
            .filter(|&id| {
                self.entry(id)
                    .and_then(|e| e.state.linger_until)
                    .is_none_or(|t| t <= now)
            })
            .collect();
        for id in due {
            log::debug!(target: "asyncore", "channel {id} lingered until its time was up");
            self.end_linger(id);
        }
    }

    /// Ends a lingering channel: its descriptor is closed and its slot freed.
    pub(crate) fn end_linger(&mut self, id: ChannelId) {
        if let Some(entry) = self.entry_mut(id) {
            if entry.state.linger_until.take().is_some() {
                entry.chan.end_linger();
                self.entries.remove(id.key);
            }
        }
        self.lingering.retain(|&l| l != id);
    }

    /// How long a channel that closes after a flush keeps reading and discarding its
    /// peer's input, so that the kernel does not answer that input with a reset (which
    /// destroys replies still in flight): until the peer closes, or this long at most.
    /// During a [`shutdown`](Self::shutdown) the grace period applies instead. Default
    /// [`DEFAULT_LINGER`](crate::DEFAULT_LINGER) (2 s); `Duration::ZERO` closes at once.
    ///
    /// A channel lingers when the loop shut its write side down after a flush
    /// ([`Context::close_when_done`](crate::Context::close_when_done), a shutdown), its
    /// peer has not ended its input, and it either sent something (replies the peer may
    /// not have read yet: input arriving after a plain close would reset them away) or
    /// holds input it did not read (a client still pipelining requests). A peer that
    /// closes when it sees our end of stream, as most do, ends the linger at once. A
    /// lingering channel is gone from the map's views; the loop does not wait for it
    /// unless it is shutting down. Apache's `lingering_close` is the model.
    pub fn set_linger(&mut self, linger: Duration) {
        self.linger = linger;
    }

    /// Closes every channel and empties the map. Python: `asyncore.close_all(map,
    /// ignore_all)`. Handlers are dropped without `handle_close`; lingering descriptors
    /// are closed too.
    ///
    /// # Errors
    /// The first error of `close(2)`, unless `ignore_all`; `EBADF` is always ignored. The
    /// map is empty either way.
    pub fn close_all(&mut self, ignore_all: bool) -> io::Result<()> {
        let mut first_err = None;
        let mut ids = Vec::new();
        self.collect_ids(&mut ids);
        for id in ids {
            if let Err(e) = self.close_channel(id) {
                if first_err.is_none() && !ignore_all {
                    first_err = Some(e);
                }
            }
        }
        for id in std::mem::take(&mut self.lingering) {
            self.end_linger(id);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

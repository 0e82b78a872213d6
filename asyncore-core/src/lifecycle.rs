//! The map's clock and lifecycle, beyond asyncore: timers, idle timeouts, the
//! cross-thread waker, graceful shutdown.

use crate::backend::WAKER_TOKEN;
use crate::channel::Channel;
use crate::socket_map::{ChannelId, SocketMap};
use crate::state::Idle;
use crate::timer::{after, Target, TimerAction, TimerId};
use crate::waker::{self, Waker};
use std::io;
use std::time::{Duration, Instant};

impl SocketMap {
    /// Runs `f` with the map once `delay` has passed (on the first pass after that;
    /// `Duration::MAX` or any delay past what the clock can say: never). Returns a handle
    /// for [`cancel_timer`](Self::cancel_timer). Twisted: `callLater`. A callback that
    /// panics is logged; the loop goes on.
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
        self.call_at(after(Instant::now(), delay), f)
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

    /// Calls channel `id`'s [`handle_timer`](crate::Dispatcher::handle_timer) after `delay`
    /// (`Duration::MAX`: never). A channel closed meanwhile gets nothing.
    ///
    /// # Errors
    /// `NotFound` for a stale id, `InvalidInput` for one of another map.
    pub fn set_timer(&mut self, id: impl Into<ChannelId>, delay: Duration) -> io::Result<TimerId> {
        let id = id.into();
        if !self.contains(id) {
            return Err(self.stale(id));
        }
        Ok(self
            .timers
            .insert(after(Instant::now(), delay), Target::Channel(id)))
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
    /// closes the channel). `None` turns it off; `Duration::MAX` never fires.
    ///
    /// # Errors
    /// `NotFound` for a stale id, `InvalidInput` for one of another map.
    pub fn set_idle_timeout(
        &mut self,
        id: impl Into<ChannelId>,
        period: Option<Duration>,
    ) -> io::Result<()> {
        let id = id.into();
        let now = Instant::now();
        if !self.contains(id) {
            return Err(self.stale(id));
        }
        let timer = period.map(|p| self.timers.insert(after(now, p), Target::Idle(id)));
        // `contains` held just above, and inserting a timer does not touch the entries.
        let Some(entry) = self.entry_mut(id) else {
            return Ok(());
        };
        let old = entry.state.idle.take();
        entry.state.idle = period.map(|period| Idle {
            period,
            last_activity: now,
            timer,
        });
        if let Some(timer) = old.and_then(|o| o.timer) {
            self.timers.cancel(timer);
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
        let registry = self.registry()?;
        let shared = waker::Shared::new(&registry, WAKER_TOKEN)?;
        self.wake = Some(shared.clone());
        Ok(Waker::new(shared))
    }

    /// Shuts down gracefully, as servers that keep their promises do: listening channels
    /// close now (without `handle_close`), no channel is read any more, and every other
    /// channel flushes its output (while its handler's
    /// [`has_pending_output`](crate::Dispatcher::has_pending_output) holds), then has its
    /// write side shut down and gets its `handle_close` (once). A channel closed after
    /// that lingers (when it sent something or has input unread): what its peer still
    /// sends is read and discarded until the peer closes, so the kernel does not reset
    /// the connection under the replies still in flight. The loop returns once every peer
    /// has closed; a peer that keeps an idle connection open after our end of stream holds
    /// the shutdown until the grace ends. When `grace` (`Duration::MAX`: no limit) runs
    /// out first, every channel left gets its `handle_close` (if it had none) and closes.
    /// The loop then returns `Ok`.
    /// Calling it again only shortens the grace period.
    pub fn shutdown(&mut self, grace: Duration) {
        let deadline = after(Instant::now(), grace);
        self.shutdown = Some(match self.shutdown {
            Some(earlier) if earlier < deadline => earlier,
            _ => deadline,
        });
        for id in self.ids() {
            self.shutdown_channel(id);
        }
    }

    /// Closes a listening channel, starts the flush of any other.
    pub(crate) fn shutdown_channel(&mut self, id: ChannelId) {
        if self.channel(id).is_some_and(Channel::accepting) {
            let _ = self.close_channel(id);
        } else if let Some(entry) = self.entry_mut(id) {
            entry.state.start_flush();
            // No reading from now on: its predicates are asked anew.
            self.mark_touched(id);
        }
    }

    /// Whether a [`shutdown`](Self::shutdown) is in progress: from the call until the loop
    /// has closed every channel (and returned).
    pub fn shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }
}

//! The map's clock and lifecycle, beyond asyncore: timers, idle timeouts, the
//! cross-thread waker, graceful shutdown.

use crate::channel::Channel;
use crate::socket_map::{stale, ChannelId, SocketMap};
use crate::timer::{Target, TimerAction, TimerId};
use crate::waker::{self, Waker};
use std::io;
use std::time::{Duration, Instant};

impl SocketMap {
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
}

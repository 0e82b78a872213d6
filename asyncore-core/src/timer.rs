//! Timers: a queue ordered by deadline, with cancellation in O(log n).
//!
//! A binary heap holds `(deadline, sequence, key)`; a [`Slab`] holds what fires. A
//! cancelled or rescheduled timer leaves its old heap entry behind, recognised as stale by
//! its sequence number and skipped when it reaches the top, so every operation is
//! O(log n) however many timers are pending.

use crate::slab::{Key, Slab};
use crate::socket_map::{ChannelId, SocketMap};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::time::{Duration, Instant};

/// The handle of a scheduled timer, to cancel it. A handle kept after its timer fired or
/// was cancelled never reaches a later timer.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId(Key);

impl fmt::Debug for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimerId({:?})", self.0)
    }
}

/// What a repeating timer's callback wants next. calloop: `TimeoutAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerAction {
    /// Do not fire again.
    Done,
    /// Fire again this long after now.
    Again(Duration),
    /// Fire again at this instant.
    At(Instant),
}

/// A callback that runs on the loop's thread with the map.
pub(crate) type TimerFn = Box<dyn FnMut(&mut SocketMap) -> TimerAction>;

/// What fires when a timer expires.
pub(crate) enum Target {
    /// A closure with the map.
    Call(TimerFn),
    /// A channel's `handle_timer`, unless the channel is gone.
    Channel(ChannelId),
    /// A channel's idle check (see `Context::set_idle_timeout`).
    Idle(ChannelId),
    /// The end of a channel's time for its TLS handshake.
    #[cfg(feature = "tls")]
    Handshake(ChannelId),
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Call(_) => f.write_str("Call(..)"),
            Target::Channel(id) => write!(f, "Channel({id})"),
            Target::Idle(id) => write!(f, "Idle({id})"),
            #[cfg(feature = "tls")]
            Target::Handshake(id) => write!(f, "Handshake({id})"),
        }
    }
}

/// A scheduled timer: its place in the heap (the sequence number of its current heap
/// entry) and what fires.
#[derive(Debug)]
pub(crate) struct Scheduled {
    seq: u64,
    target: Target,
}

/// The pending timers of one map: a heap of deadlines over a [`Slab`] of what fires.
#[derive(Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, u64, Key)>>,
    timers: Slab<Scheduled>,
    next_seq: u64,
}

impl fmt::Debug for TimerQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerQueue")
            .field("pending", &self.timers.len())
            .finish()
    }
}

/// `now + delay`, or the latest instant this platform's clock can say when that is out of
/// its range: a deadline of `Duration::MAX` means "never", not a panic.
pub(crate) fn after(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay).unwrap_or_else(|| {
        // Thirty years ahead fits every clock we run on; halve until it fits anyway.
        let mut ahead = Duration::from_secs(30 * 365 * 24 * 3600);
        while !ahead.is_zero() {
            if let Some(t) = now.checked_add(ahead) {
                return t;
            }
            ahead /= 2;
        }
        now
    })
}

impl TimerQueue {
    /// How many timers are pending.
    pub(crate) fn len(&self) -> usize {
        self.timers.len()
    }

    /// The sequence number the next scheduled timer will get: timers scheduled from now on
    /// compare greater or equal.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn push(&mut self, key: Key, deadline: Instant) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse((deadline, seq, key)));
        seq
    }

    /// Schedules `target` at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, target: Target) -> TimerId {
        let seq = self.next_seq;
        let key = match self.timers.insert(Scheduled { seq, target }) {
            Ok(key) => key,
            // Four billion pending timers cannot be allocated on any machine we run on.
            Err(_) => {
                return TimerId(Key {
                    index: u32::MAX,
                    generation: 0,
                })
            }
        };
        self.push(key, deadline);
        TimerId(key)
    }

    /// Puts a timer that just fired (and was taken with [`pop_expired`](Self::pop_expired))
    /// back, under the same id, at `deadline`.
    pub(crate) fn reinsert(&mut self, id: TimerId, deadline: Instant, target: Target) {
        let seq = self.next_seq;
        if self.timers.restore(id.0, Scheduled { seq, target }) {
            self.push(id.0, deadline);
        }
    }

    /// Frees the slot of a timer taken by [`pop_expired`](Self::pop_expired) and not put
    /// back.
    pub(crate) fn release(&mut self, id: TimerId) {
        self.timers.release(id.0);
    }

    /// Cancels a pending timer; `false` when it already fired or was cancelled.
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        // Its heap entry stays behind, stale, until it reaches the top.
        self.timers.remove(id.0).is_some()
    }

    fn is_current(&self, key: Key, seq: u64) -> bool {
        self.timers.get(key).is_some_and(|t| t.seq == seq)
    }

    /// The earliest pending deadline (dropping stale heap entries on the way).
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse((deadline, seq, key))) = self.heap.peek().copied() {
            if self.is_current(key, seq) {
                return Some(deadline);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes the earliest timer whose deadline is at or before `now` and that was scheduled
    /// before sequence `before` (so a timer set during this round waits for the next). Its
    /// slot stays reserved until [`reinsert`](Self::reinsert) or
    /// [`release`](Self::release).
    pub(crate) fn pop_expired(&mut self, now: Instant, before: u64) -> Option<(TimerId, Target)> {
        loop {
            let Reverse((deadline, seq, key)) = self.heap.peek().copied()?;
            if !self.is_current(key, seq) {
                self.heap.pop();
                continue;
            }
            if deadline > now || seq >= before {
                return None;
            }
            self.heap.pop();
            let scheduled = self.timers.take(key)?;
            return Some((TimerId(key), scheduled.target));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel_target(n: u32) -> Target {
        Target::Idle(ChannelId::for_tests(n))
    }

    fn fire_all(q: &mut TimerQueue, now: Instant) -> Vec<TimerId> {
        let before = q.next_seq();
        let mut fired = Vec::new();
        while let Some((id, _)) = q.pop_expired(now, before) {
            q.release(id);
            fired.push(id);
        }
        fired
    }

    #[test]
    fn expire_in_deadline_order_then_insertion_order() {
        let mut q = TimerQueue::default();
        let t0 = Instant::now();
        let late = q.insert(t0 + Duration::from_millis(30), channel_target(1));
        let early = q.insert(t0 + Duration::from_millis(10), channel_target(2));
        let tie = q.insert(t0 + Duration::from_millis(10), channel_target(3));
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(fire_all(&mut q, t0 + Duration::from_millis(9)), vec![]);
        assert_eq!(
            fire_all(&mut q, t0 + Duration::from_millis(10)),
            vec![early, tie]
        );
        assert_eq!(fire_all(&mut q, t0 + Duration::from_secs(1)), vec![late]);
        assert_eq!(q.len(), 0);
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn cancel_removes_and_stale_ids_do_nothing() {
        let mut q = TimerQueue::default();
        let t0 = Instant::now();
        let a = q.insert(t0, channel_target(1));
        assert!(q.cancel(a));
        assert!(!q.cancel(a));
        let b = q.insert(t0, channel_target(2));
        // `b` reuses `a`'s slot with a new generation: the stale id cannot cancel it.
        assert!(!q.cancel(a));
        assert_eq!(fire_all(&mut q, t0), vec![b]);
    }

    #[test]
    fn timers_scheduled_during_a_round_wait_for_the_next() {
        let mut q = TimerQueue::default();
        let t0 = Instant::now();
        q.insert(t0, channel_target(1));
        let before = q.next_seq();
        let (first, _) = q.pop_expired(t0, before).unwrap();
        q.release(first);
        q.insert(t0, channel_target(2));
        assert!(q.pop_expired(t0, before).is_none());
        assert_eq!(fire_all(&mut q, t0).len(), 1);
    }

    #[test]
    fn a_hundred_thousand_timers_cancel_and_fire_in_order() {
        let mut q = TimerQueue::default();
        let t0 = Instant::now();
        let ids: Vec<TimerId> = (0..100_000u32)
            .map(|i| {
                q.insert(
                    t0 + Duration::from_micros(u64::from(i % 1000)),
                    channel_target(i),
                )
            })
            .collect();
        for id in ids.iter().step_by(2) {
            assert!(q.cancel(*id));
        }
        assert_eq!(q.len(), 50_000);
        let before = q.next_seq();
        let mut last = t0;
        let mut n = 0;
        while let Some((id, _)) = q.pop_expired(t0 + Duration::from_secs(1), before) {
            let deadline = t0 + Duration::from_micros(u64::from(id.0.index % 1000));
            assert!(deadline >= last);
            last = deadline;
            q.release(id);
            n += 1;
        }
        assert_eq!(n, 50_000);
    }
}

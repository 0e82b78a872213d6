//! The output side of `async_chat`: buffers and producers waiting behind the channel's
//! send queue, and the watermarks that pause input while output piles up.

use crate::error::ChatError;
use crate::framer::Framing;
use crate::producer::Producer;
use asyncore_core::{BoxError, Channel, HandlerResult, PanicError};
use bytes::Bytes;
use std::collections::VecDeque;
use std::fmt;

/// Python's `async_chat.ac_out_buffer_size` and `ac_in_buffer_size` default: 64 KiB.
pub const DEFAULT_BUFFER_SIZE: usize = 65536;

/// Output levels that pause and resume reading from a channel. Not in Python.
///
/// When a push takes the queued output above `high`, the channel stops cutting frames and
/// reading (its peer is not reading its replies; we stop making more for it). When the
/// output drains to `low` or below, it frames the input it kept and reads again. Queued
/// output counts the bytes waiting in the channel's send queue and the pushed buffers
/// waiting behind a producer; what a producer has not produced yet does not count (it is
/// pulled only as output drains).
///
/// ```
/// use asyncore_chat::Watermarks;
/// let marks = Watermarks::new(16 * 1024, 64 * 1024)?;
/// assert_eq!((marks.low(), marks.high()), (16384, 65536));
/// assert!(Watermarks::new(10, 5).is_err());
/// assert_eq!(Watermarks::default().high(), 256 * 1024);
/// # Ok::<(), asyncore_chat::ChatError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    low: usize,
    high: usize,
}

impl Watermarks {
    /// Resume reading at 64 KiB or less queued, pause above 256 KiB.
    pub const DEFAULT: Watermarks = Watermarks {
        low: 64 * 1024,
        high: 256 * 1024,
    };

    /// Watermarks pausing above `high` bytes queued and resuming at `low` or below.
    ///
    /// # Errors
    /// [`ChatError::InvalidWatermarks`] when `low > high`.
    pub fn new(low: usize, high: usize) -> Result<Watermarks, ChatError> {
        if low > high {
            return Err(ChatError::InvalidWatermarks { low, high });
        }
        Ok(Watermarks { low, high })
    }

    /// The level at or under which reading resumes.
    pub fn low(&self) -> usize {
        self.low
    }

    /// The level above which reading pauses.
    pub fn high(&self) -> usize {
        self.high
    }
}

impl Default for Watermarks {
    fn default() -> Watermarks {
        Watermarks::DEFAULT
    }
}

/// Something behind the channel's send queue.
enum Pending {
    Data(Bytes),
    Producer(Box<dyn Producer>),
}

/// Python's `producer_fifo`, minus what already sits in the channel's send queue.
///
/// Pushed buffers go straight to the channel's queue (`Channel::out_queue_mut`) unless a
/// producer is waiting: then they wait behind it, in order. Producers are pulled only when
/// the channel's queue is under `out_buffer_size`.
pub(crate) struct Output {
    fifo: VecDeque<Pending>,
    /// Bytes of the `Data` entries in `fifo`.
    fifo_bytes: usize,
    pub(crate) out_buffer_size: usize,
    pub(crate) watermarks: Option<Watermarks>,
    /// A producer failed: its error, held until the output queued before it is sent.
    failed: Option<BoxError>,
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field("waiting", &self.fifo.len())
            .field("waiting_bytes", &self.fifo_bytes)
            .field("out_buffer_size", &self.out_buffer_size)
            .field("failed", &self.failed.as_ref().map(|e| e.to_string()))
            .field("watermarks", &self.watermarks)
            .finish()
    }
}

impl Output {
    pub(crate) fn new() -> Output {
        Output {
            fifo: VecDeque::new(),
            fifo_bytes: 0,
            out_buffer_size: DEFAULT_BUFFER_SIZE,
            watermarks: Some(Watermarks::DEFAULT),
            failed: None,
        }
    }

    /// Refuses output for a channel that is closing (`closing`: what the loop says) or
    /// closed.
    pub(crate) fn check_open(closing: bool, chan: &Channel) -> Result<(), ChatError> {
        if closing || chan.closed() {
            return Err(ChatError::Closing);
        }
        Ok(())
    }

    /// Queues `data` in pieces of at most `out_buffer_size` (no copies). Python:
    /// `async_chat.push` without its `initiate_send`. The caller has checked that the
    /// channel takes output ([`check_open`](Self::check_open)).
    pub(crate) fn push(&mut self, chan: &mut Channel, mut data: Bytes) {
        while !data.is_empty() {
            // Most pushes fit one piece: no split (and no refcount traffic) for them.
            let piece = if data.len() <= self.out_buffer_size {
                std::mem::take(&mut data)
            } else {
                data.split_to(self.out_buffer_size)
            };
            if self.fifo.is_empty() {
                chan.out_queue_mut().push(piece);
            } else {
                self.fifo_bytes += piece.len();
                self.fifo.push_back(Pending::Data(piece));
            }
        }
    }

    /// Queues a copy of `data`: small data straight into the send queue's packed block.
    pub(crate) fn push_copy(&mut self, chan: &mut Channel, data: &[u8]) {
        if self.fifo.is_empty() && data.len() <= self.out_buffer_size {
            chan.out_queue_mut().push_slice(data);
            return;
        }
        self.push(chan, Bytes::copy_from_slice(data))
    }

    /// Queues a producer. Python: `async_chat.push_with_producer` without its
    /// `initiate_send`.
    pub(crate) fn push_producer(&mut self, producer: Box<dyn Producer>) {
        self.fifo.push_back(Pending::Producer(producer));
    }

    /// Whether anything waits behind the channel's send queue (a producer, or buffers
    /// pushed after one).
    #[cfg(feature = "tls")]
    pub(crate) fn has_producers(&self) -> bool {
        !self.fifo.is_empty()
    }

    /// Bytes waiting to be sent: the channel's queue and the buffers behind producers.
    pub(crate) fn queued(&self, chan: &Channel) -> usize {
        chan.out_queue().len() + self.fifo_bytes
    }

    /// Whether nothing at all waits to be sent (no producer, no producer's error either).
    pub(crate) fn is_empty(&self, chan: &Channel) -> bool {
        chan.out_queue().is_empty() && self.fifo.is_empty() && self.failed.is_none()
    }

    /// Pauses `framing` if the output queued on `chan` is above the high watermark: called
    /// after every push.
    pub(crate) fn pause_if_high(&self, chan: &Channel, framing: &mut Framing) {
        if self.above_high(chan) {
            framing.pause();
        }
    }

    pub(crate) fn above_high(&self, chan: &Channel) -> bool {
        self.watermarks.is_some_and(|w| self.queued(chan) > w.high)
    }

    pub(crate) fn at_or_below_low(&self, chan: &Channel) -> bool {
        self.watermarks.is_none_or(|w| self.queued(chan) <= w.low)
    }

    /// Moves waiting output into the channel's queue, pulling producers, until the queue
    /// holds `out_buffer_size` bytes or nothing waits. A producer that fails is dropped
    /// and its error held ([`take_failure`](Self::take_failure)): what was queued before
    /// it is still sent.
    pub(crate) fn refill(&mut self, chan: &mut Channel) {
        while self.failed.is_none() && chan.out_queue().len() < self.out_buffer_size {
            let Some(front) = self.fifo.front_mut() else {
                break;
            };
            let more = match front {
                Pending::Data(data) => {
                    let data = std::mem::take(data);
                    self.fifo_bytes -= data.len();
                    self.fifo.pop_front();
                    chan.out_queue_mut().push(data);
                    continue;
                }
                // A panic in a producer is its error, like one it returns.
                Pending::Producer(p) => {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.more()))
                        .unwrap_or_else(|panic| Err(Box::new(PanicError::from_payload(&*panic))))
                }
            };
            match more {
                Ok(data) if !data.is_empty() => chan.out_queue_mut().push(data),
                Ok(_) => {
                    self.fifo.pop_front();
                }
                Err(e) => {
                    self.fifo.pop_front();
                    self.failed = Some(e);
                }
            }
        }
    }

    /// The error of a failed producer, once everything queued before it is sent.
    pub(crate) fn take_failure(&mut self, chan: &Channel) -> HandlerResult {
        if chan.out_queue().is_empty() {
            if let Some(e) = self.failed.take() {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Drops everything waiting, also in the channel's queue. Python: the output half of
    /// `async_chat.discard_buffers()`.
    pub(crate) fn discard(&mut self, chan: &mut Channel) {
        self.fifo.clear();
        self.failed = None;
        self.fifo_bytes = 0;
        chan.out_queue_mut().clear();
    }
}

//! The output side of `async_chat`: buffers and producers waiting behind the channel's
//! send queue, and the watermarks that pause input while output piles up.

use crate::error::ChatError;
use crate::framer::Framing;
use crate::producer::Producer;
use asyncore_core::{Channel, HandlerResult};
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
    /// `close_when_done` was called: no more pushes; close once drained.
    pub(crate) closing: bool,
    pub(crate) watermarks: Option<Watermarks>,
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field("waiting", &self.fifo.len())
            .field("waiting_bytes", &self.fifo_bytes)
            .field("out_buffer_size", &self.out_buffer_size)
            .field("closing", &self.closing)
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
            closing: false,
            watermarks: Some(Watermarks::DEFAULT),
        }
    }

    fn check_open(&self, chan: &Channel) -> Result<(), ChatError> {
        if self.closing || chan.closed() {
            return Err(ChatError::Closing);
        }
        Ok(())
    }

    /// Queues `data` in pieces of at most `out_buffer_size` (no copies). Python:
    /// `async_chat.push` without its `initiate_send`.
    pub(crate) fn push(&mut self, chan: &mut Channel, mut data: Bytes) -> Result<(), ChatError> {
        self.check_open(chan)?;
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
        Ok(())
    }

    /// Queues a copy of `data`: small data straight into the send queue's packed block.
    pub(crate) fn push_copy(&mut self, chan: &mut Channel, data: &[u8]) -> Result<(), ChatError> {
        if self.fifo.is_empty() && data.len() <= self.out_buffer_size {
            self.check_open(chan)?;
            chan.out_queue_mut().push_slice(data);
            return Ok(());
        }
        self.push(chan, Bytes::copy_from_slice(data))
    }

    /// Queues a producer. Python: `async_chat.push_with_producer` without its
    /// `initiate_send`.
    pub(crate) fn push_producer(
        &mut self,
        chan: &Channel,
        producer: Box<dyn Producer>,
    ) -> Result<(), ChatError> {
        self.check_open(chan)?;
        self.fifo.push_back(Pending::Producer(producer));
        Ok(())
    }

    /// Bytes waiting to be sent: the channel's queue and the buffers behind producers.
    pub(crate) fn queued(&self, chan: &Channel) -> usize {
        chan.out_queue().len() + self.fifo_bytes
    }

    /// Whether nothing at all waits to be sent (no producer either).
    pub(crate) fn is_empty(&self, chan: &Channel) -> bool {
        chan.out_queue().is_empty() && self.fifo.is_empty()
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
    /// holds `out_buffer_size` bytes or nothing waits.
    ///
    /// # Errors
    /// A producer's error; that producer is dropped.
    pub(crate) fn refill(&mut self, chan: &mut Channel) -> HandlerResult {
        while chan.out_queue().len() < self.out_buffer_size {
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
                Pending::Producer(p) => p.more(),
            };
            match more {
                Ok(data) if !data.is_empty() => chan.out_queue_mut().push(data),
                Ok(_) => {
                    self.fifo.pop_front();
                }
                Err(e) => {
                    self.fifo.pop_front();
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Drops everything waiting, also in the channel's queue. Python: the output half of
    /// `async_chat.discard_buffers()`.
    pub(crate) fn discard(&mut self, chan: &mut Channel) {
        self.fifo.clear();
        self.fifo_bytes = 0;
        chan.out_queue_mut().clear();
    }
}

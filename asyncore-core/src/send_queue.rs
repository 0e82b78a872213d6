//! The output queue behind `dispatcher_with_send` and `async_chat`.

use bytes::{Buf, Bytes};
use std::collections::VecDeque;
use std::io::IoSlice;

/// How many buffers one vectored write gathers at most.
pub(crate) const MAX_IOVECS: usize = 64;

/// A queue of byte buffers waiting to be sent, in order.
///
/// Queuing takes ownership of a [`Bytes`] and never copies it; sending gathers the front
/// buffers into one vectored write. Python: `dispatcher_with_send.out_buffer`.
///
/// ```
/// use asyncore_core::SendQueue;
/// let mut q = SendQueue::new();
/// q.push("hello ");
/// q.push(b"world".to_vec());
/// assert_eq!(q.len(), 11);
/// q.consume(8);
/// assert_eq!(q.len(), 3);
/// ```
#[derive(Debug, Default)]
pub struct SendQueue {
    bufs: VecDeque<Bytes>,
    len: usize,
}

impl SendQueue {
    /// An empty queue; allocates nothing until the first push.
    pub fn new() -> SendQueue {
        SendQueue::default()
    }

    /// Appends `data` at the back. Empty buffers are dropped.
    pub fn push(&mut self, data: impl Into<Bytes>) {
        let data = data.into();
        if !data.is_empty() {
            self.len += data.len();
            self.bufs.push_back(data);
        }
    }

    /// Bytes queued in all.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many separate buffers are queued.
    pub fn buffers(&self) -> usize {
        self.bufs.len()
    }

    /// Drops everything queued. Python: `async_chat.discard_buffers` (output side).
    pub fn clear(&mut self) {
        self.bufs.clear();
        self.len = 0;
    }

    /// Fills `slices` with the front of the queue, at most `max_bytes` in all; returns how
    /// many slices were filled.
    pub(crate) fn gather<'a>(
        &'a self,
        slices: &mut [IoSlice<'a>; MAX_IOVECS],
        max_bytes: usize,
    ) -> usize {
        let mut n = 0;
        let mut total = 0;
        for buf in &self.bufs {
            if n == MAX_IOVECS || total >= max_bytes {
                break;
            }
            let take = buf.len().min(max_bytes - total);
            slices[n] = IoSlice::new(&buf[..take]);
            total += take;
            n += 1;
        }
        n
    }

    /// Removes `n` bytes from the front (those a write has sent).
    ///
    /// `n` larger than [`len`](Self::len) empties the queue.
    pub fn consume(&mut self, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let Some(front) = self.bufs.front_mut() else {
                break;
            };
            if front.len() <= n {
                n -= front.len();
                self.bufs.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_respects_byte_budget_and_order() {
        let mut q = SendQueue::new();
        q.push("abc");
        q.push("");
        q.push("defgh");
        assert_eq!(q.buffers(), 2);
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let n = q.gather(&mut slices, 5);
        let got: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(got, b"abcde");
    }

    #[test]
    fn consume_across_buffers_keeps_the_rest_in_order() {
        let mut q = SendQueue::new();
        q.push("abc");
        q.push("defgh");
        q.consume(4);
        assert_eq!(q.len(), 4);
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let n = q.gather(&mut slices, usize::MAX);
        let got: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(got, b"efgh");
        q.consume(100);
        assert!(q.is_empty());
        assert_eq!(q.buffers(), 0);
    }
}

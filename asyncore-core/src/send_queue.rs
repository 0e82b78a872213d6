//! The output queue behind `dispatcher_with_send` and `async_chat`.

use crate::IntoBytes;
use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::io::IoSlice;

/// How many buffers one vectored write gathers at most.
pub(crate) const MAX_IOVECS: usize = 64;

/// Buffers up to this size are packed together when more than one waits.
pub const PACK_UP_TO: usize = 512;

/// The first block small buffers are packed into.
const PACK_BLOCK: usize = 4096;

/// A queue of byte buffers waiting to be sent, in order.
///
/// Queuing takes ownership of a [`Bytes`] and does not copy it, with one exception:
/// small buffers (up to [`PACK_UP_TO`] bytes) that follow one another are copied together
/// into one block, because the kernel sends one piece of 1 KiB far more cheaply than 16
/// pieces of 64 bytes (a line echoed with its terminator, a batch of short replies). The
/// block is freed once it is sent. Sending gathers the front buffers into one vectored
/// write. Python: `dispatcher_with_send.out_buffer`.
///
/// ```
/// use asyncore_core::SendQueue;
/// let mut q = SendQueue::new();
/// q.push("hello ");
/// q.push(b"world".to_vec());
/// assert_eq!((q.len(), q.buffers()), (11, 1)); // packed together
/// q.push(vec![b'!'; 1000]);
/// assert_eq!((q.len(), q.buffers()), (1011, 2));
/// q.consume(8);
/// assert_eq!(q.len(), 1003);
/// ```
#[derive(Debug, Default)]
pub struct SendQueue {
    bufs: VecDeque<Bytes>,
    /// Small buffers packed together, after everything in `bufs`.
    packed: BytesMut,
    len: usize,
}

impl SendQueue {
    /// An empty queue; allocates nothing until the first push.
    pub fn new() -> SendQueue {
        SendQueue::default()
    }

    /// Appends `data` at the back. Empty buffers are dropped; a small one that follows
    /// another small one is packed with it (see the type's docs).
    pub fn push(&mut self, data: impl IntoBytes) {
        let data = data.into_bytes();
        if data.is_empty() {
            return;
        }
        if data.len() > PACK_UP_TO {
            self.len += data.len();
            if !self.packed.is_empty() {
                let packed = std::mem::take(&mut self.packed).freeze();
                self.bufs.push_back(packed);
            }
            self.bufs.push_back(data);
        } else if self.packed.is_empty() && !self.last_is_small() {
            // A lone small buffer is queued as it is.
            self.len += data.len();
            self.bufs.push_back(data);
        } else {
            self.pack(&data);
        }
    }

    /// Appends a copy of `data`: a small one (up to [`PACK_UP_TO`] bytes) goes into the
    /// packed block, so that it costs no allocation of its own; a larger one becomes a
    /// buffer of its own. Python: `out_buffer += data`.
    ///
    /// ```
    /// use asyncore_core::SendQueue;
    /// let mut q = SendQueue::new();
    /// let line = String::from("a line");
    /// q.push_slice(line.as_bytes());
    /// q.push_slice(b"\n");
    /// assert_eq!((q.len(), q.buffers()), (7, 1));
    /// ```
    pub fn push_slice(&mut self, data: &[u8]) {
        if data.len() > PACK_UP_TO {
            self.push(Bytes::copy_from_slice(data));
        } else if !data.is_empty() {
            self.pack(data);
        }
    }

    fn last_is_small(&self) -> bool {
        self.bufs
            .back()
            .is_some_and(|last| last.len() <= PACK_UP_TO)
    }

    /// Copies small `data` into the packed block, starting one (with the last queued
    /// buffer, if it is small) when there is none.
    fn pack(&mut self, data: &[u8]) {
        self.len += data.len();
        if self.packed.is_empty() {
            let last = if self.last_is_small() {
                self.bufs.pop_back()
            } else {
                None
            };
            let carried = last.as_ref().map_or(0, Bytes::len);
            self.packed = BytesMut::with_capacity(PACK_BLOCK.max(carried + data.len()));
            if let Some(last) = last {
                self.packed.extend_from_slice(&last);
            }
        }
        self.packed.extend_from_slice(data);
    }

    /// Bytes queued in all.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many separate buffers are queued (small ones packed together count as one).
    pub fn buffers(&self) -> usize {
        self.bufs.len() + usize::from(!self.packed.is_empty())
    }

    /// Drops everything queued. Python: `async_chat.discard_buffers` (output side).
    pub fn clear(&mut self) {
        self.bufs.clear();
        self.packed = BytesMut::new();
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
        let packed = (!self.packed.is_empty()).then_some(&self.packed[..]);
        for buf in self.bufs.iter().map(|b| &b[..]).chain(packed) {
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
                // What is left is in the packed block.
                if n >= self.packed.len() {
                    self.packed = BytesMut::new(); // sent: free the block
                } else {
                    self.packed.advance(n);
                }
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

    /// Everything `gather` would send now, in order.
    fn contents(q: &SendQueue, max_bytes: usize) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let n = q.gather(&mut slices, max_bytes);
        slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn gather_respects_byte_budget_and_order() {
        let mut q = SendQueue::new();
        q.push("abc");
        q.push("");
        q.push(vec![b'x'; 600]);
        q.push("defgh");
        assert_eq!(q.buffers(), 3);
        assert_eq!(contents(&q, 5), b"abcxx");
        let all = contents(&q, usize::MAX);
        assert_eq!((all.len(), &all[602..]), (608, &b"xdefgh"[..]));
    }

    #[test]
    fn small_buffers_in_a_row_are_packed_into_one() {
        let mut q = SendQueue::new();
        let big = Bytes::from(vec![b'b'; PACK_UP_TO + 1]);
        q.push(big.clone());
        q.push("a");
        assert_eq!(q.buffers(), 2, "one small buffer is queued as it is");
        for _ in 0..100 {
            q.push("line\n");
        }
        assert_eq!(q.buffers(), 2, "the small ones share one block");
        q.push(big.clone());
        q.push("z");
        assert_eq!(q.buffers(), 4);
        let all = contents(&q, usize::MAX);
        let mut want = big.to_vec();
        want.push(b'a');
        want.extend(b"line\n".repeat(100));
        want.extend_from_slice(&big);
        want.push(b'z');
        assert_eq!(all, want);
        // The large buffers were queued, not copied.
        assert_eq!(q.bufs[0].as_ptr(), big.as_ptr());
    }

    #[test]
    fn consume_across_buffers_keeps_the_rest_in_order() {
        let mut q = SendQueue::new();
        q.push("abc");
        q.push("defgh");
        q.consume(4);
        assert_eq!(q.len(), 4);
        assert_eq!(contents(&q, usize::MAX), b"efgh");
        q.consume(100);
        assert!(q.is_empty());
        assert_eq!(q.buffers(), 0);
        assert_eq!(q.packed.capacity(), 0, "a sent block is freed");
    }

    #[test]
    fn any_pushes_and_consumes_send_the_bytes_in_order() {
        // A model: the queue must always hold exactly the bytes pushed and not consumed.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let (mut q, mut model) = (SendQueue::new(), std::collections::VecDeque::new());
            let mut byte = 0u8;
            for _ in 0..50 {
                if next(3) == 0 {
                    let n = next(model.len() as u64 + 2) as usize;
                    q.consume(n);
                    model.drain(..n.min(model.len()));
                } else {
                    let size = [0, 1, 7, PACK_UP_TO, PACK_UP_TO + 1, 3000][next(6) as usize];
                    let data: Vec<u8> = (0..size)
                        .map(|_| {
                            byte = byte.wrapping_add(1);
                            byte
                        })
                        .collect();
                    model.extend(&data);
                    if next(2) == 0 {
                        q.push_slice(&data);
                    } else {
                        q.push(data);
                    }
                }
                assert_eq!(q.len(), model.len());
                let budget = next(4000) as usize;
                let want: Vec<u8> = model.iter().copied().take(budget).collect();
                let got = contents(&q, budget);
                // At most MAX_IOVECS buffers go in one write: a prefix of what is asked.
                assert_eq!(got[..], want[..got.len()]);
                assert!(got.len() == want.len() || q.buffers() > MAX_IOVECS);
            }
        }
    }
}

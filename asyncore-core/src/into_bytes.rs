//! What output takes: byte buffers, owned or `'static`, literals included.

use bytes::{Bytes, BytesMut};

/// A byte buffer that output can take without copying it: what `push` and `send`-queue
/// operations accept. `Bytes`, `BytesMut`, `Vec<u8>`, `Box<[u8]>`, `String`, and the
/// `'static` ones: `&str`, `&[u8]` and byte-string literals (`b"END\r\n"`, a `&[u8; N]`)
/// as they are.
///
/// Only byte types are output (Python raises `TypeError` for others):
///
/// ```compile_fail
/// asyncore_core::SendQueue::new().push(10);
/// ```
///
/// ```
/// use asyncore_core::{IntoBytes, SendQueue};
/// let mut q = SendQueue::new();
/// q.push(b"END\r\n");
/// q.push("text");
/// q.push(vec![b'!']);
/// assert_eq!(q.len(), 10);
/// assert_eq!(b"abc".into_bytes(), "abc");
/// ```
///
/// Borrowed bytes that are not `'static` are copied on purpose, by the `_copy` / `_slice`
/// operations (`SendQueue::push_slice`, `ChatContext::push_copy` in `asyncore-chat`).
pub trait IntoBytes {
    /// The buffer as [`Bytes`], without a copy.
    fn into_bytes(self) -> Bytes;
}

impl IntoBytes for Bytes {
    fn into_bytes(self) -> Bytes {
        self
    }
}

impl<const N: usize> IntoBytes for &'static [u8; N] {
    fn into_bytes(self) -> Bytes {
        Bytes::from_static(self)
    }
}

/// The types `Bytes` converts from without a copy.
macro_rules! via_from {
    ($($t:ty),*) => {
        $(impl IntoBytes for $t {
            fn into_bytes(self) -> Bytes {
                Bytes::from(self)
            }
        })*
    };
}

via_from!(
    BytesMut,
    Vec<u8>,
    Box<[u8]>,
    String,
    &'static str,
    &'static [u8]
);

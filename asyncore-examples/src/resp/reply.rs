//! RESP2 replies and their exact encoding.
//!
//! ```text
//! Simple("OK")        +OK\r\n
//! Error(b"ERR x")     -ERR x\r\n
//! Integer(7)          :7\r\n
//! Bulk(b"hi")         $2\r\nhi\r\n
//! Null                $-1\r\n
//! Array([..])         *N\r\n followed by each element
//! ```

use bytes::{BufMut, Bytes, BytesMut};

/// Bulk values at least this long are handed on as their own buffer (no copy) instead of
/// being copied into the buffer of the reply's framing.
const SHARE_BULK_AT: usize = 4096;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A simple string: `+TEXT\r\n`.
    Simple(&'static str),
    /// An error: `-TEXT\r\n`; `TEXT` never holds `\r` or `\n` (see [`Reply::error`]).
    Error(Vec<u8>),
    /// An integer: `:N\r\n`.
    Integer(i64),
    /// A bulk string: `$LEN\r\nDATA\r\n`.
    Bulk(Bytes),
    /// The null bulk string: `$-1\r\n`.
    Null,
    /// An array: `*N\r\n` and its elements.
    Array(Vec<Reply>),
}

impl Reply {
    /// `+OK\r\n`.
    pub const OK: Reply = Reply::Simple("OK");

    /// An error reply of `text` (which starts with its code, e.g. `ERR` or `WRONGTYPE`).
    /// As Redis does, `\r` and `\n` in the text become spaces, so a peer's bytes quoted in
    /// an error cannot break the protocol.
    pub fn error(text: impl AsRef<[u8]>) -> Reply {
        let text = text
            .as_ref()
            .iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
            .collect();
        Reply::Error(text)
    }

    /// A bulk string holding a copy of `data`.
    pub fn bulk(data: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(data.as_ref()))
    }

    /// The reply's bytes, as one buffer (for tests and small replies).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut enc = Encoder::default();
        self.encode(&mut enc);
        enc.finish()
            .iter()
            .flat_map(|b| b.iter().copied())
            .collect()
    }

    /// Appends the reply's encoding to `enc`.
    pub fn encode(&self, enc: &mut Encoder) {
        match self {
            Reply::Simple(s) => enc.line(b'+', s.as_bytes()),
            Reply::Error(text) => enc.line(b'-', text),
            Reply::Integer(n) => enc.int_line(b':', *n),
            Reply::Null => enc.line(b'$', b"-1"),
            Reply::Bulk(data) => {
                enc.int_line(b'$', data.len() as i64);
                if data.len() >= SHARE_BULK_AT {
                    enc.flush();
                    enc.parts.push(data.clone());
                } else {
                    enc.reserve(data.len() + 2);
                    enc.buf.extend_from_slice(data);
                }
                enc.reserve(2);
                enc.buf.extend_from_slice(b"\r\n");
            }
            Reply::Array(items) => {
                enc.int_line(b'*', items.len() as i64);
                for item in items {
                    item.encode(enc);
                }
            }
        }
    }
}

/// Collects encoded replies as a list of buffers: small pieces are copied together, large
/// bulk values are shared as they are (a `GET` of a 1 MiB value queues no copy of it).
#[derive(Debug, Default)]
pub struct Encoder {
    /// Small replies, encoded one after the other into one growing block: each reply
    /// taken from it shares the block (no allocation per reply).
    buf: BytesMut,
    parts: Vec<Bytes>,
}

/// The size of the blocks small replies are encoded into.
const BLOCK: usize = 4096;

impl Encoder {
    fn reserve(&mut self, n: usize) {
        if self.buf.capacity() - self.buf.len() < n {
            self.buf.reserve(n.max(BLOCK));
        }
    }

    fn line(&mut self, kind: u8, text: &[u8]) {
        self.reserve(text.len() + 3);
        self.buf.put_u8(kind);
        self.buf.extend_from_slice(text);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `kind`, the decimal digits of `n`, CRLF; without a temporary string.
    fn int_line(&mut self, kind: u8, n: i64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = n.unsigned_abs();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.reserve(digits.len() + 4);
        self.buf.put_u8(kind);
        if n < 0 {
            self.buf.put_u8(b'-');
        }
        self.buf.extend_from_slice(&digits[i..]);
        self.buf.extend_from_slice(b"\r\n");
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() {
            self.parts.push(self.buf.split().freeze());
        }
    }

    /// Bytes encoded so far, not yet taken.
    pub fn len(&self) -> usize {
        self.buf.len() + self.parts.iter().map(Bytes::len).sum::<usize>()
    }

    /// Whether nothing is encoded.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.parts.is_empty()
    }

    /// Takes the encoded buffers, in order, leaving the encoder empty (and ready to be
    /// used again).
    pub fn finish(&mut self) -> Vec<Bytes> {
        self.flush();
        std::mem::take(&mut self.parts)
    }

    /// Drops everything encoded and not yet taken; keeps the memory for the next replies.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.parts.clear();
    }

    /// Hands the encoded buffers, in order, to `f`, leaving the encoder empty; keeps its
    /// memory for the next replies.
    ///
    /// # Errors
    /// The first error of `f` (the rest of the buffers are dropped).
    pub fn drain<E>(&mut self, mut f: impl FnMut(Bytes) -> Result<(), E>) -> Result<(), E> {
        self.flush();
        let mut result = Ok(());
        for part in self.parts.drain(..) {
            if result.is_ok() {
                result = f(part);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_drops_what_was_encoded() {
        let mut enc = Encoder::default();
        Reply::bulk(vec![b'x'; 10_000]).encode(&mut enc);
        Reply::OK.encode(&mut enc);
        enc.clear();
        assert!(enc.is_empty());
        Reply::Integer(7).encode(&mut enc);
        assert_eq!(enc.finish().concat(), b":7\r\n");
    }

    #[test]
    fn every_type_encodes_as_redis_does() {
        assert_eq!(Reply::OK.to_bytes(), b"+OK\r\n");
        assert_eq!(Reply::error("ERR x").to_bytes(), b"-ERR x\r\n");
        assert_eq!(Reply::Integer(-12).to_bytes(), b":-12\r\n");
        assert_eq!(Reply::bulk("hi").to_bytes(), b"$2\r\nhi\r\n");
        assert_eq!(Reply::bulk("").to_bytes(), b"$0\r\n\r\n");
        assert_eq!(Reply::Null.to_bytes(), b"$-1\r\n");
        assert_eq!(Reply::Array(vec![]).to_bytes(), b"*0\r\n");
        let nested = Reply::Array(vec![Reply::bulk("a"), Reply::Null, Reply::Integer(1)]);
        assert_eq!(nested.to_bytes(), b"*3\r\n$1\r\na\r\n$-1\r\n:1\r\n");
    }

    #[test]
    fn error_text_loses_its_line_breaks() {
        assert_eq!(Reply::error("ERR a\r\nb").to_bytes(), b"-ERR a  b\r\n");
    }

    #[test]
    fn large_bulk_is_shared_not_copied() {
        let big = Bytes::from(vec![7u8; 10_000]);
        let mut enc = Encoder::default();
        Reply::Simple("PONG").encode(&mut enc);
        Reply::Bulk(big.clone()).encode(&mut enc);
        assert_eq!(enc.len(), 7 + 8 + 10_000 + 2);
        let parts = enc.finish();
        assert_eq!(parts.len(), 3);
        assert_eq!(&parts[0][..], b"+PONG\r\n$10000\r\n");
        assert_eq!(
            parts[1].as_ptr(),
            big.as_ptr(),
            "the value itself, not a copy"
        );
        assert_eq!(&parts[2][..], b"\r\n");
        assert!(enc.is_empty());
    }
}

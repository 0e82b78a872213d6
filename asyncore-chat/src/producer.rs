//! Producers: output made on demand, pulled as the socket drains.

use asyncore_core::BoxError;
use bytes::Bytes;

/// A source of output that makes its data when the channel can take it. Python: any
/// object with a `more()` method given to `async_chat.push_with_producer`.
///
/// Byte buffers are producers too ([`Bytes`], `Vec<u8>`, `&'static [u8]`,
/// `&'static str`, `String`): their `more` hands over everything at once.
///
/// ```
/// use asyncore_chat::Producer;
/// use asyncore_core::BoxError;
/// use bytes::Bytes;
///
/// /// Counts down, one line at a time.
/// struct Countdown(u32);
///
/// impl Producer for Countdown {
///     fn more(&mut self) -> Result<Bytes, BoxError> {
///         if self.0 == 0 {
///             return Ok(Bytes::new()); // exhausted
///         }
///         self.0 -= 1;
///         Ok(Bytes::from(format!("{}\n", self.0 + 1)))
///     }
/// }
///
/// let mut p = Countdown(2);
/// assert_eq!(p.more()?, "2\n");
/// assert_eq!(p.more()?, "1\n");
/// assert!(p.more()?.is_empty());
/// # Ok::<(), BoxError>(())
/// ```
pub trait Producer: 'static {
    /// The next piece of output; empty when the producer is exhausted (it is then dropped).
    /// Python: `producer.more()`.
    ///
    /// # Errors
    /// Whatever the producer fails with; it goes to the channel's `handle_error`.
    fn more(&mut self) -> Result<Bytes, BoxError>;
}

impl<P: Producer + ?Sized> Producer for Box<P> {
    fn more(&mut self) -> Result<Bytes, BoxError> {
        (**self).more()
    }
}

impl Producer for Bytes {
    fn more(&mut self) -> Result<Bytes, BoxError> {
        Ok(std::mem::take(self))
    }
}

impl Producer for Vec<u8> {
    fn more(&mut self) -> Result<Bytes, BoxError> {
        Ok(Bytes::from(std::mem::take(self)))
    }
}

impl Producer for String {
    fn more(&mut self) -> Result<Bytes, BoxError> {
        Ok(Bytes::from(std::mem::take(self)))
    }
}

impl Producer for &'static [u8] {
    fn more(&mut self) -> Result<Bytes, BoxError> {
        Ok(Bytes::from_static(std::mem::take(self)))
    }
}

impl Producer for &'static str {
    fn more(&mut self) -> Result<Bytes, BoxError> {
        Ok(Bytes::from_static(std::mem::take(self).as_bytes()))
    }
}

/// The default piece size of [`SimpleProducer`] (Python's `buffer_size=512`).
pub const SIMPLE_PRODUCER_BUFFER_SIZE: usize = 512;

/// Hands out a buffer in pieces of at most `buffer_size` bytes, without copying.
/// Python: `asynchat.simple_producer(data, buffer_size=512)`.
///
/// ```
/// use asyncore_chat::{Producer, SimpleProducer};
/// let mut p = SimpleProducer::with_buffer_size("hello world", 4);
/// assert_eq!(p.more()?, "hell");
/// assert_eq!(p.more()?, "o wo");
/// assert_eq!(p.more()?, "rld");
/// assert!(p.more()?.is_empty());
/// # Ok::<(), asyncore_core::BoxError>(())
/// ```
#[derive(Debug, Clone)]
pub struct SimpleProducer {
    data: Bytes,
    buffer_size: usize,
}

impl SimpleProducer {
    /// A producer of `data` in pieces of 512 bytes.
    pub fn new(data: impl Into<Bytes>) -> SimpleProducer {
        SimpleProducer::with_buffer_size(data, SIMPLE_PRODUCER_BUFFER_SIZE)
    }

    /// A producer of `data` in pieces of `buffer_size` bytes (at least 1).
    pub fn with_buffer_size(data: impl Into<Bytes>, buffer_size: usize) -> SimpleProducer {
        SimpleProducer {
            data: data.into(),
            buffer_size: buffer_size.max(1),
        }
    }
}

impl Producer for SimpleProducer {
    fn more(&mut self) -> Result<Bytes, BoxError> {
        let n = self.data.len().min(self.buffer_size);
        Ok(self.data.split_to(n))
    }
}

/// Python's spelling of [`SimpleProducer::with_buffer_size`]:
/// `asynchat.simple_producer(data, buffer_size)`.
pub fn simple_producer(data: impl Into<Bytes>, buffer_size: usize) -> SimpleProducer {
    SimpleProducer::with_buffer_size(data, buffer_size)
}

//! Terminators: where one frame of input ends.

use crate::error::ChatError;
use bytes::Bytes;

/// A non-empty byte string that ends a frame, such as `b"\r\n"`.
///
/// It can only be made through [`Delimiter::new`] (or [`Terminator::bytes`]), which refuses
/// the empty string, so every [`Terminator::Bytes`] is valid.
///
/// ```
/// use asyncore_chat::Delimiter;
/// let d = Delimiter::new("\r\n")?;
/// assert_eq!(d.as_bytes(), b"\r\n");
/// assert!(Delimiter::new("").is_err());
/// # Ok::<(), asyncore_chat::ChatError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Delimiter(Bytes);

impl Delimiter {
    /// Makes a delimiter of `bytes` (copied only if it is not already a [`Bytes`] or owned
    /// buffer).
    ///
    /// # Errors
    /// [`ChatError::EmptyTerminator`] for an empty string.
    pub fn new(bytes: impl Into<Bytes>) -> Result<Delimiter, ChatError> {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Err(ChatError::EmptyTerminator);
        }
        Ok(Delimiter(bytes))
    }

    /// The bytes of the delimiter (never empty).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Delimiter {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Where a frame of input ends. Python: the argument of `async_chat.set_terminator`
/// (a byte string, an integer, or `None`).
///
/// ```text
/// Bytes(b"\r\n"):  "GET /\r\nHost: x\r\n"  ->  frames "GET /", "Host: x"
/// Count(4):        "abcdefgh"              ->  frame "abcd", then the count is used up
/// None:            "abcdefgh"              ->  no frame; everything is collected
/// ```
///
/// A count is used up by the frame it ends and stays at `Count(0)`, which, as in Python,
/// collects everything like `None` until a new terminator is set (usually from
/// `found_terminator`).
///
/// ```
/// use asyncore_chat::Terminator;
/// assert_eq!(Terminator::bytes("\r\n")?, Terminator::CRLF);
/// assert_eq!(Terminator::from(6), Terminator::Count(6));
/// assert!(Terminator::try_from(-1i64).is_err()); // Python: ValueError
/// assert!(Terminator::bytes("").is_err());
/// assert!(Terminator::Count(0).collects_all());
/// # Ok::<(), asyncore_chat::ChatError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Terminator {
    /// A frame ends at this byte string (which is not part of the frame).
    Bytes(Delimiter),
    /// A frame is this many bytes. `Count(0)` collects everything, like `None`.
    Count(usize),
    /// No frames: everything is collected (`found_terminator` is never called).
    #[default]
    None,
    /// The handler cuts the frames itself: its `decode`
    /// ([`ChatHandler::decode`](crate::ChatHandler::decode),
    /// [`FrameSink::decode`](crate::FrameSink::decode)) is called with all the input
    /// buffered so far and says how long the frame at its front is, or that it needs more
    /// (tokio-util's `Decoder::decode`, pulled by the loop). For protocols whose frames
    /// have no fixed terminator: RESP, memcached's binary protocol, length prefixes. Not
    /// in Python.
    Decode,
}

impl Terminator {
    /// `b"\n"`.
    pub const LF: Terminator = Terminator::Bytes(Delimiter(Bytes::from_static(b"\n")));

    /// `b"\r\n"`.
    pub const CRLF: Terminator = Terminator::Bytes(Delimiter(Bytes::from_static(b"\r\n")));

    /// A byte-string terminator.
    ///
    /// # Errors
    /// [`ChatError::EmptyTerminator`] for an empty string.
    pub fn bytes(bytes: impl Into<Bytes>) -> Result<Terminator, ChatError> {
        Delimiter::new(bytes).map(Terminator::Bytes)
    }

    /// A byte-string terminator from a literal, usable in a `const`: no error to handle
    /// for a string that is known not to be empty.
    ///
    /// ```
    /// use asyncore_chat::Terminator;
    /// const END_OF_DATA: Terminator = Terminator::literal(b"\r\n.\r\n");
    /// assert_eq!(END_OF_DATA, Terminator::bytes("\r\n.\r\n")?);
    /// # Ok::<(), asyncore_chat::ChatError>(())
    /// ```
    ///
    /// An empty literal does not compile in a `const`:
    ///
    /// ```compile_fail
    /// const NOTHING: asyncore_chat::Terminator = asyncore_chat::Terminator::literal(b"");
    /// ```
    ///
    /// # Panics
    /// Outside a `const`, for an empty `bytes` (use [`bytes`](Self::bytes) for strings
    /// that come from input).
    pub const fn literal(bytes: &'static [u8]) -> Terminator {
        assert!(
            !bytes.is_empty(),
            "a terminator byte string cannot be empty"
        );
        Terminator::Bytes(Delimiter(Bytes::from_static(bytes)))
    }

    /// Whether this terminator ends no frame and input is collected as it comes: `None`
    /// and `Count(0)` (Python: `if not terminator`).
    pub fn collects_all(&self) -> bool {
        matches!(self, Terminator::None | Terminator::Count(0))
    }
}

impl From<usize> for Terminator {
    fn from(count: usize) -> Terminator {
        Terminator::Count(count)
    }
}

impl From<Delimiter> for Terminator {
    fn from(d: Delimiter) -> Terminator {
        Terminator::Bytes(d)
    }
}

impl TryFrom<i64> for Terminator {
    type Error = ChatError;

    /// A count from a signed integer, as Python's `set_terminator(n)` takes it.
    ///
    /// # Errors
    /// [`ChatError::NegativeCount`] for `n < 0`.
    fn try_from(n: i64) -> Result<Terminator, ChatError> {
        usize::try_from(n)
            .map(Terminator::Count)
            .map_err(|_| ChatError::NegativeCount(n))
    }
}

/// The length of the longest proper prefix of `needle` that `haystack` ends with; 0 if
/// none does. Python: `asynchat.find_prefix_at_end(haystack, needle)`.
///
/// The framer uses it to keep a terminator that a read cut in two: those bytes wait for the
/// next read instead of being collected. The full `needle` at the end is not looked for
/// (the caller has searched for it already).
///
/// ```
/// use asyncore_chat::find_prefix_at_end;
/// assert_eq!(find_prefix_at_end(b"qwerty\r", b"\r\n"), 1);
/// assert_eq!(find_prefix_at_end(b"qwertydkjf", b"\r\n"), 0);
/// assert_eq!(find_prefix_at_end(b"xqq", b"qqq"), 2);
/// ```
pub fn find_prefix_at_end(haystack: &[u8], needle: &[u8]) -> usize {
    let longest = needle.len().saturating_sub(1).min(haystack.len());
    (1..=longest)
        .rev()
        .find(|&l| haystack.ends_with(&needle[..l]))
        .unwrap_or(0)
}

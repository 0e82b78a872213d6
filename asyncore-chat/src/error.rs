//! The errors of this crate.

use asyncore_core::LookupError;
use std::error::Error;
use std::fmt;
use std::io;

/// What can go wrong in the framing and output layers.
///
/// A callback returns it with `?` (it converts into
/// [`BoxError`](asyncore_core::BoxError)); whoever handles the error can get it back with
/// `err.downcast_ref::<ChatError>()`.
///
/// ```
/// use asyncore_chat::{ChatError, Terminator};
/// let err = Terminator::bytes("").unwrap_err();
/// assert!(matches!(err, ChatError::EmptyTerminator));
/// assert_eq!(err.to_string(), "a terminator byte string cannot be empty");
///
/// let err = ChatError::InputLimit { len: 70_000, limit: 65_536 };
/// assert_eq!(
///     err.to_string(),
///     "input of 70000 bytes exceeds the limit of 65536 without a terminator \
///      (raise it with AsyncChat::set_max_input, or set_max_input(None))"
/// );
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ChatError {
    /// The frame being collected grew past the input limit (see
    /// [`Framing::set_max_input`](crate::Framing::set_max_input)) before its terminator
    /// came. `len` is what the frame buffer would hold with the input that broke the
    /// limit. Its text names the setting that raises the limit.
    InputLimit {
        /// Bytes the frame would hold.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// Output was pushed after [`close_when_done`](crate::ChatContext::close_when_done), or
    /// to a channel that is closed. The data was not queued.
    Closing,
    /// [`push_to`](crate::push_to) could not reach its channel: it closed, its handler is
    /// the one running now (push through its [`ChatContext`](crate::ChatContext)), or the
    /// handle is another map's. The [`LookupError`] says which.
    Unavailable(LookupError),
    /// A terminator byte string was empty (Python would never find it).
    EmptyTerminator,
    /// A byte count was negative (Python: `ValueError: the number of received bytes must
    /// be positive`).
    NegativeCount(i64),
    /// Output watermarks with the low mark above the high one.
    InvalidWatermarks {
        /// The low mark given.
        low: usize,
        /// The high mark given.
        high: usize,
    },
    /// Sending failed with an operating-system error.
    Io(io::Error),
}

impl From<LookupError> for ChatError {
    fn from(err: LookupError) -> ChatError {
        ChatError::Unavailable(err)
    }
}

impl fmt::Display for ChatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChatError::InputLimit { len, limit } => write!(
                f,
                "input of {len} bytes exceeds the limit of {limit} without a terminator \
                 (raise it with AsyncChat::set_max_input, or set_max_input(None))"
            ),
            ChatError::Closing => {
                f.write_str("cannot push: the channel is closing (close_when_done) or closed")
            }
            ChatError::Unavailable(err) => write!(f, "cannot push: {err}"),
            ChatError::EmptyTerminator => f.write_str("a terminator byte string cannot be empty"),
            ChatError::NegativeCount(n) => write!(
                f,
                "invalid terminator {n}: the number of received bytes must be positive"
            ),
            ChatError::InvalidWatermarks { low, high } => write!(
                f,
                "invalid output watermarks: low mark {low} is above high mark {high}"
            ),
            ChatError::Io(e) => write!(f, "send failed: {e}"),
        }
    }
}

impl Error for ChatError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ChatError::Io(e) => Some(e),
            ChatError::Unavailable(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ChatError {
    fn from(e: io::Error) -> ChatError {
        ChatError::Io(e)
    }
}

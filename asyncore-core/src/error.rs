//! Errors: what a handler returns, how a loop ends, and the OS error text.

use std::error::Error;
use std::fmt;
use std::io;

/// Any error a handler may return; `?` converts most error types into it.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// What every event handler returns.
///
/// `Err` sends the error to the channel's
/// [`handle_error`](crate::Dispatcher::handle_error), except for [`ExitNow`], which ends the
/// loop at once, and an [`io::ErrorKind::WouldBlock`] error, which only means "not ready yet"
/// and is ignored (the channel waits for its next readiness event).
pub type HandlerResult = Result<(), BoxError>;

/// A request to end the loop at once, returned by a handler.
///
/// Python: `asyncore.ExitNow`. The loop stops in the middle of its pass and returns
/// [`LoopError::ExitNow`] to its caller; the channels stay in the map.
///
/// ```
/// use asyncore_core::{ExitNow, HandlerResult};
/// fn handler() -> HandlerResult {
///     Err(ExitNow::new("operator asked to stop").into())
/// }
/// let err = handler().unwrap_err();
/// assert!(err.is::<ExitNow>());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExitNow {
    reason: String,
}

impl ExitNow {
    /// An exit request carrying a reason for the caller of the loop.
    pub fn new(reason: impl Into<String>) -> ExitNow {
        ExitNow {
            reason: reason.into(),
        }
    }

    /// The reason given by the handler that asked to exit.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ExitNow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            f.write_str("exit requested")
        } else {
            write!(f, "exit requested: {}", self.reason)
        }
    }
}

impl Error for ExitNow {}

/// A panic caught inside a handler, handed to that channel's `handle_error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanicError {
    message: String,
}

impl PanicError {
    /// The error for a caught panic's payload (what `std::panic::catch_unwind` returns),
    /// for layers that call user code of their own and report its panics the same way.
    pub fn from_payload(payload: &(dyn std::any::Any + Send)) -> PanicError {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic with a non-string payload".to_string()
        };
        PanicError { message }
    }

    /// The panic's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PanicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "handler panicked: {}", self.message)
    }
}

impl Error for PanicError {}

/// Why [`Loop::run`](crate::Loop::run) returned early.
#[derive(Debug)]
pub enum LoopError {
    /// A handler returned [`ExitNow`].
    ExitNow(ExitNow),
    /// The operating system's wait failed (for example `EINVAL` from `poll(2)`).
    Io(io::Error),
    /// A loop runs over this map already (a handler called `Loop::run` on its own map).
    AlreadyRunning,
}

impl fmt::Display for LoopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopError::ExitNow(e) => e.fmt(f),
            LoopError::Io(e) => write!(f, "event loop wait failed: {e}"),
            LoopError::AlreadyRunning => {
                f.write_str("a loop is already running over this map (Loop::run is not re-entrant)")
            }
        }
    }
}

impl Error for LoopError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            LoopError::ExitNow(e) => Some(e),
            LoopError::Io(e) => Some(e),
            LoopError::AlreadyRunning => None,
        }
    }
}

impl From<io::Error> for LoopError {
    fn from(e: io::Error) -> LoopError {
        LoopError::Io(e)
    }
}

/// The operating system's text for an error number.
///
/// Python: `asyncore._strerror`. Unknown numbers give `"Unknown error N"`.
///
/// ```
/// let text = asyncore_core::strerror(libc::EPERM);
/// assert_eq!(text, "Operation not permitted");
/// assert_eq!(asyncore_core::strerror(-1), "Unknown error -1");
/// ```
pub fn strerror(code: i32) -> String {
    if code < 0 {
        return format!("Unknown error {code}");
    }
    let text = io::Error::from_raw_os_error(code).to_string();
    // std formats as "<message> (os error N)"; asyncore shows only the message.
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// `err` and its chain of sources, as `outer: inner: innermost`.
pub(crate) fn chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

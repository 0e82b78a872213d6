//! The two ways a pass waits for the OS.
//!
//! - [`mio`]: edge-triggered readiness kept per channel; a pass visits only channels with
//!   work (the default).
//! - [`poll`]: `poll(2)` over every channel, every pass, exactly like Python's
//!   `asyncore.poll2`; the reference the conformance tests compare against.

pub(crate) mod mio;
pub(crate) mod poll;

use std::time::Duration;

/// `timeout` in whole milliseconds for `poll(2)`, rounded up so that a short wait is not
/// turned into a busy poll.
pub(crate) fn millis(timeout: Duration) -> i32 {
    let ms = timeout.as_nanos().div_ceil(1_000_000);
    i32::try_from(ms).unwrap_or(i32::MAX)
}

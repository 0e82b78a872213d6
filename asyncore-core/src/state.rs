//! What the loop keeps about each channel, in the map's entry: the readiness the OS
//! reported, whether the channel is on the active list, and how far it is on its way to
//! closed.
//!
//! A [`Channel`](crate::Channel) is the socket half only. Its socket operations do not
//! touch this state; they note what they saw ([`Seen`]), and the loop folds the notes in
//! after every callback ([`LoopState::absorb`]). So the rules live here, in one place,
//! whoever did the operation (a handler, another channel through the map, the loop).
//!
//! # Closing
//!
//! ```text
//!            close_when_done, shutdown,
//!            peer's end of stream with output queued
//!   Open ─────────────────────────────────────────▶ Flushing ──┐ output sent:
//!     │                                                │       │ shut the write side
//!     │ peer gone, error, idle timeout, request_close │       │
//!     ▼                                                ▼       ▼
//!   handle_close ◀─────────────────────────────────────────────┘   (once per channel)
//!     │
//!     ▼
//!   Closing ── any later close request ──▶ Closed (handler dropped, descriptor closed,
//!                                          or lingering: see below)
//! ```
//!
//! `ctx.close()` goes to `Closed` from any state, without `handle_close` (Python's
//! `close()`). A channel whose write side the loop shut down after a flush, and whose peer
//! has not ended its input, *lingers* once closed: the map reads and discards its input
//! until the peer closes or the linger time ends, so that the kernel does not answer
//! unread input with a reset that would destroy replies still in flight.

use crate::timer::TimerId;
use std::time::{Duration, Instant};

/// Readiness bits, as the OS reported them (mio backend) or as `poll(2)` returned them.
pub(crate) mod ready {
    pub const READ: u8 = 1;
    pub const WRITE: u8 = 2;
    pub const PRI: u8 = 4;
    pub const HUP: u8 = 8;
    pub const ERR: u8 = 16;
    pub const NVAL: u8 = 32;
    /// The peer ended its side (mio's read-closed): a read will see the end of stream.
    /// Never cleared by a short read, so the end of stream is not missed.
    pub const RDHUP: u8 = 64;
    /// Not from the OS: the handler holds input already read (see
    /// [`Context::wake_read`](crate::Context::wake_read)); a read event is due.
    pub const WAKE: u8 = 128;
    pub const CLOSE: u8 = HUP | ERR | NVAL;
}

/// What socket operations saw, noted on the channel for the loop to fold into its state.
pub(crate) mod seen {
    /// A read found nothing (`WouldBlock`), or a short read on a stream socket showed the
    /// socket drained (epoll only).
    pub const READ_DRAINED: u8 = 1;
    /// A write found the socket full (`WouldBlock`).
    pub const WRITE_FULL: u8 = 2;
    /// A read returned data.
    pub const GOT_DATA: u8 = 4;
    /// A read returned the end of stream.
    pub const EOF: u8 = 8;
    /// An operation failed with a disconnect error: the connection is gone.
    pub const GONE: u8 = 16;
    /// The channel got a new descriptor (`set_socket`): forget the old readiness.
    pub const NEW_SOCKET: u8 = 32;
    /// TLS has records (or held-back plaintext) to send that no new edge may announce:
    /// a session just started on a socket that reported its readiness long ago, or a
    /// handshake just ended. The write is tried; `WouldBlock` clears it again.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub const TRY_WRITE: u8 = 64;
}

/// How far a channel is on its way to closed; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseState {
    /// Serving.
    Open,
    /// Its output drains; once it is sent the write side is shut down and
    /// `handle_close` runs (or, when it ran already, the channel closes).
    Flushing { handle_close: bool },
    /// `handle_close` has run and left the channel open; another close request closes.
    Closing,
    /// Closed: gone from the map's views, its slot freed once its handler is back.
    Closed,
}

/// A channel's idle timeout: its period, its last read or write event, its check timer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Idle {
    pub(crate) period: Duration,
    pub(crate) last_activity: Instant,
    pub(crate) timer: Option<TimerId>,
}

/// The loop's bookkeeping for one channel.
#[derive(Debug)]
pub(crate) struct LoopState {
    /// Readiness the OS reported and no operation has used up yet (mio backend), plus
    /// `WAKE` asked for by [`wake_read`](crate::Context::wake_read).
    pub(crate) ready: u8,
    /// What the channel's predicates answered (`readable`, `writable`) when last asked,
    /// if nothing since could have changed it: asked again after every callback, and
    /// forgotten when the channel is touched from outside. With `ready`, it tells the
    /// work the loop need not wait for.
    pub(crate) interest: Option<(bool, bool)>,
    /// On the map's active list.
    pub(crate) active: bool,
    pub(crate) close: CloseState,
    /// The peer ended its input (a read returned the end of stream): read no more.
    pub(crate) read_closed: bool,
    /// The loop shut down the write side after a flush.
    pub(crate) write_shut: bool,
    /// The handler asked to close once its output is sent (`close_when_done`): it takes
    /// no more output.
    pub(crate) done_asked: bool,
    /// `handle_close` is due as soon as the current callback returns.
    pub(crate) close_due: bool,
    /// A read just returned the end of stream: `handle_close` is due, or a flush first.
    pub(crate) eof_due: bool,
    /// A flush started outside a callback: see on the next pass whether it is done.
    pub(crate) flush_check: bool,
    /// A read in the current callback returned data (a hang-up waits for the end of it).
    pub(crate) got_data: bool,
    /// The OS will not poll this descriptor (a regular file): it counts as always ready.
    pub(crate) always_ready: bool,
    pub(crate) idle: Option<Idle>,
    /// Set while the channel lingers after its close: when to give up.
    pub(crate) linger_until: Option<Instant>,
}

impl LoopState {
    pub(crate) fn new() -> LoopState {
        LoopState {
            ready: 0,
            interest: None,
            active: false,
            close: CloseState::Open,
            read_closed: false,
            write_shut: false,
            done_asked: false,
            close_due: false,
            eof_due: false,
            flush_check: false,
            got_data: false,
            always_ready: false,
            idle: None,
            linger_until: None,
        }
    }

    /// Whether the channel still counts as in the map (not closed, not lingering).
    pub(crate) fn is_open(&self) -> bool {
        self.close != CloseState::Closed
    }

    /// Whether it is flushing toward its close (`close_when_done`, shutdown, or the
    /// peer's end of stream with output queued).
    pub(crate) fn is_flushing(&self) -> bool {
        matches!(self.close, CloseState::Flushing { .. })
    }

    pub(crate) fn clear_ready(&mut self, bits: u8) {
        if !self.always_ready {
            self.ready &= !bits;
        }
    }

    /// Folds in what the channel's operations noted.
    pub(crate) fn absorb(&mut self, notes: u8) {
        if notes == 0 {
            return;
        }
        if notes & seen::NEW_SOCKET != 0 {
            self.ready = 0;
            self.read_closed = false;
            self.write_shut = false;
        }
        if notes & seen::READ_DRAINED != 0 {
            self.clear_ready(ready::READ);
        }
        if notes & seen::WRITE_FULL != 0 {
            self.clear_ready(ready::WRITE);
        }
        if notes & seen::GOT_DATA != 0 {
            self.got_data = true;
        }
        if notes & seen::EOF != 0 {
            // The readiness stays, as `poll(2)` keeps reporting an ended input: a channel
            // whose `handle_close` left it open sees the end again, and then closes.
            self.read_closed = true;
            self.eof_due = true;
        }
        if notes & seen::GONE != 0 {
            self.close_due = true;
        }
        if notes & seen::TRY_WRITE != 0 {
            self.ready |= ready::WRITE;
        }
    }

    /// Asks for `handle_close` once the current callback returns.
    pub(crate) fn request_close(&mut self) {
        if self.is_open() {
            self.close_due = true;
        }
    }

    /// Starts a flush toward close; `false` when the channel is past that already.
    pub(crate) fn start_flush(&mut self) -> bool {
        match self.close {
            CloseState::Open => self.close = CloseState::Flushing { handle_close: true },
            CloseState::Closing => {
                self.close = CloseState::Flushing {
                    handle_close: false,
                }
            }
            CloseState::Flushing { .. } => {}
            CloseState::Closed => return false,
        }
        self.flush_check = true;
        true
    }
}

//! The reference backend: `poll(2)` over every channel on every pass, as Python's
//! `asyncore.poll2` does. Level-triggered; it asks every channel's predicates every pass.

use super::{millis, Wait};
use crate::dispatch::{interest_of, serve, wait_time};
use crate::error::LoopError;
use crate::socket_map::{ChannelId, SocketMap};
use crate::state::ready;
use crate::sys::{self, RawSock};
use std::io;
use std::time::Duration;

/// The descriptor set of one pass, kept between passes for its memory.
#[derive(Default)]
pub(crate) struct PollWait {
    fds: Vec<sys::pollfd>,
    tokens: Vec<::mio::Token>,
}

impl PollWait {
    fn clear(&mut self) {
        self.fds.clear();
        self.tokens.clear();
    }
}

/// `poll(2)` result flags as readiness bits.
pub(crate) fn ready_bits(revents: i16) -> u8 {
    let table = [
        (sys::POLLIN, ready::READ),
        (sys::POLLOUT, ready::WRITE),
        (sys::POLLPRI, ready::PRI),
        (sys::POLLHUP, ready::HUP),
        (sys::POLLERR, ready::ERR),
        (sys::POLLNVAL, ready::NVAL),
    ];
    table
        .iter()
        .filter(|(flag, _)| revents & *flag != 0)
        .fold(0, |bits, (_, bit)| bits | bit)
}

/// What the OS reported, as readiness bits. `WSAPoll` sets `POLLHUP` as soon as the peer
/// has shut down its sending side (Windows's graceful close), where `poll(2)` waits until
/// both directions are closed: on Windows it is the end of the peer's input (a read finds
/// the end of stream), and output still queued for the peer goes on.
fn os_ready_bits(revents: i16) -> u8 {
    let bits = ready_bits(revents);
    if sys::HUP_IS_INPUT_END && bits & ready::HUP != 0 {
        (bits & !ready::HUP) | ready::RDHUP
    } else {
        bits
    }
}

impl Wait for PollWait {
    fn want(&mut self, fd: RawSock, token: ::mio::Token, interest: u8) {
        let mut events = 0;
        if interest & ready::READ != 0 {
            events |= sys::POLL_READ;
        }
        if interest & ready::WRITE != 0 {
            events |= sys::POLLOUT;
        }
        self.fds.push(sys::pollfd_of(fd, events | sys::POLL_ALWAYS));
        self.tokens.push(token);
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        sys::poll(&mut self.fds, millis(timeout)).map(drop)
    }

    fn events(&self, f: &mut dyn FnMut(::mio::Token, u8)) {
        for (pfd, &token) in self.fds.iter().zip(&self.tokens) {
            if pfd.revents != 0 {
                f(token, os_ready_bits(pfd.revents));
            }
        }
    }
}

/// One pass: ask every channel what it waits for, `poll(2)` (not waiting when some
/// channel has work the OS will not report: a failed connect, a close due, input buffered
/// above the socket), then serve every channel that is ready or has work.
pub(crate) fn pass(map: &mut SocketMap, timeout: Duration) -> Result<(), LoopError> {
    let reading = !map.shutting_down();
    // Every channel is asked every pass: the active list means nothing here.
    let mut ids = map.take_active();
    ids.clear();
    map.collect_ids(&mut ids);
    let mut set = std::mem::take(&mut map.poll_set);
    set.clear();
    // Which of `ids` asked for what: (readable, writable), or `None` (not asked, closed).
    let mut asked: Vec<(ChannelId, Option<(bool, bool)>)> = Vec::with_capacity(ids.len());
    let mut due = false;
    for &id in &ids {
        let wants = match interest_of(map, id, reading) {
            Ok(wants) => wants,
            Err(exit) => {
                map.poll_set = set;
                map.give_back_active(ids);
                return Err(LoopError::ExitNow(exit));
            }
        };
        if let Some((fd, token, bits, has_work)) = map.poll_interest(id, wants) {
            due |= has_work;
            if bits != 0 {
                set.want(fd, token, bits);
            }
        }
        asked.push((id, wants));
    }
    // The waker's socket ends the wait when another thread posts work.
    if let Some(fd) = map.waker_fd() {
        set.want(fd, super::WAKER_TOKEN, ready::READ);
    }
    let wait = if due {
        Duration::ZERO
    } else {
        wait_time(map, timeout)
    };
    let waited = set.wait(wait);
    if waited.is_ok() {
        // Level-triggered: this pass's readiness replaces what the last one saw.
        for &id in &ids {
            map.reset_ready(id);
        }
        set.events(&mut |token, bits| {
            if token != super::WAKER_TOKEN {
                map.record(token, bits);
            }
        });
    }
    map.poll_set = set;
    map.give_back_active(ids);
    waited.map_err(LoopError::Io)?;
    for (id, wants) in asked {
        // `serve` skips ids whose channel closed earlier in this pass.
        serve(map, id, reading, Some(wants)).map_err(LoopError::ExitNow)?;
    }
    Ok(())
}
